"""Navigation users expect: enter on a dataset shows its configs, columns and first rows; a task switcher
(F8 and the palette) on every screen; revert for an unsaved task draft; the Train screen shows at once (a
loading state while it builds); the edit dialog opens with the source row beside the fields."""

from __future__ import annotations

from textual.widgets import Static

from engine.tasks import Demonstration, Task, add_task
from engine.workspace import Workspace
from rebase_tui.app import RebaseApp
from rebase_tui.widgets.dataset_detail import DatasetDetail
from rebase_tui.widgets.example_card import SourceRowView
from rebase_tui.widgets.example_editor import ExampleEditor
from rebase_tui.widgets.stage_bar import StageBar
from rebase_tui.widgets.task_switcher import TaskSwitcher
from tests.tui.helpers import text_of, until
from tests.tui.toy_workspace import add_examples, make_datastore

SIZE = (120, 36)
OTHER = Task("other", "Say whether the animal is near.", (Demonstration("A cat 2 metres away.", "near"),), ())


def _ws(path) -> Workspace:
    ws = Workspace(path)
    make_datastore(ws, 12)
    add_examples(ws, 6)
    add_task(ws, OTHER)
    return ws


async def test_enter_on_a_dataset_shows_configs_columns_and_rows(tmp_path):
    app = RebaseApp(_ws(tmp_path / "ws"), stage="data", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.screen.query_one("#ds-table").focus()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DatasetDetail), 5, "the dataset's detail")
        shown = text_of(app.screen.query_one("#detail-text", Static))
        assert "default · train" in shown and "12 rows" in shown
        assert "columns: premise, hypothesis, label" in shown
        assert "row 1" in shown and "premise: Premise 0: the cat sat on mat 0." in shown
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, DatasetDetail), 5, "the detail to close")


async def test_task_switcher_on_every_screen_and_in_the_palette(tmp_path):
    app = RebaseApp(_ws(tmp_path / "ws"), stage="review", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        for key in ("f2", "f4", "f5", "f6", "f7", "f3"):
            await pilot.press(key)
            await pilot.pause(0.2)
            await pilot.press("f8")
            await until(pilot, lambda: isinstance(app.screen, TaskSwitcher), 5, f"the switcher after {key}")
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, TaskSwitcher), 5, "the switcher to close")
        await pilot.press("f6")
        await pilot.pause(0.2)
        await pilot.press("f8")
        await until(pilot, lambda: isinstance(app.screen, TaskSwitcher), 5, "the switcher")
        await pilot.press(*"oth", "enter")
        await until(pilot, lambda: app.task_name == "other", 5, "the task to switch")
        await pilot.pause(0.2)
        assert "task other" in str(app.screen.query_one(StageBar).render())
        assert app.screen.task_name == "other" and not app.screen.queue.rows, "Review shows the selected task"
        assert "no examples yet" in text_of(app.screen.query_one("#review-filters"))
        # the palette lists the tasks as well
        await pilot.press("ctrl+p")
        await pilot.pause(0.3)
        await pilot.press(*"task: nli")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, lambda: app.task_name == "nli", 5, "the palette's task")


async def test_revert_drops_unsaved_changes(tmp_path):
    app = RebaseApp(_ws(tmp_path / "ws"), stage="task", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        instruction = app.screen.query_one("#task-instruction")
        stored = instruction.text
        instruction.focus()
        await pilot.press("end", *" And be brief.")
        await pilot.pause()
        assert app.live.draft.dirty and "unsaved changes" in text_of(app.screen.query_one("#task-status"))
        await pilot.press("ctrl+r")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert instruction.text == stored and not app.live.draft.dirty
        assert text_of(app.screen.query_one("#task-status")) == "saved as nli"


async def test_train_shows_at_once_with_a_loading_state(tmp_path):
    app = RebaseApp(_ws(tmp_path / "ws"), stage="data", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("f7")
        screen = app.screen
        assert screen.STAGE == "train"
        await until(pilot, lambda: screen.built, 30, "the form and the panels")
        assert screen.shown_loading, "the frame and a loading indicator were painted before the form and panels"
        assert not screen.query_one("#train-main").loading and screen.query_one("#tr-form")


async def test_the_edit_dialog_shows_the_source_row(tmp_path):
    app = RebaseApp(_ws(tmp_path / "ws"), stage="review", task="nli")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, ExampleEditor), 5, "the editor")
        source = app.screen.query_one("#edit-source", SourceRowView)
        assert source.region.width > 20 and source.region.height > 5, "the source row is visible"
        assert "toy/nli · default/train · row 0" in text_of(source.query_one("#source-origin"))
        assert "Premise 0: the cat sat on mat 0." in text_of(source.query_one("#source-body"))
        await pilot.press("escape")
