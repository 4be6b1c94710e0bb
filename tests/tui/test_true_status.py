"""Status that is true: every figure on screen comes from one place and belongs to the selected task — the
stage bar follows the task opened from the list, Transform shows the selected task's pool and examples (a
run of another task is named as such), its counts agree with Review's and the database, the "model not
installed" banner goes once an installed model is picked, and the card follows an accept-all."""

from __future__ import annotations

from textual.widgets import OptionList, Select, Static

from engine import review
from engine.tasks import Demonstration, Task, add_task
from engine.workspace import Workspace
from rebase_tui.app import RebaseApp
from rebase_tui.widgets.stage_bar import StageBar
from tests.tui.helpers import text_of, until
from tests.tui.toy_workspace import add_examples, make_datastore

SIZE = (130, 40)
OTHER = Task("other", "Say whether the animal is near.", (Demonstration("A cat 2 metres away.", "near"),), ())


def _with_other_task(ws: Workspace) -> None:
    add_task(ws, OTHER)
    with ws.store.transaction() as cur:
        for rank in range(1, 6):
            cur.execute('insert into retrievals (task, rank, "row", score, input_score, output_score, '
                        "dataset_score) values ('other', ?, ?, 1, 0.5, 0.5, 0.5)", [rank, 100 + rank])


def _bar(app) -> str:
    return str(app.screen.query_one(StageBar).render())


async def test_stage_bar_follows_the_task_opened_from_the_list(tmp_path):
    ws = Workspace(tmp_path / "ws")
    make_datastore(ws, 8)
    _with_other_task(ws)
    app = RebaseApp(ws, stage="task", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "task nli" in _bar(app)
        tasks = app.screen.query_one("#task-list", OptionList)
        tasks.focus()
        tasks.highlighted = [o.id for o in tasks.options].index("other")
        await pilot.press("enter")
        await until(pilot, lambda: app.task_name == "other", 5, "the task to open")
        await pilot.pause()
        assert "task other" in _bar(app), _bar(app)
        await pilot.press("f5")
        await until(pilot, lambda: app.current_mode == "transform", 5, "the Transform screen")
        await pilot.pause()
        assert "task other" in _bar(app)
        assert text_of(app.screen.query_one("#t-state")).startswith("task other · pool 5 rows")


async def test_transform_shows_the_selected_task_and_names_another_tasks_run(tmp_path, standin_factory):
    srv = standin_factory(num_parallel=2, latency=0.05)
    srv.hold_after(3)  # the run of nli stays in flight while the other task is looked at
    ws = Workspace(tmp_path / "ws", {"teacher.host": srv.url, "teacher.model": "qwen2.5:0.5b"})
    make_datastore(ws, 20)
    _with_other_task(ws)
    app = RebaseApp(ws, stage="transform", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await until(pilot, lambda: screen.query_one("#t-model", Select).value == "qwen2.5:0.5b", 20, "models")
        await pilot.press("ctrl+j")
        await until(pilot, lambda: sum(screen.counts.values()) >= 3, 20, "nli's first examples")
        app.task_name = "other"  # as the task switcher does
        await pilot.press("f6")
        await pilot.press("f5")
        await pilot.pause()
        state = text_of(screen.query_one("#t-state"))
        assert state.startswith("task other · pool 5 rows · 0 examples"), state
        assert "a transform of task nli is running" in state, state
        assert sum(screen.counts.values()) == 0 and "ETA" not in text_of(screen.query_one("#t-message"))
        app.task_name = "nli"
        await pilot.press("f6")
        await pilot.press("f5")
        await pilot.pause()
        assert text_of(screen.query_one("#t-state")).startswith("task nli · pool 20 rows")
        srv.release()
        await until(pilot, lambda: screen.state == "idle", 30, "the run to end")
        await pilot.pause(0.5)
        # the counts on Transform, on Review and in the database are one and the same
        stored = review.counts(ws, "nli")
        shown = {k: int(v.replace(",", "")) for k, v in screen.query_one("#t-stats").values.items()}
        assert shown["pending"] == stored.get("pending", 0) and sum(stored.values()) == 20
        await pilot.press("f6")
        await pilot.pause(0.3)
        assert f"pending {stored.get('pending', 0)}" in text_of(app.screen.query_one("#review-filters"))


async def test_banner_goes_when_an_installed_model_is_picked(tmp_path, standin):
    ws = Workspace(tmp_path / "ws", {"teacher.host": standin.url, "teacher.model": "not-installed:1b"})
    make_datastore(ws, 4)
    app = RebaseApp(ws, stage="transform", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        banner = app.screen.query_one("#teacher-banner", Static)
        await until(pilot, lambda: banner.display, 20, "the banner")
        assert "not-installed:1b is not installed" in text_of(banner)
        app.screen.query_one("#t-model", Select).value = "qwen2.5:0.5b"
        await pilot.pause()
        assert not banner.display


async def test_card_follows_accept_all(tmp_path):
    ws = Workspace(tmp_path / "ws")
    make_datastore(ws, 10)
    add_examples(ws, 6)
    app = RebaseApp(ws, stage="review", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("2", "A")
        await pilot.pause(0.2)
        await pilot.press("y")
        card = app.screen.query_one("#review-card").query_one("#card-body")
        assert "· accepted" in text_of(card), "the card changes with the row, before the write returns"
        await app.screen.flush_writes()
        await pilot.pause(0.3)
        assert "· accepted" in text_of(card) and "· pending" not in text_of(card), text_of(card)
