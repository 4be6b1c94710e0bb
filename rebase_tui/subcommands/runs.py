"""`rebase-tui runs [--json]`, `runs show RUN`, `runs stop RUN`: training runs of the workspace."""

from __future__ import annotations

import argparse

from rebase_tui.output import add_json_flag, open_workspace, print_json, stdout_console


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("runs", parents=[common], help="list training runs, show or stop one")
    add_json_flag(p)
    rsub = p.add_subparsers(dest="runs_command", metavar="ACTION")
    show = rsub.add_parser("show", parents=[common], help="one run's summary and configuration")
    show.add_argument("run")
    add_json_flag(show)
    stop = rsub.add_parser("stop", parents=[common], help="stop a running run gracefully (checkpoint first)")
    stop.add_argument("run")
    stop.add_argument("--grace", type=float, default=60.0, help="seconds to wait before killing (default 60)")
    add_json_flag(stop)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.student import runs, supervise
    from engine.student.run_config import read_config

    with open_workspace(args) as ws:
        if args.runs_command == "stop":
            path = runs.run_dir(ws, args.run)
            how = supervise.stop(path, grace_s=args.grace)
            summary = runs.record(ws, path)
            if args.json:
                print_json({"run": args.run, "result": how, "status": summary.status, "steps": summary.steps})
            else:
                stdout_console().print(f"run {args.run}: {how} (status {summary.status}, "
                                       f"step {summary.steps}/{summary.total_steps})")
            return 0
        if args.runs_command == "show":
            path = runs.run_dir(ws, args.run)
            shown = {**runs.record(ws, path).to_json(), "config": read_config(path).to_json(), "dir": str(path)}
            if args.json:
                print_json(shown)
            else:
                import json

                stdout_console().print_json(json.dumps(shown, default=str))
            return 0
        all_runs = runs.reconcile(ws)
    if args.json:
        print_json([r.listing_json() for r in all_runs])
        return 0
    from rich.table import Table

    table = Table("run", "task", "student", "status", "steps", "train loss", "eval loss", "seconds", "settings")
    for r in all_runs:
        table.add_row(r.run, r.task or "-", r.student[-30:], r.status, f"{r.steps}/{r.total_steps}",
                      format_loss(r.train_loss), format_loss(r.eval_loss), f"{r.seconds:.0f}", r.settings)
    stdout_console().print(table if all_runs else "no runs yet — start one with `rebase-tui train`")
    return 0


def format_loss(x: float | None) -> str:
    """A loss as the CLI prints it (``-`` before there is one)."""
    return "-" if x is None else f"{x:.4f}"
