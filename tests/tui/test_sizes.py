"""Every screen usable at 80×24 and at 200×50: snapshots of each, and at 80×24 the things that were lost —
the task on the stage bar, Transform's labels and fields (the whole host) and its footer keys, Data's path
field, Retrieve's dedupe box, Train's figures on one line each and its export buttons."""

from __future__ import annotations

import pytest

from engine import review
from engine.tasks import add_task
from engine.workspace import Workspace
from rebase_tui.app import RebaseApp
from tests.tui.helpers import screen_lines, search_settled, until
from tests.tui.snapshot import assert_snapshot
from tests.tui.toy_workspace import TASK, add_examples, add_run, make_datastore

STAGES = ("data", "task", "retrieve", "transform", "review", "train")
SIZES = ((80, 24), (200, 50))


def _ws(path) -> tuple[Workspace, object]:
    ws = Workspace(path, {"ui.theme": "rebase-dark", "student.model": "/models/tiny-student",
                          # nothing listens on port 9: the Transform banner shows, the same in every run
                          "teacher.host": "http://127.0.0.1:9", "teacher.retries": 0,
                          "teacher.connect_timeout": 1.0})
    make_datastore(ws, 12)
    add_examples(ws, 20)
    review.accept(ws, "nli", [1, 2])
    review.reject(ws, "nli", [3], reason="off task")
    return ws, add_run(ws)


async def _settle(pilot, stage: str, run) -> None:  # type: ignore[no-untyped-def]
    app = pilot.app
    await pilot.pause(0.3)
    if stage == "transform":
        await until(pilot, lambda: app.screen.query_one("#teacher-banner").display, 20, "the banner")
    if stage == "train":
        await until(pilot, lambda: app.screen.query_one("#tr-runs").row_count == 1, 10, "the runs")
        app.screen.open_run(run)
    if stage == "retrieve":
        await until(pilot, lambda: app.live.ready, 60, "the retriever's warm-up")
        await search_settled(pilot)
        app.screen.query_one("#rq-timing").display = False  # wall-clock text
    await pilot.pause(0.3)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("stage", STAGES)
async def test_snapshot(tmp_path, request, stage, size, small_datastore):
    if stage in ("data", "task", "retrieve"):  # the real small datastore: ingested datasets, ranked rows
        ws, run = Workspace(small_datastore, {"ui.theme": "rebase-dark"}), None
        add_task(ws, TASK)
        with ws.store.cursor() as cur:  # the card shows where a dataset came from: not this clone's path
            cur.execute("update datasets set source_path = 'datastore/' || name")
    else:
        ws, run = _ws(tmp_path / "ws")
    app = RebaseApp(ws, stage=stage, task="nli")
    async with app.run_test(size=size) as pilot:
        await _settle(pilot, stage, run)
        await assert_snapshot(pilot, f"{stage}_{size[0]}x{size[1]}", request)


async def test_usable_at_80x24(tmp_path):
    ws, run = _ws(tmp_path / "ws")
    app = RebaseApp(ws, stage="data", task="nli")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        text = "\n".join(screen_lines(app))
        assert "task nli" in screen_lines(app)[1], "the stage bar keeps the task"
        assert app.screen.query_one("#ingest-path").size.width >= 40, "the path field has room"
        app.screen.query_one("#ingest-max").focus()
        await pilot.pause()
        assert "1000" in "\n".join(screen_lines(app)), "the max rows field shows its value with the focus"
        await pilot.press("f4")
        await pilot.pause(0.3)
        assert "dedupe" in "\n".join(screen_lines(app)), "Retrieve keeps its dedupe box"
        await pilot.press("f5")
        await _settle(pilot, "transform", run)
        text = "\n".join(screen_lines(app))
        lines = screen_lines(app)
        teacher = next((line.split() for line in lines if line.startswith("server")), [])
        assert teacher[:5] == ["server", "ollama", "▼", "host", "http://127.0.0.1:9"] and "model" in teacher, teacher
        run_line = next((line.split() for line in lines if line.startswith("temp")), [])
        labels = [w for w in run_line if w in {"temp", "reasoning", "parallel", "rows"}]
        assert labels == ["temp", "reasoning", "parallel", "rows"], run_line
        assert "examples: pending 17" in text, "the counts stay on screen"
        assert "Check" in lines[-1] and "Tasks" in lines[-1], "the footer keeps every key: " + lines[-1]
        await pilot.press("f7")
        await _settle(pilot, "train", run)
        lines = screen_lines(app)
        assert any("status    finished" in line for line in lines) and any("step      40/40" in line for line in lines)
        await pilot.press("alt+5")  # the results pane, with its buttons, scrolls into view
        await pilot.pause(0.3)
        text = "\n".join(screen_lines(app))
        assert "Eval" in text and "Export…" in text and "results" in text, text
