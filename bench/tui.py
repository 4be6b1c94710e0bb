"""TUI benchmark: keystroke-to-repainted-results latency of live retrieval, and time to first paint.

    python bench/tui.py                       # builds (once, cached) a workspace from a subset of
                                              # ../shared/data/datastore, then measures
    python bench/tui.py --workspace WS        # measure an existing workspace (e.g. the whole datastore)
    python bench/tui.py --synthetic 1000000   # a cached synthetic workspace of that many values (below)

Live retrieval: the app runs headless (``App.run_test``) on the Retrieve screen with the mnli task; 20 times,
one key is typed at the end of the instruction and the clock runs until the table shows the results of
that query and the screen has been repainted (``RetrieveScreen.painted_generation``). That includes the
debounce (``LiveRetrieval.debounce_s``), the query embedding, scoring, fetching the rows and the repaint.
A ``--synthetic N`` workspace has the structure of bench/retrieve.py's synthetic stores (N values, 200
datasets, rows of 2-4 cells) with random unit vectors, written straight into DuckDB and the value log (its log
is hard-linked from ``bench/retrieve.py --compact --dir DIR`` when ``--vectors-from DIR`` holds one of that
size); the typed queries are embedded by the real model, so scores are random but every cost is real. From
500k values the workspace searches through the int8 copy (``retrieval.compact = auto``).
The baseline, measured in the same process on the same queries, is the engine call alone
(``Retriever.search``); the ratio says what the UI adds.

First paint: a fresh ``python`` process constructs the app on that workspace and waits for its first
screen (headless); the baseline is a fresh process that only imports ``textual.app``. It also reports
whether torch was imported before the first paint (it must not be: the embedder loads in a warm-up
worker afterwards). Goals on the 2-core dev machine: median ≤ 300 ms, first paint ≤ 1.5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import REPO, SHARED_DATA, insert_tables

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
SHARED = SHARED_DATA
TASK_FILE = SHARED / "tasks" / "mnli.json"
TYPED = " Answer with one word please"


def build_workspace(n_datasets: int, max_rows: int) -> Path:
    """A cached workspace of the first ``n_datasets`` folders of ../shared/data/datastore."""
    from engine.datastore.embed import set_torch_threads
    from engine.datastore.ingest import run_ingest
    from engine.workspace import Workspace

    root = SHARED / "datastore"
    if not root.is_dir():
        sys.exit(f"{root} is missing: pass --workspace WS")
    folders = sorted(p for p in root.iterdir() if p.is_dir())[:n_datasets]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rebase-tui-bench"
    path = cache / f"tui-{n_datasets}x{max_rows}"
    done = path / "READY"
    if not done.exists():
        print(f"building {path} from {len(folders)} datasets of {root} (≤{max_rows} rows per config)…",
              flush=True)
        set_torch_threads(None)
        t0 = time.perf_counter()
        with Workspace(path) as ws:
            summary = run_ingest(ws, folders, max_rows_per_config=max_rows)
        done.write_text(str(summary.totals.values), encoding="utf-8")
        print(f"  built in {time.perf_counter() - t0:.0f} s", flush=True)
    return path


def synthetic_workspace(n_values: int, vectors_from: Path | None) -> Path:
    """A cached workspace of ``n_values`` synthetic values (see the module docstring)."""
    import numpy as np
    import pyarrow as pa
    from retrieve import N_DATASETS, synthetic_structure
    from retrieve_compact import write_log

    from engine.datastore.embed import load_embedder
    from engine.datastore.vindex import VectorLog, log_path
    from engine.workspace import Workspace

    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rebase-tui-bench"
    path = cache / f"tui-synthetic-{n_values}"
    if (path / "READY").exists():
        return path
    if path.exists():
        import shutil

        shutil.rmtree(path)
    t0 = time.perf_counter()
    print(f"building {path} ({n_values:,} synthetic values)…", flush=True)
    index, desc = synthetic_structure(n_values, np.random.default_rng([0, 1]))
    ids = np.arange(1, N_DATASETS + 1)
    first = index.cell_value[index.offsets[:-1]]
    tables = {
        "datasets": pa.table({"id": ids, "name": [f"synthetic/ds{i:03d}" for i in ids], "source_path": [""] * len(ids),
                              "description": [f"synthetic dataset {i}" for i in ids],
                              "description_generated": [False] * len(ids), "card": [None] * len(ids),
                              "status": ["ready"] * len(ids)}),
        "configs": pa.table({"id": ids, "dataset": ids, "name": ["default"] * len(ids), "split": ["train"] * len(ids),
                             "columns": [None] * len(ids), "rows_total": [0] * len(ids),
                             "status": ["ready"] * len(ids)}),
        "rows": pa.table({"id": index.row_keys, "dataset": index.row_dataset + 1, "config": index.row_dataset + 1,
                          "row_id": index.row_keys, "data": np.char.add(np.char.add('{"c0": "v', first.astype(str)),
                                                                        '"}')}),
        "cell_values": pa.table({"id": np.arange(n_values), "text": np.char.add("v", np.arange(n_values).astype(str)),
                                 "hash": np.char.add("h", np.arange(n_values).astype(str))}),
        "cells": pa.table({"row": np.repeat(index.row_keys, np.diff(index.offsets)),
                           "column": np.char.add("c", index.cell_column.astype(str)), "value": index.cell_value}),
    }
    with Workspace(path) as ws:
        insert_tables(ws, tables)
        ws.store.set_meta("embedder.name", load_embedder("all-MiniLM-L6-v2").name)
        ws.store.set_meta("embedder.dim", "384")
        values = log_path(ws, "values")
        source = vectors_from / f"n{n_values}" / "values.vectors" if vectors_from else None
        if source is not None and VectorLog(source, recover=False).count == n_values:
            os.link(source, values)
        else:
            write_log(values, n_values, 384, 0, print)
        VectorLog(log_path(ws, "descriptions"), 384).append(ids.astype(np.uint64), desc)
    (path / "READY").write_text(str(n_values), encoding="utf-8")
    print(f"  built in {time.perf_counter() - t0:.0f} s", flush=True)
    return path


async def live_latency(ws_path: Path, edits: int) -> dict[str, object]:
    """Keystroke → repainted results, ``edits`` times, and the engine-only baseline on the same queries."""
    from engine.tasks import add_task, read_task_file
    from engine.workspace import Workspace
    from rebase_tui.app import RebaseApp
    from rebase_tui.widgets.editor import PlainTextArea

    task = read_task_file(TASK_FILE)
    ws = Workspace(ws_path)
    add_task(ws, task, replace=True)
    app = RebaseApp(ws, stage="retrieve", task=task.name)
    latencies: list[float] = []
    engine: list[dict[str, float]] = []
    queries = []
    async with app.run_test(size=(140, 42)) as pilot:
        live, screen = app.live, app.screen
        t0 = time.perf_counter()
        while not (live.ready and screen.painted_generation == live.generation and screen.shown):
            if time.perf_counter() - t0 > 300:
                raise SystemExit(f"no results after 300 s: {live.warm_error}")
            await pilot.pause(0.05)
        rows, n_values = len(screen.shown.result.results), live.retriever.n_values
        # forget query vectors cached by an earlier run (the workspace keeps them), then embed the
        # examples again: each keystroke below then embeds only its new instruction, as in real use
        live.retriever.clear_query_cache(persistent=True)
        live.request(delay=0)
        while screen.painted_generation < live.generation:
            await pilot.pause(0.05)
        editor = screen.query_one("#rq-instruction", PlainTextArea)
        editor.focus()
        editor.move_cursor(editor.document.end)
        await pilot.pause(0.3)
        for i in range(edits):
            key = TYPED[i % len(TYPED)]
            start = time.perf_counter()
            await pilot.press("space" if key == " " else key)
            target = live.generation
            while screen.painted_generation < target:
                await asyncio.sleep(0.002)
            # the moment the repaint happened (pilot.press itself returns only once the process is
            # idle, which can be after the results were painted)
            latencies.append(screen.painted_at - start)
            engine.append(dict(screen.shown.result.seconds))
            queries.append(screen.shown.query)
            await pilot.pause(0.1)
        debounce = live.debounce_s
        # baseline: the engine alone on the same queries, each with an instruction it has not embedded
        # yet (as each keystroke's query had); the examples' vectors are cached in both cases
        retriever = live.retriever
        base: list[float] = []
        for i, q in enumerate(queries):
            fresh = dataclasses.replace(q, instruction=f"{q.instruction} (baseline {i})")
            t = time.perf_counter()
            retriever.search(fresh, top=live.params.top)
            base.append(time.perf_counter() - t)
    return {"latencies": latencies, "engine": engine, "baseline": base, "debounce": debounce, "rows": rows,
            "values": n_values}


def first_paint(ws_path: Path, runs: int) -> dict[str, object]:
    """Seconds from process start to the first painted screen (headless), and the bare-Textual baseline."""
    child = (
        "import asyncio, sys\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from engine.workspace import Workspace\n"
        "from rebase_tui.app import RebaseApp\n"
        "async def main():\n"
        f"    app = RebaseApp(Workspace({str(ws_path)!r}), stage='retrieve')\n"
        "    async with app.run_test(size=(140, 42)):\n"  # entered once the first screen is up
        "        print('PAINTED', 'torch' in sys.modules, flush=True)\n"
        "asyncio.run(main())\n"
    )
    paint, base, torch_loaded = [], [], []
    for _ in range(runs):
        t = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("PAINTED"):
                paint.append(time.perf_counter() - t)
                torch_loaded.append(line.split()[1] == "True")
                break
        proc.wait(timeout=120)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import textual.app"], check=True)
        base.append(time.perf_counter() - t)
    return {"paint": paint, "baseline": base, "torch": torch_loaded}


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workspace", help="an ingested workspace (default: build a cached subset)")
    p.add_argument("--datasets", type=int, default=40, help="datasets of the subset (default 40)")
    p.add_argument("--max-rows", type=int, default=50, help="rows per config of the subset (default 50)")
    p.add_argument("--edits", type=int, default=20)
    p.add_argument("--paint-runs", type=int, default=3)
    p.add_argument("--synthetic", type=int, help="measure a cached synthetic workspace of this many values")
    p.add_argument("--vectors-from", type=Path, help="with --synthetic: a bench/retrieve.py --compact --dir "
                   "folder whose value log of that size is hard-linked instead of written")
    args = p.parse_args()
    if args.synthetic:
        ws_path = synthetic_workspace(args.synthetic, args.vectors_from)
    else:
        ws_path = Path(args.workspace) if args.workspace else build_workspace(args.datasets, args.max_rows)

    from engine.datastore.embed import set_torch_threads

    set_torch_threads(1)
    live = asyncio.run(live_latency(ws_path, args.edits))
    lat = [x * 1000 for x in live["latencies"]]  # type: ignore[union-attr]
    base = [x * 1000 for x in live["baseline"]]  # type: ignore[union-attr]
    eng = live["engine"]
    print(f"\n## live retrieval on {ws_path} ({live['values']:,} distinct values; {live['rows']} rows shown, "
          f"mnli task, 1 torch thread)")
    print(f"keystroke → repainted results over {len(lat)} edits: median {statistics.median(lat):.0f} ms, "
          f"p95 {p95(lat):.0f} ms (goal ≤ 300 ms), min {min(lat):.0f}, max {max(lat):.0f}")
    print(f"  of which debounce {live['debounce'] * 1000:.0f} ms; engine medians: embed "
          f"{statistics.median(e['embed'] for e in eng) * 1000:.1f} ms, score "  # type: ignore[union-attr]
          f"{statistics.median(e['score'] for e in eng) * 1000:.1f} ms, fetch "  # type: ignore[union-attr]
          f"{statistics.median(e['fetch'] for e in eng) * 1000:.1f} ms")  # type: ignore[union-attr]
    print(f"baseline (engine search alone, same queries, same process): median {statistics.median(base):.0f} ms"
          f" → UI latency / engine = {statistics.median(lat) / statistics.median(base):.1f}x")

    paint = first_paint(ws_path, args.paint_runs)
    fp = paint["paint"]
    fb = paint["baseline"]
    print(f"\n## first paint (fresh process, headless, {len(fp)} runs)")
    print(f"time to first paint: median {statistics.median(fp):.2f} s (goal ≤ 1.5 s); "  # type: ignore[arg-type]
          f"torch imported before it: {any(paint['torch'])}")  # type: ignore[arg-type]
    print(f"baseline (python -c 'import textual.app'): median {statistics.median(fb):.2f} s → ratio "  # type: ignore[arg-type]
          f"{statistics.median(fp) / statistics.median(fb):.1f}x")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
