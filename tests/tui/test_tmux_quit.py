"""The real binary in tmux, quit while a transform runs: by ctrl+q (asked, y), by SIGTERM and by SIGHUP (the
SSH link dropped). Each exits 0 with at most one line on the terminal and no traceback, and the examples
stored so far are intact: a second run skips them."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest

from engine.workspace import Workspace
from tests.tui.helpers import process_alive
from tests.tui.tmux import Tmux, needs_tmux
from tests.tui.toy_workspace import make_datastore


@needs_tmux
@pytest.mark.parametrize("how", ["ctrl+q", "SIGTERM", "SIGHUP"])
def test_quit_during_transform_exits_cleanly(tmp_path, standin_factory, how):
    srv = standin_factory(num_parallel=2, latency=0.1, token_delay=0.01)
    srv.hold_after(3)  # then the teacher holds every call: the run is going on (calls in flight) at the quit
    ws_dir = tmp_path / "ws"
    ws = Workspace(ws_dir)
    make_datastore(ws, 40)
    ws.set_setting("teacher.host", srv.url)
    ws.set_setting("teacher.model", "qwen2.5:0.5b")
    ws.close()
    status = tmp_path / "status"
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_DATA_HOME": str(tmp_path / "data")}
    args = ["tui", "-w", str(ws_dir), "--stage", "transform", "--task", "nli"]
    with Tmux(args, env=env, size=(100, 30), cwd=tmp_path, linger=3, status_file=status) as tmux:
        tmux.wait("qwen2.5:0.5b", 60)
        time.sleep(0.3)
        tmux.keys("C-j")
        tmux.wait(lambda s: "running" in s and re.search(r"pending\s+[1-9]", s) is not None, 60)
        if how == "ctrl+q":
            tmux.keys("C-q")
            tmux.wait("quit and resume later?", 10)
            tmux.keys("y")
        else:
            os.kill(tmux.program_pid(), getattr(signal, how))
        deadline = time.monotonic() + 60
        while not status.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        screen = tmux.screen()
    assert status.exists(), f"the app did not exit; the screen was:\n{screen}"
    assert status.read_text().strip() == "0", screen
    lines = [line for line in screen.splitlines() if line.strip()]
    assert len(lines) <= 1 and "Traceback" not in screen, screen
    assert not lines or "stopped a transform" in lines[0], screen
    ws = Workspace(ws_dir)
    try:
        with ws.store.cursor() as cur:
            stored, distinct = cur.execute('select count(*), count(distinct "row") from examples').fetchall()[0]
        assert 0 < stored == distinct < 40
    finally:
        ws.close()


@needs_tmux
def test_the_terminal_going_away_ends_the_app_and_frees_the_workspace(tmp_path):
    """An SSH link that drops takes the terminal with it: SIGHUP and SIGCONT, and nothing written to the
    terminal any more gets anywhere. The app must still end (restoring the terminal blocked it for ever in
    about half of the tries) and release the workspace for the next session. A few tries, at other moments."""
    ws_dir = tmp_path / "ws"
    ws = Workspace(ws_dir)
    make_datastore(ws, 10)
    ws.close()
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_DATA_HOME": str(tmp_path / "data")}
    for wait in (1.0, 2.5, 4.0):
        with Tmux(["tui", "-w", str(ws_dir)], env=env, size=(200, 50), cwd=tmp_path, linger=0) as tmux:
            tmux.wait("F2 Data", 60)
            tmux.keys("F7")
            tmux.wait("F7 Train", 30)
            time.sleep(wait)
            pid = tmux.pane_pid()
            tmux.kill()  # the terminal is gone
        deadline = time.monotonic() + 40
        while process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        still = process_alive(pid)
        if still:
            os.kill(pid, signal.SIGKILL)
        assert not still, f"the app went on running after its terminal went away ({wait} s after F7)"
        Workspace(ws_dir).close()  # the lock was released
