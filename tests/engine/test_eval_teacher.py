"""The teacher as the ceiling: `eval --teacher` answers a test set few-shot through either backend, cached
like transform, scored with the task's metric; with a run, beside the student with a p-value."""

from __future__ import annotations

import json

from rebase_tui.cli import main
from tests.conftest import corpus

ITEMS = [("True and not False is", "True"), ("not True or False is", "False"),
         ("( False ) or not False is", "True"), ("not not True is", "True")]


def _test_file(tmp_path):
    path = tmp_path / "bool_test.jsonl"
    path.write_text("".join(json.dumps({"input": x, "output": y}) + "\n" for x, y in ITEMS))
    return path


def test_eval_teacher_scores_and_caches(tmp_path, capsys, teacher_server):
    srv = teacher_server(num_parallel=2)
    # this "model" knows three of the four answers; the fourth it gets wrong
    srv.srv.known_answers = {x: f"Step by step. So the answer is {y}." for x, y in ITEMS[:3]}
    srv.srv.known_answers[ITEMS[3][0]] = "Not not True is False. So the answer is False."
    ws = str(tmp_path / "ws")
    argv = ["eval", "--teacher", "--task", str(corpus("tasks", "boolean_expressions.json")), "--data",
            str(_test_file(tmp_path)), "--backend", srv.backend, "--host", srv.host, "--model", srv.model,
            "-w", ws, "--json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["system"] == "teacher" and doc["n"] == 4 and doc["metric"] == ["exact"]
    assert doc["metrics"]["exact"]["value"] == 0.75
    lo, hi = doc["metrics"]["exact"]["ci95"]
    assert 0 <= lo <= 0.75 <= hi <= 1
    asked = srv.srv.chat_requests
    assert asked == 4
    chat = srv.srv.log[-1].body["messages"]
    assert chat[0]["role"] == "system" and chat[1]["role"] == "user" and chat[2]["role"] == "assistant", \
        "few-shot: the task's examples as turns"
    preds = [json.loads(x) for x in open(doc["predictions"], encoding="utf-8")]
    assert [p["correct"] for p in preds] == [True, True, True, False]
    assert main(argv) == 0, "again: every answer comes from the cache"
    assert json.loads(capsys.readouterr().out)["metrics"] == doc["metrics"]
    assert srv.srv.chat_requests == asked


def test_eval_teacher_failed_calls_exit_1(tmp_path, capsys, standin_factory):
    srv = standin_factory()
    srv.inject("http500", times=100)
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "config.toml").write_text("[teacher]\nretries = 0\n")
    argv = ["eval", "--teacher", "--task", str(corpus("tasks", "boolean_expressions.json")), "--data",
            str(_test_file(tmp_path)), "--host", srv.url, "--model", "llama3.1:8b", "-w", str(ws)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "4 teacher call(s) failed" in err and "Traceback" not in err


def test_eval_needs_a_run_or_the_teacher(tmp_path, capsys):
    assert main(["eval", "-w", str(tmp_path / "ws")]) == 1
    assert "eval needs a run, or --teacher" in capsys.readouterr().err
    assert main(["eval", "--teacher", "-w", str(tmp_path / "ws")]) == 1
    assert "needs --task and --data" in capsys.readouterr().err
