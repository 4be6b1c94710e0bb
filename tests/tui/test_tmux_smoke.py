"""As a person would: the real ``rebase-tui`` binary in tmux on a prepared workspace.

It opens the Retrieve stage of a small real datastore, types an instruction and an example input with
real key presses, and waits until the screen shows ranked rows; then quits with ctrl+q. Skips when tmux
is not installed (CI needs the ``tmux`` package: ``apt-get install tmux``). Run it by hand with
``pytest tests/tui/test_tmux_smoke.py -s`` to see the captured screen.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

BINARY = Path(sys.executable).with_name("rebase-tui")


def _tmux(socket: str, *args: str) -> str:
    """Run a tmux command on a private server (no user config, a minimal environment)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
           "TERM": "xterm-256color"}
    return subprocess.run(["tmux", "-L", socket, "-f", "/dev/null", *args], check=True, capture_output=True,
                          text=True, timeout=20, env=env).stdout


def _wait_for(socket: str, predicate, timeout: float, what: str) -> str:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _tmux(socket, "capture-pane", "-p", "-t", "smoke")
        if predicate(screen):
            return screen
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; the screen was:\n{screen}")


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)")
def test_type_an_instruction_in_the_real_binary_and_see_results(small_datastore, tmp_path):
    assert BINARY.exists(), f"{BINARY} is missing: install the package (pip install -e .)"
    socket = f"rebase-smoke-{uuid.uuid4().hex[:8]}"
    env = {k: os.environ[k] for k in ("HOME", "PATH", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "HF_HUB_OFFLINE",
                                      "TRANSFORMERS_OFFLINE", "OMP_NUM_THREADS", "TOKENIZERS_PARALLELISM")
           if k in os.environ}
    env.update({"TERM": "xterm-256color", "COLORTERM": "truecolor", "LANG": "C.UTF-8"})
    command = " ".join([
        "env", *(shlex.quote(f"{k}={v}") for k, v in env.items()),
        shlex.quote(str(BINARY)), "-w", shlex.quote(str(small_datastore)), "tui", "--stage", "retrieve",
        ";", "sleep", "5",  # keep the pane a moment after exit, to read an error if it crashed
    ])
    _tmux(socket, "new-session", "-d", "-s", "smoke", "-x", "140", "-y", "40", command)
    _tmux(socket, "set-option", "-g", "focus-events", "off")  # no stray focus-in/out events
    try:
        _wait_for(socket, lambda s: "F4 Retrieve" in s and "Instruction" in s, 30, "the first paint")
        _wait_for(socket, lambda s: "type an instruction" in s, 90, "the embedder to load")
        # the instruction editor has the focus: type as a person would
        _tmux(socket, "send-keys", "-t", "smoke", "-l",
              "Decide whether the premise entails or contradicts the hypothesis.")
        # tmux delivers a send-keys string as one burst; Textual routes a burst's keys to the widget that
        # had focus when the burst arrived, so give the Tab a moment, as a typist would
        time.sleep(0.5)
        _tmux(socket, "send-keys", "-t", "smoke", "Tab")
        time.sleep(0.5)
        _tmux(socket, "send-keys", "-t", "smoke", "-l",
              "Premise: A man plays a guitar. Hypothesis: A person makes music.")
        screen = _wait_for(socket, lambda s: "rows from" in s and "datasets:" in s, 120,
                           "ranked rows on the screen")
        assert "✗" not in screen, screen
        assert "snli" in screen or "glue" in screen or "paws" in screen, screen
        _tmux(socket, "send-keys", "-t", "smoke", "C-q")
        _wait_for(socket, lambda s: "F4 Retrieve" not in s, 20, "the app to quit")
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=20, check=False)
