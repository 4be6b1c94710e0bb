"""Benchmark: latency of one ReBase retrieval query, ours vs the paper's method, in the same process.

    python bench/retrieve.py                               # synthetic 1M and 5M values
    python bench/retrieve.py --sizes 110000 1000000        # other synthetic sizes
    python bench/retrieve.py --sizes --structure ../shared/data/datastore      # the shared datastore's shape
    python bench/retrieve.py --workspace WS --tasks ../shared/data/tasks/{mnli,squad,boolean_expressions}.json
    python bench/retrieve.py --sizes 1000000 10000000 --compact [--json]   # exact from the int8 copy

Synthetic stores: N distinct values (random unit vectors, 384 dimensions), 30% of them shared between rows
(each shared value appears in 2-4 rows), rows of 2-4 cells (about 3), 200 datasets. A workspace store is a
real ingested datastore (``rebase-tui ingest``); its tasks' query embedding is timed apart from scoring and the
model load is excluded.

"ours" = engine.retrieval.scoring: one blocked matrix-vector pass over the distinct values, a segment maximum per row,
dataset score, weighted mean, top N. "paper" = what the ReBase code does: torch cosine similarity of every
cell's embedding with every example, mean over examples, then a per-row maximum (scatter amax), top N.
Both give the same top N (checked). Peak memory is what one query allocates on top of the loaded store:
numpy buffers through tracemalloc for ours, the peak resident set above the start (Linux VmHWM, reset
through /proc/self/clear_refs) for torch, whose allocator tracemalloc cannot see.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # torch's idle OpenMP threads must not spin against BLAS

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.retrieval import scoring  # noqa: E402

DIM = 384
N_DATASETS = 200


# -- memory ---------------------------------------------------------------------------------------
def _status(field: str) -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def reset_peak() -> int:
    """Reset the peak-RSS counter; return the current RSS in bytes."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return _status("VmRSS")


def peak_above(base: int) -> int:
    return max(0, _status("VmHWM") - base)


def mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


# -- synthetic store ------------------------------------------------------------------------------
def unit_vectors(rng: np.random.Generator, n: int, dim: int = DIM, block: int = 1 << 18) -> np.ndarray:
    out = np.empty((n, dim), dtype=np.float32)
    for s in range(0, n, block):
        blk = rng.standard_normal((min(block, n - s), dim), dtype=np.float32)
        blk /= np.linalg.norm(blk, axis=1, keepdims=True)
        out[s:s + len(blk)] = blk
    return out


def synthetic_store(n_values: int, seed: int = 0) -> tuple[np.ndarray, scoring.CellIndex, np.ndarray]:
    """(values, cell index, dataset description vectors) as described in the module docstring."""
    rng = np.random.default_rng(seed)
    values = unit_vectors(rng, n_values)
    index, desc = synthetic_structure(n_values, rng)
    return values, index, desc


def synthetic_structure(n_values: int, rng: np.random.Generator) -> tuple[scoring.CellIndex, np.ndarray]:
    """(cell index, dataset description vectors) of a synthetic store of ``n_values`` values."""
    shared = rng.random(n_values) < 0.30
    repeats = np.where(shared, rng.integers(2, 5, n_values), 1)
    cell_value = rng.permutation(np.repeat(np.arange(n_values, dtype=np.int64), repeats))
    sizes = rng.integers(2, 5, len(cell_value) // 2 + 1)
    sizes = sizes[: int(np.searchsorted(np.cumsum(sizes), len(cell_value))) + 1]
    sizes[-1] -= int(sizes.sum()) - len(cell_value)
    sizes = sizes[sizes > 0]
    n_rows = len(sizes)
    offsets = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    cell_column = (np.arange(len(cell_value)) - np.repeat(offsets[:-1], sizes)).astype(np.int32)
    index = scoring.CellIndex(np.arange(n_rows, dtype=np.int64), rng.integers(0, N_DATASETS, n_rows)
                              .astype(np.int32), offsets, cell_value, cell_column, ("c0", "c1", "c2", "c3"))
    return index, unit_vectors(rng, N_DATASETS)


def shared_structure_store(root: Path, seed: int = 0) -> tuple[np.ndarray, scoring.CellIndex, np.ndarray]:
    """The real row/cell/value structure of a datastore folder (e.g. ../shared/data/datastore: every
    ``<dataset>/<config>/train.parquet``, non-empty cells, distinct texts once) with random unit vectors in
    place of the embeddings: scoring cost depends on the structure, not on the vectors' content."""
    import pyarrow.parquet as pq

    value_of: dict[str, int] = {}
    cell_row, cell_value, cell_col, row_ds = [], [], [], []
    columns: dict[str, int] = {}
    datasets = sorted(p for p in root.iterdir() if p.is_dir())
    for d, folder in enumerate(datasets):
        for part in sorted(folder.glob("*/*.parquet")):
            for row in pq.read_table(part).to_pylist():
                r = len(row_ds)
                row_ds.append(d)
                for col, v in row.items():
                    if v is None or v == "":
                        continue
                    cell_row.append(r)
                    cell_value.append(value_of.setdefault(str(v), len(value_of)))
                    cell_col.append(columns.setdefault(col, len(columns)))
    rng = np.random.default_rng(seed)
    index = scoring.build_cell_index(np.array(cell_row), np.array(cell_value), np.array(cell_col), list(columns),
                                     np.arange(len(row_ds)), np.array(row_ds))
    return unit_vectors(rng, len(value_of)), index, unit_vectors(rng, len(datasets))


# -- the two methods ------------------------------------------------------------------------------
def ours(values, index, ex_in, ex_out, ds_scores, top):
    s = scoring.score_rows(values, index, scoring.mean_query(ex_in), scoring.mean_query(ex_out), ds_scores)
    order = scoring.top_candidates(s.final, index.row_keys, top)
    return order, s.final[order]


def paper(values, index, ex_in, ex_out, ds_scores, top, chunk=1 << 19, banned_rows=None):
    """The ReBase reference way: cos_sim(cells, examples) -> mean over examples -> per-row max (torch)."""
    import torch

    V = torch.from_numpy(values)
    n_rows = index.n_rows
    row_of_cell = torch.from_numpy(np.repeat(np.arange(n_rows), np.diff(index.offsets)))
    cell_value = torch.from_numpy(index.cell_value)
    xi, yo = torch.from_numpy(ex_in), torch.from_numpy(ex_out)

    def cos_sim(a, b):  # sentence_transformers.util.cos_sim
        a = torch.nn.functional.normalize(a, p=2, dim=1)
        b = torch.nn.functional.normalize(b, p=2, dim=1)
        return a @ b.T

    best_in = torch.full((n_rows,), -torch.inf)
    best_out = torch.full((n_rows,), -torch.inf)
    for s in range(0, len(cell_value), chunk):
        emb = V[cell_value[s:s + chunk]]
        rows = row_of_cell[s:s + chunk]
        best_in.scatter_reduce_(0, rows, cos_sim(emb, xi).mean(dim=1), reduce="amax")
        best_out.scatter_reduce_(0, rows, cos_sim(emb, yo).mean(dim=1), reduce="amax")
    final = (best_in + best_out + torch.from_numpy(ds_scores)[torch.from_numpy(index.row_dataset).long()]) / 3
    if banned_rows is not None:
        final[torch.from_numpy(banned_rows)] = -torch.inf
    res = torch.topk(final, min(top, n_rows))
    return res.indices.numpy(), res.values.numpy()


CPU: dict[str, float] = {}


def timed(fn, repeats, numpy_only=False):
    """(median wall seconds, peak extra memory in bytes, last result); the median CPU seconds (all threads)
    go to ``CPU["last"]``: on a busy machine wall time inflates, CPU time much less. Numpy work is measured
    with tracemalloc (numpy reports its buffers to it); torch's allocator is not, so it is measured by the
    peak RSS."""
    import tracemalloc

    times, cpu, out = [], [], None
    base = reset_peak()
    if numpy_only:
        tracemalloc.start()
    try:
        for _ in range(repeats):
            t, c = time.perf_counter(), time.process_time()
            out = fn()
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        CPU["last"] = statistics.median(cpu)
        peak = tracemalloc.get_traced_memory()[1] if numpy_only else peak_above(base)
    finally:
        if numpy_only:
            tracemalloc.stop()
    return statistics.median(times), peak, out


def bench_synthetic(n_values: int, top: int, repeats: int, baseline: bool, structure: Path | None = None) -> None:
    t = time.perf_counter()
    if structure is not None:
        values, index, desc = shared_structure_store(structure)
        what = f"structure of {structure} with random vectors"
    else:
        values, index, desc = synthetic_store(n_values)
        what = "synthetic"
    rng = np.random.default_rng(1)
    ex_in, ex_out, instr = unit_vectors(rng, 3), unit_vectors(rng, 3), unit_vectors(rng, 1)[0]
    ds_scores = (desc @ instr).astype(np.float32)
    print(f"\n## {what}: {len(values):,} values, {index.n_cells:,} cells, {index.n_rows:,} rows "
          f"(built in {time.perf_counter() - t:.0f} s; value matrix {mib(values.nbytes)})", flush=True)
    ours(values, index, ex_in, ex_out, ds_scores, top)  # warm-up
    t_ours, _, (o_idx, o_sc) = timed(lambda: ours(values, index, ex_in, ex_out, ds_scores, top), repeats)
    c_ours = CPU["last"]
    _, m_ours, _ = timed(lambda: ours(values, index, ex_in, ex_out, ds_scores, top), 1, numpy_only=True)
    print(f"ours   (exact)  score+top{top}: {t_ours * 1000:8.1f} ms wall  {c_ours * 1000:8.1f} ms cpu   "
          f"peak +{mib(m_ours)}", flush=True)
    if not baseline:
        return
    t_pap, m_pap, (p_idx, p_sc) = timed(lambda: paper(values, index, ex_in, ex_out, ds_scores, top),
                                        max(1, repeats // 3))
    print(f"paper  (torch)  score+top{top}: {t_pap * 1000:8.1f} ms wall  {CPU['last'] * 1000:8.1f} ms cpu   "
          f"peak +{mib(m_pap)}")
    k = min(100, len(o_sc))
    same = np.allclose(o_sc[:k], p_sc[:k], atol=1e-5) and set(o_idx[:k].tolist()) == set(p_idx[:k].tolist())
    print(f"ratio paper/ours: {t_pap / t_ours:.1f}x wall, {CPU['last'] / c_ours:.1f}x cpu   "
          f"top-{k} identical: {same}   load average {os.getloadavg()[0]:.1f}", flush=True)


def bench_workspace(path: str, task_files: list[str], top: int, repeats: int, baseline: bool) -> None:
    from engine.retrieval.retriever import Retriever
    from engine.tasks import read_task_file
    from engine.workspace import Workspace

    with Workspace(Path(path)) as ws:
        t = time.perf_counter()
        retriever = Retriever(ws)
        load = time.perf_counter() - t
        print(f"\n## workspace {path}: {retriever.n_values:,} values, {retriever.index.n_cells:,} cells, "
              f"{retriever.index.n_rows:,} rows (loaded in {load:.1f} s)", flush=True)
        t = time.perf_counter()
        retriever.warm()
        print(f"embedder load (excluded): {time.perf_counter() - t:.1f} s", flush=True)
        for f in task_files:
            task = read_task_file(Path(f))
            retriever.clear_query_cache()  # time a cold query embedding (the cache is only a cache)
            t = time.perf_counter()
            q = retriever.queries(task)
            embed = time.perf_counter() - t
            retriever.search(task, top=top)  # warm-up
            runs = [retriever.search(task, top=top) for _ in range(repeats)]
            t_ours = statistics.median(r.seconds["score"] for r in runs)
            t_all = statistics.median(sum(r.seconds.values()) for r in runs)
            res = runs[-1]
            _, m_ours, _ = timed(lambda task=task: retriever.search(task, top=top), 1, numpy_only=True)
            print(f"{task.name:24s} embed {embed * 1000:7.1f} ms   ours score+top{top} {t_ours * 1000:7.1f} ms "
                  f"(whole search with {len(res.rows)} rows fetched: {t_all * 1000:.1f} ms)   "
                  f"peak +{mib(m_ours)}", flush=True)
            if baseline:
                ds_scores = retriever.dataset_scores(q.instruction)
                banned = retriever.excluded(task.exclude)[retriever.index.row_dataset]
                t_pap, m_pap, (p_idx, p_sc) = timed(
                    lambda q=q, ds_scores=ds_scores, banned=banned: paper(
                        retriever.values, retriever.index, q.inputs, q.outputs, ds_scores, top,
                        banned_rows=banned), 1)
                k = min(100, len(res.rows))
                mine = np.array([r.score for r in res.rows[:k]])
                same = np.allclose(mine, p_sc[:k], atol=1e-5)
                print(f"{'':24s} paper (torch) {t_pap * 1000:8.1f} ms   peak +{mib(m_pap)}   "
                      f"ratio {t_pap / t_ours:.1f}x   top-{k} scores identical: {same}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="*", default=[1_000_000, 5_000_000],
                   help="synthetic store sizes in distinct values (default 1M 5M; none: skip)")
    p.add_argument("--structure", type=Path, help="also measure the row/cell structure of this datastore folder "
                   "(e.g. ../shared/data/datastore) with random vectors")
    p.add_argument("--workspace", help="also measure a real ingested workspace")
    p.add_argument("--tasks", nargs="*", default=[], help="task files for --workspace")
    p.add_argument("--top", type=int, default=3000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-baseline", action="store_true", help="skip the paper's method (with --compact: the "
                   "float32 scan)")
    p.add_argument("--compact", action="store_true", help="exact retrieval from the int8 copy: synthetic values "
                   "written to disk, beside the float32 scan (see bench/retrieve_compact.py)")
    p.add_argument("--dir", type=Path, help="with --compact: keep the generated files in this folder and reuse "
                   "them (default: a temporary folder, deleted)")
    p.add_argument("--json", action="store_true", help="with --compact: one JSON line per size "
                   '{"size", "exact", "wall_ms", "rss_gib", ...}; the report goes to stderr')
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (numpy: set "
                   "OPENBLAS_NUM_THREADS before starting)")
    args = p.parse_args()
    if args.compact:
        from retrieve_compact import bench_compact, print_json

        for n in args.sizes:
            record = bench_compact(n, args.top, args.repeats, args.dir, args.json, synthetic_structure,
                                   baseline=not args.no_baseline)
            if args.json:
                print_json(record)
        return
    import torch

    torch.set_num_threads(args.threads)
    print(f"# bench/retrieve.py  cpus={os.cpu_count()} torch threads={args.threads} "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'default')} top={args.top}")
    if args.workspace:
        bench_workspace(args.workspace, args.tasks, args.top, args.repeats, not args.no_baseline)
    if args.structure:
        bench_synthetic(0, args.top, args.repeats, not args.no_baseline, structure=args.structure)
    for n in args.sizes:
        bench_synthetic(n, args.top, args.repeats, not args.no_baseline)


if __name__ == "__main__":
    main()
