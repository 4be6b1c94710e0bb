"""`rebase-tui tui [--stage NAME] [--task TASK]` (also plain `rebase-tui`): open the app."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from rebase_tui.output import open_workspace

if TYPE_CHECKING:
    from rebase_tui.app import RebaseApp

STAGES = ("data", "task", "retrieve", "transform", "review", "train")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("tui", parents=[common], help="open the app (the default with no command)")
    p.add_argument("--stage", choices=STAGES, default="data", help="open directly on this stage")
    p.add_argument("--task", metavar="TASK", help="select this task")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    workspace = open_workspace(args)
    from rebase_tui.app import RebaseApp

    return run_app(RebaseApp(workspace, stage=args.stage, task=args.task))


def run_app(app: RebaseApp) -> int:
    """Run the app; afterwards print its one exit line (what a quit stopped), and return its exit code.

    When a job's thread overran the quit deadline, the process ends here at once: waiting for that thread
    (a model export, say) would keep the user at a dead terminal, and everything committed is already
    durable.
    """
    import os
    import sys

    from rebase_tui.inert import inert

    app.run()
    code = app.return_code or 0
    if app.exit_note:
        print(inert(f"rebase-tui: {app.exit_note}"), file=sys.stderr)
    if app.closing and not app.stopped_cleanly:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
