"""Review of a task's examples: list, accept, reject (with a reason), edit, undo.

Plain synchronous calls taking a workspace (sub-millisecond DuckDB writes), used by the `review` and
`examples` commands and the TUI's Review screen (:func:`record_regeneration` runs inside the regeneration's
own transaction, see :mod:`engine.teacher.regenerate`). Every change is recorded in the append-only ``decisions``
table (the example's fields before and after); the decisions of one action (e.g. accept-all) share a
``batch``, and :func:`undo` reverts the newest batch not yet undone. Decisions survive restarts.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from engine.errors import EngineError
from engine.workspace import Workspace

STATUSES = ("pending", "accepted", "rejected", "failed", "duplicate")
METHODS = ("rebase", "synthesize")
"""How an example was made: from a retrieved row, or by the teacher from the task alone (the baseline)."""
_FIELDS = ("status", "reason", "input", "output", "reasoning", "edited")
_COLUMNS = ("e.id, e.task, e.row, e.input, e.output, e.reasoning, e.status, e.reason, e.teacher_model, e.edited, "
            "e.raw_response, e.created_at, e.updated_at, d.name, c.name, w.row_id, e.method, e.samples, e.agreement")
_SOURCE_JOINS = ("left join rows w on w.id = e.row left join datasets d on d.id = w.dataset "
                 "left join configs c on c.id = w.config")
_LIST_SQL = f"select {_COLUMNS} from examples e {_SOURCE_JOINS}"


@dataclass(frozen=True, slots=True)
class ExampleSource:
    """Where an example came from: the dataset id, config and original row id of its pool row."""

    dataset: str | None
    config: str | None
    row_id: str | None


@dataclass(frozen=True, slots=True)
class ExampleRecord:
    """One row of the ``examples`` table (a teacher-written task example) with its source. ``method`` says how
    it was made: ``rebase`` (from the retrieved row ``row``) or ``synthesize`` (from the task alone: no row).
    With ``transform --samples N``, ``samples`` is N and ``agreement`` the share of the sampled answers that
    agree with this example's (None for an example made from one answer)."""

    id: int
    task: str
    row: int | None
    input: str
    output: str
    reasoning: str | None
    status: str
    reason: str | None
    teacher_model: str | None
    edited: bool
    raw_response: str | None
    created_at: str | None
    updated_at: str | None
    source: ExampleSource | None
    method: str = "rebase"
    samples: int | None = None
    agreement: float | None = None

    @property
    def votes(self) -> str:
        """The agreement as votes (``"2/3"``), empty for an example made from one answer."""
        return votes(self.samples, self.agreement)

    def to_json(self) -> dict[str, Any]:
        """The record as ``examples --json`` prints it."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ExampleBrief:
    """The few fields a review queue shows per example (read in one query for thousands of examples);
    ``agreement`` is the share of the ``samples`` sampled answers that agreed (``transform --samples``; None
    otherwise), for showing the votes and sorting the queue by them."""

    id: int
    status: str
    edited: bool
    input: str
    output: str
    agreement: float | None = None
    samples: int | None = None

    @property
    def votes(self) -> str:
        """The agreement as votes (``"2/3"``), empty for an example made from one answer."""
        return votes(self.samples, self.agreement)


def votes(samples: int | None, agreement: float | None) -> str:
    """``"2/3"``: how many of ``samples`` sampled answers agreed; empty without a vote."""
    if not samples or agreement is None:
        return ""
    return f"{round(agreement * samples)}/{samples}"


@dataclass(frozen=True, slots=True)
class SourceRow:
    """A datastore row an example was made from: where it is, and its fields."""

    dataset: str
    config: str
    split: str
    row_id: str | None
    data: Any


def _example(r: tuple[Any, ...]) -> ExampleRecord:
    return ExampleRecord(id=r[0], task=r[1], row=r[2], input=r[3] or "", output=r[4] or "", reasoning=r[5],
                         status=r[6], reason=r[7], teacher_model=r[8], edited=bool(r[9]), raw_response=r[10],
                         created_at=str(r[11]) if r[11] is not None else None,
                         updated_at=str(r[12]) if r[12] is not None else None,
                         source=ExampleSource(r[13], r[14], r[15]) if r[2] is not None else None,
                         method=r[16] or "rebase", samples=r[17], agreement=r[18])


def check_method(method: str | None) -> None:
    """EngineError for a method that makes no examples (None, meaning every method, is fine)."""
    if method is not None and method not in METHODS:
        raise EngineError(f"unknown method {method!r}", fix=f"use one of {', '.join(METHODS)}")


def _check_status(status: str | None) -> None:
    if status is not None and status not in STATUSES:
        raise EngineError(f"unknown status {status!r}", fix=f"use one of {', '.join(STATUSES)}")


def list_examples(ws: Workspace, task: str, status: str | None = None, *, limit: int | None = None,
                  offset: int = 0, method: str | None = None) -> list[ExampleRecord]:
    """The task's examples (oldest first) with their source (dataset id, config, row id); with ``method``,
    only those that method made."""
    _check_status(status)
    check_method(method)
    sql = _LIST_SQL + " where e.task = ?"
    params: list[Any] = [task]
    if status is not None:
        sql += " and e.status = ?"
        params.append(status)
    if method is not None:
        sql += " and e.method = ?"
        params.append(method)
    sql += " order by e.id"
    if limit is not None:
        sql += " limit ? offset ?"
        params += [int(limit), int(offset)]
    with ws.store.cursor() as cur:
        return [_example(r) for r in cur.execute(sql, params).fetchall()]


def get_example(ws: Workspace, example_id: int) -> ExampleRecord | None:
    """One example by id, or None."""
    with ws.store.cursor() as cur:
        got = cur.execute(_LIST_SQL + " where e.id = ?", [int(example_id)]).fetchall()
    return _example(got[0]) if got else None


def get_examples(ws: Workspace, ids: list[int]) -> list[ExampleRecord]:
    """Several examples in one query, in the order of ``ids`` (unknown ids are left out)."""
    with ws.store.cursor() as cur:
        got = cur.execute(f"select {_COLUMNS} from unnest(?) with ordinality as k(id, ord) "
                          f"join examples e on e.id = k.id {_SOURCE_JOINS} order by k.ord",
                          [[int(i) for i in ids]]).fetchall()
    return [_example(r) for r in got]


def briefs(ws: Workspace, task: str) -> list[ExampleBrief]:
    """Every example of ``task`` as queue entries, by id (one query; 5,000 examples in about 10 ms)."""
    with ws.store.cursor() as cur:
        got = cur.execute("select id, status, edited, input, output, agreement, samples from examples where task = ? "
                          "order by id", [task]).fetchall()
    return [ExampleBrief(int(i), st, bool(ed), inp or "", out or "", agree, n)
            for i, st, ed, inp, out, agree, n in got]


def source_row(ws: Workspace, row: int) -> SourceRow | None:
    """The datastore row ``row`` (``rows.id``) an example was made from, or None when it was removed."""
    with ws.store.cursor() as cur:
        got = cur.execute(
            "select d.name, c.name, c.split, r.row_id, r.data from rows r join datasets d on d.id = r.dataset "
            "join configs c on c.id = r.config where r.id = ?", [int(row)]).fetchall()
    if not got:
        return None
    name, config, split, row_id, data = got[0]
    return SourceRow(name, config, split, row_id, json.loads(data) if isinstance(data, str) else data)


def review_task(ws: Workspace, preferred: str | None) -> str | None:
    """The task to review: ``preferred`` when it has examples, else the task with the newest example."""
    with ws.store.cursor() as cur:
        if preferred and cur.execute("select 1 from examples where task = ? limit 1", [preferred]).fetchall():
            return preferred
        got = cur.execute("select task from examples group by task order by max(id) desc limit 1").fetchall()
    return got[0][0] if got else preferred


def examples_mark(ws: Workspace) -> tuple[int, int]:
    """A cheap fingerprint of the examples table (count, max id): it changes when examples are added."""
    with ws.store.cursor() as cur:
        n, top = cur.execute("select count(*), coalesce(max(id), 0) from examples").fetchall()[0]
    return int(n), int(top)


def counts(ws: Workspace, task: str) -> dict[str, int]:
    """Examples per status (every status present, zeros included)."""
    with ws.store.cursor() as cur:
        got = dict(cur.execute("select status, count(*) from examples where task = ? group by 1", [task]).fetchall())
    return {s: int(got.get(s, 0)) for s in STATUSES}


def find_examples(cur: Any, task: str, ids: list[int], columns: str) -> dict[int, tuple[Any, ...]]:
    """``(id, task, <columns>)`` of each of ``ids``; EngineError naming unknown ids or another task's."""
    got = cur.execute(f"select id, task, {columns} from examples "
                      "where id in (select unnest(?::bigint[]))", [ids]).fetchall()
    found = {int(r[0]): r for r in got}
    missing = [i for i in ids if i not in found]
    if missing:
        raise EngineError(f"no example with id {', '.join(map(str, missing))}",
                          fix=f"list them with `rebase-tui examples {task}`")
    other = [i for i in ids if found[i][1] != task]
    if other:
        raise EngineError(f"example {', '.join(map(str, other))} belongs to another task than {task}",
                          fix=f"list the task's examples with `rebase-tui examples {task}`")
    return found


def _state(cur: Any, task: str, ids: list[int]) -> dict[int, dict[str, Any]]:
    found = find_examples(cur, task, ids, ", ".join(_FIELDS))
    return {i: dict(zip(_FIELDS, found[i][2:], strict=True)) for i in ids}


def _record(cur: Any, task: str, changes: list[tuple[int, dict[str, Any], dict[str, Any]]], kind: str) -> int:
    batch = cur.execute("select nextval('decisions_batch_seq')").fetchall()[0][0]
    for ex_id, before, after in changes:
        cur.execute("update examples set status = ?, reason = ?, input = ?, output = ?, reasoning = ?, edited = ?, "
                    "updated_at = current_timestamp where id = ?",
                    [after["status"], after["reason"], after["input"], after["output"], after["reasoning"],
                     after["edited"], ex_id])
        cur.execute("insert into decisions (task, example, before, after, batch, kind) values (?, ?, ?, ?, ?, ?)",
                    [task, ex_id, json.dumps(before), json.dumps(after), batch, kind])
    return int(batch)


def set_status(ws: Workspace, task: str, ids: list[int], status: str, reason: str | None = None) -> int:
    """Accept or reject examples (one undoable batch); returns how many changed."""
    if status not in ("accepted", "rejected", "pending"):
        raise EngineError(f"cannot set status {status!r} by review", fix="accept, reject or reset to pending")
    ids = list(dict.fromkeys(int(i) for i in ids))
    if not ids:
        return 0
    with ws.store.transaction() as cur:
        state = _state(cur, task, ids)
        if status == "accepted":
            empty = [i for i in ids if not (state[i]["input"] or "").strip() or not (state[i]["output"] or "").strip()]
            if empty:
                raise EngineError(f"example {', '.join(map(str, empty))} has an empty input or output",
                                  fix="edit it first, or reject it")
        changes = []
        for i in ids:
            before = state[i]
            after = dict(before, status=status, reason=reason if status == "rejected" else None)
            if after != before:
                changes.append((i, before, after))
        if changes:
            _record(cur, task, changes, "status")
    return len(changes)


def accept(ws: Workspace, task: str, ids: list[int]) -> int:
    """Accept these examples."""
    return set_status(ws, task, ids, "accepted")


def reject(ws: Workspace, task: str, ids: list[int], reason: str | None = None) -> int:
    """Reject these examples, optionally saying why."""
    return set_status(ws, task, ids, "rejected", reason)


def accept_all(ws: Workspace, task: str) -> int:
    """Accept every pending example of the task (one undoable batch)."""
    with ws.store.cursor() as cur:
        ids = [r[0] for r in cur.execute("select id from examples where task = ? and status = 'pending' "
                                         "order by id", [task]).fetchall()]
    return set_status(ws, task, ids, "accepted") if ids else 0


def edit(ws: Workspace, task: str, example_id: int, *, input: str | None = None, output: str | None = None,
         reasoning: str | None = None, accept: bool = False) -> ExampleRecord:
    """Change an example's text (recorded, undoable); with ``accept`` also accept it in the same step."""
    with ws.store.transaction() as cur:
        before = _state(cur, task, [int(example_id)])[int(example_id)]
        after = dict(before)
        for name, value in (("input", input), ("output", output), ("reasoning", reasoning)):
            if value is None:
                continue
            if name != "reasoning" and not value.strip():
                raise EngineError(f"the edited {name} of example {example_id} is empty", fix=f"give a non-empty {name}")
            after[name] = value
        if after != before:
            after["edited"] = True
        if accept:
            if not (after["input"] or "").strip() or not (after["output"] or "").strip():
                raise EngineError(f"example {example_id} has an empty input or output", fix="edit it first")
            after["status"], after["reason"] = "accepted", None
        if after != before:
            _record(cur, task, [(int(example_id), before, after)], "edit")
    got = get_example(ws, int(example_id))
    assert got is not None
    return got


REGENERATED = "regenerated"
"""The reason given to an example replaced by a regeneration (see :func:`record_regeneration`)."""
REDONE = "redone with the task's rules"
"""The reason given to a pending example replaced by ``transform --redo-pending``."""
UNDONE = {REGENERATED: "regeneration undone", REDONE: "redo undone"}
"""The reason a replacement gets when its replacing is undone."""
SYSTEM_REASONS = (REGENERATED, REDONE, *UNDONE.values())
"""Rejections the program made, not the reviewer (rules are never made from them)."""


def record_regeneration(cur: Any, task: str, old_id: int, new_id: int) -> int:
    """Inside the caller's transaction: reject ``old_id`` (reason "regenerated") in favour of ``new_id``.

    One decision batch of kind ``regenerate`` holds both examples, so one :func:`undo` puts the old example
    back as it was and rejects the new one (reason "regeneration undone"; its teacher call stays cached).
    """
    return record_replacement(cur, task, old_id, new_id, REGENERATED, "regenerate")


def record_replacement(cur: Any, task: str, old_id: int, new_id: int, reason: str, kind: str) -> int:
    """Inside the caller's transaction: reject ``old_id`` with ``reason`` in favour of ``new_id``, as one
    decision batch of ``kind`` holding both, so one :func:`undo` restores the old example and rejects the new."""
    state = _state(cur, task, [int(old_id), int(new_id)])
    before_old, after_new = state[int(old_id)], state[int(new_id)]
    after_old = dict(before_old, status="rejected", reason=reason)
    before_new = dict(after_new, status="rejected", reason=UNDONE.get(reason, "replacement undone"))
    return _record(cur, task, [(int(old_id), before_old, after_old), (int(new_id), before_new, after_new)], kind)


def regenerated_into(ws: Workspace, task: str, example_id: int) -> int | None:
    """The example that replaced ``example_id`` by a regeneration still in force (not undone), or None."""
    with ws.store.cursor() as cur:
        got = cur.execute(
            "select d2.example from decisions d1 join examples e on e.id = d1.example "
            "join decisions d2 on d2.batch = d1.batch and d2.example <> d1.example "
            "where d1.task = ? and d1.example = ? and d1.kind = 'regenerate' and not d1.undone "
            "and json_extract_string(d1.after, '$.reason') = ? and e.status = 'rejected' and e.reason = ? "
            "order by d1.id desc limit 1", [task, int(example_id), REGENERATED, REGENERATED]).fetchall()
    return int(got[0][0]) if got else None


def undo(ws: Workspace, task: str) -> list[int]:
    """Revert the newest decision batch of the task that is not undone; returns the example ids restored."""
    with ws.store.transaction() as cur:
        got = cur.execute("select max(batch) from decisions where task = ? and not undone", [task]).fetchall()
        batch = got[0][0]
        if batch is None:
            return []
        rows = cur.execute("select id, example, before from decisions where batch = ? order by id desc",
                           [batch]).fetchall()
        for _, ex_id, before in rows:
            b = json.loads(before)
            cur.execute("update examples set status = ?, reason = ?, input = ?, output = ?, reasoning = ?, edited = ?, "
                        "updated_at = current_timestamp where id = ?",
                        [b["status"], b["reason"], b["input"], b["output"], b["reasoning"], b["edited"], ex_id])
        cur.execute("update decisions set undone = true where batch = ?", [batch])
    return [r[1] for r in rows]


@dataclass(frozen=True, slots=True)
class Decision:
    """One recorded change of one example: its fields before and after, and the batch it belongs to."""

    id: int
    example: int
    kind: str
    before: dict[str, Any]
    after: dict[str, Any]
    batch: int
    undone: bool
    at: str


def history(ws: Workspace, task: str, limit: int = 50) -> list[Decision]:
    """The task's newest decisions (newest first)."""
    with ws.store.cursor() as cur:
        got = cur.execute("select id, example, kind, before, after, batch, undone, created_at from decisions "
                          "where task = ? order by id desc limit ?", [task, int(limit)]).fetchall()
    return [Decision(r[0], r[1], r[2], json.loads(r[3]), json.loads(r[4]), r[5], bool(r[6]), str(r[7]))
            for r in got]
