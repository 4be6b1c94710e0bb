"""Benchmark: teacher throughput against a fixed-latency Ollama stand-in, and client-side cost per example.

    python bench/teacher.py [--latency 0.25] [--parallel 1 4 8] [--seconds 6]

The stand-in (tests/ollama_standin.py) runs in its own process with P parallel slots and answers every chat
request after L seconds (plus its own streaming of about 40 NDJSON chunks per reply); engine.teacher.transform runs
with --concurrency P over real rows of ../shared/data (the mnli task). For each P the target is
throughput ≥ 0.9 × P / L examples/s. The sequential baseline (P = 1, concurrency 1) is measured in the same
run, and every throughput is also given as a ratio to it.

Client-side overhead per example: from a run at L = 0 with concurrency 1, the wall time per example minus
the time spent inside the HTTP call (prompt build, JSON parse, label/duplicate checks, the DuckDB write of
call + example, event handling), plus the prompt-build and check components alone (from examples.timings).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import REPO, pool_from_folders, shared

from engine.tasks import add_task, read_task_file
from engine.teacher.client import TeacherSettings
from engine.teacher.transform import TransformFinished, transform
from engine.workspace import Workspace

FOLDERS = ["sagnikrayc__snli-cf-kaushik", "scitail", "PlanTL-GOB-ES__wnli-es", "cjvt__si_nli", "assin"]


def start_standin(parallel: int, latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, str(REPO / "tests" / "ollama_standin.py"), "--port", "0",
                             "--parallel", str(parallel), "--latency", str(latency)],
                            stdout=subprocess.PIPE, text=True, cwd=REPO)
    line = proc.stdout.readline()
    url = line.split(" on ", 1)[1].split()[0]
    return proc, url


def make_workspace(root: Path, n: int) -> Workspace:
    ws = Workspace(root)
    add_task(ws, read_task_file(shared("tasks", "mnli.json")))
    got = pool_from_folders(ws, "mnli", FOLDERS, n)
    if got < n:
        raise SystemExit(f"only {got} rows available for the pool")
    return ws


async def run_once(ws: Workspace, url: str, concurrency: int, n: int) -> TransformFinished:
    s = TeacherSettings(host=url, model="llama3.1:8b", concurrency=concurrency, seed=1, backoff=0.05)
    fin = None
    async for ev in transform(ws, "mnli", s, limit=n):
        if isinstance(ev, TransformFinished):
            fin = ev
    assert fin is not None
    return fin


def measure(tmp: Path, parallel: int, concurrency: int, latency: float, n: int) -> dict:
    proc, url = start_standin(parallel, latency)
    try:
        ws = make_workspace(tmp / f"ws-p{parallel}-c{concurrency}-l{latency}", n)
        try:
            fin = asyncio.run(run_once(ws, url, concurrency, n))
            with ws.store.cursor() as cur:
                timings = [json.loads(t) for (t,) in cur.execute(
                    "select timings from examples where task = 'mnli'").fetchall()]
        finally:
            ws.close()
    finally:
        proc.terminate()
        proc.wait()
    finished = fin.done + fin.failed + fin.duplicates
    return {"parallel": parallel, "concurrency": concurrency, "latency": latency, "n": n, "finished": finished,
            "failed": fin.failed, "seconds": fin.seconds, "per_s": finished / fin.seconds,
            "call_s": statistics.mean(t["call_s"] for t in timings),
            "prompt_ms": statistics.mean(t["prompt_ms"] for t in timings),
            "check_ms": statistics.mean(t["check_ms"] for t in timings)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--latency", type=float, default=0.5, help="stand-in latency per request, seconds")
    p.add_argument("--parallel", type=int, nargs="+", default=[1, 4, 8], help="parallel slots to try")
    p.add_argument("--seconds", type=float, default=6.0, help="about how long each run should take")
    p.add_argument("--overhead-rows", type=int, default=60, help="rows for the L = 0 overhead run")
    args = p.parse_args()
    shared("datastore")  # the benchmark uses real rows from it
    L = args.latency
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        print(f"stand-in latency L = {L:.3f} s per request; target: throughput >= 0.9 x P/L")
        base = measure(tmp, 1, 1, L, max(8, int(args.seconds / L)))
        print(f"sequential baseline (P=1, concurrency 1): {base['per_s']:.2f} examples/s "
              f"(ideal {1 / L:.2f}; mean call {base['call_s'] * 1e3:.0f} ms)")
        print(f"{'P':>3} {'rows':>5} {'examples/s':>11} {'target':>8} {'vs P/L':>7} {'vs seq':>7}  ok")
        ok_all = True
        for P in args.parallel:
            r = base if P == 1 else measure(tmp, P, P, L, max(8, int(args.seconds * P / L)))
            ideal = P / L
            ok = r["per_s"] >= 0.9 * ideal and r["failed"] == 0
            ok_all &= ok
            print(f"{P:>3} {r['n']:>5} {r['per_s']:>11.2f} {0.9 * ideal:>8.2f} {r['per_s'] / ideal:>7.3f} "
                  f"{r['per_s'] / base['per_s']:>7.2f}  {'yes' if ok else 'NO'}")
        o = measure(tmp, 1, 1, 0.0, args.overhead_rows)
        per_example = o["seconds"] / o["finished"]
        overhead_ms = (per_example - o["call_s"]) * 1e3
        print(f"client-side overhead per example (L=0, sequential, {o['finished']} rows): {overhead_ms:.2f} ms "
              f"beyond the HTTP call (prompt build {o['prompt_ms']:.3f} ms, parse+checks {o['check_ms']:.3f} ms; "
              f"the rest is the DuckDB write and event handling); HTTP call incl. streaming "
              f"{o['call_s'] * 1e3:.1f} ms")
        print("all targets met" if ok_all else "SOME TARGETS MISSED")


if __name__ == "__main__":
    main()
