"""Quitting while work runs: the app asks first (y quits, n or escape stays), stops its jobs in order, closes
the workspace only once no thread uses it, and what was stored stays intact and resumable."""

from __future__ import annotations

import asyncio

from textual.widgets import Select, Static

from engine.teacher.client import TeacherSettings
from engine.teacher.transform import TransformFinished, transform
from engine.workspace import Workspace
from rebase_tui.app import QuitDialog, RebaseApp
from tests.conftest import corpus
from tests.tui.helpers import until
from tests.tui.toy_workspace import make_datastore

SIZE = (120, 36)


def _rows_done(ws: Workspace) -> tuple[int, int]:
    with ws.store.cursor() as cur:
        return cur.execute('select count(*), count(distinct "row") from examples').fetchall()[0]


async def test_quit_during_a_transform_asks_then_stops_in_order_and_resumes(tmp_path, standin_factory):
    srv = standin_factory(num_parallel=2, latency=0.05, token_delay=0.01)
    srv.hold_after(4)  # the teacher then holds every call: the run is still going when the quit comes
    ws_dir = tmp_path / "ws"
    ws = Workspace(ws_dir, {"teacher.host": srv.url, "teacher.model": "qwen2.5:0.5b"})
    make_datastore(ws, 40)
    app = RebaseApp(ws, stage="transform", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await until(pilot, lambda: screen.query_one("#t-model", Select).value == "qwen2.5:0.5b", 20, "models")
        await pilot.press("ctrl+j")
        await until(pilot, lambda: sum(screen.counts.values()) >= 2 and srv.chat_requests > srv.chat_completed, 30,
                    "a few examples, and calls in flight")
        # ctrl+q asks; n stays (the transform goes on)
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, QuitDialog), 5, "the quit question")
        asked = str(app.screen.query_one(Static).render())
        assert "transform is running: quit and resume later?" in asked.lower(), asked
        await pilot.press("n")
        await until(pilot, lambda: not isinstance(app.screen, QuitDialog), 5, "the dialog to close")
        assert not app.closing and screen.state == "running"
        # ctrl+c asks the same; escape stays
        await pilot.press("ctrl+c")
        await until(pilot, lambda: isinstance(app.screen, QuitDialog), 5, "the quit question")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, QuitDialog), 5, "the dialog to close")
        assert not app.closing
        # y quits
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, QuitDialog), 5, "the quit question")
        await pilot.press("y")
        await until(pilot, lambda: app._exit, 30, "the app to exit")
    assert app.return_code in (0, None)
    assert app.stopped_cleanly and app.workspace_closed
    assert "stopped a transform" in app.exit_note and "\n" not in app.exit_note
    # what was stored is intact, and a new run picks up the rest without asking any row twice
    ws = Workspace(ws_dir)
    try:
        stored, distinct = _rows_done(ws)
        assert 2 <= stored == distinct < 40
        srv.release()
        settings = TeacherSettings.from_config(ws.config, host=srv.url, model="qwen2.5:0.5b")
        finished = [e async for e in transform(ws, "nli", settings) if isinstance(e, TransformFinished)]
        assert finished[0].cached == stored
        assert _rows_done(ws) == (40, 40)
    finally:
        ws.close()


async def test_quit_during_an_ingest_waits_for_its_thread_before_closing(tmp_path):
    """The ingest thread writes to DuckDB until its next event: the workspace closes only after it ended."""
    ws_dir = tmp_path / "ws"
    app = RebaseApp(Workspace(ws_dir))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.screen.query_one("#ingest-path").value = str(corpus("datastore"))
        await pilot.press("ctrl+j")
        await until(pilot, lambda: app.screen.query_one("#ingest-progress").progress > 0, 60, "the ingest")
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, QuitDialog), 5, "the quit question")
        assert "ingest is running" in str(app.screen.query_one(Static).render()).lower()
        await pilot.press("y")
        await until(pilot, lambda: app._exit, 60, "the app to exit")
    assert app.stopped_cleanly and app.workspace_closed
    assert app.executor.active == 0
    ws = Workspace(ws_dir)  # opens: the file was closed cleanly and is not held
    ws.close()


async def test_quit_with_nothing_running_exits_at_once(tmp_path):
    app = RebaseApp(Workspace(tmp_path / "ws"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+q")
        await until(pilot, lambda: app._exit, 10, "the app to exit")
        assert not isinstance(app.screen, QuitDialog)
    assert app.workspace_closed and app.exit_note == ""


async def test_sigterm_quits_without_asking(tmp_path, standin_factory):
    import os
    import signal

    srv = standin_factory(num_parallel=2, latency=0.05, token_delay=0.01)
    srv.hold_after(2)
    ws = Workspace(tmp_path / "ws", {"teacher.host": srv.url, "teacher.model": "qwen2.5:0.5b"})
    make_datastore(ws, 30)
    app = RebaseApp(ws, stage="transform", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await until(pilot, lambda: screen.query_one("#t-model", Select).value == "qwen2.5:0.5b", 20, "models")
        await pilot.press("ctrl+j")
        await until(pilot, lambda: sum(screen.counts.values()) >= 1, 30, "an example")
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0)
        await until(pilot, lambda: app._exit, 30, "the app to exit")
    assert app.stopped_cleanly and app.workspace_closed
    assert "stopped a transform" in app.exit_note


def test_the_event_loop_closes_without_waiting_for_a_thread_that_overran_the_quit():
    """A job's thread that outlives the quit's deadline (an ingest walking a huge folder) must not hold the
    process: the loop's closing joins its default executor, which is the app's :class:`TrackedExecutor`."""
    import threading
    import time

    from rebase_tui.quitting import TrackedExecutor

    release = threading.Event()
    executor = TrackedExecutor()

    async def app_like() -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(executor)
        loop.run_in_executor(None, release.wait, 60)
        await asyncio.sleep(0.05)

    t0 = time.monotonic()
    asyncio.run(app_like())
    took = time.monotonic() - t0
    assert executor.active == 1  # the thread still runs: the process exit (os._exit) ends it
    release.set()
    assert executor.wait_idle(5)
    assert took < 5, f"closing the loop waited {took:.1f} s for the thread"


def test_a_terminal_that_hung_up_is_told_from_one_still_there_and_from_none():
    import os
    import tempfile

    from rebase_tui.quitting import terminal_gone

    master, slave = os.openpty()
    try:
        assert not terminal_gone(slave)
        os.close(master)  # the terminal's other end goes away, as when an SSH link drops
        master = -1
        assert terminal_gone(slave)
    finally:
        os.close(slave)
        if master >= 0:
            os.close(master)
    with tempfile.TemporaryFile() as f:  # output to a file: no terminal, nothing hung up
        assert not terminal_gone(f.fileno())
