"""A task's pool: the ranked rows retrieval stored for it (the ``retrievals`` table), and its readers.

The pool is what the teacher transforms, best first. This module owns the ``retrievals`` table's SQL.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from engine.tasks import Task

if TYPE_CHECKING:
    from engine.retrieval.retriever import RetrievalResult
    from engine.workspace import Workspace


@dataclass(frozen=True, slots=True)
class PoolRow:
    """One stored pool entry with its source row: rank, scores, the best cells' columns and the row's data."""

    rank: int
    row: int
    score: float
    input_score: float
    output_score: float
    dataset_score: float
    input_column: str | None
    output_column: str | None
    dataset_id: str | None
    config: str | None
    split: str | None
    row_id: str | None
    data: dict[str, Any]


class PoolHit(Protocol):
    """A ranked row as the pool stores it (a :class:`~engine.retrieval.results.RowHit`, a round's row)."""

    @property
    def key(self) -> int: ...
    @property
    def score(self) -> float: ...
    @property
    def input_score(self) -> float: ...
    @property
    def output_score(self) -> float: ...
    @property
    def dataset_score(self) -> float: ...
    @property
    def input_column(self) -> str: ...
    @property
    def output_column(self) -> str: ...


def store_pool(ws: Workspace, task: Task | str, result: RetrievalResult) -> int:
    """Store ``result`` as the task's pool (replacing the previous one); return its size.

    A Task that is not stored yet is stored first (the pool belongs to a stored task).
    """
    import pyarrow as pa

    from engine.tasks import add_task, get_task

    name = task.name if isinstance(task, Task) else str(task)
    if isinstance(task, Task) and get_task(ws, name) is None:
        add_task(ws, task)
    hits = list(result.results)
    table = pa.table({
        "task": pa.array([name] * len(hits), pa.string()),
        "rank": pa.array([h.rank for h in hits], pa.int32()),
        "row": pa.array([h.key for h in hits], pa.int64()),
        "score": pa.array([h.score for h in hits], pa.float64()),
        "input_score": pa.array([h.input_score for h in hits], pa.float64()),
        "output_score": pa.array([h.output_score for h in hits], pa.float64()),
        "dataset_score": pa.array([h.dataset_score for h in hits], pa.float64()),
        "input_column": pa.array([h.input_column for h in hits], pa.string()),
        "output_column": pa.array([h.output_column for h in hits], pa.string()),
    })
    with ws.store.transaction() as cur:
        cur.execute("delete from retrievals where task = ?", [name])
        cur.register("_pool", table)
        try:
            cur.execute("insert into retrievals select task, rank, \"row\", score, input_score, output_score, "
                        "dataset_score, input_column, output_column from _pool")
        finally:
            cur.unregister("_pool")
    return len(hits)


def append_pool(cur: Any, task: str, hits: Sequence[PoolHit]) -> list[int]:
    """Inside the caller's transaction: add rows after the task's last pool rank (a refinement round's rows,
    which are never in the pool already); returns their ranks."""
    start = cur.execute("select coalesce(max(rank), 0) from retrievals where task = ?", [task]).fetchall()[0][0]
    ranks = list(range(int(start) + 1, int(start) + 1 + len(hits)))
    for at in range(0, len(hits), 256):     # one statement per 256 rows: a statement costs ~0.5 ms
        chunk = list(zip(ranks[at:at + 256], hits[at:at + 256], strict=True))
        values = [v for rank, h in chunk for v in (task, rank, h.key, h.score, h.input_score, h.output_score,
                                                   h.dataset_score, h.input_column or None, h.output_column or None)]
        cur.execute('insert into retrievals (task, rank, "row", score, input_score, output_score, dataset_score, '
                    "input_column, output_column) values " + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk)),
                    values)
    return ranks


def load_pool(ws: Workspace, task: str, limit: int | None = None) -> list[PoolRow]:
    """A task's stored pool in rank order, each entry with its source (dataset, config, split, row id) and the
    full row (a row stored as a bare value reads as ``{"value": ...}``)."""
    sql = ('select t.rank, t."row", t.score, t.input_score, t.output_score, t.dataset_score, t.input_column, '
           "t.output_column, d.name, c.name, c.split, r.row_id, r.data from retrievals t "
           'join rows r on r.id = t."row" left join datasets d on d.id = r.dataset '
           "left join configs c on c.id = r.config where t.task = ? order by t.rank")
    params: list[Any] = [task]
    if limit is not None:
        sql += " limit ?"
        params.append(int(limit))
    with ws.store.cursor() as cur:
        rows = cur.execute(sql, params).fetchall()
    out = []
    for (rank, row, score, s_in, s_out, s_ds, in_col, out_col, dataset_id, config, split, row_id,
         data) in rows:
        value = json.loads(data) if isinstance(data, str) else data
        out.append(PoolRow(rank, row, score, s_in, s_out, s_ds, in_col, out_col, dataset_id, config, split,
                           row_id, value if isinstance(value, dict) else {"value": value}))
    return out


def pool_keys(ws: Workspace, task: str) -> set[int]:
    """The ``rows.id`` of every row in the task's pool."""
    with ws.store.cursor() as cur:
        return {int(r[0]) for r in cur.execute('select "row" from retrievals where task = ?', [task]).fetchall()}


def pool_sizes(ws: Workspace) -> dict[str, int]:
    """Every task that has a pool, with its size (task name order)."""
    with ws.store.cursor() as cur:
        return dict(cur.execute("select task, count(*) from retrievals group by task order by task").fetchall())
