"""Text from data shown inertly: control characters become visible symbols, never terminal commands.

Dataset cells, cards, task text and teacher output can hold escape sequences (``\\x1b[2J`` clears the screen,
``\\x1b]0;…\\x07`` retitles the window; log and code datasets hold ANSI colours in normal use) and bidirectional
overrides that reorder what the user reads. Every output path shows such text through :func:`inert`:
C0 controls (except tab and newline) become their Unicode control pictures (``␛[2J``), DEL becomes ``␡``, and
C1 controls and bidirectional overrides become ``\\x9b``-style escapes. ``--json`` output needs nothing more:
JSON already escapes them.

:class:`SafeConsole` is the rich console every CLI command prints through: it applies :func:`inert` to every
string it renders, so a table cell, a progress description or a message can never carry a raw escape.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from rich.console import Console, ConsoleOptions, RenderableType
from rich.segment import Segment

_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    ch = match.group()
    code = ord(ch)
    if code < 0x20:
        return chr(0x2400 + code)          # ␀ … ␟ (␛ for ESC)
    if code == 0x7F:
        return "\u2421"                    # ␡
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def inert(text: str) -> str:
    """``text`` with every control character (but tab and newline) shown as a visible, harmless symbol."""
    return _UNSAFE.sub(_visible, text) if _UNSAFE.search(text) else text


class SafeConsole(Console):
    """A rich Console that renders every string inertly (rich's own styling and cursor codes are unaffected)."""

    def render_str(self, text: str, **kwargs: Any) -> Any:
        return super().render_str(inert(text), **kwargs)

    def render(self, renderable: RenderableType, options: ConsoleOptions | None = None) -> Iterable[Segment]:
        for segment in super().render(renderable, options):
            if segment.control or not _UNSAFE.search(segment.text):
                yield segment
            else:
                yield Segment(inert(segment.text), segment.style)
