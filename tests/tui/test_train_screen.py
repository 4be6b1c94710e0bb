"""Train screen with a real tiny student in a real worker subprocess: live panels from a short run to its
end, eval + model export from the screen; and a long run re-attached after an app restart, then stopped
gracefully (checkpoint first)."""

from __future__ import annotations

import asyncio

from textual.widgets import DataTable, Input, Static

from engine import review
from engine.student import supervise
from engine.student.events import RunEnded, StepMetrics
from engine.workspace import Workspace
from rebase_tui.app import RebaseApp
from rebase_tui.messages import EngineEvent, JobFinished
from rebase_tui.widgets.loss_chart import LossChart
from rebase_tui.widgets.stat_panel import StatPanel
from tests.tui.toy_workspace import add_examples, make_datastore

SIZE = (140, 42)


async def wait_for(pilot, predicate, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.1)


def _workspace(path, n: int = 48) -> Workspace:
    ws = Workspace(path, {"student.batch_size": 4, "student.max_length": 96})
    make_datastore(ws, 40)
    add_examples(ws, n)
    review.accept_all(ws, "nli")
    return ws


async def _fill(pilot, app, student, max_steps: int, eval_every: int) -> None:
    screen = app.screen
    screen.query_one("#tr-student", Input).value = str(student)
    screen.query_one("#tr-max_steps", Input).value = str(max_steps)
    screen.query_one("#tr-eval_every", Input).value = str(eval_every)
    screen.query_one("#tr-runs", DataTable).focus()
    await pilot.pause()


def _ended(seen) -> list[RunEnded]:
    return [m.event for m in seen if isinstance(m, EngineEvent) and isinstance(m.event, RunEnded)]


async def test_short_run_updates_panels_then_eval_and_export(tmp_path, tiny_student):
    ws = _workspace(tmp_path / "ws")
    seen: list = []
    app = RebaseApp(ws, stage="train", task="nli")
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await pilot.pause()
        await _fill(pilot, app, tiny_student, 16, 4)
        await pilot.press("ctrl+j")
        await wait_for(pilot, lambda: _ended(seen))
        assert _ended(seen)[0].status == "finished", _ended(seen)[0]
        steps = sorted({m.event.step for m in seen if isinstance(m, EngineEvent)
                        and isinstance(m.event, StepMetrics)})  # (the hook sees a bubbling message twice)
        assert steps and steps[-1] == 16
        screen = app.screen
        chart = screen.query_one("#tr-chart", LossChart)
        assert len(chart.series["train"]) == len(steps) and chart.series["eval"]
        await wait_for(pilot, lambda: not screen.following)
        stats = screen.query_one("#tr-stats", StatPanel).values
        assert stats["step"] == "16/16" and stats["status"] == "finished"
        table = screen.query_one("#tr-runs", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        # log scale toggle
        await pilot.press("ctrl+l")
        assert chart.log_scale and "log scale" in str(chart.border_title)
        # eval from the screen: metrics and sample predictions appear.
        await pilot.press("v")
        await wait_for(pilot, lambda: any(isinstance(m, JobFinished) and m.job == "eval" for m in seen), 120)
        results = screen.query_one("#tr-results-text", Static)
        text = str(results.render())
        assert "student:validation" in text and "expected:" in text and "predicted:" in text, text
        # model export with the Modelfile and the ollama create line: m asks where (enter takes exports/<run>)
        await pilot.press("m")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: any(isinstance(m, JobFinished) and m.job == "export-model" for m in seen),
                       120)
        told = " ".join(str(n.message) for n in app._notifications)
        assert "ollama create" in told and str(ws.exports_dir / screen.run_path.name) in told, told
        assert (ws.exports_dir / screen.run_path.name / "Modelfile").exists()


async def test_reattach_after_restart_then_graceful_stop(tmp_path, tiny_student):
    ws_dir = tmp_path / "ws"
    ws = _workspace(ws_dir)
    seen: list = []
    app = RebaseApp(ws, stage="train", task="nli")
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await pilot.pause()
        await _fill(pilot, app, tiny_student, 200_000, 50)
        await pilot.press("ctrl+j")
        await wait_for(pilot, lambda: any(isinstance(m, EngineEvent) and isinstance(m.event, StepMetrics)
                                          for m in seen))
        path = app.screen.run_path
    assert supervise.worker_alive(path), "the worker outlives the app"
    seen2: list = []
    app2 = RebaseApp(Workspace(ws_dir), stage="train", task="nli")
    try:
        async with app2.run_test(size=SIZE, message_hook=seen2.append) as pilot:
            screen = app2.screen
            await wait_for(pilot, lambda: screen.following and screen.run_path == path)
            await wait_for(pilot, lambda: sum(1 for m in seen2 if isinstance(m, EngineEvent)
                                              and isinstance(m.event, StepMetrics)) >= 2)
            await pilot.press("ctrl+g")
            await pilot.pause()
            await pilot.press("y")
            await wait_for(pilot, lambda: _ended(seen2))
            assert _ended(seen2)[0].status == "stopped"
            await wait_for(pilot, lambda: not screen.following)
            assert screen.query_one("#tr-stats", StatPanel).values["status"] == "stopped"
            assert list((path / "checkpoints").iterdir()), "a graceful stop leaves a checkpoint"
    finally:
        supervise.stop(path, grace_s=10)
