"""Text from data on screen: inert and bounded.

Dataset cells, task text, teacher replies, run logs and error messages quoting them are shown through
these two functions. Both apply :func:`rebase_tui.inert.inert` (control characters become visible symbols:
an escape sequence in a cell never clears the screen or retitles the window) and never read markup
(``[bold]`` shows as typed). Both also bound the text: a 1 MB cell would otherwise be wrapped into tens of
thousands of lines on every repaint and freeze the screen.
"""

from __future__ import annotations

from textual.content import Content

from rebase_tui.inert import inert

#: Characters of one text shown in a detail pane, card or dialog (the rest is named, not shown).
SHOWN_CHARS = 20_000


def shown(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text`` inert, cut to ``limit`` characters with a note of how many more there are."""
    if len(text) > limit:
        return inert(text[:limit]) + f"… ({len(text) - limit:,} more characters)"
    return inert(text)


def one_line(text: str, width: int) -> str:
    """``text`` on one inert line (whitespace runs as one space), cut to ``width`` characters."""
    line = " ".join(text[: width * 4 + 64].split())
    line = inert(line)
    return line if len(line) <= width else line[: max(0, width - 1)] + "…"


def plain(text: str, limit: int = SHOWN_CHARS) -> Content:
    """``text`` as Content: inert, bounded, never markup."""
    return Content(shown(text, limit))
