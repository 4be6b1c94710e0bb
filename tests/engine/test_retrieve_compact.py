"""Exact retrieval from the int8 copy (engine/retrieval/compact_search.py) against the float32 exhaustive scan.

Every ranking is compared with :func:`scoring.score_rows` + :func:`scoring.select_ranked` over the float32
matrix: the same rows in the same order with the same scores bit for bit, on random data and on data made to
be hard for bounds (near-ties, duplicated vectors, wide rows), with bans, per-dataset caps and dedupe.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.retrieval import bounds, compact, scoring
from engine.retrieval.compact_search import CompactSearch


def _unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _structure(rng, n_values, n_rows, n_datasets, max_cells=4, wide=0):
    """Rows with 1..max_cells cells (``wide`` rows get 20-300), values drawn with repeats, shuffled keys."""
    sizes = rng.integers(1, max_cells + 1, n_rows)
    sizes[rng.choice(n_rows, wide, replace=False)] = rng.integers(20, 300, wide)
    row_keys = rng.permutation(np.arange(10, 10 + 7 * n_rows, 7))
    cell_row = np.repeat(row_keys, sizes)
    cell_value = rng.integers(0, n_values, len(cell_row))
    cell_column = np.concatenate([np.arange(s) for s in sizes]) % 5
    return scoring.build_cell_index(cell_row, cell_value, cell_column, ["a", "b", "c", "d", "e"], row_keys,
                                    rng.integers(0, n_datasets, n_rows))


def _store(seed=0, n_values=3000, n_rows=2500, n_datasets=12, d=48, wide=0):
    rng = np.random.default_rng(seed)
    values = _unit(rng, n_values, d)
    index = _structure(rng, n_values, n_rows, n_datasets, wide=wide)
    return rng, values, index, _unit(rng, n_datasets, d)


def _queries(rng, d, desc, m=3):
    q_in, q_out = scoring.mean_query(_unit(rng, m, d)), scoring.mean_query(_unit(rng, m, d))
    return q_in, q_out, (desc @ _unit(rng, 1, d)[0]).astype(np.float32)


def _compare(values, index, q_in, q_out, ds, *, banned=None, weights=(1.0, 1.0, 1.0), top=50, cap=None,
             dedupe=False, searcher=None):
    """Rank both ways; assert the compact ranking is the float32 one; return the compact ranking."""
    banned = np.zeros(len(ds), dtype=bool) if banned is None else banned
    exact = scoring.score_rows(values, index, q_in, q_out, ds, weights)
    allowed = ~banned[index.row_dataset] if banned.any() else None
    want = scoring.select_ranked(index, exact, allowed, top, cap, dedupe)
    searcher = searcher or CompactSearch.build(compact.from_vectors(values), index, len(ds))
    got = searcher.rank(q_in, q_out, ds, banned, weights, top, cap, dedupe)
    assert got.exact
    assert got.rows[got.kept].tolist() == want.tolist()
    assert np.array_equal(got.scores.final[got.kept], exact.final[want])  # bit for bit
    assert np.array_equal(got.scores.input[got.kept], exact.input[want])
    assert np.array_equal(got.scores.output[got.kept], exact.output[want])
    for pos, g in zip(got.kept.tolist(), want.tolist(), strict=True):  # the explaining cells too
        mine = scoring.segment_argmax(got.scores.cell_in, got.scored.offsets, np.array([pos]))[0]
        theirs = scoring.segment_argmax(exact.cell_in, index.offsets, np.array([g]))[0]
        assert got.scored.cell_value[mine] == index.cell_value[theirs]
    return got


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_stores_rank_exactly_as_float32(seed):
    rng, values, index, desc = _store(seed, d=384 if seed == 0 else 48)
    q_in, q_out, ds = _queries(rng, values.shape[1], desc)
    searcher = CompactSearch.build(compact.from_vectors(values), index, len(desc))
    for top in (1, 10, 300, index.n_rows + 5):
        got = _compare(values, index, q_in, q_out, ds, top=top, searcher=searcher)
        if top == 10:
            assert got.rescored < index.n_rows / 4  # the bounds prune most rows
    _compare(values, index, q_in, q_out, ds, weights=(2.0, 0.5, 1.0), top=100, searcher=searcher)
    _compare(values, index, q_in, q_out, ds, weights=(0.0, 0.0, 1.0), top=100, searcher=searcher)


def test_bans_caps_and_dedupe_rank_exactly_as_float32():
    rng, values, index, desc = _store(3, n_values=800, n_rows=3000)  # values shared by many rows: dedupe bites
    q_in, q_out, ds = _queries(rng, values.shape[1], desc)
    searcher = CompactSearch.build(compact.from_vectors(values), index, len(desc))
    banned = np.zeros(len(desc), dtype=bool)
    banned[[1, 4, 5]] = True
    for kwargs in ({"banned": banned}, {"cap": 3}, {"cap": 40}, {"cap": 1000}, {"dedupe": True},
                   {"cap": 2, "dedupe": True}, {"cap": 25, "dedupe": True, "banned": banned},
                   {"top": 500, "cap": 30, "dedupe": True}):
        _compare(values, index, q_in, q_out, ds, searcher=searcher, **({"top": 100} | kwargs))


def test_a_cap_that_cannot_fill_the_list_gives_every_datasets_best_rows():
    rng, values, index, desc = _store(4)
    q_in, q_out, ds = _queries(rng, values.shape[1], desc)
    got = _compare(values, index, q_in, q_out, ds, top=1000, cap=5)
    assert len(got.kept) == 5 * len(desc)
    assert got.rescored < index.n_rows / 2


def test_every_dataset_banned_gives_an_exact_empty_list():
    rng, values, index, desc = _store(5)
    q_in, q_out, ds = _queries(rng, values.shape[1], desc)
    got = _compare(values, index, q_in, q_out, ds, banned=np.ones(len(desc), dtype=bool))
    assert len(got.kept) == 0


def test_near_ties_and_duplicated_vectors_rank_exactly_as_float32():
    """A few base vectors, each repeated exactly or moved by one float32 step: thousands of rows tie or
    nearly tie, and the order among them is decided by the last bits and by the row key."""
    rng = np.random.default_rng(6)
    d = 64
    base = _unit(rng, 6, d)
    values = base[rng.integers(0, 6, 4000)]
    nudged = rng.random(4000) < 0.5
    values[nudged] = np.nextafter(values[nudged], np.float32(1))
    index = _structure(rng, 4000, 3000, 5)
    desc = np.repeat(_unit(rng, 1, d), 5, axis=0)  # every dataset scores the same
    q_in, q_out, ds = scoring.mean_query(base[:2]), scoring.mean_query(base[1:4]), (desc @ base[0]).astype(np.float32)
    searcher = CompactSearch.build(compact.from_vectors(values), index, 5)
    for kwargs in ({}, {"cap": 10}, {"dedupe": True}, {"cap": 50, "dedupe": True}):
        _compare(values, index, q_in, q_out, ds, top=200, searcher=searcher, **kwargs)


def test_rows_with_many_cells_rank_exactly_as_float32():
    rng, values, index, desc = _store(7, n_rows=1500, wide=60)
    assert np.diff(index.offsets).max() > 2 * bounds.EXACT_WIDTHS  # padded groups are exercised
    q_in, q_out, ds = _queries(rng, values.shape[1], desc)
    _compare(values, index, q_in, q_out, ds, top=120)
    _compare(values, index, q_in, q_out, ds, top=120, cap=4, dedupe=True)


def test_a_broken_bound_is_reported_not_hidden():
    """With the quantization error left out of the bounds they no longer hold: the search must then say
    ``exact: false`` (every time its list differs, and here on most queries)."""
    rng, values, index, desc = _store(8, d=384)
    cv = compact.from_vectors(values)
    broken = compact.CompactValues(cv.keys, cv.codes, cv.scale, np.zeros_like(cv.err), 0.0, 0.0, cv.source)
    searcher = CompactSearch.build(broken, index, len(desc))
    flagged = 0
    for _ in range(6):
        q_in, q_out, ds = _queries(rng, values.shape[1], desc)
        exact = scoring.score_rows(values, index, q_in, q_out, ds)
        want = scoring.top_candidates(exact.final, index.row_keys, 300)
        got = searcher.rank(q_in, q_out, ds, np.zeros(len(desc), dtype=bool), (1.0, 1.0, 1.0), 300, None, False)
        if got.rows[got.kept].tolist() != want.tolist():
            assert not got.exact
        flagged += not got.exact
    assert flagged >= 4


def test_value_bounds_hold_both_ways_and_are_tight():
    rng = np.random.default_rng(9)
    d = 384
    values = _unit(rng, 5000, d)
    values[0] = 0.0  # a zero vector
    values[1] = np.eye(d, dtype=np.float32)[3]  # all its weight in one component
    values[2:50] *= 3.0  # not unit length
    values[50:100] = np.round(values[50:100] * 1e3) / 1e3  # coarse components
    cv = compact.from_vectors(values)
    for q in (scoring.mean_query(_unit(rng, 3, d)), _unit(rng, 1, d)[0], np.zeros(d, np.float32),
              np.eye(d, dtype=np.float32)[3] * 0.25):
        table = bounds.value_bounds(cv, [q, -q])
        exact = scoring.value_scores(values, np.stack([q, -q]))
        assert (exact.T <= table[:-1]).all()
        assert np.isneginf(table[-1]).all()
        low = bounds.lower_bounds(cv, table[:-1], np.arange(len(values)), [q, -q])
        assert (low <= exact.T).all()
        gap = table[:-1] - exact.T
        assert gap.max() <= 0.03 * max(float(np.linalg.norm(q)), 1e-3) * 3.0 + 1e-5  # err ||u||: ~0.02 ||u||


def test_row_maxima_is_the_maximum_over_each_rows_cells():
    rng = np.random.default_rng(10)
    index = _structure(rng, 500, 700, 3, max_cells=12, wide=30)
    table = rng.standard_normal((501, 2)).astype(np.float32)
    table[500] = -np.inf
    buckets = bounds.row_buckets(index, 500)
    got = bounds.row_maxima(table, buckets, workers=2)
    want = np.maximum.reduceat(table[index.cell_value], index.offsets[:-1], axis=0)
    assert np.array_equal(got, want[buckets.order])
    assert sorted(buckets.order.tolist()) == list(range(index.n_rows))


def test_quantization_error_bound_is_an_upper_bound():
    rng = np.random.default_rng(11)
    v = _unit(rng, 2000, 384)
    v[0] = 0.0
    q = compact.quantize(v)
    recon = q.codes.astype(np.float64) * q.scale.astype(np.float64)[:, None]
    resid = np.linalg.norm(v.astype(np.float64) - recon, axis=1)
    assert (q.err >= resid).all() and (q.err <= resid * (1 + 1e-6) + 1e-30).all()
    assert q.codes.dtype == np.int8 and np.abs(q.codes).max() == 127
    assert q.code_norm >= np.linalg.norm(recon, axis=1).max()
    assert q.value_norm >= np.linalg.norm(v.astype(np.float64), axis=1).max()
