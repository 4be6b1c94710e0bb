"""engine.teacher.regenerate against the Ollama stand-in: one fresh call per example, its own cache key, quality
checks, the old example rejected through engine.review (one undo restores it), and `review --regenerate`."""

from __future__ import annotations

import json
import socket

import pytest

from engine import review
from engine.errors import EngineError
from engine.teacher.regenerate import Regenerated, regenerate, regenerate_one
from engine.teacher.transform import ExampleText, TransformFinished, transform
from rebase_tui.cli import main
from tests.engine.test_transform import add_corpus_task, finished, q, settings
from tests.fixtures.standin import pool_from_datastore


@pytest.fixture
def mnli_ws(workspace):
    add_corpus_task(workspace, "mnli")
    pool_from_datastore(workspace, "mnli", ["corpus__nli-pairs"], 6)
    return workspace


async def _transform(ws, srv) -> TransformFinished:
    return finished([ev async for ev in transform(ws, "mnli", settings(srv))])


def _fields(ws, ex_id) -> dict:
    got = review.get_example(ws, ex_id)
    return {k: getattr(got, k) for k in ("status", "reason", "input", "output", "row", "edited")}


async def test_regenerate_one_call_cached_and_undone(mnli_ws, standin):
    first = await _transform(mnli_ws, standin)
    assert first.done == 6
    old = review.list_examples(mnli_ws, "mnli")[0]
    before = _fields(mnli_ws, old.id)
    calls = standin.chat_requests

    events = [ev async for ev in regenerate(mnli_ws, "mnli", [old.id], settings(standin), text_interval=0.0)]
    assert standin.chat_requests == calls + 1, "exactly one new teacher call"
    assert any(isinstance(e, ExampleText) for e in events), "the reply streams"
    (got,) = [e for e in events if isinstance(e, Regenerated)]
    assert (got.old_id, got.status, got.replaced, got.cached, got.slot) == (old.id, "pending", True, False, 1)
    new = _fields(mnli_ws, got.example_id)
    assert new["status"] == "pending" and new["row"] == old.row
    chats = standin.requests("/api/chat")
    same = [r for r in chats[:-1] if r.body["messages"] == chats[-1].body["messages"]]
    assert [r.body["options"]["seed"] for r in same] == [7], "the same prompt as the row's transform call"
    assert chats[-1].body["options"]["seed"] == 8, "regeneration 1 asks with seed 7 + 1 (a new answer)"
    assert new["output"] in ("Neutral", "Entailment", "Contradiction"), "the same quality checks (label set)"
    assert _fields(mnli_ws, old.id)["status"] == "rejected"
    assert _fields(mnli_ws, old.id)["reason"] == "regenerated"
    # Its own cache entry: a new key, the seed of regeneration 1, beside the row's transform call.
    keys = q(mnli_ws, "select key, options, status from teacher_calls where row = ? order by created_at", [old.row])
    assert len(keys) == 2 and len({k for k, _, _ in keys}) == 2
    assert [json.loads(o)["seed"] for _, o, _ in keys] == [7, 8] and all(s == "ok" for _, _, s in keys)
    assert q(mnli_ws, "select call_key from examples where id = ?", [got.example_id])[0][0] == keys[1][0]

    # A transform re-run still repeats nothing; regenerating the same example again is cached.
    again = await _transform(mnli_ws, standin)
    assert (again.cached, again.done) == (6, 0)
    repeat = await regenerate_one(mnli_ws, "mnli", old.id, settings(standin))
    assert (repeat.cached, repeat.example_id) == (True, got.example_id)
    assert standin.chat_requests == calls + 1

    # One undo: the old example as it was, the new one rejected.
    assert sorted(review.undo(mnli_ws, "mnli")) == sorted([old.id, got.example_id])
    assert _fields(mnli_ws, old.id) == before
    assert (_fields(mnli_ws, got.example_id)["status"], _fields(mnli_ws, got.example_id)["reason"]) == \
        ("rejected", "regeneration undone")

    # After the undo a regeneration is a fresh call in the next slot (seed 7 + 2).
    third = await regenerate_one(mnli_ws, "mnli", old.id, settings(standin))
    assert (third.slot, third.status, third.cached) == (2, "pending", False)
    assert third.example_id not in (old.id, got.example_id)
    assert standin.chat_requests == calls + 2


async def test_failed_call_changes_nothing_then_succeeds(mnli_ws, standin):
    await _transform(mnli_ws, standin)
    old = review.list_examples(mnli_ws, "mnli")[1]
    before = _fields(mnli_ws, old.id)
    n_examples = len(review.list_examples(mnli_ws, "mnli"))
    standin.inject("http503", times=100)
    got = await regenerate_one(mnli_ws, "mnli", old.id, settings(standin, retries=1))
    assert (got.status, got.example_id, got.replaced) == ("error", None, False)
    assert "HTTP 503" in got.reason and f"#{old.id} is unchanged" in got.reason
    assert _fields(mnli_ws, old.id) == before and len(review.list_examples(mnli_ws, "mnli")) == n_examples
    standin.clear_faults()
    ok = await regenerate_one(mnli_ws, "mnli", old.id, settings(standin))
    assert (ok.status, ok.slot, ok.replaced) == ("pending", 1, True)


async def test_unusable_reply_keeps_the_old_example(mnli_ws, standin):
    await _transform(mnli_ws, standin)
    old = review.list_examples(mnli_ws, "mnli")[2]
    before = _fields(mnli_ws, old.id)
    standin.inject("bad_json")
    got = await regenerate_one(mnli_ws, "mnli", old.id, settings(standin))
    assert got.status == "failed" and not got.replaced and "not valid JSON" in got.reason
    stored = review.get_example(mnli_ws, got.example_id)
    assert stored.status == "failed" and stored.raw_response, "stored for the record, raw reply kept"
    assert _fields(mnli_ws, old.id) == before


async def test_refusals_before_any_call(mnli_ws, standin):
    await _transform(mnli_ws, standin)
    calls = standin.chat_requests
    with pytest.raises(EngineError, match="no example with id 999"):
        await regenerate_one(mnli_ws, "mnli", 999, settings(standin))
    with mnli_ws.store.transaction() as cur:
        cur.execute("insert into examples (id, task, row, input, output, status) values "
                    "(500, 'mnli', null, 'a', 'Neutral', 'pending')")
    with pytest.raises(EngineError, match="no source row"):
        await regenerate_one(mnli_ws, "mnli", 500, settings(standin))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ex = review.list_examples(mnli_ws, "mnli")[0]
    with pytest.raises(EngineError, match="not reachable"):
        await regenerate_one(mnli_ws, "mnli", ex.id, settings(standin, host=f"http://127.0.0.1:{port}"))
    assert review.get_example(mnli_ws, ex.id).status == "pending"
    assert standin.chat_requests == calls


def test_review_regenerate_command(tmp_path, standin, capsys):
    import asyncio

    from engine.tasks import add_task, read_task_file
    from engine.workspace import Workspace
    from tests.conftest import corpus

    path = tmp_path / "ws"
    with Workspace(path) as ws:
        add_task(ws, read_task_file(corpus("tasks", "mnli.json")))
        pool_from_datastore(ws, "mnli", ["corpus__nli-pairs"], 4)
        asyncio.run(_transform(ws, standin))
        ids = [e.id for e in review.list_examples(ws, "mnli")][:2]
    calls = standin.chat_requests
    argv = ["review", "mnli", "-w", str(path), "--regenerate", *map(str, ids), "--host", standin.url,
            "--model", "llama3.1:8b", "--seed", "7", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["action"] == "regenerated" and out["changed"] == 2 and standin.chat_requests == calls + 2
    assert [r["old_id"] for r in out["results"]] == ids and all(r["status"] == "pending" for r in out["results"])
    assert out["counts"]["rejected"] == 2 and out["counts"]["pending"] == 4
    # Re-running the same command (e.g. after a kill) asks nothing again.
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert all(r["cached"] for r in again["results"]) and again["changed"] == 0
    assert standin.chat_requests == calls + 2
    # Ollama gone: one clear message, exit 1.
    assert main(["review", "mnli", "-w", str(path), "--regenerate", str(ids[0]), "--host",
                 "http://127.0.0.1:9"]) == 1
    assert "not reachable" in capsys.readouterr().err


def test_review_regenerate_on_the_openai_backend(tmp_path, openai_standin_factory, capsys):
    import asyncio

    from engine.teacher.client import TeacherSettings
    from engine.workspace import Workspace
    srv = openai_standin_factory()
    model = "meta-llama/Llama-3.1-8B-Instruct"
    path = tmp_path / "ws"
    with Workspace(path) as ws:
        add_corpus_task(ws, "mnli")
        pool_from_datastore(ws, "mnli", ["corpus__nli-pairs"], 3)
        s = TeacherSettings(host=srv.base_url, model=model, backend="openai", seed=7, backoff=0.01)
        asyncio.run(_collect(transform(ws, "mnli", s)))
        first = review.list_examples(ws, "mnli")[0].id
    argv = ["review", "mnli", "-w", str(path), "--regenerate", str(first), "--backend", "openai", "--host",
            srv.base_url, "--model", model, "--seed", "7", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["changed"] == 1 and out["results"][0]["status"] == "pending" and srv.chat_requests == 4
    assert srv.requests("/v1/chat/completions")[-1].body["seed"] == 8
    assert main(["review", "mnli", "-w", str(path), "--regenerate", str(first), "--backend", "openai",
                 "--host", "http://127.0.0.1:9/v1", "--model", model]) == 1
    assert "the OpenAI-compatible server is not reachable at http://127.0.0.1:9/v1" in capsys.readouterr().err


async def _collect(gen):
    return [ev async for ev in gen]
