"""Transform screen against the Ollama stand-in: streamed generations, a failure with its raw reply in the
log, the banner when Ollama is unreachable or the model is missing, and starting once it comes back."""

from __future__ import annotations

import asyncio

from textual.widgets import ProgressBar, Select, Static

from engine.workspace import Workspace
from rebase_tui.app import RebaseApp
from rebase_tui.messages import EngineEvent, JobFinished
from rebase_tui.widgets.log_tail import LogTail
from rebase_tui.widgets.stat_panel import StatPanel
from rebase_tui.widgets.stream_view import StreamView
from tests.ollama_standin import OllamaStandin
from tests.tui.toy_workspace import make_datastore

SIZE = (130, 40)


async def wait_for(pilot, predicate, timeout: float = 15.0) -> None:
    """Pause until ``predicate()`` holds (the app keeps running meanwhile)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.05)


def _banner(app) -> Static:
    return app.screen.query_one("#teacher-banner", Static)


def _examples(ws) -> dict[str, int]:
    with ws.store.cursor() as cur:
        return dict(cur.execute("select status, count(*) from examples group by status").fetchall())


async def test_transform_streams_and_logs_an_injected_failure(tmp_path, standin_factory):
    srv = standin_factory(num_parallel=2, token_delay=0.002, piece_chars=6)
    srv.inject("bad_json", times=1, match="Premise 5:")
    ws = Workspace(tmp_path / "ws", {"teacher.host": srv.url, "teacher.model": "qwen2.5:0.5b",
                                     "teacher.retries": 0})
    make_datastore(ws, 12)
    seen: list = []
    app = RebaseApp(ws, stage="transform", task="nli")
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.query_one("#t-model", Select).value == "qwen2.5:0.5b")
        assert not _banner(app).display
        await pilot.press("ctrl+j")
        await wait_for(pilot, lambda: any(isinstance(m, JobFinished) and m.job == "transform" for m in seen))
        finished = next(m for m in seen if isinstance(m, JobFinished) and m.job == "transform")
        assert finished.outcome == "done", finished.error
        texts = [m.event for m in seen if isinstance(m, EngineEvent) and type(m.event).__name__ == "ExampleText"]
        assert texts, "no streamed text reached the screen"
        stream = screen.query_one("#t-stream", StreamView)
        assert 0 < len(stream.cards) <= stream.keep and stream.streaming == 0
        stats = screen.query_one("#t-stats", StatPanel).values
        stored = _examples(ws)
        assert int(stats["failed"]) == stored.get("failed", 0) == 1
        assert int(stats["finished"]) == 12
        log = "\n".join(screen.query_one("#t-log", LogTail).lines)
        assert "✗" in log and "raw:" in log
        bar = screen.query_one("#t-progress", ProgressBar)
        assert bar.progress == bar.total == 12
        message = str(screen.query_one("#t-message", Static).render())
        assert "examples/s" in message and "ETA 0:00" in message, "the engine's rate and ETA are shown"
        # Starting again asks nothing new: every row is cached (the failed unusable reply is final).
        before = srv.chat_requests
        seen.clear()
        await pilot.press("ctrl+j")
        await wait_for(pilot, lambda: any(isinstance(m, JobFinished) and m.job == "transform" for m in seen))
        assert srv.chat_requests == before


async def test_banner_when_unreachable_then_start_once_ollama_is_back(tmp_path):
    srv = OllamaStandin()
    srv.start()
    url = srv.url
    port = srv.port if srv.port else int(url.rsplit(":", 1)[1])
    srv.stop()  # nothing listens there now
    ws = Workspace(tmp_path / "ws", {"teacher.host": url, "teacher.model": "qwen2.5:0.5b", "teacher.retries": 0,
                                     "teacher.connect_timeout": 2.0})
    make_datastore(ws, 4)
    seen: list = []
    app = RebaseApp(ws, stage="transform", task="nli")
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await wait_for(pilot, lambda: _banner(app).display)
        text = str(_banner(app).render())
        assert "not reachable" in text and "ollama serve" in text
        # The rest of the app keeps working.
        await pilot.press("f6")
        await pilot.pause(0.1)
        assert app.current_mode == "review"
        await pilot.press("f5")
        await pilot.pause(0.1)
        # Starting while it is down reports the problem and changes nothing.
        await pilot.press("ctrl+j")
        await wait_for(pilot, lambda: any(isinstance(m, JobFinished) and m.job == "transform" for m in seen))
        assert next(m for m in seen if isinstance(m, JobFinished)).outcome == "error"
        assert _examples(ws) == {}
        # Ollama comes back on the same port, without the configured model: the banner gives the pull.
        back = OllamaStandin(models=[m for m in __import__("tests.ollama_standin", fromlist=["x"]).DEFAULT_MODELS
                                     if m.name == "llama3.1:8b"], port=port).start()
        try:
            await pilot.press("ctrl+r")
            await wait_for(pilot, lambda: "ollama pull qwen2.5:0.5b" in str(_banner(app).render()))
        finally:
            back.stop()
        # And with the model: the banner goes, and starting works without restarting the app.
        again = OllamaStandin(port=port).start()
        try:
            await pilot.press("ctrl+r")
            await wait_for(pilot, lambda: not _banner(app).display)
            seen.clear()
            await pilot.press("ctrl+j")
            await wait_for(pilot, lambda: any(isinstance(m, JobFinished) and m.job == "transform" for m in seen))
            done = next(m for m in seen if isinstance(m, JobFinished))
            assert done.outcome == "done", done.error
            assert sum(_examples(ws).values()) == 4
        finally:
            again.stop()


async def test_pause_then_resume_asks_nothing_twice(tmp_path, standin_factory):
    srv = standin_factory(num_parallel=2, latency=0.15)
    ws = Workspace(tmp_path / "ws", {"teacher.host": srv.url, "teacher.model": "qwen2.5:0.5b"})
    make_datastore(ws, 10)
    seen: list = []
    app = RebaseApp(ws, stage="transform", task="nli")
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.query_one("#t-model", Select).value == "qwen2.5:0.5b")
        await pilot.press("ctrl+j")
        await wait_for(pilot, lambda: sum(screen.counts.values()) >= 2)
        await pilot.press("space")  # pause: the run is closed, finished rows are stored
        await wait_for(pilot, lambda: any(isinstance(m, JobFinished) for m in seen))
        assert screen.state == "paused"
        done_before = sum(_examples(ws).values())
        assert 2 <= done_before < 10
        seen.clear()
        await pilot.press("space")  # resume: cached rows are skipped
        await wait_for(pilot, lambda: any(isinstance(m, JobFinished) for m in seen))
        assert next(m for m in seen if isinstance(m, JobFinished)).outcome == "done"
        assert screen.state == "idle"
        assert sum(_examples(ws).values()) == 10
        with ws.store.cursor() as cur:
            rows = cur.execute('select count(distinct "row") from examples').fetchall()[0][0]
        assert rows == 10
    # Only calls in flight at the pause can be asked again (at most the concurrency).
    assert srv.chat_completed <= 10 + 2
