"""The ``--compact`` part of bench/retrieve.py: exact retrieval from the int8 copy at millions of values.

For each size N it writes N synthetic values (random unit vectors, 384 dimensions) straight to a value log on
disk, block by block (never an N x 384 float32 array in memory), builds the int8 copy from the log as a
workspace does (:func:`engine.retrieval.compact.open_compact`), draws the row/cell structure of
bench/retrieve.py's synthetic stores, and times :meth:`engine.retrieval.compact_search.CompactSearch.rank`
(int8 scan, bounds, float32 re-scoring of the rows that can still win, top N). Beside it, the float32 exhaustive
scan (:func:`engine.retrieval.scoring.score_rows`) of the same data: from memory where the matrix fits in the
memory available, else streamed from the log; the two lists must be equal (same rows, same order,
scores within 1e-6).

Resident memory is the process's peak resident set (Linux VmHWM, reset before the queries): everything the
search holds (int8 codes, row structure, buffers) plus the interpreter, as the goal counts it.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.datastore.vindex import VectorLog
from engine.retrieval import compact, scoring, subsets
from engine.retrieval.compact_search import CompactSearch

GIB = 2 ** 30


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def _mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def write_log(path: Path, n: int, dim: int, seed: int, say: Any) -> None:
    """N random unit vectors (keys 0..N-1) appended to a value log in blocks of 2^18."""
    rng = np.random.default_rng([seed, 0])
    vlog = VectorLog(path, dim)
    block = 1 << 18
    t0 = time.perf_counter()
    for a in range(0, n, block):
        m = min(block, n - a)
        vec = rng.standard_normal((m, dim), dtype=np.float32)
        vec /= np.linalg.norm(vec, axis=1, keepdims=True)
        vlog.append(np.arange(a, a + m, dtype=np.uint64), vec)
        if a // block % 8 == 7:
            say(f"  wrote {a + m:,} of {n:,} vectors ({time.perf_counter() - t0:.0f} s)")


def bench_compact(n: int, top: int, repeats: int, folder: Path | None, as_json: bool, structure: Any,
                  baseline: bool = True, dim: int = 384) -> dict[str, Any]:
    """Measure one size (see the module docstring); ``structure(n_values, rng)`` draws the cell index and the
    dataset description vectors; ``baseline=False`` skips the float32 scan. Returns the ``--json`` record."""
    def say(line: str) -> None:
        print(line, file=sys.stderr if as_json else sys.stdout, flush=True)

    own = folder is None
    root = Path(tempfile.mkdtemp(prefix="rebase-compact-")) if folder is None else folder / f"n{n}"
    root.mkdir(parents=True, exist_ok=True)
    try:
        log_path = root / "values.vectors"
        t0 = time.perf_counter()
        if VectorLog(log_path, recover=False).count != n:
            log_path.unlink(missing_ok=True)
            write_log(log_path, n, dim, 0, say)
        t_write = time.perf_counter() - t0
        t0 = time.perf_counter()
        cv = compact.open_compact(log_path, root / compact.FOLDER)
        t_build = time.perf_counter() - t0
        index, desc = structure(n, np.random.default_rng([0, 1]))
        searcher = CompactSearch.build(cv, index, len(desc))
        rng = np.random.default_rng(1)
        ex_in, ex_out, instr = (_unit(rng, 3, dim), _unit(rng, 3, dim), _unit(rng, 1, dim)[0])
        q_in, q_out = scoring.mean_query(ex_in), scoring.mean_query(ex_out)
        ds_scores = (desc @ instr).astype(np.float32)
        banned, w = np.zeros(len(desc), dtype=bool), (1.0, 1.0, 1.0)
        say(f"\n## compact: {n:,} values, {index.n_cells:,} cells, {index.n_rows:,} rows (log "
            f"{log_path.stat().st_size / GIB:.1f} GiB, written in {t_write:.0f} s; int8 copy ready in "
            f"{t_build:.0f} s)")
        t0 = time.perf_counter()
        searcher.rank(q_in, q_out, ds_scores, banned, w, top, None, False)
        first = time.perf_counter() - t0
        _reset_peak()
        walls, cpus = [], []
        ranked = None
        for _ in range(repeats):
            t, c = time.perf_counter(), time.process_time()
            ranked = searcher.rank(q_in, q_out, ds_scores, banned, w, top, None, False)
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
        assert ranked is not None
        rss = _status("VmHWM")
        got_rows, got_scores, flagged = ranked.rows[ranked.kept], ranked.scores.final[ranked.kept], ranked.exact
        wall, cpu = statistics.median(walls), statistics.median(cpus)
        say(f"compact (int8 scan + float32 re-score) top{top}: {wall * 1000:7.0f} ms wall {cpu * 1000:7.0f} ms cpu "
            f"(first query {first * 1000:.0f} ms)   resident {rss / GIB:.2f} GiB   re-scored {ranked.rescored:,} "
            f"rows   exact: {ranked.exact}   load average {os.getloadavg()[0]:.1f}")
        record = {"size": n, "exact": flagged, "wall_ms": round(wall * 1000, 1), "rss_gib": round(rss / GIB, 3),
                  "cpu_ms": round(cpu * 1000, 1), "first_ms": round(first * 1000, 1), "rescored": ranked.rescored,
                  "load_average": os.getloadavg()[0], "equal": None}
        if not baseline:
            return record
        source = cv.source
        del searcher, cv, ranked
        gc.collect()
        ref = _float32_scan(source, log_path, index, q_in, q_out, ds_scores, top, dim, say)
        equal = (np.array_equal(got_rows, ref["rows"])
                 and bool(np.allclose(got_scores, ref["scores"], rtol=0, atol=1e-6)))
        say(f"lists equal: {equal}   (scores identical bit for bit: {np.array_equal(got_scores, ref['scores'])})")
        return record | {"exact": flagged and equal, "equal": equal, "float32": ref["how"],
                         "float32_wall_ms": round(ref["wall"] * 1000, 1), "float32_rss_gib": round(ref["rss"] / GIB, 3)}
    finally:
        if own:
            shutil.rmtree(root, ignore_errors=True)


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _float32_scan(source: Any, log_path: Path, index: scoring.CellIndex, q_in: np.ndarray,
                  q_out: np.ndarray, ds_scores: np.ndarray, top: int, dim: int, say: Any) -> dict[str, Any]:
    """The exhaustive float32 scan: in memory when the matrix fits in half the memory available, else streamed
    from the log (each value's score is the same bit for bit either way)."""
    n = source.shape[0]
    fits = n * dim * 4 < _mem_available() // 2
    if fits:
        rec = np.dtype([("key", "<u8"), ("vec", "<f4", (dim,))])
        values = np.ascontiguousarray(np.fromfile(log_path, dtype=rec, count=n, offset=16)["vec"])
        how = "in memory"
    else:
        values, how = source, "streamed from the log"
    _reset_peak()
    t = time.perf_counter()
    if fits:
        s = scoring.score_rows(values, index, q_in, q_out, ds_scores)
    else:  # the same value scores block by block, then the same row maxima
        queries = np.stack([q_in, q_out])
        per_value = np.concatenate([scoring.value_scores(values[a:a + (1 << 18)], queries)
                                    for a in range(0, n, 1 << 18)], axis=1)
        s = subsets.scores_from_values(index, np.arange(n), per_value, ds_scores)
    order = scoring.top_candidates(s.final, index.row_keys, top)
    wall = time.perf_counter() - t
    rss = _status("VmHWM")
    say(f"float32 scan ({how}) top{top}: {wall * 1000:7.0f} ms wall   resident {rss / GIB:.2f} GiB")
    return {"rows": order, "scores": s.final[order], "how": how, "wall": wall, "rss": rss}


def print_json(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)
