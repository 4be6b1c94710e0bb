"""Supervising the training worker from the parent (CLI or TUI): start, follow, stop, detect death.

The worker is ``python -m engine.student.worker RUN_DIR`` in a session of its own (a Ctrl-C in the terminal
reaches only the parent, which then asks the worker to stop gracefully). The parent follows the run by
tailing ``RUN_DIR/events.jsonl`` — the same way whether it started the worker a second ago, re-attaches
after an app restart, or follows a ``--detach`` run — and gets :mod:`engine.student.events` dataclasses back.
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
from engine.student import worker
from engine.student.events import (
    EVENTS_FILE,
    TERMINAL,
    RunEnded,
    TrainEvent,
    append_event,
    event_from_json,
    parse_event_lines,
)
from engine.student.run_config import read_config
from engine.student.summary import summarize

# The worker is started as ``python -m WORKER_MODULE RUN_DIR`` and recognised by that name in a live
# process's command line (a pid alone may have been reused by another program); taking the name from the
# module itself keeps both in step if it moves.
WORKER_MODULE = worker.__name__

_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


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
    events = run_dir / EVENTS_FILE
    offset = events.stat().st_size if events.exists() else 0
    env = dict(os.environ)
    root = str(Path(engine.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env["HF_HUB_OFFLINE"] = "1"  # the student was checked to be local; never wait on (or talk to) a network
    with (run_dir / "stderr.log").open("ab") as err:
        proc = subprocess.Popen([python or sys.executable, "-m", WORKER_MODULE, str(run_dir)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True, env=env, cwd=str(run_dir))
    _CHILDREN[proc.pid] = proc
    (run_dir / "worker.pid").write_text(str(proc.pid), encoding="utf-8")
    return WorkerHandle(run_dir, proc.pid, offset)


def read_pid(run_dir: Path) -> int | None:
    """The pid the run's worker recorded (None before the first start)."""
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
            return WORKER_MODULE in cmd and Path(run_dir).name in cmd
        except OSError:
            return False
    return True


def segment_offset(run_dir: Path) -> int:
    """Byte offset of the newest ``started`` event (the current attempt; resume appends a new segment)."""
    path = Path(run_dir) / EVENTS_FILE
    if not path.exists():
        return 0
    offset, pos = 0, 0
    with path.open("rb") as f:
        for line in f:
            if b'"type": "started"' in line:
                offset = pos
            pos += len(line)
    return offset


def record_dead_worker(run_dir: str | Path) -> RunEnded | None:
    """When the current segment has no final event and the worker is gone, append a ``failed`` (killed) one."""
    run_dir = Path(run_dir)
    if worker_alive(run_dir):
        return None
    summary = summarize(run_dir)
    if summary.ended:
        return None
    rid = read_config(run_dir).id
    last = _last_stderr_line(run_dir)
    event = RunEnded(
        status="failed", step=summary.steps, reason="killed",
        message=f"the training worker of run {rid} {_how_it_died(run_dir)}"
                + (f"; its last words: {last}" if last else ""),
        fix=f"resume from the last checkpoint with `rebase-tui train --resume {rid}`",
        hints=["see stderr.log in the run directory", "if the system killed it for memory: lower "
               "--batch-size or --max-length, or use --lora"],
        train_loss=summary.train_loss, eval_loss=summary.eval_loss, elapsed_s=summary.seconds)
    append_event(run_dir, event)
    return event


def _how_it_died(run_dir: Path) -> str:
    pid = read_pid(run_dir)
    proc = _CHILDREN.get(pid) if pid is not None else None
    code = proc.poll() if proc is not None else None
    if pid is None:
        return "never started (no worker.pid)"
    if code is not None and code < 0:
        return f"was killed by signal {signal.Signals(-code).name}"
    if code is not None:
        return f"exited with code {code} before its final event"
    return "exited without a final event (killed, or out of host memory)"


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
        self.path = Path(run_dir) / EVENTS_FILE
        self.offset = offset
        self.buf = b""

    def read(self) -> list[dict[str, object]]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        return parse_event_lines(lines)


class _Follower:
    """One poll at a time of a run's events; notices a worker that died without its final event."""

    LIVENESS_S = 1.0  # quiet this long, the worker's pid is checked

    def __init__(self, run_dir: str | Path, offset: int | None) -> None:
        self.run_dir = Path(run_dir)
        self.tail = _Tail(self.run_dir, segment_offset(self.run_dir) if offset is None else offset)
        self.idle_since: float | None = None

    def poll(self) -> tuple[list[TrainEvent], bool]:
        """``(new events, ended)``; synthesizes the killed event when the worker died silently."""
        objs = self.tail.read()
        events, ended = _until_terminal(objs)
        if ended or objs:
            self.idle_since = None
            return events, ended
        now = time.monotonic()
        if self.idle_since is None:
            self.idle_since = now
        if now - self.idle_since < self.LIVENESS_S or worker_alive(self.run_dir):
            return events, False
        more, ended = _until_terminal(self.tail.read())  # the last lines may have landed just before the exit
        events += more
        if not ended:
            dead = record_dead_worker(self.run_dir)
            if dead is not None:
                self.tail.read()
                events.append(dead)
        return events, True


def _until_terminal(objs: list[dict[str, object]]) -> tuple[list[TrainEvent], bool]:
    """The events among ``objs`` up to and including a final one; whether a final one came."""
    events: list[TrainEvent] = []
    for obj in objs:
        try:
            events.append(event_from_json(obj))
        except (TypeError, ValueError):
            continue
        if obj["type"] in TERMINAL:
            return events, True
    return events, False


def follow(run_dir: str | Path, offset: int | None = None, poll_s: float = 0.2) -> Iterator[TrainEvent]:
    """Yield the run's events from ``offset`` (default: the current segment) until its final event."""
    follower = _Follower(run_dir, offset)
    while True:
        events, ended = follower.poll()
        yield from events
        if ended:
            return
        time.sleep(poll_s)


async def afollow(run_dir: str | Path, offset: int | None = None, poll_s: float = 0.25) -> AsyncIterator[TrainEvent]:
    """Async :func:`follow` for the TUI (never blocks the loop for more than a small file read)."""
    follower = _Follower(run_dir, offset)
    while True:
        events, ended = follower.poll()
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
