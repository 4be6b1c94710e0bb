"""Ingest: local datasets → rows, cells and distinct values in DuckDB, and their vectors (ReBase stage 1).

``ingest(ws, paths)`` is a generator of events (time-batched :class:`~engine.events.Progress` with rate and
ETA, and :class:`~engine.events.Log`), ending with one :class:`IngestDone` carrying the
:class:`IngestSummary`. It runs in two phases:

1. **Stage** each new dataset in *one* DuckDB transaction (:mod:`engine.datastore.staging`). A kill
   mid-dataset rolls that dataset back; nothing half-written stays.
2. **Embed** every value and description that has no vector yet; datasets become ``ready`` as their
   vectors land, and the usearch files are brought in line with the logs at the end
   (:mod:`engine.datastore.vectorize`). The embedder runs in this process or on a Ray cluster
   (``embedder.executor``); reading and staging always stay here, since DuckDB allows one writer.
   ``re_embed=True`` rebuilds every vector (another precision, backend or model), resumably.

Running it again resumes: staged datasets are not re-read, values with vectors are not re-embedded, and a
dataset already in the workspace (same id) is left untouched. The counts after an interrupted-then-resumed
run equal those of an uninterrupted one.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.datastore import ids, provenance, vindex
from engine.datastore.datasets import Totals, totals
from engine.datastore.find_datasets import find_datasets
from engine.datastore.sources import DatasetSource, normalize_split
from engine.datastore.staging import Skipped, read_dataset, stage_dataset
from engine.datastore.vectorize import (
    CHUNK_VALUES,
    BatchEmbedder,
    Embedded,
    EmbeddingStats,
    Ticker,
    embed_pending,
    needs_embedding,
    open_embedder,
    sync_indexes,
    workspace_embedder_name,
)
from engine.errors import EngineError
from engine.events import Event, Log
from engine.rate import RateMeter

if TYPE_CHECKING:
    from engine.workspace import Workspace


@dataclass(frozen=True, slots=True)
class AddedCounts:
    """What this run made ready for retrieval: datasets, their rows, and newly embedded values."""

    datasets: int = 0
    rows: int = 0
    values: int = 0


@dataclass(frozen=True, slots=True)
class StagedCounts:
    """What this run read and staged (ready or not yet embedded)."""

    datasets: int = 0
    rows: int = 0


@dataclass(frozen=True, slots=True)
class IngestSummary:
    """The end of an ingest: the workspace's totals after it, what it added and staged, what it left alone
    (``unchanged``: datasets already in the workspace) or passed over (``skipped``), its duration, and the
    embedding alone (None when nothing needed a vector)."""

    totals: Totals
    added: AddedCounts
    staged: StagedCounts
    unchanged: int
    skipped: tuple[Skipped, ...]
    seconds: float
    embedding: EmbeddingStats | None = None

    @property
    def unembedded(self) -> int:
        """Values and descriptions still without a vector (their datasets are invisible to retrieval)."""
        return max(0, self.totals.values + self.totals.datasets - self.totals.vectors)

    @property
    def found_nothing(self) -> bool:
        """True when no path held a dataset that was ingested, staged or already there."""
        return self.added.datasets == 0 and self.unchanged == 0 and self.staged.datasets == 0

    def to_json(self) -> dict[str, Any]:
        """The ``rebase-tui ingest --json`` document."""
        return {**self.totals.to_json(), "added": asdict(self.added), "staged": asdict(self.staged),
                "unchanged": self.unchanged, "skipped": [s.to_json() for s in self.skipped],
                "seconds": self.seconds, "embedding": self.embedding.to_json() if self.embedding else None}


@dataclass(frozen=True, slots=True)
class IngestDone(Event):
    """The last event of an ingest."""

    summary: IngestSummary


@dataclass
class _Plan:
    """The datasets an ingest will read, and what it passes over."""

    todo: list[DatasetSource] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    unchanged: int = 0
    notes: list[str] = field(default_factory=list)


def _plan(ws: Workspace, paths: Sequence[str | Path], split: str,
          dataset_id: str | None) -> Generator[Event, None, _Plan]:
    """Find the datasets under ``paths``; keep those not in the workspace yet, each id once, with files.
    A source whose id a dataset from elsewhere already has is skipped with the way to ingest it anyway."""
    found = yield from find_datasets(paths, split, dataset_id)
    plan = _Plan(skipped=[Skipped(p, r) for p, r in found.skipped], notes=list(found.notes))
    with ws.store.cursor() as cur:
        existing: dict[str, str] = dict(cur.execute("select name, source_path from datasets").fetchall())
    seen: dict[str, str] = {}
    for ds in found.datasets:
        plan.skipped.extend(Skipped(p, r) for p, r in ds.problems)
        if ds.name in existing:
            if ids.same_source(existing[ds.name], ds.root):
                plan.unchanged += 1
            else:
                plan.skipped.append(Skipped(str(ds.root), ids.collision(ds.name, existing[ds.name], ds.root), True))
            continue
        if ds.name in seen:
            plan.skipped.append(Skipped(str(ds.root), ids.repeated(ds.name, seen[ds.name], ds.root), True))
            continue
        seen[ds.name] = str(ds.root)
        if not ds.configs:
            others = ", ".join(sorted(ds.other_splits))
            why = (f"no {split!r} split (found: {others}) — choose one with --split" if others
                   else "no data files found")
            plan.skipped.append(Skipped(str(ds.root), why))
            continue
        plan.todo.append(ds)
    return plan


def _warn(item: Skipped) -> Log:
    return Log(f"skipped {item.path}: {item.reason}", "WARNING")


def _stage_all(ws: Workspace, todo: list[DatasetSource], max_rows: int, split: str,
               skipped: list[Skipped]) -> Generator[Event, None, StagedCounts]:
    """Phase 1: read and stage every dataset of ``todo`` (one transaction each); problems go to ``skipped``."""
    if not todo:
        return StagedCounts()
    # ids continue above the vector logs' largest keys, so a vector left by a killed remove never
    # names a new text
    value_floor = provenance.largest_key(ws, vindex.VALUES)
    dataset_floor = provenance.largest_key(ws, vindex.DESCRIPTIONS)
    meter, ticker = RateMeter(), Ticker()
    rows_read = staged_count = 0
    yield meter.progress("read", 0, len(todo), "datasets", "reading datasets")
    for i, ds in enumerate(todo, 1):
        n_before = len(skipped)
        staged = read_dataset(ds, max_rows, skipped)
        for item in skipped[n_before:]:
            yield _warn(item)
        if staged is None:
            if len(skipped) == n_before:
                skipped.append(Skipped(str(ds.root), f"no rows in its {split!r} split"))
                yield _warn(skipped[-1])
            continue
        stage_dataset(ws, staged, value_floor, dataset_floor)
        staged_count += 1
        rows_read += staged.rows
        if ticker.due() or i == len(todo):
            yield meter.progress("read", i, len(todo), "datasets", f"{rows_read:,} rows read — {ds.name}")
    yield Log(f"staged {staged_count} dataset(s), {rows_read:,} rows")
    return StagedCounts(staged_count, rows_read)


def _embed_all(ws: Workspace, embedder: BatchEmbedder | None, name: str, batch_size: int,
               chunk_values: int, re_embed: bool) -> Generator[Event, None, Embedded]:
    """Phase 2: embed what has no vector yet (this run's datasets and any interrupted earlier run's) — or,
    with ``re_embed``, everything again — then sync the usearch files. The embedder is loaded only when
    something needs it."""
    if provenance.finish_swap(ws):
        vindex.drop_orphan_vectors(ws)
        yield Log("finished swapping in the vectors of an interrupted --re-embed")
        re_embed = False  # that rebuild was complete: its vectors are the live ones now
    rebuild = provenance.vector_source(ws).rebuild
    if rebuild is not None and not re_embed:
        yield Log(f"an earlier --re-embed with {rebuild.model} is unfinished; the live vectors stay as they are "
                  "until you run the ingest again with --re-embed", "WARNING")
    embedded = Embedded(0, ())
    if re_embed or needs_embedding(ws):
        opened = embedder is None
        if embedder is None:
            yield Log(f"loading embedder {name}")
            embedder = open_embedder(ws, name)
        try:
            c = embedder.compute
            yield Log(f"embedding with {embedder.name}: {c.label} on {c.device} ({embedder.executor}) — {c.reason}")
            embedded = yield from embed_pending(ws, embedder, batch_size, chunk_values=chunk_values,
                                                rebuild=re_embed)
        finally:
            if opened:
                embedder.close()
    yield from sync_indexes(ws)
    return embedded


def _rows_of(ws: Workspace, names: Sequence[str]) -> int:
    if not names:
        return 0
    with ws.store.cursor() as cur:
        return int(cur.execute("select count(*) from rows r join datasets d on d.id = r.dataset "
                               "where d.name in (select unnest(?))", [list(names)]).fetchall()[0][0])


def ingest(ws: Workspace, paths: Sequence[str | Path], *, max_rows_per_config: int = 1000,
           split: str = "train", embedder: BatchEmbedder | None = None, batch_size: int | None = None,
           chunk_values: int = CHUNK_VALUES, embed: bool = True, dataset_id: str | None = None,
           re_embed: bool = False) -> Iterator[Event]:
    """Ingest the datasets found under ``paths`` into ``ws``; a generator of events ending in IngestDone.

    ``max_rows_per_config``: at most that many rows per config, at a uniform stride (0: all).
    ``split``: the split to take (files without split names count as ``train``). ``embedder``: a loaded
    :class:`~engine.datastore.embed.Embedder` (default: the workspace's, loaded only when something needs
    embedding). Problems with single files are reported in the summary's ``skipped`` and never stop the run.
    ``embed=False`` only reads and stages (counts in seconds; the datasets stay ``ingesting``, invisible to
    retrieval, until an ingest or ``check --repair`` embeds them). ``dataset_id`` names the one dataset
    ``paths`` hold (``ingest --id``), e.g. to ingest a source whose own id is taken. ``re_embed=True`` rebuilds
    every vector with the embedder (another model, precision or backend); retrieval keeps the old vectors
    until the rebuild is complete, and a killed rebuild resumes when the ingest is run again with
    ``re_embed``.
    """
    t0 = time.monotonic()
    if max_rows_per_config < 0:
        raise EngineError(f"--max-rows-per-config must be 0 (all) or more, not {max_rows_per_config}",
                          fix="pass a number ≥ 0")
    split = normalize_split(split)
    if re_embed and not embed:
        raise EngineError("--re-embed and --no-embed contradict each other", fix="pass only one of them")
    name = workspace_embedder_name(ws, embedder.name if embedder is not None else None, rebuild=re_embed)
    batch_size = int(batch_size or ws.config["embedder.batch_size"])
    if batch_size <= 0:
        raise EngineError(f"batch size must be positive, not {batch_size}", fix="pass --batch-size 64")

    dropped = vindex.drop_orphan_vectors(ws)
    if dropped:
        yield Log(f"dropped {dropped} vector(s) left over from an interrupted remove", "WARNING")
    plan = yield from _plan(ws, paths, split, dataset_id)
    for note in plan.notes:
        yield Log(note)
    for item in plan.skipped:
        yield _warn(item)
    if plan.unchanged:
        yield Log(f"{plan.unchanged} dataset(s) already in the workspace, left as they are")

    staged = yield from _stage_all(ws, plan.todo, max_rows_per_config, split, plan.skipped)
    embedded = Embedded(0, ())
    if embed:
        embedded = yield from _embed_all(ws, embedder, name, batch_size, chunk_values, re_embed)
    added = AddedCounts(len(embedded.ready), _rows_of(ws, embedded.ready), embedded.values)
    yield IngestDone(IngestSummary(totals(ws), added, staged, plan.unchanged, tuple(plan.skipped),
                                   round(time.monotonic() - t0, 3), embedded.stats))


def run_ingest(ws: Workspace, paths: Sequence[str | Path], **kwargs: Any) -> IngestSummary:
    """Run :func:`ingest` to the end and return its summary (for scripts and tests)."""
    summary: IngestSummary | None = None
    for event in ingest(ws, paths, **kwargs):
        if isinstance(event, IngestDone):
            summary = event.summary
    assert summary is not None, "ingest always ends with IngestDone"
    return summary
