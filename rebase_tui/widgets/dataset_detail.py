"""A dataset opened from the Data screen: its configs (split, columns, rows held) and the first rows of each.

Every text comes from the dataset, so it is shown inertly (control characters as visible symbols, never
markup) and each cell is cut to a few lines: a 1 MB cell must not stall the dialog.
"""

from __future__ import annotations

import json
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from engine.datastore.preview import DatasetPreview
from rebase_tui.inert import inert

CELL_CHARS = 300


def cell(value: object) -> str:
    """A cell as one inert line of at most CELL_CHARS characters."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text[: CELL_CHARS * 2].split())
    return inert(text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…")


def describe(preview: DatasetPreview) -> Content:
    """The configs and first rows as text."""
    parts: list[str | tuple[str, str]] = []
    for c in preview.configs:
        total = f" of {c.rows_total:,}" if c.rows_total is not None and c.rows_total != c.rows else ""
        parts += [(f"{inert(c.name)} · {inert(c.split)}", "bold $accent"),
                  (f"  {c.rows:,} row{'' if c.rows == 1 else 's'}{total} · {len(c.columns)} columns\n",
                   "$foreground-muted"),
                  ("columns: ", "$foreground-muted"), ", ".join(inert(col) for col in c.columns) or "—", "\n"]
        for i, row in enumerate(c.first_rows, start=1):
            parts.append((f"row {i}\n", "bold"))
            for key, value in row.items():
                parts += [(f"  {inert(str(key))}: ", "$foreground-muted"), cell(value), "\n"]
        parts.append("\n")
    return Content.assemble(*parts) if parts else Content("no configs")


class DatasetDetail(ModalScreen[None]):
    """The dataset's configs, columns and first rows; ``escape`` (or ``enter``) closes it."""

    DEFAULT_CSS = """
    DatasetDetail { align: center middle; }
    DatasetDetail > Vertical { width: 90%; height: 90%; border: thick $primary; background: $surface; padding: 0 1; }
    DatasetDetail #detail-title { color: $foreground-muted; }
    DatasetDetail VerticalScroll { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter", "close", "Close", id="data.detail.close", tooltip="back to the datasets"),
    ]

    def __init__(self, preview: DatasetPreview) -> None:
        super().__init__()
        self.preview = preview

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Content(f"{inert(self.preview.name)} — escape closes"), id="detail-title")
            with VerticalScroll(id="detail-body"):
                yield Static(describe(self.preview), id="detail-text")

    def on_mount(self) -> None:
        self.query_one("#detail-body").focus()

    def action_close(self) -> None:
        """Back to the Data screen."""
        self.dismiss(None)
