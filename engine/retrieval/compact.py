"""The compact copy of the value vectors: int8 codes in memory, the float32 vectors left on disk.

Exact retrieval over millions of values needs every value's score bound, not its exact score: the int8
copy (a quarter of the float32 size) is scanned to bound each score (:mod:`engine.retrieval.bounds`), and only
the few values whose rows can still reach the top are re-scored exactly from the float32 vectors, which stay
on disk in the value log (``index/values.vectors``: fixed-size records, read by position, :class:`VectorFile`).

Each value ``v`` is stored as int8 codes ``q`` with one float32 scale ``s`` (``s = max|v_i| / 127``,
``q = round(v / s)``) and ``err``, an upper bound of ``||v - s q||`` (computed in float64 and rounded up), which is
what makes the bounds rigorous.

The copy lives in ``index/values.compact/`` (``keys.u64``, ``codes.i8``, ``scale.f32``, ``err.f32`` and
``meta.json``) and is derived from the log: :func:`sync_compact` quantizes only the records appended since the
last sync and rebuilds it when the log was rewritten (its sampled records no longer match ``meta.json``). Data
files are appended and synced before ``meta.json`` is replaced, so a kill leaves the last complete copy (extra
bytes past its count are ignored and cut at the next sync).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.datastore.vindex import HEADER, VectorLog
from engine.errors import EngineError
from engine.events import Progress
from engine.rate import RateMeter

log = logging.getLogger(__name__)

FOLDER = "values.compact"
VERSION = 1
#: Records quantized per block while building (a block of float64 residuals is 8 * dim * BLOCK bytes).
BLOCK = 16_384
#: Log records hashed into the fingerprint that tells whether the log still starts as it did.
SAMPLES = 64
#: Records read before deciding whether the log is in the page cache (see :class:`VectorFile`).
READ_PROBE = 256
#: Seconds per record above which a read went to the disk.
COLD_READ_S = 20e-6
_FILES = (("keys", "u64", np.uint64), ("scale", "f32", np.float32), ("err", "f32", np.float32))


@dataclass(frozen=True)
class Quantized:
    """int8 codes ``(n, dim)``, per-vector scales ``(n,)`` and residual-norm bounds ``(n,)``, with the largest
    ``||s q||`` and ``||v||`` (rounded up)."""

    codes: np.ndarray
    scale: np.ndarray
    err: np.ndarray
    code_norm: float
    value_norm: float


def round_up(x: np.ndarray) -> np.ndarray:
    """float32 values no smaller than the float64 ``x``."""
    y = np.asarray(x, dtype=np.float64).astype(np.float32)
    return np.where(y.astype(np.float64) < x, np.nextafter(y, np.float32(np.inf)), y).astype(np.float32)


def quantize(vectors: np.ndarray) -> Quantized:
    """The int8 form of float32 ``vectors`` (see the module docstring), block by block."""
    v = np.asarray(vectors, dtype=np.float32)
    parts = [_quantize_block(v[a:a + BLOCK]) for a in range(0, len(v), BLOCK)] or [_quantize_block(v)]
    return Quantized(np.concatenate([p.codes for p in parts]), np.concatenate([p.scale for p in parts]),
                     np.concatenate([p.err for p in parts]), max(p.code_norm for p in parts),
                     max(p.value_norm for p in parts))


def _quantize_block(v: np.ndarray) -> Quantized:
    scale = (np.abs(v).max(axis=1, initial=0.0) / np.float32(127)).astype(np.float32)
    safe = np.where(scale > 0, scale, np.float32(1))
    codes = np.clip(np.rint(v / safe[:, None]), -127, 127).astype(np.int8)
    resid = v.astype(np.float64) - codes.astype(np.float64) * scale.astype(np.float64)[:, None]
    err = round_up(np.sqrt(np.einsum("ij,ij->i", resid, resid)))
    c = codes.astype(np.float32)  # squares and their sums are integers below 2^24: exact in float32
    code_norm = np.sqrt(np.einsum("ij,ij->i", c, c).astype(np.float64)) * scale.astype(np.float64)
    value_norm = np.sqrt(np.einsum("ij,ij->i", v, v, dtype=np.float64))
    return Quantized(codes, scale, err, float(code_norm.max(initial=0.0)) * (1 + 1e-12),
                     float(value_norm.max(initial=0.0)) * (1 + 1e-12))


@dataclass(frozen=True, eq=False)
class CompactValues:
    """The value vectors as retrieval scans them: int8 codes (memory), float32 ``source`` (on disk).

    ``keys[j]``, ``codes[j]``, ``scale[j]``, ``err[j]`` and ``source[j]`` describe value position ``j`` (the
    log's record order). ``code_norm`` bounds every ``||s q||`` and ``value_norm`` every ``||v||``; both enter
    the score bounds. ``source`` gives the float32 vectors: the log read through :class:`VectorFile`, or an
    in-memory matrix.
    """

    keys: np.ndarray
    codes: np.ndarray
    scale: np.ndarray
    err: np.ndarray
    code_norm: float
    value_norm: float
    source: np.ndarray | VectorFile

    @property
    def n(self) -> int:
        return int(self.codes.shape[0])

    @property
    def dim(self) -> int:
        return int(self.codes.shape[1])


class VectorFile:
    """The float32 vectors of a value log, read with ``pread`` (``shape`` ``(n, dim)``; index it with an array
    of positions or a slice). Reads copy from the page cache into this process's arrays: mapping the log
    instead would count every page the kernel maps around a fault (64 KiB each) as resident memory.

    Reads run on the calling thread (threads would fight over the GIL between system calls: 2-4x the CPU
    when the log is cached). When the first :data:`READ_PROBE` records show the log is not cached, the
    kernel is told about all the others at once (``posix_fadvise``), so the disk serves them with many
    requests in flight instead of one at a time.
    """

    def __init__(self, path: Path, dim: int, n: int) -> None:
        self.path, self.dim, self.n = Path(path), dim, n
        self.record = 8 + 4 * dim
        self._fd = os.open(self.path, os.O_RDONLY)
        weakref.finalize(self, os.close, self._fd)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n, self.dim)

    def __array__(self, *args: object, **kwargs: object) -> np.ndarray:
        raise TypeError("a VectorFile is read by positions or by slices, never converted whole")

    def __getitem__(self, key: np.ndarray | slice) -> np.ndarray:
        if isinstance(key, slice):
            a, b, step = key.indices(self.n)
            if step != 1:
                raise IndexError("VectorFile slices take every record")
            rec = np.dtype([("key", "<u8"), ("vec", "<f4", (self.dim,))])
            recs = np.fromfile(self.path, dtype=rec, count=max(b - a, 0), offset=HEADER + a * self.record)
            return np.ascontiguousarray(recs["vec"])
        positions = np.asarray(key, dtype=np.int64).reshape(-1)
        if len(positions) and (positions.min() < 0 or positions.max() >= self.n):
            raise IndexError(f"positions outside 0..{self.n - 1}")
        out = np.empty((len(positions), self.dim), dtype=np.float32)
        probe = min(READ_PROBE, len(positions))
        t0 = time.perf_counter()
        self._read(positions, out, 0, probe)
        if probe < len(positions) and time.perf_counter() - t0 > COLD_READ_S * probe:
            for p in positions[probe:].tolist():
                os.posix_fadvise(self._fd, HEADER + p * self.record + 8, 4 * self.dim, os.POSIX_FADV_WILLNEED)
        self._read(positions, out, probe, len(positions))
        return out

    def _read(self, positions: np.ndarray, out: np.ndarray, a: int, b: int) -> None:
        buf = out.data.cast("B")
        size = 4 * self.dim
        for i, p in zip(range(a, b), positions[a:b].tolist(), strict=True):
            if os.preadv(self._fd, [buf[i * size:(i + 1) * size]], HEADER + p * self.record + 8) != size:
                raise EngineError(f"the value log {self.path} is shorter than its compact copy says",
                                  fix="run rebase-tui check --repair")


def from_vectors(vectors: np.ndarray, keys: np.ndarray | None = None) -> CompactValues:
    """A compact copy of an in-memory float32 matrix (its ``source``)."""
    source = np.ascontiguousarray(vectors, dtype=np.float32)
    q = quantize(source)
    n = source.shape[0]
    return CompactValues(np.arange(n, dtype=np.uint64) if keys is None else np.asarray(keys, dtype=np.uint64),
                         q.codes, q.scale, q.err, q.code_norm, q.value_norm, source)


# -- the files --------------------------------------------------------------------------------------
def _fingerprint(log_path: Path, dim: int, count: int) -> str:
    """sha256 of ``SAMPLES`` records spread over the first ``count`` records of the log (keys and vectors)."""
    rec = 8 + 4 * dim
    h = hashlib.sha256(str(count).encode())
    if count == 0:
        return h.hexdigest()
    with open(log_path, "rb") as f:
        for i in sorted(set(np.linspace(0, max(count - 1, 0), SAMPLES).astype(np.int64).tolist())):
            f.seek(HEADER + i * rec)
            h.update(f.read(rec))
    return h.hexdigest()


def _read_meta(folder: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("version") == VERSION else None


def _covered(folder: Path, log_path: Path, dim: int, n_log: int) -> tuple[int, dict[str, Any]]:
    """How many leading log records the folder's copy holds (0 when it must be rebuilt), and its meta."""
    meta = _read_meta(folder)
    if meta is None or meta.get("dim") != dim:
        return 0, {}
    n = int(meta.get("count", 0))
    if n > n_log or meta.get("fingerprint") != _fingerprint(log_path, dim, n):
        return 0, {}
    sizes = {"codes.i8": n * dim, **{f"{name}.{ext}": n * np.dtype(t).itemsize for name, ext, t in _FILES}}
    if any(not (folder / f).exists() or (folder / f).stat().st_size < size for f, size in sizes.items()):
        return 0, {}
    return n, meta


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def sync_compact(log_path: Path, folder: Path) -> Iterator[Progress]:
    """Bring the compact copy in ``folder`` up to date with the value log at ``log_path`` (see the module
    docstring); yields progress while quantizing (nothing when it is current)."""
    vlog = VectorLog(log_path, recover=False)
    dim, n_log = vlog.dim or 0, vlog.count
    with _locked(folder):
        start, meta = _covered(folder, log_path, dim, n_log)
        if meta and start == n_log:
            return
        code_norm = float(meta.get("code_norm", 0.0)) if start else 0.0
        value_norm = float(meta.get("value_norm", 0.0)) if start else 0.0
        names = ["codes.i8", *(f"{name}.{ext}" for name, ext, _ in _FILES)]
        handles = {name: open(folder / name, "r+b" if start and (folder / name).exists() else "wb")
                   for name in names}
        try:
            for name, f in handles.items():
                f.truncate(start * (dim if name == "codes.i8" else 8 if name == "keys.u64" else 4))
                f.seek(0, os.SEEK_END)
            meter = RateMeter()
            rec = np.dtype([("key", "<u8"), ("vec", "<f4", (dim,))])
            for a in range(start, n_log, BLOCK):
                recs = np.fromfile(log_path, dtype=rec, count=min(BLOCK, n_log - a), offset=HEADER + a * rec.itemsize)
                q = _quantize_block(np.ascontiguousarray(recs["vec"], dtype=np.float32))
                handles["codes.i8"].write(q.codes.tobytes())
                handles["keys.u64"].write(recs["key"].astype("<u8").tobytes())
                handles["scale.f32"].write(q.scale.astype("<f4").tobytes())
                handles["err.f32"].write(q.err.astype("<f4").tobytes())
                code_norm, value_norm = max(code_norm, q.code_norm), max(value_norm, q.value_norm)
                done = a + len(recs)
                yield meter.progress("compact", done - start, n_log - start, "vectors",
                                     f"int8 copy of the value vectors ({done:,} of {n_log:,})")
            for f in handles.values():
                f.flush()
                os.fsync(f.fileno())
        finally:
            for f in handles.values():
                f.close()
        new_meta = {"version": VERSION, "dim": dim, "count": n_log, "code_norm": code_norm,
                    "value_norm": value_norm, "fingerprint": _fingerprint(log_path, dim, n_log)}
        tmp = folder / "meta.json.tmp"
        tmp.write_text(json.dumps(new_meta))
        os.replace(tmp, folder / "meta.json")


def open_compact(log_path: Path, folder: Path) -> CompactValues:
    """The compact copy of the log at ``log_path``, synced first (a first build quantizes the whole log: about
    a minute per 10 million values), reading float32 vectors from the log (``source``)."""
    for event in sync_compact(log_path, folder):
        if event.done == event.total or event.done % (BLOCK * 64) == 0:
            log.info("%s", event.message)
    meta = _read_meta(folder)
    if meta is None:
        raise EngineError(f"the compact value copy in {folder} could not be written",
                          fix=f"check that {folder.parent} is writable and has free space, or set "
                              "retrieval.compact off")
    n, dim = int(meta["count"]), int(meta["dim"])
    if n == 0:
        empty = np.zeros((0, dim), dtype=np.float32)
        return CompactValues(np.zeros(0, np.uint64), np.zeros((0, dim), np.int8), np.zeros(0, np.float32),
                             np.zeros(0, np.float32), 0.0, 0.0, empty)
    # read into this process's memory rather than mapped: the page cache may drop mapped pages whenever other
    # work needs memory, and every search would then wait on the disk
    codes = np.fromfile(folder / "codes.i8", dtype=np.int8, count=n * dim).reshape(n, dim)
    arrays = {name: np.fromfile(folder / f"{name}.{ext}", dtype=t, count=n) for name, ext, t in _FILES}
    return CompactValues(arrays["keys"], codes, arrays["scale"], arrays["err"], float(meta["code_norm"]),
                         float(meta["value_norm"]), VectorFile(log_path, dim, n))
