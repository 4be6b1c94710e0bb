"""`rebase-tui models` and `rebase-tui transform` end to end: exit status, refused options and hosts, both
backends, and a SIGKILL halfway and a resume with exact call counts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.tasks import add_task, read_task_file
from engine.workspace import Workspace
from rebase_tui.cli import main
from tests.conftest import REPO, corpus, shared_data
from tests.fixtures.standin import pool_from_datastore


def make_ws(tmp_path: Path, n: int, folders=("corpus__nli-pairs", "science_entailment")) -> Path:
    path = tmp_path / "ws"
    with Workspace(path) as ws:
        add_task(ws, read_task_file(corpus("tasks", "mnli.json")))
        assert pool_from_datastore(ws, "mnli", list(folders), n) == n
    return path


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rebase_tui", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def test_models_command(standin, capsys, tmp_path):
    assert main(["models", "--host", standin.url, "--json", "-w", str(tmp_path / "w")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["host"] == standin.url
    first = doc["models"][0]
    assert (first["name"], first["family"], first["quantization"], first["parameter_size"]) == \
        ("llama3.1:8b", "llama", "Q4_K_M", "8.0B")
    assert main(["models", "--host", standin.url, "-w", str(tmp_path / "w")]) == 0
    out = capsys.readouterr().out
    assert "qwen2.5:0.5b" in out and "4.9 GB" in out
    assert main(["models", "--host", "http://127.0.0.1:9", "-w", str(tmp_path / "w")]) == 1
    assert capsys.readouterr().err.strip() == ("rebase-tui: Ollama is not reachable at http://127.0.0.1:9 — start "
                                               "it with `ollama serve` or set OLLAMA_HOST")


def test_host_precedence(standin, tmp_path, monkeypatch, capsys):
    w = tmp_path / "w"
    monkeypatch.setenv("OLLAMA_HOST", standin.url)
    assert main(["models", "--json", "-w", str(w)]) == 0, "OLLAMA_HOST is used when nothing else is set"
    assert json.loads(capsys.readouterr().out)["host"] == standin.url
    assert main(["config", "teacher.host", "http://127.0.0.1:9", "-w", str(w)]) == 0
    capsys.readouterr()
    assert main(["models", "-w", str(w)]) == 1, "the workspace config wins over OLLAMA_HOST"
    assert "127.0.0.1:9" in capsys.readouterr().err
    assert main(["models", "--host", standin.url, "--json", "-w", str(w)]) == 0, "--host wins over both"


def test_transform_command_json_and_errors(standin, tmp_path, capsys):
    w = str(make_ws(tmp_path, 6))
    assert main(["transform", "mnli", "--model", "llama3.1:8b", "--host", standin.url, "--limit", "4",
                 "--seed", "3", "--temperature", "0.2", "--json", "-w", w]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {k: doc[k] for k in ("requested", "done", "failed", "duplicates", "cached")} == \
        {"requested": 4, "done": 4, "failed": 0, "duplicates": 0, "cached": 0}
    assert doc["seconds"] > 0 and doc["examples_per_s"] > 0
    assert standin.requests("/api/chat")[0].body["options"]["temperature"] == 0.2
    assert main(["transform", "mnli", "--model", "llama3.1:8b", "--host", standin.url, "--seed", "3",
                 "--temperature", "0.2", "-w", w]) == 0
    captured = capsys.readouterr()
    assert "2 new examples" in captured.out and "4 already done" in captured.out
    assert standin.chat_requests == 6
    assert main(["transform", "mnli", "--model", "nope", "--host", standin.url, "-w", w]) == 1
    err = capsys.readouterr().err
    assert f"model nope is not installed on {standin.url} — `ollama pull nope`" in err and "llama3.1:8b" in err
    assert main(["transform", "mnli", "--show-prompt", "--json", "-w", w]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert "Task description:" in shown["messages"][0]["content"] and shown["format"]["required"] == ["input",
                                                                                                       "output"]
    prompt = tmp_path / "p.txt"
    prompt.write_text("Make an NLI example. {instruction}\n{examples}\n{row}\n", encoding="utf-8")
    assert main(["transform", "mnli", "--prompt-file", str(prompt), "--show-prompt", "-w", w]) == 0
    assert capsys.readouterr().out.startswith("Make an NLI example.")
    prompt.write_text("no placeholders", encoding="utf-8")
    assert main(["transform", "mnli", "--prompt-file", str(prompt), "-w", w]) == 1
    assert "lacks {instruction}, {row}" in capsys.readouterr().err


def test_exit_status_says_whether_every_call_was_answered(standin, tmp_path, capsys):
    w = str(make_ws(tmp_path, 6))
    assert main(["config", "teacher.retries", "1", "-w", w]) == 0
    args = ["transform", "mnli", "--model", "llama3.1:8b", "--host", standin.url, "--limit", "3", "-w", w]
    standin.inject("bad_json", times=3)
    assert main(args) == 0, "replies that arrived but were unusable are results"
    captured = capsys.readouterr()
    assert "3 failed" in captured.out and "could not be made" not in captured.err
    standin.inject("http503", times=100)
    assert main([*args[:-4], "--limit", "6", "--json", "-w", w]) == 1
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert (doc["call_failures"], doc["fault_kinds"], doc["cached"]) == (3, {"HTTP 503": 3}, 3)
    assert captured.err.strip().splitlines()[-1] == (
        "rebase-tui: 3 teacher call(s) could not be made or answered (3 × HTTP 503) — re-run the same command "
        "to try them again (finished rows are kept)")


@pytest.mark.parametrize(("flags", "message"), [
    (["--num-predict", "-1"], "rebase-tui: --num-predict -1 is out of range — use a whole number from 1 to 1048576"),
    (["--temperature", "nan"], "rebase-tui: --temperature nan is out of range — use a number from 0 to 2"),
    (["--temperature=-inf"], "rebase-tui: --temperature -inf is out of range — use a number from 0 to 2"),
    (["--seed", "-1"], "rebase-tui: --seed -1 is out of range — use a whole number from 0 to 2147483647"),
    (["--host", "http://[::1"], "rebase-tui: teacher host 'http://[::1' is not a usable URL: Invalid IPv6 URL — "
     "give it as http://HOST:PORT (for example http://127.0.0.1:11434) with --host or teacher.host"),
    (["--host", "localhost:99999"], "rebase-tui: teacher host 'localhost:99999' is not a usable URL: the port 99999 "
     "is not a number from 1 to 65535 — give it as http://HOST:PORT (for example http://127.0.0.1:11434) with "
     "--host or teacher.host"),
])
def test_nonsense_options_are_one_line_before_any_call(standin, tmp_path, capsys, flags, message):
    w = str(make_ws(tmp_path, 2))
    assert main(["transform", "mnli", "--model", "llama3.1:8b", "--host", standin.url, *flags, "-w", w]) == 1
    assert capsys.readouterr().err.strip() == message
    assert standin.chat_requests == 0
    if flags[0] == "--host":
        assert main(["models", *flags, "-w", w]) == 1
        assert capsys.readouterr().err.strip() == message


def test_info_reports_a_malformed_host_without_a_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "rebase_tui", "info", "--json", "-w", str(tmp_path / "w")],
                       capture_output=True, text=True, timeout=60, cwd=REPO,
                       env={**os.environ, "OLLAMA_HOST": "http://[::1"})
    assert r.returncode == 0 and "Traceback" not in r.stderr
    probe = json.loads(r.stdout)["ollama"]
    assert probe["reachable"] is False and "is not a usable URL: Invalid IPv6 URL" in probe["error"]


def test_models_on_an_openai_compatible_server(openai_standin_factory, tmp_path, capsys):
    srv = openai_standin_factory(flavor="llamacpp")
    w = str(tmp_path / "w")
    assert main(["models", "--backend", "openai", "--host", srv.base_url, "--json", "-w", w]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["backend"] == "openai" and doc["host"] == srv.base_url
    assert [(m["name"], m["parameter_size"], m["context"]) for m in doc["models"]] == \
        [("meta-llama/Llama-3.1-8B-Instruct", "8.0B", 8192), ("Qwen/Qwen2.5-0.5B-Instruct", "494M", 32768)]
    assert main(["models", "--backend", "openai", "--host", srv.url, "--json", "-w", w]) == 0
    assert json.loads(capsys.readouterr().out)["host"] == srv.base_url, "a host without a path gets /v1"
    assert main(["models", "--backend", "openai", "--host", srv.url + "/api", "-w", w]) == 1
    assert capsys.readouterr().err.strip() == (
        f"rebase-tui: {srv.url}/api answered 404 to /models (File Not Found); it does not look like an "
        "OpenAI-compatible server — check the base URL (--host or teacher.host); it usually ends in /v1")


def _wait(cond, timeout: float, what: str, what_now=lambda: "") -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}: {what_now()}")
        time.sleep(0.02)


def kill_and_resume(srv, ws: Path, n: int, concurrency: int, backend: str = "ollama") -> dict:
    """Transform n rows in a subprocess, SIGKILL it once n/2 calls finished and every slot waits (so the
    kill lands with C calls in flight), re-run; return the re-run's JSON."""
    half = n // 2
    srv.hold_after(half)
    teacher = ["--model", "llama3.1:8b", "--host", srv.url] if backend == "ollama" else \
        ["--backend", "openai", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--host", srv.base_url]
    args = [sys.executable, "-m", "rebase_tui", "transform", "mnli", *teacher,
            "--limit", str(n), "--concurrency", str(concurrency), "--json", "-w", str(ws)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    try:
        # every slot waits at the hold: the `half` finished calls are stored, the ones in flight are not done
        def stalled() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"transform exited early ({proc.returncode}): {proc.stderr.read().decode()}")
            return srv.chat_completed >= half and srv.waiting == concurrency

        _wait(stalled, 120, "the transform to stall",
              lambda: f"completed {srv.chat_completed}, waiting {srv.waiting}, requests {srv.chat_requests}")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    srv.release()
    _wait(lambda: srv.dropped == concurrency, 10, "the abandoned requests to drop without generating")
    killed_at = srv.chat_completed      # the calls still running at the hold finished too (they were stored)
    assert half <= killed_at < half + concurrency
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["cached"] == killed_at, "every call finished before the kill was stored and is not repeated"
    return doc


@pytest.mark.parametrize("backend", ["ollama", "openai"])
def test_sigkill_halfway_then_resume_makes_exactly_n_calls(standin_factory, openai_standin_factory, tmp_path,
                                                           backend):
    n, c = 16, 2
    ws = make_ws(tmp_path, n)
    srv = (standin_factory if backend == "ollama" else openai_standin_factory)(num_parallel=c)
    doc = kill_and_resume(srv, ws, n, c, backend)
    assert doc["done"] + doc["duplicates"] + doc["failed"] + doc["cached"] == n
    assert srv.chat_completed == n, "every row was transformed exactly once in total"
    assert len(srv.completed_prompts) == n and set(srv.completed_prompts.values()) == {1}
    assert srv.chat_requests <= n + c, "at most the calls in flight were lost"
    with Workspace(ws) as w, w.store.cursor() as cur:
        assert cur.execute("select count(*), count(distinct row) from examples").fetchall() == [(n, n)]
        assert cur.execute("select count(*) from teacher_calls where status = 'ok'").fetchall() == [(n,)]


def _retrieve(path: Path, top: int) -> int:
    from engine.retrieval.pool import store_pool
    from engine.retrieval.retriever import Retriever

    with Workspace(path) as ws:
        task = read_task_file(corpus("tasks", "mnli.json"))
        return store_pool(ws, task, Retriever(ws).search(task, top=top))


def _assert_pool_transformed(path: Path, n: int) -> None:
    with Workspace(path) as w, w.store.cursor() as cur:
        got = cur.execute("select count(*), count(distinct e.row) from examples e join retrievals r "
                          "on r.row = e.row and r.task = 'mnli' where r.rank <= ?", [n]).fetchall()
        assert got == [(n, n)], "one example per pool row, from the pool's first n rows"
        assert cur.execute("select count(*) from examples").fetchall() == [(n,)]
        banned = cur.execute("select count(*) from examples e join rows w on w.id = e.row join datasets d "
                             "on d.id = w.dataset where d.name in ('multi_nli', 'glue', 'nyu-mll/glue')").fetchall()
        assert banned == [(0,)]


def test_end_to_end_ingest_retrieve_transform_kill_resume(small_datastore, embedder, standin_factory):
    """The real path on a small ingested datastore: retrieve for mnli, transform, SIGKILL halfway, resume."""
    n, c = 20, 2
    assert _retrieve(small_datastore, 40) >= n
    srv = standin_factory(num_parallel=c)
    doc = kill_and_resume(srv, small_datastore, n, c)
    assert doc["requested"] == n
    assert srv.chat_completed == n and len(srv.completed_prompts) == n
    _assert_pool_transformed(small_datastore, n)


@pytest.mark.slow
def test_acceptance_200_rows_of_the_shared_datastore(tmp_path, embedder, standin_factory):
    """The acceptance run: the whole shared datastore (a ~30-minute ingest unless REBASE_SHARED_WS
    points at an ingested copy, which is copied, not changed), retrieve for mnli, transform 200 rows with a
    SIGKILL at 100, re-run: exactly 200 chat calls in total."""
    import shutil

    path = tmp_path / "ws"
    if os.environ.get("REBASE_SHARED_WS"):
        shutil.copytree(os.environ["REBASE_SHARED_WS"], path)
    else:
        from engine.datastore.ingest import run_ingest

        root = shared_data("datastore")
        with Workspace(path) as ws:
            run_ingest(ws, sorted(p for p in root.iterdir() if p.is_dir()), embedder=embedder)
    assert _retrieve(path, 3000) >= 200
    srv = standin_factory(num_parallel=4, latency=0.02)
    doc = kill_and_resume(srv, path, 200, 4)
    assert doc["requested"] == 200 and srv.chat_completed == 200 and len(srv.completed_prompts) == 200
    _assert_pool_transformed(path, 200)
