"""The Train screen's right side as tabs — the open run's panels, "try", the refinement rounds and the
experiments — and the screen's actions that belong to a tab.

A pane key (``alt+N``) that names a pane in another tab switches to that tab first. Below 110 columns the
form and the runs table give their room to every tab but the run's (the try columns and the results table
need the width); ``alt+1`` / ``alt+2`` bring them back with the run tab. The try pane's models are loaded
while its tab is shown and released when another tab is chosen.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import TabbedContent, TabPane

from rebase_tui.key_order import after_typing
from rebase_tui.widgets.experiments_pane import ExperimentsPane
from rebase_tui.widgets.rounds_pane import RoundsPane
from rebase_tui.widgets.run_panels import RunPanels
from rebase_tui.widgets.runs_table import RunsTable
from rebase_tui.widgets.try_pane import TryPane

if TYPE_CHECKING:
    from rebase_tui.screens.train import TrainScreen

    _Base = TrainScreen
else:
    _Base = object



class TrainRight(Vertical):
    """The tabs of the Train screen's right side."""

    DEFAULT_CSS = """
    TrainRight { width: 1fr; }
    TrainRight > TabbedContent { height: 1fr; }
    TrainRight > TabbedContent > ContentSwitcher { height: 1fr; }
    TrainRight TabPane { height: 1fr; padding: 0; }
    """

    def compose(self) -> ComposeResult:
        with TabbedContent(id="train-tabs", initial="tab-run"):
            with TabPane("run", id="tab-run"):
                yield RunPanels(id="tr-run")
            with TabPane("try", id="tab-try"):
                yield TryPane(id="tr-try")
            with TabPane("rounds", id="tab-rounds"):
                yield RoundsPane(id="tr-rounds")
            with TabPane("experiments", id="tab-experiments"):
                yield ExperimentsPane(id="tr-experiments")


class TrainTabs(_Base):
    """Tab switching, pane keys across tabs, and the try pane's actions of the Train screen."""

    @property
    def tabs(self) -> TabbedContent:
        return self.query_one("#train-tabs", TabbedContent)

    @property
    def tab(self) -> str:
        """The id of the tab shown (``tab-run`` until the screen is built)."""
        return self.tabs.active if self.built else "tab-run"

    @property
    def try_pane(self) -> TryPane:
        return self.query_one("#tr-try", TryPane)

    def show_tab(self, tab: str) -> None:
        if self.tabs.active != tab:
            self.tabs.active = tab

    def tab_shown(self, event: TabbedContent.TabActivated) -> None:
        """Another tab is shown (the screen's handler calls this: a mixin's ``@on`` would not be seen)."""
        tab = event.pane.id or "tab-run"
        self.set_class(tab != "tab-run", "-other-tab")
        if tab == "tab-try":
            self.try_pane.open(self.run_path)
        else:
            self.try_pane.close()
        if tab == "tab-experiments":
            self.query_one("#tr-experiments", ExperimentsPane).poll(shown=True)
        if tab == "tab-rounds":
            self.show_rounds()
        self.refresh_bindings()

    def run_opened(self, path: Path) -> None:
        """Another run was opened: the try pane (when shown) loads it instead, the rounds show its task's."""
        if self.tab == "tab-try":
            self.try_pane.open(path)
        elif self.tab == "tab-rounds":
            self.show_rounds()

    # -- refinement rounds ------------------------------------------------------------------------
    @property
    def rounds_pane(self) -> RoundsPane:
        return self.query_one("#tr-rounds", RoundsPane)

    def _open_task(self) -> str | None:
        """The open run's task (as the runs table lists it), else the selected task."""
        run = self.run_path.name if self.run_path is not None else None
        return (self.query_one("#tr-runs", RunsTable).task_of(run) if run else None) or self.rebase.task_name

    def show_rounds(self) -> None:
        self.rounds_pane.show_rounds(self._open_task(), self.run_path.name if self.run_path else None)

    def action_refine(self) -> None:
        """Refine the open run: its validation mistakes steer the next retrieval (the rounds tab shows it)."""
        if self.run_path is None or self.following:
            self.notify("open a finished run first (enter on a run)", severity="warning")
            return
        self.show_tab("tab-rounds")
        self.rounds_pane.refine(self.run_path.name, self._open_task())
        self.refresh_bindings()

    def refine_waiting(self, task: str, number: int, pending: int) -> None:
        """The round waits for review: say so and go to Review, on the round's task."""
        self.notify(f"round {number} of {task}: {pending} examples wait for review; once they are decided, "
                    "ctrl+f on Train trains the next run", timeout=15)
        if self.rebase.task_name != task:
            self.rebase.select_task(task)
        self.rebase.action_stage("review")

    def refine_training(self, run: str) -> None:
        """The round's next run trains: the run tab follows it."""
        self.attach(self.rebase.workspace.runs_dir / run)
        self.show_tab("tab-run")
        self.action_refresh_runs()

    def _tab_of(self, number: int) -> str | None:
        """The tab holding pane ``number`` (None: the pane is outside the tabs)."""
        found = self.query(self.PANES[number - 1][0]) if 1 <= number <= len(self.PANES) else None
        if not found:
            return None
        return next((a.id for a in found.first().ancestors if isinstance(a, TabPane)), None)

    def action_pane(self, number: int) -> None:
        """Focus pane ``number``, first showing its tab (or the run tab, for the form and the runs when the
        other tabs take their room)."""
        tab = self._tab_of(number) if self.built else None
        if tab is None and self.has_class("-narrow") and self.tab != "tab-run":
            tab = "tab-run"
        if tab is not None:
            self.show_tab(tab)  # (the switch is immediate: the pane can take the focus at once, so keys typed
            # right after the pane key land there)
        super().action_pane(number)

    # -- the try pane's keys (shown while its tab is) -------------------------------------------
    @after_typing
    def action_try_ask(self) -> None:
        """Ask the student, the base and the teacher about the input."""
        self.try_pane.ask()

    def action_try_example(self) -> None:
        """The next example of the run's validation split (or of the test file read)."""
        self.try_pane.next_example()

    def action_try_file(self) -> None:
        """Read a test file's examples into the try pane (a dialog asks for its path)."""
        from rebase_tui.widgets.dialogs import PathDialog

        def chosen(value: str | None) -> None:
            if value:
                self.last_test_file = value
                self.try_pane.read_test_file(Path(value).expanduser())

        self.app.push_screen(PathDialog("Examples from a test file (BIG-Bench-Hard JSON, JSONL of input/output, "
                                        "SQuAD, MCoNaLa)", self.last_test_file, ok="Read"), chosen)

    def stoppers(self) -> list:  # type: ignore[type-arg]
        """The try process ends at once when the app quits (nothing in it is kept)."""

        pane = self.try_pane if self.built else None  # found here, on the event loop; killed off it

        def stop(_seconds: float) -> bool:
            if pane is not None:
                pane.kill()
            return True

        return [stop]
