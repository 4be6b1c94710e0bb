"""Evaluation throughput (examples/s) batched vs. one by one, and the `experiment` driver's own overhead.

    python bench/eval.py [--items 48] [--batch-size 16] [--layers 4] [--dim 256] [--max-new-tokens 48]
                         [--examples 8] [--steps 20] [--json]

1. **Eval throughput.** A GPT-2-style student (random init, BPE tokenizer trained on the shared
   boolean_expressions teacher outputs) is trained for a few steps, then ``engine.student.evaluate`` answers the
   first ``--items`` items of the shared BIG-Bench-Hard boolean_expressions test set twice on the same run:
   ``--batch-size`` prompts per ``generate`` call (the default path), and one at a time (the baseline).
   Throughput = items / the evaluation's own generation seconds (model loading excluded); also the share of
   items whose answers agree between the two (left padding may change a greedy answer now and then).
2. **Experiment overhead.** A two-task experiment (boolean_expressions and web_of_lies from the shared tasks,
   every method, ``--examples`` per data method, ``--steps`` training steps, the first 16 test items) runs in
   this process against the Ollama stand-in (no latency) on a small ingested datastore, twice: from scratch,
   and again once finished (everything skipped). The first run's wall time is split into the stages' own
   time — teacher calls (data and teacher stages), training (the worker, start to end), evaluation (of which
   generation), retrieval — and what is left: the driver itself (checks, fingerprints, state and results
   writes, event plumbing). Printed as seconds and as a share of the total; the no-op re-run is the cost of
   resuming a finished experiment.

Baselines in the same run: one-at-a-time evaluation; the experiment's total wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, build_student, shared

SPEC = """name = "bench"
methods = ["base", "synthesize", "rebase", "teacher"]
[teacher]
model = "llama3.1:8b"
seed = 5
concurrency = 4
[student]
model = "{student}"
method = "full"
max_steps = {steps}
batch_size = 4
lr = 1e-3
max_length = 256
eval_fraction = 0.0
device = "cpu"
threads = 1
[eval]
max_new_tokens = {max_new_tokens}
batch_size = 16
limit = 16
{tasks}"""
TASK = """[[tasks]]
task = "{task}"
test = "{test}"
examples = {examples}
"""
DATASTORE = ("boolq", "circa", "commonsense_qa")


def eval_throughput(tmp: Path, args: argparse.Namespace) -> dict:
    from engine.student import evaluate, runs
    from engine.student.loop import train
    from engine.student.run_config import RunSettings
    from engine.student.training_data import read_examples_file
    from engine.tasks import add_task, read_task_file
    from engine.workspace import Workspace

    rows = read_examples_file(shared("teacher_outputs", "boolean_expressions.jsonl"))
    task = read_task_file(shared("tasks", "boolean_expressions.json"))
    test = shared("bbh_test", "boolean_expressions.json")
    student = tmp / "student"
    build_student(student, rows, args.layers, args.dim)
    with Workspace(tmp / "ws-eval") as ws:
        add_task(ws, task)
        path = runs.create_run(ws, rows, RunSettings(student=str(student), method="full", max_steps=20, lr=1e-3,
                                                     batch_size=8, max_length=256, device="cpu", threads=1,
                                                     eval_fraction=0.0), task=task)
        end = list(train(path))[-1]
        assert end.status == "finished", end

    def once(batch_size: int) -> tuple[float, list[str]]:
        done = None
        for ev in evaluate.evaluate(path, test, limit=args.items, batch_size=batch_size,
                                    max_new_tokens=args.max_new_tokens, device="cpu", task=task):
            if isinstance(ev, evaluate.EvalDone):
                done = ev
        assert done is not None
        preds = [p.prediction for p in evaluate.read_predictions(path)]
        return done.metrics.seconds, preds

    once(args.batch_size)                          # warm-up: first loads, first kernels
    batched_s, batched = once(args.batch_size)
    single_s, single = once(1)
    agree = sum(a == b for a, b in zip(batched, single, strict=True)) / len(batched)
    return {"items": args.items, "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens,
            "batched_examples_per_s": round(args.items / batched_s, 2),
            "one_by_one_examples_per_s": round(args.items / single_s, 2),
            "batched_over_one_by_one": round(single_s / batched_s, 2), "answers_agree": round(agree, 3)}


def experiment_overhead(tmp: Path, host: str, args: argparse.Namespace) -> dict:
    from engine.datastore.ingest import run_ingest
    from engine.experiments.runner import ExperimentFinished, run_experiment
    from engine.experiments.spec import read_spec
    from engine.experiments.stages import StageDone, StageStarted
    from engine.workspace import Workspace

    tasks = "".join(TASK.format(task=shared("tasks", f"{t}.json"), test=shared("bbh_test", f"{t}.json"),
                                examples=args.examples) for t in ("boolean_expressions", "web_of_lies"))
    spec_path = tmp / "bench.toml"
    spec_path.write_text(SPEC.format(student=tmp / "student", steps=args.steps, max_new_tokens=args.max_new_tokens,
                                     tasks=tasks), encoding="utf-8")
    spec = read_spec(spec_path)
    with Workspace(tmp / "ws-exp", {"teacher.host": host}) as ws:
        run_ingest(ws, [shared("datastore", f) for f in DATASTORE], max_rows_per_config=40)

        async def timed() -> tuple[float, dict[str, float]]:
            stage_s: dict[str, float] = {}
            started: dict[tuple[str, str, str], float] = {}
            t0 = time.perf_counter()
            async for ev in run_experiment(ws, spec):
                if isinstance(ev, StageStarted):
                    started[(ev.task, ev.method, ev.stage)] = time.perf_counter()
                elif isinstance(ev, StageDone):
                    wall = time.perf_counter() - started[(ev.task, ev.method, ev.stage)]
                    stage_s[ev.stage] = stage_s.get(ev.stage, 0.0) + wall
                elif isinstance(ev, ExperimentFinished):
                    assert ev.results.complete
            return time.perf_counter() - t0, stage_s

        total, stages = asyncio.run(timed())
        generation = _generation_seconds(tmp / "ws-exp" / "experiments" / "bench" / "state.json")
        again, _ = asyncio.run(timed())
    driver = total - sum(stages.values())
    shares = {f"{k}_s": round(v, 2) for k, v in sorted(stages.items())}
    return {"total_s": round(total, 2), **shares, "generation_s": round(generation, 2),
            "driver_s": round(driver, 3), "driver_share": round(driver / total, 4),
            "outside_calls_training_generation_s": round(total - stages.get("data", 0) - stages.get("teacher", 0)
                                                         - stages.get("train", 0) - generation, 2),
            "rerun_when_finished_s": round(again, 2), "rerun_over_first_run": round(again / total, 4)}


def _generation_seconds(state: Path) -> float:
    """The students' generation seconds (each evaluation's ``EvalResult.seconds``) from the experiment's state."""
    entries = json.loads(state.read_text(encoding="utf-8"))["stages"]
    return sum(e["generation"] for k, e in entries.items() if k.startswith("eval/") and not k.endswith("/teacher"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=48)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--examples", type=int, default=8)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        doc = {"eval": eval_throughput(tmp, args)}
        standin = subprocess.Popen([sys.executable, str(REPO / "tests" / "ollama_standin.py"), "--port", "0",
                                    "--parallel", "4"], stdout=subprocess.PIPE, text=True, cwd=REPO)
        try:
            assert standin.stdout is not None
            host = standin.stdout.readline().split(" on ", 1)[1].split()[0]
            doc["experiment"] = experiment_overhead(tmp, host, args)
        finally:
            standin.terminate()
            standin.wait(timeout=30)
    if args.json:
        print(json.dumps(doc))
        return
    for part, figures in doc.items():
        print(part)
        for k, v in figures.items():
            print(f"  {k:<38} {v}")


if __name__ == "__main__":
    main()
