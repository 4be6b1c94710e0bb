"""Refining from the Train screen, with the Ollama stand-in, a tiny student and the small real datastore: ctrl+f on
an evaluated run starts a round (the rounds tab shows it and its log), the round waits for review and the app goes
to Review on the round's task; once the examples are decided, ctrl+f again trains the next run (the run tab
follows it live) and the round ends with its scores before → after in the table."""

from __future__ import annotations

from engine import review
from engine.loop import rounds
from engine.workspace import Workspace
from rebase_tui.app import RebaseApp
from rebase_tui.widgets.rounds_pane import RoundsPane
from tests.engine.test_refine import _task_with_run
from tests.tui.helpers import until

SIZE = (130, 40)


async def test_refine_a_run_from_the_train_screen(small_datastore, standin, tiny_student):
    ws = Workspace(small_datastore)
    run, _pool = await _task_with_run(ws, standin, tiny_student)
    ws.set_setting("teacher.host", standin.url)
    ws.set_setting("teacher.model", "llama3.1:8b")
    app = RebaseApp(ws, stage="train", task="mnli")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await until(pilot, lambda: screen.built and screen.query_one("#tr-runs").row_count == 1, 20, "the runs")
        await pilot.press("alt+2", "enter")
        await until(pilot, lambda: screen.run_path is not None and screen.run_path.name == run, 10, "the run")
        calls = standin.chat_requests
        await pilot.press("ctrl+f")
        pane = screen.query_one("#tr-rounds", RoundsPane)
        assert screen.tab == "tab-rounds"
        # the round is made, the teacher transforms its rows, then it waits for review: off to Review
        await until(pilot, lambda: app.current_mode == "review", 180, "the round to wait for review")
        found = rounds.list_rounds(ws, "mnli")
        assert len(found) == 1 and found[0].status == "review" and found[0].run == run
        assert standin.chat_requests == calls + found[0].rows_added
        told = " ".join(str(n.message) for n in app._notifications)
        assert "examples wait for review" in told and app.task_name == "mnli"
        log = "\n".join(pane.query_one("#rounds-log").lines)
        assert "validation items wrong" in log and "wait for review" in log, log

        review.accept_all(ws, "mnli")  # the reviewer's decisions
        await pilot.press("f7")
        await until(pilot, lambda: app.screen is screen, 10, "the Train screen")
        await pilot.press("ctrl+f")  # nothing pending: the next run trains, the run tab follows it
        await until(pilot, lambda: screen.following and screen.run_path.name != run, 60, "the next run to train")
        assert screen.tab == "tab-run"
        await until(pilot, lambda: rounds.list_rounds(ws, "mnli")[0].status == "done", 300, "the round to end")
        done = rounds.list_rounds(ws, "mnli")[0]
        await until(pilot, lambda: pane.rounds and pane.rounds[0].status == "done", 10, "the table")
        cells = pane.query_one("#rounds-table").get_row_at(0)
        assert cells[0] == "▸1" and cells[4] == "done" and "→ …" not in cells[5] and "→" in cells[5], cells
        assert done.after is not None and done.next_run is not None
        assert any(done.describe() in str(n.message) for n in app._notifications)
