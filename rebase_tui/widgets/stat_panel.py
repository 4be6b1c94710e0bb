"""A small panel of named figures (done, failed, tokens/s, ETA...), one per line."""

from __future__ import annotations

from collections.abc import Iterable

from textual.content import Content
from textual.widgets import Static

from rebase_tui.widgets.text import shown


class StatPanel(Static):
    """Labelled values; :meth:`set` replaces them all (values are plain text, never markup)."""

    DEFAULT_CSS = """
    StatPanel { height: auto; padding: 0 1; border: round $primary-muted; }
    """

    def __init__(self, title: str = "", *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", id=id, classes=classes)
        self.border_title = title
        self.values: dict[str, str] = {}

    def set(self, items: Iterable[tuple[str, object]]) -> None:
        """Show ``items`` as ``label  value`` lines."""
        self.values = {label: str(value) for label, value in items}
        width = max((len(k) for k in self.values), default=0)
        lines = [Content.assemble((f"{label:<{width}}", "$foreground-muted"), "  ", shown(value, 500))
                 for label, value in self.values.items()]
        self.update(Content("\n").join(lines))
