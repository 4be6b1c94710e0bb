"""What the Review list shows: the state filter, the order (by id, or by the agreement of sampled answers)
and the text search, for :class:`~rebase_tui.screens.review.ReviewScreen`. Each change re-applies the queue
once and keeps the cursor on the example it was on when that example is still shown."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.widgets import Input

from rebase_tui.widgets.review_queue import FILTERS

if TYPE_CHECKING:
    from rebase_tui.screens.review import ReviewScreen

    _Base = ReviewScreen
else:
    _Base = object


class ReviewFilters(_Base):
    """Filter, order and search of the Review list."""

    def action_filter(self, name: str) -> None:
        """Show only examples in state ``name`` ("all" for every state)."""
        current = self.example_list.current
        self.queue.apply(name)
        self._show_rows(keep_id=current.id if current else None)

    def action_cycle_filter(self) -> None:
        """Go to the next state filter."""
        self.action_filter(FILTERS[(FILTERS.index(self.queue.filter) + 1) % len(FILTERS)])

    def action_sort(self) -> None:
        """Order the list by id, or by the agreement of sampled answers (the least agreed first)."""
        if not self.queue.has_votes:
            self.notify(f"no example of task {self.task_name} was made by a vote: transform with samples 3 or "
                        "more (F5) to sort by agreement", timeout=5)
            return
        current = self.example_list.current
        self.queue.apply(order="id" if self.queue.order == "agreement" else "agreement")
        self._show_rows(keep_id=current.id if current else None)

    def action_search(self) -> None:
        """Show and focus the search box."""
        box = self.query_one("#review-search", Input)
        box.add_class("-active")
        box.focus()

    def action_clear_search(self) -> None:
        """Clear the search and go back to the list."""
        box = self.query_one("#review-search", Input)
        if box.value:
            box.value = ""
            self._search("")
        box.remove_class("-active")
        self.example_list.focus()

    def _search(self, text: str) -> None:
        current = self.example_list.current
        self.queue.apply(search=text)
        self._show_rows(keep_id=current.id if current else None)
