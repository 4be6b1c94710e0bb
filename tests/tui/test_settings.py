"""Settings chosen in the app stick: the teacher host and model picked on Transform are saved in the
workspace's config.toml, Review's regenerate uses them, a restart shows them; `rebase-tui config KEY VALUE`
works while the app holds the workspace and the app shows the change; an environment variable that
decides a setting instead of the form is named on the form."""

from __future__ import annotations

import subprocess
import sys

from textual.widgets import Input, Select, Static

from engine import review
from engine.config import read_config_file
from engine.teacher.client import TeacherSettings
from engine.teacher.transform import transform
from engine.workspace import Workspace
from rebase_tui.app import RebaseApp
from tests.tui.helpers import text_of, until
from tests.tui.toy_workspace import make_datastore

SIZE = (130, 40)
UNREACHABLE = "http://127.0.0.1:9"


async def test_teacher_choices_are_saved_and_used_by_review_and_a_restart(tmp_path, standin):
    ws_dir = tmp_path / "ws"
    ws = Workspace(ws_dir)
    ws.set_setting("teacher.host", UNREACHABLE)
    ws.set_setting("teacher.retries", 0)
    ws.set_setting("teacher.connect_timeout", 1.0)
    make_datastore(ws, 6)
    settings = TeacherSettings.from_config(ws.config, host=standin.url, model="qwen2.5:0.5b")
    async for _ in transform(ws, "nli", settings, limit=3):
        pass
    app = RebaseApp(ws, stage="transform", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await until(pilot, lambda: screen.query_one("#teacher-banner").display, 20, "the unreachable banner")
        host = screen.query_one("#t-host", Input)
        host.focus()
        host.value = standin.url
        await pilot.press("enter")
        await until(pilot, lambda: "qwen2.5:0.5b" in screen.models, 20, "the stand-in's models")
        screen.query_one("#t-model", Select).value = "qwen2.5:0.5b"  # as picking it from the list does
        await pilot.pause()
        saved = read_config_file(ws_dir / "config.toml")
        assert saved["teacher.host"] == standin.url and saved["teacher.model"] == "qwen2.5:0.5b"
        # Review's regenerate goes to the host chosen on Transform
        await pilot.press("f6")
        await pilot.pause(0.3)
        old = app.screen.query_one("#review-list").current.id
        calls = standin.chat_requests
        await pilot.press("n")
        for worker in [w for w in app.screen.workers if w.group == "regenerate"]:
            await worker.wait()
        await pilot.pause()
        assert standin.chat_requests == calls + 1, [str(n.message) for n in app._notifications]
        assert review.get_example(ws, old).reason == "regenerated"
    app2 = RebaseApp(Workspace(ws_dir), stage="transform", task="nli")
    async with app2.run_test(size=SIZE) as pilot:
        screen = app2.screen
        assert screen.query_one("#t-host", Input).value == standin.url
        await until(pilot, lambda: screen.query_one("#t-model", Select).value == "qwen2.5:0.5b", 20, "the model")
        assert not screen.query_one("#teacher-banner").display


async def test_config_command_while_the_app_runs_is_picked_up(tmp_path):
    ws_dir = tmp_path / "ws"
    ws = Workspace(ws_dir, {})
    ws.set_setting("teacher.host", UNREACHABLE)
    make_datastore(ws, 4)
    app = RebaseApp(ws, stage="transform", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        field = app.screen.query_one("#t-temperature", Input)
        assert field.value == "0.7"
        r = subprocess.run([sys.executable, "-m", "rebase_tui", "-w", str(ws_dir), "config",
                            "teacher.temperature", "0.2"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        await until(pilot, lambda: field.value == "0.2", 10, "the form to show the new temperature")
        assert app.workspace.config["teacher.temperature"] == 0.2
        # a broken file is reported once and the settings in effect stay
        (ws_dir / "config.toml").write_text('[teacher]\ntemperature = "hot"\n')
        await until(pilot, lambda: any("not applied" in str(n.message) for n in app._notifications), 10)
        assert app.workspace.config["teacher.temperature"] == 0.2


async def test_the_form_names_an_environment_override(tmp_path, monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", UNREACHABLE)
    ws = Workspace(tmp_path / "ws")
    make_datastore(ws, 4)
    app = RebaseApp(ws, stage="transform", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        note = app.screen.query_one("#t-env-note", Static)
        assert note.display and "host from $OLLAMA_HOST" in text_of(note)
    monkeypatch.setenv("REBASE_TEACHER_MODEL", "from-env")
    app = RebaseApp(Workspace(tmp_path / "ws"), stage="transform", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "model from $REBASE_TEACHER_MODEL" in text_of(app.screen.query_one("#t-env-note", Static))


async def test_the_student_form_names_an_environment_override(tmp_path, monkeypatch):
    monkeypatch.setenv("REBASE_STUDENT", "/models/from-env")
    ws = Workspace(tmp_path / "ws")
    make_datastore(ws, 4)
    app = RebaseApp(ws, stage="train", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.built, 20, "the Train screen")
        assert "model from $REBASE_STUDENT" in str(app.screen.query_one("#tr-form").border_subtitle)
