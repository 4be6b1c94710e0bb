"""The stages of an experiment, one async generator each: retrieve, make data (transform or synthesize, then
accept what passed the checks), train, evaluate a student (or its base), and let the teacher answer.

Each stage announces itself (:class:`StageStarted`), passes on the progress of the engine function it drives
(the same :class:`~engine.events.Progress` events the ``retrieve``, ``transform``, ``train`` and ``eval``
commands show), records what it finished in the experiment's state (:mod:`engine.experiments.state`) and ends
with :class:`StageDone`. A stage whose entry is in the state with the same fingerprint is skipped; a training
run whose id is recorded is followed while its worker lives, resumed from its checkpoint when the worker died,
and left alone once finished.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Iterator
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import EngineError
from engine.events import Event, Log, Progress
from engine.experiments.results import ResultRow
from engine.experiments.state import State
from engine.rate import RateMeter

if TYPE_CHECKING:
    from engine.experiments.spec import EvalOptions, TaskEntry
    from engine.student.evaluate import EvalResult
    from engine.tasks import Task
    from engine.teacher.client import TeacherSettings
    from engine.workspace import Workspace


@dataclass(frozen=True, slots=True)
class StageStarted(Event):
    """A stage of one task and method begins (``stage``: retrieve, data, train, eval, teacher)."""

    task: str
    method: str
    stage: str


@dataclass(frozen=True, slots=True)
class StageDone(Event):
    """A stage ended: how long it took, whether an earlier run had already done it, and a word on its result."""

    task: str
    method: str
    stage: str
    seconds: float
    skipped: bool = False
    detail: str = ""


@dataclass
class Stage:
    """What every stage needs: the workspace, the experiment's folder and state, the task (resolved), its
    spec entry and the settings of the teacher and the student."""

    ws: Workspace
    folder: Path
    state: State
    task: Task
    entry: TaskEntry
    teacher: TeacherSettings | None
    prompt: str
    cot: str
    train: dict[str, Any]
    evals: EvalOptions

    def key(self, stage: str, method: str) -> str:
        return f"{stage}/{self.task.name}/{method}"


async def drain(gen: Iterator[Event]) -> AsyncGenerator[Event, None]:
    """A blocking event generator (evaluation: torch) driven from a thread, one event at a time."""
    done = object()
    try:
        while (ev := await asyncio.to_thread(next, gen, done)) is not done:
            assert isinstance(ev, Event)
            yield ev
    finally:
        close = getattr(gen, "close", None)    # a generator: let its own finally blocks run
        if close is not None:
            try:
                await asyncio.to_thread(close)
            except ValueError:  # still running in its thread (the consumer was cancelled): it ends on its own
                pass


# -- retrieve ---------------------------------------------------------------------------------------
async def retrieve(st: Stage, fp: str) -> AsyncGenerator[Event, None]:
    """Rank the datastore for the task (top = its examples, with its bans) and store the pool."""
    key = st.key("retrieve", "rebase")
    yield StageStarted(st.task.name, "rebase", "retrieve")
    if (done := st.state.get(key, fp)) is not None:
        yield StageDone(st.task.name, "rebase", "retrieve", done["seconds"], True, f"{done['rows']} rows")
        return
    from engine.language import embedder_warning, workspace_embedder

    warning = embedder_warning(st.task, workspace_embedder(st.ws))
    if warning:
        yield Log(warning, "WARNING")
    t0 = time.monotonic()
    rows = await asyncio.to_thread(_retrieve, st)
    if rows < st.entry.examples:
        yield Log(f"{st.task.name}: the datastore gave {rows} rows, fewer than the {st.entry.examples} examples "
                  "asked for; rebase makes one example per row", "WARNING")
    seconds = time.monotonic() - t0
    st.state.put(key, fp, seconds=seconds, rows=rows)
    yield StageDone(st.task.name, "rebase", "retrieve", seconds, False, f"{rows} rows")


def _retrieve(st: Stage) -> int:
    from engine.retrieval.pool import store_pool
    from engine.retrieval.retriever import Retriever

    result = Retriever(st.ws).search(st.task, top=st.entry.examples, exclude=st.entry.exclude)
    return store_pool(st.ws, st.task, result)


# -- data -------------------------------------------------------------------------------------------
async def make_data(st: Stage, method: str, fp: str) -> AsyncGenerator[Event, None]:
    """Transform the pool (rebase) or write examples from the task alone (synthesize), then accept the ones
    that passed the checks; records the accepted example ids."""
    from engine.teacher.transform import TransformFinished, transform

    key = st.key("data", method)
    yield StageStarted(st.task.name, method, "data")
    if (done := st.state.get(key, fp)) is not None:
        yield StageDone(st.task.name, method, "data", done["seconds"], True, f"{len(done['ids'])} accepted")
        return
    assert st.teacher is not None
    t0 = time.monotonic()
    summary = None
    async with aclosing(transform(st.ws, st.task.name, st.teacher, limit=st.entry.examples, cot=st.cot,
                                  prompt=st.prompt, method=method)) as events:
        async for ev in events:
            if isinstance(ev, Progress | Log):
                yield ev
            elif isinstance(ev, TransformFinished):
                summary = ev
    assert summary is not None
    if not summary.complete:
        raise EngineError(f"{st.task.name} ({method}): {summary.faults()}",
                          fix="run the experiment again when the teacher answers (finished calls are kept)")
    ids = await asyncio.to_thread(_accept, st, method)
    if not ids:
        raise EngineError(f"{st.task.name} ({method}): none of the teacher's examples passed the checks",
                          fix=f"look at them with `rebase-tui examples {st.task.name} --method {method}`")
    seconds = time.monotonic() - t0
    st.state.put(key, fp, seconds=seconds, calls=summary.requested, ids=ids)
    yield StageDone(st.task.name, method, "data", seconds, False,
                    f"{len(ids)} of {summary.requested} accepted")


def _accept(st: Stage, method: str) -> list[int]:
    """Accept the pending examples this stage's calls made; the ids of all of them now accepted."""
    from engine import review
    from engine.teacher.calls import examples_by_call
    from engine.teacher.plan import call_keys

    assert st.teacher is not None
    keys = call_keys(st.ws, st.task.name, st.teacher, limit=st.entry.examples, cot=st.cot, prompt=st.prompt,
                     method=method)
    made = examples_by_call(st.ws, st.task.name, keys)
    pending = [ex[0] for ex in made.values() if ex[3] == "pending"]
    review.accept(st.ws, st.task.name, pending)
    return sorted(ex[0] for ex in examples_by_call(st.ws, st.task.name, keys).values() if ex[3] == "accepted")


# -- train ------------------------------------------------------------------------------------------
async def train(st: Stage, method: str, fp: str, ids: list[int]) -> AsyncGenerator[Event, None]:
    """Train the student on the accepted examples ``ids``: start a run (its id recorded at once), re-attach
    to its live worker, or resume it from its checkpoint, and follow it to its end."""
    from engine.student import launch, runs

    key = st.key("train", method)
    yield StageStarted(st.task.name, method, "train")
    entry = st.state.get(key, fp)
    path = (st.ws.runs_dir / entry["run"]) if entry else None
    if path is not None and not (path / "run.json").exists():
        path = None
    if path is not None and (before := await asyncio.to_thread(runs.record, st.ws, path)).status == "finished":
        yield StageDone(st.task.name, method, "train", before.seconds, True, path.name)
        return
    offset: int | None = None
    if path is None:
        started = await asyncio.to_thread(launch.start_training, st.ws, task=st.task.name, example_ids=ids,
                                          **st.train)
        path, offset = started.path, started.offset
        st.state.put(key, fp, run=started.run)
        yield Log(f"{st.task.name} ({method}): training run {started.run} on {len(ids)} examples")
    async for ev in run_to_end(st.ws, path, offset, f"{st.task.name} ({method})"):
        yield ev
    summary = await asyncio.to_thread(runs.record, st.ws, path)
    yield StageDone(st.task.name, method, "train", summary.seconds, False, path.name)


async def run_to_end(ws: Workspace, path: Path, offset: int | None, what: str) -> AsyncGenerator[Event, None]:
    """Follow training run ``path`` to its end as Progress events: from ``offset`` when its worker was just
    started, else re-attached to its live worker or resumed from its checkpoint. EngineError (``what`` names
    the run's purpose) when it ends other than finished; closed early, it asks the worker to stop."""
    from engine.student import launch, runs, supervise

    if offset is None and not supervise.worker_alive(path):
        started = await asyncio.to_thread(launch.resume_training, ws, path.name)
        offset = started.offset
        yield Log(f"{what}: resuming training run {path.name} from its last checkpoint")
    elif offset is None:
        yield Log(f"{what}: following training run {path.name}, still running")
    async with aclosing(_follow(path, offset)) as events:
        async for ev in events:
            yield ev
    summary = await asyncio.to_thread(runs.record, ws, path)
    if summary.status != "finished":
        raise EngineError(f"{what}: training run {path.name} {summary.status}"
                          + (f": {summary.message}" if summary.message else ""),
                          fix=summary.fix or "run the same command again to resume it")


async def _follow(path: Path, offset: int | None) -> AsyncGenerator[Event, None]:
    """The run's progress as Progress events; a closed follower asks the worker to stop at a checkpoint."""
    from engine.student import supervise
    from engine.student.events import RunStarted, StepMetrics

    meter = RateMeter()
    ended = False
    try:
        async for ev in supervise.afollow(path, offset):
            if isinstance(ev, RunStarted):
                yield meter.progress("train", ev.start_step, ev.total_steps, "steps",
                                     f"{ev.method} on {ev.device}, {ev.train_examples} examples")
            elif isinstance(ev, StepMetrics):
                yield meter.progress("train", ev.step, ev.total_steps, "steps", f"loss {ev.loss:.4f}")
        ended = True
    finally:
        if not ended:
            supervise.request_stop(path)


# -- refinement rounds ------------------------------------------------------------------------------
async def refine_round(st: Stage, method: str, fp: str, run: str, ids: list[int]) -> AsyncGenerator[Event, None]:
    """One refinement round of run ``run`` (trained on the examples ``ids``), unattended: its examples that
    passed the checks are accepted; records the next run and the examples it trained on."""
    from engine.loop.refine import RoundDone, refine
    from engine.loop.rounds import round_examples

    key = st.key("round", method)
    yield StageStarted(st.task.name, method, "round")
    if (done := st.state.get(key, fp)) is not None:
        yield StageDone(st.task.name, method, "round", done["seconds"], True, done["run"])
        return
    assert st.teacher is not None
    t0 = time.monotonic()
    last = None
    async with aclosing(refine(st.ws, run, st.teacher, cot=st.cot, prompt=st.prompt, accept=True, example_ids=ids,
                               evals=st.evals, metric=st.entry.metric)) as events:
        async for ev in events:
            if isinstance(ev, RoundDone):
                last = ev.round
            elif isinstance(ev, Progress | Log):
                yield ev
    if last is None or last.next_run is None:
        raise EngineError(f"{st.task.name} ({method}): the round's teacher calls did not all finish",
                          fix="run the experiment again when the teacher answers (finished calls are kept)")
    accepted = (await asyncio.to_thread(round_examples, st.ws, st.task.name, last.id)).get("accepted", [])
    seconds = time.monotonic() - t0
    st.state.put(key, fp, seconds=seconds, run=last.next_run, ids=sorted({*ids, *accepted}), calls=last.rows_added,
                 round=last.number)
    yield StageDone(st.task.name, method, "round", seconds, False, last.describe())


# -- evaluate ---------------------------------------------------------------------------------------
def result_rows(task: str, method: str, result: EvalResult, n_train: int, calls: int,
                seconds: float) -> list[dict[str, Any]]:
    """The rows (one per metric) of one evaluation, as the state and ``results.json`` keep them."""
    return [ResultRow(task, method, name, float(m["value"]), (float(m["ci95"][0]), float(m["ci95"][1])), n_train,
                      calls, seconds).to_json() for name, m in result.metrics.items()]


async def evaluate_student(st: Stage, method: str, fp: str, run: str, *, base: bool,
                           spent: float, calls: int) -> AsyncGenerator[Event, None]:
    """Score run ``run``'s student (``base``: its untrained student) on the test file with the task's metric;
    ``spent`` (the seconds of the stages before) and ``calls`` go into the rows."""
    from engine.student import evaluate
    from engine.student.run_config import read_config

    key = st.key("eval", method)
    yield StageStarted(st.task.name, method, "eval")
    if (done := st.state.get(key, fp)) is not None:
        yield StageDone(st.task.name, method, "eval", done["seconds"], True)
        return
    path = st.ws.runs_dir / run
    t0 = time.monotonic()
    result = None
    e = st.evals
    async for ev in drain(evaluate.evaluate(path, st.entry.test, base=base, limit=e.limit,
                                            max_new_tokens=e.max_new_tokens, batch_size=e.batch_size,
                                            device=e.device, task=st.task, metric=st.entry.metric)):
        if isinstance(ev, evaluate.EvalDone):
            result = ev.metrics
        else:
            yield ev
    assert result is not None
    seconds = time.monotonic() - t0
    n_train = 0 if base else read_config(path).data.train
    rows = result_rows(st.task.name, method, result, n_train, calls, spent + seconds)
    st.state.put(key, fp, seconds=seconds, generation=result.seconds, rows=rows)
    yield StageDone(st.task.name, method, "eval", seconds, False, result.describe())


async def evaluate_teacher(st: Stage, fp: str) -> AsyncGenerator[Event, None]:
    """The teacher answers the test set few-shot (cached calls), scored like a student."""
    from engine.student import evaluate
    from engine.teacher.solve import TestsAnswered, answer_tests

    key = st.key("eval", "teacher")
    yield StageStarted(st.task.name, "teacher", "teacher")
    if (done := st.state.get(key, fp)) is not None:
        yield StageDone(st.task.name, "teacher", "teacher", done["seconds"], True)
        return
    assert st.teacher is not None
    label, layout, items = evaluate.test_items(st.folder, st.entry.test)
    items = items[: st.evals.limit] if st.evals.limit else items
    t0 = time.monotonic()
    got = None
    async for ev in answer_tests(st.ws, st.task, [it.input for it in items], st.teacher):
        if isinstance(ev, TestsAnswered):
            got = ev
        else:
            yield ev
    assert got is not None
    if got.failed:
        raise EngineError(f"{st.task.name} (teacher): {got.failed} teacher call(s) failed: {got.first_failure}",
                          fix="run the experiment again when the teacher answers (finished calls are kept)")
    seconds = time.monotonic() - t0
    result, _, preds = evaluate.score_answers("teacher", label, layout, items, got.outputs, task=st.task,
                                              metric=st.entry.metric, seconds=seconds)
    evaluate.write_predictions(st.folder / f"{st.task.name}.teacher.jsonl", preds)
    rows = result_rows(st.task.name, "teacher", result, 0, len(items), seconds)
    st.state.put(key, fp, seconds=seconds, rows=rows)
    yield StageDone(st.task.name, "teacher", "teacher", seconds, False, result.describe())
