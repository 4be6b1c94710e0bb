"""The supervised worker through the CLI: detach, SIGKILL mid-run, resume to the same step, graceful stop."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from engine.student import supervise
from engine.student.events import read_events
from rebase_tui.cli import main
from tests.conftest import corpus

KNOWN = {"started", "step", "eval", "checkpoint", "finished", "stopped", "failed"}


def _wait_for(path, pred, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ev in read_events(path):
            if pred(ev):
                return ev
        time.sleep(0.05)
    raise AssertionError(f"timed out; events: {read_events(path)[-3:]}; "
                         f"stderr: {(path / 'stderr.log').read_text()[-2000:]}")


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_kill_resume_and_graceful_stop(tmp_path, tiny_student, capsys):
    ws = str(tmp_path / "ws")
    data = corpus("teacher_outputs", "boolean_expressions.jsonl")
    common = ["-w", ws]
    assert main(["train", *common, "--data", str(data), "--student", str(tiny_student), "--max-steps", "120",
                 "--batch-size", "4", "--max-length", "96", "--eval-every", "10", "--lr", "3e-3",
                 "--threads", "1", "--device", "cpu", "--detach", "--json"]) == 0
    out = _json(capsys)
    run_id, path = out["run"], tmp_path / "ws" / "runs" / out["run"]
    assert out["status"] == "running"

    # SIGKILL once a checkpoint exists: the run ends recorded as failed (killed), with a resume hint
    _wait_for(path, lambda e: e["type"] == "checkpoint")
    os.kill(out["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while supervise.worker_alive(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert main(["runs", *common, "--json"]) == 0
    listed = {r["run"]: r for r in _json(capsys)}
    assert listed[run_id]["status"] == "failed" and listed[run_id]["reason"] == "killed"
    assert "--resume" in listed[run_id]["fix"]
    killed_at = listed[run_id]["steps"]
    assert 10 <= killed_at < 120

    # resume detached, then stop gracefully: a checkpoint at the stop step, and a `stopped` event
    assert main(["train", *common, "--resume", run_id, "--detach", "--json"]) == 0
    capsys.readouterr()
    _wait_for(path, lambda e: e["type"] == "step" and e["step"] > killed_at + 2)
    assert main(["runs", "stop", run_id, *common, "--json"]) == 0
    stopped = _json(capsys)
    assert stopped["result"] == "stopped" and stopped["status"] == "stopped"
    last = read_events(path)[-1]
    assert last["type"] == "stopped"
    stop_step = last["step"]
    assert killed_at < stop_step < 120
    ckpt = path / "checkpoints" / f"step-{stop_step:06d}"
    assert (ckpt / "state.json").exists()
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(ckpt)  # a usable checkpoint

    # resume detached to the same final step, followed as a restarted TUI would: no process handle, only the
    # run directory, through the async follower (re-attaching at the start of the current attempt)
    import asyncio

    from engine.student.events import RunEnded, RunStarted

    assert main(["train", *common, "--resume", run_id, "--detach", "--json"]) == 0
    pid = _json(capsys)["pid"]
    _wait_for(path, lambda e: e["type"] == "step" and e["step"] > stop_step)
    proc = supervise._CHILDREN.pop(pid)
    try:
        async def collect():
            return [ev async for ev in supervise.afollow(path)]

        followed = asyncio.run(collect())
    finally:
        proc.wait(timeout=30)
    assert isinstance(followed[0], RunStarted) and followed[0].start_step == stop_step
    assert isinstance(followed[-1], RunEnded) and followed[-1].status == "finished" and followed[-1].step == 120
    assert not supervise.worker_alive(path)
    assert main(["runs", *common, "--json"]) == 0
    final = {r["run"]: r for r in _json(capsys)}[run_id]
    assert final["status"] == "finished" and final["steps"] == 120 and final["eval_loss"] is not None
    events = read_events(path)
    assert all(e["type"] in KNOWN for e in events)
    starts = [e for e in events if e["type"] == "started"]
    assert [s["resumed"] for s in starts] == [False, True, True]
    assert starts[2]["start_step"] == stop_step
    # the step events of each attempt go forward, and the last attempt ends at 120
    assert [e["type"] for e in events if e["type"] in ("finished", "stopped", "failed")] == \
        ["failed", "stopped", "finished"]
    with open(path / "events.jsonl", encoding="utf-8") as f:
        for line in f:
            json.loads(line)
    # the summary is in DuckDB
    from engine.workspace import Workspace

    with Workspace(tmp_path / "ws") as w, w.store.cursor() as cur:
        status, summary = cur.execute("select status, summary from runs where id = ?", [run_id]).fetchall()[0]
    assert status == "finished" and json.loads(summary)["steps"] == 120


def test_missing_student_is_refused_before_a_run_exists(tmp_path, capsys):
    data = corpus("teacher_outputs", "boolean_expressions.jsonl")
    code = main(["train", "-w", str(tmp_path / "ws"), "--data", str(data), "--student", str(tmp_path / "nope")])
    assert code == 1
    err = capsys.readouterr().err
    assert "nope" in err and "—" in err
    assert not list((tmp_path / "ws" / "runs").iterdir())


@pytest.mark.slow
def test_cli_out_of_memory_exits_1_with_hints(tmp_path, tiny_student, capsys):
    """A real allocation failure in the worker (--max-memory below what batch 64 needs), through the CLI."""
    data = corpus("teacher_outputs", "squad.jsonl")
    code = main(["train", "-w", str(tmp_path / "ws"), "--data", str(data), "--student", str(tiny_student),
                 "--max-steps", "3", "--batch-size", "64", "--max-length", "256", "--threads", "1",
                 "--max-memory", "64", "--json"])
    captured = capsys.readouterr()
    assert code == 1
    result = json.loads(captured.out)
    assert result["status"] == "failed" and result["reason"] == "oom" and result["steps"] == 0
    assert "out of memory" in result["message"]
    assert "hint: lower --batch-size" in captured.err and "gradient-checkpointing" in captured.err
    from engine.workspace import Workspace

    with Workspace(tmp_path / "ws") as w, w.store.cursor() as cur:
        assert cur.execute("select status from runs").fetchall() == [("failed",)]
