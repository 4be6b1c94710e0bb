"""Every screen legible in every shipped theme: no text on screen is within 3:1 contrast of its background
(the loss chart's axes were white on white in rebase-light, Review's ids white on light grey), and a
snapshot of the Train and Review screens per theme."""

from __future__ import annotations

import pytest

from engine import review
from engine.workspace import Workspace
from rebase_tui.app import RebaseApp
from rebase_tui.themes import discover_themes
from tests.tui.helpers import illegible, until
from tests.tui.snapshot import assert_snapshot
from tests.tui.toy_workspace import add_examples, add_run, make_datastore

SHIPPED = sorted(t.name for t in discover_themes()[0])
SIZE = (120, 36)


def _ws(path, theme: str) -> tuple[Workspace, object]:
    ws = Workspace(path, {"ui.theme": theme, "student.model": "/models/tiny-student"})
    make_datastore(ws, 12)
    add_examples(ws, 20)
    review.accept(ws, "nli", [1, 2])
    review.reject(ws, "nli", [3], reason="off task")
    run = add_run(ws)
    return ws, run


async def _open_run(pilot, run) -> None:  # type: ignore[no-untyped-def]
    screen = pilot.app.screen
    await until(pilot, lambda: screen.query_one("#tr-runs").row_count == 1, 10, "the runs")
    screen.open_run(run)
    await pilot.pause()


def test_both_themes_ship():
    assert {"rebase-dark", "rebase-light"} <= set(SHIPPED)


@pytest.mark.parametrize("theme", SHIPPED)
async def test_every_screen_is_legible(tmp_path, theme):
    ws, run = _ws(tmp_path / "ws", theme)
    app = RebaseApp(ws, stage="data", task="nli")
    found = []
    async with app.run_test(size=SIZE) as pilot:
        for key, stage in (("f2", "data"), ("f3", "task"), ("f4", "retrieve"), ("f5", "transform"),
                           ("f6", "review"), ("f7", "train")):
            await pilot.press(key)
            await pilot.pause(0.3)
            if stage == "train":
                await _open_run(pilot, run)
            found += [f"{stage}: {problem}" for problem in illegible(app, 3.0)]
    assert not found, f"{theme}: text too close to its background:\n" + "\n".join(found)


@pytest.mark.parametrize("theme", SHIPPED)
async def test_snapshot_train_per_theme(tmp_path, theme, request):
    ws, run = _ws(tmp_path / "ws", theme)
    app = RebaseApp(ws, stage="train", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        await _open_run(pilot, run)
        await assert_snapshot(pilot, f"train_{theme}", request)


@pytest.mark.parametrize("theme", SHIPPED)
async def test_snapshot_review_per_theme(tmp_path, theme, request):
    ws, _run = _ws(tmp_path / "ws", theme)
    app = RebaseApp(ws, stage="review", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("j")
        await until(pilot, lambda: app.screen.query_one("#review-card").shown_id == 2, 10, "the card")
        await assert_snapshot(pilot, f"review_{theme}", request)
