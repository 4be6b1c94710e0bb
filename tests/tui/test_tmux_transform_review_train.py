"""The real `rebase-tui` binary in tmux, as a person would use it: transform the pool against the Ollama
stand-in (ctrl+j), review (accept all shown), train a tiny student to its end — keys only, screen read
with `tmux capture-pane`; the stored state is checked after the app quits."""

from __future__ import annotations

import time

from engine.workspace import Workspace
from tests.tui.tmux import Tmux, needs_tmux
from tests.tui.toy_workspace import make_datastore


@needs_tmux
def test_transform_review_train_in_tmux(tmp_path, standin, tiny_student):
    ws_dir = tmp_path / "ws"
    ws = Workspace(ws_dir)
    make_datastore(ws, 24)
    for key, value in (("teacher.host", standin.url), ("teacher.model", "qwen2.5:0.5b"),
                       ("student.model", str(tiny_student)), ("student.epochs", 1.0),
                       ("student.batch_size", 4), ("student.max_length", 96)):
        ws.set_setting(key, value)
    ws.close()  # one writer: the app opens it now
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_DATA_HOME": str(tmp_path / "data")}
    args = ["tui", "-w", str(ws_dir), "--stage", "transform", "--task", "nli"]
    with Tmux(args, env=env, size=(130, 40), cwd=tmp_path, linger=0) as tmux:
        tmux.wait("Transform", 30)
        tmux.wait("qwen2.5:0.5b", 30)  # the model list came from the stand-in
        tmux.keys("C-j")
        tmux.wait("last run of nli", 60)  # the status line says how the run ended
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
        tmux.wait_gone(15)  # the app has closed the workspace (one writer) before it is opened below
    ws = Workspace(ws_dir)
    try:
        with ws.store.cursor() as cur:
            states = dict(cur.execute("select status, count(*) from examples group by status").fetchall())
            runs = cur.execute("select status from runs").fetchall()
        assert states.get("accepted", 0) >= 20 and states.get("pending", 0) == 0, states
        assert runs == [("finished",)], runs
    finally:
        ws.close()
