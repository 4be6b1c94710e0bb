"""What the Review screen asks of the workspace, as the screen needs it: queue rows, one example beside its
source row, and decisions. Every call goes through :mod:`engine.review` (the append-only decision log).

Each is one short synchronous DuckDB call through its own cursor (sub-millisecond to a few milliseconds):
a review decision is small enough to run straight from its key handler, while the screen keeps one
writer thread so a burst of keys never blocks the repaint.
"""

from __future__ import annotations

from typing import Any

from engine import review
from engine.review import ExampleRecord
from rebase_tui.widgets.example_list import QueueRow
from rebase_tui.widgets.review_queue import make_row


def current_task(ws: Any, preferred: str | None) -> str | None:
    """``preferred`` when it has examples, else the task with the most recent example."""
    return review.review_task(ws, preferred)


def load_mark(ws: Any) -> tuple[int, int]:
    """A cheap fingerprint of the examples table: it changes when examples are added."""
    return review.examples_mark(ws)


def changed_since_load(ws: Any, screen: Any) -> bool:
    """True when examples were added (by the teacher or the CLI) since the screen loaded its queue."""
    return getattr(screen, "_load_mark", None) != load_mark(ws)


def load_rows(ws: Any, task: str) -> list[QueueRow]:
    """Every example of ``task`` as list rows, by id."""
    return [make_row(b) for b in review.briefs(ws, task)]


def get_example(ws: Any, example_id: int) -> ExampleRecord | None:
    """One example with its source (dataset, config, row id); None when it no longer exists."""
    return review.get_example(ws, example_id)


def get_examples(ws: Any, ids: list[int]) -> list[ExampleRecord]:
    """Several examples, in the order of ``ids``."""
    return review.get_examples(ws, ids)


def source_of(ws: Any, example: ExampleRecord | None) -> tuple[str, Any]:
    """``(origin, fields)`` of an example's source row: origin names the dataset, config and row id."""
    if example is None or example.row is None:
        return "imported example (no source row)", None
    src = review.source_row(ws, example.row)
    if src is None:
        return f"row {example.row} (no longer in the datastore)", None
    return f"{src.dataset} · {src.config}/{src.split} · row {src.row_id}", src.data


# -- decisions: engine.review -------------------------------------------------------------------
def accept(ws: Any, task: str, ids: list[int]) -> list[ExampleRecord]:
    """Accept examples ``ids`` (one undoable batch); return their new states."""
    review.accept(ws, task, ids)
    return get_examples(ws, ids)


def reject(ws: Any, task: str, ids: list[int], reason: str | None = None) -> list[ExampleRecord]:
    """Reject examples ``ids`` (with an optional reason; one undoable batch); return their new states."""
    review.reject(ws, task, ids, reason=reason)
    return get_examples(ws, ids)


def edit(ws: Any, task: str, example_id: int, fields: dict[str, str]) -> list[ExampleRecord]:
    """Save an edit of example ``example_id`` and accept it in one decision (one undo restores the text and
    the state it had before); return its new state."""
    review.edit(ws, task, example_id, **fields, accept=True)
    return get_examples(ws, [example_id])


def undo(ws: Any, task: str, *_: Any) -> list[ExampleRecord]:
    """Undo the newest decision batch of ``task``; return the examples it restored (empty: nothing to undo)."""
    return get_examples(ws, review.undo(ws, task))


async def regenerate(ws: Any, task: str, example_id: int) -> tuple[Any, list[ExampleRecord]]:
    """Ask the teacher again for example ``example_id``'s source row (:mod:`engine.teacher.regenerate`).

    The teacher is the one that wrote the example (its model) on the configured host (``teacher.host``,
    else ``OLLAMA_HOST``). Returns the engine's :class:`~engine.teacher.regenerate.Regenerated` and the fresh states
    of the old example and the new one (when one was stored). EngineError when Ollama is unreachable or
    the model is missing (nothing changed).
    """
    import asyncio

    from engine.teacher.client import TeacherSettings
    from engine.teacher.regenerate import regenerate_one

    old = await asyncio.to_thread(review.get_example, ws, example_id)
    settings = TeacherSettings.from_config(ws.config, model=(old.teacher_model if old else None) or None)
    result = await regenerate_one(ws, task, example_id, settings)
    ids = [example_id] + ([result.example_id] if result.example_id not in (None, example_id) else [])
    return result, await asyncio.to_thread(get_examples, ws, ids)
