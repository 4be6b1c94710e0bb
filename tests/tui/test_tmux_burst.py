"""Keys typed during a focus change are not lost: a burst that holds tabs (typed fast, or pasted) lands field
by field in the real binary, as it would typed slowly."""

from __future__ import annotations

import time

from engine.workspace import Workspace
from tests.tui.tmux import Tmux, needs_tmux
from tests.tui.toy_workspace import make_datastore


@needs_tmux
def test_a_burst_with_tabs_fills_field_after_field(tmp_path):
    ws_dir = tmp_path / "ws"
    ws = Workspace(ws_dir)
    make_datastore(ws, 4)
    ws.close()
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_DATA_HOME": str(tmp_path / "data")}
    with Tmux(["tui", "-w", str(ws_dir), "--stage", "task"], env=env, size=(110, 34), cwd=tmp_path,
              linger=0) as tmux:
        tmux.wait("Instruction", 30)
        tmux.keys("C-n")  # a new task: the name field has the focus
        tmux.wait("letters, digits, _ - .", 10)  # the empty name field
        time.sleep(0.3)
        tmux.type("burst-task\tSay whether the two sentences agree.\t")
        screen = tmux.wait("Say whether the two sentences agree.", 10)
        time.sleep(0.5)
        screen = tmux.screen()
        name_line = next(line for line in screen.splitlines() if "burst-task" in line)
        assert "Say whether" not in name_line, screen
        assert "may only hold letters" not in screen, screen
        tmux.keys("C-q")


@needs_tmux
def test_panes_are_reached_from_a_text_field(tmp_path):
    """alt+digit reaches a text field as a typed character (ESC 1 reads as "¡"): ctrl+↓/↑ leave it instead."""
    ws_dir = tmp_path / "ws"
    ws = Workspace(ws_dir)
    make_datastore(ws, 4)
    ws.close()
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_DATA_HOME": str(tmp_path / "data")}
    with Tmux(["tui", "-w", str(ws_dir), "--stage", "data"], env=env, size=(110, 34), cwd=tmp_path,
              linger=0) as tmux:
        tmux.wait("toy/nli", 30)
        tmux.keys("C-l")  # the path field
        time.sleep(0.3)
        tmux.keys("C-Up")  # the pane before it: the dataset card
        time.sleep(0.3)
        tmux.type("xyz")
        time.sleep(0.5)
        screen = tmux.screen()
        path_line = next(line for line in screen.splitlines() if "Ingest path" in line)
        assert "xyz" not in path_line and "path to a file or folder" in path_line, screen
        tmux.keys("C-q")
