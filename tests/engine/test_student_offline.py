"""A student named by its Hugging Face hub id (found in the local cache) is trained, evaluated and exported
without one request to the Hub, even when the user's environment does not ask for offline mode; a student
missing from the cache says how to get it.

The commands run as the user runs them (``python -m rebase_tui`` in a fresh process) with ``HF_HUB_OFFLINE``
unset and ``HF_ENDPOINT`` pointing at a local listener that records every request it receives (and refuses
them): the test asserts it received none.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import REPO, corpus

HUB_ID = "tiny-org/tiny-gpt2"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


class _Listener(BaseHTTPRequestHandler):
    seen: list[str] = []

    def _refuse(self) -> None:
        self.seen.append(f"{self.command} {self.path}")
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD = do_POST = _refuse

    def log_message(self, *args) -> None:  # noqa: D102 - quiet
        pass


@pytest.fixture
def hub(tmp_path, tiny_student):
    """A Hugging Face cache holding the tiny student under a hub id (the cache's own layout: a snapshot per
    commit, ``refs/main`` naming it), and a listener standing where the Hub would be."""
    repo = tmp_path / "hub" / f"models--{HUB_ID.replace('/', '--')}"
    shutil.copytree(tiny_student, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    _Listener.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Listener)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{server.server_port}", HF_HUB_CACHE=str(tmp_path / "hub"),
               HF_HOME=str(tmp_path / "hf-home"), PYTHONPATH=str(REPO))
    yield env, repo
    server.shutdown()


def _cli(env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rebase_tui", *args], env=env, capture_output=True, text=True,
                          timeout=300, cwd=str(REPO))


def test_a_hub_id_student_never_reaches_the_network(hub, tmp_path):
    env, repo = hub
    ws = str(tmp_path / "ws")
    rows = corpus("teacher_outputs", "boolean_expressions.jsonl").read_text().splitlines()[:20]
    data = tmp_path / "bool.jsonl"
    data.write_text("\n".join(rows) + "\n")
    trained = _cli(env, "train", "-w", ws, "--data", str(data), "--student", HUB_ID, "--lora", "--max-steps", "2",
                   "--batch-size", "4", "--max-length", "64", "--threads", "1", "--device", "cpu", "--json")
    assert trained.returncode == 0, trained.stderr[-2000:]
    run = json.loads(trained.stdout)["run"]
    evaluated = _cli(env, "eval", run, "-w", ws, "--base", "--limit", "2", "--json")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    merged = _cli(env, "export", "model", run, "-w", ws, "--out", str(tmp_path / "merged"), "--merge", "--json")
    assert merged.returncode == 0, merged.stderr[-2000:]
    assert json.loads(merged.stdout)["kind"] == "merged"
    assert _Listener.seen == []

    shutil.rmtree(repo)  # the student is gone from the cache: eval says how to get it, in one line
    missing = _cli(env, "eval", run, "-w", ws, "--limit", "2")
    err = missing.stderr.strip()
    assert missing.returncode == 1 and "\n" not in err and "Traceback" not in err, err
    assert HUB_ID in err and "neither a local folder nor in the Hugging Face cache" in err
    assert "huggingface-cli download" in err
    assert _Listener.seen == []
