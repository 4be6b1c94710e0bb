"""The `rebase-tui` command: opens the app, or runs one headless stage.

Subcommands live in ``rebase_tui/subcommands/<name>.py``; each module defines ``register(sub, common)``
which adds its parser (with ``func=run``). They are discovered here, so a stage's command exists
exactly when its module does. Heavy libraries are imported inside the commands that need them.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from rebase_tui import __version__

STAGES = ("data", "task", "retrieve", "transform", "review", "train")


def _common_parser() -> argparse.ArgumentParser:
    """Options every subcommand also accepts after its name (``rebase-tui info -w W``)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-w", "--workspace", metavar="DIR", default=argparse.SUPPRESS,
                        help="workspace directory (default: $REBASE_WORKSPACE, else the user data dir)")
    return common


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every discovered subcommand."""
    common = _common_parser()
    parser = argparse.ArgumentParser(
        prog="rebase-tui",
        description="ReBase (retrieval-based distillation): turn a task with a few examples into a "
                    "dataset and a fine-tuned student model, offline. With no command, opens the app.",
    )
    parser.add_argument("-w", "--workspace", metavar="DIR", default=None,
                        help="workspace directory (default: $REBASE_WORKSPACE, else the user data dir)")
    parser.add_argument("--version", action="version", version=f"rebase-tui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from rebase_tui import subcommands

    for info in sorted(pkgutil.iter_modules(subcommands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"rebase_tui.subcommands.{info.name}")
        module.register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    from engine.errors import EngineError
    from rebase_tui.output import fail

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args([*(argv if argv is not None else sys.argv[1:]), "tui"])
    try:
        return int(args.func(args) or 0)
    except EngineError as exc:
        return fail(exc)
    except KeyboardInterrupt:
        print("rebase-tui: interrupted — finished work is kept; run the same command again to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
