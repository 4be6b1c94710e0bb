"""In-process training of tiny real students: loss falls, checkpoints are safe, faults end in a recorded state."""

from __future__ import annotations

import json

import pytest

from engine.student import runs, training_data
from engine.student.events import (
    CheckpointSaved,
    EvalMetrics,
    RunEnded,
    RunStarted,
    StepMetrics,
    event_from_json,
)
from engine.student.loop import train
from engine.student.run_config import RunSettings
from engine.student.schedule import epoch_batches, get_lr, padding_stats
from tests.conftest import corpus


def _settings(student, **kw):
    base = dict(student=str(student), method="auto", epochs=1.0, max_steps=40, lr=3e-3, batch_size=8,
                grad_accum=1, max_length=128, eval_every=10, device="cpu", seed=0, format="auto", threads=1,
                eval_fraction=0.1)
    base.update(kw)
    return RunSettings(**base)


def _rows(n=200):
    return training_data.read_examples_file(corpus("teacher_outputs", "boolean_expressions.jsonl"))[:n]


def test_loss_falls_and_events_are_well_formed(workspace, tiny_student):
    path = runs.create_run(workspace, _rows(), _settings(tiny_student), source="bool.jsonl")
    events = list(train(path))
    assert isinstance(events[0], RunStarted) and events[0].method == "full" and events[0].format == "base"
    assert events[0].train_examples == 180 and events[0].eval_examples == 20
    steps = [e for e in events if isinstance(e, StepMetrics)]
    evals = [e for e in events if isinstance(e, EvalMetrics)]
    assert [e.step for e in evals] == [10, 20, 30, 40]
    assert steps[-1].step == 40 and all(a.step < b.step for a, b in zip(steps, steps[1:], strict=False))
    assert steps[0].loss > steps[-1].loss + 1.0, (steps[0].loss, steps[-1].loss)
    assert evals[-1].eval_loss < evals[0].eval_loss
    assert all(s.tokens_per_s and s.tokens_per_s > 0 for s in steps[1:])
    end = events[-1]
    assert isinstance(end, RunEnded) and end.status == "finished" and end.step == 40
    # every event survives its JSON line
    for ev in events:
        line = json.loads(json.dumps(ev.to_json()))
        assert event_from_json(line) == ev
    # checkpoints: safetensors weights, tensor-only optimizer state, JSON counters; the newest two kept
    ckpts = sorted((path / "checkpoints").iterdir())
    assert [c.name for c in ckpts] == ["step-000030", "step-000040"]
    assert (ckpts[-1] / "model.safetensors").exists()
    assert json.loads((ckpts[-1] / "state.json").read_text())["step"] == 40
    import torch

    torch.load(ckpts[-1] / "optimizer.pt", weights_only=True)
    assert not list(path.rglob("*.bin")) and not list(path.rglob("*.pkl"))
    fmt = json.loads((path / "model" / "format.json").read_text())
    assert fmt["kind"] == "base" and fmt["method"] == "full"
    # a finished run cannot be resumed
    again = list(train(path))
    assert again[-1].status == "failed" and "already finished" in again[-1].message


def test_lora_on_a_llama_chat_student(workspace, tiny_chat_student):
    from engine.tasks import read_task_file

    task = read_task_file(corpus("tasks", "boolean_expressions.json"))
    path = runs.create_run(workspace, _rows(120), _settings(tiny_chat_student, method="lora", max_steps=15,
                                                             lr=1e-2, max_length=96), task=task)
    events = list(train(path))
    start, end = events[0], events[-1]
    assert start.method == "lora" and start.format == "chat" and start.trainable < start.parameters
    assert start.truncated == start.train_examples  # the long BBH demonstrations do not fit 96 tokens
    assert end.status == "finished", end
    adapter = json.loads((path / "model" / "adapter_config.json").read_text())
    assert set(adapter["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                              "down_proj"}
    assert (path / "model" / "adapter_model.safetensors").exists()
    steps = [e for e in events if isinstance(e, StepMetrics)]
    assert steps[-1].loss < steps[0].loss


def test_lora_gpt2_with_gradient_checkpointing_and_accumulation(workspace, tiny_student):
    path = runs.create_run(workspace, _rows(60), _settings(tiny_student, method="lora", max_steps=4, batch_size=4,
                                                            grad_accum=2, max_length=64, eval_every=2,
                                                            gradient_checkpointing=True))
    events = list(train(path))
    assert events[-1].status == "finished" and events[-1].step == 4
    adapter = json.loads((path / "model" / "adapter_config.json").read_text())
    assert set(adapter["target_modules"]) == {"c_attn", "c_proj", "c_fc"} and adapter["fan_in_fan_out"]
    steps = [e for e in events if isinstance(e, StepMetrics)]
    assert steps[-1].epoch == pytest.approx(4 * 2 / 14, abs=1e-3)  # 54 train rows -> 14 micro-batches/epoch


def test_nan_loss_ends_failed_with_hints(workspace, tiny_student):
    path = runs.create_run(workspace, _rows(80), _settings(tiny_student, lr=1e15, max_steps=20, eval_every=5))
    end = list(train(path))[-1]
    assert end.status == "failed" and end.reason == "nan"
    assert "lower --lr" in " ".join(end.hints) and "nan" in end.message.lower()


def test_out_of_memory_ends_failed_with_hints(workspace, tiny_student):
    """A real allocation failure: the memory budget (max_memory_mb) is below what batch 64 x 256 needs."""
    import resource

    before = resource.getrlimit(resource.RLIMIT_AS)
    rows = training_data.read_examples_file(corpus("teacher_outputs", "squad.jsonl"))[:100]
    path = runs.create_run(workspace, rows, _settings(tiny_student, batch_size=64, max_length=256, max_steps=3,
                                                      max_memory_mb=64))
    end = list(train(path))[-1]
    assert resource.getrlimit(resource.RLIMIT_AS) == before  # the cap is lifted when training ends
    assert end.status == "failed" and end.reason == "oom" and end.step == 0
    assert "out of memory" in end.message
    assert any("--batch-size" in h for h in end.hints) and any("gradient-checkpointing" in h for h in end.hints)
    # the same run with room to breathe trains
    ok = runs.create_run(workspace, rows, _settings(tiny_student, batch_size=64, max_length=256, max_steps=1,
                                                    max_memory_mb=4000))
    assert list(train(ok))[-1].status == "finished"


def test_missing_and_incompatible_models_fail_clearly(workspace, tmp_path):
    path = runs.create_run(workspace, _rows(20), _settings(tmp_path / "nope", max_steps=2))
    end = list(train(path))[-1]
    assert end.status == "failed" and end.reason == "model" and "nope" in end.message and end.fix
    bad = tmp_path / "bad-model"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"model_type": "no-such-architecture"}))
    path = runs.create_run(workspace, _rows(20), _settings(bad, max_steps=2))
    end = list(train(path))[-1]
    assert end.status == "failed" and end.reason == "model" and "bad-model" in end.message


def test_closing_the_generator_keeps_a_checkpoint_and_resume_reaches_the_same_step(workspace, tiny_student):
    path = runs.create_run(workspace, _rows(), _settings(tiny_student, max_steps=24, eval_every=100))
    gen = train(path)
    for ev in gen:
        if isinstance(ev, StepMetrics) and ev.step >= 5:
            break
    gen.close()
    saved = json.loads(sorted((path / "checkpoints").iterdir())[-1].joinpath("state.json").read_text())
    assert 5 <= saved["step"] < 24
    events = list(train(path))
    assert events[0].resumed and events[0].start_step == saved["step"]
    assert events[-1].status == "finished" and events[-1].step == 24
    assert any(isinstance(e, CheckpointSaved) and e.step == 24 for e in events)


def test_schedule_and_batching_helpers():
    assert get_lr(1, 100, 1.0, 10) == pytest.approx(0.1)
    assert get_lr(10, 100, 1.0, 10) == pytest.approx(1.0)
    assert get_lr(100, 100, 1.0, 10) == pytest.approx(0.1)
    lengths = [5, 100, 7, 90, 6, 95, 8, 99] * 8
    plain = epoch_batches(lengths, 4, 0, 0, False)
    grouped = epoch_batches(lengths, 4, 0, 0, True)
    assert sorted(i for b in grouped for i in b) == list(range(len(lengths)))
    assert plain == epoch_batches(lengths, 4, 0, 0, False) and plain != epoch_batches(lengths, 4, 0, 1, False)
    assert padding_stats(lengths, grouped) > padding_stats(lengths, plain)


def test_bad_data_file_is_named(tmp_path):
    from engine.errors import EngineError

    f = tmp_path / "d.jsonl"
    f.write_text('{"input": "a", "output": "b"}\n{"input": "a"}\n')
    with pytest.raises(EngineError, match="line 2"):
        training_data.read_examples_file(f)


# run.json as the CLI wrote it before RunConfig existed; and an older one, before LoRA settings and length
# grouping were recorded (what a test or a hand-made run directory holds)
OLD_RUN_JSON = {
    "student": "/models/tiny", "method": "auto", "epochs": 3.0, "max_steps": 4, "lr": 0.0002, "batch_size": 4,
    "grad_accum": 1, "max_length": 64, "eval_every": 1, "device": "cpu", "seed": 0, "format": "auto",
    "threads": 1, "trust_remote_code": False, "gradient_checkpointing": False, "group_by_length": True,
    "eval_fraction": 0.1, "lora": {"r": 16, "alpha": 32, "dropout": 0.05}, "max_memory_mb": 512,
    "id": "20261201-150947-data", "task": "nli", "instruction": "Label the pair.",
    "examples": [{"input": "P: a. H: b.", "output": "neutral"}],
    "data": {"source": "task:nli", "sha256": "7cc9", "train": 36, "eval": 4}, "total_steps": 4,
    "created": 1796137787.3798797,
}


def test_old_run_json_loads_and_shows_the_values_it_trained_with(tmp_path):
    from engine.student.run_config import LoraSettings, RunConfig, read_config

    cfg = RunConfig.from_json(OLD_RUN_JSON)
    written = cfg.to_json()
    assert {k: written[k] for k in OLD_RUN_JSON} == OLD_RUN_JSON  # every key keeps its value
    assert [k for k in written if k in OLD_RUN_JSON] == list(OLD_RUN_JSON)  # and its place
    # the settings added since, with the values the loop used before they were settings (3 % warm-up of 4 steps)
    assert {k: v for k, v in written.items() if k not in OLD_RUN_JSON} == {
        "recipe": "default", "weight_decay": 0.0, "warmup_steps": 1, "scheduler": "cosine", "load_in_4bit": False}
    assert RunConfig.from_json(written) == cfg
    assert cfg.settings.max_memory_mb == 512 and cfg.examples == (("P: a. H: b.", "neutral"),)
    older = {k: v for k, v in OLD_RUN_JSON.items()
             if k not in ("lora", "group_by_length", "gradient_checkpointing", "max_memory_mb")}
    (tmp_path / "run.json").write_text(json.dumps({**older, "total_steps": 400, "a_future_key": 3}))  # ignored
    loaded = read_config(tmp_path)
    assert loaded.settings.lora == LoraSettings() and loaded.settings.group_by_length
    assert "max_memory_mb" not in loaded.to_json() and loaded.eval_every == 1
    assert loaded.settings.warmup_steps == 12 and loaded.settings.scheduler == "cosine"


def test_settings_are_validated_with_a_fix(workspace):
    from engine.errors import EngineError
    from engine.student.run_config import settings_from_config

    with pytest.raises(EngineError, match="no student model") as err:
        settings_from_config(workspace.config)
    assert err.value.fix and "student.model" in err.value.fix
    with pytest.raises(EngineError, match="batch-size must be at least 1"):
        settings_from_config(workspace.config, student="/models/tiny", batch_size=0)
    with pytest.raises(EngineError, match="unknown training method"):
        settings_from_config(workspace.config, student="/models/tiny", method="qlora")
    with pytest.raises(EngineError, match="unknown training recipe 'qlora'") as err:
        settings_from_config(workspace.config, student="/models/tiny", recipe="qlora")
    assert "default, paper" in err.value.fix
    settings = settings_from_config(workspace.config, student="/models/tiny", max_steps=None, lr=1e-3)
    assert settings.lr == 1e-3 and settings.max_steps is None and settings.method == "auto"
