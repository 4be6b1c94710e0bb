"""The Train screen's "experiments" tab: the workspace's experiments (``rebase-tui experiment SPEC.toml``) and
the results table of the one selected, with the details of the highlighted value.

The list is :func:`engine.experiments.results.list_experiments` (name, values found of those expected, ✓ once
complete, the most recently updated first); the table is :meth:`ExperimentResults.table` (one line per task and
metric, one column per method, "value ± half the 95 % interval", "…" for a value still to come), and the details
come from its rows (interval, training examples, teacher calls, seconds). The readers only read files, so an
experiment running in another process shows its progress here: the tab polls every few seconds while shown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, OptionList, Static
from textual.widgets.option_list import Option

from rebase_tui.jobs import run_call
from rebase_tui.messages import JobFinished
from rebase_tui.widgets.text import one_line, plain

if TYPE_CHECKING:
    from engine.experiments.results import ExperimentInfo, ExperimentResults

EMPTY = "no experiments yet — run `rebase-tui experiment SPEC.toml`"
POLL_S = 3.0


def read_experiments(ws: Any, selected: str | None) -> tuple[list[ExperimentInfo], ExperimentResults | None, str]:
    """The experiments, the results of ``selected`` (else of the newest), and why they could not be read."""
    from engine.errors import EngineError
    from engine.experiments.results import list_experiments, load_results

    found = list_experiments(ws)
    names = [e.name for e in found]
    name = selected if selected in names else (names[0] if names else None)
    if name is None:
        return found, None, ""
    try:
        return found, load_results(ws, name), ""
    except EngineError as exc:
        return found, None, str(exc)


def entry(info: ExperimentInfo) -> str:
    """``bbh-small · 5/6 ✓`` (the mark once complete)."""
    return f"{one_line(info.name, 40)} · {info.values}/{info.expected}" + (" ✓" if info.complete else "")


def details(results: ExperimentResults, line: list[str], column: int, methods: tuple[str, ...]) -> str:
    """What the table's highlighted cell stands for: a method's value with its interval and its costs, or the
    whole line's when the cell is the task or the metric."""
    task, metric = line[0], line[1]
    chosen = methods[column - 2:column - 1] if column >= 2 else methods
    parts = []
    for method in chosen:
        row = next((r for r in results.rows if (r.task, r.method, r.metric) == (task, method, metric)), None)
        if row is None:
            parts.append(f"{method}: not there yet")
        else:
            lo, hi = row.ci95
            parts.append(f"{method}: {metric} {row.value:.4g} (95 % interval {lo:.4g}–{hi:.4g}) · "
                         f"{row.n_train:,} training examples · {row.teacher_calls:,} teacher calls · "
                         f"{row.seconds:,.0f} s")
    return f"{task} · {metric}\n" + "\n".join(parts)


class ExperimentsPane(Vertical):
    """The experiments list, the selected one's table, and the highlighted value's details."""

    DEFAULT_CSS = """
    ExperimentsPane { height: 1fr; }
    ExperimentsPane #exp-empty { width: 1fr; height: auto; padding: 1 2; color: $foreground-muted; }
    ExperimentsPane #exp-body { height: 1fr; }
    ExperimentsPane #exp-list { width: 34; height: 1fr; border: round $primary-muted; }
    ExperimentsPane #exp-list:focus { border: round $accent; }
    ExperimentsPane #exp-right { width: 1fr; height: 1fr; }
    ExperimentsPane #exp-table { height: 1fr; border: round $primary-muted; }
    ExperimentsPane #exp-details { height: 5; border: round $primary-muted; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.selected: str | None = None
        self.infos: list[ExperimentInfo] = []
        self.results: ExperimentResults | None = None
        self._lines: list[list[str]] = []

    def compose(self) -> ComposeResult:
        with Horizontal(id="exp-body"):
            yield OptionList(id="exp-list")  # always there: the tab's key has a place to put the focus
            yield Static(EMPTY, id="exp-empty")
            with Vertical(id="exp-right"):
                yield DataTable(id="exp-table", cursor_type="cell", zebra_stripes=True)
                yield Static("", id="exp-details")

    def on_mount(self) -> None:
        self.query_one("#exp-list").border_title = "experiments"
        self.query_one("#exp-table").border_title = "results (value ± half the 95 % interval)"
        self.query_one("#exp-details").border_title = "details"
        self.query_one("#exp-right").display = False
        self.set_interval(POLL_S, self.poll, name="experiments-poll")

    def poll(self, shown: bool = False) -> None:
        """Read the experiments again (in a thread) while the tab is shown (``shown``: it is being shown now,
        before it is on screen)."""
        if not (shown or self.is_on_screen) or getattr(self.app, "closing", False):
            return
        if not any(w.group == "experiments" and not w.is_finished for w in self.workers):
            run_call(self, "experiments", read_experiments, self.app.workspace, self.selected)  # type: ignore[attr-defined]

    @on(JobFinished)
    def _read(self, message: JobFinished) -> None:
        if message.job != "experiments":
            return
        message.stop()
        if not message.ok:
            self.query_one("#exp-details", Static).update(plain(f"could not read the experiments: {message.error}"))
            return
        infos, results, problem = message.result
        self._show_list(infos)
        if results is not None and results != self.results:
            self._show_table(results)
        elif problem:
            self.query_one("#exp-details", Static).update(plain(problem))

    def _show_list(self, infos: list[ExperimentInfo]) -> None:
        self.query_one("#exp-empty").display = not infos
        self.query_one("#exp-right").display = bool(infos)
        if [(i.name, i.values, i.complete) for i in infos] == [(i.name, i.values, i.complete) for i in self.infos]:
            return
        self.infos = infos
        options = self.query_one("#exp-list", OptionList)
        options.clear_options()
        options.add_options([Option(entry(i), id=i.name) for i in infos])
        names = [i.name for i in infos]
        if self.selected not in names:
            self.selected = names[0] if names else None
        if self.selected is not None:
            options.highlighted = names.index(self.selected)

    @on(OptionList.OptionHighlighted, "#exp-list")
    def _chosen(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id and event.option.id != self.selected:
            self.selected = event.option.id
            self.results = None
            self.poll()

    def _show_table(self, results: ExperimentResults) -> None:
        table = self.query_one("#exp-table", DataTable)
        head, lines = results.table()
        keep = (table.cursor_row, table.cursor_column) if self.results and self.results.name == results.name else (0, 0)
        table.clear(columns=True)
        table.add_columns(*head)
        for line in lines:
            table.add_row(*[one_line(cell, 40) for cell in line])
        self.results, self._lines = results, lines
        table.border_title = f"{one_line(results.name, 40)} · " + ("complete" if results.complete else "running or stopped")
        if lines:
            table.move_cursor(row=min(keep[0], len(lines) - 1), column=min(keep[1], len(head) - 1))
        self._show_details(table.cursor_row, table.cursor_column)

    @on(DataTable.CellHighlighted, "#exp-table")
    def _cell(self, event: DataTable.CellHighlighted) -> None:
        self._show_details(event.coordinate.row, event.coordinate.column)

    def _show_details(self, row: int, column: int) -> None:
        if self.results is None or not 0 <= row < len(self._lines):
            return
        text = details(self.results, self._lines[row], column, self.results.methods)
        self.query_one("#exp-details", Static).update(plain(text, 2000))
