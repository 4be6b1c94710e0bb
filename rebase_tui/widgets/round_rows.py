"""The refinement rounds of a task, opened from the Retrieve screen: the rows each round added to the pool, with
the validation failure each row is closest to.

A round (:mod:`engine.loop.rounds`) is driven by a run's mistakes on its validation items: the rows of the
datastore nearest those failures join the task's pool. The list at the top names the rounds
(:func:`~engine.loop.rounds.list_rounds`); the table shows the highlighted round's rows
(:func:`~engine.loop.rounds.round_rows`) by rank, with the failure each is closest to and how close; the pane
below shows that failure in full (the input, the expected answer, what the run answered) beside the row.
Every text comes from datasets and a model's answers: shown inertly.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, OptionList, Static

from rebase_tui.widgets.actions_palette import ScreenActions
from rebase_tui.widgets.text import one_line, plain, shown

if TYPE_CHECKING:
    from engine.loop.rounds import Round, RoundRow
    from engine.workspace import Workspace

#: Characters of a failure's input and of a row shown in the table (the pane below shows them whole).
PREVIEW = 30


def row_text(data: dict[str, object]) -> str:
    """A row's fields on one line (``field: value · …``)."""
    return " · ".join(f"{k}: {v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)}" for k, v in data.items())


def round_cells(row: RoundRow) -> list[object]:
    """The table's cells for one row a round added."""
    return [str(row.rank), f"{row.closeness:.3f}", str(row.failure + 1), Text(one_line(row.failure_input, PREVIEW)),
            Text(one_line(row_text(row.data), PREVIEW)), Text(one_line(row.dataset, 30)), f"{row.score:.3f}"]


def round_label(found: Round) -> str:
    """One line per round in the list: what drove it, what it added, its scores, and where it stands."""
    return one_line(f"{found.describe()} · {found.status}", 400)


def detail(found: Round, row: RoundRow) -> Content:
    """The failure the row is closest to, in full, then the row."""
    failure = found.failures[row.failure]
    parts: list[str | tuple[str, str]] = [
        (f"failure {row.failure + 1} of {len(found.failures)}", "bold $text-accent"),
        (f"  (closeness {row.closeness:.3f})\n", "$foreground-muted"),
        ("input  ", "$foreground-muted"), shown(failure.input), "\n",
        ("expected  ", "$foreground-muted"), shown(" | ".join(failure.references)), "\n",
        ("the run answered  ", "$foreground-muted"), shown(failure.prediction), "\n\n",
        (f"row {row.row_id} of {shown(row.dataset, 200)}", "bold $text-accent"),
        (f"  {shown(row.config, 200)}/{shown(row.split, 50)} · rank {row.rank} · score {row.score:.3f}\n",
         "$foreground-muted"),
    ]
    for key, value in row.data.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        parts += [(f"{shown(str(key), 200)}  ", "$foreground-muted"), shown(text), "\n"]
    return Content.assemble(*parts)


class RoundsView(ModalScreen[None]):
    """A task's refinement rounds and the rows each added; ``escape`` closes it."""

    STAGE = "rounds"
    COMMANDS: ClassVar = {ScreenActions}
    DEFAULT_CSS = """
    RoundsView { align: center middle; }
    RoundsView > Vertical { width: 96%; height: 94%; border: thick $primary; background: $surface; padding: 0 1; }
    RoundsView.-short > Vertical { width: 100%; height: 100%; }
    RoundsView #rounds-title { height: auto; color: $foreground-muted; }
    RoundsView #rounds-list { height: auto; max-height: 5; border: none; border-left: blank; padding: 0; }
    RoundsView #rounds-list:focus { border-left: thick $accent; }
    RoundsView #round-rows { height: 1fr; }
    RoundsView #round-detail-pane { height: 40%; border-top: hkey $primary-muted; }
    RoundsView.-short #round-detail-pane { height: 6; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="rounds.close", tooltip="back to the Retrieve screen"),
    ]

    def __init__(self, workspace: Workspace, task: str) -> None:
        super().__init__()
        self.workspace = workspace
        self.task_name = task
        self.rounds: list[Round] = []
        self.rows: list[RoundRow] = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(plain(f"Refinement rounds of task {self.task_name}: the rows each added to the pool, with "
                               "the validation failure each row is closest to — escape closes", 500),
                         id="rounds-title")
            yield OptionList(id="rounds-list")
            yield DataTable(id="round-rows", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="round-detail-pane"):
                yield Static("", id="round-detail")
        yield Footer()

    def on_mount(self) -> None:
        from engine.loop.rounds import list_rounds

        table = self.query_one("#round-rows", DataTable)
        for label, width in (("#", 3), ("close", 5), ("fail", 4), ("closest failure", PREVIEW), ("row", PREVIEW),
                             ("dataset", 20), ("score", 6)):
            table.add_column(label, width=width)
        self.rounds = list_rounds(self.workspace, self.task_name)
        options = self.query_one("#rounds-list", OptionList)
        if not self.rounds:
            options.add_option(f"no refinement rounds for task {one_line(self.task_name, 80)} yet: an evaluated run's "
                               "mistakes start one (`rebase-tui refine RUN`)")
            options.disabled = True
            return
        options.add_options([round_label(r) for r in self.rounds])
        options.highlighted = len(self.rounds) - 1  # the newest round
        table.focus()

    @on(OptionList.OptionHighlighted, "#rounds-list")
    def _round_chosen(self, event: OptionList.OptionHighlighted) -> None:
        from engine.loop.rounds import round_rows

        if not self.rounds or event.option_index >= len(self.rounds):
            return
        found = self.rounds[event.option_index]
        self.rows = round_rows(self.workspace, self.task_name, found.number)
        table = self.query_one("#round-rows", DataTable)
        table.clear()
        table.add_rows([round_cells(r) for r in self.rows])
        table.border_title = f"round {found.number}: {len(self.rows)} rows added"
        self._show_detail()

    @property
    def current_round(self) -> Round | None:
        """The round highlighted in the list."""
        index = self.query_one("#rounds-list", OptionList).highlighted
        return self.rounds[index] if self.rounds and index is not None and index < len(self.rounds) else None

    @on(DataTable.RowHighlighted, "#round-rows")
    def _show_detail(self) -> None:
        table = self.query_one("#round-rows", DataTable)
        found = self.current_round
        pane = self.query_one("#round-detail", Static)
        if found is None or not self.rows or not table.row_count:
            pane.update(Content(""))
            return
        pane.update(detail(found, self.rows[min(table.cursor_row, len(self.rows) - 1)]))

    def action_close(self) -> None:
        """Back to the Retrieve screen."""
        self.dismiss(None)
