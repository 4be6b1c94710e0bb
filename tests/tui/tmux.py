"""Drive the real ``rebase-tui`` binary in tmux, as a person would: keys in, ``capture-pane`` text out.

Each :class:`Tmux` runs its own tmux server (``-L``, no user config), so other tmux users on the machine
cannot resize or disturb it. tmux itself gets a minimal environment; the program gets the test's offline
and isolation variables (and PYTHONPATH, so the tree under test is what runs) plus the caller's ``env``.
The pane stays open ``linger`` seconds after the program exits, to read an error if it crashed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

BINARY = Path(sys.executable).with_name("rebase-tui")
PASSED_ON = ("HOME", "PATH", "PYTHONPATH", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "HF_HUB_OFFLINE",
             "TRANSFORMERS_OFFLINE", "OMP_NUM_THREADS", "TOKENIZERS_PARALLELISM")

needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)")


class Tmux:
    def __init__(self, args: list[str], *, env: dict[str, str] | None = None, size: tuple[int, int] = (140, 40),
                 cwd: Path | None = None, linger: int = 5, status_file: Path | None = None) -> None:
        assert BINARY.exists(), f"{BINARY} is missing: install the package (pip install -e .)"
        self.name = f"rebase-{uuid.uuid4().hex[:8]}"
        self.base = ["tmux", "-L", self.name, "-f", "/dev/null"]
        program_env = {k: os.environ[k] for k in PASSED_ON if k in os.environ}
        program_env.update({"TERM": "xterm-256color", "COLORTERM": "truecolor", "LANG": "C.UTF-8", **(env or {})})
        # COLUMNS/LINES inherited from pytest would override the window's size for the app.
        line = " ".join(["env", "-u", "COLUMNS", "-u", "LINES",
                         *(shlex.quote(f"{k}={v}") for k, v in program_env.items()),
                         shlex.quote(str(BINARY)), *map(shlex.quote, args)])
        if status_file is not None:  # the program's exit status, for tests about how it ends
            line += f"; echo $? > {shlex.quote(str(status_file))}"
        if linger:
            line += f"; sleep {linger}"
        self._run("new-session", "-d", "-s", self.name, "-x", str(size[0]), "-y", str(size[1]), line, cwd=cwd)
        self._run("set-option", "-g", "focus-events", "off")  # no stray focus-in/out events

    def _run(self, *args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
               "TERM": "xterm-256color"}
        return subprocess.run([*self.base, *args], check=check, capture_output=True, text=True, timeout=20,
                              env=env, cwd=cwd)

    def keys(self, *keys: str) -> None:
        """Key names as tmux spells them (``C-j``, ``F6``, ``Tab``, ``y``)."""
        self._run("send-keys", "-t", self.name, *keys)

    def type(self, text: str) -> None:
        """Literal text, delivered as one burst."""
        self._run("send-keys", "-t", self.name, "-l", text)

    def screen(self) -> str:
        return self._run("capture-pane", "-p", "-t", self.name, check=False).stdout

    def wait(self, want: str | Callable[[str], bool], timeout: float = 60.0) -> str:
        """Poll the screen until it shows ``want`` (text, or a predicate on the screen); return it."""
        test = (lambda s: want in s) if isinstance(want, str) else want
        deadline = time.monotonic() + timeout
        shown = ""
        while time.monotonic() < deadline:
            shown = self.screen()
            if test(shown):
                return shown
            time.sleep(0.25)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {want!r}; the screen was:\n{shown}")

    def pane_pid(self) -> int:
        """The pid of the pane's process (the program itself when it was started with ``linger=0``: the shell
        hands over to it, so the program leads the terminal's session, as a login shell's command does)."""
        return int(self._run("list-panes", "-t", self.name, "-F", "#{pane_pid}").stdout.split()[0])

    def program_pid(self) -> int:
        """The pid of the program (the child of the pane's shell)."""
        shell = self._run("list-panes", "-t", self.name, "-F", "#{pane_pid}").stdout.split()[0]
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", shell], capture_output=True, text=True).stdout.split()
        assert out, f"no program runs in the pane (shell {shell})"
        return int(out[0])

    def alive(self) -> bool:
        return self._run("has-session", "-t", self.name, check=False).returncode == 0

    def wait_gone(self, timeout: float = 15.0) -> None:
        """Wait for the session to end (the program exited and the pane's linger passed)."""
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.2)

    def kill(self) -> None:
        self._run("kill-server", check=False)

    def __enter__(self) -> Tmux:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
