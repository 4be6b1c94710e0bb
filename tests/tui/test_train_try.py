"""The Train screen's try pane, keys only, with a trained tiny student and the Ollama stand-in: open a run, show
the pane (the student and the base load in a child process, the load time shown), type an input and ask: the
student's, the base's and the teacher's answers appear side by side with the extracted answer; an example of
the validation split is judged against its reference; a long input from a test file is cut and says so; leaving
the pane ends the process."""

from __future__ import annotations

import json
import os
import shutil

from engine.workspace import Workspace
from rebase_tui.app import RebaseApp
from rebase_tui.widgets.dialogs import PathDialog
from rebase_tui.widgets.try_pane import AnswerBox, TryPane
from tests.tui.helpers import process_alive, screen_lines, text_of, until

SIZE = (150, 40)


async def test_try_three_answers_side_by_side(trained_task_run, standin, tmp_path):
    src_ws, src_run = trained_task_run
    ws_dir = tmp_path / "ws"
    shutil.copytree(src_ws, ws_dir)
    ws = Workspace(ws_dir)
    ws.set_setting("teacher.host", standin.url)
    ws.set_setting("teacher.model", "llama3.1:8b")
    typed = "True and not False is"
    standin.known_answers = {typed: "not False = True; True and True = True. So the answer is True."}
    long_input = " and ".join(["not ( True or False )"] * 300) + " is"
    long_file = tmp_path / "long.jsonl"
    long_file.write_text(json.dumps({"input": long_input, "output": "False"}) + "\n", encoding="utf-8")

    app = RebaseApp(ws, stage="train", task="boolean_expressions")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await until(pilot, lambda: screen.query_one("#tr-runs").row_count == 1, 20, "the runs")
        await pilot.press("alt+2", "enter")
        await until(pilot, lambda: screen.run_path is not None and screen.run_path.name == src_run.name, 10,
                    "the run to open")
        await pilot.press("alt+6")  # the try tab: its models load in a child process
        pane = screen.query_one("#tr-try", TryPane)
        await until(pilot, lambda: {"student", "base"} <= set(pane.loaded), 120, "the student and the base")
        status = text_of(pane.query_one("#try-status"))
        assert "loaded in" in status and "(student)" in status and "(base)" in status, status
        pid = pane.process.pid
        assert pid != os.getpid() and process_alive(pid)
        assert screen.focused is pane.query_one("#try-input")

        # 12 new tokens at most (the tiny student's whole context is 160 tokens), then back to the input
        await pilot.press("shift+tab", "backspace", "backspace", "backspace", "1", "2", "tab")
        assert screen.focused is pane.query_one("#try-input")
        await pilot.press(*typed, "ctrl+j")  # typed: all three answer, nobody is judged (no reference)
        boxes = {s: pane.query_one(f"#try-{s}", AnswerBox) for s in ("student", "base", "teacher")}
        await until(pilot, lambda: all(b.verdict for b in boxes.values()), 120, "three answers")
        assert boxes["student"].text == "So the answer is True." and "answer: True." in boxes["student"].verdict
        assert boxes["teacher"].text.endswith("So the answer is True.")
        assert boxes["base"].text != boxes["student"].text and boxes["base"].verdict != "failed"
        assert not any("✓" in b.verdict or "✗" in b.verdict for b in boxes.values())
        shown = "\n".join(screen_lines(app))
        assert "student · " in shown and "base · " in shown and "teacher · " in shown and "─ True. ─" in shown

        await pilot.press("ctrl+n", "ctrl+j")  # an example of the validation split: judged by its reference
        assert "example 1/" in text_of(pane.query_one("#try-source"))
        await until(pilot, lambda: all(b.verdict for b in boxes.values()), 120, "the example's answers")
        assert "✓" in boxes["student"].verdict or "✗" in boxes["student"].verdict

        await pilot.press("ctrl+o")  # a test file whose input is longer than the student's context
        await until(pilot, lambda: isinstance(app.screen, PathDialog), 5, "the test-file dialog")
        await pilot.press(*str(long_file), "enter")
        await until(pilot, lambda: "long.jsonl" in text_of(pane.query_one("#try-source")), 10, "the file's example")
        await pilot.press("ctrl+j")
        await until(pilot, lambda: boxes["student"].verdict and boxes["base"].verdict, 120, "the long answers")
        assert "input cut to fit the context" in boxes["student"].verdict, boxes["student"].verdict
        assert "(input cut to fit" in "\n".join(screen_lines(app))  # above the answer, on screen

        await pilot.press("alt+3")  # the run tab (its loss chart): the process ends, its memory goes back
        await until(pilot, lambda: not process_alive(pid), 20, "the try process to end")
        assert pane.process is None and "released" in text_of(pane.query_one("#try-status"))
