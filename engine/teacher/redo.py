"""``transform --redo-pending``: pending examples made with an earlier prompt are replaced by new ones made with
the task's current prompt (its accepted rules), one undoable review decision per replacement.

The items come from :func:`engine.teacher.plan.items_of` (``redo_pending``: each names the example it
replaces); a new usable example and the old one's rejection ("redone with the task's rules") are written in
one transaction (:func:`store_replacing`), so an interrupted run never leaves both pending. A row whose new
call had already been made (a plain ``transform`` after the rules changed) needs no call: its old example is
replaced at once (:func:`replace_cached`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine import review
from engine.teacher.calls import Write, examples_by_call, store_answers

if TYPE_CHECKING:
    from engine.teacher.plan import Item
    from engine.workspace import Workspace


def store_replacing(cur: Any, writes: list[tuple[Write, int]]) -> list[int]:
    """Write the calls and their examples (see :func:`engine.teacher.calls.store_answers`) and, for each new
    example that is usable, reject the pending one it replaces; returns the new example ids."""
    ids = store_answers(cur, [w for w, _ in writes])
    for (write, old), new in zip(writes, ids, strict=True):
        answer = write[4]
        if answer.status == "pending":
            _replace(cur, write[1].task.name, old, new)
    return ids


def replace_cached(ws: Workspace, task: str, items: list[Item], todo: list[Item]) -> int:
    """Replace the old examples of the items whose new call is cached (not in ``todo``) and made a pending
    example; returns how many were replaced."""
    asked = {id(it) for it in todo}
    done = [it for it in items if id(it) not in asked and it.replaces is not None]
    if not done:
        return 0
    made = examples_by_call(ws, task, [it.key for it in done])
    replaced = 0
    with ws.store.transaction() as cur:
        for it in done:
            new = made.get(it.key)
            if new is not None and new[3] == "pending" and it.replaces is not None:
                replaced += _replace(cur, task, it.replaces, new[0])
    return replaced


def _replace(cur: Any, task: str, old: int, new: int) -> int:
    """Reject ``old`` in favour of ``new`` when ``old`` is still pending; 1 when it was."""
    if int(old) == int(new) or review.find_examples(cur, task, [int(old)], "status")[int(old)][2] != "pending":
        return 0
    review.record_replacement(cur, task, old, new, review.REDONE, "redo")
    return 1
