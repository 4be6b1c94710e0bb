"""ReBase scoring as pure functions over numpy arrays (no database, no model).

The paper (Ge et al. 2024, section 3) scores a row ``r`` of the datastore for a task with example inputs
``x_j``, example outputs ``y_j`` and instruction ``I``:

* input score  ``s_in(r)  = max_{c in r} mean_j cos(x_j, c)``
* output score ``s_out(r) = max_{c in r} mean_j cos(y_j, c)``
* dataset score ``s_ds(r) = cos(I, description of r's dataset)``
* final score = the weighted mean of the three (weights 1, 1, 1 in the paper).

All vectors are unit length, so ``mean_j cos(x_j, c) = c . mean_j x_j``: one dot product per *distinct
value* (:func:`value_scores`), then a segment maximum over each row's cells (:func:`row_max`), which is
what makes exact scoring of millions of cells a matrix-vector product plus a group-by.

The row/cell structure is :class:`CellIndex`, a CSR layout: the cells of row ``i`` are
``offsets[i]:offsets[i+1]`` of ``cell_value`` (positions into the value matrix) and ``cell_column``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

#: Rows scored per block in :func:`value_scores`; a block of 2,048 x 384 float32 (3 MB) stays in cache
#: while both query vectors are applied (2x faster than one (n, d) x (d, 2) product measured here).
VALUE_BLOCK = 2048


@dataclass(frozen=True)
class CellIndex:
    """Rows and their cells in CSR form (every row has at least one cell).

    ``row_keys``: int64 row ids (``rows.id``); ``row_dataset``: int32 position of each row's dataset in the
    caller's dataset arrays; ``offsets``: int64, ``n_rows + 1``; ``cell_value``: int64 position of each cell's
    value in the value matrix; ``cell_column``: int32 code into ``columns``.
    """

    row_keys: np.ndarray
    row_dataset: np.ndarray
    offsets: np.ndarray
    cell_value: np.ndarray
    cell_column: np.ndarray
    columns: tuple[str, ...]

    @property
    def n_rows(self) -> int:
        return int(self.row_keys.shape[0])

    @property
    def n_cells(self) -> int:
        return int(self.cell_value.shape[0])

    def cells_of(self, i: int) -> slice:
        """The cell range of row position ``i``."""
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))


def build_cell_index(cell_row: np.ndarray, cell_value: np.ndarray, cell_column: np.ndarray,
                     columns: Sequence[str], row_keys: np.ndarray, row_dataset: np.ndarray) -> CellIndex:
    """Group cells by row into a :class:`CellIndex`.

    ``cell_row``/``cell_value``/``cell_column`` are parallel per-cell arrays (row key, value position, column
    code); ``row_keys``/``row_dataset`` describe the rows. Rows without any cell are dropped (they have no
    score); cells of rows not in ``row_keys`` are dropped too.
    """
    row_keys = np.asarray(row_keys, dtype=np.int64)
    row_dataset = np.asarray(row_dataset, dtype=np.int32)
    cell_row = np.asarray(cell_row, dtype=np.int64)
    order = np.argsort(row_keys, kind="stable")
    row_keys, row_dataset = row_keys[order], row_dataset[order]
    pos = np.searchsorted(row_keys, cell_row)
    pos_clipped = np.minimum(pos, max(len(row_keys) - 1, 0))
    known = (pos < len(row_keys)) & (row_keys[pos_clipped] == cell_row) if len(row_keys) else \
        np.zeros(len(cell_row), dtype=bool)
    pos = pos[known]
    cell_value = np.asarray(cell_value, dtype=np.int64)[known]
    cell_column = np.asarray(cell_column, dtype=np.int32)[known]
    by_row = np.argsort(pos, kind="stable")
    pos, cell_value, cell_column = pos[by_row], cell_value[by_row], cell_column[by_row]
    counts = np.bincount(pos, minlength=len(row_keys))
    keep = counts > 0
    offsets = np.zeros(int(keep.sum()) + 1, dtype=np.int64)
    np.cumsum(counts[keep], out=offsets[1:])
    return CellIndex(row_keys[keep], row_dataset[keep], offsets, cell_value, cell_column, tuple(columns))


def sub_index(index: CellIndex, rows: np.ndarray) -> CellIndex:
    """The CellIndex of the given row positions of ``index`` (in that order)."""
    return _sub_cells(index, rows)[0]


def _sub_cells(index: CellIndex, rows: np.ndarray) -> tuple[CellIndex, np.ndarray]:
    """:func:`sub_index` and the positions of its cells in ``index``'s cell arrays."""
    starts = index.offsets[rows]
    lengths = index.offsets[rows + 1] - starts
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    idx = np.repeat(starts, lengths) + np.arange(int(offsets[-1]), dtype=np.int64) - np.repeat(offsets[:-1], lengths)
    return CellIndex(index.row_keys[rows], index.row_dataset[rows], offsets, index.cell_value[idx],
                     index.cell_column[idx], index.columns), idx


def positions(haystack: np.ndarray, needles: np.ndarray) -> np.ndarray:
    """Index of each needle in ``haystack`` (unsorted; the first of repeated keys), -1 where absent."""
    if len(haystack) == 0:
        return np.full(len(needles), -1, dtype=np.int64)
    order = np.argsort(haystack, kind="stable")
    s = haystack[order]
    pos = np.searchsorted(s, needles)
    ok = (pos < len(s)) & (s[np.minimum(pos, len(s) - 1)] == needles)
    return np.where(ok, order[np.minimum(pos, len(s) - 1)], -1)


# -- the score --------------------------------------------------------------------------------------
def mean_query(vectors: np.ndarray) -> np.ndarray:
    """The mean of unit example vectors: ``c . mean_query(X) == mean_j cos(x_j, c)`` for a unit ``c``."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] == 0:
        raise ValueError("mean_query needs a non-empty (m, dim) matrix")
    return vectors.mean(axis=0, dtype=np.float64).astype(np.float32)


def value_scores(values: np.ndarray, queries: np.ndarray, block: int = VALUE_BLOCK,
                 workers: int | None = None) -> np.ndarray:
    """``queries @ values.T`` as float32 ``(k, n_values)``, computed block by block (exact, cache-friendly).

    Each dot product is numpy's ``einsum`` loop: it sums every value's products in the same order wherever
    the value sits, so a value scores bit for bit the same here and in any subset (the approximate path
    relies on it; BLAS ``gemv`` results depend on the row's place in the block), and it measured 1.4x
    less CPU than BLAS here. The values are split into ``workers`` contiguous shards (default: the CPU count,
    at most 4) scored by threads (``einsum`` releases the GIL).
    """
    values = np.asarray(values)
    queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    n = values.shape[0]
    out = np.empty((queries.shape[0], n), dtype=np.float32)
    workers = max(1, min(workers or min(os.cpu_count() or 1, 4), -(-n // block)))

    def shard(start: int, end: int) -> None:
        for a in range(start, end, block):
            b = min(a + block, end)
            blk = values[a:b]
            if blk.dtype != np.float32 or not blk.flags.c_contiguous:
                blk = np.ascontiguousarray(blk, dtype=np.float32)
            for k in range(queries.shape[0]):
                np.einsum("ij,j->i", blk, queries[k], out=out[k, a:b])

    if workers == 1:
        shard(0, n)
    else:
        cuts = [n * i // workers for i in range(workers + 1)]
        for f in [executor(workers).submit(shard, cuts[i], cuts[i + 1]) for i in range(workers)]:
            f.result()
    return out


_EXECUTOR: ThreadPoolExecutor | None = None


def executor(workers: int) -> ThreadPoolExecutor:
    """The module's thread pool (grown to ``workers`` threads) for sharded numpy/numkong loops."""
    global _EXECUTOR
    if _EXECUTOR is None or _EXECUTOR._max_workers < workers:
        _EXECUTOR = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rebase-score")
    return _EXECUTOR


def row_max(cell_scores: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Maximum of each row's cells: ``cell_scores`` is ``(k, n_cells)``; returns ``(k, n_rows)``.

    Every row must hold at least one cell (:func:`build_cell_index` guarantees it).
    """
    cell_scores = np.atleast_2d(cell_scores)
    if len(offsets) <= 1:
        return np.empty((cell_scores.shape[0], 0), dtype=cell_scores.dtype)
    return np.maximum.reduceat(cell_scores, offsets[:-1], axis=1)


def segment_argmax(cell_scores: np.ndarray, offsets: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each row position in ``rows``, the index (into the cell arrays) of its best cell.

    ``cell_scores`` is one score per cell ``(n_cells,)``; ties go to the first cell of the row.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return np.empty(0, dtype=np.int64)
    starts = offsets[rows]
    lengths = offsets[rows + 1] - starts
    seg_start = np.zeros(len(rows), dtype=np.int64)
    np.cumsum(lengths[:-1], out=seg_start[1:])
    local = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(seg_start, lengths)
    idx = np.repeat(starts, lengths) + local
    scores = cell_scores[idx]
    best = np.maximum.reduceat(scores, seg_start)
    hit = scores == np.repeat(best, lengths)
    first = np.minimum.reduceat(np.where(hit, local, np.iinfo(np.int64).max), seg_start)
    return starts + first


def parse_weights(text: str | Sequence[float] | None) -> tuple[float, float, float]:
    """``"IN,OUT,DS"`` (or a sequence) as three finite, non-negative weights with a positive, finite sum;
    ValueError saying which rule a value breaks (nan, ``inf`` and ``1e308,1e308,…`` would score every row
    nan or 0 and rank them arbitrarily)."""
    if text is None:
        return (1.0, 1.0, 1.0)
    parts: Sequence[float | str] = text.split(",") if isinstance(text, str) else text
    shown = text if isinstance(text, str) else ",".join(map(str, text))
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    try:
        w = tuple(float(p) for p in parts)
    except (TypeError, ValueError):
        raise ValueError(f"weights {shown!r} are not three numbers IN,OUT,DS") from None
    if len(w) != 3:
        raise ValueError(f"weights {shown!r} must be three numbers IN,OUT,DS, not {len(w)}")
    for x in w:
        if not math.isfinite(x):
            raise ValueError(f"weights {shown!r}: {x} is not a finite number (IN,OUT,DS must be finite)")
        if x < 0:
            raise ValueError(f"weights {shown!r}: {x:g} is negative (IN,OUT,DS must be 0 or more)")
    total = sum(w)
    if total <= 0:
        raise ValueError(f"weights {shown!r} are all zero (at least one of IN,OUT,DS must be positive)")
    if not math.isfinite(total):
        raise ValueError(f"weights {shown!r} are too large: their sum overflows (scale IN,OUT,DS down)")
    return (w[0], w[1], w[2])


def final_scores(s_in: np.ndarray, s_out: np.ndarray, s_ds: np.ndarray,
                 weights: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """The weighted mean of the three scores (float32)."""
    w_in, w_out, w_ds = weights
    total = w_in + w_out + w_ds
    out = s_in * np.float32(w_in / total)
    out += s_out * np.float32(w_out / total)
    out += s_ds * np.float32(w_ds / total)
    return out


# -- contamination bans ----------------------------------------------------------------------------
def is_excluded(dataset_id: str, exclude: Iterable[str]) -> bool:
    """True when a name in ``exclude`` equals ``dataset_id`` or its last path component.

    ``glue`` excludes ``glue`` and ``nyu-mll/glue``; ``nyu-mll/glue`` excludes only ``nyu-mll/glue``.
    Comparison is case-sensitive, as Hugging Face dataset ids are; surrounding blanks are ignored.
    """
    last = dataset_id.rsplit("/", 1)[-1]
    for name in exclude:
        name = name.strip()
        if name and (name == dataset_id or name == last):
            return True
    return False


def excluded_datasets(dataset_ids: Sequence[str], exclude: Iterable[str]) -> np.ndarray:
    """Boolean mask over ``dataset_ids``: which ones :func:`is_excluded` bans."""
    names = [x for x in exclude if x.strip()]
    return np.array([is_excluded(d, names) for d in dataset_ids], dtype=bool)


# -- choosing the top N ----------------------------------------------------------------------------
def rank_order(scores: np.ndarray, keys: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """``candidates`` (positions) sorted by score descending, then key ascending (deterministic ties)."""
    return candidates[np.lexsort((keys[candidates], -scores[candidates].astype(np.float64)))]


def top_candidates(scores: np.ndarray, keys: np.ndarray, k: int, allowed: np.ndarray | None = None) -> np.ndarray:
    """The ``k`` best positions by :func:`rank_order` (every row tied with the k-th is considered).

    ``allowed`` is an optional boolean mask; rows outside it never appear. Uses ``argpartition`` so
    the cost is linear in the number of rows.
    """
    pool = np.flatnonzero(allowed) if allowed is not None else np.arange(len(scores))
    if k <= 0 or pool.size == 0:
        return np.empty(0, dtype=np.int64)
    if k < pool.size:
        sub = scores[pool]
        kth = np.partition(sub, pool.size - k)[pool.size - k]
        pool = pool[sub >= kth]
    return rank_order(scores, keys, pool)[:k]


def diversify(order: np.ndarray, row_dataset: np.ndarray, best_value: np.ndarray | None, top: int,
              per_dataset_cap: int | None) -> tuple[np.ndarray, bool]:
    """Walk ``order`` (ranked positions) keeping at most ``per_dataset_cap`` rows per dataset and, when
    ``best_value`` is given (the best-input cell's value of each position in ``order``), dropping a row whose
    best-input cell text repeats an earlier kept row. Returns (the kept positions, at most ``top``; whether
    ``order`` ran out before ``top`` rows were kept).
    """
    kept: list[int] = []
    per_ds: dict[int, int] = {}
    seen: set[int] = set()
    for i, pos in enumerate(order.tolist()):
        ds = int(row_dataset[pos])
        if per_dataset_cap is not None and per_ds.get(ds, 0) >= per_dataset_cap:
            continue
        if best_value is not None:
            v = int(best_value[i])
            if v in seen:
                continue
            seen.add(v)
        per_ds[ds] = per_ds.get(ds, 0) + 1
        kept.append(pos)
        if len(kept) >= top:
            return np.array(kept, dtype=np.int64), False
    return np.array(kept, dtype=np.int64), True


def select_ranked(index: CellIndex, scores: Scores, allowed: np.ndarray | None, top: int,
                  cap: int | None, dedupe: bool) -> np.ndarray:
    """Positions (in ``index``) of the ranked, diversified top ``top``: :func:`top_candidates` without a cap
    or dedupe, else :func:`diversify` over a ranking grown 4x until ``top`` rows are kept or none is left."""
    if cap is None and not dedupe:
        return top_candidates(scores.final, index.row_keys, top, allowed)
    k = top
    n_allowed = index.n_rows if allowed is None else int(allowed.sum())
    while True:
        order = top_candidates(scores.final, index.row_keys, k, allowed)
        best = index.cell_value[segment_argmax(scores.cell_in, index.offsets, order)] if dedupe else None
        kept, short = diversify(order, index.row_dataset, best, top, cap)
        if not short or k >= n_allowed:
            return kept
        k = min(n_allowed, k * 4)


# -- the approximate path's guarantee --------------------------------------------------------------
def outside_bound(theta_in: float, theta_out: float, ds_max: float,
                  weights: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> float:
    """Upper bound of the final score of any row none of whose cells is among the candidate values.

    ``theta_in``/``theta_out`` are the k-th best value scores returned for the input/output query (every
    value outside the candidates scores at most that), ``ds_max`` the best dataset score of a non-excluded
    dataset. A candidate top N whose N-th final score is >= this bound is the exact top N.
    """
    w_in, w_out, w_ds = weights
    total = w_in + w_out + w_ds
    return (w_in * theta_in + w_out * theta_out + w_ds * ds_max) / total


@dataclass(frozen=True)
class Scores:
    """Every row's scores for one query (arrays over the rows of a :class:`CellIndex`).

    ``cell_in``/``cell_out`` keep the per-cell scores so the best column of any row can be named later.
    """

    input: np.ndarray
    output: np.ndarray
    dataset: np.ndarray
    final: np.ndarray
    cell_in: np.ndarray
    cell_out: np.ndarray


def score_rows(values: np.ndarray, index: CellIndex, q_in: np.ndarray, q_out: np.ndarray,
               dataset_scores: np.ndarray, weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
               workers: int | None = None) -> Scores:
    """Exact ReBase scores of every row: one pass over the value matrix, one segment maximum per row
    (both split over ``workers`` threads, see :func:`value_scores`).

    ``q_in``/``q_out`` are :func:`mean_query` of the example inputs/outputs, ``dataset_scores`` the cosine of
    the instruction with each dataset's description (indexed by ``index.row_dataset``).
    """
    per_value = value_scores(values, np.stack([q_in, q_out]), workers=workers)
    cell_in = np.empty(index.n_cells, dtype=np.float32)
    cell_out = np.empty(index.n_cells, dtype=np.float32)
    best_in = np.empty(index.n_rows, dtype=np.float32)
    best_out = np.empty(index.n_rows, dtype=np.float32)

    def shard(a: int, b: int) -> None:  # rows a:b -- gather their cells' scores, then the segment maximum
        cs, ce = int(index.offsets[a]), int(index.offsets[b])
        if ce == cs:
            return
        starts = index.offsets[a:b] - cs
        for per, cell, best in ((per_value[0], cell_in, best_in), (per_value[1], cell_out, best_out)):
            np.take(per, index.cell_value[cs:ce], out=cell[cs:ce])
            best[a:b] = np.maximum.reduceat(cell[cs:ce], starts)

    n = index.n_rows
    w = max(1, min(workers or min(os.cpu_count() or 1, 4), n // 4096))
    if w == 1:
        shard(0, n)
    else:
        cuts = [n * i // w for i in range(w + 1)]
        for f in [executor(w).submit(shard, cuts[i], cuts[i + 1]) for i in range(w)]:
            f.result()
    s_ds = np.asarray(dataset_scores, dtype=np.float32)[index.row_dataset]
    return Scores(best_in, best_out, s_ds, final_scores(best_in, best_out, s_ds, weights), cell_in, cell_out)


def take_rows(index: CellIndex, scores: Scores, rows: np.ndarray) -> tuple[CellIndex, Scores]:
    """The given row positions of ``index`` with their scores (cells included), in that order."""
    sub, idx = _sub_cells(index, rows)
    return sub, Scores(scores.input[rows], scores.output[rows], scores.dataset[rows], scores.final[rows],
                       scores.cell_in[idx], scores.cell_out[idx])
