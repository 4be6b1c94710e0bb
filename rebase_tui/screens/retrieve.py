"""Retrieve stage: the datastore's rows ranked for the task draft, re-ranked live as it is edited.

The instruction and the examples edited here are the app's one task draft (the Task screen edits the same
one); every edit asks :class:`rebase_tui.live.LiveRetrieval` for a debounced search, and the newest
result is shown: the ranked table, the facet summary, and the highlighted row's detail with the cells
that gave its input and output scores highlighted. Dataset text is untrusted and shown verbatim.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Checkbox, DataTable, Input, Label, Static, TextArea

from engine.errors import EngineError
from engine.retrieval.results import RowHit
from engine.retrieval.scoring import parse_weights
from engine.tasks import TaskError, validate
from rebase_tui.inert import inert
from rebase_tui.live import SearchOutcome, SearchParams
from rebase_tui.screens.base import StageScreen
from rebase_tui.widgets.actions_palette import ScreenActions
from rebase_tui.widgets.editor import PlainTextArea
from rebase_tui.widgets.results import format_weights, parse_int, row_detail, row_preview
from rebase_tui.widgets.text import one_line, plain

PREVIEW = 40
#: Most rows the table shows (the pool may hold more).
TABLE_ROWS = 500


class ResultsTable(DataTable):
    """The ranked rows. ``x`` excludes the highlighted row's dataset from the task."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "screen.exclude_dataset", "Exclude dataset", id="retrieve.exclude",
                tooltip="add the highlighted row's dataset to the task's exclusion list"),
    ]


class RetrieveScreen(StageScreen):
    """Ranked rows for the task draft, live."""

    STAGE = "retrieve"
    CSS_PATH = "retrieve.tcss"
    COMMANDS = {ScreenActions}
    AUTO_FOCUS = "#rq-instruction"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+j", "use_as_pool", "Use as pool", id="retrieve.pool", priority=True,
                tooltip="store this ranking as the task's pool for the teacher"),
        Binding("ctrl+n", "next_example", "Next example", id="retrieve.next_example", priority=True,
                tooltip="edit the next example of the task"),
        Binding("ctrl+r", "rerun", "Re-rank", id="retrieve.rerun", priority=True, tooltip="search again now"),
        Binding("ctrl+o", "rounds", "Rounds", id="retrieve.rounds", priority=True,
                tooltip="the rows each refinement round added to the task's pool, with the failure each is "
                        "closest to"),
    ]
    PANES = (("#rq-instruction", "instruction"), ("#rq-example-input", "example"), ("#rq-top", "controls"),
             ("#rq-results", "results"), ("#rq-detail-pane", "row detail"))

    def __init__(self) -> None:
        super().__init__()
        self._example = 0
        self.shown: SearchOutcome | None = None
        """The search whose results the table shows."""
        self.painted_generation = 0
        """Generation of the search whose results have been painted (the benchmark waits on it)."""
        self.painted_at = 0.0
        """``time.perf_counter()`` when that search's results had been painted (the benchmark reads it)."""
        self._embedder: str | None = None
        """The workspace's embedder, read once per visit (only an ingest changes it)."""

    # -- layout --------------------------------------------------------------------------
    def compose_body(self) -> ComposeResult:
        with Vertical(id="rq-query"):
            yield Label("Instruction", classes="field-label")
            yield PlainTextArea(id="rq-instruction", placeholder="what the task asks (re-ranks as you type)")
            with Horizontal(id="rq-example-row"):
                yield Label("Example", id="rq-example-label")
                yield Input(id="rq-example-input", placeholder="example input", compact=True)
                yield Input(id="rq-example-output", placeholder="example output", compact=True)
            with Horizontal(id="rq-controls"):
                yield Label("Top", classes="control-label")
                yield Input(str(self.rebase.live.params.top), id="rq-top", type="integer", compact=True)
                yield Label("Cap per dataset", classes="control-label")
                yield Input(str(self.rebase.live.params.per_dataset_cap or ""), id="rq-cap", type="integer",
                            placeholder="none", compact=True, valid_empty=True)
                yield Label("Weights in,out,ds", classes="control-label")
                yield Input(format_weights(self.rebase.live.params.weights), id="rq-weights", compact=True)
                yield Checkbox("dedupe", self.rebase.live.params.dedupe, id="rq-dedupe", compact=True)
            yield Static("", id="rq-warning")
            with Horizontal(id="rq-status-row"):
                yield Static("", id="rq-status")
                yield Static("", id="rq-timing")
        with Horizontal(id="rq-main"):
            yield ResultsTable(id="rq-results", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="rq-detail-pane"):
                yield Static("", id="rq-detail")
        yield Static("", id="rq-facets")

    def empty_message(self) -> str | None:
        if self.rebase.count("datasets"):
            return None  # with no task yet, the status line says what to type
        return ("Nothing to rank yet.\n\nRetrieval scores every row of the datastore against a task "
                "(best cell vs. the example inputs and outputs, dataset description vs. the "
                "instruction). It needs datasets (F2) and a task (F3, or type an instruction and an "
                "example below).")

    def on_mount(self) -> None:
        table = self.query_one("#rq-results", ResultsTable)
        for label, key, width in (("#", "rank", 3), ("final", "final", 6), ("in", "in", 6), ("out", "out", 6),
                                  ("ds", "ds", 6), ("dataset", "dataset", 20), ("best input cell", "preview",
                                                                                PREVIEW)):
            table.add_column(label, key=key, width=width)
        live = self.rebase.live
        live.results_signal.subscribe(self, self._show_outcome)
        live.ready_signal.subscribe(self, self._ready)
        live.draft_signal.subscribe(self, self._draft_signal)
        self.rebase.config_signal.subscribe(self, self._config_changed)
        table.loading = not live.ready and not live.warm_error
        live.open_initial_task()
        self._show_draft()
        self._status()

    def on_screen_resume(self) -> None:
        self._embedder = None  # an ingest on the Data screen may have set it
        self._show_draft()
        live = self.rebase.live
        if live.latest is not None and live.latest is not self.shown:
            self._show_outcome(live.latest)
        live.start_warmup()
        self._status()

    def _ready(self, error: str) -> None:
        self.query_one("#rq-results", ResultsTable).loading = False
        self._status()

    def _draft_signal(self, origin: str) -> None:
        if origin != "retrieve":
            self._show_draft()

    # -- the draft -----------------------------------------------------------------------
    def _show_draft(self) -> None:
        d = self.rebase.live.draft
        self.query_one("#rq-instruction", PlainTextArea).set_text(inert(d.instruction))
        self._example = min(self._example, max(0, len(d.examples) - 1))
        pair = d.examples[self._example] if d.examples else ["", ""]
        for wid, text in (("#rq-example-input", inert(pair[0])), ("#rq-example-output", inert(pair[1]))):
            widget = self.query_one(wid, Input)
            if widget.value != text:
                widget.value = text
        total = len(d.examples)
        label = f"Ex {self._example + 1}/{total}" if total else "Ex 1/1"
        self.query_one("#rq-example-label", Label).update(Content(label))
        self._warn_language()

    def _warn_language(self) -> None:
        """Say so when the draft's examples are mostly not in the Latin script and the workspace's embedder
        reads English only (retrieval would match them poorly, with no error anywhere)."""
        from engine.language import embedder_warning, workspace_embedder

        if self._embedder is None:
            self._embedder = workspace_embedder(self.rebase.workspace)
        query = self.rebase.live.draft.query()
        text = embedder_warning(query, self._embedder) if query is not None else None
        warning = self.query_one("#rq-warning", Static)
        warning.display = text is not None
        warning.update(plain(f"⚠ {text}" if text else "", 1000))
        warning.tooltip = text

    def _edited(self) -> None:
        self.rebase.live.draft_changed("retrieve")
        self._warn_language()
        self._status(searching=True)

    @on(TextArea.Changed, "#rq-instruction")
    def _instruction_changed(self, event: TextArea.Changed) -> None:
        draft = self.rebase.live.draft
        if event.text_area.text != draft.instruction:
            draft.instruction = event.text_area.text
            self._edited()

    @on(Input.Changed, "#rq-example-input")
    def _example_input_changed(self, event: Input.Changed) -> None:
        self._example_changed(0, event.value)

    @on(Input.Changed, "#rq-example-output")
    def _example_output_changed(self, event: Input.Changed) -> None:
        self._example_changed(1, event.value)

    def _example_changed(self, part: int, text: str) -> None:
        draft = self.rebase.live.draft
        if not draft.examples:
            if not text:
                return
            draft.examples.append(["", ""])
            self._example = 0
        pair = draft.examples[self._example]
        if pair[part] != text:
            pair[part] = text
            self._edited()

    # -- controls ------------------------------------------------------------------------
    @on(Input.Changed, "#rq-top")
    @on(Input.Changed, "#rq-cap")
    @on(Input.Changed, "#rq-weights")
    @on(Checkbox.Changed, "#rq-dedupe")
    def _controls_changed(self) -> None:
        params = self.rebase.live.params
        problems = []
        top = parse_int(self.query_one("#rq-top", Input).value)
        if top is None or top < 1:
            problems.append("top must be a whole number ≥ 1")
        cap_text = self.query_one("#rq-cap", Input).value.strip()
        cap = parse_int(cap_text) if cap_text else None
        if cap_text and (cap is None or cap < 1):
            problems.append("per-dataset cap must be empty or a whole number ≥ 1")
        try:
            weights = parse_weights(self.query_one("#rq-weights", Input).value)
        except ValueError as exc:
            problems.append(str(exc))
            weights = params.weights
        dedupe = self.query_one("#rq-dedupe", Checkbox).value
        if problems or top is None:
            self.query_one("#rq-status", Static).update(plain("✗ " + "; ".join(problems), 500))
            self.query_one("#rq-status", Static).add_class("-error")
            return
        new = SearchParams(top, cap, weights, dedupe)
        if new != params:
            self.rebase.live.params = new
            self.rebase.live.request()
            self._status(searching=True)
            self._save_controls(new)
        else:
            self._status()

    def _save_controls(self, params: SearchParams) -> None:
        """Cap, weights and dedupe are workspace settings (``rebase-tui retrieve`` uses them too): save the
        ones that changed."""
        cfg = self.rebase.workspace.config
        for key, value in params.settings().items():
            if str(value) != str(cfg[key]):
                self.rebase.choose(key, value)

    def _config_changed(self, _published: Any) -> None:
        """Settings changed elsewhere (`rebase-tui config retrieval.dedupe true`): into the controls not being
        edited, which re-rank. Read from the workspace, not the message: the signal is delivered later, and
        a message of an earlier save would undo a later one."""
        saved = SearchParams.from_config(self.rebase.workspace.config)
        if saved.settings() == self.rebase.live.params.settings():  # what the controls hold (our own save)
            return
        for wid, text in (("#rq-cap", str(saved.per_dataset_cap or "")), ("#rq-weights", format_weights(saved.weights))):
            field = self.query_one(wid, Input)
            if not field.has_focus and text != field.value:
                field.value = text
        box = self.query_one("#rq-dedupe", Checkbox)
        if not box.has_focus and box.value != saved.dedupe:
            box.value = saved.dedupe

    # -- results -------------------------------------------------------------------------
    def _show_outcome(self, outcome: SearchOutcome) -> None:
        """Show a finished search (only ever the newest: LiveRetrieval drops stale ones)."""
        if self.shown is not None and outcome.generation < self.shown.generation:
            return
        self.shown = outcome
        table = self.query_one("#rq-results", ResultsTable)
        table.loading = False
        rows = outcome.rows
        keep_row = table.cursor_row if table.row_count else 0
        table.clear()
        table.add_rows([self._cells(r) for r in rows[:TABLE_ROWS]])
        if rows:
            table.move_cursor(row=min(keep_row, len(rows[:TABLE_ROWS]) - 1), scroll=False)
        self._show_facets(rows)
        self._show_detail()
        self._status()
        generation = outcome.generation
        self.call_after_refresh(self._painted, generation)

    def _painted(self, generation: int) -> None:
        if generation > self.painted_generation:
            self.painted_generation = generation
            self.painted_at = time.perf_counter()

    @staticmethod
    def _cells(r: RowHit) -> list[Any]:
        # the column shows the first PREVIEW characters; the detail pane shows the whole row
        return [str(r.rank), f"{r.score:.3f}", f"{r.input_score:.3f}", f"{r.output_score:.3f}",
                f"{r.dataset_score:.3f}", Text(one_line(r.dataset_id, 80)), Text(row_preview(r))]

    def _show_facets(self, rows: list[RowHit]) -> None:
        counts = Counter(r.dataset_id for r in rows)
        if not rows:
            text = ""
        else:
            parts = [f"{name} {n}" for name, n in counts.most_common(12)]
            more = len(counts) - 12
            text = (f"{len(rows)} rows from {len(counts)} datasets: " + " · ".join(parts)
                    + (f" · +{more} more" if more > 0 else ""))
        self.query_one("#rq-facets", Static).update(plain(text, 2000))

    def _current_row(self) -> RowHit | None:
        if self.shown is None:
            return None
        rows = self.shown.rows
        table = self.query_one("#rq-results", ResultsTable)
        if not rows or not table.row_count:
            return None
        return rows[min(table.cursor_row, len(rows) - 1)]

    @on(DataTable.RowHighlighted, "#rq-results")
    def _show_detail(self) -> None:
        row = self._current_row()
        detail = self.query_one("#rq-detail", Static)
        detail.update(row_detail(row) if row is not None else Content(""))

    def _status(self, searching: bool = False) -> None:
        live = self.rebase.live
        status = self.query_one("#rq-status", Static)
        status.remove_class("-error")
        if live.warm_error:
            text = f"✗ {live.warm_error}"
            status.add_class("-error")
        elif not live.ready:
            text = "loading the embedder…"
        elif live.draft.query() is None:
            text = "type an instruction and at least one example input to rank rows"
        elif searching:
            text = "ranking…"
        elif self.shown is not None and self.shown.error:
            text = f"✗ {self.shown.error}"
            status.add_class("-error")
        elif self.shown is not None:
            n = len(self.shown.rows)
            exact = self.shown.result is None or self.shown.result.exact
            text = (f"{n} rows" + ("" if exact else " (approximate)")
                    + " · x excludes the dataset under the cursor · ctrl+j stores the pool")
        else:
            text = ""
        status.update(plain(text, 2000))
        timing = ""
        if self.shown is not None and not searching and not self.shown.error:
            ms = (self.shown.finished_at - self.shown.requested_at) * 1000
            timing = f"{ms:.0f} ms"
        self.query_one("#rq-timing", Static).update(Content(timing))

    # -- actions -------------------------------------------------------------------------
    def action_next_example(self) -> None:
        """Edit the next example (wraps around)."""
        n = len(self.rebase.live.draft.examples)
        if n:
            self._example = (self._example + 1) % n
            self._show_draft()

    def action_rerun(self) -> None:
        """Search again now."""
        self.rebase.live.request(delay=0)
        self._status(searching=True)

    def action_exclude_dataset(self) -> None:
        """Add the highlighted row's dataset to the task's exclusion list (and re-rank)."""
        row = self._current_row()
        if row is None:
            return
        name = row.dataset_id
        draft = self.rebase.live.draft
        if name not in draft.exclude:
            draft.exclude.append(name)
            self._edited()
            self.notify(f"excluded {name} (the task has unsaved changes: ctrl+s on the Task screen saves)")

    def action_rounds(self) -> None:
        """Show the task's refinement rounds: the rows each added, with the failure each is closest to."""
        from rebase_tui.widgets.round_rows import RoundsView

        task = self.rebase.live.draft.stored or self.rebase.task_name
        if not task:
            self.notify("no stored task selected: F8 picks one", severity="warning")
            return
        self.app.push_screen(RoundsView(self.rebase.workspace, task))

    def action_use_as_pool(self) -> None:
        """Store the shown ranking as the task's pool (the same as ``rebase-tui retrieve``)."""
        live = self.rebase.live
        if self.shown is None or self.shown.result is None:
            self.notify("nothing ranked yet", severity="warning")
            return
        draft = live.draft
        try:
            task = validate(draft.to_spec())
        except TaskError as exc:
            self.notify("save a valid task first (F3): " + "; ".join(exc.problems), severity="error")
            return
        if draft.dirty or draft.stored != task.name:
            self.notify("the task has unsaved changes: save it on the Task screen (F3, ctrl+s) first",
                        severity="error")
            return
        if self.shown.query != draft.query():
            self.notify("the ranking is being refreshed; try again in a moment", severity="warning")
            return
        try:
            n = live.store_pool(self.shown, task)
        except EngineError as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify(f"stored {n} rows as the pool of task {task.name}")

