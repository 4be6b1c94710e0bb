"""Regenerate: ask the teacher again for the source row of an example the reviewer does not want.

:func:`regenerate` is an async generator of the same kind of events as :func:`engine.teacher.transform.transform`
(:class:`~engine.teacher.transform.ExampleText` while the reply streams, :class:`~engine.events.Log`) plus one
:class:`Regenerated` per example asked for. Each regeneration is one fresh teacher call for the example's
source row, with the same prompt template and format (reasoning or direct, taken from the example's prompt
hash) and the current teacher settings, except that regeneration ``n`` of a row (1, 2, ...: the first slot
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
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from engine import review
from engine.errors import EngineError
from engine.events import Event, Log
from engine.tasks import Task, resolve_task
from engine.teacher import prompts
from engine.teacher.client import TeacherCallFailed, TeacherSettings, chat, check_model, make_client
from engine.teacher.quality import DuplicateIndex, Parsed, Unusable, parse_reply
from engine.teacher.transform import ExampleText, _Item, _Run, _store, call_key
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
        return {"old_id": self.old_id, "example_id": self.example_id, "row": self.row, "status": self.status,
                "reason": self.reason, "replaced": self.replaced, "cached": self.cached, "slot": self.slot,
                "attempts": self.attempts, "seconds": round(self.seconds, 3)}


def _examples(ws: Workspace, task: str, ids: list[int]) -> dict[int, tuple[Any, ...]]:
    """(id, task, row, status, reason, prompt_hash) of ``ids``; EngineError naming unknown ones."""
    with ws.store.cursor() as cur:
        found = review.find_examples(cur, task, ids, "row, status, reason, prompt_hash")
    imported = [i for i in ids if found[i][2] is None]
    if imported:
        raise EngineError(f"example {', '.join(map(str, imported))} has no source row (imported), so the teacher "
                          "cannot be asked again", fix="edit it, or reject it")
    return found


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
    """The task's kept examples (pending, accepted, rejected), except those of ``row`` itself."""
    dups = DuplicateIndex(task)
    with ws.store.cursor() as cur:
        got = cur.execute("select id, input, output from examples where task = ? and status in "
                          "('pending', 'accepted', 'rejected') and row is distinct from ? order by id",
                          [task.name, row]).fetchall()
    for i, a, b in got:
        dups.add(a, b, f"#{i}")
    return dups


def _slot(ws: Workspace, task: str, row: int, phash: str, settings: TeacherSettings) -> tuple[int, str, TeacherSettings, bool]:
    """The row's first regeneration slot without a finished call: (n, key, settings with its seed, retry)."""
    with ws.store.cursor() as cur:
        calls = dict(cur.execute("select key, status from teacher_calls where task = ? and row = ?",
                                 [task, row]).fetchall())
    for n in range(1, MAX_SLOTS):
        s = dataclasses.replace(settings, seed=settings.seed + n)
        key = call_key(task, row, phash, s.model, s.options(), f"regenerate:{n}")
        if calls.get(key) != "ok":
            return n, key, s, key in calls
    raise EngineError(f"row {row} was regenerated {MAX_SLOTS} times", fix="edit the example instead")


def _store_regeneration(cur: Any, run: _Run, item: _Item, old_id: int, replace: bool, **kwargs: Any) -> int:
    """Store the call and the new example; when ``replace``, reject the old one (one transaction)."""
    new_id = _store(cur, run, item, **kwargs)
    if replace:
        review.record_regeneration(cur, run.task.name, old_id, new_id)
    return new_id


async def regenerate(ws: Workspace, task_ref: str, ids: list[int], settings: TeacherSettings, *,
                     cot: str | None = None, text_interval: float = 0.2) -> AsyncIterator[Event]:
    """Ask the teacher again for the source rows of examples ``ids``, one at a time (module docstring).

    Raises EngineError before any call for unknown ids, ids of another task, imported examples, an
    unreachable Ollama or a model that is not installed. ``cot`` (auto/on/off) forces the format; by
    default each example keeps the format it was made with.
    """
    task = resolve_task(ws, task_ref)
    ids = list(dict.fromkeys(int(i) for i in ids))
    if not ids:
        return
    found = await asyncio.to_thread(_examples, ws, task.name, ids)
    template = prompts.get_template(ws, task.name)
    formats = {}
    for use_cot in (True, False):
        schema = prompts.output_schema(task, use_cot)
        formats[prompts.prompt_hash(template, task, schema)] = (use_cot, schema)
    default_cot = prompts.resolve_cot(task, cot or "auto")
    client = make_client(settings)
    try:
        info = await check_model(client, settings.url, settings.model)
        yield Log(f"{task.name}: asking {settings.model} on {settings.url} again for {len(ids)} example(s)")
        for old_id in ids:
            texts: asyncio.Queue[Event] = asyncio.Queue()
            job = asyncio.ensure_future(_one(ws, task, found[old_id], settings, info.digest, template, formats,
                                             default_cot, cot is not None, client, text_interval,
                                             texts.put_nowait))
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
        await client.close()


async def _one(ws: Workspace, task: Task, example: tuple[Any, ...], settings: TeacherSettings, digest: str,
               template: str, formats: dict[str, tuple[bool, dict[str, Any]]], default_cot: bool, forced: bool,
               client: Any, text_interval: float, emit: Callable[[Event], None]) -> Regenerated:
    old_id, _, row, status, reason, old_phash = example
    old_id, row = int(old_id), int(row)
    if status == "rejected" and reason == review.REGENERATED:
        newer = await asyncio.to_thread(review.regenerated_into, ws, task.name, old_id)
        if newer is not None:
            got = await asyncio.to_thread(review.get_example, ws, newer)
            assert got is not None
            return Regenerated(old_id, newer, row, got.status, got.reason, got.input, got.output,
                               got.reasoning, replaced=True, cached=True)
    use_cot = default_cot if forced or old_phash not in formats else formats[old_phash][0]
    schema = prompts.output_schema(task, use_cot)
    phash = prompts.prompt_hash(template, task, schema)
    labels = prompts.label_set(task, use_cot)
    rank, data = await asyncio.to_thread(_source, ws, task.name, row)
    n, key, s, retry = await asyncio.to_thread(_slot, ws, task.name, row, phash, settings)
    dups = await asyncio.to_thread(_duplicates, ws, task, row)
    run = _Run(task, s, template, use_cot, labels, schema, phash, digest, s.options(), False, dups)
    item = _Item(rank, row, data, key, retry=retry)
    last = 0.0

    def on_text(text: str) -> None:
        nonlocal last
        if time.monotonic() - last >= text_interval:
            last = time.monotonic()
            emit(ExampleText(row, rank, text))

    t0 = time.perf_counter()
    messages = prompts.transform_messages(template, task, data)
    t_prompt = time.perf_counter() - t0
    try:
        res = await chat(client, s, messages, schema, on_text=on_text)
    except TeacherCallFailed as exc:
        return Regenerated(old_id, None, row, "error",
                           f"teacher call failed after {exc.attempts} attempt(s): {exc.message}; "
                           f"#{old_id} is unchanged", attempts=exc.attempts, slot=n)
    t1 = time.perf_counter()
    parsed: Parsed | None = None
    try:
        parsed = parse_reply(res.content, cot=use_cot, labels=labels, done_reason=res.done_reason)
        why = dups.check(parsed.input, parsed.output)
        new_status = "duplicate" if why else "pending"
    except Unusable as exc:
        new_status, why = "failed", exc.reason
    timings = {"prompt_ms": round(t_prompt * 1e3, 3), "call_s": round(res.seconds, 4),
               "ttfb_s": round(res.ttfb or 0.0, 4), "check_ms": round((time.perf_counter() - t1) * 1e3, 3)}
    replace = new_status == "pending"
    new_id = await asyncio.to_thread(_write, ws, run, item, old_id, replace, res.content, new_status, why, parsed,
                                     timings, dict(res.metrics, attempts=res.attempts, regeneration=n))
    if not replace:
        why = f"{why}; #{old_id} is unchanged"
    return Regenerated(old_id, new_id, row, new_status, why, parsed.input if parsed else "",
                       parsed.output if parsed else "", parsed.reasoning if parsed else None, replaced=replace,
                       slot=n, attempts=res.attempts, seconds=res.seconds)


def _write(ws: Workspace, run: _Run, item: _Item, old_id: int, replace: bool, response: str, status: str,
           reason: str | None, parsed: Parsed | None, timings: dict[str, float], tokens: dict[str, int]) -> int:
    with ws.store.transaction() as cur:
        return _store_regeneration(cur, run, item, old_id, replace, response=response, call_status="ok",
                                   error=None, status=status, reason=reason, parsed=parsed, timings=timings,
                                   tokens=tokens)


async def regenerate_one(ws: Workspace, task_ref: str, example_id: int, settings: TeacherSettings, *,
                         cot: str | None = None) -> Regenerated:
    """Regenerate one example (see :func:`regenerate`) and return its outcome."""
    result: Regenerated | None = None
    async for ev in regenerate(ws, task_ref, [example_id], settings, cot=cot):
        if isinstance(ev, Regenerated):
            result = ev
    assert result is not None
    return result
