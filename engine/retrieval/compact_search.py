"""Exact ranking from the int8 copy: bound every row, re-score from float32 only the rows that can still win.

:meth:`CompactSearch.rank` returns what the float32 exhaustive scan returns (the same rows in the same order,
the same scores bit for bit, ties broken by row key), reading float32 vectors only for a few thousand rows:

1. one int8 pass bounds every value's input and output score from above (:func:`bounds.value_bounds`), the
   row maxima of those bound every row's (:func:`bounds.row_maxima`), and ``final_scores`` of them bounds
   every row's final score: ``UB``;
2. the "leaders" are re-scored exactly: the ``k = N`` allowed rows with the highest ``UB``. ``k`` rows score
   at least their lowest score ``L``, so every row of the answer scores at least ``L``. With a per-dataset
   cap, the leaders are the ``cap`` highest-``UB`` rows of every dataset instead: a dataset's own floor is the
   lowest of its leaders' scores (its answer rows score at least that), and the N-th best of all leaders'
   scores is a floor for every row (the answer dominates them). The threshold of a row is the higher floor;
3. every allowed row with ``UB >=`` its threshold is re-scored exactly; those that score at least it are
   *every* row that does (any other row has a lower ``UB``): the rows the selection needs, in exact order;
4. the selection (top N, per-dataset cap, dedupe) walks them. A cap alone gives the exact answer now. Dedupe
   skips rows, so the walk must still have kept N rows, and a dataset whose own floor lies above the last kept
   score must be full by then; if not, ``k`` (and the per-dataset count) grow 4x and steps 2-4 repeat, at worst
   over every row.

The ranking is exact when every value re-scored scored at most its bound: that is checked on each search
(``Ranked.exact``), so a broken bound shows as ``exact: false`` instead of a silently different list.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from engine.retrieval import bounds, scoring, subsets
from engine.retrieval.compact import CompactValues, VectorFile


@dataclass(frozen=True)
class Ranked:
    """A ranking over some rows: their positions ``rows`` (sorted), their CellIndex ``scored`` and exact
    ``scores``, the kept positions (in ``scored``) in rank order, whether it is proven exact, and how many
    candidate rows the last round re-scored from float32 (its leaders, fewer, come on top)."""

    rows: np.ndarray
    scored: scoring.CellIndex
    scores: scoring.Scores
    kept: np.ndarray
    exact: bool
    rescored: int


@dataclass(eq=False)
class CompactSearch:
    """The compact values and the row groups of one CellIndex, with the scan's reusable buffer.

    Rows are handled in ``buckets.order`` ("bucket positions"); ``row_dataset`` is ``index.row_dataset`` in
    that order, ``by_dataset`` the bucket positions grouped by dataset (``dataset_offsets`` into it).
    """

    values: CompactValues
    index: scoring.CellIndex
    buckets: bounds.RowBuckets
    row_dataset: np.ndarray
    by_dataset: np.ndarray
    dataset_offsets: np.ndarray
    _table: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def build(cls, values: CompactValues, index: scoring.CellIndex, n_datasets: int) -> CompactSearch:
        """Group the rows once (a few seconds per 10 million cells)."""
        buckets = bounds.row_buckets(index, values.n)
        row_dataset = index.row_dataset[buckets.order]
        by_dataset = np.argsort(row_dataset, kind="stable")
        offsets = np.zeros(n_datasets + 1, dtype=np.int64)
        np.cumsum(np.bincount(row_dataset, minlength=n_datasets), out=offsets[1:])
        return cls(values, index, buckets, row_dataset, by_dataset, offsets)

    def upper_bounds(self, q_in: np.ndarray, q_out: np.ndarray, ds_scores: np.ndarray,
                     weights: tuple[float, float, float]) -> np.ndarray:
        """Every row's final-score upper bound, in bucket positions."""
        self._table = bounds.value_bounds(self.values, [q_in, q_out], out=self._table)
        best = bounds.row_maxima(self._table, self.buckets)
        s_ds = np.asarray(ds_scores, dtype=np.float32)[self.row_dataset]
        return scoring.final_scores(best[:, 0], best[:, 1], s_ds, weights)

    def rank(self, q_in: np.ndarray, q_out: np.ndarray, ds_scores: np.ndarray, banned_ds: np.ndarray,
             weights: tuple[float, float, float], top: int, cap: int | None, dedupe: bool,
             banned_rows: np.ndarray | None = None) -> Ranked:
        """The exact ranking (see the module docstring) of the rows of datasets not in ``banned_ds`` and not
        in ``banned_rows`` (a mask over the index's rows: one config of a dataset)."""
        ub = self.upper_bounds(q_in, q_out, ds_scores, weights)
        if banned_ds.any():
            ub[banned_ds[self.row_dataset]] = -np.inf
        ds_sizes = np.diff(self.dataset_offsets)
        if banned_rows is not None:  # a dataset's size is then its allowed rows (what its cap can fill)
            ub[banned_rows[self.buckets.order]] = -np.inf
            ds_sizes = np.bincount(self.row_dataset[ub > -np.inf], minlength=len(ds_sizes))
        n_allowed = int(ds_sizes[~banned_ds].sum())
        assert self._table is not None
        cache = _ValueCache(self.values.source, self._table, q_in, q_out)
        for grow in itertools.count():
            k = top * 4 ** grow
            c = None if cap is None else cap * 4 ** grow
            everything = k >= n_allowed
            if everything:
                theta = own = np.full(len(ds_scores), -np.inf)
                floor = -np.inf
            else:
                lsub, lscores = self._rescore(cache, np.sort(self.buckets.order[self._leaders(ub, k, c)]),
                                              ds_scores, weights)
                theta, own, floor = _thresholds(lsub, lscores, k, c, cap, ds_sizes)
            if cap is None:  # one threshold for every row (banned rows are -inf: never above it)
                cand = np.flatnonzero(ub >= floor) if floor > -np.inf else np.flatnonzero(ub > -np.inf)
            else:
                cand = np.flatnonzero(ub >= np.where(banned_ds, np.inf, theta)[self.row_dataset])
                cand = cand[ub[cand] > -np.inf]
            rows = np.sort(self.buckets.order[cand])
            sub, scores = self._rescore(cache, rows, ds_scores, weights)
            prefix = np.flatnonzero(scores.final >= theta[sub.row_dataset])
            sub, scores = scoring.take_rows(sub, scores, prefix)
            kept = scoring.select_ranked(sub, scores, None, top, cap, dedupe)
            if everything or not dedupe or _walk_proven(sub, scores, kept, own, floor, top, cap):
                return Ranked(rows[prefix], sub, scores, kept, cache.sound, len(rows))
        raise AssertionError("unreachable")  # pragma: no cover

    def _leaders(self, ub: np.ndarray, k: int, c: int | None) -> np.ndarray:
        """Bucket positions whose exact scores set the thresholds: the ``k`` highest bounds, or with a cap
        the ``c`` highest bounds of every dataset."""
        if c is None:
            return np.argpartition(ub, len(ub) - k)[len(ub) - k:]
        grouped = ub[self.by_dataset]
        out = []
        for a, b in zip(self.dataset_offsets[:-1].tolist(), self.dataset_offsets[1:].tolist(), strict=True):
            if b == a or grouped[a] == -np.inf:  # no rows, or a banned dataset
                continue
            out.append(np.arange(a, b) if b - a <= c else a + np.argpartition(grouped[a:b], b - a - c)[b - a - c:])
        picked = np.concatenate(out) if out else np.empty(0, dtype=np.int64)
        return self.by_dataset[picked[grouped[picked] > -np.inf]]

    def _rescore(self, cache: _ValueCache, rows: np.ndarray, ds_scores: np.ndarray,
                 weights: tuple[float, float, float]) -> tuple[scoring.CellIndex, scoring.Scores]:
        """The CellIndex of ``rows`` (sorted positions) and their exact scores.

        Only the cells that can hold a row's maximum are read: a cell whose upper bounds lie below the row's
        best lower bounds (for input and for output) cannot, and scores ``-inf`` here, which changes neither
        the maximum nor the cell naming it. That halves the float32 reads.
        """
        sub = scoring.sub_index(self.index, rows)
        per_cell = np.full((2, sub.n_cells), -np.inf, dtype=np.float32)
        if sub.n_cells:
            assert self._table is not None
            high = self._table[sub.cell_value]
            low = bounds.lower_bounds(self.values, high, sub.cell_value, list(cache.queries))
            best_low = np.maximum.reduceat(low, sub.offsets[:-1], axis=0)
            need = (high >= np.repeat(best_low, np.diff(sub.offsets), axis=0)).any(axis=1)
            used = np.unique(sub.cell_value[need])
            per_cell[:, need] = cache.get(used)[:, np.searchsorted(used, sub.cell_value[need])]
        return sub, subsets.scores_from_cells(sub, per_cell, ds_scores, weights)


class _ValueCache:
    """Exact value scores of one search, each value read from float32 once (the leaders' values come back
    in step 3), and whether every one scored at most its bound."""

    def __init__(self, source: np.ndarray | VectorFile, table: np.ndarray, q_in: np.ndarray,
                 q_out: np.ndarray) -> None:
        self.source, self.table, self.queries = source, table, np.stack([q_in, q_out])
        self.positions = np.empty(0, dtype=np.int64)
        self.scores = np.empty((2, 0), dtype=np.float32)
        self.sound = True

    def get(self, positions: np.ndarray) -> np.ndarray:
        """The ``(2, m)`` exact scores of the values at ``positions`` (sorted, distinct)."""
        at = np.minimum(np.searchsorted(self.positions, positions), max(len(self.positions) - 1, 0))
        known = (self.positions[at] == positions) if len(self.positions) else np.zeros(len(positions), bool)
        new = positions[~known]
        if len(new):
            fresh = scoring.value_scores(self.source[new], self.queries)
            self.sound = self.sound and bool((fresh.T <= self.table[new]).all())
            order = np.argsort(np.concatenate([self.positions, new]), kind="stable")
            self.positions = np.concatenate([self.positions, new])[order]
            self.scores = np.concatenate([self.scores, fresh], axis=1)[:, order]
            at = np.searchsorted(self.positions, positions)
        return self.scores[:, at]


def _kth_largest(x: np.ndarray, k: int) -> float:
    return float(np.partition(x, len(x) - k)[len(x) - k]) if 0 < k <= len(x) else -np.inf


def _thresholds(sub: scoring.CellIndex, scores: scoring.Scores, k: int, c: int | None, cap: int | None,
                ds_sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Per dataset position, the score every row of the answer reaches (``theta``), its two parts: the
    dataset's own floor (``own``, ``-inf`` where none) and the floor of every row (``floor``).

    Without a cap: the k-th best exact score of the leaders. With one: a dataset with more than ``c`` rows
    has ``c`` leaders, so its ``cap`` best rows score at least the c-th best of them; and the cap keeps at
    most ``cap`` rows per dataset, so the top of the answer dominates the ``cap`` best leaders of every
    dataset, whose k-th best score is then a floor too.
    """
    n_ds = len(ds_sizes)
    if cap is None or c is None:
        floor = _kth_largest(scores.final, k)
        return np.full(n_ds, floor), np.full(n_ds, -np.inf), floor
    order = np.lexsort((-scores.final.astype(np.float64), sub.row_dataset))
    ds, final = sub.row_dataset[order], scores.final[order]
    first = np.zeros(n_ds + 1, dtype=np.int64)
    np.cumsum(np.bincount(ds, minlength=n_ds), out=first[1:])
    place = np.arange(len(ds)) - first[ds]
    own = np.full(n_ds, -np.inf)
    at_c = place == c - 1
    full = ds_sizes[ds[at_c]] > c
    own[ds[at_c][full]] = final[at_c][full]
    floor = _kth_largest(final[place < cap], k)
    return np.maximum(own, floor), own, floor


def _walk_proven(sub: scoring.CellIndex, scores: scoring.Scores, kept: np.ndarray, own: np.ndarray,
                 floor: float, top: int, cap: int | None) -> bool:
    """With dedupe, whether the walk over the re-scored rows is the walk over every row. A row left out lies
    below its threshold; it cannot change the walk when it comes after the walk's end (the last kept score, or
    the very end when fewer than ``top`` rows were kept), or when its dataset already holds ``cap`` rows, all
    above its own floor. So: the floor must not lie above the end, and every dataset whose own floor does must
    be full (a dedupe skip could otherwise have let one of its lower rows in)."""
    end = float(scores.final[kept[-1]]) if len(kept) >= top else -np.inf
    if floor > end:
        return False
    if cap is None:
        return True
    counts = np.bincount(sub.row_dataset[kept], minlength=len(own))
    return bool(np.all((own <= end) | (counts >= cap)))
