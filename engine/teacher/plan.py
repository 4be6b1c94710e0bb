"""What a transform run does: its items (pool rows, or synthesis slots) with their cache keys, and which of them
an earlier run already finished.

Shared by :func:`engine.teacher.transform.transform` and by callers that need to find the examples a run made
(:func:`call_keys`), so both derive the keys the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from engine.errors import EngineError
from engine.retrieval.pool import load_pool
from engine.tasks import resolve_task
from engine.teacher import prompts
from engine.teacher.calls import (
    call_key,
    call_states,
    examples_by_call,
    filter_key,
    pending_made_otherwise,
    rows_made_before_rules,
    transform_kind,
)
from engine.teacher.client import TeacherSettings
from engine.teacher.prompts import PromptSpec
from engine.workspace import Workspace


@dataclass
class Item:
    """One pool row (or synthesis slot) to do: its call (unless cached) and then, with the filter on, its
    filter call. A slot has ``row`` = minus the slot, no ``data`` and a ``seed`` of its own."""

    rank: int
    row: int
    data: dict[str, Any] | None
    key: str
    seed: int | None = None
    call: bool = True                    # False: cached, only the filter pass is missing
    retry: bool = False                  # a failed call of an earlier run is stored under this key
    replaces: int | None = None          # --redo-pending: the pending example a usable new one replaces
    example_id: int | None = None
    example: tuple[str, str] | None = None

    @property
    def label(self) -> str:
        """How duplicate reasons name this item's example."""
        return f"the example from row {self.row}" if self.data is not None else f"synthesized example {self.rank}"


def slot_seed(base: int, slot: int) -> int:
    """The seed of synthesis slot ``slot`` (1-based): the run's seed plus the slot, within the seed range."""
    return 1 + (base + slot - 1) % (2**31 - 1)


def items_of(ws: Workspace, spec: PromptSpec, settings: TeacherSettings, limit: int | None, *, samples: int = 1,
             rows: Collection[int] | None = None, redo_pending: bool = False) -> list[Item]:
    """The pool rows (or synthesis slots) a run with ``limit`` covers, each with its cache key (its vote key
    with ``samples`` > 1). ``rows`` keeps only those pool rows (a refinement round's); ``redo_pending`` only
    the rows whose pending example was made with another prompt (before the task's rules changed), each item
    naming the example it replaces. Otherwise the rows that have a usable example made with the same prompt
    up to the task's rules are left out: rules apply to new calls, they do not re-make what was made."""
    task = spec.task.name
    if limit is not None and limit < 1:
        raise EngineError(f"--limit {limit} is below 1", fix="pass --limit 1 or more, or leave it out")
    if spec.method == "synthesize":
        if limit is None:
            raise EngineError("synthesizing needs a number of examples to write",
                              fix="pass --limit N (the examples the teacher writes from the task alone)")
        items = []
        for slot in range(1, limit + 1):
            seeded = dataclasses.replace(settings, seed=slot_seed(settings.seed, slot))
            items.append(Item(slot, -slot, None, call_key(task, -slot, spec.hash, seeded, "synthesize"),
                               seed=seeded.seed))
        return items
    pool = load_pool(ws, task, limit)
    if not pool:
        raise EngineError(f"task {task!r} has no retrieved rows to transform",
                          fix=f"run `rebase-tui retrieve {task}` first")
    if rows is not None:
        wanted = set(rows)
        pool = [p for p in pool if p.row in wanted]
    olds = pending_made_otherwise(ws, task, spec.hash, spec.method) if redo_pending else {}
    if redo_pending:
        pool = [p for p in pool if p.row in olds]
    else:                       # rows made before the rules changed stay as they are
        made = rows_made_before_rules(ws, spec)
        pool = [p for p in pool if p.row not in made]
    kind = transform_kind(samples)
    return [Item(p.rank, p.row, spec.sample(p.data, p.input_column, p.output_column),
                  call_key(task, p.row, spec.hash, settings, kind), replaces=olds.get(p.row)) for p in pool]


def call_keys(ws: Workspace, task_ref: str, settings: TeacherSettings, *, limit: int | None = None,
              cot: str = "auto", prompt: str = "default", method: str = "rebase", samples: int = 1,
              rows: Collection[int] | None = None) -> list[str]:
    """The cache keys of the calls :func:`transform` makes with these arguments, in order (what a caller
    needs to find the examples that run made, e.g. with :func:`engine.teacher.calls.examples_by_call`)."""
    task = resolve_task(ws, task_ref)
    spec = prompts.spec_for(ws, task, cot=cot, prompt=prompt, method=method)
    return [it.key for it in items_of(ws, spec, settings, limit, samples=samples, rows=rows)]


def plan(ws: Workspace, spec: PromptSpec, settings: TeacherSettings, items: list[Item],
          use_filter: bool) -> tuple[list[Item], int]:
    """The items still to do, and how many items' calls finished in an earlier run (cached).

    A cached item is done again only for its filter call, when the filter is on, its example is still
    pending and that filter call has not finished.
    """
    task = spec.task.name
    keys = [it.key for it in items]
    calls, examples = call_states(ws, task, keys), examples_by_call(ws, task, keys)
    todo: list[Item] = []
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
        fkeys = {it.row: filter_key(task, it.row, spec.hash, settings) for it in todo if not it.call}
        fcalls = call_states(ws, task, list(fkeys.values()))
        todo = [it for it in todo if it.call or fcalls.get(fkeys[it.row]) != "ok"]
    return todo, cached
