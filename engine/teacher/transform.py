"""ReBase stage 4: the teacher rewrites the task's retrieved rows into task examples.

:func:`transform` is an async generator of events over the task's pool (``retrievals`` joined to
``rows``, by rank): :class:`ExampleText` snapshots (the full streamed text so far, throttled per example),
:class:`ExampleDone` per example, :class:`~engine.events.Progress` a few times a second, and finally
:class:`TransformFinished` with the run's figures. At most ``concurrency`` calls are in flight.

Every call is cached in ``teacher_calls`` under a key of (task, row, prompt hash, model, options) and
written, together with its example, in one transaction as soon as it finishes: a re-run never repeats a
finished call, and killing a run (or closing the generator) loses at most the calls in flight. Calls that
failed for transport reasons after all retries are stored as ``failed`` examples and tried again on the
next run; replies that cannot be used (bad JSON, schema violation, empty, over-long, outside the label set)
are final ``failed`` examples with the raw reply kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from engine.errors import EngineError
from engine.events import Event, Log, Progress
from engine.rate import RateMeter, format_seconds
from engine.retrieval.pool import load_pool
from engine.tasks import Task, resolve_task
from engine.teacher import prompts
from engine.teacher.client import TeacherCallFailed, TeacherSettings, chat, check_model, make_client
from engine.teacher.quality import DuplicateIndex, Parsed, Unusable, parse_reply
from engine.workspace import Workspace

log = logging.getLogger(__name__)


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
        return {"requested": self.requested, "done": self.done, "failed": self.failed,
                "duplicates": self.duplicates, "cached": self.cached, "rejected": self.rejected,
                "retries": self.retries, "tokens": self.tokens, "seconds": round(self.seconds, 3),
                "examples_per_s": round(self.examples_per_s, 3)}


@dataclass
class _Item:
    rank: int
    row: int
    data: dict[str, Any]
    key: str
    call: bool = True                    # False: cached, only the filter pass is missing
    retry: bool = False                  # a failed call of an earlier run is stored under this key
    example_id: int | None = None
    example: tuple[str, str] | None = None


@dataclass
class _Run:
    task: Task
    settings: TeacherSettings
    template: str
    cot: bool
    labels: prompts.LabelSet | None
    schema: dict[str, Any]
    phash: str
    digest: str
    options: dict[str, Any]
    use_filter: bool
    dups: DuplicateIndex
    counts: dict[str, int] = field(default_factory=lambda: {"done": 0, "failed": 0, "duplicates": 0,
                                                             "rejected": 0, "retries": 0, "tokens": 0,
                                                             "finished": 0})


def call_key(task: str, row: int, phash: str, model: str, options: dict[str, Any], kind: str = "transform") -> str:
    """The cache key of one teacher call."""
    blob = json.dumps([kind, task, row, phash, model, options], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def filter_key(task: str, row: int, phash: str, model: str, options: dict[str, Any]) -> str:
    """The cache key of the filter call for the example made from ``row``."""
    return call_key(task, row, "filter:" + phash, model, options, "filter")


def _existing(ws: Workspace, task: str, keys: list[str]) -> tuple[dict[str, str], dict[str, tuple[int, str, str, str]]]:
    """Cached call states by key, and the (id, input, output, status) of examples by call key."""
    with ws.store.cursor() as cur:
        calls = dict(cur.execute("select key, status from teacher_calls where task = ? and key in "
                                 "(select unnest(?::varchar[]))", [task, keys]).fetchall())
        ex = cur.execute("select call_key, id, input, output, status from examples where task = ? and call_key in "
                         "(select unnest(?::varchar[])) order by id", [task, keys]).fetchall()
    return calls, {k: (i, a, b, s) for k, i, a, b, s in ex}


def _seed_duplicates(ws: Workspace, task: str, dups: DuplicateIndex) -> None:
    with ws.store.cursor() as cur:
        got = cur.execute("select id, input, output from examples where task = ? and status in "
                          "('pending', 'accepted', 'rejected') order by id", [task]).fetchall()
    for i, a, b in got:
        dups.add(a, b, f"#{i}")


def _store(cur: Any, run: _Run, item: _Item, *, response: str | None, call_status: str, error: str | None,
           status: str, reason: str | None, parsed: Parsed | None, timings: dict[str, float],
           tokens: dict[str, int]) -> int:
    """Write the call and its example (inside the writer's transaction); return the example id."""
    if item.retry:      # replace the failed call and its failed example ("insert or replace" is slower)
        cur.execute("delete from examples where task = ? and call_key = ? and status = 'failed'",
                    [run.task.name, item.key])
        cur.execute("delete from teacher_calls where key = ?", [item.key])
    cur.execute("insert into teacher_calls (key, task, row, model, prompt_hash, options, response, "
                "status, error) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [item.key, run.task.name, item.row, run.settings.model, run.phash, json.dumps(run.options),
                 response, call_status, error])
    got = cur.execute(
        "insert into examples (task, row, input, output, reasoning, status, reason, teacher_model, "
        "teacher_digest, options, prompt_hash, call_key, raw_response, timings, tokens) "
        "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) returning id",
        [run.task.name, item.row, parsed.input if parsed else "", parsed.output if parsed else "",
         parsed.reasoning if parsed else None, status, reason, run.settings.model, run.digest,
         json.dumps(run.options), run.phash, item.key, response, json.dumps(timings), json.dumps(tokens)],
    ).fetchall()
    return int(got[0][0])


def _store_filter(cur: Any, run: _Run, item: _Item, key: str, response: str | None, fits: bool | None,
                  error: str | None) -> None:
    cur.execute("delete from teacher_calls where key = ?", [key])
    cur.execute("insert into teacher_calls (key, task, row, model, prompt_hash, options, response, "
                "status, error) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [key, run.task.name, item.row, run.settings.model, "filter:" + run.phash,
                 json.dumps(run.options), response, "ok" if fits is not None else "failed", error])
    if fits is False:
        cur.execute("update examples set status = 'rejected', reason = ?, updated_at = current_timestamp "
                    "where id = ? and status = 'pending'",
                    ["filter: the teacher says it does not fit the task", item.example_id])


class _Writer:
    """Group commit: the writes that arrive while one transaction runs share the next one.

    Each worker awaits its own write (so a call counts as finished only once it is stored), but the
    concurrent workers' writes cost one commit instead of one each. A cancelled caller does not abort its
    write; :meth:`close` waits for every submitted write.
    """

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.pending: list[tuple[Any, tuple[Any, ...], dict[str, Any], asyncio.Future[Any]]] = []
        self.wake = asyncio.Event()
        self.closing = False
        self.task = asyncio.ensure_future(self._run())

    async def submit(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending.append((fn, args, kwargs, fut))
        self.wake.set()
        return await asyncio.shield(fut)

    def _write(self, batch: list[tuple[Any, tuple[Any, ...], dict[str, Any], Any]]) -> list[tuple[bool, Any]]:
        try:
            with self.ws.store.transaction() as cur:
                return [(True, fn(cur, *args, **kwargs)) for fn, args, kwargs, _ in batch]
        except Exception:  # noqa: BLE001 - one bad write must not sink the others: retry one by one
            out: list[tuple[bool, Any]] = []
            for fn, args, kwargs, _ in batch:
                try:
                    with self.ws.store.transaction() as cur:
                        out.append((True, fn(cur, *args, **kwargs)))
                except Exception as exc:  # noqa: BLE001 - handed to the waiting worker
                    out.append((False, exc))
            return out

    async def _run(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            batch, self.pending = self.pending, []
            if batch:
                results = await asyncio.to_thread(self._write, batch)
                for (_, _, _, fut), (ok, value) in zip(batch, results, strict=True):
                    if not fut.done():
                        fut.set_result(value) if ok else fut.set_exception(value)
            elif self.closing:
                return

    async def close(self) -> None:
        self.closing = True
        self.wake.set()
        await asyncio.shield(self.task)


async def transform(ws: Workspace, task_ref: str, settings: TeacherSettings, *, limit: int | None = None,
                    cot: str = "auto", use_filter: bool = False, text_interval: float = 0.2,
                    progress_interval: float = 0.25) -> AsyncIterator[Event]:
    """Transform the first ``limit`` rows of the task's pool into examples (see the module docstring).

    Raises EngineError before any work when the task has no pool, Ollama is unreachable or the model is
    not installed. Close the generator (``aclose()``) to cancel: finished calls are kept.
    """
    task = resolve_task(ws, task_ref)
    pool = await asyncio.to_thread(load_pool, ws, task.name, limit)
    if not pool:
        raise EngineError(f"task {task.name!r} has no retrieved rows to transform",
                          fix=f"run `rebase-tui retrieve {task.name}` first")
    use_cot = prompts.resolve_cot(task, cot)
    template = prompts.get_template(ws, task.name)
    schema = prompts.output_schema(task, use_cot)
    labels = prompts.label_set(task, use_cot)
    phash = prompts.prompt_hash(template, task, schema)
    options = settings.options()
    client = make_client(settings)
    try:
        info = await check_model(client, settings.url, settings.model)
    except BaseException:
        await client.close()
        raise
    run = _Run(task, settings, template, use_cot, labels, schema, phash, info.digest, options, use_filter,
               DuplicateIndex(task))
    await asyncio.to_thread(_seed_duplicates, ws, task.name, run.dups)

    items = [_Item(p.rank, p.row, p.data, call_key(task.name, p.row, phash, settings.model, options))
             for p in pool]
    calls, examples = await asyncio.to_thread(_existing, ws, task.name, [i.key for i in items])
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
        fkeys = {it.row: filter_key(task.name, it.row, phash, settings.model, options) for it in todo if not it.call}
        fcalls, _ = await asyncio.to_thread(_existing, ws, task.name, list(fkeys.values()))
        todo = [it for it in todo if it.call or fcalls.get(fkeys[it.row]) != "ok"]
    new_calls = sum(1 for it in todo if it.call)
    yield Log(f"{task.name}: {len(pool)} rows requested, {cached} already done (cached), {new_calls} to "
              f"transform with {settings.model} on {settings.url} ({'reasoning' if use_cot else 'direct'} "
              f"format{', label set ' + labels.describe() if labels else ''})")

    queue: asyncio.Queue[_Item] = asyncio.Queue()
    for it in todo:
        queue.put_nowait(it)
    out: asyncio.Queue[Event | None] = asyncio.Queue()
    writer = _Writer(ws)
    started = time.perf_counter()
    meter = RateMeter()
    total = len(pool)
    finished_base = cached

    persist = writer.submit

    async def one(it: _Item) -> None:
        last_emit = 0.0

        def on_text(text: str) -> None:
            nonlocal last_emit
            now = time.monotonic()
            if now - last_emit >= text_interval:
                last_emit = now
                out.put_nowait(ExampleText(it.row, it.rank, text))

        if it.call:
            t0 = time.perf_counter()
            messages = prompts.transform_messages(template, task, it.data)
            t_prompt = time.perf_counter() - t0
            try:
                res = await chat(client, settings, messages, schema, on_text=on_text)
            except TeacherCallFailed as exc:
                run.counts["retries"] += max(0, exc.attempts - 1)
                reason = f"teacher call failed after {exc.attempts} attempt(s): {exc.message}"
                ex_id = await persist(_store, run, it, response=exc.partial or None, call_status="failed",
                                      error="; ".join(exc.errors), status="failed", reason=reason, parsed=None,
                                      timings={"prompt_ms": t_prompt * 1e3}, tokens={})
                run.counts["failed"] += 1
                run.counts["finished"] += 1
                out.put_nowait(ExampleDone(it.row, it.rank, ex_id, "failed", reason, "", "",
                                           attempts=exc.attempts))
                return
            run.counts["retries"] += res.attempts - 1
            run.counts["tokens"] += res.metrics.get("eval_count", 0)
            t1 = time.perf_counter()
            parsed: Parsed | None = None
            try:
                parsed = parse_reply(res.content, cot=use_cot, labels=labels, done_reason=res.done_reason)
                reason = run.dups.check(parsed.input, parsed.output)
                status = "duplicate" if reason else "pending"
            except Unusable as exc:
                status, reason = "failed", exc.reason
            if status == "pending" and parsed is not None:
                run.dups.add(parsed.input, parsed.output, f"the example from row {it.row}")
            t_check = time.perf_counter() - t1
            timings = {"prompt_ms": round(t_prompt * 1e3, 3), "call_s": round(res.seconds, 4),
                       "ttfb_s": round(res.ttfb or 0.0, 4), "check_ms": round(t_check * 1e3, 3)}
            t2 = time.perf_counter()
            ex_id = await persist(_store, run, it, response=res.content, call_status="ok", error=None,
                                  status=status, reason=reason, parsed=parsed, timings=timings,
                                  tokens=dict(res.metrics, attempts=res.attempts))
            timings["store_ms"] = round((time.perf_counter() - t2) * 1e3, 3)
            run.counts[{"pending": "done", "failed": "failed", "duplicate": "duplicates"}[status]] += 1
            run.counts["finished"] += 1
            it.example_id = ex_id
            it.example = (parsed.input, parsed.output) if parsed else None
            out.put_nowait(ExampleDone(it.row, it.rank, ex_id, status, reason,
                                       parsed.input if parsed else "", parsed.output if parsed else "",
                                       parsed.reasoning if parsed else None, res.attempts, res.seconds))
            if status != "pending" or not use_filter:
                return
        # the paper's filter pass: does the new example fit the task?
        assert it.example is not None
        fkey = filter_key(task.name, it.row, phash, settings.model, options)
        try:
            fres = await chat(client, settings, prompts.filter_messages(task, *it.example), prompts.FILTER_SCHEMA)
        except TeacherCallFailed as exc:
            await persist(_store_filter, run, it, fkey, exc.partial or None, None, "; ".join(exc.errors))
            out.put_nowait(Log(f"filter call for row {it.row} failed: {exc.message}", "WARNING"))
            return
        try:
            fits = json.loads(fres.content).get("fits")
        except (ValueError, AttributeError):
            fits = None
        if not isinstance(fits, bool):
            await persist(_store_filter, run, it, fkey, fres.content, None, "unparseable filter reply")
            out.put_nowait(Log(f"filter reply for row {it.row} was unusable; the example stays pending",
                               "WARNING"))
            return
        await persist(_store_filter, run, it, fkey, fres.content, fits, None)
        if not fits:
            run.counts["rejected"] += 1
            out.put_nowait(ExampleDone(it.row, it.rank, it.example_id, "rejected",
                                       "filter: the teacher says it does not fit the task",
                                       it.example[0], it.example[1]))

    async def worker() -> None:
        while True:
            try:
                it = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await one(it)

    async def supervise(workers: list[asyncio.Task[None]]) -> None:
        try:
            await asyncio.gather(*workers)
        finally:
            out.put_nowait(None)

    def progress() -> Progress:
        c = run.counts
        done = finished_base + c["finished"]
        rate = meter.update(c["finished"])
        elapsed = time.perf_counter() - started
        tps = c["tokens"] / elapsed if elapsed > 0 else 0.0
        msg = (f"{c['done']} new, {c['failed']} failed, {c['duplicates']} duplicates"
               + (f", {c['rejected']} filtered out" if use_filter else "")
               + (f", {c['retries']} retries" if c["retries"] else "")
               + f", {tps:.0f} tok/s, ETA {format_seconds(meter.eta(done, total) if rate else None)}")
        return Progress("transform", done, total, "examples", msg)

    workers = [asyncio.create_task(worker()) for _ in range(min(settings.concurrency, max(1, len(todo))))]
    sup = asyncio.create_task(supervise(workers))
    failure: BaseException | None = None
    try:
        yield progress()
        last_progress = time.monotonic()
        while True:
            try:
                ev = await asyncio.wait_for(out.get(), timeout=progress_interval)
            except TimeoutError:
                ev = "tick"
            if ev is None:
                break
            if ev != "tick":
                yield ev
            if time.monotonic() - last_progress >= progress_interval:
                last_progress = time.monotonic()
                yield progress()
        for w in workers:               # surface a worker's error (e.g. the model vanished: EngineError)
            if w.done() and not w.cancelled() and w.exception() is not None:
                failure = w.exception()
                raise failure
        yield progress()
        c = run.counts
        seconds = time.perf_counter() - started
        yield TransformFinished(total, c["done"], c["failed"], c["duplicates"], cached, c["rejected"],
                                c["retries"], c["tokens"], seconds,
                                c["finished"] / seconds if seconds > 0 else 0.0)
    finally:
        for w in workers:
            w.cancel()
        sup.cancel()
        await asyncio.gather(*workers, sup, return_exceptions=True)
        await writer.close()
        await client.close()
