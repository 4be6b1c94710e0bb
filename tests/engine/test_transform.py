"""engine.teacher.transform end to end against the Ollama stand-in, through the real `ollama` client and real DuckDB."""

from __future__ import annotations

import json

import pytest

from engine.errors import EngineError
from engine.events import Progress
from engine.tasks import add_task, read_task_file
from engine.teacher import prompts
from engine.teacher.client import TeacherSettings
from engine.teacher.transform import ExampleDone, ExampleText, TransformFinished, transform
from tests.conftest import corpus
from tests.fixtures.standin import pool_from_datastore

MODEL = "llama3.1:8b"


def settings(srv, **kw) -> TeacherSettings:
    base = {"host": srv.url, "model": MODEL, "concurrency": 2, "backoff": 0.01, "read_timeout": 5.0, "seed": 7}
    base.update(kw)
    return TeacherSettings(**base)


async def run(ws, srv, task="mnli", *, limit=None, cot="auto", use_filter=False, **kw):
    return [ev async for ev in transform(ws, task, settings(srv, **kw), limit=limit, cot=cot,
                                         use_filter=use_filter, text_interval=0.0)]


def q(ws, sql, params=()):
    with ws.store.cursor() as cur:
        return cur.execute(sql, list(params)).fetchall()


def finished(events) -> TransformFinished:
    return next(e for e in events if isinstance(e, TransformFinished))


def add_corpus_task(ws, name: str) -> None:
    add_task(ws, read_task_file(corpus("tasks", f"{name}.json")))


@pytest.fixture
def mnli_ws(workspace):
    add_corpus_task(workspace, "mnli")
    pool_from_datastore(workspace, "mnli", ["corpus__nli-pairs", "science_entailment"], 40)
    return workspace


def add_rows(ws, task: str, datas: list[dict]) -> None:
    """Append hand-made rows to a task's pool (for duplicate checks)."""
    with ws.store.transaction() as cur:
        nid = cur.execute("select coalesce(max(id), 0) + 1 from rows").fetchall()[0][0]
        rank = cur.execute("select coalesce(max(rank), 0) + 1 from retrievals where task = ?", [task]).fetchall()[0][0]
        for i, data in enumerate(datas):
            cur.execute("insert into rows values (?, 1, 1, ?, ?)", [nid + i, 900000 + i, json.dumps(data)])
            cur.execute("insert into retrievals (task, rank, row, score, input_score, output_score, dataset_score) "
                        "values (?, ?, ?, 0, 0, 0, 0)", [task, rank + i, nid + i])


async def test_transform_stores_examples_with_provenance(mnli_ws, standin_factory):
    srv = standin_factory(num_parallel=3)
    events = await run(mnli_ws, srv, limit=12, concurrency=3)
    f = finished(events)
    assert (f.requested, f.done, f.failed, f.duplicates, f.cached) == (12, 12, 0, 0, 0)
    assert srv.chat_completed == 12 and srv.max_in_flight <= 3
    last = [e for e in events if isinstance(e, Progress)][-1]
    assert (last.done, last.total) == (12, 12) and last.rate and last.rate > 0 and last.eta_s == 0, \
        "the engine fills the throughput and the ETA"
    done = [e for e in events if isinstance(e, ExampleDone)]
    assert sorted(e.rank for e in done) == list(range(1, 13))
    got = q(mnli_ws, "select e.row, e.input, e.output, e.status, e.teacher_model, e.teacher_digest, e.options, "
                     "e.prompt_hash, e.raw_response, e.timings, e.tokens, t.status from examples e "
                     "join teacher_calls t on t.key = e.call_key order by e.row")
    assert len(got) == 12
    for row, inp, out, status, model, digest, options, phash, raw, timings, tokens, call_status in got:
        assert status == "pending" and call_status == "ok" and model == MODEL and len(digest) == 64
        assert out in ("Neutral", "Entailment", "Contradiction")
        assert json.loads(raw) == {"input": inp, "output": out}
        assert json.loads(options)["seed"] == 7 and phash
        assert json.loads(timings)["call_s"] > 0 and json.loads(tokens)["eval_count"] > 0
        data = json.loads(q(mnli_ws, "select data from rows where id = ?", [row])[0][0])
        assert set(inp.split()) <= set(" ".join(map(str, data.values())).split()), "content comes from the row"
    body = srv.requests("/api/chat")[0].body
    assert body["stream"] is True and body["think"] is False
    assert body["format"]["properties"]["output"]["enum"] == ["Neutral", "Entailment", "Contradiction"]
    assert body["options"] == {"temperature": 0.7, "num_ctx": 4096, "num_predict": 1024, "seed": 7}


async def test_rerun_repeats_no_call_and_limit_extends(mnli_ws, standin):
    await run(mnli_ws, standin, limit=6)
    f = finished(await run(mnli_ws, standin, limit=6))
    assert (f.done, f.cached) == (0, 6) and standin.chat_requests == 6
    f = finished(await run(mnli_ws, standin, limit=10))
    assert (f.done, f.cached) == (4, 6) and standin.chat_requests == 10
    assert q(mnli_ws, "select count(*) from examples")[0][0] == 10
    # other options are other calls
    f = finished(await run(mnli_ws, standin, limit=2, temperature=0.1))
    assert f.done + f.duplicates == 2 and standin.chat_requests == 12


async def run_on(ws, server, task="mnli", *, limit=None, cot="auto", use_filter=False, **kw):
    """Run transform against a stand-in of either backend (the ``teacher_server`` fixture)."""
    s = server.settings(**{"concurrency": 2, "seed": 7, **kw})
    return [ev async for ev in transform(ws, task, s, limit=limit, cot=cot, use_filter=use_filter,
                                         text_interval=0.0)]


@pytest.mark.parametrize("mode", ["http500", "http500_text", "http500_empty", "http503", "close", "error_line",
                                  "cut", "no_done", "stall", "malformed_line", "blank_line"])
async def test_transient_failures_are_retried(mnli_ws, teacher_server, mode):
    """The client's fault matrix, against both backends' stand-ins (a blank line and a comment are legal in
    server-sent events, so the OpenAI-compatible stream needs no retry there)."""
    server = teacher_server()
    server.srv.inject(mode, times=1, seconds=1.0)
    events = await run_on(mnli_ws, server, limit=3, read_timeout=0.3, concurrency=1)
    f = finished(events)
    retried = not (mode == "blank_line" and server.backend == "openai")
    assert (f.done, f.failed, f.retries, f.call_failures) == (3, 0, int(retried), 0)
    assert server.srv.chat_requests == 3 + retried
    assert [e.attempts for e in events if isinstance(e, ExampleDone)] == [1 + retried, 1, 1]
    assert q(mnli_ws, "select count(*) from examples where status = 'pending'")[0][0] == 3


async def test_retries_used_up_then_next_run_retries(mnli_ws, standin):
    marker = json.loads(q(mnli_ws, "select data from rows r join retrievals t on t.row = r.id "
                                   "where t.rank = 2")[0][0])["premise"][:40]
    standin.inject("http503", times=10, match=marker)
    f = finished(await run(mnli_ws, standin, limit=3, retries=2))
    assert (f.done, f.failed) == (2, 1)
    status, reason, call_status, error = q(
        mnli_ws, "select e.status, e.reason, t.status, t.error from examples e join teacher_calls t "
                 "on t.key = e.call_key where e.status = 'failed'")[0]
    assert "after 3 attempt(s)" in reason and "HTTP 503" in reason and call_status == "failed"
    assert error.count("HTTP 503") == 3
    standin.clear_faults()
    f = finished(await run(mnli_ws, standin, limit=3))
    assert (f.done, f.failed, f.cached) == (1, 0, 2)
    assert q(mnli_ws, "select status, count(*) from examples group by 1") == [("pending", 3)]


@pytest.mark.parametrize(("mode", "reason"), [("bad_json", "not valid JSON (the reply was cut at num_predict)"),
                                              ("schema_violation", "lacks input"),
                                              ("off_label", "outside the label set")])
async def test_unusable_replies_are_failed_with_raw_kept(mnli_ws, teacher_server, mode, reason):
    server = teacher_server()
    server.srv.inject(mode)
    f = finished(await run_on(mnli_ws, server, limit=2, concurrency=1))
    assert (f.done, f.failed, f.retries, f.call_failures, f.complete) == (1, 1, 0, 0, True), \
        "an unusable reply is a result, not a fault"
    raw, why = q(mnli_ws, "select raw_response, reason from examples where status = 'failed'")[0]
    assert raw and reason in why
    f = finished(await run_on(mnli_ws, server, limit=2))
    assert f.cached == 2 and server.srv.chat_requests == 2, "a finished (if unusable) call is not repeated"


async def test_model_vanishing_mid_run_ends_the_run(mnli_ws, teacher_server):
    server = teacher_server()
    server.srv.inject("http404")
    with pytest.raises(EngineError, match="is not (installed on|served by) .* \\(it went away during the run"):
        await run_on(mnli_ws, server, limit=4, concurrency=1)


async def test_host_and_model_checks(mnli_ws, standin):
    with pytest.raises(EngineError) as exc:
        await run(mnli_ws, standin, limit=1, model="ghost:7b")
    assert str(exc.value).startswith(f"model ghost:7b is not installed on {standin.url} — `ollama pull ghost:7b`")
    assert "llama3.1:8b" in str(exc.value)
    with pytest.raises(EngineError) as exc:
        await run(mnli_ws, standin, limit=1, host="http://127.0.0.1:9", connect_timeout=1.0)
    assert str(exc.value) == ("Ollama is not reachable at http://127.0.0.1:9 — start it with `ollama serve` "
                              "or set OLLAMA_HOST")
    assert q(mnli_ws, "select count(*) from examples")[0][0] == 0
    assert finished(await run(mnli_ws, standin, limit=1, model="LLAMA3.1:8B")).done == 1


async def test_empty_pool_is_reported(workspace, standin):
    add_corpus_task(workspace, "mnli")
    with pytest.raises(EngineError, match="no retrieved rows.*rebase-tui retrieve mnli"):
        await run(workspace, standin)


async def test_duplicates_and_copies(workspace, standin):
    add_corpus_task(workspace, "mnli")
    add_rows(workspace, "mnli", [
        {"text": "A cat sleeps on the warm mat near the door"},
        {"text": "A cat sleeps on the warm mat near the door"},          # exact duplicate reply
        {"text": "a cat SLEEPS on the warm mat, near the door!"},       # near duplicate
        {"text": "Premise: Tickets are free for children and adults. "
                 "Hypothesis: Only children get free tickets."},                     # task example 3
        {"text": "Dogs bark loudly at the mail carrier every morning"},
    ])
    events = await run(workspace, standin, concurrency=1)
    f = finished(events)
    assert (f.done, f.duplicates) == (2, 3)
    reasons = {e.rank: e.reason for e in events if isinstance(e, ExampleDone)}
    assert reasons[2].startswith("exact duplicate of")
    assert reasons[3].startswith("near duplicate of")
    assert reasons[4] == "copy of the task's example 3"
    assert q(workspace, "select count(*) from examples where status = 'pending'")[0][0] == 2


async def test_chain_of_thought_task(workspace, standin):
    add_corpus_task(workspace, "boolean_expressions")
    add_rows(workspace, "boolean_expressions", [{"expr": f"True and not False or value {i} holds"}
                                                for i in range(3)])
    f = finished(await run(workspace, standin, "boolean_expressions"))
    assert f.done == 3
    schema = standin.requests("/api/chat")[0].body["format"]
    assert list(schema["properties"]) == ["input", "reasoning", "answer"]
    for output, reasoning in q(workspace, "select output, reasoning from examples"):
        assert reasoning and output.startswith(reasoning.rstrip(".")) and output.endswith(".")
        assert output.rsplit("The answer is ", 1)[1] in ("True.", "False.")
    # --cot off forces input/output (a new prompt hash: new calls)
    f = finished(await run(workspace, standin, "boolean_expressions", cot="off"))
    assert list(standin.requests("/api/chat")[-1].body["format"]["properties"]) == ["input", "output"]
    assert standin.chat_requests == 6


async def test_prompt_template_is_stored_editable_and_keyed(mnli_ws, standin):
    await run(mnli_ws, standin, limit=2)
    prompt = standin.requests("/api/chat")[0].body["messages"][0]["content"]
    assert "Task description: Given a premise" in prompt and "Example 3:" in prompt
    assert all(len(v) <= 251 for v in json.loads(prompt.split("long fields are cut):\n\n")[1].split("\n\n")[0])
               .values())
    with pytest.raises(EngineError, match="lacks"):
        prompts.set_template(mnli_ws, "mnli", "no placeholders here")
    prompts.set_template(mnli_ws, "mnli", "CUSTOM {instruction}\n{examples}\nRow: {row}\nJSON please.")
    assert prompts.get_template(mnli_ws, "mnli").startswith("CUSTOM")
    f = finished(await run(mnli_ws, standin, limit=2))
    assert f.cached == 0 and standin.chat_requests == 4
    assert standin.requests("/api/chat")[-1].body["messages"][0]["content"].startswith("CUSTOM Given")
    prompts.set_template(mnli_ws, "mnli", None)
    assert finished(await run(mnli_ws, standin, limit=2)).cached == 2


async def test_filter_pass(mnli_ws, standin):
    f = finished(await run(mnli_ws, standin, limit=10, use_filter=True))
    assert f.rejected > 0 and f.done == 10
    assert standin.chat_requests == 20
    rejected = q(mnli_ws, "select count(*) from examples where status = 'rejected' and reason like 'filter:%'")
    assert rejected[0][0] == f.rejected
    f2 = finished(await run(mnli_ws, standin, limit=10, use_filter=True))
    assert f2.cached == 10 and standin.chat_requests == 20
    # adding the filter later runs only the filter calls
    f3 = finished(await run(mnli_ws, standin, limit=14))
    assert f3.done == 4 and standin.chat_requests == 24
    await run(mnli_ws, standin, limit=14, use_filter=True)
    assert standin.chat_requests == 28


async def test_streamed_text_snapshots(mnli_ws, standin_factory):
    srv = standin_factory(token_delay=0.002)
    events = await run(mnli_ws, srv, limit=2, concurrency=1)
    texts = [e for e in events if isinstance(e, ExampleText) and e.rank == 1]
    final = q(mnli_ws, "select raw_response from examples where row = ?", [texts[0].row])[0][0]
    assert len(texts) > 5
    assert all(final.startswith(t.text) for t in texts)
    assert [len(t.text) for t in texts] == sorted(len(t.text) for t in texts)


async def test_closing_the_generator_keeps_finished_work(mnli_ws, standin_factory):
    srv = standin_factory(num_parallel=2, latency=0.05)
    gen = transform(mnli_ws, "mnli", settings(srv, concurrency=2), limit=20)
    seen = 0
    async for ev in gen:
        if isinstance(ev, ExampleDone):
            seen += 1
            if seen == 5:
                break
    await gen.aclose()
    stored = q(mnli_ws, "select count(*) from examples")[0][0]
    assert 5 <= stored <= 7
    f = finished(await run(mnli_ws, srv, limit=20))
    assert f.cached == stored and f.done + f.duplicates == 20 - stored
    assert q(mnli_ws, "select count(*) from examples")[0][0] == 20
    assert srv.chat_requests <= 20 + 2, "at most the calls in flight are lost"


async def test_failed_filter_calls_are_retried_next_run(mnli_ws, standin):
    standin.inject("http503", times=100, match="Is the candidate")
    events = await run(mnli_ws, standin, limit=3, use_filter=True, retries=0)
    assert finished(events).done == 3 and finished(events).rejected == 0
    assert any("filter call for row" in getattr(e, "message", "") for e in events)
    assert q(mnli_ws, "select count(*) from teacher_calls where status = 'failed'")[0][0] == 3
    assert q(mnli_ws, "select count(*) from examples where status = 'pending'")[0][0] == 3
    standin.clear_faults()
    before = standin.chat_requests
    await run(mnli_ws, standin, limit=3, use_filter=True)
    assert standin.chat_requests == before + 3, "only the three filter calls are made again"
    assert q(mnli_ws, "select count(*) from teacher_calls where status = 'failed'")[0][0] == 0
