"""`rebase-tui experiment`: the committed tiny spec (two BIG-Bench-Hard-style tasks, every method) run end to end
on a real ingested datastore with the Ollama stand-in and a tiny student — SIGKILLed while transforming, and
again while training (its worker too), then resumed with exact teacher-call counts and a complete table; and
the spec's errors, one line each."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.errors import EngineError
from engine.experiments.results import list_experiments, load_results
from engine.experiments.spec import SpecError, read_spec
from engine.workspace import Workspace
from rebase_tui.cli import main
from tests.conftest import REPO, corpus

TASKS = ("boolean_expressions", "web_of_lies")
METHODS = ("base", "synthesize", "rebase", "teacher")
EXAMPLES, TEST_ITEMS = 6, 5


def _wait(cond, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the experiment exited early ({proc.returncode}) waiting for {what}: "
                                 f"{proc.stderr.read().decode() if proc.stderr else ''}")
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _state(ws: Path) -> dict:
    try:
        return json.loads((ws / "experiments" / "tiny" / "state.json").read_text())["stages"]
    except (OSError, ValueError):
        return {}


def _first_run_started(ws: Path) -> bool:
    entry = _state(ws).get("train/boolean_expressions/synthesize")
    if not entry:
        return False
    events = ws / "runs" / entry["run"] / "events.jsonl"
    return events.exists() and b'"type": "started"' in events.read_bytes()


def test_tiny_experiment_killed_twice_then_complete(small_datastore, tiny_student, standin_factory, tmp_path):
    ws = small_datastore
    srv = standin_factory(num_parallel=2)
    env = {**os.environ, "OLLAMA_HOST": srv.url, "REBASE_STUDENT": str(tiny_student)}
    args = [sys.executable, "-m", "rebase_tui", "experiment", str(corpus("experiments", "tiny.toml")), "--json",
            "-w", str(ws)]

    # 1. killed while transforming: 3 calls of the first data stage stored, both slots waiting at the hold
    srv.hold_after(3)
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, env=env)
    try:
        _wait(lambda: srv.chat_completed >= 3 and srv.waiting == 2, 180, "the transform to stall", proc)
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    srv.release()
    _wait(lambda: srv.dropped == 2, 10, "the abandoned calls to drop")
    assert srv.chat_completed == 3

    # 2. killed while training, the worker with it (a machine that went down)
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, env=env)
    try:
        _wait(lambda: _first_run_started(ws), 300, "the first training run to start", proc)
    finally:
        run = _state(ws)["train/boolean_expressions/synthesize"]["run"]
        pid = int((ws / "runs" / run / "worker.pid").read_text())
        os.killpg(pid, signal.SIGKILL)
        proc.kill()
        proc.communicate(timeout=30)
    assert b'"type": "finished"' not in (ws / "runs" / run / "events.jsonl").read_bytes()

    # 3. resumed to the end
    done = subprocess.run(args, capture_output=True, text=True, timeout=900, cwd=REPO, env=env)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    expected_calls = len(TASKS) * (EXAMPLES + EXAMPLES + TEST_ITEMS)
    assert srv.chat_completed == expected_calls, "every teacher call was made exactly once across the kills"
    assert doc["complete"] and doc["name"] == "tiny"
    rows = {(r["task"], r["method"]): r for r in doc["rows"]}
    assert set(rows) == {(t, m) for t in TASKS for m in METHODS}
    for (_task, method), r in rows.items():
        assert r["metric"] == "exact" and 0 <= r["ci95"][0] <= r["value"] <= r["ci95"][1] <= 1
        assert r["teacher_calls"] == {"base": 0, "teacher": TEST_ITEMS}.get(method, EXAMPLES)
        assert (r["n_train"] > 0) == (method in ("synthesize", "rebase")) and r["n_train"] <= EXAMPLES
        assert r["seconds"] > 0
    with Workspace(ws) as w, w.store.cursor() as cur:
        assert cur.execute("select count(*) from teacher_calls where status = 'ok'").fetchall() == [(expected_calls,)]
        assert dict(cur.execute("select method, count(*) from examples group by 1").fetchall()) == \
            {"synthesize": 2 * EXAMPLES, "rebase": 2 * EXAMPLES}
        runs = sorted(p.name for p in w.runs_dir.iterdir())
        assert len(runs) == 4, "one run per task and data method: the killed one was resumed, not redone"
        resumed = (w.runs_dir / run / "events.jsonl").read_text()
        assert resumed.count('"type": "started"') == 2 and '"type": "finished"' in resumed
        table = (ws / "experiments" / "tiny" / "results.md").read_text()
        assert "…" not in table and "| task | metric | base | synthesize | rebase | teacher |" in table
        assert all(f"| {t} | exact |" in table for t in TASKS)
        (info,) = list_experiments(w)
        assert (info.name, info.values, info.expected, info.complete) == ("tiny", 8, 8, True)
        assert load_results(w, "tiny").to_json() == doc

    # 4. once more: nothing to do, nothing asked, nothing trained
    requests = srv.chat_requests
    again = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == doc
    assert srv.chat_requests == requests and sorted(p.name for p in (ws / "runs").iterdir()) == runs


def _spec(tmp_path: Path, text: str) -> Path:
    (tmp_path / "test.json").write_text('{"examples": [{"input": "a", "target": "b"}]}', encoding="utf-8")
    path = tmp_path / "exp.toml"
    path.write_text(text, encoding="utf-8")
    return path


GOOD = '''name = "x"
methods = ["base", "rebase"]
[[tasks]]
task = "mnli"
test = "test.json"
examples = 4
'''


@pytest.mark.parametrize(("text", "lines"), [
    ('name = "x"\nmethods = [\n', ["exp.toml: not valid TOML"]),
    ('name = "a b"\nmethods = ["base", "teacher", "rebasee", "teacher"]\ncolour = 1\n',
     ["exp.toml: unknown key 'colour' (allowed: name, methods, rounds, teacher, student, eval, tasks)",
      "exp.toml: name must be letters, digits, '_', '-' or '.' (it names a folder), got 'a b'",
      "exp.toml: methods: 'rebasee' is not one of base, synthesize, rebase, teacher",
      "exp.toml: methods: a method is listed twice",
      "exp.toml: methods: base is evaluated through a trained run's untrained student, so it needs synthesize "
      "or rebase too",
      "exp.toml: tasks: give at least one [[tasks]] table with task, test and examples"]),
    (GOOD.replace("examples = 4", 'examples = "ten"') + '[student]\nlr = "fast"\nwarmup = 3\n[teacher]\nprompt = "p"\n'
     '[eval]\nbatch_size = 0\n',
     ["exp.toml: [teacher].prompt must be default or paper, got 'p'",
      "exp.toml: [student].lr must be a number, got 'fast'",
      "exp.toml: [student]: unknown key 'warmup' (allowed: model, recipe, method, device, format, scheduler, "
      "epochs, lr, eval_fraction, weight_decay, lora_dropout, max_steps, batch_size, grad_accum, max_length, "
      "eval_every, seed, threads, max_memory_mb, warmup_steps, lora_r, lora_alpha, trust_remote_code, "
      "gradient_checkpointing, group_by_length, load_in_4bit)",
      "exp.toml: [eval].batch_size must be at least 1, got 0",
      "exp.toml: tasks[1].examples must be a whole number, got 'ten'"]),
    (GOOD.replace('test = "test.json"', 'test = "missing.json"\nmetric = "rouge"'),
     ["exp.toml: tasks[1].metric must be one of exact, squad, accuracy, bleu, chrf (comma-separated for "
      "several), got 'rouge'"]),
    (GOOD.replace('test = "test.json"', 'test = "missing.json"'), ["exp.toml: tasks[1].test: no test file"]),
    (GOOD.replace('task = "mnli"\n', ''), ["exp.toml: tasks[1] lacks task"]),
])
def test_spec_errors_are_one_line_each_naming_the_file(tmp_path, capsys, text, lines):
    path = _spec(tmp_path, text)
    with pytest.raises(SpecError) as err:
        read_spec(path)
    assert len(err.value.problems) == len(lines)
    for got, want in zip(err.value.problems, lines, strict=True):
        assert got.startswith(want), got
    assert main(["experiment", str(path), "-w", str(tmp_path / "w")]) == 1
    out = capsys.readouterr().err.strip().splitlines()
    assert out[0].startswith("rebase-tui: exp.toml: ") and len(out) == len(lines)
    assert out[-1].endswith("— correct those lines of the spec (`rebase-tui experiment --help` lists its keys)")


@pytest.mark.parametrize(("extra", "message"), [
    ("", "exp.toml: tasks[1].task: unknown task 'mnli' (no tasks are stored yet)"),
    ('[teacher]\ntemperature = 5\n', "exp.toml: [teacher] temperature 5 is out of range — use a number from 0 to 2"),
    ('[student]\nmodel = "no-such-student"\n', "exp.toml: [student] student model 'no-such-student' is neither a local folder nor in the Hugging Face cache"),
    ('[student]\nrecipe = "fast"\n', "exp.toml: [student] unknown training recipe 'fast'"),
])
def test_what_only_the_workspace_can_judge_is_checked_before_any_work(tmp_path, tiny_student, extra, message):
    from engine.experiments.runner import check

    path = _spec(tmp_path, GOOD + extra)
    spec = read_spec(path)
    with Workspace(tmp_path / "w") as ws:
        if "tasks[1]" not in message:
            from engine.tasks import add_task, read_task_file

            add_task(ws, read_task_file(corpus("tasks", "mnli.json")))
        if "student" not in extra:
            ws.set_setting("student.model", str(tiny_student))
        with pytest.raises(EngineError) as err:
            check(ws, spec)
    assert str(err.value).startswith(message), str(err.value)
    assert not (tmp_path / "w" / "experiments").exists(), "nothing was started"


def test_the_ready_paper_spec_reads(tmp_path):
    """docs/experiments/paper.toml is a valid spec once its task and test files are in place."""
    import shutil
    import tomllib

    spec = tmp_path / "paper.toml"
    shutil.copy(REPO / "docs" / "experiments" / "paper.toml", spec)
    for table in tomllib.loads(spec.read_text(encoding="utf-8"))["tasks"]:
        for key in ("task", "test"):
            (tmp_path / table[key]).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / table[key]).touch()
    got = read_spec(spec)
    assert got.methods == METHODS and len(got.tasks) == 30 and got.prompt == "paper"
    assert got.student == {"student": "meta-llama/Meta-Llama-3-8B", "recipe": "paper"}
