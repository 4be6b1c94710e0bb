"""The real `rebase-tui` binary in tmux, as a person would use it: transform the pool against the Ollama
stand-in (ctrl+j), review (accept all shown), train a tiny student to its end — keys only, screen read
with `tmux capture-pane`; the stored state is checked after the app quits."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from engine.workspace import Workspace
from tests.tui.part2_data import make_datastore

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

BIN = Path(sys.executable).parent / "rebase-tui"


class Tmux:
    def __init__(self, cmd: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.name = f"rb2-{uuid.uuid4().hex[:8]}"
        exports = " ".join(f"{k}={v}" for k, v in env.items())
        # COLUMNS/LINES inherited from pytest would override the window's size for the app.
        line = f"env -u COLUMNS -u LINES {exports} " + " ".join(cmd)
        # A server of our own (-L): other tmux users on the machine cannot resize or disturb it.
        self.base = ["tmux", "-L", self.name, "-f", "/dev/null"]
        subprocess.run([*self.base, "new-session", "-d", "-s", self.name, "-x", "130", "-y", "40", line],
                       check=True, cwd=cwd)

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", self.name, *keys], check=True)

    def screen(self) -> str:
        return subprocess.run([*self.base, "capture-pane", "-p", "-t", self.name], capture_output=True, text=True,
                              check=False).stdout

    def wait(self, text: str, timeout: float = 60.0) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            shown = self.screen()
            if text in shown:
                return shown
            time.sleep(0.25)
        raise AssertionError(f"{text!r} not on screen after {timeout:.0f} s:\n{self.screen()}")

    def alive(self) -> bool:
        return subprocess.run([*self.base, "has-session", "-t", self.name], capture_output=True).returncode == 0

    def kill(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True)


@pytest.mark.skipif(not BIN.exists(), reason="the rebase-tui console script is not installed")
def test_transform_review_train_in_tmux(tmp_path, standin, tiny_student):
    ws_dir = tmp_path / "ws"
    ws = Workspace(ws_dir)
    make_datastore(ws, 24)
    for key, value in (("teacher.host", standin.url), ("teacher.model", "qwen2.5:0.5b"),
                       ("student.model", str(tiny_student)), ("student.epochs", 1.0),
                       ("student.batch_size", 4), ("student.max_length", 96)):
        ws.set_setting(key, value)
    ws.close()  # one writer: the app opens it now
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_DATA_HOME": str(tmp_path / "data"), "TERM": "xterm-256color"}
    tmux = Tmux([str(BIN), "tui", "-w", str(ws_dir), "--stage", "transform", "--task", "nli"], tmp_path, env)
    try:
        tmux.wait("Transform", 30)
        tmux.wait("qwen2.5:0.5b", 30)  # the model list came from the stand-in
        tmux.keys("C-j")
        tmux.wait("transform finished", 60)
        tmux.keys("F6")
        tmux.wait("a Accept", 20)
        time.sleep(0.5)
        tmux.keys("2")
        tmux.wait("▸2 pending", 10)
        tmux.keys("A")
        tmux.wait("Accept all", 10)
        tmux.keys("y")
        tmux.wait("accepted", 10)
        tmux.keys("F7")
        tmux.wait("student (ctrl+j starts)", 20)
        time.sleep(0.5)
        tmux.keys("C-j")
        # The results pane says "no evaluation yet" once the run has ended and the app recorded it.
        tmux.wait("no evaluation", 120)
        tmux.keys("C-q")
        end = time.monotonic() + 15
        while tmux.alive() and time.monotonic() < end:
            time.sleep(0.2)
    finally:
        tmux.kill()
    ws = Workspace(ws_dir)
    try:
        with ws.store.cursor() as cur:
            states = dict(cur.execute("select status, count(*) from examples group by status").fetchall())
            runs = cur.execute("select status from runs").fetchall()
        assert states.get("accepted", 0) >= 20 and states.get("pending", 0) == 0, states
        assert runs == [("finished",)], runs
    finally:
        ws.close()
