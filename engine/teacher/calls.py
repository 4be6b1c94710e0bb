"""The teacher's cache: the ``teacher_calls`` rows and the examples they made (this module owns their SQL).

Every teacher call is stored under a key of (kind, task, row, prompt hash, model, options, and the backend
when it is not Ollama: keys made before there were backends stay valid), written with its example in one
transaction, so a re-run repeats no finished call. A call that could not be made or answered is stored as
``failed`` and replaced when it is asked again.

With ``transform --samples N`` a row's N sample calls are stored under keys of kind ``sample`` (each with
its own seed) and its example under the row's *vote* key (kind ``vote:N``, prompt hash ``vote:<hash>``).

A synthesized example has no source row: its call is stored under the negative number of its slot (slot 3
is row -3, with a seed of its own in its options) and its example's ``row`` is null. Every example records
the method that made it (``rebase`` or ``synthesize``) and the prompt wording (``default`` or ``paper``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from engine.teacher.quality import DuplicateIndex

if TYPE_CHECKING:
    from engine.teacher.ask import Answer, Teacher
    from engine.teacher.client import TeacherSettings
    from engine.teacher.prompts import PromptSpec
    from engine.workspace import Workspace

FILTER_REJECTED = "filter: the teacher says it does not fit the task"


def call_key(task: str, row: int, phash: str, settings: TeacherSettings, kind: str = "transform") -> str:
    """The cache key of one teacher call with ``settings``' model, options and backend."""
    parts: list[Any] = [kind, task, row, phash, settings.model, settings.options()]
    if settings.backend != "ollama":
        parts.append(settings.backend)
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def transform_kind(samples: int) -> str:
    """The kind of a row's transform key: one call, or the vote of ``samples`` sample calls (``vote:N``)."""
    return f"vote:{samples}" if samples > 1 else "transform"


def filter_key(task: str, row: int, phash: str, settings: TeacherSettings) -> str:
    """The cache key of the filter call for the example made from ``row``."""
    return call_key(task, row, "filter:" + phash, settings, "filter")


def stored_options(settings: TeacherSettings) -> str:
    """The options kept with a call and its example: what was sent, plus the backend when it is not Ollama."""
    opts = settings.options()
    if settings.backend != "ollama":
        opts["backend"] = settings.backend
    return json.dumps(opts)


def call_states(ws: Workspace, task: str, keys: list[str]) -> dict[str, str]:
    """The stored state (``ok`` or ``failed``) of each of ``keys`` that has a stored call."""
    with ws.store.cursor() as cur:
        return dict(cur.execute("select key, status from teacher_calls where task = ? and key in "
                                "(select unnest(?::varchar[]))", [task, keys]).fetchall())


def examples_by_call(ws: Workspace, task: str, keys: list[str]) -> dict[str, tuple[int, str, str, str]]:
    """(id, input, output, status) of the example each of ``keys`` made."""
    with ws.store.cursor() as cur:
        got = cur.execute("select call_key, id, input, output, status from examples where task = ? and call_key "
                          "in (select unnest(?::varchar[])) order by id", [task, keys]).fetchall()
    return {k: (i, a, b, s) for k, i, a, b, s in got}


def kept_examples(ws: Workspace, task: str, dups: DuplicateIndex, *, except_row: int | None = None,
                  method: str | None = None, except_ids: Collection[int] = ()) -> None:
    """Add the task's kept examples (pending, accepted, rejected) to ``dups``, except those of ``except_row``
    (a row's own examples are alternatives to each other, not duplicates) and ``except_ids`` (examples about to
    be replaced); with ``method``, only the examples that method made (the data of two methods are compared,
    never merged, so neither may thin the other)."""
    sql = "select id, input, output from examples where task = ? and status in ('pending', 'accepted', 'rejected')"
    params: list[Any] = [task]
    if except_row is not None:
        sql += " and row is distinct from ?"
        params.append(except_row)
    if except_ids:
        sql += " and id not in (select unnest(?::bigint[]))"
        params.append([int(i) for i in except_ids])
    if method is not None:
        sql += " and method = ?"
        params.append(method)
    with ws.store.cursor() as cur:
        got = cur.execute(sql + " order by id", params).fetchall()
    for i, a, b in got:
        dups.add(a, b, f"#{i}")


Write = tuple["Teacher", "PromptSpec", int, str, "Answer", bool]
"""One call to store: (teacher, spec, row, key, answer, retry); ``row`` is minus the slot for a synthesized
example."""

_CALL_COLUMNS = "key, task, row, model, prompt_hash, options, response, status, error"
_EXAMPLE_COLUMNS = ("task, row, input, output, reasoning, status, reason, teacher_model, teacher_digest, options, "
                    "prompt_hash, call_key, raw_response, timings, tokens, method, prompt, samples, agreement, base_hash")
_ROWS_PER_STATEMENT = 256


def _values(rows: int, columns: int) -> str:
    return ", ".join(["(" + ", ".join(["?"] * columns) + ")"] * rows)


def store_answers(cur: Any, writes: list[Write]) -> list[int]:
    """Write calls and the examples they made (inside the caller's transaction); return the example ids.

    One statement per table for many calls: a DuckDB statement costs about half a millisecond to run, so a
    run's concurrent answers written one by one (75 ms for 64) would hold every worker longer than the
    calls' own bookkeeping; written together they take 10 ms. A ``retry`` write replaces the failed call
    stored under its key and its failed example. The answer of a self-consistency vote (``answer.samples``)
    is stored under the row's vote key with the prompt hash ``vote:<hash>``: it records a decision, the
    sample calls themselves are stored by :func:`store_sample`.
    """
    ids: dict[str, int] = {}
    for start in range(0, len(writes), _ROWS_PER_STATEMENT):
        chunk = writes[start:start + _ROWS_PER_STATEMENT]
        calls: list[Any] = []
        examples: list[Any] = []
        for teacher, spec, row, key, answer, retry in chunk:
            task, options = spec.task.name, stored_options(teacher.settings)
            if retry:      # delete, then insert: "insert or replace" is slower in DuckDB
                cur.execute("delete from examples where task = ? and call_key = ? and status = 'failed'", [task, key])
                cur.execute("delete from teacher_calls where key = ?", [key])
            call_hash = f"vote:{spec.hash}" if answer.samples else spec.hash
            calls += [key, task, row, teacher.settings.model, call_hash, options, answer.response,
                      "ok" if answer.call_ok else "failed", answer.error]
            examples += [task, row if row >= 0 else None, answer.input, answer.output, answer.reasoning,
                         answer.status, answer.reason, teacher.settings.model, teacher.digest, options, spec.hash, key,
                         answer.response, json.dumps(answer.timings), json.dumps(answer.tokens), spec.method,
                         spec.prompt, answer.samples, answer.agreement, spec.base_hash if spec.rules else None]
        cur.execute(f"insert into teacher_calls ({_CALL_COLUMNS}) values {_values(len(chunk), 9)}", calls)
        got = cur.execute(f"insert into examples ({_EXAMPLE_COLUMNS}) values {_values(len(chunk), 20)} "
                          "returning call_key, id", examples).fetchall()
        ids.update((k, int(i)) for k, i in got)
    return [ids[w[3]] for w in writes]


def store_answer(cur: Any, teacher: Teacher, spec: PromptSpec, row: int, key: str, answer: Answer, *,
                 retry: bool) -> int:
    """Write one call and its example (see :func:`store_answers`); return the example id."""
    return store_answers(cur, [(teacher, spec, row, key, answer, retry)])[0]


def store_sample(cur: Any, teacher: Teacher, spec: PromptSpec, row: int, key: str, answer: Answer) -> None:
    """Write one sample call of a self-consistency vote (no example of its own; a failed one is replaced when
    it is asked again)."""
    cur.execute("delete from teacher_calls where key = ?", [key])
    cur.execute(f"insert into teacher_calls ({_CALL_COLUMNS}) values {_values(1, 9)}",
                [key, spec.task.name, row, teacher.settings.model, spec.hash, stored_options(teacher.settings),
                 answer.response, "ok" if answer.call_ok else "failed", answer.error])


def pending_made_otherwise(ws: Workspace, task: str, phash: str, method: str) -> dict[int, int]:
    """``{row: example id}`` of the task's pending examples made with another prompt than ``phash`` (before
    the task's rules changed, say) by ``method``; the newest per row."""
    with ws.store.cursor() as cur:
        got = cur.execute("select row, max(id) from examples where task = ? and status = 'pending' and method = ? "
                          "and row is not null and prompt_hash is distinct from ? group by row",
                          [task, method, phash]).fetchall()
    return {int(r): int(i) for r, i in got}


def rows_made_before_rules(ws: Workspace, spec: PromptSpec) -> set[int]:
    """The rows that have a usable example (not failed) made with ``spec``'s prompt up to its rules, under
    other rules than its own: a change of the task's rules alone does not make them again."""
    with ws.store.cursor() as cur:
        got = cur.execute("select distinct row from examples where task = ? and method = ? and row is not null "
                          "and status <> 'failed' and prompt_hash <> ? and coalesce(base_hash, prompt_hash) = ?",
                          [spec.task.name, spec.method, spec.hash, spec.base_hash]).fetchall()
    return {int(r[0]) for r in got}


def store_filter(cur: Any, teacher: Teacher, spec: PromptSpec, row: int, example_id: int, key: str,
                 response: str | None, fits: bool | None, error: str | None) -> None:
    """Write a filter call (``fits`` None: it failed or its reply was unusable, so it is asked again next
    run); a ``False`` verdict rejects the example when it is still pending."""
    cur.execute("delete from teacher_calls where key = ?", [key])
    cur.execute("insert into teacher_calls (key, task, row, model, prompt_hash, options, response, "
                "status, error) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [key, spec.task.name, row, teacher.settings.model, "filter:" + spec.hash,
                 stored_options(teacher.settings), response, "ok" if fits is not None else "failed", error])
    if fits is False:
        cur.execute("update examples set status = 'rejected', reason = ?, updated_at = current_timestamp "
                    "where id = ? and status = 'pending'", [FILTER_REJECTED, example_id])


def raw_response(ws: Workspace, example_id: int) -> str | None:
    """The teacher's raw reply behind an example (None for an unknown id or an example without one)."""
    with ws.store.cursor() as cur:
        rows = cur.execute("select raw_response from examples where id = ?", [example_id]).fetchall()
    return rows[0][0] if rows else None


def answered(ws: Workspace, task: str, keys: list[str]) -> dict[str, str]:
    """The stored replies of the finished (``ok``) calls among ``keys``."""
    with ws.store.cursor() as cur:
        return dict(cur.execute("select key, response from teacher_calls where task = ? and status = 'ok' and key in "
                                "(select unnest(?::varchar[]))", [task, keys]).fetchall())


def store_answer_call(ws: Workspace, teacher: Teacher, task: str, key: str, prompt_hash: str,
                      response: str | None, error: str | None) -> None:
    """Record a call that made no example (a test item answered, a rule proposed: no source row): a finished
    one is never repeated, a failed one is asked again next time."""
    with ws.store.transaction() as cur:
        cur.execute("delete from teacher_calls where key = ?", [key])
        cur.execute("insert into teacher_calls (key, task, row, model, prompt_hash, options, response, status, "
                    "error) values (?, ?, -1, ?, ?, ?, ?, ?, ?)",
                    [key, task, teacher.settings.model, prompt_hash, stored_options(teacher.settings), response,
                     "ok" if error is None else "failed", error])
