"""Queries over the datastore: totals, the dataset list, removing a dataset, checking and repairing the index.

``check`` compares three things that must agree: the ids in DuckDB (``cell_values``, ``datasets``), the
keys of the vector logs (``index/*.vectors``) and the keys of the usearch files (``index/*.usearch``).
``repair`` makes them agree again: it drops vectors without a value, re-embeds values and descriptions
without a vector (with the workspace's embedder), finishes datasets an interrupted ingest left
``ingesting``, and rebuilds the usearch files from the logs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.datastore import vindex
from engine.errors import EngineError
from engine.events import Event

if TYPE_CHECKING:
    from engine.datastore.embed import Embedder
    from engine.workspace import Workspace


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    """One dataset of the workspace, with its counts."""

    id: int
    name: str
    source_path: str
    description: str
    description_generated: bool
    card: str | None
    status: str
    configs: int
    rows: int
    cells: int
    added_at: str

    def to_json(self, card: bool = False) -> dict[str, Any]:
        out = asdict(self)
        if not card:
            out.pop("card")
        return out


def totals(ws: Workspace) -> dict[str, int]:
    """Workspace totals: datasets, configs, rows, cells, values, vectors (values + descriptions)."""
    from engine.datastore.ingest import totals as _totals

    return _totals(ws)


def list_datasets(ws: Workspace) -> list[DatasetInfo]:
    """Every dataset (ready or still ingesting), by name, with its config/row/cell counts."""
    with ws.store.cursor() as cur:
        rows = cur.execute("""
            select d.id, d.name, d.source_path, d.description, d.description_generated, d.card, d.status,
                   (select count(*) from configs c where c.dataset = d.id),
                   coalesce(r.n, 0), coalesce(r.cells, 0), cast(d.added_at as varchar)
            from datasets d
            left join (select r.dataset, count(distinct r.id) as n, count(c."row") as cells
                       from rows r left join cells c on c."row" = r.id group by r.dataset) r on r.dataset = d.id
            order by d.name""").fetchall()
    return [DatasetInfo(int(r[0]), r[1], r[2], r[3], bool(r[4]), r[5], r[6], int(r[7]), int(r[8]), int(r[9]),
                        r[10] or "") for r in rows]


def find_dataset(ws: Workspace, name: str) -> tuple[int, str]:
    """``(id, name)`` of the dataset called ``name`` (exact, else a unique last-path-component match)."""
    with ws.store.cursor() as cur:
        rows = cur.execute("select id, name from datasets order by name").fetchall()
    exact = [r for r in rows if r[1] == name]
    if exact:
        return exact[0]
    tail = [r for r in rows if r[1].split("/")[-1] == name]
    if len(tail) == 1:
        return tail[0]
    if len(tail) > 1:
        raise EngineError(f"dataset name {name} is ambiguous: {', '.join(r[1] for r in tail)}",
                          fix="give the full dataset id")
    near = [r[1] for r in rows if name.lower() in r[1].lower()][:5]
    hint = f"; similar: {', '.join(near)}" if near else ""
    raise EngineError(f"no dataset {name} in workspace {ws.path}{hint}",
                      fix="see `rebase-tui datasets` for the ids")


def remove_dataset(ws: Workspace, name: str) -> dict[str, Any]:
    """Delete a dataset's rows, cells, configs, the values no other dataset uses, and their vectors.

    The database part is one transaction; the vector files are rewritten after it (a kill in between
    leaves orphan vectors that the next ingest, remove or ``check --repair`` drops).
    """
    ds_id, ds_name = find_dataset(ws, name)
    with ws.store.transaction() as cur:
        n_rows = cur.execute("select count(*) from rows where dataset = ?", [ds_id]).fetchall()[0][0]
        n_cells = cur.execute('select count(*) from cells where "row" in (select id from rows where dataset = ?)',
                              [ds_id]).fetchall()[0][0]
        cur.execute('delete from cells where "row" in (select id from rows where dataset = ?)', [ds_id])
        cur.execute("delete from rows where dataset = ?", [ds_id])
        cur.execute("delete from configs where dataset = ?", [ds_id])
        cur.execute("delete from datasets where id = ?", [ds_id])
        before = cur.execute("select count(*) from cell_values").fetchall()[0][0]
        cur.execute("delete from cell_values where id not in (select distinct value from cells)")
        n_values = before - cur.execute("select count(*) from cell_values").fetchall()[0][0]
    _drop_orphans(ws)
    for kind in (vindex.DESCRIPTIONS, vindex.VALUES):
        vindex.sync_usearch(ws, kind)
    return {"dataset": ds_name, "rows": int(n_rows), "cells": int(n_cells), "values": int(n_values)}


def _ids(ws: Workspace, sql: str) -> np.ndarray:
    with ws.store.cursor() as cur:
        return np.array([r[0] for r in cur.execute(sql).fetchall()], dtype=np.uint64)


def _drop_orphans(ws: Workspace) -> int:
    dropped = vindex.vector_log(ws, vindex.VALUES).keep_only(_ids(ws, "select id from cell_values"))
    dropped += vindex.vector_log(ws, vindex.DESCRIPTIONS).keep_only(_ids(ws, "select id from datasets"))
    return dropped


@dataclass
class CheckReport:
    """What ``check`` found. ``problems`` is empty when the store and the index agree."""

    datasets: int = 0
    values: int = 0
    vectors: int = 0
    problems: list[str] = field(default_factory=list)
    details: dict[str, int] = field(default_factory=dict)
    repaired: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "datasets": self.datasets, "values": self.values, "vectors": self.vectors,
                "problems": self.problems, "details": self.details, "repaired": self.repaired}


def check(ws: Workspace) -> CheckReport:
    """Verify that every value and description has exactly one vector, every vector a value, the usearch
    files hold the same keys, and no dataset is stuck ``ingesting``; list what is wrong."""
    report = CheckReport()
    value_ids = _ids(ws, "select id from cell_values")
    dataset_ids = _ids(ws, "select id from datasets")
    report.datasets, report.values = len(dataset_ids), len(value_ids)
    d: dict[str, int] = {}
    for kind, ids, what in ((vindex.VALUES, value_ids, "value"), (vindex.DESCRIPTIONS, dataset_ids, "description")):
        try:
            keys = vindex.vector_log(ws, kind, recover=False).keys()
        except EngineError as exc:
            report.problems.append(exc.message)
            d[f"{kind}_damaged"] = 1
            continue
        report.vectors += len(np.unique(keys))
        missing = int((~np.isin(ids, keys)).sum())
        orphan = int((~np.isin(keys, ids)).sum())
        repeated = int(len(keys) - len(np.unique(keys)))
        d[f"{kind}_without_vector"], d[f"{kind}_orphan_vectors"], d[f"{kind}_repeated_vectors"] = (
            missing, orphan, repeated)
        if missing:
            report.problems.append(f"{missing} {what}(s) without a vector")
        if orphan:
            report.problems.append(f"{orphan} {what} vector(s) whose {what} is gone")
        if repeated:
            report.problems.append(f"{repeated} repeated {what} vector(s)")
        path = vindex.usearch_path(ws, kind)
        u_keys = vindex.usearch_keys(path)
        if u_keys is None:
            if len(keys):
                report.problems.append(f"{path.name} is missing or unreadable")
                d[f"{kind}_usearch_missing"] = 1
        else:
            differ = int(len(np.setxor1d(u_keys, np.unique(keys))))
            d[f"{kind}_usearch_differences"] = differ
            if differ:
                report.problems.append(f"{path.name} differs from the vector log by {differ} key(s)")
    with ws.store.cursor() as cur:
        stuck = cur.execute("select count(*) from datasets where status <> 'ready'").fetchall()[0][0]
        dangling = cur.execute('select count(*) from cells c anti join cell_values v on v.id = c.value'
                               ).fetchall()[0][0]
        loose_rows = cur.execute("select count(*) from rows r anti join datasets d on d.id = r.dataset"
                                 ).fetchall()[0][0]
    d["datasets_ingesting"], d["cells_without_value"], d["rows_without_dataset"] = stuck, dangling, loose_rows
    if stuck:
        report.problems.append(f"{stuck} dataset(s) left 'ingesting' by an interrupted ingest")
    if dangling:
        report.problems.append(f"{dangling} cell(s) point at no value")
    if loose_rows:
        report.problems.append(f"{loose_rows} row(s) belong to no dataset")
    report.details = d
    return report


def repair(ws: Workspace, embedder: Embedder | None = None) -> Iterator[Event]:
    """Make the store and the index agree (see the module docstring); yields events, returns a CheckReport."""
    from engine.datastore.ingest import _needs_embedding, embed_pending, sync_indexes, workspace_embedder_name
    from engine.events import Log

    repaired: dict[str, int] = {}
    with ws.store.transaction() as cur:
        n = cur.execute('select count(*) from cells c anti join cell_values v on v.id = c.value').fetchall()[0][0]
        cur.execute('delete from cells where value not in (select id from cell_values)')
        m = cur.execute("select count(*) from rows r anti join datasets d on d.id = r.dataset").fetchall()[0][0]
        cur.execute('delete from cells where "row" in (select r.id from rows r anti join datasets d '
                    'on d.id = r.dataset)')
        cur.execute("delete from rows where dataset not in (select id from datasets)")
        cur.execute("delete from configs where dataset not in (select id from datasets)")
    if n or m:
        repaired["dangling_cells"], repaired["loose_rows"] = int(n), int(m)
    for kind in (vindex.VALUES, vindex.DESCRIPTIONS):
        path = vindex.log_path(ws, kind)
        try:
            vindex.vector_log(ws, kind)
        except EngineError:
            path.unlink()  # damaged beyond a torn tail: re-embed from scratch
            repaired[f"{kind}_log_rebuilt"] = 1
    dropped = _drop_orphans(ws)
    if dropped:
        repaired["orphan_vectors_dropped"] = dropped
        yield Log(f"dropped {dropped} orphan or repeated vector(s)")
    if _needs_embedding(ws):
        if embedder is None:
            from engine.datastore.embed import load_embedder

            embedder = load_embedder(workspace_embedder_name(ws), ws.config["embedder.device"])
        embedded, ready = yield from embed_pending(ws, embedder, int(ws.config["embedder.batch_size"]))
        repaired["values_embedded"] = int(embedded)
        repaired["datasets_finished"] = len(ready)
    for kind in (vindex.DESCRIPTIONS, vindex.VALUES):
        u = vindex.usearch_path(ws, kind)
        if vindex.usearch_keys(u) is None and u.exists():
            u.unlink()
    yield from sync_indexes(ws)
    report = check(ws)
    report.repaired = repaired
    return report


def run_repair(ws: Workspace, embedder: Embedder | None = None) -> CheckReport:
    """Run :func:`repair` to the end and return its report (for workers and scripts)."""
    gen = repair(ws, embedder)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
