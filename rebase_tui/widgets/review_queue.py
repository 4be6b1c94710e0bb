"""The Review screen's in-memory queue: every example of a task as a :class:`QueueRow`, the filter
(state + search), the order (by id, or by the agreement of sampled answers) and per-state counts, kept up
to date one row at a time.

Loading 5,000 examples is one DuckDB query (~10 ms); after that, a decision changes one row and one count,
so no key ever reloads or re-filters the whole queue. The rows shown stay put until the filter or the
search changes (an accepted example keeps its place, so undo and a second look are easy).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from engine.review import ExampleBrief, ExampleRecord
from rebase_tui.widgets.example_list import QueueRow, flatten

#: Every example state, in display order (the engine's states, migrations/0004_teacher.sql).
STATES = ("pending", "accepted", "rejected", "failed", "duplicate")
#: The filters, in display order ("all" shows every state).
FILTERS = ("all",) + STATES


def make_row(example: ExampleBrief | ExampleRecord) -> QueueRow:
    """A list row for an example."""
    return QueueRow(example.id, example.status, example.edited, flatten(example.input, 300),
                    (example.input + "\n" + example.output).lower(), example.agreement, example.votes)


class ReviewQueue:
    """All of a task's examples, the current filter and the rows it shows."""

    def __init__(self, rows: Iterable[QueueRow] = ()) -> None:
        self.rows: list[QueueRow] = list(rows)
        self.by_id: dict[int, QueueRow] = {r.id: r for r in self.rows}
        self.counts: Counter[str] = Counter(r.status for r in self.rows)
        self.filter = "all"
        self.search = ""
        self.order = "id"
        """``id`` (oldest first) or ``agreement`` (the least agreed first; examples without a vote last)."""
        self.shown: list[QueueRow] = list(self.rows)

    def apply(self, filter_: str | None = None, search: str | None = None,
              order: str | None = None) -> list[QueueRow]:
        """Recompute the shown rows for a new filter, search and/or order (O(n log n), only when one of them
        changes)."""
        if filter_ is not None:
            self.filter = filter_
        if search is not None:
            self.search = search.strip().lower()
        if order is not None:
            self.order = order
        rows = self.rows if self.filter == "all" else [r for r in self.rows if r.status == self.filter]
        if self.search:
            needle = self.search
            rows = [r for r in rows if needle in r.search_text]
        if self.order == "agreement":
            rows = sorted(rows, key=lambda r: (r.agreement is None, r.agreement or 0.0, r.id))
        self.shown = list(rows)
        return self.shown

    @property
    def has_votes(self) -> bool:
        """True when some example of the task was made by a vote of sampled answers."""
        return any(r.agreement is not None for r in self.rows)

    def update(self, example: ExampleRecord) -> QueueRow:
        """Apply an example's new state (after a decision or an undo); add it when it is new."""
        row = self.by_id.get(example.id)
        fresh = make_row(example)
        if row is None:
            self.rows.append(fresh)
            self.by_id[fresh.id] = fresh
            self.counts[fresh.status] += 1
            return fresh
        self.counts[row.status] -= 1
        self.counts[fresh.status] += 1
        row.status, row.edited, row.preview, row.search_text = (fresh.status, fresh.edited, fresh.preview,
                                                                fresh.search_text)
        row.agreement, row.votes = fresh.agreement, fresh.votes
        return row

    def set_status(self, example_id: int, status: str) -> None:
        """Change one row's state (and the counts) before the database confirms it."""
        row = self.by_id.get(example_id)
        if row is not None and row.status != status:
            self.counts[row.status] -= 1
            self.counts[status] += 1
            row.status = status

    def index_of(self, example_id: int) -> int | None:
        """Where example ``example_id`` is among the shown rows (None when it is filtered out)."""
        for i, row in enumerate(self.shown):
            if row.id == example_id:
                return i
        return None

    def summary(self) -> str:
        """``all 5,000 · pending 4,200 · accepted 700 …`` with the active filter marked."""
        parts = []
        for key, name in enumerate(FILTERS, start=1):
            n = len(self.rows) if name == "all" else self.counts.get(name, 0)
            mark = "▸" if name == self.filter else " "
            parts.append(f"{mark}{key} {name} {n:,}")
        text = "  ".join(parts)
        if self.order == "agreement":
            text += "   sorted by agreement, least first"
        if self.search:
            text += f"   search: {self.search!r} → {len(self.shown):,} shown"
        return text
