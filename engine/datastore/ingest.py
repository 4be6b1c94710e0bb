"""Ingest: local datasets → rows, cells and distinct values in DuckDB, and their vectors (ReBase stage 1).

``ingest(ws, paths)`` is a generator of events (time-batched :class:`~engine.events.Progress` and
:class:`~engine.events.Log`, then one :class:`IngestDone` carrying the summary). It runs in two phases:

1. **Stage** each new dataset in *one* DuckDB transaction: its ``datasets`` row (status ``ingesting``),
   configs, rows, cells, and the cell texts not yet in ``cell_values`` (deduplicated by content hash across
   the whole workspace). A kill mid-dataset rolls that dataset back; nothing half-written stays.
2. **Embed** every value and description that has no vector yet, in ascending id order, in chunks sorted by
   length (little padding), appending each batch to the vector log (:mod:`engine.datastore.vindex`). After each chunk,
   every staged dataset whose values and description all have vectors becomes ``ready`` — only then do its
   rows count for retrieval. Finally the usearch files are brought in line with the log.

Running it again resumes: staged datasets are not re-read, values with vectors are not re-embedded, and a
dataset already in the workspace (same id) is left untouched. The counts after an interrupted-then-resumed
run equal those of an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.datastore import vindex
from engine.datastore.readers import read_split
from engine.datastore.sources import DatasetSource, discover, normalize_split
from engine.errors import EngineError
from engine.events import Event, Log, Progress

if TYPE_CHECKING:
    from engine.datastore.embed import Embedder
    from engine.workspace import Workspace

log = logging.getLogger(__name__)

EVENT_INTERVAL = 0.25
"""Seconds between two Progress events of one stage (about 4 Hz)."""
CHUNK_VALUES = 4096
"""Values per embedding chunk: sorted by length within a chunk; datasets turn ready between chunks."""


@dataclass(frozen=True, slots=True)
class IngestDone(Event):
    """The end of an ingest: ``summary`` is the ``ingest --json`` document."""

    summary: dict[str, Any]


class _Ticker:
    """True at most every ``interval`` seconds (time-batches progress events)."""

    def __init__(self, interval: float = EVENT_INTERVAL) -> None:
        self.interval = interval
        self.last = 0.0

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            return True
        return False


# -- embedder bookkeeping -------------------------------------------------------------------------
def workspace_embedder_name(ws: Workspace, requested: str | None = None) -> str:
    """The embedder this workspace uses: the one recorded in it, unless another is asked for explicitly.

    Raises :class:`EngineError` when ``requested`` (or an explicitly configured model) differs from the
    recorded one: vectors of two models must never be mixed in one workspace.
    """
    from engine.datastore.embed import canonical_name, same_embedder

    recorded = ws.store.get_meta("embedder.name")
    explicit = requested or (ws.config["embedder.model"]
                             if ws.config.sources.get("embedder.model") != "default" else None)
    if recorded and explicit and not same_embedder(recorded, explicit):
        raise EngineError(
            f"workspace {ws.path} was built with embedder {recorded}, not {explicit}",
            fix=f"use --embedder {recorded} (or leave it out), or ingest into another workspace with -w DIR")
    return recorded or canonical_name(explicit or ws.config["embedder.model"])


def _record_embedder(ws: Workspace, embedder: Embedder) -> None:
    from engine.datastore.embed import same_embedder

    recorded = ws.store.get_meta("embedder.name")
    if recorded and not same_embedder(recorded, embedder.name):
        raise EngineError(
            f"workspace {ws.path} was built with embedder {recorded}, not {embedder.name}",
            fix=f"use --embedder {recorded}, or ingest into another workspace with -w DIR")
    dim = ws.store.get_meta("embedder.dim")
    if dim and int(dim) != embedder.dim:
        raise EngineError(f"workspace {ws.path} holds {dim}-dimensional vectors; {embedder.name} makes "
                          f"{embedder.dim}", fix="use the workspace's embedder, or another workspace")
    if not recorded:
        ws.store.set_meta("embedder.name", embedder.name)
    if not dim:
        ws.store.set_meta("embedder.dim", str(embedder.dim))


# -- staging --------------------------------------------------------------------------------------
def generated_description(name: str, columns: Sequence[str], sample: dict[str, str | None] | None) -> str:
    """A description made from the dataset id, its column names and one sample row."""
    text = f"{name}: a dataset with the columns {', '.join(columns[:20])}."
    if sample:
        parts = [f"{k}: {v[:120]}" for k, v in sample.items() if v][:8]
        if parts:
            text += " Example row — " + "; ".join(parts)
    return text


@dataclass
class _Staged:
    """A dataset read from disk, ready to be written in one transaction."""

    source: DatasetSource
    description: str
    generated: bool
    configs: list[tuple[str, str, list[str], int, list[tuple[int, dict[str, str | None]]]]]

    @property
    def rows(self) -> int:
        return sum(len(c[4]) for c in self.configs)


def _read_dataset(ds: DatasetSource, max_rows: int, skipped: list[dict[str, str]]) -> _Staged | None:
    configs = []
    for cfg in ds.configs:
        result, failed = read_split(cfg.files, max_rows, ds.labels)
        skipped.extend({"path": p, "reason": r} for p, r in failed + result.notes)
        if result.rows:
            configs.append((cfg.name, cfg.split, result.columns, result.rows_total, result.rows))
    if not configs:
        return None
    description, generated = ds.description, False
    if not description.strip():
        first = configs[0]
        sample = max(first[4], key=lambda r: sum(v is not None for v in r[1].values()))[1]
        description, generated = generated_description(ds.name, first[2], sample), True
    return _Staged(ds, description, generated, configs)


def _stage(ws: Workspace, staged: _Staged, value_floor: int, dataset_floor: int) -> int:
    """Write one dataset (status ingesting) in one transaction; return its id."""
    import pyarrow as pa

    with ws.store.transaction() as cur:
        ds_id = max(cur.execute("select coalesce(max(id), 0) from datasets").fetchall()[0][0], dataset_floor) + 1
        next_config = cur.execute("select coalesce(max(id), 0) from configs").fetchall()[0][0] + 1
        next_row = cur.execute("select coalesce(max(id), 0) from rows").fetchall()[0][0] + 1
        max_value = max(cur.execute("select coalesce(max(id), 0) from cell_values").fetchall()[0][0], value_floor)
        cur.execute("insert into datasets (id, name, source_path, description, description_generated, card, "
                    "status) values (?, ?, ?, ?, ?, ?, 'ingesting')",
                    [ds_id, staged.source.name, str(staged.source.root), staged.description, staged.generated,
                     staged.source.card])
        r_id, r_ds, r_cfg, r_src, r_data = [], [], [], [], []
        c_row, c_col, c_text, c_ord = [], [], [], []
        for name, split, columns, total, rows in staged.configs:
            cur.execute("insert into configs (id, dataset, name, split, columns, rows_total, status) "
                        "values (?, ?, ?, ?, ?, ?, 'ingesting')",
                        [next_config, ds_id, name, split, json.dumps(columns, ensure_ascii=False), total])
            for row_id, row in rows:
                r_id.append(next_row)
                r_ds.append(ds_id)
                r_cfg.append(next_config)
                r_src.append(row_id)
                r_data.append(json.dumps(row, ensure_ascii=False))
                for col, text in row.items():
                    if text is not None:
                        c_row.append(next_row)
                        c_col.append(col)
                        c_text.append(text)
                        c_ord.append(len(c_ord))
                next_row += 1
            next_config += 1
        staged_rows = pa.table({"id": pa.array(r_id, pa.int64()), "dataset": pa.array(r_ds, pa.int32()),
                                "config": pa.array(r_cfg, pa.int32()), "row_id": pa.array(r_src, pa.int64()),
                                "data": pa.array(r_data, pa.string())})
        staged_cells = pa.table({"row": pa.array(c_row, pa.int64()), "column": pa.array(c_col, pa.string()),
                                 "text": pa.array(c_text, pa.string()), "ord": pa.array(c_ord, pa.int64())})
        cur.register("staged_rows", staged_rows)
        cur.register("staged_cells", staged_cells)
        try:
            cur.execute("insert into rows (id, dataset, config, row_id, data) "
                        "select id, dataset, config, row_id, data::json from staged_rows")
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


# -- embedding ------------------------------------------------------------------------------------
def _missing(ws: Workspace, table: str, have: np.ndarray, text_sql: str) -> list[tuple[int, str]]:
    """``(id, text)`` of rows of ``table`` whose id has no vector, in id order."""
    import pyarrow as pa

    with ws.store.cursor() as cur:
        cur.register("have_keys", pa.table({"k": pa.array(have.astype(np.int64), pa.int64())}))
        try:
            return cur.execute(f"select t.id, {text_sql} from {table} t anti join have_keys h on t.id = h.k "
                               "order by t.id").fetchall()
        finally:
            cur.unregister("have_keys")


def _value_ceilings(ws: Workspace) -> dict[int, int]:
    """For each dataset still ``ingesting``: the largest value id its cells use (-1 when none)."""
    with ws.store.cursor() as cur:
        rows = cur.execute("""
            select d.id, coalesce(max(c.value), -1) from datasets d
            left join rows r on r.dataset = d.id left join cells c on c."row" = r.id
            where d.status = 'ingesting' group by d.id""").fetchall()
    return {int(d): int(m) for d, m in rows}


def _mark_ready(ws: Workspace, ids: Sequence[int]) -> list[str]:
    if not ids:
        return []
    with ws.store.transaction() as cur:
        cur.execute("update datasets set status = 'ready' where id in (select unnest(?))", [list(ids)])
        cur.execute("update configs set status = 'ready' where dataset in (select unnest(?))", [list(ids)])
        return [r[0] for r in cur.execute("select name from datasets where id in (select unnest(?)) order by id",
                                          [list(ids)]).fetchall()]


def totals(ws: Workspace) -> dict[str, int]:
    """Workspace totals: datasets, configs, rows, cells, values, vectors (values + descriptions)."""
    counts = ws.store.table_counts(["datasets", "configs", "rows", "cells", "cell_values"])
    vectors = (vindex.vector_log(ws, vindex.VALUES, recover=False).count
               + vindex.vector_log(ws, vindex.DESCRIPTIONS, recover=False).count)
    return {"datasets": counts["datasets"], "configs": counts["configs"], "rows": counts["rows"],
            "cells": counts["cells"], "values": counts["cell_values"], "vectors": vectors}


def embed_pending(ws: Workspace, embedder: Embedder, batch_size: int, *,
                  chunk_values: int = CHUNK_VALUES) -> Iterator[Event]:
    """Embed every description and value without a vector; mark finished datasets ready.

    Yields Progress/Log events; returns (via StopIteration.value) ``(values embedded, datasets made ready)``.
    """
    _record_embedder(ws, embedder)
    desc_log = vindex.vector_log(ws, vindex.DESCRIPTIONS)
    value_log = vindex.vector_log(ws, vindex.VALUES)
    ready_names: list[str] = []

    pending_desc = _missing(ws, "datasets", desc_log.keys(), "t.description")
    if pending_desc:
        for start in range(0, len(pending_desc), batch_size):
            part = pending_desc[start:start + batch_size]
            desc_log.append(np.array([p[0] for p in part], dtype=np.uint64),
                            embedder.encode([p[1] for p in part], batch_size=batch_size))
        yield Log(f"embedded {len(pending_desc)} dataset description(s)")

    pending = _missing(ws, "cell_values", value_log.keys(), "t.text")
    ceilings = _value_ceilings(ws)
    total = len(pending)
    done = 0
    ticker = _Ticker()
    if total:
        yield Progress("embed", 0, total, "values", "embedding distinct cell values")

    def release(upto: int) -> list[int]:
        ids = [d for d, ceiling in ceilings.items() if ceiling <= upto]
        for d in ids:
            del ceilings[d]
        return ids

    # datasets whose values all had vectors already (shared texts, or a resumed run)
    first_missing = pending[0][0] if pending else None
    names = _mark_ready(ws, release(first_missing - 1 if first_missing is not None else 1 << 62))
    ready_names += names
    for name in names:
        yield Log(f"{name}: ready")

    for start in range(0, total, chunk_values):
        chunk = pending[start:start + chunk_values]
        order = sorted(range(len(chunk)), key=lambda i: len(chunk[i][1]), reverse=True)
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            vecs = embedder.encode([chunk[i][1] for i in idx], batch_size=batch_size)
            value_log.append(np.array([chunk[i][0] for i in idx], dtype=np.uint64), vecs)
            done += len(idx)
            if ticker.due():
                yield Progress("embed", done, total, "values")
        nxt = pending[start + chunk_values][0] - 1 if start + chunk_values < total else 1 << 62
        names = _mark_ready(ws, release(nxt))
        ready_names += names
        for name in names:
            yield Log(f"{name}: ready")
    if total:
        yield Progress("embed", done, total, "values")
    return done, ready_names


def sync_indexes(ws: Workspace) -> Iterator[Event]:
    """Bring both usearch files in line with the vector logs, yielding Progress while vectors are added.

    The (blocking) usearch work runs in a helper thread so progress keeps flowing at about 4 Hz.
    """
    from concurrent.futures import ThreadPoolExecutor

    for kind in (vindex.DESCRIPTIONS, vindex.VALUES):
        state = [0, 0]

        def progress(done: int, total: int, state: list[int] = state) -> None:
            state[0], state[1] = done, total

        with ThreadPoolExecutor(1, thread_name_prefix="usearch") as pool:
            future = pool.submit(vindex.sync_usearch, ws, kind, progress)
            while True:
                try:
                    result = future.result(timeout=EVENT_INTERVAL)
                    break
                except TimeoutError:
                    if state[1]:
                        yield Progress("index", state[0], state[1], "vectors", f"index/{kind}.usearch")
        if result["added"] or result["removed"]:
            yield Progress("index", result["added"], result["added"], "vectors", f"index/{kind}.usearch")
            yield Log(f"index/{kind}.usearch: {result['added']} added, {result['removed']} removed")


def drop_orphan_vectors(ws: Workspace) -> int:
    """Drop vectors whose value or dataset is gone (left by a remove that was killed); return the count."""
    dropped = 0
    with ws.store.cursor() as cur:
        value_ids = np.array([r[0] for r in cur.execute("select id from cell_values").fetchall()], dtype=np.uint64)
        dataset_ids = np.array([r[0] for r in cur.execute("select id from datasets").fetchall()], dtype=np.uint64)
    for kind, ids in ((vindex.VALUES, value_ids), (vindex.DESCRIPTIONS, dataset_ids)):
        vlog = vindex.vector_log(ws, kind)
        keys = vlog.keys()
        if len(keys) and (not np.isin(keys, ids).all() or len(np.unique(keys)) != len(keys)):
            dropped += vlog.keep_only(ids)
    return dropped


# -- the job --------------------------------------------------------------------------------------
def ingest(ws: Workspace, paths: Sequence[str | Path], *, max_rows_per_config: int = 1000,
           split: str = "train", embedder: Embedder | None = None, batch_size: int | None = None,
           chunk_values: int = CHUNK_VALUES, embed: bool = True) -> Iterator[Event]:
    """Ingest the datasets found under ``paths`` into ``ws``; a generator of events ending in IngestDone.

    ``max_rows_per_config``: at most that many rows per config, at a uniform stride (0: all).
    ``split``: the split to take (files without split names count as ``train``). ``embedder``: a loaded
    :class:`~engine.datastore.embed.Embedder` (default: the workspace's, loaded only when something needs embedding).
    Problems with single files are reported in the summary's ``skipped`` and never stop the run.
    ``embed=False`` only reads and stages (counts in seconds; the datasets stay ``ingesting``, invisible to
    retrieval, until an ingest or ``check --repair`` embeds them).
    """
    t0 = time.monotonic()
    if max_rows_per_config < 0:
        raise EngineError(f"--max-rows-per-config must be 0 (all) or more, not {max_rows_per_config}",
                          fix="pass a number ≥ 0")
    split = normalize_split(split)
    name = workspace_embedder_name(ws, embedder.name if embedder is not None else None)
    batch_size = int(batch_size or ws.config["embedder.batch_size"])
    if batch_size <= 0:
        raise EngineError(f"batch size must be positive, not {batch_size}", fix="pass --batch-size 64")

    dropped = drop_orphan_vectors(ws)
    if dropped:
        yield Log(f"dropped {dropped} vector(s) left over from an interrupted remove", "WARNING")

    found = discover(paths, split)
    skipped: list[dict[str, str]] = [{"path": p, "reason": r} for p, r in found.skipped]
    for note in found.notes:
        yield Log(note)
    with ws.store.cursor() as cur:
        existing = {r[0]: r[1] for r in cur.execute("select name, status from datasets").fetchall()}
    unchanged = 0
    seen: dict[str, str] = {}
    todo: list[DatasetSource] = []
    for ds in found.datasets:
        skipped.extend({"path": p, "reason": r} for p, r in ds.problems)
        if ds.name in existing:
            unchanged += 1
            continue
        if ds.name in seen:
            skipped.append({"path": str(ds.root), "reason": f"dataset id {ds.name} also found at {seen[ds.name]}; "
                                                           "only the first is ingested"})
            continue
        seen[ds.name] = str(ds.root)
        if not ds.configs:
            others = ", ".join(sorted(ds.other_splits))
            why = (f"no {split!r} split (found: {others}) — choose one with --split" if others
                   else "no data files found")
            skipped.append({"path": str(ds.root), "reason": why})
            continue
        todo.append(ds)
    for item in skipped:
        yield Log(f"skipped {item['path']}: {item['reason']}", "WARNING")
    if unchanged:
        yield Log(f"{unchanged} dataset(s) already in the workspace, left as they are")

    # phase 1: read and stage every new dataset
    value_floor = int(vindex.vector_log(ws, vindex.VALUES).keys().max(initial=0))
    dataset_floor = int(vindex.vector_log(ws, vindex.DESCRIPTIONS).keys().max(initial=0))
    ticker = _Ticker()
    rows_read = 0
    staged_count = 0
    if todo:
        yield Progress("read", 0, len(todo), "datasets", "reading datasets")
    for i, ds in enumerate(todo, 1):
        n_before = len(skipped)
        staged = _read_dataset(ds, max_rows_per_config, skipped)
        for item in skipped[n_before:]:
            yield Log(f"skipped {item['path']}: {item['reason']}", "WARNING")
        if staged is None:
            if len(skipped) == n_before:
                skipped.append({"path": str(ds.root), "reason": f"no rows in its {split!r} split"})
                yield Log(f"skipped {ds.root}: no rows in its {split!r} split", "WARNING")
            continue
        _stage(ws, staged, value_floor, dataset_floor)
        staged_count += 1
        rows_read += staged.rows
        if ticker.due() or i == len(todo):
            yield Progress("read", i, len(todo), "datasets", f"{rows_read:,} rows read — {ds.name}")
    if todo:
        yield Log(f"staged {staged_count} dataset(s), {rows_read:,} rows")

    # phase 2: embed what has no vector yet (this run's datasets and any interrupted earlier run's)
    values_embedded = 0
    ready: list[str] = []
    if embed and _needs_embedding(ws):
        if embedder is None:
            from engine.datastore.embed import load_embedder

            yield Log(f"loading embedder {name}")
            embedder = load_embedder(name, ws.config["embedder.device"])
        values_embedded, ready = yield from embed_pending(ws, embedder, batch_size, chunk_values=chunk_values)
    if embed:
        yield from sync_indexes(ws)

    with ws.store.cursor() as cur:
        added_rows = cur.execute("select count(*) from rows r join datasets d on d.id = r.dataset "
                                 "where d.name in (select unnest(?))", [ready]).fetchall()[0][0] if ready else 0
    summary: dict[str, Any] = totals(ws)
    summary.update({
        "added": {"datasets": len(ready), "rows": int(added_rows), "values": int(values_embedded)},
        "staged": {"datasets": staged_count, "rows": rows_read},
        "unchanged": unchanged,
        "skipped": skipped,
        "seconds": round(time.monotonic() - t0, 3),
    })
    yield IngestDone(summary)


def _needs_embedding(ws: Workspace) -> bool:
    """Whether any dataset is still ``ingesting`` or any value/description lacks a vector."""
    with ws.store.cursor() as cur:
        pending = cur.execute("select count(*) from datasets where status = 'ingesting'").fetchall()[0][0]
        n_values = cur.execute("select count(*) from cell_values").fetchall()[0][0]
        n_datasets = cur.execute("select count(*) from datasets").fetchall()[0][0]
    return bool(pending) or (vindex.vector_log(ws, vindex.VALUES).count != n_values
                             or vindex.vector_log(ws, vindex.DESCRIPTIONS).count != n_datasets)


def run_ingest(ws: Workspace, paths: Sequence[str | Path], **kwargs: Any) -> dict[str, Any]:
    """Run :func:`ingest` to the end and return its summary (for scripts and tests)."""
    summary: dict[str, Any] = {}
    for event in ingest(ws, paths, **kwargs):
        if isinstance(event, IngestDone):
            summary = event.summary
    return summary
