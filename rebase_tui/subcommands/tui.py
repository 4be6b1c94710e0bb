"""`rebase-tui tui [--stage NAME] [--task TASK]` (also plain `rebase-tui`): open the app."""

from __future__ import annotations

import argparse

from rebase_tui.output import open_workspace

STAGES = ("data", "task", "retrieve", "transform", "review", "train")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("tui", parents=[common], help="open the app (the default with no command)")
    p.add_argument("--stage", choices=STAGES, default="data", help="open directly on this stage")
    p.add_argument("--task", metavar="TASK", help="select this task")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    workspace = open_workspace(args)
    from rebase_tui.app import RebaseApp

    RebaseApp(workspace, stage=args.stage, task=args.task).run()
    return 0
