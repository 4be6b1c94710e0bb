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
        assert int(stats["pending"]) == stored.get("pending", 0) and sum(stored.values()) == 12
        log = "\n".join(screen.query_one("#t-log", LogTail).lines)
        assert "✗" in log and "raw:" in log
        bar = screen.query_one("#t-progress", ProgressBar)
        assert bar.progress == bar.total == 12
        message = str(screen.query_one("#t-message", Static).render())
        assert "last run of nli: 11 new, 1 failed" in message and "ETA" not in message, \
            "an idle screen says how the run ended and shows no ETA"
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


async def test_pause_under_load_starts_no_new_request_and_in_flight_ones_finish(tmp_path, standin_factory):
    """Paused means no new request starts: the requests in flight finish (and are stored) while the screen
    says so, then nothing reaches the teacher until resume; resuming asks nothing twice."""
    srv = standin_factory(num_parallel=4, latency=0.05, token_delay=0.002)
    srv.hold_after(6)  # from the 7th request on, the teacher holds every call: a pause finds them in flight
    ws = Workspace(tmp_path / "ws", {"teacher.host": srv.url, "teacher.model": "qwen2.5:0.5b",
                                     "teacher.concurrency": 4})
    make_datastore(ws, 40)
    seen: list = []
    app = RebaseApp(ws, stage="transform", task="nli")
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.query_one("#t-model", Select).value == "qwen2.5:0.5b")
        await pilot.press("ctrl+j")
        await wait_for(pilot, lambda: srv.chat_completed >= 6 and srv.chat_requests - srv.chat_completed == 4
                       and screen.in_flight == 4)  # four calls held by the teacher
        requested = srv.chat_requests
        await pilot.press("ctrl+z")
        assert screen.state == "pausing", "calls are in flight: the screen says they are finishing"
        assert "4 in flight finishing" in str(screen.query_one("#t-state", Static).render())
        srv.release()  # the calls in flight finish
        await wait_for(pilot, lambda: screen.state == "paused", 20)
        assert "nothing in flight" in str(screen.query_one("#t-state", Static).render())
        await pilot.pause(0.6)  # the engine's next progress event while paused
        assert "ETA" not in str(screen.query_one("#t-message", Static).render()), "no ETA while paused"
        paused_at = srv.chat_requests
        assert paused_at == requested, "no request started after the pause"
        stored = sum(_examples(ws).values())
        assert stored == srv.chat_completed == paused_at, "every call in flight finished and was stored"
        await pilot.pause(1.0)  # a running transform would have asked many more by now
        assert srv.chat_requests == paused_at and sum(_examples(ws).values()) == stored
        assert screen.state == "paused" and not any(isinstance(m, JobFinished) for m in seen)
        await pilot.press("ctrl+z")  # resume: the same run goes on
        await wait_for(pilot, lambda: any(isinstance(m, JobFinished) for m in seen), 60)
        assert next(m for m in seen if isinstance(m, JobFinished)).outcome == "done"
        assert screen.state == "idle"
        assert sum(_examples(ws).values()) == 40
    assert srv.chat_requests == 40, "nothing was asked twice"


async def test_openai_backend_from_the_form_streams_and_reports_failed_calls(tmp_path, openai_standin_factory,
                                                                             standin_factory):
    srv = openai_standin_factory(num_parallel=2, token_delay=0.002, flavor="llamacpp")
    srv.inject("http503", times=100, match="Premise 5:")
    ws = Workspace(tmp_path / "ws", {"teacher.backend": "openai", "teacher.host": srv.base_url,
                                     "teacher.model": "meta-llama/Llama-3.1-8B-Instruct", "teacher.retries": 0})
    make_datastore(ws, 8)
    seen: list = []
    app = RebaseApp(ws, stage="transform", task="nli")
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        screen = app.screen
        assert screen.query_one("#t-backend", Select).value == "openai"
        await wait_for(pilot, lambda: screen.query_one("#t-model", Select).value == "meta-llama/Llama-3.1-8B-Instruct")
        assert not _banner(app).display
        await pilot.press("ctrl+j")
        await wait_for(pilot, lambda: any(isinstance(m, JobFinished) and m.job == "transform" for m in seen))
        assert next(m for m in seen if isinstance(m, JobFinished)).outcome == "done"
        assert any(isinstance(m, EngineEvent) and type(m.event).__name__ == "ExampleText" for m in seen)
        assert sum(int(v.replace(",", "")) for v in screen.query_one("#t-stats", StatPanel).values.values()) == 8
        log = "\n".join(screen.query_one("#t-log", LogTail).lines)
        assert "1 teacher call(s) could not be made or answered (1 × HTTP 503)" in log
        with ws.store.cursor() as cur:
            options = cur.execute("select distinct options from examples").fetchall()
        assert all('"backend": "openai"' in o for (o,) in options)
        # Back to Ollama in the form: the host is typed, the check lists that server's models
        ollama = standin_factory()
        screen.query_one("#t-backend", Select).value = "ollama"
        await pilot.pause(0.1)
        host = screen.query_one("#t-host")
        host.value = ollama.url
        host.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: "llama3.1:8b" in screen.models)
        assert "not installed" in str(_banner(app).render()), "the configured model is not on that server"
