"""Exact scores of some rows of a CellIndex, reading only the values their cells use.

The approximate path and the int8 path (:mod:`engine.retrieval.compact_search`) score a few thousand rows
this way from vectors that are not all in memory; each value scores bit for bit what
:func:`engine.retrieval.scoring.score_rows` gives it (see :func:`engine.retrieval.scoring.value_scores`).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from engine.retrieval.scoring import CellIndex, Scores, final_scores, row_max, value_scores


class Vectors(Protocol):
    """What :func:`score_subset` reads vectors from: ``vectors[positions]`` gives a float32 ``(m, dim)``."""

    def __getitem__(self, positions: np.ndarray, /) -> np.ndarray: ...


def score_subset(values: Vectors, index: CellIndex, q_in: np.ndarray, q_out: np.ndarray,
                 dataset_scores: np.ndarray, weights: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> Scores:
    """Exact scores of the rows of ``index`` (a :func:`~engine.retrieval.scoring.sub_index`) reading only the values its cells use from
    ``values`` (an ``(n, dim)`` array, or anything indexed like one by positions): bit for bit what
    :func:`~engine.retrieval.scoring.score_rows` gives those rows."""
    used = np.unique(index.cell_value)
    per_value = value_scores(values[used], np.stack([q_in, q_out]))
    return scores_from_values(index, used, per_value, dataset_scores, weights)


def scores_from_values(index: CellIndex, used: np.ndarray, per_value: np.ndarray, dataset_scores: np.ndarray,
                       weights: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> Scores:
    """The rows' scores from the input and output scores ``per_value`` ``(2, m)`` of the values ``used``
    (sorted positions, covering every value ``index``'s cells use)."""
    return scores_from_cells(index, per_value[:, np.searchsorted(used, index.cell_value)], dataset_scores, weights)


def scores_from_cells(index: CellIndex, per_cell: np.ndarray, dataset_scores: np.ndarray,
                      weights: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> Scores:
    """The rows' scores from their cells' input and output scores ``per_cell`` ``(2, n_cells)``."""
    best = row_max(per_cell, index.offsets)
    s_ds = np.asarray(dataset_scores, dtype=np.float32)[index.row_dataset]
    return Scores(best[0], best[1], s_ds, final_scores(best[0], best[1], s_ds, weights),
                  np.ascontiguousarray(per_cell[0]), np.ascontiguousarray(per_cell[1]))
