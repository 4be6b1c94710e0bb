"""`rebase-tui eval [RUN] [--data TEST] [--base] [--teacher]`: answer a test set and score it with the task's
metric — a run's student, its untrained base, and the teacher (the ceiling), side by side."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rebase_tui.output import add_json_flag, open_workspace, print_json, stderr_console, stdout_console
from rebase_tui.subcommands.score import add_testset_options
from rebase_tui.subcommands.transform import add_teacher_flags


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("eval", parents=[common],
                       help="evaluate a run's student (its base, the teacher) with the task's metric and 95%% CIs")
    p.add_argument("run", nargs="?", help="run id (see `rebase-tui runs`); may be left out with --teacher")
    add_testset_options(p, required=False)
    p.add_argument("--base", action="store_true",
                   help="also evaluate the untrained student, with the paired-bootstrap p-value of the difference")
    p.add_argument("--teacher", action="store_true",
                   help="also let the teacher answer, few-shot from the task's examples (cached like transform)")
    p.add_argument("--task", metavar="TASK", help="the task for --teacher without a run (stored name or file)")
    add_teacher_flags(p)
    p.add_argument("--concurrency", type=int, metavar="C", help="teacher requests in flight")
    p.add_argument("--limit", type=int, help="evaluate the first N examples only")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    add_json_flag(p)
    p.set_defaults(func=run)


def _bar(args: argparse.Namespace) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[eta]}"), console=stderr_console(), disable=args.json, transient=True)


def _show(bar: Any, bar_id: Any, ev: Any, label: str) -> None:
    from engine.rate import format_seconds

    bar.update(bar_id, completed=ev.done, total=ev.total, description=f"{label} {ev.message}",
               eta=f"ETA {format_seconds(ev.eta_s)}" if ev.eta_s is not None else "")


def _student(path: Path, args: argparse.Namespace, task: Any, base: bool, shown: set[str]) -> Any:
    """One evaluation with a progress bar; its log lines are printed once per command (``shown``)."""
    from engine.events import Log, Progress
    from engine.student import evaluate

    done = None
    with _bar(args) as bar:
        bar_id = bar.add_task("loading the model…", total=None, eta="")
        for ev in evaluate.evaluate(path, args.data, base=base, limit=args.limit, max_new_tokens=args.max_new_tokens,
                                    batch_size=args.batch_size, device=args.device, task=task, metric=args.metric,
                                    input_col=args.input_col, output_col=args.output_col):
            if isinstance(ev, Log):
                if ev.message not in shown:
                    shown.add(ev.message)
                    bar.console.print(ev.message, markup=False)
            elif isinstance(ev, Progress):
                _show(bar, bar_id, ev, "eval")
            elif isinstance(ev, evaluate.EvalDone):
                done = ev
    assert done is not None, "evaluate() ends with EvalDone unless it raises"
    return done


def _teacher(ws: Any, args: argparse.Namespace, task: Any, out: Path, run_dir: Path | None) -> tuple[Any, int]:
    """The teacher's answers scored like a student's: (EvalDone, failed calls)."""
    import asyncio
    import time

    from engine.events import Log, Progress
    from engine.student import evaluate
    from engine.teacher.client import TeacherSettings
    from engine.teacher.solve import TestsAnswered, answer_tests

    label, layout, items = evaluate.test_items(run_dir or Path("."), args.data, input_col=args.input_col,
                                               output_col=args.output_col)
    items = items[: args.limit] if args.limit else items
    settings = TeacherSettings.from_config(ws.config, concurrency=args.concurrency)
    t0 = time.monotonic()

    async def answers() -> TestsAnswered:
        end = None
        with _bar(args) as bar:
            bar_id = bar.add_task("asking the teacher…", total=None, eta="")
            async for ev in answer_tests(ws, task, [it.input for it in items], settings):
                if isinstance(ev, Progress):
                    _show(bar, bar_id, ev, "")
                elif isinstance(ev, Log) and not args.json:
                    stderr_console().print(ev.message, markup=False)
                elif isinstance(ev, TestsAnswered):
                    end = ev
        assert end is not None
        return end

    got = asyncio.run(answers())
    result, scored, preds = evaluate.score_answers("teacher", label, layout, items, got.outputs, task=task,
                                                   metric=args.metric, seconds=time.monotonic() - t0)
    out.parent.mkdir(parents=True, exist_ok=True)
    evaluate.write_predictions(out, preds)
    if run_dir is not None:
        evaluate.save_metrics(run_dir, result)
    return evaluate.EvalDone(metrics=result, predictions=str(out), scored=tuple(scored)), got.failed


def _compare(a: Any, b: Any) -> dict[str, float]:
    from engine.student import metrics

    out: dict[str, float] = {}
    for x, y in zip(a.scored, b.scored, strict=True):
        out.update(metrics.paired_bootstrap(x, y))
    return out


def run(args: argparse.Namespace) -> int:
    from engine.errors import EngineError
    from engine.student import runs
    from engine.student.evaluate import run_task
    from engine.student.run_config import read_config
    from engine.tasks import get_task, resolve_task

    if args.run is None and not args.teacher:
        raise EngineError("eval needs a run, or --teacher", fix="name a run (see `rebase-tui runs`), or add --teacher")
    if args.run is None and not (args.task and args.data):
        raise EngineError("eval --teacher without a run needs --task and --data",
                          fix="name the task whose examples the teacher follows, and the test file")
    overrides = {"teacher.backend": args.backend, "teacher.host": args.host, "teacher.model": args.model}
    systems: dict[str, Any] = {}
    failed = 0
    with open_workspace(args, overrides) as ws:
        path = runs.run_dir(ws, args.run) if args.run else None
        cfg = read_config(path) if path is not None else None
        task = resolve_task(ws, args.task) if args.task else \
            (get_task(ws, cfg.task) if cfg is not None and cfg.task else None) or (run_task(cfg) if cfg else None)
        shown: set[str] = set()
        if path is not None:
            systems["student"] = _student(path, args, task, base=False, shown=shown)
            if args.base:
                systems["base"] = _student(path, args, task, base=True, shown=shown)
        if args.teacher:
            if task is None:
                raise EngineError("the teacher answers few-shot from a task's examples, and this run has none",
                                  fix="name one with --task")
            data_name = Path(args.data).name if args.data else "validation"
            out = path / "predictions-teacher.jsonl" if path is not None else \
                ws.path / "evals" / task.name / f"{data_name}.teacher.jsonl"
            systems["teacher"], failed = _teacher(ws, args, task, out, path)
        if path is not None:
            runs.record(ws, path)
    doc = _document(args, systems)
    if args.json:
        print_json(doc)
    else:
        _print(args, systems, doc)
    if failed:
        print(f"rebase-tui: {failed} teacher call(s) failed (scored as wrong answers) — run the same command again "
              "to ask them again (finished calls are cached)", file=__import__("sys").stderr)
        return 1
    return 0


def _document(args: argparse.Namespace, systems: dict[str, Any]) -> dict[str, Any]:
    first = next(iter(systems.values()))
    m = first.metrics
    doc: dict[str, Any] = {"run": args.run, "data": m.data, "n": m.n, "metric": list(m.metric), "why": m.why,
                           "system": m.model, "metrics": m.metrics, "predictions": first.predictions}
    for name, done in list(systems.items())[1:]:
        doc[name] = {"metrics": done.metrics.metrics, "predictions": done.predictions,
                     "p_value": _compare(done, first)}
    return doc


def _print(args: argparse.Namespace, systems: dict[str, Any], doc: dict[str, Any]) -> None:
    out = stdout_console()
    head = f"run {args.run} on" if args.run else "on"
    out.print(f"{head} {doc['data']} ({doc['n']} examples; metric {', '.join(doc['metric'])}: {doc['why']})",
              markup=False)
    first = next(iter(systems))
    for name, done in systems.items():
        line = f"  {name + ':':<9} {done.metrics.describe()}"
        if name != first:
            line += "   vs " + first + ": " + ", ".join(f"p = {v:.3f}" for v in doc[name]["p_value"].values())
        out.print(line, markup=False)
    for name, done in systems.items():
        out.print(f"  {name} predictions in {done.predictions}", markup=False)
