"""Retrieval (ReBase stages 2-3): rank the datastore's rows for a task, and store them as its pool.

:class:`Retriever` loads the workspace's value vectors and its row/cell structure once
(:mod:`engine.retrieval.loading`); :meth:`Retriever.search` then re-ranks in tens of milliseconds, so the TUI
keeps one and re-queries as the user types. The math is in :mod:`engine.retrieval.scoring` (pure numpy); this
module does the query embeddings (cached in memory and in the ``query_vectors`` table), bans, diversity and
the approximate path. The results are :mod:`engine.retrieval.results`; :mod:`engine.retrieval.pool` stores
them as a task's pool.

Exact search scores every distinct value once and takes a segment maximum per row; with ``retrieval.compact``
(large datastores) it scans an int8 copy instead and re-scores from float32 only the rows that can still win
(:mod:`engine.retrieval.compact_search`), returning the same list. ``approximate=True``
asks the usearch HNSW index for the values closest to each query, re-scores exactly every row holding one
of them, and reports ``exact=True`` when no other row can reach the N-th result (see
:func:`engine.retrieval.scoring.outside_bound`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import EngineError
from engine.retrieval import scoring, subsets
from engine.retrieval.compact import VectorFile
from engine.retrieval.compact_search import CompactSearch
from engine.retrieval.loading import damaged_index, load_datastore, open_value_index, read_signature
from engine.retrieval.query_store import store_queries, stored_queries
from engine.retrieval.results import RetrievalResult, RowHit
from engine.tasks import Task, output_target, resolve_task, validate

if TYPE_CHECKING:
    from engine.datastore.embed import Embedder
    from engine.workspace import Workspace

log = logging.getLogger(__name__)

#: In-memory query vectors kept per Retriever (texts), on top of the persistent table.
QUERY_CACHE_SIZE = 4096
#: Rows kept in the ``query_vectors`` table (live typing adds one per new instruction draft); ~1.5 KB each.
QUERY_TABLE_MAX = 10_000
#: The approximate path's first candidate count (values per query): ``APPROX_FACTOR * top``, at least
#: ``APPROX_MIN_CANDIDATES``; it grows 4x per round, for at most ``APPROX_MAX_ROUNDS`` rounds.
APPROX_FACTOR = 4
APPROX_MIN_CANDIDATES = 256
APPROX_MAX_ROUNDS = 4
#: Tolerance on the exactness proof (float32 rounding of scores computed two ways).
BOUND_EPS = 1e-5


@dataclass(frozen=True)
class QueryVectors:
    """A task's embedded texts: instruction ``(dim,)``, example inputs and output targets ``(m, dim)``."""

    instruction: np.ndarray
    inputs: np.ndarray
    outputs: np.ndarray

    @property
    def q_in(self) -> np.ndarray:
        return scoring.mean_query(self.inputs)

    @property
    def q_out(self) -> np.ndarray:
        return scoring.mean_query(self.outputs)


def as_task(ws: Workspace, task_or_spec: Task | Mapping[str, Any] | str) -> Task:
    """A Task from a Task, a task spec (dict) or a TASK argument (stored name or path to a task file)."""
    if isinstance(task_or_spec, Task):
        return task_or_spec
    if isinstance(task_or_spec, Mapping):
        return validate(dict(task_or_spec))
    return resolve_task(ws, str(task_or_spec))


class Retriever:
    """The workspace's datastore, loaded for fast repeated ReBase queries (see the module docstring).

    Building one reads the value vectors, description vectors, rows and cells of every ``ready`` dataset
    (about a second for the shared 110 k-value datastore). It is not thread-safe: use it from one thread at a
    time. :meth:`is_stale` says when the datastore changed since (build a new one then).
    """

    def __init__(self, ws: Workspace, *, threads: int | None = None) -> None:
        """Load the workspace's datastore. ``threads``: torch threads to set when the embedder is loaded
        (0: all cores; None: leave torch's setting alone, as the TUI sets its own)."""
        self.ws = ws
        self.threads = threads
        self.persist_queries = True
        """Store newly embedded query texts in the workspace's ``query_vectors`` table. The TUI's live search
        turns this off: one write per keystroke costs ~10 ms and now and then a checkpoint."""
        self.output_rule: str = ws.config["retrieval.output_rule"]
        """How a reasoning example output becomes its output query (see :func:`engine.tasks.output_target`)."""
        t0 = time.perf_counter()
        data = load_datastore(ws)
        self.embedder_name = data.embedder_name
        self._signature = data.signature
        self.dataset_ids: tuple[str, ...] = data.dataset_ids
        self.descriptions: np.ndarray = data.descriptions
        self.values: np.ndarray | VectorFile = data.values
        self.compact = (CompactSearch.build(data.compact, data.index, len(data.dataset_ids))
                        if data.compact is not None else None)
        """The int8 path (``retrieval.compact``): exact search without the float32 values in memory."""
        self.value_keys: np.ndarray = data.value_keys
        self.index: scoring.CellIndex = data.index
        self._row_config = data.row_config
        self._row_source_id = data.row_source_id
        self._configs = data.configs
        self._excluded_cache: dict[tuple[str, ...], np.ndarray] = {}
        self._value_rows: tuple[np.ndarray, np.ndarray] | None = None
        self._usearch: Any = None
        self._embedder: Embedder | None = None
        self._qcache: dict[str, np.ndarray] = {}
        self.load_seconds = time.perf_counter() - t0
        log.info("retriever: %d values, %d cells, %d rows, %d datasets loaded in %.2f s", self.n_values,
                 self.index.n_cells, self.index.n_rows, len(self.dataset_ids), self.load_seconds)

    # -- facts ---------------------------------------------------------------------------
    @property
    def n_values(self) -> int:
        """Distinct values scored per query."""
        return int(self.values.shape[0])

    def is_stale(self) -> bool:
        """True when datasets were added, removed or finished since this retriever was built."""
        return read_signature(self.ws) != self._signature

    # -- query embeddings ----------------------------------------------------------------
    def embedder(self) -> Embedder:
        """The workspace's embedder (loaded on first use; torch and the model load here)."""
        if self._embedder is None:
            from engine.datastore.embed import load_embedder, set_torch_threads

            if self.threads is not None:
                set_torch_threads(self.threads)
            self._embedder = load_embedder(self.embedder_name or "", device=str(self.ws.config["embedder.device"]))
            if self._embedder.dim != self.values.shape[1]:
                raise EngineError(
                    f"embedder {self._embedder.name} gives {self._embedder.dim}-dimensional vectors, but the "
                    f"datastore holds {self.values.shape[1]}-dimensional ones",
                    fix="use the workspace's own embedder, or re-ingest into another workspace with -w DIR")
        return self._embedder

    def warm(self) -> None:
        """Load the embedder now (the TUI calls this off the UI thread before the first search)."""
        self.embedder().encode(["warm-up"])

    def clear_query_cache(self, persistent: bool = True) -> None:
        """Forget cached query vectors (in memory, and in the workspace table when ``persistent``)."""
        self._qcache.clear()
        if persistent:
            with self.ws.store.cursor() as cur:
                cur.execute("delete from query_vectors where embedder = ?", [self.embedder_name])

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of ``texts`` through the caches: memory, then the ``query_vectors`` table, then the model.

        The answer is built from this call's own vectors before the memory cache is trimmed, so a call with
        more distinct texts than the cache holds (a task with thousands of demonstrations) still gets all.
        """
        if not texts:
            return np.zeros((0, self.values.shape[1]), np.float32)
        distinct = list(dict.fromkeys(texts))
        found = {t: self._qcache[t] for t in distinct if t in self._qcache}
        need = [t for t in distinct if t not in found]
        if need:
            found.update(stored_queries(self.ws, self.embedder_name, need, self.values.shape[1]))
            missing = [t for t in need if t not in found]
            if missing:
                vecs = self.embedder().encode(missing)
                embedded = dict(zip(missing, vecs, strict=True))
                found.update(embedded)
                if self.persist_queries:
                    store_queries(self.ws, self.embedder_name, embedded, QUERY_TABLE_MAX)
        out = np.stack([found[t] for t in texts])
        for t in distinct:  # most recently used last: the trim below drops the oldest
            self._qcache.pop(t, None)
            self._qcache[t] = found[t]
        while len(self._qcache) > QUERY_CACHE_SIZE:
            self._qcache.pop(next(iter(self._qcache)))
        return out

    def queries(self, task: Task) -> QueryVectors:
        """The task's query vectors (instruction, example inputs, example output targets)."""
        ins = [e.input for e in task.examples]
        outs = [output_target(e.output, self.output_rule) for e in task.examples]
        vecs = self.embed_texts([task.instruction, *ins, *outs])
        m = len(ins)
        return QueryVectors(vecs[0], vecs[1:1 + m], vecs[1 + m:])

    def dataset_scores(self, instruction: np.ndarray) -> np.ndarray:
        """cos(instruction, description) per dataset position."""
        return (self.descriptions @ np.asarray(instruction, dtype=np.float32)).astype(np.float32)

    def banned_rows(self, names: Sequence[str]) -> np.ndarray | None:
        """Mask over rows banned by ``names`` — dataset ids (see :func:`engine.retrieval.scoring.is_excluded`)
        and ``DATASET:CONFIG`` for one config of a dataset (``glue:mnli``); None when no row is banned."""
        whole = self.excluded([n for n in names if ":" not in n])
        mask = whole[self.index.row_dataset] if whole.any() else np.zeros(self.index.n_rows, dtype=bool)
        for name in (n.strip() for n in names if ":" in n):
            dataset, config = name.rsplit(":", 1)
            of_dataset = scoring.excluded_datasets(self.dataset_ids, [dataset])
            config_ids = [cid for cid, (cname, _) in self._configs.items() if cname == config.strip()]
            if of_dataset.any() and config_ids:
                mask |= of_dataset[self.index.row_dataset] & np.isin(self._row_config, config_ids)
        return mask if mask.any() else None

    def task_name_bans(self, task_name: str) -> list[str]:
        """Every dataset, or config of a dataset, whose id contains ``task_name`` (case-insensitive): the
        contamination bans the paper applied (a task's own benchmark often sits in the datastore)."""
        needle = task_name.lower()
        out = [d for d in self.dataset_ids if needle in d.lower()]
        pos = {cid: i for i, cid in enumerate(self._row_config.tolist())} if len(self._row_config) else {}
        for cid, (cname, _) in sorted(self._configs.items()):
            if needle in cname.lower() and cid in pos:
                dataset = self.dataset_ids[int(self.index.row_dataset[pos[cid]])]
                if dataset not in out:
                    out.append(f"{dataset}:{cname}")
        return list(dict.fromkeys(out))

    def excluded(self, names: Sequence[str]) -> np.ndarray:
        """Mask over dataset positions banned by ``names`` (see :func:`engine.retrieval.scoring.is_excluded`)."""
        key = tuple(sorted({n.strip() for n in names if n.strip()}))
        if key not in self._excluded_cache:
            self._excluded_cache[key] = scoring.excluded_datasets(self.dataset_ids, key)
        return self._excluded_cache[key]

    # -- search --------------------------------------------------------------------------
    def search(self, task_or_spec: Task | Mapping[str, Any] | str, *, top: int = 3000,
               weights: str | Sequence[float] | None = None, exclude: Sequence[str] = (),
               per_dataset_cap: int | None = None, dedupe: bool = False, approximate: bool = False,
               fetch_rows: bool = True) -> RetrievalResult:
        """Rank the rows for a task (a Task, a spec dict, or a stored name / task file path).

        ``exclude`` adds to the task's own ``source_datasets_to_exclude``; ``per_dataset_cap`` keeps at most
        that many rows of one dataset; ``dedupe`` drops a row whose best-input cell text repeats an earlier
        result's. ``fetch_rows=False`` skips reading the rows' data (``RowHit.row`` stays empty).
        """
        task = as_task(self.ws, task_or_spec)
        if top < 1:
            raise EngineError(f"--top must be at least 1, got {top}", fix="pass --top N with N >= 1")
        if per_dataset_cap is not None and per_dataset_cap < 1:
            raise EngineError(f"--per-dataset-cap must be at least 1, got {per_dataset_cap}",
                              fix="pass --per-dataset-cap K with K >= 1, or leave it out")
        try:
            w = scoring.parse_weights(weights)
        except ValueError as exc:
            raise EngineError(str(exc), fix="pass --weights IN,OUT,DS, e.g. 1,1,1 (the paper)") from None
        bans = tuple(dict.fromkeys([*task.exclude, *(x.strip() for x in exclude if x.strip())]))

        t0 = time.perf_counter()
        q = self.queries(task)
        t1 = time.perf_counter()
        ds_scores = self.dataset_scores(q.instruction)
        banned_ds = self.excluded([b for b in bans if ":" not in b])
        banned = self.banned_rows(bans)
        cap = per_dataset_cap
        if approximate:
            rows, scored, scores, kept, exact = self._approximate(q, ds_scores, banned_ds, banned, w, top, cap,
                                                                  dedupe)
        elif self.compact is not None:
            r = self.compact.rank(q.q_in, q.q_out, ds_scores, banned_ds, w, top, cap, dedupe, banned)
            rows, scored, scores, kept, exact = r.rows, r.scored, r.scores, r.kept, r.exact
        else:
            assert isinstance(self.values, np.ndarray)
            scores = scoring.score_rows(self.values, self.index, q.q_in, q.q_out, ds_scores, w)
            allowed = ~banned if banned is not None else None
            kept = scoring.select_ranked(self.index, scores, allowed, top, cap, dedupe)
            rows, scored, exact = np.arange(self.index.n_rows), self.index, True
        t2 = time.perf_counter()
        hits = self._hits(rows, scored, scores, kept, fetch_rows)
        n_cand = len(rows)
        t3 = time.perf_counter()
        return RetrievalResult(task.name, top, exact, hits, {"embed": t1 - t0, "score": t2 - t1, "fetch": t3 - t2},
                               w, bans, approximate, n_cand)

    # -- the approximate path ------------------------------------------------------------
    def _value_index(self) -> Any:
        if self._usearch is None:
            self._usearch = open_value_index(self.ws, self.value_keys, self.values.shape[1])
        return self._usearch

    def _rows_of_values(self, value_pos: np.ndarray) -> np.ndarray:
        """Row positions holding any of the values ``value_pos`` (sorted, unique)."""
        if self._value_rows is None:
            order = np.argsort(self.index.cell_value, kind="stable")
            row_of_cell = np.repeat(np.arange(self.index.n_rows, dtype=np.int64), np.diff(self.index.offsets))
            v_off = np.zeros(self.n_values + 1, dtype=np.int64)
            np.cumsum(np.bincount(self.index.cell_value, minlength=self.n_values), out=v_off[1:])
            self._value_rows = (row_of_cell[order], v_off)
        rows_sorted, v_off = self._value_rows
        starts, ends = v_off[value_pos], v_off[value_pos + 1]
        lengths = ends - starts
        seg = np.zeros(len(value_pos), dtype=np.int64)
        np.cumsum(lengths[:-1], out=seg[1:])
        idx = np.repeat(starts, lengths) + np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(seg, lengths)
        return np.unique(rows_sorted[idx])

    def _nearest_values(self, q: np.ndarray, k: int) -> tuple[np.ndarray, float]:
        """(value positions of the ~k values nearest ``q``, theta): every other value scores <= theta."""
        norm = float(np.linalg.norm(q))
        if k >= self.n_values or norm == 0.0:
            return np.arange(self.n_values), -np.inf
        index = self._value_index()
        try:
            m = index.search(q / norm, k)
        except (RuntimeError, ValueError) as exc:  # a file that restored but whose graph is damaged
            raise damaged_index(self.ws, str(exc)) from None
        keys = np.asarray(m.keys, dtype=np.int64)[: int(getattr(m, "count", len(m.keys)))]
        dists = np.asarray(m.distances, dtype=np.float64)[: len(keys)]
        if len(keys) < k:  # the index holds fewer than k vectors: every value is a candidate
            return np.arange(self.n_values), -np.inf
        theta = (1.0 - float(dists.max())) * norm
        pos = scoring.positions(self.value_keys, keys)
        return pos[pos >= 0], theta

    def _approximate(self, q: QueryVectors, ds_scores: np.ndarray, banned_ds: np.ndarray,
                     banned: np.ndarray | None, w: tuple[float, float, float], top: int, cap: int | None,
                     dedupe: bool
                     ) -> tuple[np.ndarray, scoring.CellIndex, scoring.Scores, np.ndarray, bool]:
        """Rank from usearch candidates, widening them until the list is provably exact (or rounds run out).

        Returns the candidate row positions, their CellIndex, their scores, the kept positions (in that
        index) and whether the list is proven exact.
        """
        allowed_ds = ~banned_ds
        if not allowed_ds.any():  # every dataset is banned: the empty list is the exact answer
            empty = scoring.sub_index(self.index, np.empty(0, dtype=np.int64))
            none = np.empty(0, dtype=np.float32)
            return (np.empty(0, dtype=np.int64), empty, scoring.Scores(none, none, none, none, none, none),
                    np.empty(0, dtype=np.int64), True)
        ds_max = float(ds_scores[allowed_ds].max())
        q_in, q_out = q.q_in, q.q_out
        k = max(APPROX_MIN_CANDIDATES, APPROX_FACTOR * top)
        for round_ in range(1, APPROX_MAX_ROUNDS + 1):
            cand_in, theta_in = self._nearest_values(q_in, k)
            cand_out, theta_out = self._nearest_values(q_out, k)
            rows = self._rows_of_values(np.union1d(cand_in, cand_out))
            rows = rows[~banned[rows]] if banned is not None else rows
            sub = scoring.sub_index(self.index, rows)
            # the same per-value scores as the exact path, bit for bit (see scoring.value_scores)
            scores = subsets.score_subset(self.values, sub, q_in, q_out, ds_scores, w)
            kept = scoring.select_ranked(sub, scores, None, top, cap, dedupe)
            bound = scoring.outside_bound(theta_in, theta_out, ds_max, w)
            everything = not np.isfinite(theta_in) and not np.isfinite(theta_out)
            if everything:
                exact = True
            elif len(kept) >= top:
                exact = float(scores.final[kept[-1]]) > bound + BOUND_EPS
            else:  # fewer than top rows among the candidates: an outside row could still make the list
                exact = False
            if exact or k >= self.n_values or round_ == APPROX_MAX_ROUNDS:
                return rows, sub, scores, kept, exact or k >= self.n_values
            k = min(self.n_values, k * 4)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- for searches built on this one (a refinement round's, engine.retrieval.refine) -----------
    @property
    def signature(self) -> tuple[Any, ...]:
        """What the loaded datastore was (the datasets' count, ids and newest time; see :meth:`is_stale`)."""
        return self._signature

    def nearest_values(self, q: np.ndarray, k: int) -> tuple[np.ndarray, float]:
        """Positions of about ``k`` values nearest ``q`` (usearch) and theta: every other value scores at most
        theta (every value and -inf when ``k`` covers them). EngineError for a missing or damaged index."""
        return self._nearest_values(q, k)

    def rows_of_values(self, value_pos: np.ndarray) -> np.ndarray:
        """Row positions holding any of the values ``value_pos`` (sorted, unique)."""
        return self._rows_of_values(value_pos)

    # -- results -------------------------------------------------------------------------
    def _hits(self, rows: np.ndarray, scored: scoring.CellIndex, scores: scoring.Scores, kept: np.ndarray,
              fetch_rows: bool) -> tuple[RowHit, ...]:
        """RowHits of the kept positions of ``scored`` (whose rows are this retriever's rows ``rows``)."""
        if len(kept) == 0:
            return ()
        g = rows[kept]
        best_in = scoring.segment_argmax(scores.cell_in, scored.offsets, kept)
        best_out = scoring.segment_argmax(scores.cell_out, scored.offsets, kept)
        cell_value, cell_column = scored.cell_value, scored.cell_column
        v_in, v_out = self.value_keys[cell_value[best_in]], self.value_keys[cell_value[best_out]]
        keys = self.index.row_keys[g]
        with self.ws.store.cursor() as cur:
            texts = dict(cur.execute(
                "select id, text from cell_values where id in (select unnest(?::bigint[]))",
                [np.union1d(v_in, v_out).tolist()]).fetchall())
            data: dict[int, Any] = {}
            if fetch_rows:
                data = {int(k): v for k, v in cur.execute(
                    "select id, data from rows where id in (select unnest(?::bigint[]))",
                    [keys.tolist()]).fetchall()}
        cols = self.index.columns
        hits = []
        for rank, (i, gi) in enumerate(zip(kept.tolist(), g.tolist(), strict=True), 1):
            config, split = self._configs.get(int(self._row_config[gi]), ("", ""))
            raw = data.get(int(keys[rank - 1]))
            hits.append(RowHit(
                rank=rank, key=int(keys[rank - 1]), dataset_id=self.dataset_ids[int(self.index.row_dataset[gi])],
                config=config, split=split, row_id=int(self._row_source_id[gi]),
                score=float(scores.final[i]), input_score=float(scores.input[i]),
                output_score=float(scores.output[i]), dataset_score=float(scores.dataset[i]),
                input_column=cols[int(cell_column[best_in[rank - 1]])],
                output_column=cols[int(cell_column[best_out[rank - 1]])],
                input_text=texts.get(int(v_in[rank - 1]), ""), output_text=texts.get(int(v_out[rank - 1]), ""),
                row=json.loads(raw) if isinstance(raw, str) else (raw or {})))
        return tuple(hits)

