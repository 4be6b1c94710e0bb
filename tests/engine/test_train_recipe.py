"""`train --recipe paper` and the settings it is made of: each also a flag, explicit flags win, the values used
are recorded and listed, no hold-out means eval needs --data, 4-bit weights say what they need; and a run
that runs its student's own code says so whenever it is loaded again."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace

import pytest

from engine.student import runs, training_data
from engine.student.events import read_events
from engine.student.loop import train
from engine.student.run_config import RunSettings
from engine.student.schedule import get_lr
from rebase_tui.cli import main
from tests.conftest import corpus


def _data(tmp_path, n: int = 40):
    rows = training_data.read_examples_file(corpus("teacher_outputs", "boolean_expressions.jsonl"))[:n]
    path = tmp_path / "bool.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


PAPER = {"recipe": "paper", "method": "lora", "lr": 3e-4, "epochs": 1.0, "scheduler": "linear", "warmup_steps": 20,
         "weight_decay": 0.01, "max_length": 2048, "batch_size": 2, "grad_accum": 4, "eval_fraction": 0.0,
         "load_in_4bit": False}  # 4-bit weights apply on CUDA only; this machine trains on its CPU


def test_paper_recipe_trains_on_every_example_with_its_settings(tmp_path, tiny_student, capsys):
    data, ws = _data(tmp_path), tmp_path / "ws"
    assert main(["train", "-w", str(ws), "--data", str(data), "--student", str(tiny_student), "--recipe", "paper",
                 "--lora-r", "4", "--threads", "1", "--device", "cpu", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "finished" and result["steps"] == 5 and result["eval_loss"] is None
    path = ws / "runs" / result["run"]
    cfg = json.loads((path / "run.json").read_text())
    assert {k: cfg[k] for k in PAPER} == PAPER
    assert cfg["lora"] == {"r": 4, "alpha": 16, "dropout": 0.0}  # the explicit flag won over the recipe's r 8
    assert cfg["data"]["train"] == 40 and cfg["data"]["eval"] == 0 and cfg["total_steps"] == 5  # 40 / (2 x 4)
    assert (path / "eval.jsonl").read_text() == ""
    adapter = json.loads((path / "model" / "adapter_config.json").read_text())
    assert (adapter["r"], adapter["lora_alpha"], adapter["lora_dropout"]) == (4, 16, 0.0)

    events = read_events(path)
    started = next(e for e in events if e["type"] == "started")
    assert started["method"] == "lora" and started["eval_examples"] == 0
    assert started["max_length"] == 256  # 2,048 tokens cut to the tiny student's context
    assert not [e for e in events if e["type"] == "eval"]
    steps = [e for e in events if e["type"] == "step"]
    assert steps[-1]["step"] == 5
    for e in steps:  # still warming up: the 20 warm-up steps are longer than this run
        assert e["lr"] == pytest.approx(3e-4 * e["step"] / 20)
    import torch

    saved = torch.load(path / "checkpoints" / "step-000005" / "optimizer.pt", weights_only=True)
    assert [g["weight_decay"] for g in saved["param_groups"]] == [0.01]  # LoRA's matrices, all decayed

    assert main(["runs", "-w", str(ws), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)[0]
    assert listed["recipe"] == "paper"
    for part in ("paper:", "lora r4/a16/d0", "lr 0.0003 linear (20 warm-up)", "wd 0.01", "batch 2x4", "len 2048"):
        assert part in listed["settings"], listed["settings"]

    # no validation hold-out: eval needs a test file, and says so
    assert main(["eval", result["run"], "-w", str(ws)]) == 1
    err = _one_line(capsys)
    assert "no validation split" in err and "--data" in err
    assert main(["eval", result["run"], "-w", str(ws), "--data", str(data), "--limit", "4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 4


def test_weight_decay_spares_biases_and_norms(workspace, tiny_student):
    import torch
    from transformers import AutoModelForCausalLM

    rows = training_data.read_examples_file(corpus("teacher_outputs", "boolean_expressions.jsonl"))[:16]
    settings = RunSettings(student=str(tiny_student), method="full", max_steps=2, batch_size=4, max_length=64,
                           device="cpu", threads=1, weight_decay=0.1, warmup_steps=0, scheduler="linear")
    path = runs.create_run(workspace, rows, settings)
    assert list(train(path))[-1].status == "finished"
    groups = torch.load(path / "checkpoints" / "step-000002" / "optimizer.pt", weights_only=True)["param_groups"]
    params = list(AutoModelForCausalLM.from_pretrained(tiny_student).parameters())
    assert [(g["weight_decay"], len(g["params"])) for g in groups] == [
        (0.1, sum(p.ndim >= 2 for p in params)), (0.0, sum(p.ndim < 2 for p in params))]
    assert json.loads((path / "run.json").read_text())["warmup_steps"] == 0


def test_linear_schedule_is_transformers_linear_schedule():
    """After warm-up, step by step the same rates as transformers' linear schedule; the warm-up reaches the
    peak one step earlier, because our first step is not spent at learning rate 0."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = get_linear_schedule_with_warmup(opt, num_warmup_steps=20, num_training_steps=100)
    theirs = []
    for _ in range(100):
        theirs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    ours = [get_lr(s, 100, 1.0, 20, "linear") for s in range(1, 101)]
    assert ours[20:] == pytest.approx(theirs[20:])
    assert ours[:20] == pytest.approx(theirs[1:21])
    assert get_lr(100, 100, 1.0, 20, "cosine") == pytest.approx(0.1) and get_lr(5, 100, 1.0, 0, "linear") == 0.96


def test_load_in_4bit_says_what_it_needs_in_one_line(tmp_path, tiny_student, capsys):
    data, ws = _data(tmp_path, 8), tmp_path / "ws"
    base = ["train", "-w", str(ws), "--data", str(data), "--student", str(tiny_student)]
    no_bnb = importlib.util.find_spec("bitsandbytes") is None
    for extra, says in ((["--load-in-4bit"], "a CUDA GPU (torch sees none)"),
                        (["--recipe", "paper", "--load-in-4bit"], "a CUDA GPU (torch sees none)"),
                        (["--load-in-4bit", "--device", "cpu"], "a CUDA device (the run's device is cpu)")):
        assert main([*base, *extra]) == 1
        err = _one_line(capsys)
        assert "--load-in-4bit needs" in err and says in err and "pip install 'rebase-tui[gpu]'" in err, err
        assert ("bitsandbytes (not installed)" in err) == no_bnb
    assert main([*base, "--full", "--load-in-4bit"]) == 1
    assert "cannot be fully fine-tuned" in _one_line(capsys)
    assert not list((ws / "runs").iterdir())


@pytest.mark.parametrize("flags,says", [
    (["--weight-decay", "nan"], "weight decay nan"), (["--lora-dropout", "1"], "LoRA dropout 1.0 is out of range"),
    (["--lora-r", "0"], "LoRA rank 0"), (["--warmup-steps", "-1"], "warm-up steps -1"),
    (["--lr", "nan"], "--lr and --epochs must be positive"), (["--eval-fraction", "1"], "eval fraction 1.0"),
    (["--recipe", "paper", "--epochs", "inf"], "--lr and --epochs must be positive"),
])
def test_bad_training_numbers_are_refused_before_a_run_exists(tmp_path, tiny_student, capsys, flags, says):
    data, ws = _data(tmp_path, 8), tmp_path / "ws"
    assert main(["train", "-w", str(ws), "--data", str(data), "--student", str(tiny_student), *flags]) == 1
    assert says in _one_line(capsys)
    assert not list((ws / "runs").iterdir())


def test_a_run_that_runs_its_student_code_says_so_when_loaded(tmp_path, tiny_student, capsys):
    from engine.workspace import Workspace

    data, ws_path = _data(tmp_path, 16), tmp_path / "ws"
    rows = training_data.read_examples_file(data)
    settings = RunSettings(student=str(tiny_student), method="lora", max_steps=2, batch_size=4, max_length=64,
                           device="cpu", threads=1, trust_remote_code=True)
    with Workspace(ws_path) as ws:
        finished = runs.create_run(ws, rows, settings, source=str(data))
        fresh = runs.create_run(ws, rows, settings, source=str(data))
        plain = runs.create_run(ws, rows, replace(settings, trust_remote_code=False), source=str(data))
    for path in (finished, plain):
        assert list(train(path))[-1].status == "finished"

    def note(path):
        return f"run {path.name} was created with --trust-remote-code"

    assert main(["eval", finished.name, "-w", str(ws_path), "--base", "--limit", "2"]) == 0
    assert capsys.readouterr().err.count(note(finished)) == 1  # once, though the student and its base load
    assert main(["export", "model", finished.name, "-w", str(ws_path), "--out", str(tmp_path / "m"), "--merge"]) == 0
    assert note(finished) in capsys.readouterr().err
    assert main(["train", "-w", str(ws_path), "--resume", fresh.name, "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["status"] == "finished" and note(fresh) in captured.err
    assert main(["eval", plain.name, "-w", str(ws_path), "--limit", "2"]) == 0
    assert "trust-remote-code" not in capsys.readouterr().err

