"""The review queue's list: thousands of examples, one line each (id, state, ✎ when edited, the votes of a
self-consistent example, the input), drawn with the line API.

Only the visible lines are rendered (``render_line``), so moving the cursor or changing one example's
status repaints one or two lines whatever the queue's size (a 5,000-row DataTable rebuilt per key costs
~0.7 s here). The rows themselves are a plain list of :class:`QueueRow` owned by the
screen; the widget only draws ``rows[i]`` for the visible ``i`` and keeps the cursor.

Text comes from datasets and models: it is drawn as plain segments (never markup) with control
characters and newlines flattened.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from rebase_tui.inert import inert

#: Status → the short label shown in the list's status column.
STATUS_LABELS = {
    "pending": "pending",
    "accepted": "accepted",
    "rejected": "rejected",
    "failed": "failed",
    "duplicate": "dup",
}


def flatten(text: str, limit: int = 400) -> str:
    """One display line: newlines and tabs become spaces, other control characters their visible symbols
    (text is never markup)."""
    text = inert(text[:limit])
    return "".join(" " if ch in "\n\t" else ch for ch in text)


@dataclass
class QueueRow:
    """One example as the list shows it (kept in memory: 5,000 of these are ~1 MB)."""

    id: int
    status: str
    edited: bool
    preview: str
    search_text: str = ""
    """Lower-cased input + output, what the search box matches."""
    agreement: float | None = None
    """The share of sampled answers that agreed (``transform --samples``), None without a vote."""
    votes: str = ""
    """The same as votes (``"2/3"``), empty without a vote."""


class ExampleList(ScrollView, can_focus=True):
    """A cursor over ``rows``; posts :class:`ExampleList.Highlighted` when the cursor moves."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "example-list--cursor",
        "example-list--pending",
        "example-list--accepted",
        "example-list--rejected",
        "example-list--failed",
        "example-list--duplicate",
        "example-list--edited",
        "example-list--id",
    }
    DEFAULT_CSS = """
    ExampleList {
        background: $surface;
        height: 1fr;
    }
    ExampleList > .example-list--cursor { background: $panel; color: $foreground; text-style: bold; }
    ExampleList:focus > .example-list--cursor { background: $primary-muted; color: $foreground; }
    ExampleList > .example-list--pending { color: $review-pending; }
    ExampleList > .example-list--accepted { color: $review-accepted; }
    ExampleList > .example-list--rejected { color: $review-rejected; }
    ExampleList > .example-list--failed { color: $error; }
    ExampleList > .example-list--duplicate { color: $foreground-muted; }
    ExampleList > .example-list--edited { color: $review-edited; }
    ExampleList > .example-list--id { color: $foreground-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down,j", "move(1)", "Next", show=False, id="review.next", tooltip="next example"),
        Binding("up,k", "move(-1)", "Previous", show=False, id="review.prev", tooltip="previous example"),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("home,g", "first", "First", show=False, id="review.first", tooltip="first example"),
        Binding("end,G", "last", "Last", show=False, id="review.last", tooltip="last example"),
    ]

    class Highlighted(Message):
        """The cursor is on ``row`` (None when the list is empty)."""

        def __init__(self, example_list: ExampleList, row: QueueRow | None) -> None:
            super().__init__()
            self.example_list = example_list
            self.row = row

        @property
        def control(self) -> ExampleList:
            return self.example_list

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.rows: list[QueueRow] = []
        self.cursor = 0
        self._id_width = 4
        self._votes_width = 0
        """Width of the votes column (0: no row shown has votes, and the column is left out)."""

    # -- data ------------------------------------------------------------------------------
    def set_rows(self, rows: list[QueueRow], cursor: int | None = None) -> None:
        """Show ``rows`` (the current filter's result), keeping the cursor in range."""
        self.rows = rows
        self._id_width = max(4, len(str(max((r.id for r in rows), default=0))))
        self._votes_width = max((len(r.votes) for r in rows), default=0)
        self.virtual_size = Size(self.size.width, len(rows))
        target = self.cursor if cursor is None else cursor
        self.cursor = max(0, min(target, len(rows) - 1)) if rows else 0
        self.refresh()
        self._scroll_to_cursor()
        self.post_message(self.Highlighted(self, self.current))

    def refresh_row(self, index: int) -> None:
        """Repaint the line of ``rows[index]`` (after its status changed)."""
        if 0 <= index < len(self.rows):
            self.refresh_line(index)

    @property
    def current(self) -> QueueRow | None:
        """The row under the cursor."""
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    def move_to(self, index: int) -> None:
        """Put the cursor on ``index`` (clamped) and announce it."""
        if not self.rows:
            return
        index = max(0, min(index, len(self.rows) - 1))
        if index == self.cursor:
            return
        old, self.cursor = self.cursor, index
        self.refresh_line(old)
        self.refresh_line(index)
        self._scroll_to_cursor()
        self.post_message(self.Highlighted(self, self.current))

    def _scroll_to_cursor(self) -> None:
        self.scroll_to_region(Region(0, self.cursor, 1, 1), animate=False, immediate=True, force=True)

    # -- actions ---------------------------------------------------------------------------
    def action_move(self, delta: int) -> None:
        """Move the cursor by ``delta`` rows."""
        self.move_to(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        """Move by one screenful."""
        self.move_to(self.cursor + direction * max(1, self.scrollable_content_region.height - 1))

    def action_first(self) -> None:
        """Go to the first row."""
        self.move_to(0)

    def action_last(self) -> None:
        """Go to the last row."""
        self.move_to(len(self.rows) - 1)

    # -- rendering -------------------------------------------------------------------------
    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.rows))

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        base = self.rich_style
        if index >= len(self.rows):
            return Strip.blank(width, base)
        row = self.rows[index]
        label = f"{STATUS_LABELS.get(row.status, row.status):<8}"
        mark = "✎" if row.edited else " "
        votes = f" {row.votes:>{self._votes_width}}" if self._votes_width else ""
        if index == self.cursor:  # the cursor's own colours: readable in every theme, whatever the state
            base = base + self.get_component_rich_style("example-list--cursor", partial=True)
            segments = [Segment(f"{row.id:>{self._id_width}} {label}{mark}{votes} {row.preview}", base)]
            return Strip(segments).crop_extend(scroll_x, scroll_x + width, base)
        status_style = self.get_component_rich_style(f"example-list--{row.status}", partial=True) \
            if f"example-list--{row.status}" in self.COMPONENT_CLASSES else Style()
        id_style = self.get_component_rich_style("example-list--id", partial=True)
        segments = [
            Segment(f"{row.id:>{self._id_width}} ", base + id_style),
            Segment(label, base + status_style),
            Segment(mark, base + self.get_component_rich_style("example-list--edited", partial=True)),
            Segment(votes, base + id_style),
            Segment(" " + row.preview, base),
        ]
        return Strip(segments).crop_extend(scroll_x, scroll_x + width, base)
