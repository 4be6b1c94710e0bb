"""`transform --method synthesize`: the teacher writes examples from the task alone — a seed per slot, the same
checks and cache as transform, duplicates caught — and examples, training data and exports select by method."""

from __future__ import annotations

import json

import pytest

from engine import review
from engine.errors import EngineError
from engine.store import Store
from engine.tasks import add_task, read_task_file
from engine.teacher.client import TeacherSettings
from engine.teacher.transform import ExampleDone, TransformFinished, transform
from engine.workspace import Workspace
from rebase_tui.cli import main
from tests.conftest import corpus
from tests.fixtures.standin import pool_from_datastore

MODEL = "llama3.1:8b"


def settings(srv, **kw) -> TeacherSettings:
    return TeacherSettings(**{"host": srv.url, "model": MODEL, "backoff": 0.01, "read_timeout": 5.0, **kw})


async def run(ws, srv, task="web_of_lies", **kw) -> list:
    opts = {k: kw.pop(k) for k in ("seed", "temperature", "concurrency") if k in kw}
    return [ev async for ev in transform(ws, task, settings(srv, **opts), text_interval=0.0, **kw)]


def finished(events) -> TransformFinished:
    return next(e for e in events if isinstance(e, TransformFinished))


def q(ws, sql, params=()):
    with ws.store.cursor() as cur:
        return cur.execute(sql, list(params)).fetchall()


@pytest.fixture
def lies_ws(workspace):
    add_task(workspace, read_task_file(corpus("tasks", "web_of_lies.json")))
    return workspace


async def test_synthesize_writes_n_examples_with_a_seed_each(lies_ws, standin_factory):
    srv = standin_factory(num_parallel=2)
    events = await run(lies_ws, srv, method="synthesize", limit=5, seed=100, concurrency=2)
    f = finished(events)
    assert (f.requested, f.done, f.failed, f.duplicates, f.cached) == (5, 5, 0, 0, 0)
    bodies = [r.body for r in srv.requests("/api/chat")]
    assert sorted(b["options"]["seed"] for b in bodies) == [101, 102, 103, 104, 105], "a seed per slot"
    assert len({b["messages"][-1]["content"] for b in bodies}) == 1, "the same prompt, no retrieved row"
    assert "data sample" not in bodies[0]["messages"][-1]["content"]
    assert bodies[0]["format"]["required"] == ["input", "reasoning", "answer"], "the task's own schema"
    done = sorted((e.rank, e.row) for e in events if isinstance(e, ExampleDone))
    assert done == [(s, -s) for s in range(1, 6)], "events name the slot (row = minus the slot)"
    got = q(lies_ws, "select e.row, e.method, e.prompt, e.status, t.row, e.output like '%So the answer is%' "
                     "or e.output like '%The answer is%' from examples e join teacher_calls t on t.key = e.call_key "
                     "order by t.row desc")
    assert got == [(None, "synthesize", "default", "pending", -s, True) for s in range(1, 6)]
    assert len({json.loads(o)["seed"] for (o,) in q(lies_ws, "select options from examples")}) == 5
    again = finished(await run(lies_ws, srv, method="synthesize", limit=7, seed=100, concurrency=2))
    assert (again.cached, again.done, srv.chat_completed) == (5, 2, 7), "cached slots are never asked again"
    records = review.list_examples(lies_ws, "web_of_lies", method="synthesize")
    assert len(records) == 7 and {r.method for r in records} == {"synthesize"} and records[0].source is None


async def test_duplicates_are_caught_within_the_method(lies_ws, standin_factory):
    srv = standin_factory()
    await run(lies_ws, srv, method="synthesize", limit=3, seed=0)
    # seeds 2, 3, 4 under other slots: two of the three replies repeat earlier ones word for word
    f = finished(await run(lies_ws, srv, method="synthesize", limit=6, seed=1))
    assert (f.cached, f.done + f.duplicates) == (0, 6) and f.duplicates >= 2
    reasons = [r for (r,) in q(lies_ws, "select reason from examples where status = 'duplicate'")]
    assert reasons and all(r.startswith("exact duplicate of") for r in reasons)


async def test_synthesize_needs_a_limit_and_a_known_method(lies_ws, standin):
    with pytest.raises(EngineError, match="synthesizing needs a number of examples"):
        await run(lies_ws, standin, method="synthesize")
    with pytest.raises(EngineError, match="'distill' is not one of rebase, synthesize"):
        await run(lies_ws, standin, method="distill", limit=2)
    assert standin.chat_requests == 0


async def test_examples_training_data_and_exports_select_by_method(lies_ws, standin_factory, tmp_path, capsys):
    from engine.student.training_data import accepted_examples

    pool_from_datastore(lies_ws, "web_of_lies", ["yes_no_questions"], 4)
    srv = standin_factory(num_parallel=2)
    await run(lies_ws, srv, limit=4, concurrency=2)
    await run(lies_ws, srv, method="synthesize", limit=3, concurrency=2)
    assert review.accept_all(lies_ws, "web_of_lies") == 7
    assert len(accepted_examples(lies_ws, "web_of_lies")) == 7
    synth = accepted_examples(lies_ws, "web_of_lies", method="synthesize")
    assert len(synth) == 3 and all(r["source_dataset"] is None for r in synth)
    rebase = accepted_examples(lies_ws, "web_of_lies", method="rebase")
    assert len(rebase) == 4 and all(r["source_dataset"] == "yes_no_questions" for r in rebase)
    assert [r["example_id"] for r in accepted_examples(lies_ws, "web_of_lies", ids=[synth[0]["example_id"]])] == \
        [synth[0]["example_id"]]
    w = str(lies_ws.path)
    lies_ws.close()
    assert main(["examples", "web_of_lies", "--method", "synthesize", "--json", "-w", w]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [e["method"] for e in doc["examples"]] == ["synthesize"] * 3
    out = tmp_path / "synth.jsonl"
    assert main(["export", "dataset", "web_of_lies", "--method", "synthesize", "--out", str(out), "-w", w]) == 0
    assert len(out.read_text().splitlines()) == 3
    with pytest.raises(SystemExit):
        main(["examples", "web_of_lies", "--method", "nope", "-w", w])
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_examples_made_before_the_migration_read_as_rebase(tmp_path):
    path = tmp_path / "ws"
    path.mkdir()
    store = Store(path / "rebase.duckdb", migrate=False)
    store.migrate(target=5)
    with store.cursor() as cur:
        cur.execute("insert into examples (task, row, input, output, status) values ('t', 4, 'in', 'out', 'pending')")
    store.close()
    with Workspace(path) as ws:
        (record,) = review.list_examples(ws, "t")
        assert record.method == "rebase"
        assert q(ws, "select prompt from examples") == [("default",)]
