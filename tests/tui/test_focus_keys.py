"""Keys that do not depend on invisible focus: stage-wide actions are ctrl-chords that work whatever has the
focus (a text field, a dropdown), every pane is one alt+digit away, bare letters act only in lists and
tables, ctrl+j starts on every stage, and the focused widget is plainly marked in every shipped theme."""

from __future__ import annotations

import pytest
from textual.widgets import Input, Select

from engine import review
from engine.workspace import Workspace
from rebase_tui.app import RebaseApp
from rebase_tui.widgets.dialogs import ConfirmDialog
from tests.tui.helpers import contrast, until
from tests.tui.toy_workspace import add_examples, make_datastore

SIZE = (130, 40)


def _ws(path) -> Workspace:
    ws = Workspace(path, {"ui.theme": "rebase-dark"})
    make_datastore(ws, 30)
    add_examples(ws, 8)
    review.accept(ws, "nli", [1, 2, 3])
    return ws


async def test_transform_keys_work_from_the_form(tmp_path, standin_factory):
    srv = standin_factory(num_parallel=2, latency=0.2)
    ws = _ws(tmp_path / "ws")
    ws.set_setting("teacher.host", srv.url)
    ws.set_setting("teacher.model", "qwen2.5:0.5b")
    app = RebaseApp(ws, stage="transform", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        model = screen.query_one("#t-model", Select)
        await until(pilot, lambda: model.value == "qwen2.5:0.5b", 20, "the model list")
        model.focus()
        await pilot.press("ctrl+j")  # start, with the dropdown focused
        await until(pilot, lambda: screen.state == "running", 10, "the run")
        await pilot.press("ctrl+z")  # pause, with the dropdown still focused: the menu does not open
        await until(pilot, lambda: screen.state in {"pausing", "paused"}, 10, "the pause")
        assert not model.expanded
        host = screen.query_one("#t-host", Input)
        host.focus()
        before = host.value
        await pilot.press("ctrl+g")  # stop, from a text field: asks, and types nothing
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), 5, "the stop question")
        assert host.value == before
        await pilot.press("y")
        await until(pilot, lambda: screen.state == "idle", 20, "the stop")
        host.focus()
        await pilot.press("ctrl+r")  # check the teacher again, from a text field
        await pilot.pause()
        assert host.value == before
        # every pane one key away
        await pilot.press("alt+3")
        assert app.screen.focused is screen.query_one("#t-log")
        await pilot.press("alt+2")
        assert app.screen.focused is screen.query_one("#t-stream")
        await pilot.press("alt+1")
        assert app.screen.focused is screen.query_one("#t-backend")  # the form's first field


async def test_every_pane_is_one_key_away_on_every_stage(tmp_path):
    ws = _ws(tmp_path / "ws")
    app = RebaseApp(ws, stage="data", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        for key in ("f2", "f3", "f4", "f5", "f6", "f7"):
            await pilot.press(key)
            await pilot.pause(0.2)
            screen = app.screen
            assert screen.PANES, f"{screen.STAGE} names no panes"
            for i, (selector, label) in enumerate(screen.PANES, start=1):
                if not screen.query_one(selector).display or not screen.query_one(selector).visible:
                    continue
                await pilot.press(f"alt+{i}")
                focused = screen.focused
                pane = screen.query_one(selector)
                assert focused is not None and (focused is pane or pane in focused.ancestors), \
                    f"{screen.STAGE}: alt+{i} did not reach the {label} pane (focus: {focused})"
            # ctrl+j is this stage's start, and it is shown in the footer whatever has the focus
            starts = [b for b in screen._bindings.key_to_bindings.get("ctrl+j", [])]
            assert starts, f"{screen.STAGE} has no ctrl+j"


async def test_train_panes_without_tabbing(tmp_path):
    ws = _ws(tmp_path / "ws")
    app = RebaseApp(ws, stage="train", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        await pilot.press("alt+1")
        assert screen.focused is screen.query_one("#tr-student")
        await pilot.press("alt+5")
        assert screen.focused is screen.query_one("#tr-results")
        await pilot.press("alt+2")
        assert screen.focused is screen.query_one("#tr-runs")
        # ctrl+↓/↑ step through the panes, from a text field too
        screen.query_one("#tr-student").focus()
        await pilot.press("ctrl+down")
        assert screen.focused is screen.query_one("#tr-runs")
        await pilot.press("ctrl+down")
        assert screen.focused is screen.query_one("#tr-chart")
        await pilot.press("ctrl+up", "ctrl+up")
        assert screen.query_one("#tr-form") in screen.focused.ancestors
        # the stage-wide keys stay in the footer while a text field has the focus
        screen.query_one("#tr-student").focus()
        await pilot.pause()
        keys = {b.binding.key for b in screen.active_bindings.values()}
        assert {"ctrl+j,ctrl+enter", "ctrl+t"} <= keys or {"ctrl+j", "ctrl+t"} <= keys, keys


@pytest.mark.parametrize("theme", ["rebase-dark", "rebase-light"])
async def test_focus_is_plainly_visible(tmp_path, theme):
    ws = _ws(tmp_path / "ws")
    ws.set_setting("ui.theme", theme)
    app = RebaseApp(ws, stage="transform", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        temperature = screen.query_one("#t-temperature", Input)
        unfocused = temperature.rich_style.bgcolor
        temperature.focus()
        await pilot.pause()
        focused = temperature.rich_style.bgcolor
        assert contrast(focused, unfocused) >= 1.6, f"{theme}: a focused field looks like the others"
    app = RebaseApp(Workspace(tmp_path / "ws"), stage="review", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        from textual.color import Color

        accent = Color.parse(app.theme_variables["accent"])
        lst = app.screen.query_one("#review-list")
        lst.focus()
        await pilot.pause()
        assert lst.styles.border_left[1] == accent, f"{theme}: the focused list's border is not the accent"
        await pilot.press("alt+2")
        assert lst.styles.border_left[1] != accent
