"""Shared helpers of the headless subcommands: opening the workspace, JSON on stdout, messages on stderr.

stdout belongs to data (the one JSON document of ``--json``, or tables); progress and logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.errors import EngineError
    from engine.workspace import Workspace


def open_workspace(args: argparse.Namespace, overrides: dict[str, Any] | None = None) -> Workspace:
    """Open the workspace named by ``-w`` (or the environment / default) with CLI overrides."""
    from engine.workspace import Workspace

    return Workspace.open(getattr(args, "workspace", None), overrides)


#: Characters JSON leaves raw with ensure_ascii=False that a terminal acts on: C1 controls (0x80-0x9f, 0x9b is
#: a CSI) and bidirectional overrides. Escaped as \\uXXXX they read back as the same text.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def print_json(obj: Any) -> None:
    """Print exactly one JSON document on stdout (no character in it can act on a terminal)."""
    text = json.dumps(obj, ensure_ascii=False, indent=2, default=str)
    text = _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def stderr_console():
    """A rich console on stderr (progress bars, logs, human messages); text from data is shown inertly."""
    from rebase_tui.inert import SafeConsole

    return SafeConsole(stderr=True, highlight=False)


def stdout_console():
    """A rich console on stdout (tables a user reads); text from data is shown inertly."""
    from rebase_tui.inert import SafeConsole

    return SafeConsole(highlight=False)


def fail(exc: EngineError) -> int:
    """Report an expected failure as one line on stderr and return its exit code."""
    from rebase_tui.inert import inert

    print(inert(f"rebase-tui: {exc}"), file=sys.stderr)
    return exc.exit_code


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: a whole number of at least ``minimum`` (``--threads -3`` or ``--top 0`` is
    refused with one line naming the option, instead of meaning something else in silence)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} must be at least {minimum}")
        return value

    parse.__name__ = f"whole number >= {minimum}"
    return parse


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
