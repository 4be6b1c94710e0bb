"""Benchmark: a refinement round's retrieval, reusing the task's stored scores, vs a full rescore.

    python bench/refine.py                                   # a synthetic workspace of 100k values (cached)
    python bench/refine.py --values 300000 --failures 40
    python bench/refine.py --workspace WS --task ../shared/data/tasks/mnli.json   # a real ingested workspace

A round scores the datastore's rows with the failures as examples beside the task's own
(engine/retrieval/refine.py). "full" rescores every distinct value and row for the combined queries, as a
plain retrieval would; "round" reads the task's stored per-row scores and rescores only the rows near the
failures plus those whose bound still reaches the round's N-th score. "cold" is the round's first run (the
stored scores are made: one pass over the datastore, the cost of a full rescore once per task and
datastore), "warm" every later round. Both give the same rows in the same order (checked).

The synthetic workspace has bench/retrieve.py's structure (rows of 2-4 cells, 30 % of values shared, 200
datasets) with clustered vectors (each value near one of 2,000 centres, so queries have real neighbours); the
query texts' vectors are stored in the workspace, so no embedding model is loaded. The failures' vectors are
near ``--spread`` centres: 2 is a task whose failures share a topic and an answer vocabulary, 7 failures of
many kinds, whose mean query is short and whose nearest values hardly stand out (the bound prunes least). The values' usearch index
is built once (about a minute per 100k values here) and cached under ~/.cache/rebase-tui-bench.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
from _common import insert_tables  # also puts the repository on the import path

CENTRES = 2000
DIM = 384


def _unit(m: np.ndarray) -> np.ndarray:
    return (m / np.linalg.norm(m, axis=-1, keepdims=True)).astype(np.float32)


def synthetic_workspace(n_values: int) -> Path:
    """A cached workspace of ``n_values`` clustered values (see the module docstring)."""
    import pyarrow as pa
    from retrieve import N_DATASETS, synthetic_store

    from engine.datastore.vindex import VectorLog, log_path, sync_usearch
    from engine.workspace import Workspace

    path = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rebase-tui-bench" / f"refine-{n_values}"
    if (path / "READY").exists():
        return path
    if path.exists():
        import shutil

        shutil.rmtree(path)
    t0 = time.perf_counter()
    print(f"building {path} ({n_values:,} values)…", flush=True)
    _, index, desc = synthetic_store(n_values)
    rng = np.random.default_rng(7)
    centres = _unit(rng.standard_normal((CENTRES, DIM)))
    values = _unit(centres[rng.integers(0, CENTRES, n_values)] + 0.9 * _unit(rng.standard_normal((n_values, DIM))))
    ids = np.arange(1, N_DATASETS + 1)
    keys = index.row_keys + 1
    tables = {
        "datasets": pa.table({"id": ids, "name": [f"synthetic/ds{i:03d}" for i in ids], "source_path": [""] * len(ids),
                              "description": [f"synthetic dataset {i}" for i in ids], "status": ["ready"] * len(ids)}),
        "configs": pa.table({"id": ids, "dataset": ids, "name": ["default"] * len(ids), "split": ["train"] * len(ids),
                             "status": ["ready"] * len(ids)}),
        "rows": pa.table({"id": keys, "dataset": index.row_dataset + 1, "config": index.row_dataset + 1,
                          "row_id": keys, "data": ['{"c0": "synthetic"}'] * len(keys)}),
        "cell_values": pa.table({"id": np.arange(n_values), "text": np.char.add("v", np.arange(n_values).astype(str)),
                                 "hash": np.char.add("h", np.arange(n_values).astype(str))}),
        "cells": pa.table({"row": np.repeat(keys, np.diff(index.offsets)),
                           "column": np.char.add("c", index.cell_column.astype(str)), "value": index.cell_value}),
    }
    with Workspace(path) as ws:
        insert_tables(ws, tables)
        ws.store.set_meta("embedder.name", "sentence-transformers/all-MiniLM-L6-v2")
        ws.store.set_meta("embedder.dim", str(DIM))
        VectorLog(log_path(ws, "values"), DIM).append(np.arange(n_values, dtype=np.uint64), values)
        VectorLog(log_path(ws, "descriptions"), DIM).append(ids.astype(np.uint64), desc)
        sync_usearch(ws, "values")
    (path / "READY").write_text(str(n_values), encoding="utf-8")
    print(f"  built in {time.perf_counter() - t0:.0f} s", flush=True)
    return path


def synthetic_queries(ws, n_failures: int, spread: int):
    """A task and its failures whose texts' vectors are stored in the workspace: the failures' inputs near
    ``spread`` centres, their outputs near ``spread`` others (a task's failures share a topic and their
    answers repeat: a small spread; failures of many kinds: a large one)."""
    from engine.retrieval.query_store import store_queries
    from engine.retrieval.refine import Failure
    from engine.tasks import Demonstration, Task

    rng = np.random.default_rng(11)
    centres = _unit(np.random.default_rng(7).standard_normal((CENTRES, DIM)))

    def near(c: int) -> np.ndarray:
        return _unit(centres[c] + 0.7 * _unit(rng.standard_normal(DIM)))

    task = Task("synthetic", "a synthetic task", tuple(Demonstration(f"in {i}", f"out {i}") for i in range(3)))
    fails = [Failure(f"failure in {i} of {spread}", f"failure out {i} of {spread}") for i in range(n_failures)]
    vectors = {"a synthetic task": near(0)}
    vectors |= {d.input: near(1 + i) for i, d in enumerate(task.examples)}
    vectors |= {d.output: near(4 + i) for i, d in enumerate(task.examples)}
    vectors |= {f.input: near(10 + i % spread) for i, f in enumerate(fails)}
    vectors |= {f.output: near(100 + i % spread) for i, f in enumerate(fails)}
    store_queries(ws, ws.store.get_meta("embedder.name"), vectors, 100_000)
    return task, fails


def real_queries(task_file: str, n_failures: int):
    """A real task and its failures: the first demonstrations' worth of teacher outputs as wrong answers."""
    from engine.retrieval.refine import Failure
    from engine.tasks import read_task_file

    task = read_task_file(Path(task_file))
    outputs = Path(task_file).parent.parent / "teacher_outputs" / f"{task.name}.jsonl"
    rows = [json.loads(line) for line in outputs.read_text(encoding="utf-8").splitlines()[:n_failures]]
    return task, [Failure(r["input"], r["output"]) for r in rows]


def timed(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def run(ws_path: Path, task_file: str | None, n_failures: int, top: int, pool: int, repeats: int,
        spread: int = 0) -> None:
    from engine.retrieval import refine
    from engine.retrieval.pool import pool_keys, store_pool
    from engine.retrieval.retriever import Retriever
    from engine.workspace import Workspace

    with Workspace(ws_path) as ws:
        task, fails = real_queries(task_file, n_failures) if task_file else synthetic_queries(ws, n_failures, spread)
        t = time.perf_counter()
        retriever = Retriever(ws, threads=1)
        spread_note = f" spread over {spread} centres" if spread else ""
        print(f"\n## {ws_path}: {retriever.n_values:,} values, {retriever.index.n_rows:,} rows "
              f"(loaded in {time.perf_counter() - t:.1f} s); {len(fails)} failures{spread_note}, a round of {top} "
              f"rows, a pool of {pool}", flush=True)
        store_pool(ws, task, retriever.search(task, top=pool, fetch_rows=False))
        in_pool = pool_keys(ws, task.name)

        def round_(full: bool) -> refine.RoundRetrieval:
            return refine.refine_search(retriever, task, fails, top=top, exclude_rows=in_pool, full=full)

        round_(True)                                                           # query vectors cached
        t_full, full = timed(lambda: round_(True), repeats)
        for stale in (ws.index_dir / refine.SCORES_DIR).glob("*.npz"):
            stale.unlink()
        t_cold, cold = timed(lambda: round_(False), 1)
        t_warm, warm = timed(lambda: round_(False), repeats)
        same = [h.key for h in full.hits] == [h.key for h in warm.hits] == [h.key for h in cold.hits]
        print(f"full rescore        {t_full * 1000:8.1f} ms   {full.rescored:>9,} rows scored")
        print(f"round, cold         {t_cold * 1000:8.1f} ms   {cold.rescored:>9,} rows scored (task scores made)")
        print(f"round, warm         {t_warm * 1000:8.1f} ms   {warm.rescored:>9,} rows scored (task scores reused: "
              f"{warm.stored_reused})")
        print(f"ratio full/warm: {t_full / t_warm:.1f}x   same rows in the same order: {same}   "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
        if not same:
            raise SystemExit("the round's rows differ from a full rescore")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--values", type=int, nargs="+", default=[100_000], help="synthetic workspace sizes")
    p.add_argument("--workspace", help="a real ingested workspace instead (with --task)")
    p.add_argument("--task", help="a task file (its folder's ../teacher_outputs/<name>.jsonl gives the failures)")
    p.add_argument("--failures", type=int, default=20)
    p.add_argument("--spread", type=int, nargs="+", default=[2, 7],
                   help="synthetic failures: the centres their inputs (and their outputs) are near")
    p.add_argument("--top", type=int, default=100, help="rows the round adds")
    p.add_argument("--pool", type=int, default=1000, help="the task's pool before the round")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    if args.workspace:
        if not args.task:
            raise SystemExit("--workspace needs --task FILE")
        run(Path(args.workspace), args.task, args.failures, args.top, args.pool, args.repeats)
        return
    for n in args.values:
        for spread in args.spread:
            run(synthetic_workspace(n), None, args.failures, args.top, args.pool, args.repeats, spread)


if __name__ == "__main__":
    main()
