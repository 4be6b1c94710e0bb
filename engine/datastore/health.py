"""The datastore's health: check that the store and its vector index agree, and repair them.

``check`` compares three things that must agree: the ids in DuckDB (``cell_values``, ``datasets``), the
keys of the vector logs (``index/*.vectors``) and the keys of the usearch files (``index/*.usearch``).
``repair`` makes them agree again: it drops vectors without a value, re-embeds values and descriptions
without a vector (with the workspace's embedder), finishes datasets an interrupted ingest left
``ingesting``, and rebuilds the usearch files from the logs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.datastore import vindex
from engine.errors import EngineError
from engine.events import Event, Log

if TYPE_CHECKING:
    from engine.datastore.embed import Embedder
    from engine.workspace import Workspace


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What ``check`` found. ``problems`` is empty when the store and the index agree.

    ``details`` counts each kind of disagreement by name (``values_without_vector``, ...); ``repaired``
    counts what a repair fixed (empty after a plain check).
    """

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
        """The ``rebase-tui check --json`` document."""
        return {"ok": self.ok, "datasets": self.datasets, "values": self.values, "vectors": self.vectors,
                "problems": self.problems, "details": self.details, "repaired": self.repaired}


@dataclass(frozen=True, slots=True)
class RepairDone(Event):
    """The last event of a repair: the check made after it."""

    report: CheckReport


def _ids(ws: Workspace, sql: str) -> np.ndarray:
    with ws.store.cursor() as cur:
        return np.array([r[0] for r in cur.execute(sql).fetchall()], dtype=np.uint64)


def _note(problems: list[str], *found: tuple[int, str]) -> None:
    """Add the message of every ``(count, message)`` whose count is not zero."""
    problems.extend(message for count, message in found if count)


def _check_vectors(ws: Workspace, kind: str, ids: np.ndarray, what: str, problems: list[str],
                   details: dict[str, int]) -> int:
    """Compare one kind's ids with its vector log and usearch file; return the distinct vectors it holds."""
    try:
        keys = vindex.vector_log(ws, kind, recover=False).keys()
    except EngineError as exc:
        problems.append(exc.message)
        details[f"{kind}_damaged"] = 1
        return 0
    unique = np.unique(keys)
    missing = int((~np.isin(ids, keys)).sum())
    orphan = int((~np.isin(keys, ids)).sum())
    repeated = int(len(keys) - len(unique))
    details[f"{kind}_without_vector"], details[f"{kind}_orphan_vectors"] = missing, orphan
    details[f"{kind}_repeated_vectors"] = repeated
    _note(problems, (missing, f"{missing} {what}(s) without a vector"),
          (orphan, f"{orphan} {what} vector(s) whose {what} is gone"),
          (repeated, f"{repeated} repeated {what} vector(s)"))
    path = vindex.usearch_path(ws, kind)
    u_keys = vindex.usearch_keys(path)
    if u_keys is None:
        if len(keys):
            problems.append(f"{path.name} is missing or unreadable")
            details[f"{kind}_usearch_missing"] = 1
    else:
        differ = int(len(np.setxor1d(u_keys, unique)))
        details[f"{kind}_usearch_differences"] = differ
        if differ:
            problems.append(f"{path.name} differs from the vector log by {differ} key(s)")
    return len(unique)


def _check_tables(ws: Workspace, problems: list[str], details: dict[str, int]) -> None:
    """Datasets stuck ``ingesting``, cells pointing at no value, rows of no dataset."""
    with ws.store.cursor() as cur:
        stuck = cur.execute("select count(*) from datasets where status <> 'ready'").fetchall()[0][0]
        dangling = cur.execute('select count(*) from cells c anti join cell_values v on v.id = c.value'
                               ).fetchall()[0][0]
        loose_rows = cur.execute("select count(*) from rows r anti join datasets d on d.id = r.dataset"
                                 ).fetchall()[0][0]
    details["datasets_ingesting"], details["cells_without_value"] = stuck, dangling
    details["rows_without_dataset"] = loose_rows
    _note(problems, (stuck, f"{stuck} dataset(s) left 'ingesting' by an interrupted ingest"),
          (dangling, f"{dangling} cell(s) point at no value"), (loose_rows, f"{loose_rows} row(s) belong to no dataset"))


def check(ws: Workspace) -> CheckReport:
    """Verify that every value and description has exactly one vector, every vector a value, the usearch
    files hold the same keys, and no dataset is stuck ``ingesting``; list what is wrong."""
    value_ids = _ids(ws, "select id from cell_values")
    dataset_ids = _ids(ws, "select id from datasets")
    problems: list[str] = []
    details: dict[str, int] = {}
    vectors = _check_vectors(ws, vindex.VALUES, value_ids, "value", problems, details)
    vectors += _check_vectors(ws, vindex.DESCRIPTIONS, dataset_ids, "description", problems, details)
    _check_tables(ws, problems, details)
    return CheckReport(len(dataset_ids), len(value_ids), vectors, problems, details)


def _drop_loose_rows(ws: Workspace, repaired: dict[str, int]) -> None:
    """Delete cells pointing at no value, and rows, cells and configs of no dataset."""
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


def repair(ws: Workspace, embedder: Embedder | None = None) -> Iterator[Event]:
    """Make the store and the index agree (see the module docstring); yields events, ending in RepairDone."""
    from engine.datastore.vectorize import (
        embed_pending,
        needs_embedding,
        sync_indexes,
        workspace_embedder_name,
    )

    repaired: dict[str, int] = {}
    _drop_loose_rows(ws, repaired)
    for kind in (vindex.VALUES, vindex.DESCRIPTIONS):
        try:
            vindex.vector_log(ws, kind)
        except EngineError:
            vindex.log_path(ws, kind).unlink()  # damaged beyond a torn tail: re-embed from scratch
            repaired[f"{kind}_log_rebuilt"] = 1
    dropped = vindex.drop_orphan_vectors(ws)
    if dropped:
        repaired["orphan_vectors_dropped"] = dropped
        yield Log(f"dropped {dropped} orphan or repeated vector(s)")
    if needs_embedding(ws):
        if embedder is None:
            from engine.datastore.embed import load_embedder

            embedder = load_embedder(workspace_embedder_name(ws), ws.config["embedder.device"])
        embedded = yield from embed_pending(ws, embedder, int(ws.config["embedder.batch_size"]))
        repaired["values_embedded"] = embedded.values
        repaired["datasets_finished"] = len(embedded.ready)
    for kind in (vindex.DESCRIPTIONS, vindex.VALUES):
        u = vindex.usearch_path(ws, kind)
        if vindex.usearch_keys(u) is None and u.exists():
            u.unlink()
    yield from sync_indexes(ws)
    yield RepairDone(replace(check(ws), repaired=repaired))


def run_repair(ws: Workspace, embedder: Embedder | None = None) -> CheckReport:
    """Run :func:`repair` to the end and return its report (for workers and scripts)."""
    report: CheckReport | None = None
    for event in repair(ws, embedder):
        if isinstance(event, RepairDone):
            report = event.report
    assert report is not None, "repair always ends with RepairDone"
    return report
