"""Ingest's second phase, shared with ``check --repair``: give every value and description a vector.

:func:`embed_pending` embeds, in ascending id order, every dataset description and distinct cell value
that has no vector yet, in chunks whose texts are batched by length (little padding), appending each batch
to the vector log (:mod:`engine.datastore.vindex`). As batches land, every staged dataset whose values and
description all have vectors becomes ``ready`` — only then do its rows count for retrieval.
:func:`sync_indexes` then brings the usearch files in line with the logs.

Who embeds is a :class:`BatchEmbedder`: the in-process :class:`~engine.datastore.embed.Embedder`, or a Ray
cluster (:mod:`engine.datastore.ray_embed`) that returns batches in any order; the same code writes both
to the log, so resuming after a kill works the same (only values without a vector are embedded again).
:func:`open_embedder` picks one from the workspace's settings (``embedder.executor``, ``.precision``, ...).

The workspace records its embedder (name and dimension) at the first embedding: vectors of two models
must never be mixed in one workspace, so every later ingest or repair checks against that record.
``rebuild=True`` (``ingest --re-embed``) writes all vectors anew into the rebuild logs of
:mod:`engine.datastore.provenance` and swaps them in at the end — the way to change model or precision.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from engine.datastore import provenance, vindex
from engine.errors import EngineError
from engine.events import Event, Log
from engine.rate import RateMeter

if TYPE_CHECKING:
    from engine.datastore.backends import Compute
    from engine.workspace import Workspace

Item = tuple[int, str]
"""A text to embed: ``(key, text)`` — a ``cell_values.id`` or a ``datasets.id`` and its text."""


class BatchEmbedder(Protocol):
    """What :func:`embed_pending` needs of an embedder (in-process or on a Ray cluster)."""

    name: str
    dim: int
    compute: Compute
    executor: str
    max_chunk: int
    """The most values per chunk it wants (a Ray cluster wants several chunks, one per actor at least)."""

    def stream(self, chunks: Sequence[list[Item]], batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(keys uint64, float32 unit vectors)`` per batch, for every item of ``chunks``, in any order."""
        ...

    def close(self) -> None:
        """Release what opening it started (a local Ray); the in-process model stays cached."""
        ...

EVENT_INTERVAL = 0.25
"""Seconds between two Progress events of one stage (about 4 Hz)."""
CHUNK_VALUES = 4096
"""Values per embedding chunk: sorted by length within a chunk; datasets turn ready between chunks."""
_EVERY_ID = 1 << 62
"""Larger than any value id: "every value has a vector"."""
DESCRIPTION_FLAG = 1 << 61
"""Set on a description's key while it travels with the values (ids stay far below it)."""


class Ticker:
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


# -- the workspace's embedder ---------------------------------------------------------------------
def workspace_embedder_name(ws: Workspace, requested: str | None = None, *, rebuild: bool = False) -> str:
    """The embedder this workspace uses: the one recorded in it, unless another is asked for explicitly.

    Raises :class:`EngineError` when ``requested`` (or an explicitly configured model) differs from the
    recorded one: vectors of two models must never be mixed in one workspace. A ``rebuild`` re-embeds every
    vector, so it may change the model: the one asked for, else the unfinished rebuild's, else the recorded.
    """
    from engine.datastore.embed import canonical_name, same_embedder

    recorded = ws.store.get_meta("embedder.name")
    explicit = requested or (ws.config["embedder.model"]
                             if ws.config.sources.get("embedder.model") != "default" else None)
    if rebuild:
        pending = provenance.vector_source(ws).rebuild
        return canonical_name(explicit or (pending.model if pending else None) or recorded
                              or ws.config["embedder.model"])
    if recorded and explicit and not same_embedder(recorded, explicit):
        raise EngineError(
            f"workspace {ws.path} was built with embedder {recorded}, not {explicit}",
            fix=f"use --embedder {recorded} (or leave it out), rebuild every vector with --re-embed, "
                "or ingest into another workspace with -w DIR")
    return recorded or canonical_name(explicit or ws.config["embedder.model"])


def record_embedder(ws: Workspace, embedder: BatchEmbedder) -> None:
    """Record ``embedder`` as the workspace's (first use), or refuse one that is not the recorded one.

    Another precision or backend of the same model is fine (and recorded in ``embedder.made_with``).
    """
    from engine.datastore.embed import same_embedder

    recorded = ws.store.get_meta("embedder.name")
    if recorded and not same_embedder(recorded, embedder.name):
        raise EngineError(
            f"workspace {ws.path} was built with embedder {recorded}, not {embedder.name}",
            fix=f"use --embedder {recorded}, rebuild every vector with --re-embed --embedder {embedder.name}, "
                "or ingest into another workspace with -w DIR")
    dim = ws.store.get_meta("embedder.dim")
    if dim and int(dim) != embedder.dim:
        raise EngineError(f"workspace {ws.path} holds {dim}-dimensional vectors; {embedder.name} makes "
                          f"{embedder.dim}", fix="use the workspace's embedder, or another workspace")
    if not recorded:
        ws.store.set_meta("embedder.name", embedder.name)
    if not dim:
        ws.store.set_meta("embedder.dim", str(embedder.dim))
    provenance.add_made_with(ws, embedder.compute.label)


def open_embedder(ws: Workspace, name: str) -> BatchEmbedder:
    """The embedder the workspace's settings ask for: in this process, or on Ray (``embedder.executor``).

    Loading takes seconds (model load; starting or joining a Ray cluster), so callers ask
    :func:`needs_embedding` first.
    """
    cfg = ws.config
    executor = str(cfg["embedder.executor"]).strip().lower()
    if executor == "ray":
        from engine.datastore.ray_embed import RayEmbedder

        return RayEmbedder(name, address=str(cfg["embedder.ray_address"]), workers=int(cfg["embedder.ray_workers"]),
                           device=str(cfg["embedder.device"]), precision=str(cfg["embedder.precision"]),
                           backend=str(cfg["embedder.backend"]), batch_tokens=int(cfg["embedder.batch_tokens"]))
    if executor != "local":
        raise EngineError(f"unknown embedder.executor {executor!r}",
                          fix="set embedder.executor to local or ray (or pass --ray)")
    from engine.datastore.embed import load_embedder

    return load_embedder(name, str(cfg["embedder.device"]), precision=str(cfg["embedder.precision"]),
                         backend=str(cfg["embedder.backend"]), batch_tokens=int(cfg["embedder.batch_tokens"]))


def needs_embedding(ws: Workspace) -> bool:
    """Whether any dataset is still ``ingesting`` or any value/description lacks a vector.

    Cheap (counts only), so callers ask it before loading the embedder, which takes seconds.
    """
    with ws.store.cursor() as cur:
        pending = cur.execute("select count(*) from datasets where status = 'ingesting'").fetchall()[0][0]
        n_values = cur.execute("select count(*) from cell_values").fetchall()[0][0]
        n_datasets = cur.execute("select count(*) from datasets").fetchall()[0][0]
    return bool(pending) or (vindex.vector_log(ws, vindex.VALUES).count != n_values
                             or vindex.vector_log(ws, vindex.DESCRIPTIONS).count != n_datasets)


# -- embedding ------------------------------------------------------------------------------------
def _missing(ws: Workspace, table: str, have: np.ndarray, text_sql: str) -> list[Item]:
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


def _release(ws: Workspace, ceilings: dict[int, int], upto: int) -> list[str]:
    """Mark ready the waiting datasets whose values all have ids ``<= upto`` (all embedded now); their names."""
    ids = [d for d, ceiling in ceilings.items() if ceiling <= upto]
    for d in ids:
        del ceilings[d]
    return _mark_ready(ws, ids)


class _Watermark:
    """Which of the pending value ids have a vector, and the largest id up to which all of them do.

    Batches may come back in any order (a Ray cluster); a dataset turns ready once ``upto`` passes its
    largest value id.
    """

    def __init__(self, ids: Sequence[int]) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        self.done = np.zeros(len(self.ids), dtype=bool)
        self.pos = 0

    def mark(self, keys: np.ndarray) -> None:
        self.done[np.searchsorted(self.ids, np.asarray(keys, dtype=np.int64))] = True
        rest = self.done[self.pos:]
        self.pos += len(rest) if rest.all() else int(np.argmin(rest))

    @property
    def upto(self) -> int:
        """Every pending id ``<=`` this has a vector (ids before the first pending one always had)."""
        return _EVERY_ID if self.pos == len(self.ids) else int(self.ids[self.pos]) - 1


@dataclass(frozen=True, slots=True)
class EmbeddingStats:
    """The embedding alone (model load excluded): texts embedded, seconds, and what embedded them."""

    values: int
    descriptions: int
    seconds: float
    backend: str
    precision: str
    device: str
    executor: str

    @property
    def values_per_s(self) -> float:
        """Texts (values and descriptions) embedded per second."""
        return round((self.values + self.descriptions) / self.seconds, 1) if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """The ``embedding`` block of ``rebase-tui ingest --json``."""
        return {"values": self.values, "descriptions": self.descriptions, "seconds": round(self.seconds, 3),
                "values_per_s": self.values_per_s, "backend": self.backend, "precision": self.precision,
                "device": self.device, "executor": self.executor}


@dataclass(frozen=True, slots=True)
class Embedded:
    """What :func:`embed_pending` did: values embedded, the datasets it made ready (in id order), and its
    :class:`EmbeddingStats`."""

    values: int
    ready: tuple[str, ...]
    stats: EmbeddingStats | None = None


def _targets(ws: Workspace, embedder: BatchEmbedder, rebuild: bool) -> tuple[vindex.VectorLog, vindex.VectorLog]:
    """The (descriptions, values) logs this run appends to: the live ones, or a rebuild's."""
    if not rebuild:
        record_embedder(ws, embedder)
        return vindex.vector_log(ws, vindex.DESCRIPTIONS), vindex.vector_log(ws, vindex.VALUES)
    provenance.begin_rebuild(ws, embedder.name, embedder.dim, embedder.compute.label)
    return (provenance.rebuild_log(ws, vindex.DESCRIPTIONS, embedder.dim),
            provenance.rebuild_log(ws, vindex.VALUES, embedder.dim))


def _chunks(descriptions: list[Item], pending: list[Item], chunk_values: int) -> list[list[Item]]:
    """The descriptions (keys flagged with :data:`DESCRIPTION_FLAG`), then the values, in chunks."""
    flagged = [(key | DESCRIPTION_FLAG, text) for key, text in descriptions]
    return ([flagged[i:i + chunk_values] for i in range(0, len(flagged), chunk_values)]
            + [pending[i:i + chunk_values] for i in range(0, len(pending), chunk_values)])


def embed_pending(ws: Workspace, embedder: BatchEmbedder, batch_size: int, *, chunk_values: int = CHUNK_VALUES,
                  rebuild: bool = False) -> Generator[Event, None, Embedded]:
    """Embed every description and value without a vector; mark finished datasets ready.

    One stream carries descriptions and values (one Ray actor pool per run). A dataset turns ready once
    every description and every value up to its largest value id has a vector. ``rebuild``: embed
    everything again into the rebuild logs and swap them in at the end (resumable: a killed rebuild
    continues where it stopped). Yields time-batched Progress (stage ``embed``, with rate and ETA) and Log
    events; returns :class:`Embedded`.
    """
    desc_log, value_log = _targets(ws, embedder, rebuild)
    descriptions = _missing(ws, "datasets", desc_log.keys(), "t.description")
    pending = _missing(ws, "cell_values", value_log.keys(), "t.text")
    ceilings = _value_ceilings(ws)
    total, done, desc_left = len(pending), 0, len(descriptions)
    meter, ticker = RateMeter(), Ticker()
    if total:
        yield meter.progress("embed", 0, total, "values", "embedding distinct cell values")
    watermark = _Watermark([key for key, _ in pending])
    ready: list[str] = []
    t0 = time.perf_counter()
    chunks = _chunks(descriptions, pending, max(1, min(chunk_values, embedder.max_chunk)))
    for keys, vecs in embedder.stream(chunks, batch_size):
        if len(keys) and int(keys[0]) & DESCRIPTION_FLAG:  # a batch comes from one chunk: one kind
            desc_log.append(keys - np.uint64(DESCRIPTION_FLAG), vecs)
            desc_left -= len(keys)
            if not desc_left:
                yield Log(f"embedded {len(descriptions)} dataset description(s)")
        else:
            value_log.append(keys, vecs)
            done += len(keys)
            watermark.mark(keys)
        names = [] if rebuild or desc_left else _release(ws, ceilings, watermark.upto)
        ready += names
        for name in names:
            yield Log(f"{name}: ready")
        if total and ticker.due():
            yield meter.progress("embed", done, total, "values")
    seconds = time.perf_counter() - t0
    if total:
        yield meter.progress("embed", done, total, "values")
    if rebuild:
        provenance.swap_rebuilt(ws)
        vindex.drop_orphan_vectors(ws)  # values removed while the rebuild was interrupted
        yield Log(f"re-embedded every value with {embedder.name} ({embedder.compute.label})")
    for name in _release(ws, ceilings, _EVERY_ID):
        ready.append(name)
        yield Log(f"{name}: ready")
    c = embedder.compute
    stats = EmbeddingStats(done, len(descriptions), seconds, c.backend, c.precision, c.device, embedder.executor)
    return Embedded(done, tuple(ready), stats)


# -- the usearch files ----------------------------------------------------------------------------
def sync_indexes(ws: Workspace) -> Iterator[Event]:
    """Bring both usearch files in line with the vector logs, yielding Progress while vectors are added.

    The (blocking) usearch work runs in a helper thread so progress keeps flowing at about 4 Hz.
    """
    from concurrent.futures import ThreadPoolExecutor

    for kind in (vindex.DESCRIPTIONS, vindex.VALUES):
        state = [0, 0]
        meter = RateMeter()
        where = f"index/{kind}.usearch"

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
                        yield meter.progress("index", state[0], state[1], "vectors", where)
        if result.added or result.removed:
            yield meter.progress("index", result.added, result.added, "vectors", where)
            yield Log(f"{where}: {result.added} added, {result.removed} removed")
