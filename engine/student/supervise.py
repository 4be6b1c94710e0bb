"""Supervising the training worker from the parent (CLI or TUI): start, follow, stop, detect death.

The worker is ``python -m engine.student.worker RUN_DIR`` in a session of its own (a Ctrl-C in the terminal
reaches only the parent, which then asks the worker to stop gracefully). The parent follows the run by
tailing ``RUN_DIR/events.jsonl`` — the same way whether it started the worker a second ago, re-attaches
after an app restart, or follows a ``--detach`` run — and gets :mod:`engine.student.loop` event dataclasses back.
A worker that dies without a final event (SIGKILL, host OOM killer) is detected through its pid and recorded
as ``failed`` with reason ``killed``; resume continues from its last checkpoint.

API for front ends::

    handle = start(run_dir)                 # launches the worker, returns at once
    for ev in follow(run_dir, handle.offset): ...          # blocking (CLI, thread worker)
    async for ev in afollow(run_dir): ...   # async (TUI); re-attaches to the newest segment by default
    request_stop(run_dir)                   # SIGINT: checkpoint, then a `stopped` event
    stop(run_dir, grace=60)                 # SIGINT, wait, SIGKILL after the grace period
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import engine
from engine.errors import EngineError
from engine.student.runs import TERMINAL, append_event, parse_event_lines

_CHILDREN: dict[int, subprocess.Popen] = {}


@dataclass
class WorkerHandle:
    """A started worker: its pid and the events.jsonl offset where its events begin."""

    run_dir: Path
    pid: int
    offset: int


def start(run_dir: str | Path, python: str | None = None) -> WorkerHandle:
    """Launch the worker on ``run_dir`` (new session, stderr to stderr.log) and return at once."""
    run_dir = Path(run_dir).resolve()
    if worker_alive(run_dir):
        raise EngineError(f"run {run_dir.name} already has a live worker (pid {read_pid(run_dir)})",
                          fix=f"follow it, or stop it with `rebase-tui runs stop {run_dir.name}`")
    events = run_dir / "events.jsonl"
    offset = events.stat().st_size if events.exists() else 0
    env = dict(os.environ)
    root = str(Path(engine.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("HF_HUB_OFFLINE", "1")  # the student was checked to be local; never wait on a network
    with (run_dir / "stderr.log").open("ab") as err:
        proc = subprocess.Popen([python or sys.executable, "-m", "engine.student.worker", str(run_dir)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True, env=env, cwd=str(run_dir))
    _CHILDREN[proc.pid] = proc
    (run_dir / "worker.pid").write_text(str(proc.pid), encoding="utf-8")
    return WorkerHandle(run_dir, proc.pid, offset)


def read_pid(run_dir: Path) -> int | None:
    try:
        return int((Path(run_dir) / "worker.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def worker_alive(run_dir: str | Path) -> bool:
    """Whether the run's worker process is running (not exited, not a zombie, not a reused pid)."""
    pid = read_pid(Path(run_dir))
    if pid is None:
        return False
    proc = _CHILDREN.get(pid)
    if proc is not None:
        return proc.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc_dir = Path(f"/proc/{pid}")
    if proc_dir.exists():
        try:
            stat = (proc_dir / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                return False
            cmd = (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            return "engine.student.worker" in cmd and Path(run_dir).name in cmd
        except OSError:
            return False
    return True


def segment_offset(run_dir: Path) -> int:
    """Byte offset of the newest ``started`` event (the current attempt; resume appends a new segment)."""
    path = Path(run_dir) / "events.jsonl"
    if not path.exists():
        return 0
    offset, pos = 0, 0
    with path.open("rb") as f:
        for line in f:
            if b'"type": "started"' in line:
                offset = pos
            pos += len(line)
    return offset


def record_dead_worker(run_dir: str | Path) -> dict | None:
    """When the current segment has no final event and the worker is gone, append a ``failed`` (killed) one."""
    from engine.student.runs import read_config, summarize

    run_dir = Path(run_dir)
    if worker_alive(run_dir):
        return None
    summary = summarize(run_dir)
    if summary["status"] in TERMINAL:
        return None
    rid = read_config(run_dir)["id"]
    pid = read_pid(run_dir)
    proc = _CHILDREN.get(pid) if pid is not None else None
    code = proc.poll() if proc is not None else None
    if pid is None:
        how = "never started (no worker.pid)"
    elif code is not None and code < 0:
        how = f"was killed by signal {signal.Signals(-code).name}"
    elif code is not None:
        how = f"exited with code {code} before its final event"
    else:
        how = "exited without a final event (killed, or out of host memory)"
    last = _last_stderr_line(run_dir)
    event = {"type": "failed", "time": time.time(), "status": "failed", "step": summary["steps"],
             "reason": "killed",
             "message": f"the training worker of run {rid} {how}" + (f"; its last words: {last}" if last else ""),
             "fix": f"resume from the last checkpoint with `rebase-tui train --resume {rid}`",
             "hints": ["see stderr.log in the run directory", "if the system killed it for memory: lower "
                       "--batch-size or --max-length, or use --lora"],
             "train_loss": summary.get("train_loss"), "eval_loss": summary.get("eval_loss"),
             "elapsed_s": summary.get("seconds", 0.0)}
    append_event(run_dir, event)
    return event


def _last_stderr_line(run_dir: Path) -> str:
    """The last meaningful line of the worker's stderr.log (an exception, usually), or ""."""
    path = Path(run_dir) / "stderr.log"
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - 4000))
            lines = [ln.strip() for ln in f.read().decode(errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [ln for ln in lines if ln and "%|" not in ln and not ln.startswith("warnings.warn")]
    return lines[-1][:300] if lines else ""


class _Tail:
    """Incremental reader of events.jsonl from a byte offset (keeps a torn last line for later)."""

    def __init__(self, run_dir: Path, offset: int) -> None:
        self.path = Path(run_dir) / "events.jsonl"
        self.offset = offset
        self.buf = b""

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        return parse_event_lines(lines)


def _step(tail: _Tail, run_dir: Path, state: dict) -> tuple[list, bool]:
    """One poll: ``(events, ended)``; synthesizes the killed event when the worker died silently."""
    from engine.student.loop import event_from_json

    objs = tail.read()
    ended = False
    events = []
    for obj in objs:
        try:
            events.append(event_from_json(obj))
        except (TypeError, ValueError):
            continue
        if obj["type"] in TERMINAL:
            ended = True
            break
    if ended or objs:
        state["idle_since"] = None
        return events, ended
    now = time.monotonic()
    if state.get("idle_since") is None:
        state["idle_since"] = now
    if now - state["idle_since"] >= state["liveness_s"] and not worker_alive(run_dir):
        more = tail.read()  # the last lines may have landed just before the exit
        for obj in more:
            try:
                events.append(event_from_json(obj))
            except (TypeError, ValueError):
                continue
            if obj["type"] in TERMINAL:
                return events, True
        dead = record_dead_worker(run_dir)
        if dead is not None:
            tail.read()
            events.append(event_from_json(dead))
        return events, True
    return events, False


def follow(run_dir: str | Path, offset: int | None = None, poll_s: float = 0.2) -> Iterator:
    """Yield the run's events from ``offset`` (default: the current segment) until its final event."""
    run_dir = Path(run_dir)
    tail = _Tail(run_dir, segment_offset(run_dir) if offset is None else offset)
    state: dict = {"idle_since": None, "liveness_s": 1.0}
    while True:
        events, ended = _step(tail, run_dir, state)
        yield from events
        if ended:
            return
        time.sleep(poll_s)


async def afollow(run_dir: str | Path, offset: int | None = None, poll_s: float = 0.25) -> AsyncIterator:
    """Async :func:`follow` for the TUI (never blocks the loop for more than a small file read)."""
    run_dir = Path(run_dir)
    tail = _Tail(run_dir, segment_offset(run_dir) if offset is None else offset)
    state: dict = {"idle_since": None, "liveness_s": 1.0}
    while True:
        events, ended = _step(tail, run_dir, state)
        for ev in events:
            yield ev
        if ended:
            return
        await asyncio.sleep(poll_s)


def request_stop(run_dir: str | Path) -> bool:
    """Ask the worker to stop gracefully (SIGINT: checkpoint, then ``stopped``); False when none is alive."""
    run_dir = Path(run_dir)
    pid = read_pid(run_dir)
    if pid is None or not worker_alive(run_dir):
        return False
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        return False
    return True


def stop(run_dir: str | Path, grace_s: float = 60.0) -> str:
    """Stop the worker: SIGINT, wait up to ``grace_s``, then SIGKILL. Returns how it ended.

    ``"stopped"`` (graceful), ``"killed"`` (grace period ran out) or ``"not running"``.
    """
    run_dir = Path(run_dir)
    if not request_stop(run_dir):
        return "not running"
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not worker_alive(run_dir):
            return "stopped"
        time.sleep(0.1)
    pid = read_pid(run_dir)
    if pid is not None:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc = _CHILDREN.get(pid)
        if proc is not None:
            proc.wait(timeout=10)
    record_dead_worker(run_dir)
    return "killed"


def wait(handle: WorkerHandle, timeout: float | None = None) -> int | None:
    """Reap a worker this process started (its exit code), or None if still running at the timeout."""
    proc = _CHILDREN.get(handle.pid)
    if proc is None:
        return None
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
