"""Data stage: the datasets in the workspace's datastore, ingest from the screen, remove, index health.

Ingest runs :func:`engine.datastore.ingest.ingest` in a thread worker (:func:`rebase_tui.jobs.run_events`): the
progress bar, rate and ETA follow its ``Progress`` events, log lines and skipped files go to the log
below, ``ctrl+g`` cancels (what is finished is kept; ingesting the same path again resumes). The UI
stays responsive throughout: all engine work happens in workers, handlers only update widgets.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import DataTable, Input, Log, ProgressBar, Static
from textual.worker import Worker

from engine.datastore.datasets import DatasetInfo, list_datasets, remove_dataset
from engine.datastore.health import CheckReport, check
from engine.datastore.ingest import IngestDone, IngestSummary
from engine.errors import EngineError
from engine.events import Event, Progress
from engine.events import Log as LogEvent
from engine.rate import format_seconds
from rebase_tui.jobs import run_call, run_events
from rebase_tui.key_order import after_typing
from rebase_tui.messages import EngineEvent, JobFinished
from rebase_tui.screens.base import StageScreen
from rebase_tui.widgets.actions_palette import ScreenActions
from rebase_tui.widgets.dialogs import ConfirmDialog
from rebase_tui.widgets.ingest_form import IngestForm
from rebase_tui.widgets.path_input import PathInput
from rebase_tui.widgets.text import one_line, plain, shown

DESCRIPTION_PREVIEW = 40


class DatasetTable(DataTable):
    """The datasets. ``enter`` opens one (configs, columns, first rows), ``delete`` removes it (asks first),
    ``c`` checks the index."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "screen.open_dataset", "Open", id="data.open",
                tooltip="show the highlighted dataset's configs, columns and first rows"),
        Binding("delete", "screen.remove_dataset", "Remove dataset", id="data.remove",
                tooltip="remove the highlighted dataset, its rows and vectors (asks first)"),
        Binding("c", "screen.check", "Check index", id="data.check",
                tooltip="verify that the store and the vector index agree"),
    ]


def progress_text(event: Progress) -> str:
    """``embed: 1,200/4,096 values · 350 values/s · ETA 0:08 · message``: the figures the engine computed."""
    total = f"/{event.total:,}" if event.total is not None else ""
    speed = f" · {event.rate:,.0f} {event.unit}/s" if event.rate else ""
    eta = f" · ETA {format_seconds(event.eta_s)}" if event.eta_s is not None else ""
    text = f"{event.stage}: {event.done:,}{total} {event.unit}{speed}{eta}"
    return f"{text} · {event.message}" if event.message else text


def plural(n: int, noun: str) -> str:
    """``1 config``, ``2 configs``, ``1,000 rows``."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


class DataScreen(StageScreen):
    """The datastore: datasets ingested cell by cell, embedded for retrieval."""

    STAGE = "data"
    CSS_PATH = "data.tcss"
    COMMANDS = {ScreenActions}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+j", "ingest", "Ingest", id="data.ingest", priority=True,
                tooltip="ingest the path typed below with the options beside it"),
        Binding("ctrl+g", "cancel_ingest", "Cancel ingest", id="data.cancel", priority=True,
                tooltip="stop the running ingest (what is finished is kept; run again to resume)"),
        Binding("ctrl+l", "focus_path", "Path", id="data.path", priority=True, tooltip="type the path to ingest"),
        Binding("ctrl+r", "check", "Check index", id="data.check_any", priority=True,
                tooltip="verify that the store and the vector index agree"),
    ]
    PANES = (("#ds-table", "datasets"), ("#ds-card-pane", "dataset card"), ("#ingest-path", "ingest form"),
             ("#ingest-log", "ingest log"))

    def __init__(self) -> None:
        super().__init__()
        self._ingest: Worker[Any] | None = None
        self._datasets: list[DatasetInfo] = []
        self.ingest_summary: IngestSummary | None = None
        """What the last ingest reported at its end (None before)."""
        self._offered = False
        """True when the last ingest's one dataset with a taken id was put back in the form for another id."""

    # -- layout --------------------------------------------------------------------------
    def compose_body(self) -> ComposeResult:
        with Horizontal(id="data-main"):
            yield DatasetTable(id="ds-table", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="ds-card-pane"):
                yield Static("", id="ds-card")
        with Vertical(id="ingest-pane"):
            yield IngestForm(id="ingest-fields")
            with Horizontal(id="ingest-progress-row"):
                yield ProgressBar(id="ingest-progress", show_eta=False)
                yield Static("", id="ingest-message")
            yield Log(id="ingest-log", max_lines=2000)
        yield Static("", id="ds-health")

    def empty_message(self) -> str | None:
        if self.rebase.count("datasets"):
            return None
        return ("No datasets yet.\n\nThe datastore holds the datasets you already have on disk (Parquet, "
                "JSONL, CSV, Hugging Face caches), cell by cell. Type a folder below and press ctrl+j, "
                "or from a shell run\n\n    rebase-tui ingest PATH\n\nTo try rebase-tui on a small built-in corpus "
                "(8 datasets, 2 tasks), run\n\n    rebase-tui demo")

    def on_mount(self) -> None:
        table = self.query_one("#ds-table", DatasetTable)
        for label, key, width in (("dataset", "id", 28), ("configs", "configs", 7), ("rows", "rows", 7),
                                  ("cells", "cells", 8), ("description", "description", DESCRIPTION_PREVIEW)):
            table.add_column(label, key=key, width=width)
        self.query_one("#ingest-progress-row").display = False
        self.query_one("#ingest-log", Log).display = False
        self.action_check()
        if not self.rebase.count("datasets"):
            self.query_one("#ingest-path", PathInput).focus()
        else:
            self.query_one("#ds-table", DatasetTable).focus()

    def refresh_state(self) -> None:
        super().refresh_state()
        # an empty table says nothing the empty state does not: its room goes to the ingest form
        self.query_one("#data-main").display = self.empty_message() is None
        self._fill_table()

    # -- datasets ------------------------------------------------------------------------
    def _fill_table(self) -> None:
        table = self.query_one("#ds-table", DatasetTable)
        row = table.cursor_row if table.row_count else 0
        self._datasets = list_datasets(self.rebase.workspace)
        table.clear()
        table.add_rows([
            [Text(one_line(d.name, 60) + ("" if d.ready else " (ingesting)")), f"{d.configs:,}", f"{d.rows:,}",
             f"{d.cells:,}", Text(one_line(d.description, DESCRIPTION_PREVIEW))]
            for d in self._datasets
        ])
        if self._datasets:
            table.move_cursor(row=min(row, len(self._datasets) - 1))
        self._show_card()

    @on(DataTable.RowHighlighted, "#ds-table")
    def _show_card(self) -> None:
        table = self.query_one("#ds-table", DatasetTable)
        card = self.query_one("#ds-card", Static)
        if not self._datasets or not table.row_count:
            card.update(Content(""))
            return
        d = self._datasets[min(table.cursor_row, len(self._datasets) - 1)]
        generated = " (generated)" if d.description_generated else ""
        parts: list[str | tuple[str, str]] = [
            (shown(d.name, 200), "bold $accent"), "\n",
            (f"{plural(d.configs, 'config')} · {plural(d.rows, 'row')} · {plural(d.cells, 'cell')}",
             "$foreground-muted"), "\n",
            (f"from {shown(d.source_path, 500)}", "$foreground-muted"), "\n\n",
            (f"Description{generated}", "bold"), "\n", shown(d.description), "\n",
        ]
        if d.card:
            parts += ["\n", ("Card", "bold"), "\n", shown(d.card)]
        card.update(Content.assemble(*parts))

    # -- ingest --------------------------------------------------------------------------
    @property
    def ingesting(self) -> bool:
        """True from the start of an ingest job until its JobFinished arrives (a cancelled job's thread
        runs on to its next event, so the worker's own state is not enough)."""
        return self._ingest is not None

    def action_focus_path(self) -> None:
        """Put the cursor in the path field."""
        self.query_one("#ingest-path", PathInput).focus()

    @on(Input.Submitted, "#ingest-path")
    @on(Input.Submitted, "#ingest-id")
    @after_typing
    def action_ingest(self) -> None:
        """Ingest the typed path with the chosen options (in a worker)."""
        if self.ingesting:
            self.notify("an ingest is already running (ctrl+g cancels it)", severity="warning")
            return
        try:
            opts = self.query_one(IngestForm).options()
        except EngineError as exc:
            self.notify(str(exc), severity="error")
            return
        ws = self.rebase.workspace

        def make() -> Iterator[Event]:
            from engine.datastore.embed import set_torch_threads
            from engine.datastore.ingest import ingest

            # one thread: the UI's own work shares the cores, and two busy processes with several torch
            # threads each slow each other down many times over
            set_torch_threads(1)
            return ingest(ws, [opts.path], max_rows_per_config=opts.max_rows, split=opts.split,
                          batch_size=opts.batch, dataset_id=opts.dataset_id)

        self.ingest_summary = None
        log = self.query_one("#ingest-log", Log)
        log.display = True
        log.write_line(one_line(opts.describe(), 2000))
        self.query_one("#ingest-progress-row").display = True
        self.query_one("#ingest-progress", ProgressBar).update(total=None, progress=0)
        self.query_one("#ingest-message", Static).update(Content("starting (loading the embedder)…"))
        self._ingest = run_events(self, "ingest", make, description=f"ingest {opts.path}")

    def action_cancel_ingest(self) -> None:
        """Stop the running ingest; finished work is kept and a new run resumes."""
        if not self.ingesting:
            self.notify("no ingest is running")
            return
        assert self._ingest is not None
        self._ingest.cancel()
        self.query_one("#ingest-message", Static).update(Content("cancelling at the next batch…"))

    @on(EngineEvent)
    def _ingest_event(self, message: EngineEvent) -> None:
        if message.job != "ingest":
            return
        event = message.event
        log = self.query_one("#ingest-log", Log)
        if isinstance(event, Progress):
            bar = self.query_one("#ingest-progress", ProgressBar)
            bar.update(total=event.total, progress=event.done)
            self.query_one("#ingest-message", Static).update(plain(progress_text(event), 2000))
        elif isinstance(event, LogEvent):
            prefix = "" if event.level == "INFO" else f"{event.level}: "
            log.write_line(one_line(prefix + event.message, 2000))
        elif isinstance(event, IngestDone):
            self.ingest_summary = event.summary

    @on(JobFinished)
    def _job_finished(self, message: JobFinished) -> None:
        if message.job == "ingest":
            self._ingest_finished(message)
        elif message.job == "check":
            self._show_health(message)
        elif message.job == "remove":
            if message.ok:
                self.notify(f"removed {message.result}")
            else:
                self.notify(message.error, severity="error", timeout=10)
            self._datastore_changed()

    def _ingest_finished(self, message: JobFinished) -> None:
        self._ingest = None  # the worker's thread is returning now; the job is over
        log = self.query_one("#ingest-log", Log)
        summary = self.ingest_summary
        if summary is not None:
            added = summary.added
            log.write_line(f"added: datasets {added.datasets:,}, rows {added.rows:,}, values {added.values:,}")
            if summary.skipped:
                log.write_line(f"{len(summary.skipped)} file(s) or folder(s) skipped:")
            for item in summary.skipped:
                log.write_line(one_line(f"  {item.path}: {item.reason}", 2000))
            self._offer_another_id(summary)
        if message.outcome == "done":
            text = "ingest finished"
            self.notify(text)
        elif message.outcome == "cancelled":
            text = "ingest cancelled: what was finished is kept; ingest the same path again to resume"
            self.notify(text, severity="warning")
        else:
            text = f"ingest failed: {message.error}"
            self.notify(text, severity="error", timeout=15)
        log.write_line(one_line(text, 2000))
        if message.outcome == "done" and not self._offered:
            self.query_one(IngestForm).clear_id()
        self.query_one("#ingest-message", Static).update(plain(text, 2000))
        self.query_one("#ingest-progress-row").display = message.outcome != "done"
        bar = self.query_one("#ingest-progress", ProgressBar)
        if bar.total is None:  # an open-ended bar keeps moving as if the job went on: it stopped
            bar.update(total=1, progress=0)
        self._datastore_changed()

    def _offer_another_id(self, summary: IngestSummary) -> None:
        """A dataset passed over only because its id is taken: its path goes into the path field and the
        cursor into the id field, so typing a new id and ctrl+j ingests it under that id."""
        taken = [item for item in summary.skipped if item.id_taken]
        self._offered = len(taken) == 1
        if not self._offered:
            return
        self.query_one(IngestForm).offer(taken[0].path)
        self.query_one("#ingest-log", Log).write_line(
            "→ its path is in the path field: type another id in 'as' and press ctrl+j to ingest it under that id")

    def _datastore_changed(self) -> None:
        self.refresh_state()
        self.rebase.live.datastore_changed()
        self.action_check()

    def action_open_dataset(self) -> None:
        """Show the highlighted dataset's configs, columns and first rows."""
        from engine.datastore.preview import preview_dataset
        from rebase_tui.widgets.dataset_detail import DatasetDetail

        table = self.query_one("#ds-table", DatasetTable)
        if not self._datasets or not table.row_count:
            return
        name = self._datasets[min(table.cursor_row, len(self._datasets) - 1)].name
        try:
            preview = preview_dataset(self.rebase.workspace, name)
        except EngineError as exc:
            self.notify(str(exc), severity="error")
            return
        self.app.push_screen(DatasetDetail(preview))

    # -- remove and check ----------------------------------------------------------------
    def action_remove_dataset(self) -> None:
        """Remove the highlighted dataset (asks first)."""
        table = self.query_one("#ds-table", DatasetTable)
        if self.ingesting:
            self.notify("wait for the ingest to finish (or cancel it with ctrl+g)", severity="warning")
            return
        if not self._datasets or not table.row_count:
            return
        name = self._datasets[table.cursor_row].name

        def answered(yes: bool | None) -> None:
            if yes:
                def remove() -> str:
                    remove_dataset(self.rebase.workspace, name)
                    return name

                run_call(self, "remove", remove)

        self.app.push_screen(ConfirmDialog(f"Remove dataset {name}: its rows, cells and vectors?",
                                           yes="Remove"), answered)

    def action_check(self) -> None:
        """Verify (in a worker) that the store and the vector index agree."""
        if self.ingesting:
            self.notify("the index is checked when the ingest ends")
            return

        self.query_one("#ds-health", Static).update(Content(self._embedder_text() + " · index: checking…"))
        run_call(self, "check", check, self.rebase.workspace)

    def _embedder_text(self) -> str:
        name = self.rebase.workspace.store.get_meta("embedder.name")
        return f"embedder {name}" if name else "embedder: none yet (set by the first ingest)"

    def _show_health(self, message: JobFinished) -> None:
        pane = self.query_one("#ds-health", Static)
        pane.remove_class("-error")
        if not message.ok:
            pane.update(plain(f"{self._embedder_text()} · index check failed: {message.error}", 2000))
            pane.add_class("-error")
            return
        report: CheckReport = message.result
        problems = report.problems
        count = f" ({report.vectors:,} vectors)"
        if problems:
            pane.add_class("-error")
            text = (f"{self._embedder_text()} · index: {len(problems)} problem(s): "
                    + "; ".join(str(p) for p in problems[:3]) + " — run `rebase-tui check --repair`")
        else:
            text = f"{self._embedder_text()} · index: healthy{count}"
        pane.update(plain(text, 2000))
