"""Review of a task's examples: list, accept, reject (with a reason), edit, undo.

Plain synchronous calls taking a workspace (sub-millisecond DuckDB writes), used by the `review` and
`examples` commands and the TUI's Review screen (:func:`record_regeneration` runs inside the regeneration's
own transaction, see :mod:`engine.teacher.regenerate`). Every change is recorded in the append-only ``decisions``
table (the example's fields before and after); the decisions of one action (e.g. accept-all) share a
``batch``, and :func:`undo` reverts the newest batch not yet undone. Decisions survive restarts.
"""

from __future__ import annotations

import json
from typing import Any

from engine.errors import EngineError
from engine.workspace import Workspace

STATUSES = ("pending", "accepted", "rejected", "failed", "duplicate")
_FIELDS = ("status", "reason", "input", "output", "reasoning", "edited")
_LIST_SQL = """
select e.id, e.task, e.row, e.input, e.output, e.reasoning, e.status, e.reason, e.teacher_model, e.edited,
       e.raw_response, e.created_at, e.updated_at, d.name, c.name, w.row_id
from examples e
left join rows w on w.id = e.row
left join datasets d on d.id = w.dataset
left join configs c on c.id = w.config
"""


def _example(r: tuple[Any, ...]) -> dict[str, Any]:
    return {"id": r[0], "task": r[1], "row": r[2], "input": r[3], "output": r[4], "reasoning": r[5],
            "status": r[6], "reason": r[7], "teacher_model": r[8], "edited": bool(r[9]), "raw_response": r[10],
            "created_at": str(r[11]) if r[11] is not None else None,
            "updated_at": str(r[12]) if r[12] is not None else None,
            "source": {"dataset": r[13], "config": r[14], "row_id": r[15]} if r[2] is not None else None}


def _check_status(status: str | None) -> None:
    if status is not None and status not in STATUSES:
        raise EngineError(f"unknown status {status!r}", fix=f"use one of {', '.join(STATUSES)}")


def list_examples(ws: Workspace, task: str, status: str | None = None, *, limit: int | None = None,
                  offset: int = 0) -> list[dict[str, Any]]:
    """The task's examples (oldest first) with their source (dataset id, config, row id)."""
    _check_status(status)
    sql = _LIST_SQL + " where e.task = ?"
    params: list[Any] = [task]
    if status is not None:
        sql += " and e.status = ?"
        params.append(status)
    sql += " order by e.id"
    if limit is not None:
        sql += " limit ? offset ?"
        params += [int(limit), int(offset)]
    with ws.store.cursor() as cur:
        return [_example(r) for r in cur.execute(sql, params).fetchall()]


def get_example(ws: Workspace, example_id: int) -> dict[str, Any] | None:
    """One example by id, or None."""
    with ws.store.cursor() as cur:
        got = cur.execute(_LIST_SQL + " where e.id = ?", [int(example_id)]).fetchall()
    return _example(got[0]) if got else None


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
         reasoning: str | None = None, accept: bool = False) -> dict[str, Any]:
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


def record_regeneration(cur: Any, task: str, old_id: int, new_id: int) -> int:
    """Inside the caller's transaction: reject ``old_id`` (reason "regenerated") in favour of ``new_id``.

    One decision batch of kind ``regenerate`` holds both examples, so one :func:`undo` puts the old example
    back as it was and rejects the new one (reason "regeneration undone"; its teacher call stays cached).
    """
    state = _state(cur, task, [int(old_id), int(new_id)])
    before_old, after_new = state[int(old_id)], state[int(new_id)]
    after_old = dict(before_old, status="rejected", reason=REGENERATED)
    before_new = dict(after_new, status="rejected", reason="regeneration undone")
    return _record(cur, task, [(int(old_id), before_old, after_old), (int(new_id), before_new, after_new)],
                   "regenerate")


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


def history(ws: Workspace, task: str, limit: int = 50) -> list[dict[str, Any]]:
    """The task's newest decisions (newest first)."""
    with ws.store.cursor() as cur:
        got = cur.execute("select id, example, kind, before, after, batch, undone, created_at from decisions "
                          "where task = ? order by id desc limit ?", [task, int(limit)]).fetchall()
    return [{"id": r[0], "example": r[1], "kind": r[2], "before": json.loads(r[3]), "after": json.loads(r[4]),
             "batch": r[5], "undone": bool(r[6]), "at": str(r[7])} for r in got]
