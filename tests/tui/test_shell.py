"""The app shell: starts, every stage one key away and back, empty states, themes remembered."""

from __future__ import annotations

import json
import subprocess
import sys

from textual.widgets import Static

from engine.config import read_config_file
from engine.workspace import Workspace
from rebase_tui.app import RebaseApp
from rebase_tui.widgets.stage_bar import STAGES, StageBar


async def test_app_starts_on_data_with_empty_state(tmp_path):
    app = RebaseApp(Workspace(tmp_path / "ws"))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert app.current_mode == "data"
        empty = app.screen.query_one("#empty-state", Static)
        assert empty.display and "No datasets yet" in str(empty.render())
        assert "rebase-tui ingest" in str(empty.render())
        assert str(tmp_path / "ws") in app.sub_title


async def test_every_stage_one_key_away_and_back(tmp_path):
    app = RebaseApp(Workspace(tmp_path / "ws"))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        for name, key, _label in STAGES:
            await pilot.press(key)
            await pilot.pause(0.1)
            assert app.current_mode == name
            assert app.screen.STAGE == name
            bar = app.screen.query_one(StageBar)
            assert bar.current == name
            empty = app.screen.query_one("#empty-state", Static)
            assert empty.display, f"{name} shows no empty state on an empty workspace"
        await pilot.press("f2")
        await pilot.pause(0.1)
        assert app.current_mode == "data"


async def test_open_on_a_stage_with_task(tmp_path):
    app = RebaseApp(Workspace(tmp_path / "ws"), stage="review", task="mnli")
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert app.current_mode == "review"
        assert "task mnli" in app.status_text()


async def test_palette_goes_to_stage_and_switches_theme_remembered(tmp_path):
    ws_dir = tmp_path / "ws"
    app = RebaseApp(Workspace(ws_dir))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert app.theme == "rebase-dark"
        assert {"rebase-dark", "rebase-light"} <= set(app.available_themes)
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"go to train")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert app.current_mode == "train"
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"theme: rebase-light")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert app.theme == "rebase-light"
        # A built-in theme works too (app variables have defaults).
        app.theme = "nord"
        await pilot.pause(0.1)
        app.theme = "rebase-light"
        await pilot.pause(0.1)
    assert read_config_file(ws_dir / "config.toml")["ui.theme"] == "rebase-light"
    app2 = RebaseApp(Workspace(ws_dir))
    async with app2.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert app2.theme == "rebase-light"


async def test_unknown_theme_in_config_falls_back_with_notice(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.set_setting("ui.theme", "no-such-theme")
    app = RebaseApp(ws)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert app.theme == "rebase-dark"
        assert any("no-such-theme" in str(n.message) for n in app._notifications)


def test_themes_found_from_installed_non_editable_copy(tmp_path):
    """A wheel built from the tree ships themes/ inside the package (rebase_tui/_themes)."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                        "--target", str(target), str(repo)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (target / "rebase_tui" / "_themes" / "rebase-dark.toml").is_file()
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import rebase_tui.themes as t; "
             "assert t.__file__.startswith(sys.argv[1]), t.__file__; "
             "themes, problems = t.discover_themes(); import json; print(json.dumps(sorted(x.name for x in themes))); "
             "assert not problems, problems")
    r = subprocess.run([sys.executable, "-c", probe, str(target)], capture_output=True, text=True,
                       cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r.stderr
    names = json.loads(r.stdout.strip().splitlines()[-1])
    assert {"rebase-dark", "rebase-light"} <= set(names)

