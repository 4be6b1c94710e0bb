"""Regenerate: ask the teacher again for the source row of an example the reviewer does not want.

:func:`regenerate` is an async generator of the same kind of events as :func:`engine.teacher.transform.transform`
(:class:`~engine.teacher.transform.ExampleText` while the reply streams, :class:`~engine.events.Log`) plus one
:class:`Regenerated` per example asked for. Each regeneration is one fresh teacher call for the example's
source row, with the same prompt template and format (reasoning or direct, taken from the example's prompt
hash), the task's accepted rules and checks as they are now, and the current teacher settings, except that regeneration ``n`` of a row (1, 2, ...: the first slot
not used yet) sends the seed ``teacher.seed + n``, so even a fixed-seed teacher gives a new answer. ``n``
is part of the cache key (``call_key(..., kind="regenerate:n")``), so the call never collides with the
row's transform call: a re-run of ``transform`` still repeats nothing, and each finished regeneration is
stored in ``teacher_calls`` like any other call.

The new example goes through the same quality checks as in ``transform`` (parse, fields, label set,
duplicates of the task's other examples; the examples of the same source row are alternatives, not
duplicates). When it is usable (``pending``), the old example is rejected with the reason "regenerated" in
the same transaction, through :func:`engine.review.record_regeneration`: one ``undo`` restores the old one
(and rejects the new one). A ``failed`` or ``duplicate`` new example is stored for the record and the old
one is left as it was. An example already replaced (rejected "regenerated", not undone) is not asked
again: its replacement is reported (``cached``), so re-running an interrupted ``review --regenerate`` only
makes the calls that had not finished. A call that fails for transport reasons stores nothing and is
reported (status ``error``); the old example is untouched. The filter pass (``--filter``) is not run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

from engine import review
from engine.errors import EngineError
from engine.events import Event, Log
from engine.tasks import Task, resolve_task
from engine.teacher import prompts
from engine.teacher.ask import Answer, Teacher, ask_example, throttled
from engine.teacher.calls import call_key, kept_examples, store_answer
from engine.teacher.client import TeacherSettings
from engine.teacher.prompts import PromptSpec
from engine.teacher.quality import DuplicateIndex
from engine.teacher.rules import accepted_rules
from engine.teacher.transform import ExampleText
from engine.workspace import Workspace

MAX_SLOTS = 10_000


@dataclass(frozen=True, slots=True)
class Regenerated(Event):
    """One example asked for again: the new example (or the reason there is none)."""

    old_id: int
    example_id: int | None      # the new example; None when the call failed (nothing stored)
    row: int
    status: str                 # pending | failed | duplicate (the new example) | error (the call failed)
    reason: str | None
    input: str = ""
    output: str = ""
    reasoning: str | None = None
    replaced: bool = False      # the old example is now rejected ("regenerated")
    cached: bool = False        # it had been regenerated already: no new call
    slot: int = 0               # the regeneration number n of the row (0 when cached or failed)
    attempts: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The outcome without the example's text (`review --regenerate --json` prints it)."""
        return {"old_id": self.old_id, "example_id": self.example_id, "row": self.row, "status": self.status,
                "reason": self.reason, "replaced": self.replaced, "cached": self.cached, "slot": self.slot,
                "attempts": self.attempts, "seconds": round(self.seconds, 3)}


@dataclass(frozen=True, slots=True)
class _Old:
    """The example asked for again, as stored."""

    id: int
    row: int
    status: str
    reason: str | None
    prompt_hash: str | None


def _examples(ws: Workspace, task: str, ids: list[int]) -> dict[int, _Old]:
    """The examples ``ids``; EngineError naming unknown ones, another task's, or imported ones (no row)."""
    with ws.store.cursor() as cur:
        found = review.find_examples(cur, task, ids, "row, status, reason, prompt_hash")
    imported = [i for i in ids if found[i][2] is None]
    if imported:
        raise EngineError(f"example {', '.join(map(str, imported))} has no source row (imported), so the teacher "
                          "cannot be asked again", fix="edit it, or reject it")
    return {i: _Old(int(r[0]), int(r[2]), r[3], r[4], r[5]) for i, r in found.items()}


def _source(ws: Workspace, task: str, row: int) -> tuple[int, dict[str, Any]]:
    """(pool rank or 0, row data) of a source row; EngineError when the row is gone."""
    with ws.store.cursor() as cur:
        got = cur.execute("select w.data, (select min(rank) from retrievals r where r.task = ? and r.row = w.id) "
                          "from rows w where w.id = ?", [task, row]).fetchall()
    if not got:
        raise EngineError(f"source row {row} is no longer in the datastore",
                          fix="re-ingest its dataset, or edit the example instead")
    value = json.loads(got[0][0]) if isinstance(got[0][0], str) else got[0][0]
    return int(got[0][1] or 0), value if isinstance(value, dict) else {"value": value}


def _duplicates(ws: Workspace, task: Task, row: int) -> DuplicateIndex:
    """The task's kept examples, except those of ``row`` itself (they are alternatives, not duplicates)."""
    dups = DuplicateIndex(task)
    kept_examples(ws, task.name, dups, except_row=row)
    return dups


def _slot(ws: Workspace, task: str, row: int, phash: str, settings: TeacherSettings) -> tuple[int, str, int, bool]:
    """The row's first regeneration slot without a finished call: (n, key, its seed, retry)."""
    with ws.store.cursor() as cur:
        calls = dict(cur.execute("select key, status from teacher_calls where task = ? and row = ?",
                                 [task, row]).fetchall())
    for n in range(1, MAX_SLOTS):
        s = dataclasses.replace(settings, seed=settings.seed + n)
        key = call_key(task, row, phash, s, f"regenerate:{n}")
        if calls.get(key) != "ok":
            return n, key, s.seed, key in calls
    raise EngineError(f"row {row} was regenerated {MAX_SLOTS} times", fix="edit the example instead")


def _store(ws: Workspace, teacher: Teacher, spec: PromptSpec, old: _Old, key: str, retry: bool,
           answer: Answer) -> int:
    """Store the call and the new example; when it is usable, reject the old one (one transaction)."""
    with ws.store.transaction() as cur:
        new_id = store_answer(cur, teacher, spec, old.row, key, answer, retry=retry)
        if answer.status == "pending":
            review.record_regeneration(cur, spec.task.name, old.id, new_id)
    return new_id


async def regenerate(ws: Workspace, task_ref: str, ids: list[int], settings: TeacherSettings, *,
                     cot: str | None = None, text_interval: float = 0.2) -> AsyncGenerator[Event, None]:
    """Ask the teacher again for the source rows of examples ``ids``, one at a time (module docstring).

    Raises EngineError before any call for unknown ids, ids of another task, imported examples, an
    unreachable teacher host or a model it does not offer. ``cot`` (auto/on/off) forces the format; by
    default each example keeps the format it was made with. Once the host is gone (the backend's breaker
    tripped), the remaining ids are reported as ``error`` without a request.
    """
    task = resolve_task(ws, task_ref)
    ids = list(dict.fromkeys(int(i) for i in ids))
    if not ids:
        return
    found = await asyncio.to_thread(_examples, ws, task.name, ids)
    template = prompts.get_template(ws, task.name)
    rules, checks = await asyncio.to_thread(accepted_rules, ws, task.name)
    current = {c: PromptSpec.build(task, template, c, rules=rules, checks=checks) for c in (True, False)}
    # the format an example was made in, told by its prompt hash with or without the task's current rules
    specs = {PromptSpec.build(task, template, c, rules=r).hash: current[c] for c in (True, False) for r in ((), rules)}
    forced = current[prompts.resolve_cot(task, cot or "auto")]
    teacher = await Teacher.connect(settings)
    try:
        yield Log(f"{task.name}: asking {settings.model} on {settings.url} again for {len(ids)} example(s)")
        for old_id in ids:
            old = found[old_id]
            spec = forced if cot is not None else specs.get(old.prompt_hash or "", forced)
            texts: asyncio.Queue[Event] = asyncio.Queue()
            job = asyncio.ensure_future(_one(ws, teacher, spec, old, text_interval, texts.put_nowait))
            try:
                while not job.done():   # the streamed text as it arrives, then the outcome
                    getter = asyncio.ensure_future(texts.get())
                    await asyncio.wait({job, getter}, return_when=asyncio.FIRST_COMPLETED)
                    if getter.done():
                        yield getter.result()
                    else:
                        getter.cancel()
                yield job.result()
            finally:
                if not job.done():      # closed by the consumer: the call in flight is dropped
                    job.cancel()
                    await asyncio.gather(job, return_exceptions=True)
    finally:
        await teacher.close()


async def _one(ws: Workspace, teacher: Teacher, spec: PromptSpec, old: _Old, text_interval: float,
               emit: Callable[[Event], None]) -> Regenerated:
    """Regenerate one example: its replacement when it has one already, else one fresh call in the next slot."""
    task = spec.task
    if old.status == "rejected" and old.reason == review.REGENERATED:
        newer = await asyncio.to_thread(review.regenerated_into, ws, task.name, old.id)
        if newer is not None:
            got = await asyncio.to_thread(review.get_example, ws, newer)
            assert got is not None
            return Regenerated(old.id, newer, old.row, got.status, got.reason, got.input, got.output,
                               got.reasoning, replaced=True, cached=True)
    rank, data = await asyncio.to_thread(_source, ws, task.name, old.row)
    n, key, seed, retry = await asyncio.to_thread(_slot, ws, task.name, old.row, spec.hash, teacher.settings)
    dups = await asyncio.to_thread(_duplicates, ws, task, old.row)
    seeded = teacher.with_seed(seed)
    answer = await ask_example(seeded, spec, data, dups,
                               on_text=throttled(lambda text: emit(ExampleText(old.row, rank, text)), text_interval))
    if not answer.call_ok:
        return Regenerated(old.id, None, old.row, "error", f"{answer.reason}; #{old.id} is unchanged",
                           attempts=answer.attempts, slot=n)
    answer = dataclasses.replace(answer, tokens=dict(answer.tokens, regeneration=n))
    new_id = await asyncio.to_thread(_store, ws, seeded, spec, old, key, retry, answer)
    replaced = answer.status == "pending"
    reason = answer.reason if replaced else f"{answer.reason}; #{old.id} is unchanged"
    return Regenerated(old.id, new_id, old.row, answer.status, reason, answer.input, answer.output,
                       answer.reasoning, replaced=replaced, slot=n, attempts=answer.attempts, seconds=answer.seconds)


async def regenerate_one(ws: Workspace, task_ref: str, example_id: int, settings: TeacherSettings, *,
                         cot: str | None = None) -> Regenerated:
    """Regenerate one example (see :func:`regenerate`) and return its outcome."""
    result: Regenerated | None = None
    async for ev in regenerate(ws, task_ref, [example_id], settings, cot=cot):
        if isinstance(ev, Regenerated):
            result = ev
    assert result is not None
    return result
