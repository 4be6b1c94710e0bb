"""Upper bounds of ReBase scores from the int8 copy of the value vectors (:mod:`engine.retrieval.compact`).

A value ``v`` is stored as codes ``q``, scale ``s`` and ``err >= ||v - s q||``; a query ``u`` (float32) is
written as two int8 levels ``u = t1 p1 + t2 p2 + r`` (the second level quantizes the first one's rounding, so
the rest ``r`` is tiny). Then

    v . u = s (t1 q.p1 + t2 q.p2) + (v - s q) . u + s q . r
    |(v - s q) . u| <= err ||u||        |s q . r| <= code_norm ||r||

so ``s (t1 q.p1 + t2 q.p2) + err ||u|| + code_norm ||r|| + slop`` is at least the exact path's score of ``v``,
where ``slop`` covers float32 rounding: the exact path's own dot product is off the real one by at most
``(dim + 2) 2^-24 ||v|| ||u||``, and this formula's few operations by far less than the ``1e-6`` added.
The integer dot products ``q.p`` are exact in int32 (at most 127 * 127 * dim) and come from numkong's int8 SIMD
kernels (the library usearch computes with), checked against numpy once per process.

A row's input (output) score is the maximum of its cells' scores, so the maximum of its cells' bounds bounds
it (:func:`row_maxima`); float rounding is monotone, so :func:`engine.retrieval.scoring.final_scores` of the
bounds bounds the final score.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from engine.errors import EngineError
from engine.retrieval import scoring
from engine.retrieval.compact import CompactValues

#: Values per block of the int8 scan: the block's int32 dot products and float32 temporaries stay in cache.
SCAN_BLOCK = 32_768
#: Rows with up to this many cells are grouped by their exact count; wider ones are padded to a power of 2.
EXACT_WIDTHS = 8
_KERNEL_CHECKED = False


@dataclass(frozen=True)
class QueryCodes:
    """A query as two int8 levels ``levels`` (2, dim) with steps ``steps`` (2,), its norm and the norm of
    what the two levels leave out (both rounded up)."""

    levels: np.ndarray
    steps: np.ndarray
    norm: float
    rest: float


def _level(x: np.ndarray) -> tuple[np.ndarray, np.float32]:
    step = np.float32(np.abs(x).max(initial=0.0) / 127)
    codes = np.clip(np.rint(x / (float(step) or 1.0)), -127, 127).astype(np.int8)
    return codes, step


def quantize_query(u: np.ndarray) -> QueryCodes:
    """The two-level int8 form of the float32 query ``u``."""
    u64 = np.asarray(u, dtype=np.float32).astype(np.float64)
    p1, t1 = _level(u64)
    r1 = u64 - float(t1) * p1.astype(np.float64)
    p2, t2 = _level(r1)
    r2 = r1 - float(t2) * p2.astype(np.float64)
    return QueryCodes(np.stack([p1, p2]), np.array([t1, t2], dtype=np.float32),
                      float(np.linalg.norm(u64)) * (1 + 1e-9), float(np.linalg.norm(r2)) * (1 + 1e-9))


def check_kernel() -> None:
    """Refuse to bound scores with an int8 kernel that disagrees with numpy (once per process)."""
    global _KERNEL_CHECKED
    if _KERNEL_CHECKED:
        return
    import numkong

    rng = np.random.default_rng(0)
    a = rng.integers(-127, 128, (300, 388), dtype=np.int8)
    a[:8] = 127
    a[8:16] = -127
    b = rng.integers(-127, 128, (4, 388), dtype=np.int8)
    b[0], b[1] = 127, -127
    got = np.asarray(numkong.dots_packed(a, numkong.dots_pack(b)))
    if not np.array_equal(got, a.astype(np.int64) @ b.T.astype(np.int64)):
        raise EngineError("the int8 kernel (numkong) computes wrong dot products on this machine",
                          fix="set retrieval.compact off (rebase-tui config retrieval.compact off)")
    _KERNEL_CHECKED = True


def value_bounds(cv: CompactValues, queries: Sequence[np.ndarray], out: np.ndarray | None = None,
                 workers: int | None = None) -> np.ndarray:
    """Upper bounds of every value's score for each query: float32 ``(n + 1, len(queries))``, whose last row
    is ``-inf`` (the padding of :class:`RowBuckets`). ``out`` is reused when it has that shape."""
    import numkong

    check_kernel()
    m, n = len(queries), cv.n
    if out is None or out.shape != (n + 1, m) or out.dtype != np.float32:
        out = np.empty((n + 1, m), dtype=np.float32)
    out[n] = -np.inf
    qc = [quantize_query(u) for u in queries]
    packed = numkong.dots_pack(np.concatenate([c.levels for c in qc]))
    norms, add = _terms(cv, qc)

    def shard(a: int, b: int) -> None:
        for s in range(a, b, SCAN_BLOCK):
            e = min(s + SCAN_BLOCK, b)
            dots = np.asarray(numkong.dots_packed(cv.codes[s:e], packed))
            scale, err = cv.scale[s:e], cv.err[s:e]
            for j, c in enumerate(qc):
                x = dots[:, 2 * j].astype(np.float32)
                x *= c.steps[0]
                x += dots[:, 2 * j + 1].astype(np.float32) * c.steps[1]
                x *= scale
                x += err * norms[j]
                x += add[j]
                out[s:e, j] = x

    _run_sharded(shard, n, SCAN_BLOCK, workers)
    return out


def _terms(cv: CompactValues, qc: Sequence[QueryCodes]) -> tuple[list[np.float32], list[np.float32]]:
    """Per query, ``||u||`` and what the bound adds for every value besides ``err ||u||``."""
    gamma = (cv.dim + 2) * 2.0 ** -24 * 1.01
    return ([np.float32(c.norm) for c in qc],
            [np.float32(cv.code_norm * c.rest + gamma * cv.value_norm * c.norm + 1e-6) for c in qc])


def lower_bounds(cv: CompactValues, upper: np.ndarray, positions: np.ndarray,
                 queries: Sequence[np.ndarray]) -> np.ndarray:
    """Lower bounds of the scores of the values at ``positions`` from their upper bounds ``upper`` (rows of
    the :func:`value_bounds` table): the approximation minus the same error terms, less a margin for the
    float32 rounding of both formulas."""
    norms, add = _terms(cv, [quantize_query(u) for u in queries])
    err = cv.err[positions][:, None]
    width = 2 * (err * np.array(norms, dtype=np.float32) + np.array(add, dtype=np.float32))
    return upper - width - (np.float32(2e-6) + np.float32(1e-6) * np.abs(upper))


def _run_sharded(fn: Callable[[int, int], None], n: int, align: int, workers: int | None) -> None:
    """``fn(a, b)`` over ``workers`` contiguous shards of ``range(n)`` (cut at multiples of ``align``), in
    threads: numkong and numpy release the GIL in their loops."""
    w = max(1, min(workers or min(os.cpu_count() or 1, 4), -(-n // align)))
    if w == 1:
        fn(0, n)
        return
    cuts = [n * i // w // align * align for i in range(w)] + [n]
    for f in [scoring.executor(w).submit(fn, cuts[i], cuts[i + 1]) for i in range(w)]:
        f.result()


# -- row maxima -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RowBuckets:
    """The rows of a CellIndex grouped by cell count, for row maxima by whole-array gathers and maxima
    (``np.maximum.reduceat`` over millions of short rows costs three times as much).

    ``order`` lists the row positions group after group; ``groups[g]`` is a ``(width, rows)`` array of value
    positions, column ``i`` the cells of row ``order[start_g + i]`` in ascending order, padded with the value
    count (the bound table's ``-inf`` row). Rows are ordered by their lowest value position, so the gathers of
    the first line walk the table forwards (a datastore's rows mostly use values ingested just before them,
    which makes most gathers local).
    """

    order: np.ndarray
    groups: tuple[np.ndarray, ...]

    @property
    def n_rows(self) -> int:
        return int(self.order.shape[0])


def row_buckets(index: scoring.CellIndex, n_values: int) -> RowBuckets:
    """Group ``index``'s rows by cell count (see :class:`RowBuckets`)."""
    counts = np.diff(index.offsets)
    widths = counts.copy()
    wide = counts > EXACT_WIDTHS
    if wide.any():
        widths[wide] = 1 << np.ceil(np.log2(counts[wide])).astype(np.int64)
    by_width = np.argsort(widths, kind="stable")
    dtype = np.int32 if n_values < 2 ** 31 - 1 else np.int64
    groups, order = [], []
    cuts = np.flatnonzero(np.diff(widths[by_width])) + 1
    for rows in np.split(by_width, cuts):
        if not len(rows):
            continue
        w = int(widths[rows[0]])
        j = np.arange(w, dtype=np.int64)[:, None]
        pos = index.offsets[rows][None, :] + j
        valid = j < counts[rows][None, :]
        vals = np.sort(np.where(valid, index.cell_value[np.minimum(pos, max(index.n_cells - 1, 0))], n_values),
                       axis=0)
        # rows in the order of their lowest value: the first gather then walks the table forwards
        by_first = np.argsort(vals[0], kind="stable")
        groups.append(np.ascontiguousarray(vals[:, by_first], dtype=dtype))
        order.append(rows[by_first])
    return RowBuckets(np.concatenate(order) if order else np.empty(0, np.int64), tuple(groups))


def row_maxima(table: np.ndarray, buckets: RowBuckets, workers: int | None = None) -> np.ndarray:
    """For every row (in ``buckets.order``), the maximum over its cells of ``table[value]``: float32
    ``(n_rows, k)`` for a C-contiguous float32 ``(n_values + 1, k)`` table (k of 1 or 2 gathers whole rows
    of the table at once)."""
    k = table.shape[1]
    if k not in (1, 2) or table.dtype != np.float32 or not table.flags.c_contiguous:
        raise ValueError("row_maxima needs a C-contiguous float32 (n, 1) or (n, 2) table")
    flat = table.view(np.uint64 if k == 2 else np.uint32).reshape(-1)
    out = np.empty((buckets.n_rows, k), dtype=np.float32)
    starts = np.cumsum([0] + [g.shape[1] for g in buckets.groups])

    def one(g: np.ndarray, a: int, b: int, at: int) -> None:
        m = np.take(flat, g[0, a:b]).view(np.float32).reshape(-1, k)
        for j in range(1, g.shape[0]):
            np.maximum(m, np.take(flat, g[j, a:b]).view(np.float32).reshape(-1, k), out=m)
        out[at:at + b - a] = m

    w = max(1, min(workers or min(os.cpu_count() or 1, 4), 8))
    jobs = []
    for g, s in zip(buckets.groups, starts[:-1].tolist(), strict=True):
        size = g.shape[1]
        parts = max(1, min(w, size // 65_536))
        cuts = [size * i // parts for i in range(parts + 1)]
        jobs += [(g, cuts[i], cuts[i + 1], s + cuts[i]) for i in range(parts)]
    if w == 1 or len(jobs) == 1:
        for job in jobs:
            one(*job)
    else:
        for f in [scoring.executor(w).submit(one, *job) for job in jobs]:
            f.result()
    return out
