"""The workspace's ``query_vectors`` table: embedded query texts kept across processes.

Texts are stored by the SHA-256 of their UTF-8 bytes, per embedder, as little-endian float32 blobs; the
table keeps its newest rows only (live typing adds one per new instruction draft).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from engine.workspace import Workspace


def text_hash(text: str) -> str:
    """The key of a query text (a lone surrogate, which UTF-8 cannot hold, is hashed as-is, never an error)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def stored_queries(ws: Workspace, embedder: str, texts: Sequence[str], dim: int) -> dict[str, np.ndarray]:
    """The stored vectors of ``texts`` (those of another dimension are ignored: a different model wrote them)."""
    hashes = {text_hash(t): t for t in texts}
    with ws.store.cursor() as cur:
        stored = cur.execute(
            "select text_hash, vector from query_vectors where embedder = ? and text_hash in "
            "(select unnest(?::varchar[]))", [embedder, list(hashes)]).fetchall()
    out = {}
    for h, blob in stored:
        vec = np.frombuffer(bytes(blob), dtype="<f4")
        if vec.shape == (dim,):
            out[hashes[h]] = vec.astype(np.float32)
    return out


def store_queries(ws: Workspace, embedder: str, vectors: Mapping[str, np.ndarray], keep: int) -> None:
    """Add newly embedded vectors in one statement (one insert per text took seconds for a task with
    thousands of demonstrations), then drop all but the newest ``keep`` rows."""
    import pyarrow as pa

    table = pa.table({"text_hash": pa.array([text_hash(t) for t in vectors], pa.string()),
                      "vector": pa.array([v.astype("<f4").tobytes() for v in vectors.values()], pa.binary())})
    with ws.store.cursor() as cur:
        cur.register("new_query_vectors", table)
        try:
            cur.execute("insert or ignore into query_vectors (embedder, text_hash, vector) "
                        "select ?, text_hash, vector from new_query_vectors", [embedder])
        finally:
            cur.unregister("new_query_vectors")
        cur.execute("delete from query_vectors where rowid in (select rowid from query_vectors "
                    "order by added_at desc offset ?)", [keep])
