"""The datastore as retrieval holds it in memory: vectors, rows and cells of every ``ready`` dataset.

:func:`load_datastore` reads, in this order (a dataset turns ``ready`` only once all its vectors are in the
log, so reading the database before the vector files is safe while an ingest runs in another thread):

1. the ready datasets, checking the workspace's embedder against the configured one;
2. the description vectors, aligned with the datasets;
3. the value vectors;
4. the rows and cells of ready datasets, linked to the values into a :class:`~engine.retrieval.scoring.CellIndex`
   (only the values some ready row uses are kept, in key order).

With ``retrieval.compact`` on (``auto``: from :data:`COMPACT_AUTO_VALUES` values) step 3 opens the int8 copy
of the value vectors (:mod:`engine.retrieval.compact`, synced with the log first) and leaves the float32
vectors mapped on disk: every value of the log keeps its place, used or not, so nothing is copied.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import EngineError
from engine.retrieval import scoring
from engine.retrieval.compact import FOLDER as COMPACT_FOLDER
from engine.retrieval.compact import CompactValues, VectorFile, open_compact

if TYPE_CHECKING:
    from engine.workspace import Workspace

log = logging.getLogger(__name__)

#: Values from which ``retrieval.compact = auto`` scans the int8 copy: below it the float32 scan is about as
#: fast (300k values: 36 vs 30 ms) without a derived file to build and keep; from it the int8 path is three
#: times as fast with a third of the memory (500k values: 38 vs 109 ms, 0.28 vs 0.80 GiB resident).
COMPACT_AUTO_VALUES = 500_000
COMPACT_MODES = ("auto", "on", "off")

Signature = tuple[Any, ...]
"""What changes when datasets are added, removed or finished (compared to tell a stale load)."""


@dataclass(frozen=True)
class LoadedDatastore:
    """The arrays retrieval scores against.

    ``dataset_ids[i]`` is the name of dataset position ``i`` and ``descriptions[i]`` its description vector
    (zeros when it has none). ``values[j]`` is the vector of value key ``value_keys[j]``. ``index`` holds
    the rows and their cells; ``row_config`` / ``row_source_id`` give, per row position of ``index``, the
    config id and the row's id at its source; ``configs`` maps a config id to its ``(name, split)``.
    ``compact`` is the int8 copy when ``retrieval.compact`` applies (``values`` is then its float32 mapping).
    """

    embedder_name: str
    signature: Signature
    dataset_ids: tuple[str, ...]
    descriptions: np.ndarray
    values: np.ndarray | VectorFile
    value_keys: np.ndarray
    index: scoring.CellIndex
    row_config: np.ndarray
    row_source_id: np.ndarray
    configs: dict[int, tuple[str, str]]
    compact: CompactValues | None = None


def read_signature(ws: Workspace) -> Signature:
    """The count, id sum and newest ``added_at`` of the ready datasets."""
    with ws.store.cursor() as cur:
        return tuple(cur.execute(
            "select count(*), coalesce(sum(id), 0), coalesce(max(added_at)::varchar, '') "
            "from datasets where status = 'ready'").fetchall()[0])


def _ready_datasets(ws: Workspace) -> tuple[str, list[tuple[int, str]]]:
    """The workspace's embedder and its ready datasets ``(id, name)`` in id order; refuses an empty datastore
    and a configured embedder that is not the one the vectors were made with."""
    from engine.datastore.embed import same_embedder

    embedder_name = ws.store.get_meta("embedder.name")
    # an embedder set explicitly (config.toml, environment, CLI) must be the workspace's; the default is
    # just the default, and the workspace's recorded one wins (as ingest does)
    configured = (str(ws.config["embedder.model"])
                  if ws.config.sources.get("embedder.model", "default") != "default" else None)
    with ws.store.cursor() as cur:
        ds_rows = cur.execute("select id, name from datasets where status = 'ready' order by id").fetchall()
    if not ds_rows or not embedder_name:
        raise EngineError(f"workspace {ws.path} has no ingested datasets to retrieve from",
                          fix="ingest some first: rebase-tui ingest PATH")
    if configured is not None and not same_embedder(embedder_name, configured):
        raise EngineError(
            f"workspace {ws.path} was built with embedder {embedder_name!r}, but the configured "
            f"embedder is {configured!r}; their vectors cannot be compared",
            fix=f"use the workspace's embedder (rebase-tui config embedder.model {embedder_name}), "
                "or ingest into another workspace with -w DIR")
    return embedder_name, [(int(i), str(n)) for i, n in ds_rows]


def _description_matrix(ws: Workspace, ds_keys: np.ndarray, dataset_ids: tuple[str, ...]) -> np.ndarray:
    """Description vectors aligned with dataset positions (a missing one stays zero: dataset score 0)."""
    from engine.datastore import vindex

    d_keys, d_vecs = vindex.load_description_vectors(ws)
    out = np.zeros((len(ds_keys), d_vecs.shape[1] if d_vecs.ndim == 2 else 0), np.float32)
    have = scoring.positions(d_keys.astype(np.int64), ds_keys)
    if (have < 0).any():
        missing = [dataset_ids[i] for i in np.flatnonzero(have < 0)]
        log.warning("datasets without a description vector (dataset score 0): %s", ", ".join(missing[:5]))
    out[have >= 0] = d_vecs[have[have >= 0]]
    return out


def use_compact(ws: Workspace, n_values: int) -> bool:
    """Whether retrieval scans the int8 copy: the ``retrieval.compact`` setting (``auto``: from
    :data:`COMPACT_AUTO_VALUES` values)."""
    mode = str(ws.config["retrieval.compact"]).strip().lower()
    if mode not in COMPACT_MODES:
        raise EngineError(f"retrieval.compact is {mode!r}, not one of {', '.join(COMPACT_MODES)}",
                          fix="rebase-tui config retrieval.compact auto")
    return mode == "on" or (mode == "auto" and n_values >= COMPACT_AUTO_VALUES)


def _value_vectors(ws: Workspace) -> tuple[np.ndarray, np.ndarray | VectorFile, CompactValues | None]:
    """``(keys int64, vectors, compact copy or None)`` of every value; refuses an empty log and one of the
    wrong dimension."""
    from engine.datastore import vindex

    compact = None
    if use_compact(ws, vindex.vector_log(ws, vindex.VALUES, recover=False).count):
        compact = open_compact(vindex.log_path(ws, vindex.VALUES), ws.index_dir / COMPACT_FOLDER)
        v_keys, values = compact.keys, compact.source
    else:
        v_keys, values = vindex.load_value_vectors(ws)
    dim = ws.store.get_meta("embedder.dim")
    if values.shape[0] == 0:
        raise EngineError(f"workspace {ws.path} has datasets but no value vectors in {ws.index_dir}",
                          fix="finish the ingest (rebase-tui ingest PATH), or run rebase-tui check --repair")
    if dim and int(dim) != values.shape[1]:
        raise EngineError(f"the value vectors in {ws.index_dir} have dimension {values.shape[1]}, but the "
                          f"workspace's embedder has {dim}", fix="run rebase-tui check --repair")
    return v_keys.astype(np.int64), values, compact


@dataclass(frozen=True)
class _Structure:
    """Rows and cells of the ready datasets as read from DuckDB (column-wise numpy arrays)."""

    rows: dict[str, np.ndarray]
    columns: list[str]
    cells: dict[str, np.ndarray]
    configs: dict[int, tuple[str, str]]
    compact: CompactValues | None = None


def _read_structure(ws: Workspace) -> _Structure:
    """Rows (key, dataset position, config, source row id) and cells (row key, value key, column code)."""
    with ws.store.cursor() as cur:
        rows = cur.execute(
            "select r.id, d.pos, r.config, r.row_id from rows r "
            "join (select id, row_number() over (order by id) - 1 as pos from datasets "
            "      where status = 'ready') d on d.id = r.dataset").fetchnumpy()
        columns = [r[0] for r in cur.execute('select distinct "column" from cells order by "column"').fetchall()]
        cells = cur.execute(
            'select c."row", c.value, k.code from cells c '
            'join (select "column", row_number() over (order by "column") - 1 as code '
            '      from (select distinct "column" from cells)) k using ("column") '
            "join rows r on r.id = c.\"row\" join datasets d on d.id = r.dataset "
            "where d.status = 'ready'").fetchnumpy()
        configs = {int(i): (str(n), str(s)) for i, n, s in
                   cur.execute("select id, name, split from configs").fetchall()}
    return _Structure(rows, columns, cells, configs)


def load_datastore(ws: Workspace) -> LoadedDatastore:
    """Read the workspace's ready datasets into memory (see the module docstring)."""
    embedder_name, ds_rows = _ready_datasets(ws)
    signature = read_signature(ws)
    dataset_ids = tuple(name for _, name in ds_rows)
    descriptions = _description_matrix(ws, np.array([i for i, _ in ds_rows], dtype=np.int64), dataset_ids)
    v_keys, values, compact = _value_vectors(ws)
    s = _read_structure(ws)

    # link each cell to its value's position in the vector matrix
    cell_value_key = np.asarray(s.cells["value"], dtype=np.int64)
    value_pos = scoring.positions(v_keys, cell_value_key)
    found = value_pos >= 0
    if not found.all():
        log.warning("%d cells have no value vector and are skipped (run rebase-tui check)", int((~found).sum()))
    value_pos = value_pos[found]
    # keep only the values some ready row uses, in key order (the compact copy is kept whole: no copy)
    used = np.unique(value_pos) if compact is None else v_keys
    if len(used) < len(v_keys):
        remap = np.full(len(v_keys), -1, dtype=np.int64)
        remap[used] = np.arange(len(used))
        values, v_keys, value_pos = values[used], v_keys[used], remap[value_pos]
    row_keys = np.asarray(s.rows["id"], dtype=np.int64)
    index = scoring.build_cell_index(
        np.asarray(s.cells["row"], dtype=np.int64)[found], value_pos,
        np.asarray(s.cells["code"], dtype=np.int64)[found], s.columns,
        row_keys, np.asarray(s.rows["pos"], dtype=np.int64))
    meta = scoring.positions(row_keys, index.row_keys)
    return LoadedDatastore(
        embedder_name, signature, dataset_ids, descriptions,
        values if compact is not None else np.ascontiguousarray(values, dtype=np.float32),
        v_keys, index, np.asarray(s.rows["config"], dtype=np.int64)[meta],
        np.asarray(s.rows["row_id"], dtype=np.int64)[meta], s.configs, compact)


# -- the approximate path's usearch index --------------------------------------------------------
REPAIR_FIX = ("run `rebase-tui check --repair` (it rebuilds the index from the vectors), "
              "or search without --approximate")


def damaged_index(ws: Workspace, detail: str) -> EngineError:
    """The error for a values index that cannot be used (missing, unreadable, or not this datastore's)."""
    from engine.datastore import vindex

    return EngineError(f"the approximate index {vindex.usearch_path(ws, vindex.VALUES)} {detail}", fix=REPAIR_FIX)


def open_value_index(ws: Workspace, value_keys: np.ndarray, dim: int) -> Any:
    """The values' usearch index (memory-mapped), checked against the loaded datastore.

    A damaged file raises inside usearch (``ValueError: End of file reached!``, ``Not a dense USearch
    index!``); one of another dimension, or lacking some value, would silently miss rows while the
    exactness proof claims otherwise. Each is one EngineError naming the repair.
    """
    from usearch.index import Index

    from engine.datastore import vindex

    path = vindex.usearch_path(ws, vindex.VALUES)
    if not path.is_file():
        raise damaged_index(ws, "is missing")
    try:
        index = Index.restore(str(path), view=True)
    except (RuntimeError, ValueError, OSError) as exc:
        raise damaged_index(ws, f"is damaged ({_first_line(exc)})") from None
    if index is None:
        raise damaged_index(ws, "is damaged (not a usearch index file)")
    if index.ndim != dim:
        raise damaged_index(ws, f"holds {index.ndim}-dimensional vectors, but the datastore's have {dim}")
    n = len(index)
    keys = np.asarray(index.keys[:n], dtype=np.int64) if n else np.zeros(0, np.int64)
    lacking = int((~np.isin(value_keys, keys)).sum())
    if lacking:
        raise damaged_index(ws, f"lacks {lacking:,} of the datastore's {len(value_keys):,} values (an ingest "
                                "still running adds them at its end)")
    return index


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
