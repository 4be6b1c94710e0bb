"""Vector files of a workspace: every distinct cell value and every dataset description, embedded once.

Two layouts live side by side in ``<workspace>/index/``, for the same keys:

* ``values.vectors`` / ``descriptions.vectors`` — the **durable, fast-loading log**. A 16-byte header
  (``b"RBVEC1\\0\\0"``, uint32 dimension, uint32 zero) then fixed-size records ``(uint64 key, float32[dim])``,
  little-endian. Ingest appends a batch of records right after embedding it, so a SIGKILL loses at most the
  batch in flight; a torn last record is cut off when the file is next opened. Rewrites (dropping orphans
  after ``remove``/``check --repair``) go to a temporary file that atomically replaces the old one.
  Loading 110 k × 384 vectors is one ``np.fromfile`` (≈ 0.08 s), which is why retrieval reads this file.
* ``values.usearch`` / ``descriptions.usearch`` — usearch HNSW indexes (cosine metric, ``f32``), keyed by
  ``cell_values.id`` and ``datasets.id``; built from the log at the end of every ingest, remove or repair
  (incrementally: only the keys that changed are added or removed) and saved through a temporary file.
  They serve approximate search (``usearch.index.Index.restore(path, view=True)``).

The log is the source of truth; :func:`sync_usearch` makes the usearch file agree with it, and
``rebase-tui check`` verifies that the database, the log and the usearch files hold the same keys.
Nothing here is pickled.

Which model, backend and precision made the vectors, and rebuilds: :mod:`engine.datastore.provenance`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.errors import EngineError

if TYPE_CHECKING:
    from engine.workspace import Workspace

log = logging.getLogger(__name__)

VALUES = "values"
DESCRIPTIONS = "descriptions"
MAGIC = b"RBVEC1\x00\x00"
HEADER = 16
USEARCH_DTYPE = "f32"
USEARCH_METRIC = "cos"


def _record_dtype(dim: int) -> np.dtype:
    return np.dtype([("key", "<u8"), ("vec", "<f4", (dim,))])


class VectorLog:
    """An append-only file of ``(uint64 key, float32[dim])`` records (see the module docstring)."""

    def __init__(self, path: Path, dim: int | None = None, *, recover: bool = True) -> None:
        """Open the log at ``path``. ``recover`` (writers only) cuts a torn last record; readers pass False
        and simply ignore an incomplete record, so they never race a writer appending in another thread."""
        self.path = Path(path)
        self.dim = dim
        if self.path.exists():
            if recover:
                self._recover()
            elif self.path.stat().st_size >= HEADER:
                self.dim = self._read_header()

    # -- file handling --------------------------------------------------------------------
    def _read_header(self) -> int:
        with open(self.path, "rb") as f:
            head = f.read(HEADER)
        if len(head) < HEADER or head[:8] != MAGIC:
            raise EngineError(f"vector file {self.path} is damaged (bad header)",
                              fix="run `rebase-tui check --repair` to rebuild it")
        return int(np.frombuffer(head[8:12], dtype="<u4")[0])

    def _recover(self) -> None:
        """Check the header and cut a torn last record (left by a kill mid-append)."""
        if self.path.stat().st_size < HEADER:
            self.path.unlink()  # killed while creating it: nothing was ever committed to it
            return
        dim = self._read_header()
        if self.dim is not None and dim != self.dim:
            raise EngineError(f"vector file {self.path} holds {dim}-dimensional vectors, not {self.dim}",
                              fix="use the workspace's own embedder, or another workspace with -w DIR")
        self.dim = dim
        rec = 8 + 4 * dim
        size = self.path.stat().st_size
        extra = (size - HEADER) % rec
        if extra:
            log.warning("cutting a torn record (%d bytes) off %s", extra, self.path)
            with open(self.path, "r+b") as f:
                f.truncate(size - extra)

    def _header_bytes(self) -> bytes:
        assert self.dim is not None
        return MAGIC + np.array([self.dim, 0], dtype="<u4").tobytes()

    @property
    def count(self) -> int:
        """Number of complete records in the file."""
        if not self.path.exists() or self.dim is None:
            return 0
        return max(0, (self.path.stat().st_size - HEADER) // (8 + 4 * self.dim))

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        """All ``(keys uint64 (n,), vectors float32 (n, dim))``, in file order (complete records only)."""
        n = self.count
        if n == 0 or self.dim is None:
            return np.zeros(0, dtype=np.uint64), np.zeros((0, self.dim or 0), dtype=np.float32)
        recs = np.fromfile(self.path, dtype=_record_dtype(self.dim), count=n, offset=HEADER)
        return recs["key"].astype(np.uint64), np.ascontiguousarray(recs["vec"], dtype=np.float32)

    def keys(self) -> np.ndarray:
        """All keys (uint64), in file order, without loading the vectors into memory."""
        n = self.count
        if n == 0 or self.dim is None:
            return np.zeros(0, dtype=np.uint64)
        recs = np.memmap(self.path, dtype=_record_dtype(self.dim), mode="r", offset=HEADER, shape=(n,))
        return np.array(recs["key"], dtype=np.uint64)

    def append(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Append records (flushed and fsync'ed before returning)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(keys) == 0:
            return
        if self.dim is None:
            self.dim = int(vectors.shape[1])
        if vectors.shape != (len(keys), self.dim):
            raise ValueError(f"expected {len(keys)} vectors of dimension {self.dim}, got {vectors.shape}")
        recs = np.empty(len(keys), dtype=_record_dtype(self.dim))
        recs["key"] = np.asarray(keys, dtype=np.uint64)
        recs["vec"] = vectors
        new = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as f:
            if new:
                f.write(self._header_bytes())
            f.write(recs.tobytes())
            f.flush()
            os.fsync(f.fileno())

    def rewrite(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Replace the whole file atomically with these records."""
        if self.dim is None:
            self.dim = int(vectors.shape[1]) if vectors.ndim == 2 else 0
        recs = np.empty(len(keys), dtype=_record_dtype(self.dim))
        recs["key"] = np.asarray(keys, dtype=np.uint64)
        recs["vec"] = np.asarray(vectors, dtype=np.float32).reshape(len(keys), self.dim)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(self._header_bytes())
            f.write(recs.tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def keep_only(self, wanted: np.ndarray) -> int:
        """Drop records whose key is not in ``wanted`` (and repeated keys); return how many were dropped."""
        keys, vectors = self.read()
        if len(keys) == 0:
            return 0
        _, first = np.unique(keys, return_index=True)
        keep = np.zeros(len(keys), dtype=bool)
        keep[first] = True
        keep &= np.isin(keys, np.asarray(wanted, dtype=np.uint64))
        dropped = int(len(keys) - keep.sum())
        if dropped:
            self.rewrite(keys[keep], vectors[keep])
        return dropped


# -- the workspace's two logs ------------------------------------------------------------------
def _dim(ws: Workspace) -> int | None:
    value = ws.store.get_meta("embedder.dim")
    return int(value) if value else None


def log_path(ws: Workspace, kind: str) -> Path:
    """``index/values.vectors`` or ``index/descriptions.vectors``."""
    return ws.index_dir / f"{kind}.vectors"


def usearch_path(ws: Workspace, kind: str) -> Path:
    """``index/values.usearch`` or ``index/descriptions.usearch``."""
    return ws.index_dir / f"{kind}.usearch"


def vector_log(ws: Workspace, kind: str, *, recover: bool = True) -> VectorLog:
    """The workspace's vector log for ``values`` or ``descriptions`` (a torn tail cut when ``recover``)."""
    return VectorLog(log_path(ws, kind), _dim(ws), recover=recover)


def load_value_vectors(ws: Workspace) -> tuple[np.ndarray, np.ndarray]:
    """Every cell value's vector: ``(keys uint64 (n,), vectors float32 (n, dim))``; keys are cell_values.id.

    One read of ``index/values.vectors``; rows are L2-normalised. Only keys of values in the database are
    present after a finished ingest (``rebase-tui check`` verifies it). Safe while an ingest appends in
    another thread: a dataset turns ``ready`` only after all its vectors are in this file, so read the
    ready rows from DuckDB first, then the vectors.
    """
    return vector_log(ws, VALUES, recover=False).read()


def load_description_vectors(ws: Workspace) -> tuple[np.ndarray, np.ndarray]:
    """Every dataset description's vector: ``(keys uint64 (n,), vectors float32 (n, dim))``; keys are datasets.id."""
    return vector_log(ws, DESCRIPTIONS, recover=False).read()


# -- usearch ---------------------------------------------------------------------------------
def _new_index(dim: int):
    from usearch.index import Index

    return Index(ndim=dim, metric=USEARCH_METRIC, dtype=USEARCH_DTYPE)


def _keys_of(index) -> np.ndarray:
    n = len(index)
    return np.asarray(index.keys[:n], dtype=np.uint64) if n else np.zeros(0, dtype=np.uint64)


def usearch_keys(path: Path) -> np.ndarray | None:
    """The keys stored in a usearch file (None when it is missing or unreadable)."""
    if not path.exists():
        return None
    try:
        from usearch.index import Index

        index = Index.restore(str(path), view=True)
        if index is None:
            return None
        return _keys_of(index)
    except Exception:  # noqa: BLE001 - a damaged file is reported as missing and rebuilt
        return None


@dataclass(frozen=True, slots=True)
class IndexSync:
    """What :func:`sync_usearch` changed in a usearch file: keys added and keys removed."""

    added: int = 0
    removed: int = 0


def sync_usearch(ws: Workspace, kind: str,
                 progress: Callable[[int, int], None] | None = None) -> IndexSync:
    """Make ``index/<kind>.usearch`` hold exactly the log's keys and vectors; return what changed.

    Adds only what is missing and removes what is no longer in the log; rebuilds when the file is absent or
    damaged. The file is written to a temporary name and renamed, so a kill leaves the old one intact.
    """
    from usearch.index import Index

    vlog = vector_log(ws, kind)
    keys, vectors = vlog.read()
    path = usearch_path(ws, kind)
    if vlog.dim is None:
        if path.exists():
            path.unlink()
        return IndexSync()
    index = None
    if path.exists():
        try:
            index = Index.restore(str(path))
        except Exception:  # noqa: BLE001
            index = None
        if index is not None and (index.ndim != vlog.dim
                                  or not str(index.dtype).lower().endswith(USEARCH_DTYPE)):
            index = None
    if index is None:
        index = _new_index(vlog.dim)
    have = _keys_of(index)
    stale = have[~np.isin(have, keys)]
    missing = ~np.isin(keys, have)
    if not len(stale) and not missing.any() and path.exists():
        return IndexSync()
    if len(stale):
        index.remove(stale)
    add_keys, add_vecs = keys[missing], vectors[missing]
    if len(add_keys):
        # usearch checks the callback's annotations and rejects an unannotated function
        # ("AssertionError: Invalid callback"), so the types are set on it explicitly
        def _cb(done, total):
            if progress is not None:
                progress(done, total)
            return True

        _cb.__annotations__ = {"done": int, "total": int, "return": bool}  # real types, not strings

        index.add(add_keys, add_vecs, threads=0, progress=_cb if progress else None)
    tmp = path.with_name(path.name + ".tmp")
    index.save(str(tmp))
    os.replace(tmp, path)
    return IndexSync(int(len(add_keys)), int(len(stale)))


# -- orphans ---------------------------------------------------------------------------------
def drop_orphan_vectors(ws: Workspace) -> int:
    """Drop vectors whose value or dataset is gone, and repeated keys; return how many were dropped.

    A remove killed between its database transaction and its vector rewrite leaves such vectors; ingest,
    remove and ``check --repair`` call this first. Only the keys are read unless something must go.
    """
    with ws.store.cursor() as cur:
        value_ids = np.array([r[0] for r in cur.execute("select id from cell_values").fetchall()], dtype=np.uint64)
        dataset_ids = np.array([r[0] for r in cur.execute("select id from datasets").fetchall()], dtype=np.uint64)
    dropped = 0
    for kind, ids in ((VALUES, value_ids), (DESCRIPTIONS, dataset_ids)):
        vlog = vector_log(ws, kind)
        keys = vlog.keys()
        if len(keys) and (not np.isin(keys, ids).all() or len(np.unique(keys)) != len(keys)):
            dropped += vlog.keep_only(ids)
    return dropped
