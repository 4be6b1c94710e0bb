"""engine.teacher.transform on the OpenAI-compatible backend (vLLM and llama.cpp stand-ins): schemas in
response_format and the JSON-mode fallback announced once, the cache shared by both backends without mixing
them (Ollama keys unchanged), the API key never stored, streaming, the filter pass and regeneration."""

from __future__ import annotations

import hashlib
import json

import pytest

from engine import review
from engine.events import Log
from engine.teacher import prompts
from engine.teacher.client import TeacherSettings
from engine.teacher.regenerate import regenerate_one
from engine.teacher.transform import ExampleText, transform
from rebase_tui.cli import main
from tests.engine.test_transform import add_corpus_task, finished, q
from tests.fixtures.standin import pool_from_datastore
from tests.openai_standin import ServedModel

MODEL = "meta-llama/Llama-3.1-8B-Instruct"


@pytest.fixture
def mnli_ws(workspace):
    add_corpus_task(workspace, "mnli")
    pool_from_datastore(workspace, "mnli", ["corpus__nli-pairs", "science_entailment"], 12)
    return workspace


def settings(srv, **kw) -> TeacherSettings:
    base = {"host": srv.base_url, "model": MODEL, "backend": "openai", "concurrency": 2, "backoff": 0.01,
            "read_timeout": 5.0, "seed": 7}
    return TeacherSettings(**{**base, **kw})


async def run(ws, srv, limit=6, use_filter=False, **kw):
    return [ev async for ev in transform(ws, "mnli", settings(srv, **kw), limit=limit, text_interval=0.0,
                                         use_filter=use_filter)]


@pytest.mark.parametrize("flavor", ["vllm", "llamacpp"])
async def test_examples_from_an_openai_compatible_server(mnli_ws, openai_standin_factory, flavor):
    srv = openai_standin_factory(flavor=flavor, num_parallel=2, token_delay=0.001)
    events = await run(mnli_ws, srv)
    f = finished(events)
    assert (f.done, f.failed, f.call_failures, f.complete) == (6, 0, 0, True)
    assert any(isinstance(e, ExampleText) for e in events), "the reply streams into the view"
    body = srv.requests("/v1/chat/completions")[0].body
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["output"]["enum"] == ["Neutral", "Entailment", "Contradiction"]
    assert (body["temperature"], body["max_tokens"], body["seed"], body["stream"]) == (0.7, 1024, 7, True)
    got = q(mnli_ws, "select output, teacher_model, teacher_digest, options, tokens from examples")
    for output, model, digest, options, tokens in got:
        assert output in ("Neutral", "Entailment", "Contradiction") and model == MODEL and len(digest) == 64
        assert json.loads(options) == {"temperature": 0.7, "max_tokens": 1024, "seed": 7, "backend": "openai"}
        assert json.loads(tokens)["eval_count"] > 0, "usage from the stream's last chunk"
    assert finished(await run(mnli_ws, srv)).cached == 6 and srv.chat_requests == 6


@pytest.mark.parametrize("flavor", ["vllm", "llamacpp"])
async def test_a_server_that_rejects_schemas_gets_json_mode_once(mnli_ws, openai_standin_factory, flavor):
    srv = openai_standin_factory(flavor=flavor, schemas=False, num_parallel=2)
    events = await run(mnli_ws, srv)
    f = finished(events)
    assert (f.done, f.call_failures) == (6, 0), "the same parser accepts the JSON-mode replies"
    notes = [e.message for e in events if isinstance(e, Log) and "JSON mode" in e.message]
    assert len(notes) == 1 and "does not accept a JSON schema in response_format" in notes[0]
    formats = [r.body["response_format"]["type"] for r in srv.requests("/v1/chat/completions")]
    assert formats[0] == "json_schema" and formats.count("json_object") == 6
    assert formats.count("json_schema") <= 2, "only the calls already in flight were refused"
    prompt = srv.requests("/v1/chat/completions")[-1].body["messages"][-1]["content"]
    assert prompt.endswith(json.dumps(prompts.output_schema(mnli_ws_task(mnli_ws), False)))


def mnli_ws_task(ws):
    from engine.tasks import resolve_task

    return resolve_task(ws, "mnli")


async def test_both_backends_share_the_cache_without_mixing(mnli_ws, standin, openai_standin_factory):
    """Ollama keys are the keys made before there were backends; the same model name on the other backend is
    a different call."""
    ollama = TeacherSettings(host=standin.url, model="llama3.1:8b", seed=7, backoff=0.01)
    assert finished([ev async for ev in transform(mnli_ws, "mnli", ollama, limit=3)]).done == 3
    phash = q(mnli_ws, "select distinct prompt_hash from examples")[0][0]
    rows = [r for (r,) in q(mnli_ws, "select row from examples order by row")]
    old_keys = {hashlib.sha256(json.dumps(["transform", "mnli", r, phash, "llama3.1:8b", ollama.options()],
                                          sort_keys=True).encode()).hexdigest()[:32] for r in rows}
    assert {k for (k,) in q(mnli_ws, "select key from teacher_calls")} == old_keys
    srv = openai_standin_factory(models=[ServedModel("llama3.1:8b")])
    f = finished(await run(mnli_ws, srv, limit=3, model="llama3.1:8b"))
    assert (f.cached, f.done + f.duplicates, srv.chat_requests) == (0, 3, 3)
    assert finished([ev async for ev in transform(mnli_ws, "mnli", ollama, limit=3)]).cached == 3
    assert finished(await run(mnli_ws, srv, limit=3, model="llama3.1:8b")).cached == 3 and srv.chat_requests == 3


async def test_the_api_key_is_sent_and_never_stored(mnli_ws, openai_standin_factory, monkeypatch, capsys):
    secret = "sk-do-not-store-8c1f"
    srv = openai_standin_factory(api_key=secret)
    monkeypatch.setenv("REBASE_TEACHER_API_KEY", secret)
    s = TeacherSettings.from_config(mnli_ws.config, backend="openai", host=srv.base_url, model=MODEL)
    f = finished([ev async for ev in transform(mnli_ws, "mnli", s, limit=2)])
    assert f.done == 2
    assert all(r.headers["Authorization"] == f"Bearer {secret}" for r in srv.requests())
    stored = b"".join(p.read_bytes() for p in mnli_ws.path.rglob("*") if p.is_file())
    assert secret.encode() not in stored, "the key is in no file of the workspace"
    assert main(["info", "--json", "--no-ollama", "-w", str(mnli_ws.path)]) in (0, 2)
    assert secret not in capsys.readouterr().out
    monkeypatch.setenv("REBASE_TEACHER_API_KEY", "sk-wrong")
    s = TeacherSettings.from_config(mnli_ws.config, backend="openai", host=srv.base_url, model=MODEL)
    with pytest.raises(Exception, match="refused the request \\(HTTP 401") as exc:
        [ev async for ev in transform(mnli_ws, "mnli", s, limit=3)]
    assert "sk-wrong" not in str(exc.value)


async def test_filter_pass_and_regeneration(mnli_ws, openai_standin_factory):
    srv = openai_standin_factory()
    f = finished(await run(mnli_ws, srv, use_filter=True))
    assert f.done == 6 and srv.chat_requests == 12 and f.rejected > 0
    filter_body = srv.requests("/v1/chat/completions")[-1].body
    assert filter_body["response_format"]["json_schema"]["schema"] == prompts.FILTER_SCHEMA
    old = next(e for e in review.list_examples(mnli_ws, "mnli") if e.status == "pending")
    got = await regenerate_one(mnli_ws, "mnli", old.id, settings(srv))
    assert (got.status, got.replaced, got.slot) == ("pending", True, 1) and srv.chat_requests == 13
    assert srv.requests("/v1/chat/completions")[-1].body["seed"] == 8
