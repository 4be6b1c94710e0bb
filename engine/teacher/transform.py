"""ReBase stage 4: the teacher rewrites the task's retrieved rows into task examples.

:func:`transform` is an async generator of events over the task's pool (``retrievals`` joined to
``rows``, by rank): :class:`ExampleText` snapshots (the full streamed text so far, throttled per example),
:class:`ExampleDone` per example, :class:`~engine.events.Progress` a few times a second (with the smoothed
examples/s and the ETA), and finally :class:`TransformFinished` with the run's figures. At most
``concurrency`` calls are in flight.

Every call is cached in ``teacher_calls`` under a key of (task, row, prompt hash, model, options) and
written, together with its example, in one transaction as soon as it finishes: a re-run never repeats a
finished call, and killing a run (or closing the generator) loses at most the calls in flight. Calls that
could not be made or answered (transport or server faults after all retries, the per-call deadline, a reply
over the size cap) are stored as ``failed`` examples, with whatever text arrived, and tried again on the
next run; :class:`TransformFinished` counts them apart (``call_failures``, by kind), because they mean the
run did not do its work. Replies that arrived but cannot be used (bad JSON, schema violation, empty,
over-long, outside the label set) are final ``failed`` examples with the raw reply kept: results, not faults.
When the host is gone (the backend's circuit breaker tripped), the workers take no more rows: the run ends
early with ``stopped`` saying why and ``skipped`` rows untried, and a later run resumes from the cache.

With ``use_filter`` every new usable example is then put to the teacher once more (the paper's filter
pass: does it fit the task?); a "no" rejects it. A filter call that failed or gave no verdict leaves the
example pending and is asked again on the next filtered run.

``method="synthesize"`` is the baseline ReBase is measured against: no pool, ``limit`` slots, each asking the
teacher for a new example from the instruction and the demonstrations alone. Every slot has a seed of its
own (the run's seed plus the slot number), so the slots' cache keys differ and a sampling teacher answers
each differently; everything else (schema, checks, duplicates, cache, resume, the filter) is the same.
``prompt="paper"`` sends the released ReBase prompt instead of this project's (see
:mod:`engine.teacher.prompts`).

``samples=N`` (N >= 3) asks N times per row and keeps a majority answer (:mod:`engine.teacher.consistency`).
``rows`` limits the run to those pool rows (a refinement round's). ``redo_pending`` re-transforms, with the
task's current prompt (its accepted rules), the rows whose pending example was made with an earlier one: a
usable new example replaces the old, which is rejected ("redone with the task's rules") in the same
transaction, as one undoable review decision.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import time
from collections.abc import AsyncGenerator, Collection
from contextlib import aclosing
from dataclasses import dataclass
from functools import partial
from typing import Any

from engine.events import Event, Log, Progress
from engine.rate import RateMeter
from engine.tasks import resolve_task
from engine.teacher import prompts
from engine.teacher.ask import Answer, Teacher, ask_example, throttled
from engine.teacher.calls import (
    FILTER_REJECTED,
    filter_key,
    kept_examples,
    store_answers,
    store_filter,
    store_sample,
)
from engine.teacher.client import TeacherCallFailed, TeacherSettings
from engine.teacher.consistency import answer_keyer, ask_voted, check_samples
from engine.teacher.plan import Item, items_of, plan
from engine.teacher.prompts import PromptSpec
from engine.teacher.quality import DuplicateIndex
from engine.teacher.redo import replace_cached, store_replacing
from engine.teacher.writer import GroupWriter
from engine.workspace import Workspace


@dataclass(frozen=True, slots=True)
class ExampleText(Event):
    """The streamed reply so far for the pool row ``row`` (a state snapshot: the latest replaces older).

    For a synthesized example ``row`` is minus its slot and ``rank`` the slot."""

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
    agreement: float | None = None  # --samples: the share of the sampled answers agreeing with this one


@dataclass(frozen=True, slots=True)
class InFlight(Event):
    """How many pool rows are being asked of the teacher right now (a state snapshot): after a pause it
    counts down to 0 as the calls in flight finish."""

    calls: int


@dataclass(frozen=True, slots=True)
class TransformFinished(Event):
    """The run's figures (also what `rebase-tui transform --json` prints).

    ``failed`` counts every failed example; ``call_failures`` the calls among them (filter calls included)
    that could not be made or answered, with ``fault_kinds`` counting them by kind (``HTTP 503``,
    ``deadline passed``, ...). ``skipped`` rows were not tried because the host went away; ``stopped`` says
    why the run ended early (None when it ran to the end).
    """

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
    call_failures: int = 0
    skipped: int = 0
    stopped: str | None = None
    fault_kinds: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Every call was made and answered (unusable replies are results, not faults)."""
        return self.call_failures == 0 and self.skipped == 0 and self.stopped is None

    def faults(self) -> str:
        """The call failures in words: "3 calls failed (2 × HTTP 503, 1 × deadline passed)"."""
        kinds = ", ".join(f"{n} × {k}" for k, n in sorted(self.fault_kinds.items(), key=lambda kv: -kv[1]))
        return f"{self.call_failures} teacher call(s) could not be made or answered" + (f" ({kinds})" if kinds else "")

    def to_json(self) -> dict[str, Any]:
        """The fields in order, times rounded to the millisecond."""
        return {f.name: round(v, 3) if isinstance(v := getattr(self, f.name), float) else v
                for f in dataclasses.fields(self)}


@dataclass
class _Counts:
    done: int = 0
    failed: int = 0
    duplicates: int = 0
    rejected: int = 0
    retries: int = 0
    tokens: int = 0
    finished: int = 0
    skipped: int = 0
    faults: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)


async def transform(ws: Workspace, task_ref: str, settings: TeacherSettings, *, limit: int | None = None,
                    cot: str = "auto", use_filter: bool = False, prompt: str = "default", method: str = "rebase",
                    samples: int = 1, rows: Collection[int] | None = None, redo_pending: bool = False,
                    text_interval: float = 0.2, progress_interval: float = 0.25,
                    gate: asyncio.Event | None = None) -> AsyncGenerator[Event, None]:
    """Transform the first ``limit`` rows of the task's pool into examples, or with ``method="synthesize"``
    write ``limit`` examples from the task alone (see the module docstring).

    Raises EngineError before any work when the task has no pool (synthesis needs none, but a ``limit``), the
    teacher's host is unreachable or the model is not there, or ``samples`` cannot vote. Close the generator
    (``aclose()``) to cancel: finished calls are kept. ``gate`` pauses: while it is cleared no new call starts
    (the calls in flight finish and are stored); set it to go on.
    """
    task = resolve_task(ws, task_ref)
    check_samples(samples, method)
    if samples > 1:
        answer_keyer(task)              # refuses a task whose answers cannot be compared, before any call
    spec = prompts.spec_for(ws, task, cot=cot, prompt=prompt, method=method)
    items = await asyncio.to_thread(partial(items_of, ws, spec, settings, limit, samples=samples, rows=rows,
                                            redo_pending=redo_pending))
    out: asyncio.Queue[Event | None] = asyncio.Queue()
    teacher = await Teacher.connect(settings, lambda remark: out.put_nowait(Log(remark, "WARNING")))
    try:
        dups = DuplicateIndex(task)
        replaced = [it.replaces for it in items if it.replaces is not None]
        await asyncio.to_thread(partial(kept_examples, ws, task.name, dups, method=spec.method, except_ids=replaced))
        todo, cached = await asyncio.to_thread(plan, ws, spec, settings, items, use_filter)
        if redo_pending:
            await asyncio.to_thread(replace_cached, ws, task.name, items, todo)
        new_calls = sum(1 for it in todo if it.call)
        what = "examples to write from the task alone" if spec.method == "synthesize" else "rows requested"
        yield Log(f"{task.name}: {len(items)} {what}, {cached} already done (cached), {new_calls} to "
                  f"{'write' if spec.method == 'synthesize' else 'transform'} with {settings.model} on {settings.url} "
                  f"({spec.describe()})")
        if spec.method == "synthesize" and settings.temperature == 0 and new_calls > 1:
            yield Log("temperature 0: a teacher that does not sample writes the same example for every seed "
                      "(the copies are caught as duplicates); raise --temperature", "WARNING")
        run = _Run(ws, teacher, spec, dups, use_filter, text_interval, out, samples, gate)
        async with aclosing(run.events(todo, len(items), cached, progress_interval)) as events:
            async for ev in events:
                yield ev
    finally:
        await teacher.close()


class _Run:
    """One run in flight: workers take rows off a queue (``concurrency`` of them), ask the teacher, store
    each answer through the group writer and put their events on ``out``; None on ``out`` means they ended."""

    def __init__(self, ws: Workspace, teacher: Teacher, spec: PromptSpec, dups: DuplicateIndex,
                 use_filter: bool, text_interval: float, out: asyncio.Queue[Event | None], samples: int = 1,
                 gate: asyncio.Event | None = None) -> None:
        self.ws, self.teacher, self.spec, self.dups = ws, teacher, spec, dups
        self.use_filter, self.text_interval, self.gate = use_filter, text_interval, gate
        self.out = out
        self.samples = samples
        self.counts = _Counts()
        self.in_flight = 0
        self.started = time.perf_counter()

    async def events(self, todo: list[Item], total: int, cached: int,
                     progress_interval: float) -> AsyncGenerator[Event, None]:
        """Run the workers over ``todo``; yield their events, progress every ``progress_interval`` seconds,
        and the run's figures. Closing this generator cancels the calls in flight and waits for every
        finished call's write."""
        queue: asyncio.Queue[Item] = asyncio.Queue()
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
            c.skipped += queue.qsize()
            seconds = time.perf_counter() - self.started
            stopped = self.teacher.backend.breaker.reason
            if stopped:
                yield Log(f"stopped early: {stopped}; {c.skipped} row(s) not tried — re-run when the host is back "
                          "(finished rows are kept)", "ERROR")
            yield TransformFinished(total, c.done, c.failed, c.duplicates, cached, c.rejected, c.retries, c.tokens,
                                    seconds, c.finished / seconds if seconds > 0 else 0.0, sum(c.faults.values()),
                                    c.skipped, stopped, dict(c.faults))
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

    async def _work(self, queue: asyncio.Queue[Item], writer: GroupWriter) -> None:
        while not self.teacher.backend.breaker.tripped:     # the host is gone: leave the rest for a later run
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

    async def _ask(self, it: Item, writer: GroupWriter) -> bool:
        """Ask for the item's example and store it; True when it is usable (pending)."""
        teacher = self.teacher.with_seed(it.seed) if it.seed is not None else self.teacher
        on_text = throttled(lambda text: self.out.put_nowait(ExampleText(it.row, it.rank, text)), self.text_interval)
        if self.samples > 1:
            store = partial(self._store_sample, writer, it.row)
            answer = await ask_voted(self.ws, teacher, self.spec, it.row, it.data, self.dups, self.samples, store,
                                     remember_as=it.label, on_text=on_text)
        else:
            answer = await ask_example(teacher, self.spec, it.data, self.dups, remember_as=it.label, on_text=on_text)
        c = self.counts
        if answer.attempts == 0:        # not sent: the host went away meanwhile
            c.skipped += 1
            return False
        if answer.fault is not None:
            c.faults[answer.fault] += 1
        c.retries += max(0, answer.attempts - 1)
        c.tokens += answer.tokens.get("eval_count", 0)
        write = (teacher, self.spec, it.row, it.key, answer, it.retry)
        ex_id = await (writer.submit_row(store_replacing, (write, it.replaces)) if it.replaces is not None
                       else writer.submit_row(store_answers, write))
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
                                        answer.output, answer.reasoning, answer.attempts, answer.seconds,
                                        answer.agreement))
        return answer.status == "pending"

    async def _store_sample(self, writer: GroupWriter, row: int, teacher: Teacher, key: str, answer: Answer) -> None:
        """Store one finished sample call of a vote (before the row's other samples are asked)."""
        await writer.submit(store_sample, teacher, self.spec, row, key, answer)

    async def _filter(self, it: Item, writer: GroupWriter) -> None:
        """The paper's filter pass: ask whether the new example fits the task; reject it when it does not."""
        assert it.example is not None and it.example_id is not None
        key = filter_key(self.spec.task.name, it.row, self.spec.hash, self.teacher.settings)
        store = partial(writer.submit, store_filter, self.teacher, self.spec, it.row, it.example_id, key)
        try:
            res = await self.teacher.chat(prompts.filter_messages(self.spec.task, *it.example), prompts.FILTER_SCHEMA)
        except TeacherCallFailed as exc:
            if exc.attempts == 0:
                return
            self.counts.faults[exc.kind] += 1
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

