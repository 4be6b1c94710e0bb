"""Feedback for every action: exports from the app offer the CLI's formats and say in a notification what
was written where; every action of every screen has a footer entry (a key on screen), and the Train
screen's export is in the footer whatever has the focus."""

from __future__ import annotations

import csv

from textual.widgets import Select

from engine import review
from engine.workspace import Workspace
from rebase_tui.app import RebaseApp
from rebase_tui.screens.data import DataScreen
from rebase_tui.screens.retrieve import RetrieveScreen
from rebase_tui.screens.review import ReviewScreen
from rebase_tui.screens.task import TaskScreen
from rebase_tui.screens.train import TrainScreen
from rebase_tui.screens.transform import TransformScreen
from rebase_tui.widgets.export_dialog import ExportDialog
from tests.tui.helpers import until
from tests.tui.toy_workspace import add_examples, make_datastore

#: Actions reached by another footer entry: the six filters by "f Filter" (the digits jump straight to
#: one); the pane keys (alt+digit, ctrl+↓/↑), the same on every screen, are in F1's help and the palette
#: rather than taking the footer's room from the stage's own actions; escape leaves the search box.
NOT_IN_FOOTER = {"filter", "pane", "next_pane", "clear_search"}


async def test_export_offers_the_formats_and_says_where(tmp_path):
    ws = Workspace(tmp_path / "ws")
    make_datastore(ws, 12)
    add_examples(ws, 9)
    review.accept_all(ws, "nli")
    app = RebaseApp(ws, stage="train", task="nli")
    async with app.run_test(size=(130, 40)) as pilot:
        await pilot.pause()
        app.screen.query_one("#tr-student").focus()  # a text field has the focus: ctrl+t still exports
        shown = {b.binding.action for b in app.screen.active_bindings.values() if b.binding.show}
        assert "export" in shown
        await pilot.press("ctrl+t")
        await until(pilot, lambda: isinstance(app.screen, ExportDialog), 5, "the export dialog")
        dialog = app.screen
        formats = [value for _label, value in dialog.query_one("#export-what", Select)._options]
        assert {"jsonl", "csv", "parquet", "hf", "chat", "alpaca"} <= set(formats)
        dialog.query_one("#export-what", Select).value = "csv"
        await pilot.pause()
        target = ws.exports_dir / "nli.csv"
        assert dialog.query_one("#export-path").value == str(target)
        await pilot.press("enter")
        await until(pilot, lambda: any("exported 9 examples as csv" in str(n.message) for n in app._notifications),
                    30, "the export's notification")
        told = next(str(n.message) for n in app._notifications if "exported" in str(n.message))
        assert str(target) in told
        with target.open(encoding="utf-8") as f:
            assert len(list(csv.DictReader(f))) == 9
        # the runs table's letters are in the footer while it has the focus
        await pilot.press("alt+2")
        shown = {b.binding.key for b in app.screen.active_bindings.values() if b.binding.show}
        assert {"v", "d", "m"} <= shown, shown


def test_every_action_has_a_footer_entry():
    from rebase_tui.screens.data import DatasetTable
    from rebase_tui.screens.retrieve import ResultsTable
    from rebase_tui.widgets.runs_table import RunsTable
    from rebase_tui.widgets.task_tables import ExampleTable, TaskList

    missing = []
    for owner in (DataScreen, DatasetTable, TaskScreen, TaskList, ExampleTable, RetrieveScreen, ResultsTable,
                  TransformScreen, ReviewScreen, TrainScreen, RunsTable):
        actions: dict[str, bool] = {}
        for binding in owner._merged_bindings.key_to_bindings.values() if owner._merged_bindings else ():
            for b in binding:
                if not b.id:  # Textual's own (tab, cursor keys)
                    continue
                name = b.action.split("(")[0].split(".")[-1]
                actions[name] = actions.get(name, False) or b.show
        missing += [f"{owner.__name__}.{name}" for name, shown in actions.items()
                    if not shown and name not in NOT_IN_FOOTER]
    assert not missing, f"actions without a footer entry: {missing}"
