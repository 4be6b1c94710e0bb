"""The Task screen: write, validate inline, edit examples, save, import, export — keyboard only."""

from __future__ import annotations

import json

from textual.widgets import DataTable, Input, OptionList, Static

from engine.tasks import Demonstration, Task, add_task, get_task
from engine.workspace import Workspace
from rebase_tui.app import RebaseApp
from rebase_tui.widgets.editor import PlainTextArea
from tests.tui.snapshot import assert_snapshot

SIZE = (120, 44)


def _text(widget: Static) -> str:
    return str(widget.render())


def _task() -> Task:
    return Task("sentiment", "Classify the sentiment of a [bold] review.",
                (Demonstration("great film [/foo]", "positive"), Demonstration("dull, long", "negative")), ("imdb",))


async def test_write_and_save_a_task_with_the_keyboard(tmp_path):
    ws = Workspace(tmp_path / "ws")
    app = RebaseApp(ws, stage="task")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert screen.query_one("#empty-state").display  # no tasks yet: a hint
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.focused is screen.query_one("#task-name", Input)
        await pilot.press(*"sent", "tab")
        await pilot.press(*"Say if [it] is positive.", "tab")  # → instruction, then the examples table
        await pilot.press("tab")  # → the example input editor
        assert app.focused is screen.query_one("#example-input", PlainTextArea)
        await pilot.press(*"I loved it [/b]", "tab")
        await pilot.press(*"positive")
        await pilot.pause()
        draft = app.live.draft
        assert draft.name == "sent"
        assert draft.instruction == "Say if [it] is positive."
        assert draft.examples == [["I loved it [/b]", "positive"]]
        # the examples table shows the untrusted text verbatim
        table = screen.query_one("#task-examples", DataTable)
        assert table.get_row_at(0)[1].plain == "I loved it [/b]"
        await pilot.press("ctrl+s")
        await pilot.pause()
        stored = get_task(ws, "sent")
        assert stored is not None
        assert stored.examples == (Demonstration("I loved it [/b]", "positive"),)
        assert "saved as sent" in _text(screen.query_one("#task-status", Static))
        assert [o.id for o in screen.query_one("#task-list", OptionList).options] == ["sent"]
        assert not screen.query_one("#empty-state").display


async def test_problems_are_shown_next_to_their_fields_and_block_saving(tmp_path):
    ws = Workspace(tmp_path / "ws")
    app = RebaseApp(ws, stage="task")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        await pilot.press("ctrl+n")
        await pilot.press(*"bad name!")
        await pilot.press("ctrl+s")
        await pilot.pause()
        name_err = screen.query_one("#name-error", Static)
        assert name_err.display and "may only hold" in _text(name_err)
        assert "missing or empty instruction" in _text(screen.query_one("#instruction-error", Static))
        examples_err = _text(screen.query_one("#examples-error", Static))
        assert "example 1 has no input" in examples_err and "example 1 has no output" in examples_err
        assert not screen.query_one("#exclude-error", Static).display
        assert get_task(ws, "bad name!") is None
        # fixing the name clears its error as you type
        await pilot.press(*["backspace"] * 6)
        await pilot.pause()
        assert not screen.query_one("#name-error", Static).display


async def test_examples_add_edit_delete_reorder(tmp_path):
    ws = Workspace(tmp_path / "ws")
    add_task(ws, _task())
    app = RebaseApp(ws, stage="task")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert app.live.draft.stored == "sentiment"
        table = screen.query_one("#task-examples", DataTable)
        table.focus()
        await pilot.press("a")  # add: focus jumps to its input editor
        await pilot.pause()
        assert app.focused is screen.query_one("#example-input", PlainTextArea)
        await pilot.press(*"so-so", "tab", *"neutral")
        await pilot.pause()
        assert app.live.draft.examples[-1] == ["so-so", "neutral"]
        table.focus()
        await pilot.press("shift+up")  # move the new example up: now second
        await pilot.pause()
        assert [e[1] for e in app.live.draft.examples] == ["positive", "neutral", "negative"]
        await pilot.press("up", "delete")  # delete the first
        await pilot.pause()
        assert [e[1] for e in app.live.draft.examples] == ["neutral", "negative"]
        assert "unsaved changes" in _text(screen.query_one("#task-status", Static))
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert [e.output for e in get_task(ws, "sentiment").examples] == ["neutral", "negative"]
        await pilot.press("delete")  # an unsaved change, then ctrl+j: saved first, then the Retrieve stage
        await pilot.pause()
        await pilot.press("ctrl+j")
        await pilot.pause()
        assert len(get_task(ws, "sentiment").examples) == 1
        assert app.current_mode == "retrieve"


async def test_import_and_export_task_files(tmp_path):
    ws = Workspace(tmp_path / "ws")
    source = tmp_path / "in.json"
    source.write_text(json.dumps(_task().to_json()), encoding="utf-8")
    app = RebaseApp(ws, stage="task")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+o")
        await pilot.pause()
        path_input = app.screen.query_one("#path", Input)
        path_input.value = str(tmp_path / "i")  # completion: tab completes in.json
        await pilot.pause(0.2)
        await pilot.press("tab")
        assert path_input.value == str(source)
        await pilot.press("enter")
        await pilot.pause()
        assert get_task(ws, "sentiment") == _task()
        assert app.live.draft.stored == "sentiment"
        # a broken file: one clear message, nothing stored changes
        bad = tmp_path / "bad.json"
        bad.write_text('{"name": "x", "instruction": ""}', encoding="utf-8")
        await pilot.press("ctrl+o")
        await pilot.pause()
        app.screen.query_one("#path", Input).value = str(bad)
        await pilot.press("enter")
        await pilot.pause()
        assert get_task(ws, "x") is None
        # export
        out = tmp_path / "out.json"
        await pilot.press("ctrl+t")
        await pilot.pause()
        app.screen.query_one("#path", Input).value = str(out)
        await pilot.press("enter")
        await pilot.pause()
        assert json.loads(out.read_text(encoding="utf-8")) == _task().to_json()


async def test_task_screen_snapshot(tmp_path, request):
    ws = Workspace(tmp_path / "ws")
    add_task(ws, _task())
    app = RebaseApp(ws, stage="task")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await assert_snapshot(pilot, "task_screen", request)


async def test_every_keyed_action_is_in_the_command_palette(tmp_path):
    from rebase_tui.widgets.actions_palette import screen_actions

    ws = Workspace(tmp_path / "ws")
    add_task(ws, _task())
    app = RebaseApp(ws, stage="task")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        titles = {t for t, *_ in screen_actions(app.screen)}
        assert {"Task: Save", "Task: New", "Task: Import", "Task: Export", "Task: Add example",
                "Task: Delete example", "Task: Move up", "Task: Move down", "Task: Remove task"} <= titles
        n = len(app.live.draft.examples)
        await pilot.press("ctrl+p", *"add example")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert len(app.live.draft.examples) == n + 1
