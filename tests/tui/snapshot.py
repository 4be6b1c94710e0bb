"""In-house SVG snapshots, so that a layout change shows as a reviewable diff: export the screen,
normalise, compare with a stored file.

``await assert_snapshot(pilot, "name", request)`` exports ``app.export_screenshot(simplify=True)`` after
making the screen deterministic (no cursor blink, no toasts, a fixed sub-title), replaces Textual's
per-run ``terminal-<digits>`` ids with a constant, and compares with ``tests/tui/snapshots/<name>.svg``.
Run pytest with ``--update-snapshots`` to (re)write the files; review the diff by eye before committing.
This module is registered as a pytest plugin in tests/conftest.py (it adds the option).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
_IDS = re.compile(r"terminal-\d+")
#: Times a screen shows of things made during the test (run ids, start times): the clock's, not the layout's.
_TIMES = ((re.compile(r"\d{8}-\d{6}-"), "YYYYMMDD-HHMMSS-"),
          (re.compile(r"\d\d-\d\d&#160;\d\d:\d\d"), "MM-DD&#160;hh:mm"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-snapshots", action="store_true", default=False,
                     help="rewrite tests/tui/snapshots/*.svg from the current rendering")


def normalise(svg: str) -> str:
    """Drop what changes from run to run (the ids Textual numbers per process, and the clock's times)."""
    svg = _IDS.sub("terminal", svg)
    for pattern, fixed in _TIMES:
        svg = pattern.sub(fixed, svg)
    return svg


async def steady(pilot) -> None:  # type: ignore[no-untyped-def]
    """Make the screen deterministic: nothing focused (no blinking cursor), no toasts, a fixed sub-title."""
    app = pilot.app
    await pilot.pause()
    app.sub_title = "workspace"
    app.clear_notifications()
    for widget in app.screen.query("Input, TextArea"):
        widget.cursor_blink = False  # type: ignore[attr-defined]
    app.screen.set_focus(None)  # no text cursor at all: its blink phase is timing-dependent
    await pilot.pause()
    await pilot.pause()


async def assert_snapshot(pilot, name: str, request: pytest.FixtureRequest) -> None:  # type: ignore[no-untyped-def]
    """Compare the current screen with ``snapshots/<name>.svg`` (or write it with --update-snapshots)."""
    await steady(pilot)
    svg = normalise(pilot.app.export_screenshot(simplify=True))
    path = SNAPSHOTS / f"{name}.svg"
    if request.config.getoption("--update-snapshots") or not path.exists():
        if not request.config.getoption("--update-snapshots"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(svg, encoding="utf-8")
            pytest.fail(f"snapshot {path.name} did not exist; written now — review it and run again")
        path.write_text(svg, encoding="utf-8")
        return
    expected = path.read_text(encoding="utf-8")
    if svg != expected:
        failed = Path(tempfile.gettempdir()) / "rebase-tui-snapshots" / f"{name}.actual.svg"
        failed.parent.mkdir(parents=True, exist_ok=True)
        failed.write_text(svg, encoding="utf-8")
        pytest.fail(f"screen differs from snapshot {path.name}; the new rendering is in {failed} "
                    "(compare them; run pytest --update-snapshots to accept)")
