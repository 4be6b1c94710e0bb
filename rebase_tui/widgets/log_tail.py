"""A bounded log: the last lines of a worker's log or of teacher failures, shown verbatim."""

from __future__ import annotations

from textual.widgets import Log

from rebase_tui.inert import inert
from rebase_tui.widgets.text import one_line

#: Characters of one log line shown (a teacher's reply or a worker's output can be one enormous line).
LINE_CHARS = 2000


class LogTail(Log):
    """``Log`` keeps text plain (no markup); this one is bounded and says so in its border."""

    DEFAULT_CSS = """
    LogTail { height: 1fr; border: round $primary-muted; background: $surface; }
    """

    def __init__(self, title: str = "log", max_lines: int = 500, *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(max_lines=max_lines, auto_scroll=True, id=id, classes=classes)
        self.border_title = title

    def add(self, text: str) -> None:
        """Append ``text`` (any number of lines, each shown inertly and cut to LINE_CHARS characters)."""
        lines = text[: LINE_CHARS * 50].splitlines() or [""]
        self.write_lines([one_line(line, LINE_CHARS) if len(line) > LINE_CHARS else inert(line).replace("\t", " ")
                          for line in lines])
