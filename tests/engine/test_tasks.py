"""Tasks: validation (one message per problem), answer extraction, storage, TASK resolution, the command."""

from __future__ import annotations

import json

import pytest

from engine.errors import EngineError
from engine.tasks import (
    Demonstration,
    Task,
    TaskError,
    add_task,
    final_answer,
    get_task,
    list_tasks,
    output_target,
    read_task_file,
    remove_task,
    resolve_task,
    validate,
)
from tests.conftest import corpus

GOOD = {"name": "nli", "instruction": "Decide whether the premise entails the hypothesis.",
        "examples": [{"input": "P: a dog runs. H: an animal moves.", "output": "entailment"}],
        "source_datasets_to_exclude": ["glue", " multi_nli "]}


def test_a_valid_spec_round_trips():
    task = validate(GOOD)
    assert task == Task("nli", GOOD["instruction"], (Demonstration(*GOOD["examples"][0].values()),), ("glue", "multi_nli"))
    assert validate(task.to_json()) == task
    assert not task.reasons


@pytest.mark.parametrize("change, problem", [
    ({"instruction": "  "}, "missing or empty instruction"),
    ({"instruction": None}, "missing or empty instruction"),
    ({"examples": []}, "no examples"),
    ({"examples": [{"input": "x"}]}, "example 1 has no output"),
    ({"examples": [{"output": "y"}]}, "example 1 has no input"),
    ({"examples": [{"input": "x", "output": "y", "why": 1}]}, "example 1 has unknown key(s) why"),
    ({"examples": ["x"]}, "example 1 is not an object"),
    ({"extra": 1}, "unknown key(s) extra"),
    ({"name": ""}, "missing or empty name"),
    ({"name": "a/b"}, "may only hold letters"),
    ({"source_datasets_to_exclude": "glue"}, "must be a list of dataset ids"),
])
def test_each_problem_has_its_message(change, problem):
    with pytest.raises(TaskError) as err:
        validate({**GOOD, **change}, "t.json")
    assert problem in str(err.value) and str(err.value).startswith("t.json: ")
    assert err.value.fix


def test_all_problems_are_reported_at_once():
    with pytest.raises(TaskError) as err:
        validate({"name": "x", "instruction": "", "examples": [], "bogus": 1})
    assert len(err.value.problems) == 3


def test_not_an_object():
    with pytest.raises(TaskError, match="must be a JSON object"):
        validate([GOOD])


@pytest.mark.parametrize("output, answer", [
    ("A is true, B is false. So the answer is False.", "False"),
    ("... The answer is (B).", "(B)"),
    ("Let's think. the answer is: 12.5.", "12.5"),
    ("The answer is valid", "valid"),
    ("the answer is maybe wrong; Actually the answer is Yes.", "Yes"),
    ("entailment", None),
])
def test_final_answer(output, answer):
    assert final_answer(output) == answer
    assert output_target(output, "stripped") == (answer if answer is not None else output)
    # the released rule takes everything after the last "answer is " as it stands
    at = output.rfind("answer is ")
    assert output_target(output) == (output[at + len("answer is "):] if at >= 0 else output)


def test_every_corpus_task_is_valid_and_bbh_tasks_reason():
    paths = sorted(corpus("tasks").glob("*.json"))
    assert len(paths) == 9
    for path in paths:
        task = read_task_file(path)
        assert task.name == path.stem
        assert task.reasons == (task.name not in {"mnli", "squad", "mconala"}), task.name


def test_read_task_file_errors(tmp_path):
    with pytest.raises(EngineError, match="cannot read task file"):
        read_task_file(tmp_path / "missing.json")
    with pytest.raises(EngineError, match="cannot read task file"):
        read_task_file(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x",')
    with pytest.raises(EngineError, match=r"not valid JSON \(line 1"):
        read_task_file(bad)
    latin = tmp_path / "latin.json"
    latin.write_bytes('{"name": "é"}'.encode("latin-1"))
    with pytest.raises(EngineError, match="not UTF-8"):
        read_task_file(latin)
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD).encode())
    assert read_task_file(bom).name == "nli"


def test_storage(workspace):
    task = validate(GOOD)
    add_task(workspace, task)
    assert get_task(workspace, "nli") == task
    with pytest.raises(EngineError, match="already exists"):
        add_task(workspace, task)
    other = validate({**GOOD, "instruction": "Something else."})
    add_task(workspace, other, replace=True)
    assert get_task(workspace, "nli") == other
    add_task(workspace, validate({**GOOD, "name": "a_task"}))
    assert [t.name for t in list_tasks(workspace)] == ["a_task", "nli"]
    with workspace.store.cursor() as cur:
        cur.execute("insert into retrievals values ('nli', 1, 7, 0.5, 0.5, 0.5, 0.5, 'a', 'b')")
    remove_task(workspace, "nli")
    assert get_task(workspace, "nli") is None
    assert workspace.store.table_counts(["retrievals"]) == {"retrievals": 0}
    with pytest.raises(EngineError, match=r"unknown task 'nli' \(known tasks: a_task\)"):
        remove_task(workspace, "nli")


def test_resolve_task(workspace, tmp_path, monkeypatch):
    with pytest.raises(EngineError, match="no tasks are stored yet"):
        resolve_task(workspace, "nli")
    path = tmp_path / "nli.json"
    path.write_text(json.dumps(GOOD))
    assert resolve_task(workspace, str(path)) == validate(GOOD)
    assert get_task(workspace, "nli") == validate(GOOD)          # imported on the fly
    assert resolve_task(workspace, "nli") == validate(GOOD)      # and now known by name
    path.write_text(json.dumps({**GOOD, "instruction": "Changed."}))
    assert resolve_task(workspace, str(path)).instruction == "Changed."
    assert get_task(workspace, "nli").instruction == "Changed."  # the file wins: it replaced the stored one
    with pytest.raises(EngineError, match="does not exist"):
        resolve_task(workspace, str(tmp_path / "other.json"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir").mkdir()
    with pytest.raises(EngineError, match="unknown task 'adir'"):
        resolve_task(workspace, "adir")                        # a directory is not a task file


def test_task_command(workspace, tmp_path, capsys):
    from rebase_tui.cli import main

    ws = str(workspace.path)
    workspace.close()
    path = tmp_path / "nli.json"
    path.write_text(json.dumps(GOOD))

    def cli(*argv):
        rc = main(list(argv))
        out, err = capsys.readouterr()
        return rc, out, err

    rc, out, _ = cli("task", "add", str(path), "-w", ws, "--json")
    assert rc == 0 and json.loads(out)["name"] == "nli"
    rc, _, err = cli("task", "add", str(path), "-w", ws)
    assert rc == 1 and "already exists" in err and err.count("\n") == 1
    assert cli("task", "add", str(path), "--replace", "-w", ws)[0] == 0
    rc, out, _ = cli("task", "list", "-w", ws, "--json")
    assert json.loads(out) == [{"name": "nli", "instruction": GOOD["instruction"], "examples": 1,
                                "exclude": ["glue", "multi_nli"]}]
    rc, out, _ = cli("task", "show", "nli", "-w", ws)
    assert rc == 0 and "example 1" in out and "glue, multi_nli" in out
    rc, _, err = cli("task", "show", "nope", "-w", ws)
    assert rc == 1 and "unknown task 'nope'" in err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "bad"}))
    rc, _, err = cli("task", "add", str(bad), "-w", ws)
    assert rc == 1 and "missing or empty instruction" in err and err.count("\n") == 1
    assert cli("task", "remove", "nli", "-w", ws)[0] == 0
    rc, out, _ = cli("task", "list", "-w", ws, "--json")
    assert json.loads(out) == []
