"""The datasets of a workspace's datastore: totals, the list, finding one by name, removing one.

Removing a dataset deletes its rows, cells and configs and the values no other dataset uses in one DuckDB
transaction, then drops their vectors from the vector logs and brings the usearch files in line.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from engine.datastore import vindex
from engine.errors import EngineError

if TYPE_CHECKING:
    from engine.workspace import Workspace


@dataclass(frozen=True, slots=True)
class Totals:
    """What a workspace's datastore holds. ``vectors`` counts value and description vectors together."""

    datasets: int
    configs: int
    rows: int
    cells: int
    values: int
    vectors: int

    def to_json(self) -> dict[str, int]:
        return asdict(self)


def totals(ws: Workspace) -> Totals:
    """Workspace totals: datasets, configs, rows, cells, distinct values, vectors (values + descriptions)."""
    counts = ws.store.table_counts(["datasets", "configs", "rows", "cells", "cell_values"])
    vectors = (vindex.vector_log(ws, vindex.VALUES, recover=False).count
               + vindex.vector_log(ws, vindex.DESCRIPTIONS, recover=False).count)
    return Totals(counts["datasets"], counts["configs"], counts["rows"], counts["cells"], counts["cell_values"],
                  vectors)


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

    @property
    def ready(self) -> bool:
        """True once every value and the description have vectors (only then do its rows count for retrieval)."""
        return self.status == "ready"

    def to_json(self, card: bool = False) -> dict[str, Any]:
        out = asdict(self)
        if not card:
            out.pop("card")
        return out


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
        rows: list[tuple[int, str]] = cur.execute("select id, name from datasets order by name").fetchall()
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


@dataclass(frozen=True, slots=True)
class RemovedDataset:
    """What :func:`remove_dataset` deleted: the dataset's full id, its rows and cells, and the values no other
    dataset used."""

    dataset: str
    rows: int
    cells: int
    values: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def remove_dataset(ws: Workspace, name: str) -> RemovedDataset:
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
    vindex.drop_orphan_vectors(ws)
    for kind in (vindex.DESCRIPTIONS, vindex.VALUES):
        vindex.sync_usearch(ws, kind)
    return RemovedDataset(ds_name, int(n_rows), int(n_cells), int(n_values))
