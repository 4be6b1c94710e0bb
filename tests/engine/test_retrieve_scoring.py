"""The pure scoring math (engine/retrieval/scoring.py) against an independent, literal reading of the paper."""

from __future__ import annotations

import numpy as np
import pytest

from engine.retrieval import scoring


def _unit(rng, n, d=16):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _random_store(seed=0, n_values=300, n_rows=200, n_datasets=5, d=16):
    """A random store: rows hold 1-4 cells drawing values with repeats; rows arrive in shuffled order."""
    rng = np.random.default_rng(seed)
    values = _unit(rng, n_values, d)
    row_keys = rng.permutation(np.arange(1000, 1000 + n_rows * 3, 3))
    row_dataset = rng.integers(0, n_datasets, n_rows)
    cells = []  # (row key, value pos, column code)
    for key in row_keys:
        for c in rng.choice(4, size=rng.integers(1, 5), replace=False):
            cells.append((key, rng.integers(0, n_values), c))
    rng.shuffle(cells)
    cells = np.array(cells, dtype=np.int64)
    index = scoring.build_cell_index(cells[:, 0], cells[:, 1], cells[:, 2], ["a", "b", "c", "d"],
                                     row_keys, row_dataset)
    return rng, values, index, cells, row_keys, row_dataset


def _cos(a, b):
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_scores_equal_the_papers_definition_row_by_row():
    rng, values, index, cells, row_keys, row_dataset = _random_store()
    ex_in, ex_out = _unit(rng, 3), _unit(rng, 3)
    instr, desc = _unit(rng, 1)[0], _unit(rng, 5)
    ds_scores = desc @ instr
    weights = (1.0, 2.0, 0.5)
    got = scoring.score_rows(values, index, scoring.mean_query(ex_in), scoring.mean_query(ex_out),
                             ds_scores, weights)
    assert index.n_rows == len(row_keys)
    for pos, key in enumerate(index.row_keys):
        mine = cells[cells[:, 0] == key]
        s_in = max(np.mean([_cos(x, values[v]) for x in ex_in]) for v in mine[:, 1])
        s_out = max(np.mean([_cos(y, values[v]) for y in ex_out]) for v in mine[:, 1])
        ds = row_dataset[list(row_keys).index(key)]
        s_ds = _cos(instr, desc[ds])
        final = (1.0 * s_in + 2.0 * s_out + 0.5 * s_ds) / 3.5
        assert got.input[pos] == pytest.approx(s_in, abs=1e-5)
        assert got.output[pos] == pytest.approx(s_out, abs=1e-5)
        assert got.dataset[pos] == pytest.approx(s_ds, abs=1e-5)
        assert got.final[pos] == pytest.approx(final, abs=1e-5)
        best = scoring.segment_argmax(got.cell_in, index.offsets, np.array([pos]))[0]
        assert got.cell_in[best] == pytest.approx(s_in, abs=1e-6)
        assert index.offsets[pos] <= best < index.offsets[pos + 1]


def test_value_scores_blocks_match_a_plain_product():
    rng = np.random.default_rng(1)
    values, q = _unit(rng, 5000), _unit(rng, 2)
    np.testing.assert_allclose(scoring.value_scores(values, q, block=777), q @ values.T, atol=1e-6)
    half = values.astype(np.float16)
    np.testing.assert_allclose(scoring.value_scores(half, q), q @ half.astype(np.float32).T, atol=1e-6)
    # a value scores bit for bit the same wherever it sits (the approximate path re-scores subsets)
    full = scoring.value_scores(values, q, workers=2)
    for subset in (np.array([4999]), np.arange(1, 5000, 7), rng.choice(5000, 333, replace=False)):
        assert np.array_equal(scoring.value_scores(values[subset], q, block=100, workers=1), full[:, subset])


def test_build_cell_index_drops_empty_and_unknown_rows():
    index = scoring.build_cell_index(np.array([7, 5, 7, 99]), np.array([0, 1, 2, 3]), np.array([0, 0, 1, 0]),
                                     ["x", "y"], np.array([7, 6, 5]), np.array([0, 1, 2]))
    assert index.row_keys.tolist() == [5, 7]          # 6 has no cells, 99 is not a row
    assert index.row_dataset.tolist() == [2, 0]
    assert index.offsets.tolist() == [0, 1, 3]
    assert index.cell_value.tolist() == [1, 0, 2]
    assert index.cell_column.tolist() == [0, 0, 1]


def test_segment_argmax_picks_first_of_ties_and_handles_single_cells():
    offsets = np.array([0, 3, 4, 7])
    scores = np.array([0.1, 0.5, 0.5, 0.2, 0.9, 0.3, 0.9], dtype=np.float32)
    assert scoring.segment_argmax(scores, offsets, np.array([2, 0, 1])).tolist() == [4, 1, 3]


def test_exclusion_matches_exact_id_or_last_path_component():
    ids = ["glue", "nyu-mll/glue", "glue-x", "a/glue/b", "super_glue", "nyu-mll/multi_nli"]
    assert scoring.excluded_datasets(ids, ["glue"]).tolist() == [True, True, False, False, False, False]
    assert scoring.excluded_datasets(ids, ["nyu-mll/glue"]).tolist() == [False, True, False, False, False, False]
    assert scoring.excluded_datasets(ids, ["multi_nli", " "]).tolist() == [False] * 5 + [True]
    assert not scoring.is_excluded("Glue", ["glue"])


def test_top_candidates_is_deterministic_under_ties_and_respects_the_mask():
    scores = np.array([0.5, 0.9, 0.5, 0.5, 0.1, 0.9], dtype=np.float32)
    keys = np.array([60, 50, 40, 30, 20, 10])
    assert scoring.top_candidates(scores, keys, 3).tolist() == [5, 1, 3]
    allowed = np.array([True, False, True, True, True, True])
    assert scoring.top_candidates(scores, keys, 4, allowed).tolist() == [5, 3, 2, 0]
    assert scoring.top_candidates(scores, keys, 100).tolist() == [5, 1, 3, 2, 0, 4]


def test_diversify_caps_datasets_and_drops_repeated_best_inputs():
    order = np.array([0, 1, 2, 3, 4, 5])
    row_dataset = np.array([0, 0, 0, 1, 1, 2])
    kept, short = scoring.diversify(order, row_dataset, None, 10, per_dataset_cap=2)
    assert kept.tolist() == [0, 1, 3, 4, 5] and short
    best_value = np.array([10, 10, 11, 12, 11, 13])
    kept, short = scoring.diversify(order, row_dataset, best_value, 3, per_dataset_cap=None)
    assert kept.tolist() == [0, 2, 3] and not short


def test_parse_weights():
    assert scoring.parse_weights("1,2,0") == (1.0, 2.0, 0.0)
    assert scoring.parse_weights(None) == (1.0, 1.0, 1.0)
    for bad in ("1,2", "a,b,c", "0,0,0", "-1,1,1", "nan,1,1"):
        with pytest.raises(ValueError):
            scoring.parse_weights(bad)


def test_outside_bound_is_a_true_bound():
    rng, values, index, cells, *_ = _random_store(seed=3)
    q_in, q_out = scoring.mean_query(_unit(rng, 3)), scoring.mean_query(_unit(rng, 3))
    ds = rng.uniform(-0.2, 0.6, 5).astype(np.float32)
    s = scoring.score_rows(values, index, q_in, q_out, ds)
    per_value = scoring.value_scores(values, np.stack([q_in, q_out]))
    k = 30
    top_in = np.argsort(-per_value[0])[:k]
    top_out = np.argsort(-per_value[1])[:k]
    bound = scoring.outside_bound(per_value[0][top_in[-1]], per_value[1][top_out[-1]], ds.max())
    cand = np.isin(index.cell_value, np.union1d(top_in, top_out))
    row_has = np.maximum.reduceat(cand.astype(np.int8), index.offsets[:-1]) > 0
    assert (s.final[~row_has] <= bound + 1e-6).all()
