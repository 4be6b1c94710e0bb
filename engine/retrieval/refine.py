"""A refinement round's retrieval: rows close to the student's validation mistakes, scored the ReBase way with
the failures as examples beside the task's own, reusing the task's stored scores.

With ``m`` demonstrations and ``f`` failures, the round's input query is the mean of all ``m + f`` example
inputs, ``q = a q_task + b q_fail`` (``a = m/(m+f)``, ``b = f/(m+f)``), and likewise for the outputs (the
failures' references, their answers taken by the workspace's output rule); the dataset score is the task's. A
row's round score is exact ReBase, but most rows need not be scored: a row's input score is at most
``a T_in + b max_c c.q_fail``, where ``T_in`` is the row's input score for the task alone. ``T`` for every row is
stored once per task and datastore (:func:`task_scores`, in ``index/task-scores/``) and reused while neither
changed. The values nearest to the failure queries come from the usearch index with ``theta``, a bound on every
other value's score (as in the approximate search); only rows holding one of them, and the rows whose bound
still reaches the round's N-th score, are scored exactly. The list is therefore the exact one, at the cost of a
few thousand rows instead of the whole datastore (``bench/refine.py`` measures both; ``full=True`` rescoring
everything is the reference).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.errors import EngineError
from engine.retrieval import scoring
from engine.tasks import Task, output_target

if TYPE_CHECKING:
    from engine.retrieval.retriever import QueryVectors, Retriever

log = logging.getLogger(__name__)

SCORES_DIR = "task-scores"
#: Tolerance of the bound (float32 rounding of scores computed two ways), as in the approximate search.
BOUND_EPS = 1e-5
#: Values asked of the usearch index per failure query: ``FACTOR * top``, at least ``MIN_CANDIDATES``, times 4
#: per widening, for at most ``ROUNDS`` searches.
FACTOR = 4
MIN_CANDIDATES = 256
ROUNDS = 3
#: Widen the search while more than this share of the rows would still need rescoring: measured here (100k and
#: 400k values), rescoring an eighth of the rows costs about what a search four times wider does.
WIDEN_SHARE = 1 / 8


@dataclass(frozen=True)
class Failure:
    """A validation item the student got wrong: its input and its reference output."""

    input: str
    output: str


@dataclass(frozen=True)
class RoundHit:
    """A row a round adds: its key (``rows.id``), rank and round scores, and the failure it is closest to
    (position in the round's failures) with that closeness (cosine of the failure's input with the row's
    closest cell)."""

    key: int
    rank: int
    score: float
    input_score: float
    output_score: float
    dataset_score: float
    failure: int
    closeness: float
    input_column: str = ""
    output_column: str = ""


@dataclass(frozen=True)
class RoundRetrieval:
    """The rows of a round and how they were found: ``method`` ``stored`` (the task's stored scores bound the
    rest) or ``full`` (every row rescored); ``stored_reused`` whether the stored scores were read, not made;
    ``rescored`` the rows scored exactly; ``seconds`` by phase."""

    hits: tuple[RoundHit, ...]
    method: str
    stored_reused: bool
    rescored: int
    seconds: dict[str, float]

    def to_json(self) -> dict[str, object]:
        return {"method": self.method, "stored_reused": self.stored_reused, "rescored": self.rescored,
                "rows": len(self.hits), "seconds": {k: round(v, 4) for k, v in self.seconds.items()}}


# -- the task's stored scores -------------------------------------------------------------------------
def _fingerprint(retriever: Retriever, q: QueryVectors) -> str:
    h = hashlib.sha256()
    h.update(repr(retriever.signature).encode())
    for arr in (retriever.index.row_keys, q.q_in, q.q_out):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:24]


def _scores_path(retriever: Retriever, task: Task) -> Path:
    return retriever.ws.index_dir / SCORES_DIR / f"{hashlib.sha256(task.name.encode()).hexdigest()[:16]}.npz"


def task_scores(retriever: Retriever, task: Task, q: QueryVectors) -> tuple[np.ndarray, np.ndarray, bool]:
    """Every row's input and output score for the task's own queries (positions of ``retriever.index``), and
    whether they were read from the store. Made (one pass over the datastore) and stored when the task's
    queries or the datastore changed since they were stored."""
    path = _scores_path(retriever, task)
    fp = _fingerprint(retriever, q)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as got:
                if str(got["fingerprint"]) == fp:
                    return got["input"], got["output"], True
        except (OSError, ValueError, KeyError) as exc:
            log.warning("stored task scores %s unreadable (%s): scoring again", path, exc)
    values = np.asarray(retriever.values)
    scores = scoring.score_rows(values, retriever.index, q.q_in, q.q_out,
                                np.zeros(len(retriever.dataset_ids), np.float32))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, fingerprint=np.array(fp), input=scores.input, output=scores.output)
    tmp.replace(path)
    return scores.input, scores.output, False


# -- the round's search -------------------------------------------------------------------------------
def refine_search(retriever: Retriever, task: Task, failures: Sequence[Failure], *, top: int,
                  exclude_rows: Collection[int] = (), bans: Sequence[str] = (), full: bool = False) -> RoundRetrieval:
    """The ``top`` rows closest to the failures (module docstring), never a row of ``exclude_rows`` (keys:
    the task's pool) nor of a banned dataset (the task's own bans and ``bans``). ``full`` rescores every row
    (the reference the stored path must equal)."""
    if not failures:
        raise EngineError(f"no failures to refine {task.name} with", fix="refine a run that got some items wrong")
    if top < 1:
        raise EngineError(f"a round adds at least 1 row, not {top}", fix="pass --top N with N >= 1")
    t0 = time.perf_counter()
    q = retriever.queries(task)
    f_in = retriever.embed_texts([f.input for f in failures])
    f_out = retriever.embed_texts([output_target(f.output, retriever.output_rule) for f in failures])
    q_in = scoring.mean_query(np.vstack([q.inputs, f_in]))
    q_out = scoring.mean_query(np.vstack([q.outputs, f_out]))
    ds = retriever.dataset_scores(q.instruction)
    index = retriever.index
    allowed = ~np.isin(index.row_keys, np.fromiter(exclude_rows, np.int64, len(exclude_rows)))
    banned = retriever.banned_rows(tuple(dict.fromkeys([*task.exclude, *bans])))
    if banned is not None:
        allowed &= ~banned
    t1 = time.perf_counter()
    w = (1.0, 1.0, 1.0)
    reused = False
    if full:
        rows = np.arange(index.n_rows)
        final = scoring.score_rows(np.asarray(retriever.values), index, q_in, q_out, ds, w).final
    else:
        t_in, t_out, reused = task_scores(retriever, task, q)
        a = len(task.examples) / (len(task.examples) + len(failures))
        rows, final = _bounded(retriever, (q_in, q_out), (a, t_in, t_out), (f_in, f_out), ds, allowed, top)
    t2 = time.perf_counter()
    order = rows[scoring.rank_order(final, index.row_keys[rows], np.flatnonzero(allowed[rows]))[:top]]
    hits = _hits(retriever, order, (q_in, q_out), ds, f_in)
    seconds = {"embed": t1 - t0, "score": t2 - t1, "closest": time.perf_counter() - t2}
    return RoundRetrieval(hits, "full" if full else "stored", reused, len(rows), seconds)


def _exact(retriever: Retriever, rows: np.ndarray, q: tuple[np.ndarray, np.ndarray],
           ds: np.ndarray) -> scoring.Scores:
    """Exact round scores of the row positions ``rows``, reading only the values their cells use."""
    sub = scoring.sub_index(retriever.index, rows)
    used, inverse = np.unique(sub.cell_value, return_inverse=True)
    per_value = scoring.value_scores(np.asarray(retriever.values[used]), np.stack(q))
    per_cell = per_value[:, inverse.reshape(-1)]
    best = scoring.row_max(per_cell, sub.offsets)
    s_ds = ds[sub.row_dataset]
    return scoring.Scores(best[0], best[1], s_ds, scoring.final_scores(best[0], best[1], s_ds), per_cell[0],
                          per_cell[1])


def _bounded(retriever: Retriever, q: tuple[np.ndarray, np.ndarray], task: tuple[float, np.ndarray, np.ndarray],
             fail: tuple[np.ndarray, np.ndarray], ds: np.ndarray, allowed: np.ndarray,
             top: int) -> tuple[np.ndarray, np.ndarray]:
    """``(row positions scored exactly, their final scores)``: the rows holding one of the ``k`` values nearest
    a failure query, then every allowed row whose bound still reaches the ``top``-th exact score. While more
    than :data:`WIDEN_SHARE` of the rows would pass the bound (the nearest values hardly stand out: theta is
    close to the best scores), ``k`` is quadrupled, at most :data:`ROUNDS` searches: a lower theta prunes
    more, but a wide search costs as much as rescoring many rows."""
    a, t_in, t_out = task
    q_fin, q_fout = scoring.mean_query(fail[0]), scoring.mean_query(fail[1])
    s_ds = ds[retriever.index.row_dataset]
    scored = np.zeros(retriever.index.n_rows, dtype=bool)
    rows, final = np.empty(0, np.int64), np.empty(0, np.float32)
    k = max(MIN_CANDIDATES, FACTOR * top)
    for attempt in range(1, ROUNDS + 1):
        cand_in, theta_in = retriever.nearest_values(q_fin, k)
        cand_out, theta_out = retriever.nearest_values(q_fout, k)
        new = retriever.rows_of_values(np.union1d(cand_in, cand_out))
        new = new[~scored[new]]
        scored[new] = True
        rows, final = np.concatenate([rows, new]), np.concatenate([final, _exact(retriever, new, q, ds).final])
        bound = scoring.final_scores(a * t_in + (1 - a) * np.float32(theta_in),
                                     a * t_out + (1 - a) * np.float32(theta_out), s_ds)
        ok = allowed[rows]
        kth = np.partition(final[ok], ok.sum() - top)[ok.sum() - top] if ok.sum() >= top else -np.inf
        more = np.flatnonzero(allowed & ~scored & (bound >= kth - BOUND_EPS))
        if len(more) <= WIDEN_SHARE * len(allowed) or attempt == ROUNDS or 4 * k >= retriever.n_values:
            break
        k *= 4
    if len(more):
        rows, final = np.concatenate([rows, more]), np.concatenate([final, _exact(retriever, more, q, ds).final])
    return rows, final


def _hits(retriever: Retriever, order: np.ndarray, q: tuple[np.ndarray, np.ndarray], ds: np.ndarray,
          f_in: np.ndarray) -> tuple[RoundHit, ...]:
    """The ranked rows with their scores and the failure each is closest to (by its closest cell)."""
    if len(order) == 0:
        return ()
    scores = _exact(retriever, order, q, ds)
    sub = scoring.sub_index(retriever.index, order)
    used, inverse = np.unique(sub.cell_value, return_inverse=True)
    sims = (np.asarray(retriever.values[used]) @ f_in.T)[inverse.reshape(-1)]       # (cells, failures)
    best = np.maximum.reduceat(sims, sub.offsets[:-1], axis=0)                        # (rows, failures)
    closest = best.argmax(axis=1)
    keys = retriever.index.row_keys[order]
    cols = retriever.index.columns
    col_in = sub.cell_column[scoring.segment_argmax(scores.cell_in, sub.offsets, np.arange(len(order)))]
    col_out = sub.cell_column[scoring.segment_argmax(scores.cell_out, sub.offsets, np.arange(len(order)))]
    return tuple(RoundHit(int(keys[i]), i + 1, float(scores.final[i]), float(scores.input[i]),
                          float(scores.output[i]), float(scores.dataset[i]), int(closest[i]),
                          float(best[i, closest[i]]), cols[int(col_in[i])], cols[int(col_out[i])])
                 for i in range(len(order)))
