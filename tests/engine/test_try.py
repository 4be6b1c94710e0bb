"""`rebase-tui try`: a trained student's answer to any input, streamed, beside its base and the teacher."""

from __future__ import annotations

import io
import json

from rebase_tui.cli import main


def test_try_one_input_text_and_json(trained_task_run, capsys, standin):
    ws, path = trained_task_run
    argv = ["try", path.name, "not ( True ) and False is", "-w", str(ws), "--max-new-tokens", "12"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "student: So the answer is True." in out and "→ answer: 'True.'" in out
    standin.known_answers = {"not ( True ) and False is": "not True = False. So the answer is False."}
    assert main([*argv, "--base", "--teacher", "--host", standin.url, "--model", "llama3.1:8b", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"input", "student", "base", "teacher"}
    for side in ("student", "base", "teacher"):
        assert set(doc[side]) == {"text", "answer", "seconds"}
    assert doc["student"]["text"] == "So the answer is True." and doc["student"]["answer"] == "True."
    assert doc["teacher"]["answer"] == "False."
    asked = standin.chat_requests
    assert main([*argv, "--teacher", "--host", standin.url, "--model", "llama3.1:8b", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["teacher"]["answer"] == "False."
    assert standin.chat_requests == asked, "the teacher's answer is cached like any teacher call"


def test_try_reads_inputs_from_stdin_one_json_per_line(trained_task_run, capsys, monkeypatch):
    ws, path = trained_task_run
    monkeypatch.setattr("sys.stdin", io.StringIO("True and True is\n\nFalse or False is\n"))
    assert main(["try", path.name, "-w", str(ws), "--max-new-tokens", "12", "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [d["input"] for d in lines] == ["True and True is", "False or False is"]
    assert all(set(d) == {"input", "student"} for d in lines)


def test_try_a_long_input_is_cut_and_says_so(trained_task_run, capsys):
    ws, path = trained_task_run
    long_input = " and ".join(["not ( True or False )"] * 400) + " is"
    assert main(["try", path.name, long_input, "-w", str(ws), "--max-new-tokens", "8"]) == 0
    assert "the input was cut to fit the student's context" in capsys.readouterr().out


def test_try_refuses_bad_arguments(trained_task_run, capsys):
    ws, path = trained_task_run
    assert main(["try", path.name, "x", "-w", str(ws), "--max-new-tokens", "0"]) == 1
    assert "--max-new-tokens 0" in capsys.readouterr().err
    assert main(["try", "nope", "x", "-w", str(ws)]) == 1
    assert "unknown run 'nope'" in capsys.readouterr().err
