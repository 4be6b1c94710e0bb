"""Benchmark: teacher throughput on both backends against fixed-latency stand-ins, and the client's own cost.

    python bench/teacher.py [--backends ollama openai] [--latency 0.5] [--parallel 1 8 64] [--seconds 6]

Each stand-in (tests/ollama_standin.py, tests/openai_standin.py) runs in its own process with P parallel slots
and streams every reply (about 40 NDJSON lines or server-sent events) over L seconds, its last piece L seconds
after the request, as a server generating tokens does (``--pace``; ``--no-pace``: wait L, then stream at once,
so the stand-in's own streaming time is added to L); engine.teacher.transform runs with --concurrency P over
real rows of ../shared/data (the mnli task), about ``--seconds`` worth of rows. For each backend and P the
target is throughput >= 0.9 x P / L examples/s.

The client's own cost per example is reported two ways:

- CPU: the client process's CPU time (user + system) over the run divided by the examples, at each P. The
  stand-in is another process, so this is everything rebase-tui spends per example: request building, stream
  parsing, checks, the DuckDB writes, events — and the run's fixed costs (the model check, the plan), which
  weigh on the short P = 1 runs.
- Wall: from a run at L = 0 with concurrency 1, the wall time per example minus the time inside the HTTP call
  (prompt build, parse, label/duplicate checks, the write of call + example, event handling), with the
  prompt-build and check components alone (from examples.timings).

The machine's load average is printed first: on a shared machine the figures move with it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, pool_from_folders, shared

from engine.tasks import add_task, read_task_file
from engine.teacher.client import TeacherSettings
from engine.teacher.transform import TransformFinished, transform
from engine.workspace import Workspace

FOLDERS = ["sagnikrayc__snli-cf-kaushik", "scitail", "PlanTL-GOB-ES__wnli-es", "cjvt__si_nli", "assin"]
STANDINS = {"ollama": ("ollama_standin.py", "llama3.1:8b"), "openai": ("openai_standin.py",
                                                                       "meta-llama/Llama-3.1-8B-Instruct")}


def start_standin(backend: str, parallel: int, latency: float, pace: bool = True) -> tuple[subprocess.Popen, str]:
    script, _ = STANDINS[backend]
    proc = subprocess.Popen([sys.executable, str(REPO / "tests" / script), "--port", "0", "--parallel", str(parallel),
                             "--latency", str(latency), *(["--pace"] if pace else [])],
                            stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    return proc, line.split(" on ", 1)[1].split()[0]


def make_workspace(root: Path, n: int) -> Workspace:
    ws = Workspace(root)
    add_task(ws, read_task_file(shared("tasks", "mnli.json")))
    got = pool_from_folders(ws, "mnli", FOLDERS, n)
    if got < n:
        raise SystemExit(f"only {got} rows available for the pool")
    return ws


async def run_once(ws: Workspace, backend: str, url: str, concurrency: int, n: int) -> TransformFinished:
    s = TeacherSettings(host=url, model=STANDINS[backend][1], backend=backend, concurrency=concurrency, seed=1,
                        backoff=0.05)
    fin = None
    async for ev in transform(ws, "mnli", s, limit=n):
        if isinstance(ev, TransformFinished):
            fin = ev
    assert fin is not None
    return fin


def measure(tmp: Path, backend: str, parallel: int, latency: float, n: int, pace: bool = True) -> dict:
    proc, url = start_standin(backend, parallel, latency, pace)
    try:
        ws = make_workspace(tmp / f"ws-{backend}-p{parallel}-l{latency}", n)
        try:
            cpu0 = time.process_time()
            fin = asyncio.run(run_once(ws, backend, url, parallel, n))
            cpu = time.process_time() - cpu0
            with ws.store.cursor() as cur:
                timings = [json.loads(t) for (t,) in cur.execute(
                    "select timings from examples where task = 'mnli'").fetchall()]
        finally:
            ws.close()
    finally:
        proc.terminate()
        proc.wait()
    finished = fin.done + fin.failed + fin.duplicates
    return {"backend": backend, "parallel": parallel, "latency": latency, "n": n, "finished": finished,
            "call_failures": fin.call_failures, "seconds": fin.seconds, "per_s": finished / fin.seconds,
            "cpu_ms": cpu / max(1, finished) * 1e3,
            "call_s": statistics.mean(t["call_s"] for t in timings if "call_s" in t),
            "prompt_ms": statistics.mean(t["prompt_ms"] for t in timings),
            "check_ms": statistics.mean(t["check_ms"] for t in timings if "check_ms" in t)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backends", nargs="+", choices=sorted(STANDINS), default=["ollama", "openai"])
    p.add_argument("--latency", type=float, default=0.5, help="stand-in latency per request, seconds")
    p.add_argument("--parallel", type=int, nargs="+", default=[1, 8, 64], help="parallel slots to try")
    p.add_argument("--seconds", type=float, default=6.0, help="about how long each run should take")
    p.add_argument("--overhead-rows", type=int, default=60, help="rows for the L = 0 overhead run")
    p.add_argument("--no-pace", dest="pace", action="store_false",
                   help="the stand-ins wait L, then stream (their streaming time adds to L)")
    args = p.parse_args()
    shared("datastore")  # the benchmark uses real rows from it
    L = args.latency
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} "
          "(1 / 5 / 15 min)")
    how = "each reply streamed over L" if args.pace else "L before each reply, then streamed"
    print(f"stand-in latency L = {L:.3f} s per request ({how}); target: throughput >= 0.9 x P/L")
    print(f"{'backend':<8} {'P':>3} {'rows':>5} {'examples/s':>11} {'target':>8} {'vs P/L':>7} {'call s':>7} "
          f"{'CPU ms/ex':>10}  ok")
    ok_all = True
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for backend in args.backends:
            for P in args.parallel:
                r = measure(tmp, backend, P, L, max(8, int(args.seconds * P / L)), args.pace)
                ideal = P / L
                ok = r["per_s"] >= 0.9 * ideal and r["call_failures"] == 0
                ok_all &= ok
                print(f"{backend:<8} {P:>3} {r['n']:>5} {r['per_s']:>11.2f} {0.9 * ideal:>8.2f} "
                      f"{r['per_s'] / ideal:>7.3f} {r['call_s']:>7.3f} {r['cpu_ms']:>10.2f}  {'yes' if ok else 'NO'}",
                      flush=True)
        for backend in args.backends:
            o = measure(tmp, backend, 1, 0.0, args.overhead_rows)
            per_example = o["seconds"] / o["finished"]
            print(f"{backend}: client cost per example at L = 0, sequential, {o['finished']} rows: "
                  f"{(per_example - o['call_s']) * 1e3:.2f} ms wall beyond the HTTP call (prompt build "
                  f"{o['prompt_ms']:.3f} ms, parse+checks {o['check_ms']:.3f} ms; the rest is the DuckDB write and "
                  f"event handling), {o['cpu_ms']:.2f} ms CPU in all; HTTP call incl. streaming "
                  f"{o['call_s'] * 1e3:.1f} ms")
    print("all targets met" if ok_all else "SOME TARGETS MISSED")


if __name__ == "__main__":
    main()
