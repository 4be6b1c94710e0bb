"""Benchmark: end-to-end ingest vs. the physical limit (embedding alone) and vs. the paper's way; the
embedding paths (backend × precision) against torch float32; the Ray path's overhead.

    python bench/ingest.py                          # every 16th dataset folder of ../shared/data/datastore
    python bench/ingest.py --every 8                # a larger subset (28 datasets, 7,288 distinct values)
    python bench/ingest.py --every 1 --skip-paper   # the whole datastore (about 30 min on 2 cores)
    python bench/ingest.py --paths                  # values/s and ranking overlap per backend and precision
    python bench/ingest.py --ray                    # the Ray path vs. in-process, same cores and precision

``--paths`` and ``--ray`` embed a fixed sample of real values: the first ``--values`` (3,000) distinct cell
texts of ../shared/data/datastore in md5 order (a stable, content-blind sample), batches sorted by length.
"overlap" is the share of the float32 top-100 neighbours a path keeps, over 30 queries (the 24 task
instructions of ../shared/data/tasks and the first inputs of the first 6 tasks, embedded in float32 as
retrieval does). Model load and one warm-up batch are excluded; the rate is values per wall-clock second
(CPU seconds are printed too: steadier on a shared machine).

The default mode times the ingest. The subset is fixed: the dataset folders of ../shared/data/datastore
sorted by name, every N-th one starting with the first, all rows (``--max-rows-per-config 0``). One
process, one preloaded embedder (model load excluded everywhere), the same batch size and thread count
for every measurement:

* ingest  — ``engine.datastore.ingest.ingest`` into a fresh temporary workspace: read, stage in DuckDB, embed every
  distinct value and description once, write the vector log, build the usearch files;
* alone   — ``Embedder.encode`` of exactly the distinct texts that ingest embedded (values + descriptions):
  the physical limit of this machine. Ratio (a) = ingest / alone (goal ≤ 1.25);
* paper   — embedding every non-empty cell, duplicates included (what the paper's pipeline does).
  Ratio (b) = paper / ingest.

Prints rows/s, values embedded/s, peak RSS (whole process, model included), and both ratios.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from _common import SHARED_DATA
from embed_paths import run_paths, run_ray

from engine.datastore.embed import load_embedder, set_torch_threads
from engine.datastore.ingest import IngestDone, IngestSummary, ingest
from engine.events import Progress
from engine.workspace import Workspace

DATASTORE = SHARED_DATA / "datastore"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def subset(root: Path, every: int) -> list[Path]:
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    return folders[::every]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datastore", type=Path, default=DATASTORE)
    ap.add_argument("--every", type=int, default=16, help="take every N-th dataset folder (default 16)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores, as the CLI)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--skip-paper", action="store_true", help="do not time the paper's every-cell embedding")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON document")
    ap.add_argument("--paths", action="store_true", help="values/s and overlap per backend and precision")
    ap.add_argument("--ray", action="store_true", help="the Ray path's overhead vs. in-process")
    ap.add_argument("--values", type=int, default=3000, help="sample size for --paths and --ray (default 3000)")
    ap.add_argument("--precision", default="auto", help="precision for --ray (default auto)")
    args = ap.parse_args()
    if not args.datastore.is_dir():
        print(f"bench/ingest.py: {args.datastore} not found (the shared data folder sits beside the repo)",
              file=sys.stderr)
        return 2
    if args.paths:
        return run_paths(args)
    if args.ray:
        return run_ray(args)
    folders = subset(args.datastore, args.every)
    threads = set_torch_threads(args.threads)
    embedder = load_embedder("all-MiniLM-L6-v2", args.device)
    embedder.encode(["warm up the model once"] * 8, batch_size=8)

    with tempfile.TemporaryDirectory(prefix="rebase-bench-") as tmp:
        ws = Workspace(Path(tmp) / "ws")
        c0 = time.process_time()
        t0 = time.perf_counter()
        stages: dict[str, float] = {}
        last_stage, last_t = None, t0
        summary: IngestSummary | None = None
        for ev in ingest(ws, folders, max_rows_per_config=0, embedder=embedder, batch_size=args.batch_size):
            if isinstance(ev, Progress) and ev.stage != last_stage:
                now = time.perf_counter()
                if last_stage:
                    stages[last_stage] = stages.get(last_stage, 0.0) + now - last_t
                last_stage, last_t = ev.stage, now
            if isinstance(ev, IngestDone):
                summary = ev.summary
        t_ingest = time.perf_counter() - t0
        c_ingest = time.process_time() - c0
        assert summary is not None, "ingest always ends with IngestDone"
        counts = summary.totals
        if last_stage:
            stages[last_stage] = stages.get(last_stage, 0.0) + time.perf_counter() - last_t
        rss_ingest = peak_rss_mb()
        with ws.store.cursor() as cur:
            texts = [r[0] for r in cur.execute("select text from cell_values order by id").fetchall()]
            texts += [r[0] for r in cur.execute("select description from datasets order by id").fetchall()]
            cells = [r[0] for r in cur.execute(
                'select v.text from cells c join cell_values v on v.id = c.value order by c."row"').fetchall()]
        ws.close()

    c0, t0 = time.process_time(), time.perf_counter()
    embedder.encode(texts, batch_size=args.batch_size)
    t_alone, c_alone = time.perf_counter() - t0, time.process_time() - c0
    t_paper = c_paper = None
    if not args.skip_paper:
        c0, t0 = time.process_time(), time.perf_counter()
        embedder.encode(cells, batch_size=args.batch_size)
        t_paper, c_paper = time.perf_counter() - t0, time.process_time() - c0

    result = {
        "subset": f"every {args.every}th folder of {args.datastore} ({len(folders)} datasets), all rows",
        "device": embedder.device, "threads": threads, "batch_size": args.batch_size,
        "datasets": counts.datasets, "rows": counts.rows, "cells": counts.cells,
        "values": counts.values, "vectors": counts.vectors,
        "ingest_s": round(t_ingest, 2), "stages_s": {k: round(v, 2) for k, v in stages.items()},
        "embed_alone_s": round(t_alone, 2), "paper_every_cell_s": round(t_paper, 2) if t_paper else None,
        "rows_per_s": round(counts.rows / t_ingest, 1),
        "values_embedded_per_s": round(len(texts) / t_ingest, 1),
        "peak_rss_mb_after_ingest": round(rss_ingest, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
        "ratio_a_ingest_over_embed_alone": round(t_ingest / t_alone, 3),
        "ratio_b_paper_over_ingest": round(t_paper / t_ingest, 3) if t_paper else None,
        "cpu_s": {"ingest": round(c_ingest, 2), "embed_alone": round(c_alone, 2),
                  "paper": round(c_paper, 2) if c_paper else None},
        "ratio_a_cpu": round(c_ingest / c_alone, 3),
        "ratio_b_cpu": round(c_paper / c_ingest, 3) if c_paper else None,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"subset            {result['subset']}")
    print(f"machine           {embedder.device}, {threads} torch thread(s), batch size {args.batch_size}")
    print(f"ingested          {result['datasets']} datasets, {result['rows']:,} rows, {result['cells']:,} cells, "
          f"{result['values']:,} distinct values ({len(texts):,} texts with descriptions)")
    print(f"ingest            {t_ingest:8.2f} s   stages {result['stages_s']}")
    print(f"  rows/s          {result['rows_per_s']:8.1f}")
    print(f"  values embedded/s {result['values_embedded_per_s']:6.1f}")
    print(f"  peak RSS        {rss_ingest:8.1f} MB (model included)")
    print(f"embed alone       {t_alone:8.2f} s   (same {len(texts):,} texts, same model and batch size)")
    print(f"ratio (a)         {result['ratio_a_ingest_over_embed_alone']:8.3f}   ingest / embed alone, wall time "
          f"(goal <= 1.25); CPU time {result['ratio_a_cpu']:.3f}")
    if t_paper:
        print(f"paper's way       {t_paper:8.2f} s   (embedding all {len(cells):,} cells, duplicates included)")
        print(f"ratio (b)         {result['ratio_b_paper_over_ingest']:8.3f}   paper / ingest, wall time; CPU time "
              f"{result['ratio_b_cpu']:.3f}")
    print("(CPU time = this process's user+system seconds: steadier than wall time on a shared machine)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
