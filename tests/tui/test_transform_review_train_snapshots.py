"""Deterministic SVG snapshots of the Transform, Review and Train screens (fixed size and theme; the
in-house helper of tests/tui/snapshot.py; ``pytest --update-snapshots`` rewrites them)."""

from __future__ import annotations

from engine import review
from engine.workspace import Workspace
from rebase_tui.app import RebaseApp
from tests.tui.helpers import until
from tests.tui.snapshot import assert_snapshot
from tests.tui.toy_workspace import add_examples, make_datastore

SIZE = (120, 36)


def _ws(path, **settings) -> Workspace:
    ws = Workspace(path, {"ui.theme": "rebase-dark", **settings})
    make_datastore(ws, 12)
    return ws


async def test_snapshot_transform_with_unreachable_banner(tmp_path, request):
    # Port 9 (discard) answers nothing: the banner names the host and the fix.
    ws = _ws(tmp_path / "ws", **{"teacher.host": "http://127.0.0.1:9", "teacher.retries": 0,
                                 "teacher.connect_timeout": 1.0})
    app = RebaseApp(ws, stage="transform", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.query_one("#teacher-banner").display, 20, "the banner")
        await assert_snapshot(pilot, "transform_screen", request)


async def test_snapshot_review(tmp_path, request):
    ws = _ws(tmp_path / "ws")
    add_examples(ws, 30)
    review.accept(ws, "nli", [1, 2])
    review.reject(ws, "nli", [3], reason="off task")
    app = RebaseApp(ws, stage="review", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("j")
        await until(pilot, lambda: app.screen.query_one("#review-card").shown_id == 2, 10, "the card")
        await assert_snapshot(pilot, "review_screen", request)


async def test_snapshot_train_form(tmp_path, request):
    ws = _ws(tmp_path / "ws", **{"student.model": "/models/tiny-student"})
    add_examples(ws, 10)
    review.accept_all(ws, "nli")
    app = RebaseApp(ws, stage="train", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: not any(w.group == "runs-list" and not w.is_finished for w in app.workers)
                    and not any(w.name == "runs-list" and not w.is_finished for w in app.screen.workers), 10)
        await assert_snapshot(pilot, "train_screen", request)
