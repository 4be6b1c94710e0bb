"""The Transform screen's status pane: the run's state, its progress, and the selected task's examples by state
(a panel; one line under the progress on a short terminal).

Every figure has one source. The counts are the task's examples as stored (:func:`engine.review.counts`,
what Review shows), read again whenever an example is stored; the progress line is the running job's
:class:`~engine.events.Progress` (its rate and ETA as the engine computed them), shown only while a run of
this task is going on, so an idle screen never keeps an old ETA.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import ProgressBar, Static

from engine.events import Progress
from engine.rate import format_seconds
from rebase_tui.widgets.stat_panel import StatPanel
from rebase_tui.widgets.text import plain

#: The example states shown, in order, with their labels.
COUNTED = (("pending", "pending"), ("accepted", "accepted"), ("rejected", "rejected"), ("failed", "failed"),
           ("duplicate", "duplicates"))


def progress_line(event: Progress, running: bool = True) -> str:
    """``12/100 · 88 remaining · this run: 12 new, … · 3.74 examples/s · ETA 0:24`` (the engine's figures);
    while paused, no rate or ETA (they only say that nothing is being asked)."""
    total = event.total or 0
    line = f"{event.done:,}/{total:,} · {max(0, total - event.done):,} remaining · this run: {event.message}"
    if not running:
        return line + " · paused"
    speed = f"{event.rate:.2f} examples/s" if event.rate is not None else "-- examples/s"
    return f"{line} · {speed} · ETA {format_seconds(event.eta_s)}"


class TransformStatus(Horizontal):
    """State line, progress bar and progress line at the left; the task's examples by state at the right."""

    def compose(self) -> ComposeResult:
        with Vertical(id="transform-progress"):
            yield Static("", id="t-state")
            yield ProgressBar(id="t-progress", show_eta=False)
            yield Static("", id="t-message")
            yield Static("", id="t-counts")
        yield StatPanel("examples", id="t-stats")

    def on_mount(self) -> None:
        self.query_one("#t-progress", ProgressBar).update(total=1, progress=0)  # determinate: no animation

    def show_state(self, text: str) -> None:
        """The state line (task, pool, what runs and which keys act)."""
        self.query_one("#t-state", Static).update(plain(text, 500))

    def show_progress(self, event: Progress, running: bool = True) -> None:
        """A run's progress (``running`` False while it is paused)."""
        self.query_one("#t-progress", ProgressBar).update(total=event.total or 1, progress=event.done)
        self.query_one("#t-message", Static).update(plain(progress_line(event, running), 500))

    def show_idle(self, pool: int, done: int, note: str = "") -> None:
        """No run of this task: the pool's share already transformed, and how the last run ended."""
        self.query_one("#t-progress", ProgressBar).update(total=max(pool, 1), progress=min(done, pool))
        self.query_one("#t-message", Static).update(plain(note, 2000))

    def show_counts(self, counts: dict[str, int]) -> None:
        """The task's examples by state (as stored): the panel, and the same figures on one line for a short
        terminal, where the panel is hidden."""
        figures = [(label, f"{counts.get(state, 0):,}") for state, label in COUNTED]
        self.query_one("#t-stats", StatPanel).set(figures)
        self.query_one("#t-counts", Static).update(plain("examples: " + " · ".join(f"{k} {v}" for k, v in figures), 500))
