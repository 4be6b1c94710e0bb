"""ReBase stage 4: the teacher rewrites the task's retrieved rows into task examples.

:func:`transform` is an async generator of events over the task's pool (``retrievals`` joined to
``rows``, by rank): :class:`ExampleText` snapshots (the full streamed text so far, throttled per example),
:class:`ExampleDone` per example, :class:`~engine.events.Progress` a few times a second (with the smoothed
examples/s and the ETA), and finally :class:`TransformFinished` with the run's figures. At most
``concurrency`` calls are in flight.

Every call is cached in ``teacher_calls`` under a key of (task, row, prompt hash, model, options) and
written, together with its example, in one transaction as soon as it finishes: a re-run never repeats a
finished call, and killing a run (or closing the generator) loses at most the calls in flight. Calls that
failed for transport reasons after all retries are stored as ``failed`` examples and tried again on the
next run; replies that cannot be used (bad JSON, schema violation, empty, over-long, outside the label set)
are final ``failed`` examples with the raw reply kept.

With ``use_filter`` every new usable example is then put to the teacher once more (the paper's filter
pass: does it fit the task?); a "no" rejects it. A filter call that failed or gave no verdict leaves the
example pending and is asked again on the next filtered run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from functools import partial
from typing import Any

from engine.errors import EngineError
from engine.events import Event, Log, Progress
from engine.rate import RateMeter
from engine.retrieval.pool import PoolRow, load_pool
from engine.tasks import resolve_task
from engine.teacher import prompts
from engine.teacher.ask import Teacher, ask_example, throttled
from engine.teacher.calls import (
    FILTER_REJECTED,
    call_key,
    call_states,
    examples_by_call,
    filter_key,
    kept_examples,
    store_answer,
    store_filter,
)
from engine.teacher.client import TeacherCallFailed, TeacherSettings, chat
from engine.teacher.prompts import PromptSpec
from engine.teacher.quality import DuplicateIndex
from engine.teacher.writer import GroupWriter
from engine.workspace import Workspace


@dataclass(frozen=True, slots=True)
class ExampleText(Event):
    """The streamed reply so far for the pool row ``row`` (a state snapshot: the latest replaces older)."""

    row: int
    rank: int
    text: str


@dataclass(frozen=True, slots=True)
class ExampleDone(Event):
    """One pool row finished: its stored example and state."""

    row: int
    rank: int
    example_id: int | None
    status: str                 # pending | failed | duplicate | rejected (by --filter)
    reason: str | None
    input: str
    output: str
    reasoning: str | None = None
    attempts: int = 1
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class InFlight(Event):
    """How many pool rows are being asked of the teacher right now (a state snapshot): after a pause it
    counts down to 0 as the calls in flight finish."""

    calls: int


@dataclass(frozen=True, slots=True)
class TransformFinished(Event):
    """The run's figures (also what `rebase-tui transform --json` prints)."""

    requested: int
    done: int
    failed: int
    duplicates: int
    cached: int
    rejected: int
    retries: int
    tokens: int
    seconds: float
    examples_per_s: float

    def to_json(self) -> dict[str, Any]:
        """The fields in order, times rounded to the millisecond."""
        return {f.name: round(v, 3) if isinstance(v := getattr(self, f.name), float) else v
                for f in dataclasses.fields(self)}


@dataclass
class _Item:
    """One pool row to do: its call (unless cached) and then, with the filter on, its filter call."""

    rank: int
    row: int
    data: dict[str, Any]
    key: str
    call: bool = True                    # False: cached, only the filter pass is missing
    retry: bool = False                  # a failed call of an earlier run is stored under this key
    example_id: int | None = None
    example: tuple[str, str] | None = None


@dataclass
class _Counts:
    done: int = 0
    failed: int = 0
    duplicates: int = 0
    rejected: int = 0
    retries: int = 0
    tokens: int = 0
    finished: int = 0


async def transform(ws: Workspace, task_ref: str, settings: TeacherSettings, *, limit: int | None = None,
                    cot: str = "auto", use_filter: bool = False, text_interval: float = 0.2,
                    progress_interval: float = 0.25, gate: asyncio.Event | None = None
                    ) -> AsyncGenerator[Event, None]:
    """Transform the first ``limit`` rows of the task's pool into examples (see the module docstring).

    Raises EngineError before any work when the task has no pool, Ollama is unreachable or the model is
    not installed. Close the generator (``aclose()``) to cancel: finished calls are kept. ``gate`` pauses:
    while it is cleared no new call starts (the calls in flight finish and are stored); set it to go on.
    """
    task = resolve_task(ws, task_ref)
    pool = await asyncio.to_thread(load_pool, ws, task.name, limit)
    if not pool:
        raise EngineError(f"task {task.name!r} has no retrieved rows to transform",
                          fix=f"run `rebase-tui retrieve {task.name}` first")
    use_cot = prompts.resolve_cot(task, cot)
    spec = PromptSpec.build(task, prompts.get_template(ws, task.name), use_cot)
    teacher = await Teacher.connect(settings)
    try:
        dups = DuplicateIndex(task)
        await asyncio.to_thread(kept_examples, ws, task.name, dups)
        todo, cached = await asyncio.to_thread(_plan, ws, spec, settings, pool, use_filter)
        new_calls = sum(1 for it in todo if it.call)
        yield Log(f"{task.name}: {len(pool)} rows requested, {cached} already done (cached), {new_calls} to "
                  f"transform with {settings.model} on {settings.url} ({spec.describe()})")
        run = _Run(ws, teacher, spec, dups, use_filter, text_interval, gate)
        async with aclosing(run.events(todo, len(pool), cached, progress_interval)) as events:
            async for ev in events:
                yield ev
    finally:
        await teacher.close()


def _plan(ws: Workspace, spec: PromptSpec, settings: TeacherSettings, pool: list[PoolRow],
          use_filter: bool) -> tuple[list[_Item], int]:
    """The pool rows still to do, and how many rows' calls finished in an earlier run (cached).

    A cached row is done again only for its filter call, when the filter is on, its example is still
    pending and that filter call has not finished.
    """
    task, options = spec.task.name, settings.options()
    items = [_Item(p.rank, p.row, p.data, call_key(task, p.row, spec.hash, settings.model, options)) for p in pool]
    keys = [it.key for it in items]
    calls, examples = call_states(ws, task, keys), examples_by_call(ws, task, keys)
    todo: list[_Item] = []
    cached = 0
    for it in items:
        if calls.get(it.key) == "ok":
            cached += 1
            ex = examples.get(it.key)
            if use_filter and ex is not None and ex[3] == "pending":   # only the filter pass is missing?
                it.call, it.example_id, it.example = False, ex[0], (ex[1], ex[2])
                todo.append(it)
            continue
        it.retry = it.key in calls
        todo.append(it)
    if use_filter:
        fkeys = {it.row: filter_key(task, it.row, spec.hash, settings.model, options) for it in todo if not it.call}
        fcalls = call_states(ws, task, list(fkeys.values()))
        todo = [it for it in todo if it.call or fcalls.get(fkeys[it.row]) != "ok"]
    return todo, cached


class _Run:
    """One run in flight: workers take rows off a queue (``concurrency`` of them), ask the teacher, store
    each answer through the group writer and put their events on ``out``; None on ``out`` means they ended."""

    def __init__(self, ws: Workspace, teacher: Teacher, spec: PromptSpec, dups: DuplicateIndex,
                 use_filter: bool, text_interval: float, gate: asyncio.Event | None = None) -> None:
        self.ws, self.teacher, self.spec, self.dups = ws, teacher, spec, dups
        self.use_filter, self.text_interval, self.gate = use_filter, text_interval, gate
        self.out: asyncio.Queue[Event | None] = asyncio.Queue()
        self.counts = _Counts()
        self.in_flight = 0
        self.started = time.perf_counter()

    async def events(self, todo: list[_Item], total: int, cached: int,
                     progress_interval: float) -> AsyncGenerator[Event, None]:
        """Run the workers over ``todo``; yield their events, progress every ``progress_interval`` seconds,
        and the run's figures. Closing this generator cancels the calls in flight and waits for every
        finished call's write."""
        queue: asyncio.Queue[_Item] = asyncio.Queue()
        for it in todo:
            queue.put_nowait(it)
        writer = GroupWriter(self.ws)
        self.started = time.perf_counter()
        meter = RateMeter()
        workers = [asyncio.create_task(self._work(queue, writer))
                   for _ in range(min(self.teacher.settings.concurrency, max(1, len(todo))))]
        sup = asyncio.create_task(self._supervise(workers))
        try:
            yield self._progress(meter, cached, total)
            last_progress = time.monotonic()
            while True:
                try:
                    ev = await asyncio.wait_for(self.out.get(), timeout=progress_interval)
                except TimeoutError:
                    pass
                else:
                    if ev is None:
                        break
                    yield ev
                if time.monotonic() - last_progress >= progress_interval:
                    last_progress = time.monotonic()
                    yield self._progress(meter, cached, total)
            for w in workers:           # surface a worker's error (e.g. the model vanished: EngineError)
                if w.done() and not w.cancelled() and (failure := w.exception()) is not None:
                    raise failure
            yield self._progress(meter, cached, total)
            c = self.counts
            seconds = time.perf_counter() - self.started
            yield TransformFinished(total, c.done, c.failed, c.duplicates, cached, c.rejected, c.retries, c.tokens,
                                    seconds, c.finished / seconds if seconds > 0 else 0.0)
        finally:
            for w in workers:
                w.cancel()
            sup.cancel()
            await asyncio.gather(*workers, sup, return_exceptions=True)
            await writer.close()

    def _progress(self, meter: RateMeter, cached: int, total: int) -> Progress:
        c = self.counts
        elapsed = time.perf_counter() - self.started
        tps = c.tokens / elapsed if elapsed > 0 else 0.0
        msg = (f"{c.done} new, {c.failed} failed, {c.duplicates} duplicates"
               + (f", {c.rejected} filtered out" if self.use_filter else "")
               + (f", {c.retries} retries" if c.retries else "")
               + f", {tps:.0f} tok/s")
        return meter.progress("transform", cached + c.finished, total, "examples", msg)

    async def _supervise(self, workers: list[asyncio.Task[None]]) -> None:
        try:
            await asyncio.gather(*workers)
        finally:
            self.out.put_nowait(None)

    async def _work(self, queue: asyncio.Queue[_Item], writer: GroupWriter) -> None:
        while True:
            if self.gate is not None:
                await self.gate.wait()  # paused: no new call starts
            try:
                it = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            self._busy(1)
            try:
                if it.call and not await self._ask(it, writer):
                    continue
                if self.use_filter:
                    await self._filter(it, writer)
            finally:
                self._busy(-1)

    def _busy(self, change: int) -> None:
        self.in_flight += change
        self.out.put_nowait(InFlight(self.in_flight))

    async def _ask(self, it: _Item, writer: GroupWriter) -> bool:
        """Ask for the row's example and store it; True when it is usable (pending)."""
        answer = await ask_example(
            self.teacher, self.spec, it.data, self.dups, remember_as=f"the example from row {it.row}",
            on_text=throttled(lambda text: self.out.put_nowait(ExampleText(it.row, it.rank, text)),
                              self.text_interval))
        c = self.counts
        c.retries += max(0, answer.attempts - 1)
        c.tokens += answer.tokens.get("eval_count", 0)
        ex_id = await writer.submit(store_answer, self.teacher, self.spec, it.row, it.key, answer, retry=it.retry)
        if answer.status == "pending":
            c.done += 1
        elif answer.status == "duplicate":
            c.duplicates += 1
        else:
            c.failed += 1
        c.finished += 1
        it.example_id = ex_id
        it.example = (answer.input, answer.output) if answer.parsed else None
        self.out.put_nowait(ExampleDone(it.row, it.rank, ex_id, answer.status, answer.reason, answer.input,
                                        answer.output, answer.reasoning, answer.attempts, answer.seconds))
        return answer.status == "pending"

    async def _filter(self, it: _Item, writer: GroupWriter) -> None:
        """The paper's filter pass: ask whether the new example fits the task; reject it when it does not."""
        assert it.example is not None and it.example_id is not None
        s = self.teacher.settings
        key = filter_key(self.spec.task.name, it.row, self.spec.hash, s.model, s.options())
        store = partial(writer.submit, store_filter, self.teacher, self.spec, it.row, it.example_id, key)
        try:
            res = await chat(self.teacher.client, s, prompts.filter_messages(self.spec.task, *it.example),
                             prompts.FILTER_SCHEMA)
        except TeacherCallFailed as exc:
            await store(exc.partial or None, None, "; ".join(exc.errors))
            self.out.put_nowait(Log(f"filter call for row {it.row} failed: {exc.message}", "WARNING"))
            return
        fits = _verdict(res.content)
        await store(res.content, fits, None if fits is not None else "unparseable filter reply")
        if fits is None:
            self.out.put_nowait(Log(f"filter reply for row {it.row} was unusable; the example stays pending",
                                    "WARNING"))
        elif not fits:
            self.counts.rejected += 1
            self.out.put_nowait(ExampleDone(it.row, it.rank, it.example_id, "rejected", FILTER_REJECTED,
                                            *it.example))


def _verdict(content: str) -> bool | None:
    """The filter reply's ``fits`` (None when the reply has no boolean verdict)."""
    try:
        fits = json.loads(content).get("fits")
    except (ValueError, AttributeError):
        return None
    return fits if isinstance(fits, bool) else None

