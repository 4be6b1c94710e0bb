"""Ingest's first phase: read one dataset from disk and stage it in DuckDB in one transaction.

Staging writes the dataset's ``datasets`` row (status ``ingesting``), its configs, rows and cells, and the
cell texts not yet in ``cell_values`` (deduplicated by content hash across the whole workspace). A kill
mid-dataset rolls the whole dataset back, so nothing half-written stays. The dataset becomes ``ready`` only
later, once every value and its description have vectors (:mod:`engine.datastore.vectorize`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.datastore.cells import storable
from engine.datastore.ids import source_text
from engine.datastore.readers import read_split
from engine.datastore.sources import DatasetSource

if TYPE_CHECKING:
    from engine.workspace import Workspace

Row = dict[str, str | None]
"""A flattened source row: column -> cell text (None for an empty cell)."""


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file or folder an ingest passed over, and why (it never stops the run). ``id_taken``: the dataset
    there was passed over only because its id is taken (``ingest --id NAME`` stores it under another)."""

    path: str
    reason: str
    id_taken: bool = False

    def __post_init__(self) -> None:
        # a path from a file name that is not UTF-8 holds surrogates, which no output can print
        object.__setattr__(self, "path", storable(self.path)[0])
        object.__setattr__(self, "reason", storable(self.reason)[0])

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class StagedConfig:
    """One config split as read: its columns, the split's full row count, and the chosen ``(row_id, row)``."""

    name: str
    split: str
    columns: list[str]
    rows_total: int
    rows: list[tuple[int, Row]]


@dataclass(frozen=True, slots=True)
class StagedDataset:
    """A dataset read from disk, ready to be written in one transaction."""

    source: DatasetSource
    description: str
    description_generated: bool
    configs: list[StagedConfig]

    @property
    def rows(self) -> int:
        return sum(len(c.rows) for c in self.configs)


def generated_description(name: str, columns: Sequence[str], sample: Row | None) -> str:
    """A description made from the dataset id, its column names and one sample row."""
    text = f"{name}: a dataset with the columns {', '.join(columns[:20])}."
    if sample:
        parts = [f"{k}: {v[:120]}" for k, v in sample.items() if v][:8]
        if parts:
            text += " Example row — " + "; ".join(parts)
    return text


def read_dataset(ds: DatasetSource, max_rows: int, skipped: list[Skipped]) -> StagedDataset | None:
    """Read every config of ``ds`` (at most ``max_rows`` rows each, 0: all); None when no config has a row.

    Files that cannot be read, and partial problems, are appended to ``skipped``. A dataset without a
    description in its card gets one generated from its columns and its fullest first row.
    """
    configs = []
    for cfg in ds.configs:
        result, failed = read_split(cfg.files, max_rows, ds.labels)
        skipped.extend(Skipped(p, r) for p, r in failed + result.notes)
        if result.rows:
            configs.append(StagedConfig(cfg.name, cfg.split, result.columns, result.rows_total, result.rows))
    if not configs:
        return None
    description, generated = ds.description, False
    if not description.strip():
        first = configs[0]
        sample = max(first.rows, key=lambda r: sum(v is not None for v in r[1].values()))[1]
        description, generated = generated_description(ds.name, first.columns, sample), True
    return StagedDataset(ds, description, generated, configs)


@dataclass
class _Columns:
    """Column-wise rows and cells of one dataset, built in Python and handed to DuckDB as Arrow tables."""

    row_id: list[int]
    row_dataset: list[int]
    row_config: list[int]
    row_source_id: list[int]
    row_data: list[str]
    cell_row: list[int]
    cell_column: list[str]
    cell_text: list[str]

    def rows_table(self) -> Any:
        import pyarrow as pa

        return pa.table({"id": pa.array(self.row_id, pa.int64()), "dataset": pa.array(self.row_dataset, pa.int32()),
                         "config": pa.array(self.row_config, pa.int32()),
                         "row_id": pa.array(self.row_source_id, pa.int64()),
                         "data": pa.array(self.row_data, pa.string())})

    def cells_table(self) -> Any:
        import pyarrow as pa

        return pa.table({"row": pa.array(self.cell_row, pa.int64()), "column": pa.array(self.cell_column, pa.string()),
                         "text": pa.array(self.cell_text, pa.string()),
                         "ord": pa.array(range(len(self.cell_text)), pa.int64())})


def stage_dataset(ws: Workspace, staged: StagedDataset, value_floor: int, dataset_floor: int) -> int:
    """Write one dataset (status ``ingesting``) in one transaction; return its id.

    New ids continue above ``value_floor`` / ``dataset_floor`` (the largest keys in the vector logs), so an id
    is never reused for another text while an old vector may still carry it.
    """
    with ws.store.transaction() as cur:
        def top(table: str) -> int:
            return int(cur.execute(f"select coalesce(max(id), 0) from {table}").fetchall()[0][0])

        ds_id = max(top("datasets"), dataset_floor) + 1
        next_config, next_row = top("configs") + 1, top("rows") + 1
        max_value = max(top("cell_values"), value_floor)
        # a file name that is not UTF-8, or a card's JSON with an unpaired surrogate escape, keeps U+FFFD:
        # DuckDB stores UTF-8 only
        cur.execute("insert into datasets (id, name, source_path, description, description_generated, card, "
                    "status) values (?, ?, ?, ?, ?, ?, 'ingesting')",
                    [ds_id, staged.source.name, source_text(staged.source.root),
                     storable(staged.description)[0], staged.description_generated,
                     storable(staged.source.card)[0] if staged.source.card is not None else None])
        cols = _Columns([], [], [], [], [], [], [], [])
        for config in staged.configs:
            cur.execute("insert into configs (id, dataset, name, split, columns, rows_total, status) "
                        "values (?, ?, ?, ?, ?, ?, 'ingesting')",
                        [next_config, ds_id, storable(config.name)[0], storable(config.split)[0],
                         json.dumps(config.columns, ensure_ascii=False), config.rows_total])
            for row_id, row in config.rows:
                cols.row_id.append(next_row)
                cols.row_dataset.append(ds_id)
                cols.row_config.append(next_config)
                cols.row_source_id.append(row_id)
                cols.row_data.append(json.dumps(row, ensure_ascii=False))
                for column, text in row.items():
                    if text is not None:
                        cols.cell_row.append(next_row)
                        cols.cell_column.append(column)
                        cols.cell_text.append(text)
                next_row += 1
            next_config += 1
        cur.register("staged_rows", cols.rows_table())
        cur.register("staged_cells", cols.cells_table())
        try:
            cur.execute("insert into rows (id, dataset, config, row_id, data) "
                        "select id, dataset, config, row_id, data::json from staged_rows")
            # new texts get ids in order of first appearance, after every id used so far
            cur.execute("""
                insert into cell_values (id, text, hash)
                select ? + row_number() over (order by first), text, h from (
                    select text, md5(text) as h, min(ord) as first from staged_cells group by text
                ) n where not exists (select 1 from cell_values v where v.hash = n.h)""", [max_value])
            cur.execute("""
                insert into cells ("row", "column", value)
                select s."row", s."column", v.id from staged_cells s join cell_values v on v.hash = md5(s.text)""")
        finally:
            cur.unregister("staged_rows")
            cur.unregister("staged_cells")
    return ds_id
