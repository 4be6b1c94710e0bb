"""``rebase-tui refine RUN``: the run's validation mistakes steer the next retrieval, and the student is trained
again on everything accepted.

:func:`refine` takes the round run ``RUN`` drives one step further each time it is called, as an async
generator of events (the same Progress events retrieval, the teacher, training and evaluation show):

1. *start* — the run's validation items (:mod:`engine.loop.validation`: its hold-out, or a slice of accepted
   examples it never saw) and its answers to them (evaluating it when needed); the items it got wrong are the
   failures; the datastore rows closest to them, not in the task's pool and not banned
   (:func:`engine.retrieval.refine.refine_search`), join the pool, and the round is recorded
   (:mod:`engine.loop.rounds`); then the teacher transforms those rows (with the task's rules). The round then
   waits for review (:class:`RoundWaiting`): review is the reviewer's, as usual.
2. *train* — once none of the round's examples is pending, a new run trains on everything accepted (the
   validation items left out, and used as its validation split), continuing from ``RUN``'s model (or from the
   base student with ``fresh``); it is followed to its end, resumed if its worker died.
3. *finish* — the new run answers the same validation items; the round records its scores after
   (:class:`RoundDone`). Refining the new run starts the next round.

Every step keeps what it finished: a stopped refine continues where it stopped (the teacher's cache, the
round's status, the run's checkpoints).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine import review
from engine.errors import EngineError
from engine.events import Event, Log, Progress
from engine.experiments.spec import EvalOptions
from engine.experiments.stages import drain, run_to_end
from engine.loop import rounds
from engine.loop.rounds import Round, RoundFailure
from engine.loop.validation import Validation, answers, round_metric, source_method, validation_items
from engine.student.evaluate import EvalDone, Prediction, evaluate, read_predictions

if TYPE_CHECKING:
    from engine.retrieval.refine import RoundRetrieval
    from engine.tasks import Task
    from engine.teacher.client import TeacherSettings
    from engine.workspace import Workspace

ROWS_PER_FAILURE = 5
"""Rows a round adds per failure by default (at least :data:`MIN_ROWS`, at most :data:`MAX_ROWS`)."""
MIN_ROWS, MAX_ROWS = 10, 1000


@dataclass(frozen=True, slots=True)
class RoundStarted(Event):
    """A round was recorded: its failures found and its rows added to the task's pool."""

    round: Round


@dataclass(frozen=True, slots=True)
class RoundWaiting(Event):
    """The round's examples are made; ``pending`` of the ``made`` wait for the reviewer before training."""

    round: Round
    pending: int
    made: int


@dataclass(frozen=True, slots=True)
class RoundTraining(Event):
    """The run that trains on everything accepted after the round was started."""

    round: Round
    run: str


@dataclass(frozen=True, slots=True)
class RoundDone(Event):
    """The round is finished: its record, with the new run and its scores after."""

    round: Round


def round_size(failures: int) -> int:
    """How many rows a round adds by default for ``failures`` failures."""
    return max(MIN_ROWS, min(MAX_ROWS, ROWS_PER_FAILURE * failures))


async def refine(ws: Workspace, run_id: str, teacher: TeacherSettings, *, fresh: bool = False, top: int | None = None,
                 cot: str = "auto", prompt: str = "default", accept: bool = False,
                 example_ids: Sequence[int] | None = None, evals: EvalOptions | None = None,
                 metric: str | None = None) -> AsyncGenerator[Event, None]:
    """Take the round run ``run_id`` drives as far as it can go (see the module docstring).

    ``top`` rows are added (default :func:`round_size`); ``cot`` and ``prompt`` shape the teacher's calls as
    in ``transform``. The call that made the round's examples stops at review (:class:`RoundWaiting`); a later
    call trains once none is pending. ``accept`` accepts the pending ones instead (an unattended experiment).
    The next run trains on every accepted example of the run's method, or on ``example_ids`` (what the run was
    trained on) plus the round's accepted examples. ``metric`` judges the validation answers (default: the
    task's, see :func:`~engine.loop.validation.round_metric`). EngineError, before any work, for a run that cannot be
    refined (not finished, no task, no validation items, a metric that scores only the whole set, no item
    wrong, no row left near the failures).
    """
    evals = evals or EvalOptions()
    existing = await asyncio.to_thread(rounds.round_for_run, ws, run_id)
    if existing is None:
        async with aclosing(_start(ws, run_id, top, evals, metric)) as events:
            async for ev in events:
                yield ev
                if isinstance(ev, RoundStarted):
                    existing = ev.round
        assert existing is not None
    found: Round = existing
    just_made = found.status == "transform"
    if found.status == "transform":
        async for ev in _transform(ws, found, teacher, cot, prompt):
            yield ev
        found = await asyncio.to_thread(rounds.get_round, ws, found.task, found.number)
        if found.status == "transform":     # calls failed: the teacher is asked again next time
            return
    offset = None
    if found.status == "review":
        made = await asyncio.to_thread(rounds.round_examples, ws, found.task, found.id)
        pending = made.get("pending", [])
        if accept and pending:
            await asyncio.to_thread(review.accept, ws, found.task, pending)
            made = await asyncio.to_thread(rounds.round_examples, ws, found.task, found.id)
            pending = []
        if pending or (just_made and not accept):
            yield RoundWaiting(found, len(pending), sum(len(ids) for ids in made.values()))
            return
        found, offset = await asyncio.to_thread(_train, ws, found, fresh, example_ids, made.get("accepted", []))
        yield RoundTraining(found, str(found.next_run))
    if found.status == "training":
        async for ev in _finish(ws, found, evals, offset):
            yield ev
        found = await asyncio.to_thread(rounds.get_round, ws, found.task, found.number)
    yield RoundDone(found)


async def _start(ws: Workspace, run_id: str, top: int | None, evals: EvalOptions,
                 metric: str | None) -> AsyncGenerator[Event, None]:
    """Find the run's failures on its validation items, add the rows closest to them to the pool, record it."""
    from engine.student import runs
    from engine.student.model import has_final_model
    from engine.student.run_config import read_config
    from engine.tasks import get_task

    path = runs.run_dir(ws, run_id)
    if not has_final_model(path):
        summary = await asyncio.to_thread(runs.record, ws, path)
        raise EngineError(f"run {run_id} has not finished training ({summary.status})",
                          fix=f"let it finish (`rebase-tui train --resume {run_id}`), then refine it")
    cfg = read_config(path)
    task = get_task(ws, cfg.task) if cfg.task else None
    if task is None:
        raise EngineError(f"run {run_id} was not trained for a stored task, so there is no pool to refine",
                          fix="refine a run trained on a task's accepted examples")
    val = await asyncio.to_thread(validation_items, ws, path, cfg)
    done: EvalDone | None = None
    async for ev in drain(answers(path, val, metric=round_metric(task, metric), max_new_tokens=evals.max_new_tokens,
                                  batch_size=evals.batch_size, device=evals.device)):
        if isinstance(ev, EvalDone):
            done = ev
        else:
            yield ev
    assert done is not None
    failures = _failures(run_id, read_predictions(path), val, done)
    yield Log(f"run {run_id}: {len(failures)} of {len(val.rows)} validation items wrong ({done.metrics.describe()})")
    found = await asyncio.to_thread(_retrieve, ws, task, failures, top or round_size(len(failures)))
    made = await asyncio.to_thread(rounds.create_round, ws, task.name, run_id, val.kind, list(val.rows), failures,
                                   done.metrics, found)
    yield Log(f"round {made.number} of {task.name}: {made.rows_added} rows added near the failures "
              f"({found.rescored:,} rows scored, {found.method} scores{' reused' if found.stored_reused else ''})")
    yield RoundStarted(made)


def _failures(run_id: str, preds: list[Prediction], val: Validation, done: EvalDone) -> list[RoundFailure]:
    """The validation items the run got wrong; EngineError when its metric cannot tell or none is wrong."""
    if preds and all(p.correct is None for p in preds):
        raise EngineError(f"run {run_id} is scored by {', '.join(done.metrics.metric)}, which scores the whole set, "
                          "not each answer: refine cannot tell which answers were wrong",
                          fix='give the task a metric that judges each answer ("metric": "exact", "squad" or '
                              '"accuracy" in its task file)')
    failures = [RoundFailure(p.input, tuple(p.references), p.prediction) for p in preds if p.correct is False]
    if not failures:
        raise EngineError(f"run {run_id} answered all {len(val.rows)} validation items right: there is no mistake "
                          "to refine on", fix="train on harder data, or refine when it gets some wrong")
    return failures


def _retrieve(ws: Workspace, task: Task, failures: list[RoundFailure], top: int) -> RoundRetrieval:
    from engine.retrieval.pool import pool_keys
    from engine.retrieval.refine import Failure, refine_search
    from engine.retrieval.retriever import Retriever

    found = refine_search(Retriever(ws), task, [Failure(f.input, f.references[0]) for f in failures], top=top,
                          exclude_rows=pool_keys(ws, task.name))
    if not found.hits:
        raise EngineError(f"no row of the datastore is left near the failures of {task.name} (every row is in its "
                          "pool or banned)", fix="ingest more datasets, then refine again")
    return found


async def _transform(ws: Workspace, found: Round, teacher: TeacherSettings, cot: str,
                     prompt: str) -> AsyncGenerator[Event, None]:
    """The teacher transforms the round's rows (cached calls are not made again); review comes next when
    every call was made and answered."""
    from engine.teacher.transform import TransformFinished, transform

    keys = await asyncio.to_thread(rounds.round_row_keys, ws, found.id)
    summary = None
    async with aclosing(transform(ws, found.task, teacher, cot=cot, prompt=prompt, rows=keys)) as events:
        async for ev in events:
            yield ev
            if isinstance(ev, TransformFinished):
                summary = ev
    assert summary is not None
    if summary.complete:
        await asyncio.to_thread(rounds.set_status, ws, found.id, "review")
    else:
        yield Log(f"round {found.number} of {found.task}: {summary.faults()} — refine again to ask for them "
                  "(finished examples are kept)", "ERROR")


def _train(ws: Workspace, found: Round, fresh: bool, example_ids: Sequence[int] | None,
           accepted: list[int]) -> tuple[Round, int]:
    """Start the run on everything accepted, continuing from the round's run (or afresh); record it."""
    from engine.student.launch import start_training
    from engine.student.model import final_model_dir, has_final_model
    from engine.student.run_config import read_config

    path = ws.runs_dir / found.run
    cfg = read_config(path)
    if not fresh and not has_final_model(path):
        raise EngineError(f"run {found.run} has no final model to continue from",
                          fix="refine with --fresh (train from the base student)")
    method = source_method(cfg)
    ids = sorted({*example_ids, *accepted}) if example_ids is not None else None
    launched = start_training(ws, task=found.task, example_method=method, example_ids=ids,
                              eval_rows=[dict(r) for r in found.validation],
                              init_from=None if fresh else final_model_dir(path), settings=cfg.settings)
    rounds.set_status(ws, found.id, "training", next_run=launched.run, fresh=fresh)
    return rounds.get_round(ws, found.task, found.number), launched.offset


async def _finish(ws: Workspace, found: Round, evals: EvalOptions, offset: int | None) -> AsyncGenerator[Event, None]:
    """Follow the next run to its end, score it on the round's validation items with the metric of the scores
    before, and record that."""
    assert found.next_run is not None
    path = ws.runs_dir / found.next_run
    metric = ",".join(found.before.metric) or None
    async for ev in run_to_end(ws, path, offset, f"round {found.number} of {found.task}"):
        yield ev
    done: EvalDone | None = None
    async for ev in drain(evaluate(path, None, metric=metric, max_new_tokens=evals.max_new_tokens,
                                   batch_size=evals.batch_size, device=evals.device)):
        if isinstance(ev, EvalDone):
            done = ev
        elif isinstance(ev, Progress | Log):
            yield ev
    assert done is not None
    await asyncio.to_thread(rounds.set_status, ws, found.id, "done", after=done.metrics)
