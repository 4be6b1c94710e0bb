"""What the Review screen asks of the workspace: the task's examples, one example with its source row,
and decisions — which all go through :mod:`engine.review` (the append-only decision log).

Each function is one short synchronous DuckDB call through its own cursor (sub-millisecond to a few
milliseconds), so the screen calls them directly from key handlers (STYLE.md §2.5: "Review decisions,
undo — direct call in the handler").
"""

from __future__ import annotations

import json
from typing import Any

from rebase_tui.widgets.example_list import QueueRow
from rebase_tui.widgets.review_queue import make_row

_EXAMPLE_COLUMNS = ("id", "task", "row", "input", "output", "reasoning", "status", "reason", "teacher_model",
                    "raw_response", "edited")


def current_task(ws: Any, preferred: str | None) -> str | None:
    """``preferred`` when it has examples, else the task with the most recent example."""
    with ws.store.cursor() as cur:
        if preferred:
            hit = cur.execute("select 1 from examples where task = ? limit 1", [preferred]).fetchall()
            if hit:
                return preferred
        rows = cur.execute("select task from examples group by task order by max(id) desc limit 1").fetchall()
    return rows[0][0] if rows else preferred


def load_mark(ws: Any) -> tuple[int, int]:
    """A cheap fingerprint of the examples table (count, max id): it changes when examples are added."""
    with ws.store.cursor() as cur:
        n, top = cur.execute("select count(*), coalesce(max(id), 0) from examples").fetchall()[0]
    return int(n), int(top)


def changed_since_load(ws: Any, screen: Any) -> bool:
    """True when examples were added (by the teacher or the CLI) since the screen loaded its queue."""
    return getattr(screen, "_load_mark", None) != load_mark(ws)


def load_rows(ws: Any, task: str) -> list[QueueRow]:
    """Every example of ``task`` as list rows, by id (one query; 5,000 rows in ~10 ms)."""
    with ws.store.cursor() as cur:
        rows = cur.execute("select id, status, edited, input, output from examples where task = ? order by id",
                           [task]).fetchall()
    return [make_row({"id": r[0], "status": r[1], "edited": r[2], "input": r[3], "output": r[4]}) for r in rows]


def get_example(ws: Any, example_id: int) -> dict[str, Any]:
    """One example's fields with its source (dataset, config, row id), from :func:`engine.review.get_example`."""
    from engine import review

    got = review.get_example(ws, example_id)
    return got if got is not None else {"id": example_id, "status": "missing", "input": "", "output": ""}


def get_examples(ws: Any, ids: list[int]) -> list[dict[str, Any]]:
    """Several examples in one query, in the order of ``ids``."""
    cols = ", ".join(f'e."{c}"' for c in _EXAMPLE_COLUMNS)
    with ws.store.cursor() as cur:
        rows = cur.execute(f"select {cols} from unnest(?) with ordinality as k(id, ord) "
                           "join examples e on e.id = k.id order by k.ord", [list(ids)]).fetchall()
    return [dict(zip(_EXAMPLE_COLUMNS, r, strict=True)) for r in rows]


def source_of(ws: Any, example: dict[str, Any]) -> tuple[str, Any]:
    """``(origin, fields)`` of an example's source row: origin names the dataset, config and row id."""
    row_id = example.get("row")
    if row_id is None:
        return "imported example (no source row)", None
    with ws.store.cursor() as cur:
        rows = cur.execute(
            "select d.name, c.name, c.split, r.row_id, r.data from rows r join datasets d on d.id = r.dataset "
            "join configs c on c.id = r.config where r.id = ?", [row_id]).fetchall()
    if not rows:
        return f"row {row_id} (no longer in the datastore)", None
    name, config, split, source_row, data = rows[0]
    return f"{name} · {config}/{split} · row {source_row}", json.loads(data) if isinstance(data, str) else data


# -- decisions: engine.review -------------------------------------------------------------------
def accept(ws: Any, task: str, ids: list[int]) -> list[dict[str, Any]]:
    """Accept examples ``ids`` (one undoable batch); return their new states."""
    from engine import review

    review.accept(ws, task, ids)
    return get_examples(ws, ids)


def reject(ws: Any, task: str, ids: list[int], reason: str | None = None) -> list[dict[str, Any]]:
    """Reject examples ``ids`` (with an optional reason; one undoable batch); return their new states."""
    from engine import review

    review.reject(ws, task, ids, reason=reason)
    return get_examples(ws, ids)


def edit(ws: Any, task: str, example_id: int, fields: dict[str, str]) -> list[dict[str, Any]]:
    """Save an edit of example ``example_id`` and accept it in one decision (one undo restores the text and
    the state it had before); return its new state."""
    from engine import review

    review.edit(ws, task, example_id, **fields, accept=True)
    return get_examples(ws, [example_id])


def undo(ws: Any, task: str, *_: Any) -> list[dict[str, Any]]:
    """Undo the newest decision batch of ``task``; return the examples it restored (empty: nothing to undo)."""
    from engine import review

    return get_examples(ws, review.undo(ws, task))


async def regenerate(ws: Any, task: str, example_id: int) -> tuple[Any, list[dict[str, Any]]]:
    """Ask the teacher again for example ``example_id``'s source row (:mod:`engine.teacher.regenerate`).

    The teacher is the one that wrote the example (its model) on the configured host (``teacher.host``,
    else ``OLLAMA_HOST``). Returns the engine's :class:`~engine.teacher.regenerate.Regenerated` and the fresh states
    of the old example and the new one (when one was stored). EngineError when Ollama is unreachable or
    the model is missing (nothing changed).
    """
    import asyncio

    from engine import review
    from engine.teacher.client import TeacherSettings
    from engine.teacher.regenerate import regenerate_one

    old = await asyncio.to_thread(review.get_example, ws, example_id)
    settings = TeacherSettings.from_config(ws.config, model=(old or {}).get("teacher_model") or None)
    result = await regenerate_one(ws, task, example_id, settings)
    ids = [example_id] + ([result.example_id] if result.example_id not in (None, example_id) else [])
    return result, await asyncio.to_thread(get_examples, ws, ids)
