"""Headless review (engine.review) and the `examples` / `review` commands, on examples made by the teacher."""

from __future__ import annotations

import json

import pytest

from engine import review
from engine.errors import EngineError
from engine.tasks import add_task, read_task_file
from engine.teacher.client import TeacherSettings
from engine.teacher.transform import transform
from engine.workspace import Workspace
from rebase_tui.cli import main
from tests.conftest import corpus
from tests.fixtures.standin import pool_from_datastore


@pytest.fixture
def reviewed_ws(tmp_path, standin):
    """A closed workspace path holding 8 pending mnli examples made through the stand-in."""
    path = tmp_path / "ws"
    with Workspace(path) as ws:
        add_task(ws, read_task_file(corpus("tasks", "mnli.json")))
        pool_from_datastore(ws, "mnli", ["corpus__nli-pairs"], 8)

        async def go():
            s = TeacherSettings(host=standin.url, model="llama3.1:8b", backoff=0.01)
            return [ev async for ev in transform(ws, "mnli", s)]

        import asyncio

        asyncio.run(go())
    return path


def ids(ws, status=None):
    return [e.id for e in review.list_examples(ws, "mnli", status)]


def test_accept_reject_edit_undo_survive_restart(reviewed_ws):
    with Workspace(reviewed_ws) as ws:
        all_ids = ids(ws)
        assert len(all_ids) == 8 and review.counts(ws, "mnli")["pending"] == 8
        e = review.get_example(ws, all_ids[0])
        assert e.source.dataset == "corpus/nli-pairs" and e.source.config == "plain_text"
        assert isinstance(e.source.row_id, int)
        assert review.accept(ws, "mnli", all_ids[:2]) == 2
        assert review.reject(ws, "mnli", [all_ids[2]], "wrong label") == 1
        edited = review.edit(ws, "mnli", all_ids[3], output="Contradiction", input="Premise: x. Hypothesis: y.")
        assert edited.edited and edited.output == "Contradiction"
        assert review.accept(ws, "mnli", all_ids[:2]) == 0, "no change, no decision"
    with Workspace(reviewed_ws) as ws:          # decisions survive a restart
        assert review.counts(ws, "mnli") == {"pending": 5, "accepted": 2, "rejected": 1, "failed": 0,
                                             "duplicate": 0}
        assert review.get_example(ws, all_ids[2]).reason == "wrong label"
        assert review.undo(ws, "mnli") == [all_ids[3]]
        restored = review.get_example(ws, all_ids[3])
        raw = json.loads(restored.raw_response)
        assert not restored.edited and (restored.input, restored.output) == (raw["input"], raw["output"])
        assert review.undo(ws, "mnli") == [all_ids[2]]
        assert review.get_example(ws, all_ids[2]).status == "pending"
        assert sorted(review.undo(ws, "mnli")) == sorted(all_ids[:2])
        assert review.undo(ws, "mnli") == []
        assert review.counts(ws, "mnli")["pending"] == 8
        hist = review.history(ws, "mnli")
        assert len(hist) == 4 and all(h.undone for h in hist), "the log is append-only: undone, not deleted"
        assert review.accept_all(ws, "mnli") == 8
        assert sorted(review.undo(ws, "mnli")) == sorted(all_ids), "accept-all is one undoable batch"
        other = "Entailment" if review.get_example(ws, all_ids[5]).output == "Neutral" else "Neutral"
        e = review.edit(ws, "mnli", all_ids[5], output=other, accept=True)
        assert (e.status, e.output, e.edited) == ("accepted", other, True)
        assert review.undo(ws, "mnli") == [all_ids[5]], "edit + accept is one step"
        assert review.get_example(ws, all_ids[5]).status == "pending"


def test_bad_review_input_is_reported_and_changes_nothing(reviewed_ws):
    with Workspace(reviewed_ws) as ws:
        first = ids(ws)[0]
        with pytest.raises(EngineError, match="no example with id 99999"):
            review.accept(ws, "mnli", [first, 99999])
        with pytest.raises(EngineError, match="belongs to another task"):
            review.accept(ws, "squad", [first])
        with pytest.raises(EngineError, match="edited output of example .* is empty"):
            review.edit(ws, "mnli", first, output="  ")
        with pytest.raises(EngineError, match="unknown status"):
            review.list_examples(ws, "mnli", "good")
        assert review.counts(ws, "mnli")["pending"] == 8 and review.history(ws, "mnli") == []


def test_examples_and_review_commands(reviewed_ws, capsys):
    w = ["-w", str(reviewed_ws)]
    assert main(["examples", "mnli", "--json", *w]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["counts"]["pending"] == 8 and len(doc["examples"]) == 8
    first = doc["examples"][0]
    assert {"id", "input", "output", "status", "source", "teacher_model"} <= set(first)
    assert main(["review", "mnli", "--accept", str(first["id"]), "--json", *w]) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["accepted"] == 1
    assert main(["review", "mnli", "--reject", str(doc["examples"][1]["id"]), "--reason", "off topic", *w]) == 0
    assert "1 example(s) rejected" in capsys.readouterr().out
    assert main(["review", "mnli", "--accept-all", "--json", *w]) == 0
    assert json.loads(capsys.readouterr().out)["counts"] == {"pending": 0, "accepted": 7, "rejected": 1,
                                                             "failed": 0, "duplicate": 0}
    assert main(["review", "mnli", "--undo", *w]) == 0
    capsys.readouterr()
    assert main(["examples", "mnli", "--status", "accepted", "--json", *w]) == 0
    assert len(json.loads(capsys.readouterr().out)["examples"]) == 1
    assert main(["examples", "mnli", *w]) == 0
    out = capsys.readouterr().out
    assert "6 pending, 1 accepted, 1 rejected" in out and "corpus/nli-pairs" in out
    assert main(["review", "mnli", "--accept", "424242", *w]) == 1
    assert "no example with id 424242" in capsys.readouterr().err
