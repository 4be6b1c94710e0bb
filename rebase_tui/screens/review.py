"""Review stage: accept, reject and edit the teacher's examples by keyboard.

The list (:class:`ExampleList`, line API) has focus when the screen opens; the selected example and its
source row sit beside it. Decisions go to :mod:`engine.review` (an append-only decision log in DuckDB,
so undo survives a restart and the CLI sees the same state) on one writer thread, in order; the screen
paints the one row that changed at once, so every key's effect is painted in a few milliseconds whatever
the queue's size (bench/review.py measures it).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Static

from engine.errors import EngineError
from engine.review import ExampleRecord
from rebase_tui.screens.base import StageScreen
from rebase_tui.widgets import review_backend as backend
from rebase_tui.widgets.actions_palette import ScreenActions
from rebase_tui.widgets.example_card import ExampleCard, SourceRowView
from rebase_tui.widgets.example_editor import ExampleEditor, ReasonDialog
from rebase_tui.widgets.example_list import ExampleList
from rebase_tui.widgets.review_details import ReviewDetails
from rebase_tui.widgets.review_filters import ReviewFilters
from rebase_tui.widgets.review_queue import FILTERS, ReviewQueue
from rebase_tui.widgets.review_regenerate import ReviewRegenerate
from rebase_tui.widgets.review_rules import ReviewRules
from rebase_tui.widgets.text import plain

#: Actions that need the list to have focus (single letters are safe only then: in a text field they are typing).
LIST_ACTIONS = {"accept", "reject", "reject_reason", "edit", "accept_all", "reject_all",
                "regenerate", "filter", "cycle_filter", "sort"}


class ReviewScreen(ReviewDetails, ReviewFilters, ReviewRegenerate, ReviewRules, StageScreen):
    """The examples of the current task, their states, and one example beside its source row."""

    STAGE = "review"
    CSS_PATH = "review.tcss"
    COMMANDS = {ScreenActions}
    # the footer shows the keys in this order: the stage-wide ones first, then the list's by how often they serve
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+j", "next_pending", "Next pending", id="review.start", priority=True,
                tooltip="put the cursor on the next pending example (the list gets the focus)"),
        Binding("ctrl+o", "rules", "Rules", id="review.rules", priority=True,
                tooltip="rules for the teacher from the rejection reasons: propose, accept, edit, drop; "
                        "make the pending examples again with them"),
        Binding("a", "accept", "Accept", id="review.accept", tooltip="accept the example, go to the next"),
        Binding("r", "reject", "Reject", id="review.reject", tooltip="reject the example, go to the next"),
        Binding("R", "reject_reason", "Reject…", id="review.reject_reason", tooltip="reject with a reason (reasons become rules: ctrl+o)"),
        Binding("e", "edit", "Edit", id="review.edit", tooltip="edit input/output; saving accepts"),
        Binding("u", "undo", "Undo", id="review.undo", tooltip="undo the last decision (survives restarts)"),
        Binding("s", "sort", "Sort", id="review.sort",
                tooltip="order the list by id, or by the agreement of sampled answers (the least agreed first)"),
        Binding("f", "cycle_filter", "Filter", id="review.filter", tooltip="next state filter"),
        Binding("slash", "search", "Search", id="review.search", tooltip="search input and output text"),
        Binding("n", "regenerate", "Regenerate", id="review.regenerate",
                tooltip="ask the teacher again for the same source row"),
        Binding("A", "accept_all", "Accept shown", id="review.accept_all",
                tooltip="accept every example the filter shows"),
        Binding("X", "reject_all", "Reject shown", id="review.reject_all",
                tooltip="reject every example the filter shows"),
        *[Binding(str(i), f"filter('{name}')", f"Show {name}", show=False, id=f"review.filter.{name}",
                  tooltip=f"show {name} examples") for i, name in enumerate(FILTERS, start=1)],
        Binding("escape", "clear_search", "Clear search", show=False, id="review.clear_search"),
        Binding("ctrl+f", "search", "Search", id="review.search_any", show=False, priority=True,
                tooltip="search input and output text"),
        Binding("ctrl+z", "undo", "Undo", id="review.undo_any", show=False, priority=True,
                tooltip="undo the last decision (survives restarts)"),
    ]
    PANES = (("#review-list", "examples"), ("#review-card", "example"), ("#review-source", "source row"))

    def __init__(self) -> None:
        super().__init__()
        self.task_name: str | None = None
        self.queue = ReviewQueue()
        self._loaded_for: str | None = None
        self._regenerating: set[int] = set()
        self._details: dict[int, tuple[dict[str, Any], str, Any]] = {}
        self._wanted: int | None = None
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="review-writes")
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="review-reads")
        self._prefetching: set[int] = set()
        self._stale: set[int] = set()
        """Examples changed since a prefetch may have started: its result is dropped."""

    # -- layout ----------------------------------------------------------------------------
    def compose_body(self) -> ComposeResult:
        with Vertical(id="review-pane"):
            with Horizontal(id="review-top"):
                yield Static("", id="review-filters")
                yield Input(placeholder="search input/output (enter keeps, escape clears)", id="review-search")
            with Horizontal(id="review-main"):
                yield ExampleList(id="review-list")
                yield ExampleCard(id="review-card")
                yield SourceRowView(id="review-source")

    @property
    def example_list(self) -> ExampleList:
        """The list widget."""
        return self.query_one("#review-list", ExampleList)

    def empty_message(self) -> str | None:
        if self.rebase.count("examples"):
            return None
        return ("No examples to review yet.\n\nExamples appear here as the teacher writes them (F5); "
                "accept, reject or edit each one beside its source row.")

    def refresh_state(self) -> None:
        super().refresh_state()
        empty = self.empty_message() is not None
        self.query_one("#review-pane").display = not empty
        if empty:
            return
        # the selected task's examples (none yet is shown as such); with no task selected, the latest one's
        task = self.rebase.task_name or backend.current_task(self.rebase.workspace, None)
        if task != self._loaded_for or backend.changed_since_load(self.rebase.workspace, self):
            self.reload(task)
        self.example_list.focus()

    def reload(self, task: str | None = None) -> None:
        """Load every example of ``task`` (one query) and show the current filter."""
        self.task_name = task if task is not None else self.task_name
        self._loaded_for = self.task_name
        rows = backend.load_rows(self.rebase.workspace, self.task_name) if self.task_name else []
        self._details.clear()
        self._load_mark = backend.load_mark(self.rebase.workspace)
        current = self.example_list.current
        old = self.queue
        self.queue = ReviewQueue(rows)
        self.queue.apply(old.filter, old.search, old.order)
        self._show_rows(keep_id=current.id if current else None)

    def _show_rows(self, keep_id: int | None = None) -> None:
        idx = self.queue.index_of(keep_id) if keep_id is not None else None
        self.example_list.set_rows(self.queue.shown, cursor=idx if idx is not None else 0)
        self._paint_summary()

    def _paint_summary(self) -> None:
        label = f"task {self.task_name}   " if self.task_name else ""
        if self.task_name and not self.queue.rows:
            label += "no examples yet: the teacher writes them on the Transform stage (F5)   "
        # One line of fixed size (height 1, width 1fr): no relayout of the screen per decision.
        self.query_one("#review-filters", Static).update(plain(label + self.queue.summary(), 500), layout=False)

    # -- keys ------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in LIST_ACTIONS:
            if self.focused is not self.example_list:
                return None  # shown dimmed: focus the list to use it
            if action in {"accept", "reject", "reject_reason", "edit", "regenerate"} \
                    and self.example_list.current is None:
                return None
        return True

    # Decisions are painted at once (the row's new state, the counts, the cursor on the next row) and
    # written through engine.review on one writer thread, in order; when a write returns, the rows are
    # repainted from what DuckDB holds (an engine refusal puts the truth back and says why). A DuckDB
    # commit costs ~15 ms here, which would otherwise sit between every key and its paint.
    def _paint_examples(self, examples: list[ExampleRecord]) -> None:
        """Repaint the rows of ``examples`` (fresh from the database) wherever they are shown."""
        lst = self.example_list
        positions = {r.id: i for i, r in enumerate(self.queue.shown)} if len(examples) > 1 else None
        for example in examples:
            ex_id = example.id
            self._details.pop(ex_id, None)
            self._stale.add(ex_id)
            self.queue.update(example)
            idx = positions.get(ex_id) if positions is not None else self.queue.index_of(ex_id)
            if idx is not None:
                lst.refresh_row(idx)
        self._paint_summary()
        current = lst.current
        if current is not None and any(e.id == current.id for e in examples):
            self._show_detail(current.id)

    def _optimistic(self, ids: list[int], status: str, advance: bool) -> None:
        """Show ``ids`` as ``status`` now (the write follows), then move to the next row."""
        lst = self.example_list
        positions = {r.id: i for i, r in enumerate(lst.rows)} if len(ids) > 1 else {lst.current.id: lst.cursor} \
            if lst.current is not None else {}
        for ex_id in ids:
            self._details.pop(ex_id, None)
            self._stale.add(ex_id)
            self.queue.set_status(ex_id, status)
            idx = positions.get(ex_id)
            if idx is not None:
                lst.refresh_row(idx)
        card = self.query_one("#review-card", ExampleCard)
        if card.shown_id in ids:  # the card says what the row says, before the write returns
            card.restatus(status)
        self._paint_summary()
        if advance and lst.cursor < len(lst.rows) - 1:
            lst.move_to(lst.cursor + 1)

    def _write(self, fn: Any, *args: Any, ids: list[int] | None = None,
               then: Any = None) -> None:
        """Run ``fn(ws, task, *args)`` on the writer thread; then repaint from the database."""
        self.run_worker(self._write_async(fn, args, ids or [], then), group="review-write", exclusive=False,
                        exit_on_error=False, description="write a review decision")

    async def _write_async(self, fn: Any, args: tuple[Any, ...], ids: list[int], then: Any) -> None:
        loop = asyncio.get_running_loop()
        ws, task = self.rebase.workspace, self.task_name
        try:
            result = await loop.run_in_executor(self._writer, fn, ws, task, *args)
        except EngineError as exc:
            self.notify(str(exc), severity="error", timeout=8)
            result = None
        except Exception as exc:  # never let a write failure take the app down
            from rebase_tui.jobs import describe_error

            self.notify(describe_error(exc), severity="error", timeout=8)
            result = None
        if result is None and ids:  # put the truth back
            result = await loop.run_in_executor(self._writer, backend.get_examples, ws, ids)
        if result is not None:
            if then is not None:
                then(result)
            else:
                self._paint_examples(result)

    def stoppers(self) -> list[Any]:
        """The reader and writer threads: decisions already sent are written before the workspace closes."""

        def reader(_timeout: float) -> bool:
            self._reader.shutdown(wait=True, cancel_futures=True)
            return True

        def writer(_timeout: float) -> bool:
            self._writer.shutdown(wait=True)
            return True

        return [reader, writer]

    def on_unmount(self) -> None:
        self._reader.shutdown(wait=True, cancel_futures=True)  # a running read must end before the close
        self._writer.shutdown(wait=True)  # decisions already sent are written before the workspace closes

    async def flush_writes(self) -> None:
        """Wait until every decision sent so far is written (tests and the bench use it)."""
        await asyncio.get_running_loop().run_in_executor(self._writer, lambda: None)
        for worker in [w for w in self.workers if w.group == "review-write"]:
            await worker.wait()

    def action_next_pending(self) -> None:
        """Focus the list and put the cursor on the next pending example (wrapping around)."""
        lst = self.example_list
        lst.focus()
        rows = lst.rows
        if not rows:
            return
        order = list(range(lst.cursor + 1, len(rows))) + list(range(0, lst.cursor + 1))
        nxt = next((i for i in order if rows[i].status == "pending"), None)
        if nxt is None:
            self.notify("no pending example in this list", timeout=3)
        else:
            lst.move_to(nxt)

    def action_accept(self) -> None:
        """Accept the example under the cursor and go to the next."""
        row = self.example_list.current
        if row is not None and self.task_name:
            self._optimistic([row.id], "accepted", advance=True)
            self._write(backend.accept, [row.id], ids=[row.id])

    def action_reject(self, reason: str | None = None) -> None:
        """Reject the example under the cursor and go to the next."""
        row = self.example_list.current
        if row is not None and self.task_name:
            self._optimistic([row.id], "rejected", advance=True)
            self._write(backend.reject, [row.id], reason, ids=[row.id])

    def action_reject_reason(self) -> None:
        """Ask for a reason, then reject."""
        if self.example_list.current is None:
            return

        def done(reason: str | None) -> None:
            self.example_list.focus()
            if reason is not None:
                self.action_reject(reason or None)

        self.app.push_screen(ReasonDialog(), done)

    def action_edit(self) -> None:
        """Edit the example in a modal; saving accepts it."""
        row = self.example_list.current
        if row is None or not self.task_name:
            return
        example = backend.get_example(self.rebase.workspace, row.id)
        example_id = row.id
        if example is None:
            self.notify(f"example #{example_id} no longer exists", severity="warning")
            return

        def saved(fields: dict[str, str] | None) -> None:
            self.example_list.focus()
            if fields is None:
                return
            idx = self.queue.index_of(example_id)
            if idx is not None and idx != self.example_list.cursor:
                self.example_list.move_to(idx)
            self._optimistic([example_id], "accepted", advance=True)
            self._write(backend.edit, example_id, fields, ids=[example_id])

        origin, data = backend.source_of(self.rebase.workspace, example)
        self.app.push_screen(ExampleEditor(example, origin, data), saved)

    def action_undo(self) -> None:
        """Undo the last decision of this task (the decision log survives restarts)."""
        if self.task_name:
            self._write(backend.undo, then=self._undone)

    def _undone(self, restored: list[dict[str, Any]]) -> None:
        if not restored:
            self.notify("nothing to undo")
            return
        first = restored[0].id
        for example in restored:
            self._details.pop(example.id, None)
            self._stale.add(example.id)
            self.queue.update(example)
        idx = self.queue.index_of(first)
        if idx is None:  # filtered out: show it again by re-applying the filter
            self.queue.apply()
            self._show_rows(keep_id=first)
            return
        self._paint_examples(restored)
        if idx != self.example_list.cursor:
            self.example_list.move_to(idx)

    def _bulk(self, verb: str) -> None:
        ids = [r.id for r in self.queue.shown]
        if not ids or not self.task_name:
            return
        from rebase_tui.widgets.dialogs import ConfirmDialog

        def confirmed(ok: bool | None) -> None:
            self.example_list.focus()
            if not ok:
                return
            status = "accepted" if verb == "accept" else "rejected"
            self._optimistic(ids, status, advance=False)
            self._write(backend.accept if verb == "accept" else backend.reject, ids, ids=ids)
            self.notify(f"{verb}ed {len(ids):,} examples (u undoes them in one step)", timeout=4)

        self.app.push_screen(ConfirmDialog(f"{verb.capitalize()} all {len(ids):,} examples shown "
                                           f"(filter: {self.queue.filter})?", yes=verb.capitalize()),
                             confirmed)

    def action_accept_all(self) -> None:
        """Accept every example the current filter shows (after a confirmation)."""
        self._bulk("accept")

    def action_reject_all(self) -> None:
        """Reject every example the current filter shows (after a confirmation)."""
        self._bulk("reject")

    @on(Input.Changed, "#review-search")
    def _search_changed(self, event: Input.Changed) -> None:
        self._search(event.value)

    @on(Input.Submitted, "#review-search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        if not event.value:
            event.input.remove_class("-active")
        self.example_list.focus()
