"""Export: accepted examples with provenance in every format; models that reload, generate and carry a
Modelfile whose template reproduces the training prompt."""

from __future__ import annotations

import csv
import json

import pytest

from engine.student import runs, training_data
from engine.student.export import export_model, parse_modelfile
from engine.student.formatting import PromptFormat, prompt_text, render_ollama_template
from engine.student.loop import train
from engine.student.run_config import RunSettings
from rebase_tui.cli import main
from tests.conftest import corpus


def _settings(student, **kw):
    s = dict(student=str(student), method="auto", epochs=1.0, max_steps=12, lr=5e-3, batch_size=8, grad_accum=1,
             max_length=96, eval_every=12, device="cpu", seed=0, format="auto", threads=1, eval_fraction=0.1)
    s.update(kw)
    return RunSettings(**s)


@pytest.fixture(scope="module")
def ws_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("exportws") / "ws"


@pytest.fixture(scope="module")
def finished_runs(ws_dir, tiny_student, tiny_chat_student):
    from engine.tasks import read_task_file
    from engine.workspace import Workspace

    task = read_task_file(corpus("tasks", "boolean_expressions.json"))
    rows = training_data.read_examples_file(corpus("teacher_outputs", "boolean_expressions.jsonl"))[:100]
    out = {}
    with Workspace(ws_dir) as ws:
        for key, student, method in (("full", tiny_student, "full"), ("lora", tiny_chat_student, "lora")):
            path = runs.create_run(ws, rows, _settings(student, method=method), task=task)
            assert list(train(path))[-1].status == "finished"
            out[key] = path
    return out


def _check_modelfile(folder, tokenizer_dir):
    from transformers import AutoTokenizer

    mf = parse_modelfile((folder / "Modelfile").read_text())
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    fmt = PromptFormat.from_json(json.loads((folder / "format.json").read_text()))
    assert mf["SYSTEM"] == fmt.system and fmt.system.startswith("Evaluate the truth value of a random Boolean")
    for inp in ("True and not False is", "not ( ( not False ) ) is"):
        assert render_ollama_template(mf["TEMPLATE"], mf["SYSTEM"], inp) == prompt_text(fmt, tok, inp)
    assert tok.eos_token in mf["stop"]
    return mf, fmt, tok


def test_export_full_model_reloads_generates_and_has_a_matching_modelfile(finished_runs, tmp_path):
    from transformers import AutoModelForCausalLM

    from engine.student.evaluate import generate

    out = tmp_path / "full"
    result = export_model(finished_runs["full"], out, name="bool-student")
    assert result.kind == "full" and result.ollama_create == f"ollama create bool-student -f {out / 'Modelfile'}"
    mf, fmt, tok = _check_modelfile(out, out)
    assert mf["FROM"] == "." and "ADAPTER" not in mf
    assert "{{ .Prompt }}" in mf["TEMPLATE"] and fmt.kind == "base"
    model = AutoModelForCausalLM.from_pretrained(out)
    texts = generate(model, tok, fmt, ["True and False is"], "cpu", max_new_tokens=5)
    assert len(texts) == 1 and isinstance(texts[0], str)
    with pytest.raises(Exception, match="already exists"):
        export_model(finished_runs["full"], out)


def test_export_lora_adapter_and_merge_agree(finished_runs, tmp_path, tiny_chat_student):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    adapter = export_model(finished_runs["lora"], tmp_path / "adapter")
    assert adapter.kind == "adapter"
    mf, fmt, tok = _check_modelfile(tmp_path / "adapter", tmp_path / "adapter")
    assert mf["FROM"] == str(tiny_chat_student.resolve()) and mf["ADAPTER"] == "."
    assert fmt.kind == "chat" and "<|im_start|>assistant\n" in mf["TEMPLATE"]
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()

    merged = export_model(finished_runs["lora"], tmp_path / "merged", merge=True)
    assert merged.kind == "merged"
    _check_modelfile(tmp_path / "merged", tmp_path / "merged")
    assert parse_modelfile((tmp_path / "merged" / "Modelfile").read_text())["FROM"] == "."
    assert not (tmp_path / "merged" / "adapter_config.json").exists()
    ids = torch.tensor([tok("True and False is")["input_ids"]])
    with torch.no_grad():
        m1 = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_chat_student),
                                       str(tmp_path / "adapter")).eval()
        m2 = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
        base = AutoModelForCausalLM.from_pretrained(tiny_chat_student).eval()
        a, b, c = m1(ids).logits, m2(ids).logits, base(ids).logits
    assert torch.allclose(a, b, atol=1e-4)
    assert not torch.allclose(a, c, atol=1e-4)  # the adapter changed something


def test_export_model_cli_prints_the_ollama_line(finished_runs, ws_dir, tmp_path, capsys):
    run_id = finished_runs["full"].name
    assert main(["export", "model", run_id, "-w", str(ws_dir), "--out", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert "ollama create" in out and str(tmp_path / "m" / "Modelfile") in out


# -- dataset export -------------------------------------------------------------------------
def _seed_examples(ws):
    """A dataset, a config, two rows and three examples (two accepted) written through SQL."""
    from engine.tasks import add_task, read_task_file

    add_task(ws, read_task_file(corpus("tasks", "boolean_expressions.json")))
    with ws.store.transaction() as cur:
        cur.execute("insert into datasets (id, name, source_path, description, status) values "
                    "(1, 'org/logic', '/data/org__logic', 'logic puzzles', 'ready')")
        cur.execute("insert into configs (id, dataset, name, split, rows_total, status) values "
                    "(1, 1, 'default', 'train', 10, 'ready')")
        cur.execute("insert into rows (id, dataset, config, row_id, data) values (10, 1, 1, 7, '{}'), "
                    "(11, 1, 1, 8, '{}')")
        for row, inp, out, reasoning, status in (
                (10, "True and False is", "False", "True and False is False.", "accepted"),
                (11, "not True is", "The answer is False.", None, "accepted"),
                (11, "junk", "junk", None, "rejected")):
            cur.execute("insert into examples (task, \"row\", input, output, reasoning, status, teacher_model) "
                        "values ('boolean_expressions', ?, ?, ?, ?, ?, 'llama3.1:8b')",
                        [row, inp, out, reasoning, status])


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet", "hf", "chat", "alpaca"])
def test_export_dataset_formats_keep_provenance(workspace, tmp_path, fmt):
    from engine.tasks import get_task

    _seed_examples(workspace)
    task = get_task(workspace, "boolean_expressions")
    out = tmp_path / ("hf" if fmt == "hf" else f"data.{fmt if fmt in ('csv', 'parquet') else 'jsonl'}")
    result = training_data.export_dataset(workspace, task, fmt, out)
    assert result.rows == 2
    if fmt in ("jsonl", "chat", "alpaca"):
        rows = [json.loads(x) for x in out.read_text().splitlines()]
    elif fmt == "csv":
        rows = list(csv.DictReader(out.open()))
    else:
        import pyarrow.parquet as pq

        rows = pq.read_table(out / "data" / "train-00000-of-00001.parquet" if fmt == "hf" else out).to_pylist()
    assert [str(r["row_id"]) for r in rows] == ["7", "8"]
    assert {r["source_dataset"] for r in rows} == {"org/logic"} and {r["teacher_model"] for r in rows} == {"llama3.1:8b"}
    assert {r["config"] for r in rows} == {"default"}
    if fmt == "chat":
        assert [m["role"] for m in rows[0]["messages"]] == ["system", "user", "assistant"]
        assert rows[0]["messages"][0]["content"].startswith("Evaluate the truth value")
        assert rows[0]["messages"][2]["content"] == "True and False is False. So the answer is False."
    elif fmt == "alpaca":
        assert rows[0]["instruction"].startswith("Evaluate the truth value") and rows[1]["output"] == "The answer is False."
    else:
        assert rows[0]["output"] == "True and False is False. So the answer is False."
    if fmt == "hf":
        assert "data_files" in (out / "README.md").read_text()


def test_export_dataset_cli_and_empty_task(tmp_path, capsys):
    from engine.workspace import Workspace

    ws_path = tmp_path / "ws"
    with Workspace(ws_path) as ws:
        _seed_examples(ws)
    assert main(["export", "dataset", "boolean_expressions", "-w", str(ws_path), "--format", "alpaca",
                 "--out", str(tmp_path / "a.jsonl"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 2
    task_file = corpus("tasks", "mnli.json")
    assert main(["export", "dataset", str(task_file), "-w", str(ws_path), "--out", str(tmp_path / "b.jsonl")]) == 1
    assert "no accepted examples" in capsys.readouterr().err


def test_training_from_accepted_examples_uses_the_task(tmp_path, tiny_student, capsys):
    from engine.workspace import Workspace

    ws_path = tmp_path / "ws"
    with Workspace(ws_path) as ws:
        _seed_examples(ws)
        rows = training_data.accepted_examples(ws, "boolean_expressions")
    assert [r["output"] for r in rows] == ["True and False is False. So the answer is False.", "The answer is False."]
    assert main(["train", "boolean_expressions", "-w", str(ws_path), "--student", str(tiny_student),
                 "--max-steps", "2", "--batch-size", "2", "--max-length", "64", "--threads", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "finished" and result["steps"] == 2
    cfg = json.loads((ws_path / "runs" / result["run"] / "run.json").read_text())
    assert cfg["task"] == "boolean_expressions" and cfg["instruction"].startswith("Evaluate the truth value")
    assert cfg["data"]["train"] + cfg["data"]["eval"] == 2


# -- where exports may go -------------------------------------------------------------------
def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def test_export_dataset_never_writes_over_the_workspace_own_files(tmp_path, capsys):
    from engine.workspace import Workspace

    ws_path = tmp_path / "ws"
    with Workspace(ws_path) as ws:
        _seed_examples(ws)
        ws.set_setting("student.lr", 0.001)
    config = (ws_path / "config.toml").read_text()
    targets = [("jsonl", ws_path / "rebase.duckdb"), ("csv", ws_path / "config.toml"),
               ("jsonl", ws_path / "index" / "x.jsonl"), ("parquet", ws_path / "runs"),
               ("hf", ws_path / "runs" / "new"), ("hf", ws_path), ("hf", tmp_path)]
    for fmt, target in targets:
        assert main(["export", "dataset", "boolean_expressions", "-w", str(ws_path), "--format", fmt,
                     "--out", str(target), "--force"]) == 1, target
        err = _one_line(capsys)
        assert str(target) in err and ("workspace's own" in err or "holds the workspace" in err), err
    assert (ws_path / "config.toml").read_text() == config
    assert _listing(ws_path / "index") == [] and _listing(ws_path / "runs") == []
    with Workspace(ws_path) as ws:  # the store still opens and holds its examples
        assert len(training_data.accepted_examples(ws, "boolean_expressions")) == 2
    # the workspace's exports/ folder is where the app writes; any other name beside the store is fine too
    assert main(["export", "dataset", "boolean_expressions", "-w", str(ws_path),
                 "--out", str(ws_path / "exports" / "b.jsonl")]) == 0


def test_export_dataset_replaces_only_with_force_and_leaves_no_temporary(tmp_path, capsys):
    from engine.workspace import Workspace

    ws_path = tmp_path / "ws"
    with Workspace(ws_path) as ws:
        _seed_examples(ws)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "a.jsonl"
    out.write_text("keep me\n")
    args = ["export", "dataset", "boolean_expressions", "-w", str(ws_path), "--out", str(out)]
    assert main(args) == 1
    assert "already exists" in _one_line(capsys) and out.read_text() == "keep me\n"
    assert main([*args, "--force", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 2
    assert len(out.read_text().splitlines()) == 2 and _listing(out_dir) == ["a.jsonl"]
    # a folder export: an earlier one is replaced with --force, a folder of something else never is
    hf = ["export", "dataset", "boolean_expressions", "-w", str(ws_path), "--format", "hf", "--out"]
    assert main([*hf, str(out_dir / "hf")]) == 0
    assert main([*hf, str(out_dir / "hf")]) == 1 and "already exists" in _one_line(capsys)
    assert main([*hf, str(out_dir / "hf"), "--force"]) == 0
    assert _listing(out_dir / "hf") == ["README.md", "data"] and _listing(out_dir) == ["a.jsonl", "hf"]
    mine = out_dir / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    assert main([*hf, str(mine), "--force"]) == 1 and "not an earlier export" in _one_line(capsys)
    assert _listing(mine) == ["notes.txt"] and _listing(out_dir) == ["a.jsonl", "hf", "mine"]


@pytest.mark.parametrize("case", ["folder for a file", "under a file", "file for a folder", "empty", "device",
                                  "name too long", "cannot be created"])
def test_bad_out_paths_get_one_line(tmp_path, capsys, case):
    from engine.workspace import Workspace

    ws_path = tmp_path / "ws"
    with Workspace(ws_path) as ws:
        _seed_examples(ws)
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "a-folder").mkdir()
    fmt, out, says = {"folder for a file": ("jsonl", tmp_path / "a-folder", "is a folder"),
                      "under a file": ("jsonl", tmp_path / "a-file" / "x.jsonl", "is a file, not a folder"),
                      "file for a folder": ("hf", tmp_path / "a-file", "is a file"),
                      "empty": ("jsonl", "", "is empty"),
                      "device": ("jsonl", "/dev/null", "is not a regular file"),
                      "name too long": ("jsonl", tmp_path / ("x" * 300 + ".jsonl"), "File name too long"),
                      "cannot be created": ("jsonl", "/proc/self/x.jsonl", "cannot write")}[case]
    before = _listing(tmp_path)
    assert main(["export", "dataset", "boolean_expressions", "-w", str(ws_path), "--format", fmt,
                 "--out", str(out), "--force"]) == 1
    assert says in _one_line(capsys)
    assert _listing(tmp_path) == before and _listing(tmp_path / "a-folder") == []
    assert (tmp_path / "a-file").read_text() == "x"


def test_a_failed_write_keeps_the_old_export_and_no_temporary(tmp_path):
    from engine.student.outputs import atomic_file, atomic_folder

    out = tmp_path / "a.jsonl"
    out.write_text("old")
    with pytest.raises(RuntimeError), atomic_file(out) as tmp:
        tmp.write_text("half written")
        raise RuntimeError("the writer failed")
    assert out.read_text() == "old" and _listing(tmp_path) == ["a.jsonl"]
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "README.md").write_text("old card")
    with pytest.raises(KeyboardInterrupt), atomic_folder(folder) as tmp:
        (tmp / "README.md").write_text("new card")
        raise KeyboardInterrupt
    assert (folder / "README.md").read_text() == "old card" and _listing(tmp_path) == ["a.jsonl", "hf"]


def test_export_model_out_rules(finished_runs, ws_dir, tmp_path, capsys):
    run = finished_runs["full"]
    before = _listing(run)
    for bad in (run / "export", ws_dir / "rebase.duckdb", ws_dir / "index", ws_dir / "runs", ws_dir):
        assert main(["export", "model", run.name, "-w", str(ws_dir), "--out", str(bad), "--force"]) == 1, bad
        assert str(bad) in _one_line(capsys)
    assert _listing(run) == before and (ws_dir / "rebase.duckdb").is_file()
    out = tmp_path / "m"
    args = ["export", "model", run.name, "-w", str(ws_dir), "--out", str(out)]
    assert main(args) == 0
    first = (out / "Modelfile").stat().st_mtime_ns
    assert main(args) == 1 and "already exists" in _one_line(capsys)
    assert main([*args, "--force"]) == 0 and (out / "Modelfile").stat().st_mtime_ns != first
    assert _listing(tmp_path) == ["m"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "weights.bin").write_text("not an export")
    assert main(["export", "model", run.name, "-w", str(ws_dir), "--out", str(mine), "--force"]) == 1
    assert "not an earlier export" in _one_line(capsys) and _listing(mine) == ["weights.bin"]


def test_a_failing_model_export_leaves_nothing(ws_dir, tiny_student, tmp_path):
    """The Modelfile cannot quote a task text holding three double quotes: the export fails after the weights
    were copied, and neither the folder nor its temporary remains."""
    from engine.errors import EngineError
    from engine.tasks import validate
    from engine.workspace import Workspace

    task = validate({"name": "quotes", "instruction": 'Answer with """yes""" or no.',
                     "examples": [{"input": "True is", "output": "True"}]})
    rows = training_data.read_examples_file(corpus("teacher_outputs", "boolean_expressions.jsonl"))[:8]
    with Workspace(ws_dir) as ws:
        path = runs.create_run(ws, rows, _settings(tiny_student, method="full", max_steps=1, eval_every=1),
                               task=task)
    assert list(train(path))[-1].status == "finished"
    with pytest.raises(EngineError, match="three double quotes"):
        export_model(path, tmp_path / "q")
    assert _listing(tmp_path) == []
