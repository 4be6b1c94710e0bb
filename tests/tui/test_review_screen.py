"""Review screen by keyboard on examples the real teacher pipeline wrote (Ollama stand-in): accept,
reject (with a reason), edit (saving accepts), undo, moves, filters with counts, search, accept-all-shown,
and undo after an app restart — every decision checked in DuckDB."""

from __future__ import annotations

from textual.widgets import Input, Static, TextArea

from engine import review
from engine.teacher.client import TeacherSettings
from engine.teacher.transform import transform
from engine.workspace import Workspace
from rebase_tui.app import RebaseApp
from rebase_tui.widgets.example_card import ExampleCard, SourceRowView
from rebase_tui.widgets.example_editor import ExampleEditor, ReasonDialog
from rebase_tui.widgets.example_list import ExampleList
from tests.tui.toy_workspace import WEIRD, make_datastore

SIZE = (140, 40)


async def _teach(ws: Workspace, url: str, n: int) -> None:
    settings = TeacherSettings.from_config(ws.config, host=url, model="qwen2.5:0.5b")
    async for _ in transform(ws, "nli", settings, limit=n):
        pass


def _status(ws: Workspace) -> dict[int, str]:
    with ws.store.cursor() as cur:
        return dict(cur.execute("select id, status from examples order by id").fetchall())


async def press(pilot, *keys: str) -> None:
    """Press keys, then wait until the decisions they sent are written (the writer thread)."""
    await pilot.press(*keys)
    screen = pilot.app.screen
    if hasattr(screen, "flush_writes"):
        await screen.flush_writes()
    await pilot.pause()


def _list(app) -> ExampleList:
    return app.screen.query_one("#review-list", ExampleList)


async def test_review_keys_persist_and_undo_survives_restart(tmp_path, standin):
    ws_dir = tmp_path / "ws"
    ws = Workspace(ws_dir)
    make_datastore(ws, 12)
    await _teach(ws, standin.url, 12)
    ids = sorted(_status(ws))
    pending = [i for i, s in _status(ws).items() if s == "pending"]
    assert len(pending) >= 8, _status(ws)
    app = RebaseApp(ws, stage="review", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        lst = _list(app)
        assert app.screen.focused is lst, "the list has focus when the screen opens"
        assert lst.current.id == ids[0]
        first = lst.current.id
        # The card and the source row sit beside the list.
        card_text = str(app.screen.query_one("#review-card", ExampleCard).query_one("#card-body", Static).render())
        assert review.get_example(ws, first).output in card_text
        source = str(app.screen.query_one("#review-source", SourceRowView).query_one("#source-origin",
                                                                                      Static).render())
        assert "toy/nli" in source
        await press(pilot, "a")
        assert _status(ws)[first] == "accepted"
        second = lst.current.id
        assert second == ids[1]
        await press(pilot, "r")
        assert _status(ws)[second] == "rejected"
        # Reject with a reason.
        third = lst.current.id
        await pilot.press("R")
        await pilot.pause()
        assert isinstance(app.screen, ReasonDialog)
        await press(pilot, *"off task", "enter")
        await pilot.pause()
        got = review.get_example(ws, third)
        assert (got.status, got.reason) == ("rejected", "off task")
        # Edit: saving accepts.
        fourth = lst.current.id
        before = review.get_example(ws, fourth)
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, ExampleEditor)
        area = app.screen.query_one("#edit-output", TextArea)
        area.text = "contradiction [/odd] edited"
        await press(pilot, "ctrl+s")
        await pilot.pause()
        got = review.get_example(ws, fourth)
        assert (got.status, got.output, got.edited) == ("accepted", "contradiction [/odd] edited", True)
        # One undo reverts the whole edit (the text and the accept: one decision).
        await press(pilot, "u")
        got = review.get_example(ws, fourth)
        assert {k: getattr(got, k) for k in ("status", "input", "output", "reasoning", "edited")} == \
            {k: getattr(before, k) for k in ("status", "input", "output", "reasoning", "edited")}
        assert before.status == "pending" and not before.edited
        assert lst.current.id == fourth
        assert lst.current.status == "pending"
        # The earlier decisions are untouched: the next undo reverts the reject with a reason.
        assert review.get_example(ws, third).status == "rejected"
        # Moves: last, first, next, previous.
        await pilot.press("G")
        assert lst.current.id == ids[-1]
        await pilot.press("g")
        assert lst.current.id == ids[0]
        await pilot.press("j", "j", "k")
        assert lst.current.id == ids[1]
        # Filter: accepted (key 3) shows only the accepted one; counts are in the filter bar.
        await pilot.press("3")
        assert [r.id for r in lst.rows] == [first]
        bar = str(app.screen.query_one("#review-filters", Static).render())
        assert "accepted 1" in bar and "rejected 2" in bar
        # Pending (2), then accept all shown after the confirmation.
        await pilot.press("2")
        shown = [r.id for r in lst.rows]
        assert shown and all(_status(ws)[i] == "pending" for i in shown)
        await pilot.press("A")
        await pilot.pause()
        await press(pilot, "y")
        assert all(_status(ws)[i] == "accepted" for i in shown)
        # Search narrows the shown rows; escape clears it.
        await pilot.press("1", "slash")
        await pilot.pause()
        box = app.screen.query_one("#review-search", Input)
        assert app.screen.focused is box
        needle = review.get_example(ws, ids[2]).input[:12]
        await pilot.press(*needle, "enter")
        await pilot.pause()
        assert ids[2] in [r.id for r in lst.rows] and len(lst.rows) < len(ids)
        assert app.screen.focused is lst
        await pilot.press("escape")
        assert len(lst.rows) == len(ids)
    # A new app on the same workspace: undo reverts the accept-all batch.
    ws2 = Workspace(ws_dir)
    app2 = RebaseApp(ws2, stage="review", task="nli")
    async with app2.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await press(pilot, "u")
        await pilot.pause()
        states = _status(ws2)
        assert all(states[i] == "pending" for i in shown)
        assert states[first] == "accepted"
        assert "pending" in str(app2.screen.query_one("#review-filters", Static).render())


async def test_untrusted_text_is_shown_verbatim(tmp_path, standin):
    ws = Workspace(tmp_path / "ws")
    make_datastore(ws, 6)
    await _teach(ws, standin.url, 6)
    with ws.store.cursor() as cur:
        cur.execute("update examples set input = ? where id = (select min(id) from examples)", [WEIRD])
    app = RebaseApp(ws, stage="review", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        body = str(app.screen.query_one("#review-card", ExampleCard).query_one("#card-body", Static).render())
        assert WEIRD in body
        # The example whose source row holds markup-like text shows that row verbatim.
        lst = _list(app)
        target = next(i for i, r in enumerate(lst.rows) if review.get_example(ws, r.id).row == 103)
        lst.move_to(target)
        await pilot.pause(0.2)
        source = str(app.screen.query_one("#review-source", SourceRowView).query_one("#source-body",
                                                                                    Static).render())
        assert WEIRD in source


async def test_review_actions_are_in_the_command_palette(tmp_path):
    from tests.tui.toy_workspace import add_examples

    ws = Workspace(tmp_path / "ws")
    make_datastore(ws, 6)
    add_examples(ws, 6)
    app = RebaseApp(ws, stage="review", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        first = _list(app).current.id
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"review: accept")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause(0.3)
        await app.screen.flush_writes()
        assert review.get_example(ws, first).status == "accepted"


async def _regenerated(pilot) -> None:
    """Wait for the regenerate worker (a real teacher call through the stand-in) to finish."""
    for worker in [w for w in pilot.app.screen.workers if w.group == "regenerate"]:
        await worker.wait()
    await pilot.pause()


async def test_regenerate_key_asks_the_teacher_again(tmp_path, standin):
    ws = Workspace(tmp_path / "ws", overrides={"teacher.host": standin.url})
    make_datastore(ws, 6)
    await _teach(ws, standin.url, 6)
    app = RebaseApp(ws, stage="review", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        lst = _list(app)
        old = lst.current.id
        before = review.get_example(ws, old)
        calls = standin.chat_requests
        await pilot.press("n")
        await _regenerated(pilot)
        assert standin.chat_requests == calls + 1, "one new teacher call"
        got = review.get_example(ws, old)
        assert (got.status, got.reason) == ("rejected", "regenerated")
        new_id = max(_status(ws))
        new = review.get_example(ws, new_id)
        assert new.status == "pending" and new.row == before.row
        # The new example is shown right below the old one, under the cursor, in the card.
        assert lst.current.id == new_id and [r.id for r in lst.rows].index(new_id) == 1
        assert lst.rows[0].status == "rejected"
        card = str(app.screen.query_one("#review-card", ExampleCard).query_one("#card-body", Static).render())
        assert new.input[:40] in card
        # One u restores the old example (and rejects the new one).
        await press(pilot, "u")
        got = review.get_example(ws, old)
        assert (got.status, got.reason, got.output) == ("pending", None, before.output)
        assert review.get_example(ws, new_id).status == "rejected"
        assert lst.rows[0].status == "pending"
        # Ollama gone: a clear notification, nothing changed, the app still works.
        standin.stop()
        lst.move_to(0)
        await pilot.pause()
        states = _status(ws)
        await pilot.press("n")
        await _regenerated(pilot)
        assert any("not reachable" in n.message for n in app._notifications)
        assert _status(ws) == states
        await press(pilot, "a")
        assert review.get_example(ws, old).status == "accepted"
