"""A bounded log: the last lines of a worker's log or of teacher failures, shown verbatim."""

from __future__ import annotations

from textual.widgets import Log


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
        """Append ``text`` (any number of lines; control characters other than newlines are dropped)."""
        clean = "".join(ch if ch >= " " or ch in "\n\t" else " " for ch in text)
        self.write_lines(clean.splitlines() or [""])
