"""The Train screen's runs: when each started, its task, its full status and its step, newest first.

A run id (``20250102-140512-nli``) is unique but reads badly in a narrow column; the table shows the start
time and the task instead (the id is the row's key and shows on the stat panel of the open run). The
screen refreshes it every few seconds from the run directories; :meth:`RunsTable.fill` changes only the
cells that changed, so the cursor stays put.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

from rebase_tui.inert import inert

if TYPE_CHECKING:
    from engine.student.summary import RunSummary

#: (key, label, width); the task column takes what is left.
COLUMNS = (("started", "started", 11), ("task", "task", 0), ("status", "status", 8), ("step", "step", 9))
#: The step column in a narrow table (a step count that does not fit shows as a percentage).
NARROW_STEP = 6
#: Table widths below which the step column is narrow.
NARROW_TABLE = 42


def read_runs(ws: Any) -> list[RunSummary]:
    """Every run's summary from its directory (no database write: the periodic refresh of the table)."""
    from engine.student.runs import run_dirs
    from engine.student.summary import summarize

    return [summarize(path) for path in run_dirs(ws)]


def short_run(rid: str) -> str:
    """``01-02 14:05`` from a run id ``20250102-140512-task`` (its start, to the minute), else the id's start."""
    if len(rid) >= 15 and rid[8] == "-":
        return f"{rid[4:6]}-{rid[6:8]} {rid[9:11]}:{rid[11:13]}"
    return rid[:11]


def started(summary: RunSummary) -> str:
    """``01-02 14:05`` (month-day hour:minute) from the run's creation time, else from its id."""
    if summary.created:
        return time.strftime("%m-%d %H:%M", time.localtime(summary.created))
    return short_run(summary.run)


def step_cell(summary: RunSummary, width: int) -> str:
    """``steps/total``, or the share done when that does not fit ``width``."""
    text = f"{summary.steps}/{summary.total_steps}"
    if len(text) <= width or not summary.total_steps:
        return text
    return f"{min(100, 100 * summary.steps // summary.total_steps)}%"


def cells(summary: RunSummary, task_width: int, step_width: int = COLUMNS[3][2]) -> list[object]:
    task = inert(summary.task or "(file)")
    if len(task) > task_width:
        task = task[: max(1, task_width - 1)] + "…"
    return [started(summary), Text(task), summary.status, step_cell(summary, step_width)]


class RunsTable(DataTable):
    """The training runs; ``enter`` opens one, the letters act on the open run."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("v", "screen.evaluate", "Eval", id="train.runs.eval", tooltip="evaluate the open run"),
        Binding("V", "screen.evaluate_file", "Eval on file", id="train.runs.eval_file",
                tooltip="evaluate the open run on a test file"),
        Binding("d", "screen.export_dataset", "Export data", id="train.runs.export_dataset",
                tooltip="export the task's accepted examples"),
        Binding("m", "screen.export_model", "Export model", id="train.runs.export_model",
                tooltip="export the open run's model with an Ollama Modelfile"),
        Binding("f", "screen.refine", "Refine", id="train.runs.refine",
                tooltip="refine the open run: its validation mistakes steer the next retrieval"),
    ]

    DEFAULT_CSS = """
    RunsTable { scrollbar-size-vertical: 1; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        self.summaries: list[RunSummary] = []

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width or self._task_width())

    def _step_width(self) -> int:
        return NARROW_STEP if (self.size.width or NARROW_TABLE) < NARROW_TABLE else COLUMNS[3][2]

    def _task_width(self) -> int:
        # a cell of padding each side of each column, and room for the vertical scrollbar
        fixed = sum(w for *_, w in COLUMNS[:3]) + self._step_width() + 2 * len(COLUMNS) + 1
        return max(3, (self.size.width or NARROW_TABLE) - fixed)

    def on_resize(self) -> None:
        """Give the task column what the fixed columns leave, and redraw the rows at that width."""
        width, step = self._task_width(), self._step_width()
        if "task" in self.columns and (self.columns["task"].width, self.columns["step"].width) != (width, step):
            self.columns["task"].width, self.columns["step"].width = width, step
            shown, self.summaries = self.summaries, []
            self.fill(shown)

    def _cells(self, summary: RunSummary) -> list[object]:
        task = self.columns["task"].width if "task" in self.columns else self._task_width()
        step = self.columns["step"].width if "step" in self.columns else self._step_width()
        return cells(summary, task, step)

    def fill(self, summaries: Sequence[RunSummary]) -> None:
        """Show ``summaries`` newest first; rows that are already there are updated in place."""
        ordered = sorted(summaries, key=lambda s: (s.created or 0.0, s.run), reverse=True)
        if [s.run for s in ordered] != [s.run for s in self.summaries]:
            current = self.current_run
            self.clear()
            for s in ordered:
                self.add_row(*self._cells(s), key=s.run)
            if current is not None and current in {s.run for s in ordered}:
                self.move_cursor(row=[s.run for s in ordered].index(current))
        else:
            for old, new in zip(self.summaries, ordered, strict=True):
                if old != new:
                    for (key, *_), value in zip(COLUMNS, self._cells(new), strict=True):
                        self.update_cell(new.run, key, value)
        self.summaries = ordered

    def task_of(self, run: str) -> str | None:
        """The task run ``run`` trained for, as listed (None for a run on a file, or one not listed)."""
        return next((s.task for s in self.summaries if s.run == run), None)

    @property
    def current_run(self) -> str | None:
        """The run id under the cursor."""
        if not self.row_count or not self.summaries:
            return None
        return self.summaries[min(self.cursor_row, len(self.summaries) - 1)].run
