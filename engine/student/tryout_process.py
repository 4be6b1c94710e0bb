"""Trying a run from a front end: its student and base kept warm in a child process
(:mod:`engine.student.tryout_server`), the teacher asked beside them, every answer streamed as events.

:class:`TryProcess` starts the child and turns its JSON lines into events (:class:`TryLoaded`,
:class:`TryText`, :class:`TryAnswer`, :class:`TryError`); :meth:`TryProcess.ask` sends an input. The
teacher's side, :func:`teacher_answer`, is an async generator of the same events (``which`` = ``teacher``):
one few-shot call through the configured backend, cached like every teacher call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from engine.errors import EngineError
from engine.events import Event

if TYPE_CHECKING:
    from engine.tasks import Task
    from engine.teacher.client import TeacherSettings
    from engine.workspace import Workspace

#: Seconds between two TryText events of the teacher's streamed answer.
TEXT_INTERVAL_S = 0.1


@dataclass(frozen=True, slots=True)
class TryLoaded(Event):
    """A model is loaded (``which``: student or base) and how long it took."""

    which: str
    seconds: float
    device: str


@dataclass(frozen=True, slots=True)
class TryText(Event):
    """The answer of ``which`` to request ``request`` so far."""

    request: int
    which: str
    text: str


@dataclass(frozen=True, slots=True)
class TryAnswer(Event):
    """The whole answer of ``which`` to request ``request``: its text, the extracted answer, whether it is right
    (None without a reference, or for a metric of whole sets), the time, and notes (cut input, cached call)."""

    request: int
    which: str
    text: str
    answer: str
    correct: bool | None
    seconds: float
    first_token_s: float | None = None
    truncated: bool = False
    cached: bool = False


@dataclass(frozen=True, slots=True)
class TryError(Event):
    """``which`` could not answer request ``request`` (None: the process itself failed)."""

    request: int | None
    which: str
    message: str


class TryProcess:
    """The child process serving a run's student and base; :meth:`events` follows it until it exits."""

    def __init__(self, proc: asyncio.subprocess.Process, stderr: IO[bytes], run: str) -> None:
        self.proc = proc
        self.run = run
        self._stderr = stderr
        self._next = 0
        self._closing = False
        self._failed = False
        """True once the child said why it could not serve (its exit then says nothing more)."""

    @classmethod
    async def start(cls, run_dir: Path, *, device: str = "auto", base: bool = True) -> TryProcess:
        """Start the child for run ``run_dir`` (EngineError for a run with no trained weights yet)."""
        run_dir = Path(run_dir)
        if not (run_dir / "run.json").exists():
            raise EngineError(f"{run_dir} is not a training run", fix="open a run from the runs table")
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 - kept open for the process's lifetime
        args = [sys.executable, "-m", "engine.student.tryout_server", str(run_dir), "--device", device]
        proc = await asyncio.create_subprocess_exec(*args, *(() if base else ("--no-base",)),
                                                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                    stderr=stderr, limit=16 * 1024 * 1024)
        return cls(proc, stderr, run_dir.name)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def ask(self, text: str, *, max_new_tokens: int = 256, which: Sequence[str] = ("student", "base"),
            references: Sequence[str] = (), layout: str = "jsonl") -> int:
        """Send one input; its answers arrive as events of the returned request id."""
        assert self.proc.stdin is not None
        self._next += 1
        self.proc.stdin.write((json.dumps({"id": self._next, "text": text, "max_new_tokens": max_new_tokens,
                                           "which": list(which), "references": list(references),
                                           "layout": layout}, ensure_ascii=False) + "\n").encode())
        return self._next

    async def events(self) -> AsyncGenerator[Event, None]:
        """The child's events until it exits; a failure of the process itself ends with a TryError."""
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            event = _event(doc)
            if isinstance(event, TryError) and event.request is None:
                self._failed = True
            if event is not None:
                yield event
        code = await self.proc.wait()
        if code != 0 and not self._closing and not self._failed:
            yield TryError(None, "", f"the try process of run {self.run} exited ({code}): {self._last_error()}")

    def _last_error(self) -> str:
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - 4000))
        lines = [ln for ln in self._stderr.read().decode("utf-8", "replace").splitlines() if ln.strip()]
        return lines[-1].strip() if lines else "no message"

    async def close(self, grace_s: float = 5.0) -> None:
        """End the child (end of its input; killed after ``grace_s`` while it still generates)."""
        self._closing = True
        if self.proc.returncode is None:
            if self.proc.stdin is not None and not self.proc.stdin.is_closing():
                self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), grace_s)
            except TimeoutError:
                self.kill()
                await self.proc.wait()
        self._stderr.close()

    def kill(self) -> None:
        """End the child at once (from any thread)."""
        self._closing = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)


def _event(doc: dict[str, Any]) -> Event | None:
    kind, which = doc.get("type"), str(doc.get("which") or "")
    rid = int(doc["id"]) if isinstance(doc.get("id"), int) else -1
    if kind == "loaded":
        return TryLoaded(which, float(doc.get("seconds") or 0.0), str(doc.get("device") or ""))
    if kind == "text":
        return TryText(rid, which, str(doc.get("text") or ""))
    if kind == "answer":
        return TryAnswer(rid, which, str(doc.get("text") or ""), str(doc.get("answer") or ""),
                         doc.get("correct"), float(doc.get("seconds") or 0.0), doc.get("first_token_s"),
                         bool(doc.get("truncated")))
    if kind == "error":
        return TryError(rid if doc.get("id") is not None else None, which, str(doc.get("message") or ""))
    return None


async def teacher_answer(ws: Workspace, settings: TeacherSettings, task: Task, text: str, request: int, *,
                         references: Sequence[str] = (), layout: str = "jsonl") -> AsyncGenerator[Event, None]:
    """The teacher's answer to ``text`` (few-shot from the task's demonstrations, cached), streamed as TryText,
    then TryAnswer (or TryError: the host or the model is not there, the call failed)."""
    from engine.student.tryout import answer_of, judge
    from engine.teacher.ask import Teacher
    from engine.teacher.solve import answer_one

    try:
        teacher = await Teacher.connect(settings)
    except EngineError as exc:
        yield TryError(request, "teacher", str(exc))
        return
    so_far: asyncio.Queue[str] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    last = [0.0]

    def on_text(get: Any) -> None:
        if loop.time() - last[0] >= TEXT_INTERVAL_S:
            last[0] = loop.time()
            so_far.put_nowait(get())

    call = asyncio.ensure_future(answer_one(ws, teacher, task, text, on_text))
    try:
        while not call.done():
            waiting = asyncio.ensure_future(so_far.get())
            await asyncio.wait([call, waiting], return_when=asyncio.FIRST_COMPLETED)
            if waiting.done():
                yield TryText(request, "teacher", waiting.result())
            else:
                waiting.cancel()
        reply = call.result()
    finally:
        if not call.done():  # closed early (the view went away): the call is not waited for
            call.cancel()
            with contextlib.suppress(BaseException):
                await call
        await teacher.close()
    if reply.error is not None:
        yield TryError(request, "teacher", reply.error)
        return
    correct = await asyncio.to_thread(judge, task, layout, tuple(references), reply.text)
    yield TryAnswer(request, "teacher", reply.text, answer_of(task, reply.text), correct, reply.seconds,
                    cached=reply.cached)
