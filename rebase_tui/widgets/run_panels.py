"""The Train screen's right side: the open run's figures, learning-rate and tokens/s sparklines, the loss
chart, the worker's log and the results (evaluations, sample predictions) with their buttons.

:class:`RunPanels` folds a run's events into :class:`~rebase_tui.widgets.run_support.RunView` and paints
it; the screen decides which run is open and whether it is followed live.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Button, Label, Sparkline, Static

from engine.events import Progress
from engine.rate import format_seconds
from rebase_tui.inert import inert
from rebase_tui.widgets.log_tail import LogTail
from rebase_tui.widgets.loss_chart import LossChart
from rebase_tui.widgets.run_support import FileTail, RunView, results_text
from rebase_tui.widgets.stat_panel import StatPanel
from rebase_tui.widgets.text import plain

if TYPE_CHECKING:
    from engine.events import Event


class RunPanels(Vertical):
    """Figures, sparklines, loss chart, log and results of the open run."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view: RunView | None = None
        """The open run as the panels show it."""
        self.run_path: Path | None = None
        self._stderr: FileTail | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="tr-panels"):
            yield StatPanel("run", id="tr-stats")
            with Vertical(id="tr-sparks"):
                yield Label("learning rate", classes="spark-label")
                yield Sparkline([], id="tr-spark-lr")
                yield Label("tokens/s", classes="spark-label")
                yield Sparkline([], id="tr-spark-tps")
        yield LossChart(id="tr-chart")
        with Horizontal(id="tr-bottom"):
            yield LogTail("worker log (stderr.log)", id="tr-log")
            with Vertical(id="tr-results-pane"):
                with Horizontal(id="tr-buttons"):
                    yield Button("Eval", id="tr-eval", compact=True, action="screen.evaluate",
                                 tooltip="ctrl+r: evaluate the open run")
                    yield Button("Export…", id="tr-export", compact=True, action="screen.export",
                                 tooltip="ctrl+t: the accepted examples (six formats) or the model")
                with VerticalScroll(id="tr-results"):
                    yield Static("", id="tr-results-text")

    def on_mount(self) -> None:
        self.query_one("#tr-results").border_title = "results"

    @property
    def log(self) -> LogTail:
        return self.query_one("#tr-log", LogTail)

    @property
    def chart(self) -> LossChart:
        return self.query_one("#tr-chart", LossChart)

    def reset(self, path: Path) -> None:
        """Open run ``path``: every panel starts empty."""
        self.run_path = path
        self.view = RunView(path.name)
        self.chart.clear()
        self.query_one("#tr-spark-lr", Sparkline).data = []
        self.query_one("#tr-spark-tps", Sparkline).data = []
        self.log.clear()
        self._stderr = FileTail(path / "stderr.log")
        self.query_one("#tr-results-text", Static).update("")
        self.read_stderr()

    def apply(self, event: Event) -> None:
        """Fold one training event into the panels."""
        from engine.student.events import EvalMetrics, StepMetrics, TrainEvent

        if self.view is not None and isinstance(event, TrainEvent):
            self.view.apply(event)
        if isinstance(event, StepMetrics):
            self.chart.add("train", event.step, event.loss)
        elif isinstance(event, EvalMetrics):
            self.chart.add("eval", event.step, event.eval_loss)

    def paint(self, rss_mb: float | None, gpu_mb: float | None) -> None:
        """The figures and sparklines of the open run (memory figures of a live worker, else None)."""
        view = self.view
        self.query_one("#tr-spark-lr", Sparkline).data = list(view.lr_history) if view else []
        self.query_one("#tr-spark-tps", Sparkline).data = list(view.tps_history) if view else []
        stats = self.query_one("#tr-stats", StatPanel)
        if view is None:
            stats.set([("run", "none open"), ("", "ctrl+j starts one on the accepted examples"),
                        ("", "enter on a run opens it")])
        else:
            stats.set(view.stat_rows(rss_mb, gpu_mb))

    def read_stderr(self) -> None:
        """Add the worker's new stderr.log lines to the log."""
        if self._stderr is not None:
            text = self._stderr.read()
            if text:
                self.log.add(inert(text))

    def show_results(self, extra: str = "") -> None:
        """The open run's evaluations and sample predictions (and ``extra``)."""
        if self.run_path is not None:
            status = self.view.status if self.view is not None else ""
            self.query_one("#tr-results-text", Static).update(plain(results_text(self.run_path, status, extra)))

    def show_eval_progress(self, ev: Progress) -> None:
        self.query_one("#tr-results-text", Static).update(Content(
            f"evaluating… {ev.done}/{ev.total} {ev.unit} ({inert(ev.message)}) · ETA {format_seconds(ev.eta_s)}"))
