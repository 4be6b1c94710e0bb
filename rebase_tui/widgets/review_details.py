"""The Review screen's example beside its source row: loaded for the row under the cursor right after the
list's own repaint, cached per example, and the next row prefetched on a reader thread, so the usual next
key finds it ready and the UI thread never waits on DuckDB for it."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from engine.review import ExampleRecord
from rebase_tui.widgets import review_backend as backend
from rebase_tui.widgets.example_card import ExampleCard, SourceRowView
from rebase_tui.widgets.example_list import ExampleList

if TYPE_CHECKING:
    from rebase_tui.screens.review import ReviewScreen

    _Base = ReviewScreen
else:
    _Base = object


def _read_detail(ws: Any, example_id: int) -> tuple[ExampleRecord | None, str, Any]:
    """(example, source origin, source fields) of one example (two short queries; any thread)."""
    example = backend.get_example(ws, example_id)
    origin, data = backend.source_of(ws, example)
    return example, origin, data



class ReviewDetails(_Base):
    """Card and source row of the example under the cursor, for :class:`~rebase_tui.screens.review.ReviewScreen`."""

    def on_example_list_highlighted(self, message: ExampleList.Highlighted) -> None:
        """Show the example under the cursor right after the list's own repaint: the cursor move is
        painted first, then the card (from the cache when prefetched, else one query). A named handler, not
        ``@on``: Textual collects ``@on`` handlers from its own classes only, not from a mixin."""
        row = message.row
        if row is None:
            self._show_detail(None)
            return
        self._wanted = row.id
        self.call_after_refresh(self._load_detail, row.id)

    def _load_detail(self, example_id: int) -> None:
        if self._wanted != example_id:
            return  # the cursor moved on before this ran: only the newest row is loaded
        self._show_detail(example_id)

    def _detail(self, example_id: int) -> tuple[ExampleRecord | None, str, Any]:
        """(example, source origin, source fields), cached per example until a decision changes it."""
        got = self._details.get(example_id)
        if got is None:
            got = _read_detail(self.rebase.workspace, example_id)
            self._stale.discard(example_id)
            self._details[example_id] = got
            if len(self._details) > 512:
                self._details.pop(next(iter(self._details)))
        return got

    def _show_detail(self, example_id: int | None) -> None:
        card = self.query_one("#review-card", ExampleCard)
        source = self.query_one("#review-source", SourceRowView)
        if example_id is None:
            card.show(None)
            source.show("", None)
            return
        example, origin, data = self._detail(example_id)
        card.show(example, missing_id=example_id)
        if source.shown_origin != origin:
            source.show(origin, data)
        nxt = self.example_list.cursor + 1
        if nxt < len(self.example_list.rows) and self.example_list.rows[nxt].id not in self._details:
            self.call_after_refresh(self._prefetch, self.example_list.rows[nxt].id)

    def _prefetch(self, example_id: int) -> None:
        """Load the next row's details on the reader thread, so the usual next key (a, r, j) finds them
        cached and the UI thread never waits on DuckDB for it."""
        if example_id in self._details or example_id in self._prefetching:
            return
        self._prefetching.add(example_id)
        self.run_worker(self._prefetch_async(example_id), group="review-prefetch", exclusive=False,
                        exit_on_error=False, description="prefetch the next example")

    async def _prefetch_async(self, example_id: int) -> None:
        ws = self.rebase.workspace
        try:
            got = await asyncio.get_running_loop().run_in_executor(self._reader, _read_detail, ws, example_id)
        except Exception:  # a prefetch is only a hint: the row loads normally when shown
            return
        finally:
            self._prefetching.discard(example_id)
        if example_id not in self._details and example_id not in self._stale:
            self._details[example_id] = got

