"""`rebase-tui eval [RUN] --data TEST [--base] [--teacher]`: answer a test set and score it with the task's metric."""

from __future__ import annotations

import argparse
from typing import Any

from rebase_tui.output import add_json_flag, open_workspace, print_json, stderr_console, stdout_console
from rebase_tui.subcommands.score import add_testset_options


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("eval", parents=[common],
                       help="evaluate a run's student (and its base) with the task's metric and 95%% CIs")
    p.add_argument("run", help="run id (see `rebase-tui runs`)")
    add_testset_options(p, required=False)
    p.add_argument("--base", action="store_true",
                   help="also evaluate the untrained student, with the paired-bootstrap p-value of the difference")
    p.add_argument("--limit", type=int, help="evaluate the first N examples only")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    add_json_flag(p)
    p.set_defaults(func=run)


def _evaluate(path: Any, args: argparse.Namespace, task: Any, base: bool, shown: set[str]) -> Any:
    """Run one evaluation with a progress bar; its log lines are printed once per command (``shown``)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from engine.events import Log as LogEvent
    from engine.events import Progress as ProgressEvent
    from engine.rate import format_seconds
    from engine.student import evaluate

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[eta]}"), console=stderr_console(), disable=args.json, transient=True)
    done = None
    with bar:
        bar_id = bar.add_task("loading the model…", total=None, eta="")
        for ev in evaluate.evaluate(path, args.data, base=base, limit=args.limit, max_new_tokens=args.max_new_tokens,
                                    batch_size=args.batch_size, device=args.device, task=task, metric=args.metric,
                                    input_col=args.input_col, output_col=args.output_col):
            if isinstance(ev, LogEvent):
                if ev.message not in shown:
                    shown.add(ev.message)
                    bar.console.print(ev.message, markup=False)
            elif isinstance(ev, ProgressEvent):
                bar.update(bar_id, completed=ev.done, total=ev.total, description=f"eval {ev.message}",
                           eta=f"ETA {format_seconds(ev.eta_s)}" if ev.eta_s is not None else "")
            elif isinstance(ev, evaluate.EvalDone):
                done = ev
    assert done is not None, "evaluate() ends with EvalDone unless it raises"
    return done


def run(args: argparse.Namespace) -> int:
    from engine.student import metrics, runs
    from engine.student.run_config import read_config
    from engine.tasks import get_task

    with open_workspace(args) as ws:
        path = runs.run_dir(ws, args.run)
        cfg = read_config(path)
        task = get_task(ws, cfg.task) if cfg.task else None
        shown: set[str] = set()
        student = _evaluate(path, args, task, base=False, shown=shown)
        base = _evaluate(path, args, task, base=True, shown=shown) if args.base else None
        runs.record(ws, path)
    m = student.metrics
    doc: dict[str, Any] = {"run": args.run, "data": m.data, "n": m.n, "metric": list(m.metric), "why": m.why,
                           "metrics": m.metrics, "predictions": student.predictions}
    if base is not None:
        p_values: dict[str, float] = {}
        for a, b in zip(base.scored, student.scored, strict=True):
            p_values.update(metrics.paired_bootstrap(a, b))
        doc["base"] = {"metrics": base.metrics.metrics, "predictions": base.predictions, "p_value": p_values}
    if args.json:
        print_json(doc)
        return 0
    out = stdout_console()
    out.print(f"run {args.run} on {m.data} ({m.n} examples; metric {', '.join(m.metric)}: {m.why})", markup=False)
    out.print(f"  student: {m.describe()}", markup=False)
    if base is not None:
        out.print(f"  base:    {base.metrics.describe()}", markup=False)
        out.print("  student vs base: " + ", ".join(f"{k} p = {v:.3f}" for k, v in doc["base"]["p_value"].items()),
                  markup=False)
    out.print(f"  predictions in {student.predictions}", markup=False)
    return 0
