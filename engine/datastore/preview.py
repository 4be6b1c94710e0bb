"""A look inside one dataset of the datastore: its configs (split, columns, rows held) and their first rows.

What the Data screen shows when a dataset is opened (``enter``), so that a user can judge a dataset by its
content before a task retrieves from it. Rows are as stored (``rows.data``), in source order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.datastore.datasets import find_dataset

if TYPE_CHECKING:
    from engine.workspace import Workspace


@dataclass(frozen=True, slots=True)
class ConfigPreview:
    """One config of a dataset: its split, its columns, how many rows the datastore holds (and the source
    had), and its first rows."""

    name: str
    split: str
    columns: tuple[str, ...]
    rows: int
    rows_total: int | None
    first_rows: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class DatasetPreview:
    """A dataset's configs, each with its first rows."""

    name: str
    configs: tuple[ConfigPreview, ...]


def preview_dataset(ws: Workspace, name: str, rows: int = 5) -> DatasetPreview:
    """The configs of dataset ``name`` and the first ``rows`` rows of each (EngineError when it is unknown)."""
    dataset_id, full_name = find_dataset(ws, name)
    with ws.store.cursor() as cur:
        configs = cur.execute("""
            select c.id, c.name, c.split, c.columns, c.rows_total,
                   (select count(*) from rows r where r.config = c.id)
            from configs c where c.dataset = ? order by c.name, c.split""", [dataset_id]).fetchall()
        out = []
        for config_id, config, split, columns, rows_total, held in configs:
            first = cur.execute('select data from rows where config = ? order by row_id limit ?',
                                [config_id, rows]).fetchall()
            out.append(ConfigPreview(config, split, tuple(_columns(columns)), int(held),
                                     None if rows_total is None else int(rows_total),
                                     tuple(_row(r[0]) for r in first)))
    return DatasetPreview(full_name, tuple(out))


def _columns(value: Any) -> list[str]:
    if value is None:
        return []
    parsed = json.loads(value) if isinstance(value, str) else value
    return [str(c) for c in parsed] if isinstance(parsed, list) else []


def _row(value: Any) -> dict[str, Any]:
    parsed = json.loads(value) if isinstance(value, str) else value
    return parsed if isinstance(parsed, dict) else {"value": parsed}
