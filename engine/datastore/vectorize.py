"""Ingest's second phase, shared with ``check --repair``: give every value and description a vector.

:func:`embed_pending` embeds, in ascending id order, every dataset description and distinct cell value
that has no vector yet, in chunks sorted by length (little padding), appending each batch to the vector
log (:mod:`engine.datastore.vindex`). After each chunk, every staged dataset whose values and description
all have vectors becomes ``ready`` — only then do its rows count for retrieval. :func:`sync_indexes` then
brings the usearch files in line with the logs.

The workspace records its embedder (name and dimension) at the first embedding: vectors of two models
must never be mixed in one workspace, so every later ingest or repair checks against that record.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from engine.datastore import vindex
from engine.errors import EngineError
from engine.events import Event, Log
from engine.rate import RateMeter

if TYPE_CHECKING:
    from engine.datastore.embed import Embedder
    from engine.workspace import Workspace

EVENT_INTERVAL = 0.25
"""Seconds between two Progress events of one stage (about 4 Hz)."""
CHUNK_VALUES = 4096
"""Values per embedding chunk: sorted by length within a chunk; datasets turn ready between chunks."""
_EVERY_ID = 1 << 62
"""Larger than any value id: "every value has a vector"."""


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


def record_embedder(ws: Workspace, embedder: Embedder) -> None:
    """Record ``embedder`` as the workspace's (first use), or refuse one that is not the recorded one."""
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


def _release(ws: Workspace, ceilings: dict[int, int], upto: int) -> list[str]:
    """Mark ready the waiting datasets whose values all have ids ``<= upto`` (all embedded now); their names.

    Values are embedded in ascending id order, so every value id ``<= upto`` has a vector at this point.
    """
    ids = [d for d, ceiling in ceilings.items() if ceiling <= upto]
    for d in ids:
        del ceilings[d]
    return _mark_ready(ws, ids)


def _embed_descriptions(ws: Workspace, embedder: Embedder, batch_size: int) -> Iterator[Event]:
    desc_log = vindex.vector_log(ws, vindex.DESCRIPTIONS)
    pending = _missing(ws, "datasets", desc_log.keys(), "t.description")
    if not pending:
        return
    for start in range(0, len(pending), batch_size):
        part = pending[start:start + batch_size]
        desc_log.append(np.array([p[0] for p in part], dtype=np.uint64),
                        embedder.encode([p[1] for p in part], batch_size=batch_size))
    yield Log(f"embedded {len(pending)} dataset description(s)")


def _embed_chunk(chunk: list[tuple[int, str]], embedder: Embedder, value_log: vindex.VectorLog,
                 batch_size: int) -> Iterator[int]:
    """Embed one chunk longest text first (batches of similar length pad little); yield each batch's size."""
    order = sorted(range(len(chunk)), key=lambda i: len(chunk[i][1]), reverse=True)
    for b in range(0, len(order), batch_size):
        idx = order[b:b + batch_size]
        vecs = embedder.encode([chunk[i][1] for i in idx], batch_size=batch_size)
        value_log.append(np.array([chunk[i][0] for i in idx], dtype=np.uint64), vecs)
        yield len(idx)


@dataclass(frozen=True, slots=True)
class Embedded:
    """What :func:`embed_pending` did: values embedded, and the datasets it made ready (in id order)."""

    values: int
    ready: tuple[str, ...]


def embed_pending(ws: Workspace, embedder: Embedder, batch_size: int, *,
                  chunk_values: int = CHUNK_VALUES) -> Generator[Event, None, Embedded]:
    """Embed every description and value without a vector; mark finished datasets ready.

    Yields time-batched Progress (stage ``embed``, with rate and ETA) and Log events; returns :class:`Embedded`.
    """
    record_embedder(ws, embedder)
    yield from _embed_descriptions(ws, embedder, batch_size)
    value_log = vindex.vector_log(ws, vindex.VALUES)
    pending = _missing(ws, "cell_values", value_log.keys(), "t.text")
    ceilings = _value_ceilings(ws)
    total, done = len(pending), 0
    meter, ticker = RateMeter(), Ticker()
    if total:
        yield meter.progress("embed", 0, total, "values", "embedding distinct cell values")
    # datasets whose values all had vectors already (shared texts, or a resumed run)
    ready = _release(ws, ceilings, pending[0][0] - 1 if pending else _EVERY_ID)
    for name in ready:
        yield Log(f"{name}: ready")
    for start in range(0, total, chunk_values):
        for n in _embed_chunk(pending[start:start + chunk_values], embedder, value_log, batch_size):
            done += n
            if ticker.due():
                yield meter.progress("embed", done, total, "values")
        after = start + chunk_values
        names = _release(ws, ceilings, pending[after][0] - 1 if after < total else _EVERY_ID)
        ready += names
        for name in names:
            yield Log(f"{name}: ready")
    if total:
        yield meter.progress("embed", done, total, "values")
    return Embedded(done, tuple(ready))


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
