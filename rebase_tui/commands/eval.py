"""`rebase-tui eval RUN [--data FILE] [--base] [--limit N]`: greedy generation and metrics of a student."""

from __future__ import annotations

import argparse

from rebase_tui.output import add_json_flag, open_workspace, print_json, stderr_console, stdout_console


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("eval", parents=[common], help="evaluate a run's student (exact match, accuracy, F1)")
    p.add_argument("run", help="run id (see `rebase-tui runs`)")
    p.add_argument("--data", metavar="FILE", help='JSONL of {"input", "output"}, or a BIG-Bench-Hard JSON '
                                                  '{"examples": [{"input", "target"}]} (default: the validation split)')
    p.add_argument("--base", action="store_true", help="evaluate the untrained student, for comparison")
    p.add_argument("--limit", type=int, help="evaluate the first N examples only")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from engine.events import Progress as ProgressEvent
    from engine.rate import format_seconds
    from engine.student import evaluate, runs

    with open_workspace(args) as ws:
        path = runs.run_dir(ws, args.run)
        result = None
        bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       console=stderr_console(), disable=args.json, transient=True)
        with bar:
            task_id = bar.add_task("loading the model…", total=None)
            for ev in evaluate.evaluate(path, args.data, base=args.base, limit=args.limit,
                                        max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                                        device=args.device):
                if isinstance(ev, ProgressEvent):
                    bar.update(task_id, completed=ev.done, total=ev.total,
                               description=f"eval {ev.message} · ETA {format_seconds(ev.eta_s)}")
                elif isinstance(ev, evaluate.EvalDone):
                    result = ev
        runs.record(ws, path)
    assert result is not None, "evaluate() ends with EvalDone unless it raises"
    metrics = {**result.metrics.to_json(), "run": args.run, "predictions": result.predictions}
    if args.json:
        print_json(metrics)
    else:
        m = result.metrics
        stdout_console().print(
            f"{m.model} of run {args.run} on {m.data} ({m.n} examples): exact match {m.exact_match:.3f}, "
            f"accuracy {m.accuracy:.3f}, token F1 {m.f1:.3f} — predictions in {result.predictions}")
    return 0
