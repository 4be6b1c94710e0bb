"""engine.teacher.client (client, checks, retries), engine.teacher.prompts and engine.teacher.quality, on their own."""

from __future__ import annotations

import asyncio

import pytest

from engine.errors import EngineError
from engine.tasks import Demonstration, Task, read_task_file
from engine.teacher import prompts
from engine.teacher.client import (
    TeacherCallFailed,
    TeacherSettings,
    chat,
    check_model,
    list_models,
    make_client,
)
from engine.teacher.quality import DuplicateIndex, Unusable, normalise, parse_reply
from tests.conftest import corpus

MSGS = [{"role": "user", "content": 'Make an example from {"premise": "The dog runs fast in the park"}'}]
SCHEMA = {"type": "object", "properties": {"input": {"type": "string"}, "output": {"type": "string"}},
          "required": ["input", "output"]}


def task(name: str) -> Task:
    return read_task_file(corpus("tasks", f"{name}.json"))


def settings(srv, **kw) -> TeacherSettings:
    return TeacherSettings(**{"host": srv.url, "model": "llama3.1:8b", "backoff": 0.001, "read_timeout": 2.0, **kw})


async def call(srv, messages=MSGS, schema=SCHEMA, **kw):
    s = settings(srv, **kw)
    async with make_client(s) as client:
        return await chat(client, s, messages, schema)


# -- settings --------------------------------------------------------------------------------------
def test_settings_from_config_and_options(workspace):
    s = TeacherSettings.from_config(workspace.config, model="qwen2.5:0.5b", concurrency=None)
    assert (s.model, s.concurrency, s.retries, s.read_timeout, s.connect_timeout) == ("qwen2.5:0.5b", 2, 3, 300.0,
                                                                                        10.0)
    assert s.options() == {"temperature": 0.7, "num_ctx": 4096, "num_predict": 1024}, "seed 0 means random"
    assert TeacherSettings(seed=5).options()["seed"] == 5
    assert TeacherSettings(host="localhost:1234").url == "http://localhost:1234"
    with pytest.raises(EngineError, match="concurrency 0 is below 1"):
        TeacherSettings.from_config(workspace.config, concurrency=0)


# -- client ----------------------------------------------------------------------------------------
async def test_list_and_check_model(standin):
    s = settings(standin)
    async with make_client(s) as client:
        models = await list_models(client, s.url)
        assert [m.name for m in models][:2] == ["llama3.1:8b", "qwen2.5:0.5b"]
        assert (await check_model(client, s.url, "Qwen2.5:0.5B")).family == "qwen2"
        assert (await check_model(client, s.url, "all-minilm")).name == "all-minilm:latest"
        with pytest.raises(EngineError) as exc:
            await check_model(client, s.url, "mistral")
    assert exc.value.message == f"model mistral is not installed on {s.url}"
    assert exc.value.fix.startswith("`ollama pull mistral` (installed: llama3.1:8b, qwen2.5:0.5b")


async def test_not_ollama_and_unreachable(standin):
    s = TeacherSettings(host=standin.url + "/nothing-here")
    async with make_client(s) as client:
        with pytest.raises(EngineError, match="answered 404 to /api/tags"):
            await list_models(client, s.url)
    s = TeacherSettings(host="http://127.0.0.1:9", connect_timeout=1.0)
    async with make_client(s) as client:
        with pytest.raises(EngineError, match="^Ollama is not reachable at http://127.0.0.1:9 — start it"):
            await list_models(client, s.url)


async def test_chat_streams_and_reports_metrics(standin):
    res = await call(standin)
    assert res.done_reason == "stop" and res.attempts == 1 and res.errors == []
    assert res.metrics["eval_count"] > 0 and res.ttfb is not None and res.seconds >= res.ttfb
    body = standin.requests("/api/chat")[0].body
    assert body["format"] == SCHEMA and body["stream"] is True


async def test_chat_gives_up_after_retries_with_partial_text(standin):
    standin.inject("error_line", times=10)
    with pytest.raises(TeacherCallFailed) as exc:
        await call(standin, retries=2)
    assert exc.value.attempts == 3 and standin.chat_requests == 3
    assert exc.value.partial and exc.value.retryable
    assert all("error line mid-stream" in e for e in exc.value.errors)


async def test_chat_does_not_retry_a_4xx(standin):
    with pytest.raises(TeacherCallFailed, match="invalid request") as exc:
        await call(standin, schema="yaml")          # refused by the client itself: nothing is sent
    assert not exc.value.retryable and exc.value.attempts == 1 and standin.chat_requests == 0
    with pytest.raises(TeacherCallFailed, match="HTTP 500") as exc:
        await call(standin, retries=1, num_predict="x")   # a server-side option error is a 5xx: retried
    assert exc.value.attempts == 2
    with pytest.raises(TeacherCallFailed, match="HTTP 400") as exc:
        await call(standin, model="all-minilm")     # an embedding model cannot chat: 400, final
    assert not exc.value.retryable and exc.value.attempts == 1


async def test_read_timeout_covers_queueing_and_backs_off(standin_factory):
    srv = standin_factory(num_parallel=1, latency=0.6)
    sleeps: list[float] = []

    async def fake_sleep(d):
        sleeps.append(d)

    s = settings(srv, read_timeout=0.3, retries=1, backoff=0.5)
    async with make_client(s) as client:
        with pytest.raises(TeacherCallFailed, match="ReadTimeout"):
            await chat(client, s, MSGS, SCHEMA, sleep=fake_sleep)
    assert len(sleeps) == 1 and 0.25 <= sleeps[0] <= 0.5, "exponential backoff with jitter"


async def test_concurrent_calls_share_slots(standin_factory):
    srv = standin_factory(num_parallel=3, latency=0.1)
    s = settings(srv)
    async with make_client(s) as client:
        got = await asyncio.gather(*[chat(client, s, [{"role": "user", "content": f"{{\"q\": \"{i} x\"}}"}],
                                          SCHEMA) for i in range(6)])
    assert len(got) == 6 and srv.max_in_flight == 3


# -- prompts ---------------------------------------------------------------------------------------
def test_label_sets_and_schemas():
    assert prompts.label_set(task("mnli"), False).values == ("Neutral", "Entailment", "Contradiction")
    assert prompts.label_set(task("web_of_lies"), True).values == ("Yes", "No")
    assert prompts.label_set(task("boolean_expressions"), True).values == ("False", "True")
    assert prompts.label_set(task("temporal_sequences"), True).pattern == r"^\([A-Z]\)$"
    for name in ("squad", "object_counting", "word_sorting", "mconala"):
        t = task(name)
        assert prompts.label_set(t, prompts.resolve_cot(t, "auto")) is None, name
    only_no = Task("t", "i", (Demonstration("a", "No"), Demonstration("b", "No")))
    assert prompts.label_set(only_no, False).canonical("yes") == "Yes", "a known pair is completed"
    s = prompts.output_schema(task("ruin_names"), True)
    assert s["properties"]["answer"] == {"type": "string", "pattern": r"^\([A-Z]\)$"}
    assert s["required"] == ["input", "reasoning", "answer"]
    assert prompts.resolve_cot(task("mnli"), "on") and not prompts.resolve_cot(task("ruin_names"), "off")
    with pytest.raises(EngineError, match="--cot 'maybe'"):
        prompts.resolve_cot(task("mnli"), "maybe")


def test_prompt_rendering_and_hash():
    t = task("mconala")
    row = {"text": "x" * 400, "code": "print({'a': 1})", "empty": "", "n": 3}
    text = prompts.transform_messages(prompts.DEFAULT_TEMPLATE, t, row)[0]["content"]
    assert t.instruction in text and all(e.output in text for e in t.examples)
    assert "x" * 250 + "…" in text and "x" * 251 not in text, "fields cut to 250 characters"
    assert "print({'a': 1})" in text and '"empty"' not in text
    assert prompts.fill("{{literal}} {row}", row="{{kept}}") == "{literal} {{kept}}"
    h = prompts.prompt_hash(prompts.DEFAULT_TEMPLATE, t, prompts.output_schema(t, False))
    assert h == prompts.prompt_hash(prompts.DEFAULT_TEMPLATE, t, prompts.output_schema(t, False))
    assert h != prompts.prompt_hash(prompts.DEFAULT_TEMPLATE + " ", t, prompts.output_schema(t, False))
    assert h != prompts.prompt_hash(prompts.DEFAULT_TEMPLATE, t, prompts.output_schema(t, True))
    assert prompts.compose_output("Because A and B", "(C).") == "Because A and B. The answer is (C)."


# -- quality ---------------------------------------------------------------------------------------
def test_parse_reply_rules():
    labels = prompts.label_set(task("mnli"), False)
    p = parse_reply('{"input": " Premise: a. Hypothesis: b. ", "output": "neutral"}', cot=False, labels=labels)
    assert (p.input, p.output) == ("Premise: a. Hypothesis: b.", "Neutral")
    cases = {
        '{"input": "a", "output": "Maybe"}': "outside the label set",
        '{"input": "", "output": "Neutral"}': "empty input",
        '{"input": "a"}': "lacks output",
        '{"input": 3, "output": "Neutral"}': "input must be text",
        '["a"]': "not a JSON object",
        '{"input": "a", "out': "not valid JSON",
        '{"input": "' + "a" * 5000 + '", "output": "Neutral"}': "over-long input (5000 chars)",
    }
    for content, why in cases.items():
        with pytest.raises(Unusable, match=why.replace("(", r"\(").replace(")", r"\)")):
            parse_reply(content, cot=False, labels=labels)
    cot = parse_reply('{"input": "q", "reasoning": "x is y", "answer": "(B)"}', cot=True,
                      labels=prompts.LabelSet(pattern=r"^\([A-Z]\)$"))
    assert cot.output == "x is y. The answer is (B)." and cot.reasoning == "x is y"


def test_duplicate_index():
    d = DuplicateIndex(task("mnli"))
    assert d.check("Premise: Tickets are free for children and adults.  Hypothesis: only children get free "
                   "tickets", "x") == \
        "copy of the task's example 3"
    d.add("The cat sat.", "Neutral", "#1")
    assert d.check("The cat sat.", "Neutral") == "exact duplicate of #1"
    assert d.check("the CAT, sat!", "Entailment") == "near duplicate of #1"
    assert d.check("The dog sat.", "Neutral") is None
    assert normalise("Ｈｅｌｌｏ,   World!") == "hello world"
