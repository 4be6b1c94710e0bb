"""`rebase-tui try` once warm: time to first token and tokens per second, the student alone vs. the student,
its base and the teacher together (the teacher is the Ollama stand-in with a fixed latency per reply).

    python bench/try.py [--inputs 12] [--layers 4] [--dim 256] [--latency 0.25] [--max-new-tokens 48]

Baseline in the same process: the student alone. Prints one JSON document (``--json``) or a small table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, build_student, shared


def train_run(ws, student: Path, rows: list[dict], task) -> Path:
    from engine.student import runs
    from engine.student.loop import train
    from engine.student.run_config import RunSettings

    path = runs.create_run(ws, rows, RunSettings(student=str(student), method="full", max_steps=30, lr=1e-3,
                                                 batch_size=8, max_length=256, device="cpu", threads=2,
                                                 eval_fraction=0.05), task=task)
    end = list(train(path))[-1]
    assert end.status == "finished", end
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--inputs", type=int, default=12)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--latency", type=float, default=0.25)
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    from engine.student.training_data import read_examples_file
    from engine.student.tryout import WarmModel
    from engine.tasks import add_task, read_task_file
    from engine.teacher.ask import Teacher
    from engine.teacher.client import TeacherSettings
    from engine.teacher.solve import answer_one
    from engine.workspace import Workspace

    rows = read_examples_file(shared("teacher_outputs", "boolean_expressions.jsonl"))
    task = read_task_file(shared("tasks", "boolean_expressions.json"))
    inputs = [r["input"] for r in rows[-args.inputs:]]
    with tempfile.TemporaryDirectory() as tmp, Workspace(Path(tmp) / "ws") as ws:
        add_task(ws, task)
        student = Path(tmp) / "student"
        build_student(student, rows, args.layers, args.dim)
        run = train_run(ws, student, rows[:200], task)
        warm = WarmModel(run)
        base = WarmModel(run, base=True)
        warm.answer(inputs[0], task, args.max_new_tokens)          # warm-up
        alone = [warm.answer(x, task, args.max_new_tokens) for x in inputs]

        standin = subprocess.Popen([sys.executable, str(REPO / "tests" / "ollama_standin.py"), "--port", "0",
                                    "--parallel", "1", "--latency", str(args.latency)], stdout=subprocess.PIPE,
                                   text=True, cwd=REPO)
        try:
            assert standin.stdout is not None
            host = standin.stdout.readline().split(" on ", 1)[1].split()[0]
            settings = TeacherSettings(host=host, model="llama3.1:8b")

            async def all_three() -> list[float]:
                teacher = await Teacher.connect(settings)
                walls = []
                try:
                    for x in inputs:
                        t0 = time.perf_counter()
                        await asyncio.to_thread(warm.answer, x, task, args.max_new_tokens)
                        await asyncio.to_thread(base.answer, x, task, args.max_new_tokens)
                        await answer_one(ws, teacher, task, x)
                        walls.append(time.perf_counter() - t0)
                finally:
                    await teacher.close()
                return walls

            together = asyncio.run(all_three())
        finally:
            standin.terminate()
    ttft = statistics.median(a.first_token_s or 0.0 for a in alone)
    tps = sum(a.tokens for a in alone) / sum(a.seconds for a in alone)
    alone_wall = statistics.median(a.seconds for a in alone)
    doc = {"inputs": len(inputs), "student_first_token_s": round(ttft, 4), "student_tokens_per_s": round(tps, 1),
           "student_s": round(alone_wall, 4), "all_three_s": round(statistics.median(together), 4),
           "all_three_over_student": round(statistics.median(together) / alone_wall, 2),
           "teacher_latency_s": args.latency, "load_s": round(warm.load_seconds, 3)}
    if args.json:
        print(json.dumps(doc))
        return
    for k, v in doc.items():
        print(f"{k:<24} {v}")


if __name__ == "__main__":
    main()
