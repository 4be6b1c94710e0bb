"""engine.teacher.client (settings, hosts, model checks, retries) against both backends' stand-ins, and
engine.teacher.prompts and engine.teacher.quality on their own."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from engine.config import load_config
from engine.errors import EngineError
from engine.tasks import Demonstration, Task, read_task_file
from engine.teacher import prompts
from engine.teacher.client import TeacherCallFailed, TeacherSettings, chat, list_models, open_backend
from engine.teacher.hosts import normalize_host
from engine.teacher.quality import DuplicateIndex, Unusable, normalise, parse_reply
from tests.conftest import corpus

MSGS = [{"role": "user", "content": 'Make an example from {"premise": "The dog runs fast in the park"}'}]
SCHEMA = {"type": "object", "properties": {"input": {"type": "string"}, "output": {"type": "string"}},
          "required": ["input", "output"]}


def task(name: str) -> Task:
    return read_task_file(corpus("tasks", f"{name}.json"))


async def call(server, messages=MSGS, schema=SCHEMA, sleep=asyncio.sleep, **kw):
    s = server.settings(**{"backoff": 0.001, "read_timeout": 2.0, **kw})
    backend = open_backend(s)
    try:
        return await chat(backend, s, messages, schema, sleep=sleep)
    finally:
        await backend.close()


# -- settings --------------------------------------------------------------------------------------
def test_settings_from_config_and_options(workspace):
    s = TeacherSettings.from_config(workspace.config, model="qwen2.5:0.5b", concurrency=None)
    assert (s.model, s.concurrency, s.retries, s.read_timeout, s.connect_timeout, s.backend, s.deadline) == \
        ("qwen2.5:0.5b", 2, 3, 300.0, 10.0, "ollama", 1200.0)
    assert s.options() == {"temperature": 0.7, "num_ctx": 4096, "num_predict": 1024}, "seed 0 means random"
    assert TeacherSettings(seed=5).options()["seed"] == 5
    assert TeacherSettings(backend="openai", seed=5).options() == {"temperature": 0.7, "max_tokens": 1024, "seed": 5}
    assert TeacherSettings(host="localhost:1234").url == "http://localhost:1234"
    assert TeacherSettings(host="gpu-box:8000", backend="openai").url == "http://gpu-box:8000/v1"
    with pytest.raises(EngineError, match="concurrency 0 is out of range"):
        TeacherSettings.from_config(workspace.config, concurrency=0)


@pytest.mark.parametrize(("overrides", "message", "fix"), [
    ({"teacher.temperature": "nan"}, "--temperature nan is out of range", "use a number from 0 to 2"),
    ({"teacher.temperature": "inf"}, "--temperature inf is out of range", "use a number from 0 to 2"),
    ({"teacher.temperature": -0.5}, "--temperature -0.5 is out of range", "use a number from 0 to 2"),
    ({"teacher.num_predict": -1}, "--num-predict -1 is out of range", "use a whole number from 1 to 1048576"),
    ({"teacher.num_ctx": 0}, "--num-ctx 0 is out of range", "use a whole number from 128 to 1048576"),
    ({"teacher.seed": -3}, "--seed -3 is out of range", "use a whole number from 0 to 2147483647"),
    ({"teacher.concurrency": 100000}, "--concurrency 100000 is out of range", "use a whole number from 1 to 1024"),
    ({"teacher.backend": "vllm"}, "--backend 'vllm' is not one of ollama, openai", "use ollama, or openai"),
    ({"teacher.host": "http://[::1"}, "teacher host 'http://[::1' is not a usable URL: Invalid IPv6 URL",
     "give it as http://HOST:PORT"),
    ({"teacher.host": "localhost:99999"}, "teacher host 'localhost:99999' is not a usable URL: the port 99999 "
     "is not a number from 1 to 65535", "give it as http://HOST:PORT"),
])
def test_nonsense_settings_are_refused_with_one_line(tmp_path, overrides, message, fix):
    config = load_config(None, overrides, environ={})
    with pytest.raises(EngineError) as exc:
        TeacherSettings.from_config(config)
    assert exc.value.message == message and exc.value.fix.startswith(fix)


def test_refusals_name_where_the_value_came_from(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[teacher]\nretries = 1000\n", encoding="utf-8")
    with pytest.raises(EngineError, match=r"^teacher.retries \(config.toml\) 1000 is out of range"):
        TeacherSettings.from_config(load_config(path, environ={}))
    path.write_text("[teacher]\ndeadline = nan\n", encoding="utf-8")
    with pytest.raises(EngineError, match=r"^teacher.deadline \(config.toml\) nan is out of range"):
        TeacherSettings.from_config(load_config(path, environ={}))
    with pytest.raises(EngineError, match=r"^temperature nan is out of range — use a number from 0 to 2$"):
        TeacherSettings.from_config(load_config(None, environ={}), temperature=float("nan"))   # a form field


def test_hosts_are_read_or_refused():
    ok = {"": "http://127.0.0.1:11434", ":11435": "http://127.0.0.1:11435", "https://h": "https://h:443",
          "gpu-box:11434": "http://gpu-box:11434", "http://[::1]:8": "http://[::1]:8", "HTTP://h:5/": "http://h:5"}
    for host, url in ok.items():
        assert normalize_host(host) == url, host
    assert normalize_host("", "openai") == "http://127.0.0.1:8000/v1"
    assert normalize_host("http://box:8080/v1/", "openai") == "http://box:8080/v1"
    assert normalize_host("box:1234/api/v1", "openai") == "http://box:1234/api/v1"
    for bad, why in {"http://[::1": "Invalid IPv6 URL", "h:99999": "the port 99999", "h:0": "the port 0",
                     "h:x1": "the port x1", "ftp://h": "the scheme 'ftp'", "h o": "spaces or control",
                     "h\x1b[2J": "spaces or control", "http://h?q=1": "a query or a fragment"}.items():
        with pytest.raises(EngineError, match=re.escape(why)):
            normalize_host(bad)


def test_the_host_follows_the_backend(tmp_path):
    env = {"OLLAMA_HOST": "http://ollama-box:11434"}
    assert TeacherSettings.from_config(load_config(None, environ=env)).url == "http://ollama-box:11434"
    s = TeacherSettings.from_config(load_config(None, {"teacher.backend": "openai"}, environ=env))
    assert s.url == "http://127.0.0.1:8000/v1", "OLLAMA_HOST names an Ollama server, not an OpenAI-compatible one"
    path = tmp_path / "config.toml"
    path.write_text('[teacher]\nbackend = "openai"\nhost = "http://gpu:8001/v1"\n', encoding="utf-8")
    assert TeacherSettings.from_config(load_config(path, environ=env)).url == "http://gpu:8001/v1"
    assert TeacherSettings.from_config(load_config(path, environ=env), backend="ollama").url == "http://gpu:8001/v1"


def test_the_api_key_comes_from_the_environment_only(monkeypatch):
    monkeypatch.setenv("REBASE_TEACHER_API_KEY", "sk-secret-123")
    s = TeacherSettings.from_config(load_config(None, environ={}))
    assert s.api_key == "sk-secret-123" and "sk-secret" not in repr(s) and "sk-secret" not in str(s.options())


# -- client (both backends) ---------------------------------------------------------------------------
async def test_list_and_check_model_ollama(standin):
    s = TeacherSettings(host=standin.url)
    assert [m.name for m in await list_models(s)][:2] == ["llama3.1:8b", "qwen2.5:0.5b"]
    backend = open_backend(s)
    try:
        assert (await backend.check_model("Qwen2.5:0.5B")).family == "qwen2"
        assert (await backend.check_model("all-minilm")).name == "all-minilm:latest"
        with pytest.raises(EngineError) as exc:
            await backend.check_model("mistral")
    finally:
        await backend.close()
    assert exc.value.message == f"model mistral is not installed on {s.url}"
    assert exc.value.fix.startswith("`ollama pull mistral` (installed: llama3.1:8b, qwen2.5:0.5b")


@pytest.mark.parametrize("flavor", ["vllm", "llamacpp"])
async def test_list_and_check_model_openai(openai_standin_factory, flavor):
    srv = openai_standin_factory(flavor=flavor)
    s = TeacherSettings(host=srv.base_url, backend="openai")
    models = await list_models(s)
    assert [m.name for m in models] == ["meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen2.5-0.5B-Instruct"]
    assert models[0].context == 8192 and len(models[0].digest) == 64 and models[0].family == flavor
    backend = open_backend(s)
    try:
        assert (await backend.check_model("qwen/qwen2.5-0.5b-instruct")).name == "Qwen/Qwen2.5-0.5B-Instruct"
        with pytest.raises(EngineError) as exc:
            await backend.check_model("mistral")
    finally:
        await backend.close()
    assert str(exc.value) == (f"model mistral is not served by {s.url} — pass --model with a served name (served: "
                              "meta-llama/Llama-3.1-8B-Instruct, Qwen/Qwen2.5-0.5B-Instruct), or start the server "
                              "with that model (`vllm serve mistral`)")


@pytest.mark.parametrize(("backend", "unreachable"), [
    ("ollama", "Ollama is not reachable at http://127.0.0.1:9 — start it with `ollama serve` or set OLLAMA_HOST"),
    ("openai", "the OpenAI-compatible server is not reachable at http://127.0.0.1:9/v1 — start it (`vllm serve "
               "MODEL` or `llama-server -m FILE`) or pass --host with its base URL"),
])
async def test_not_that_server_and_unreachable(standin, openai_standin_factory, backend, unreachable):
    other = standin.url if backend == "openai" else openai_standin_factory().url
    with pytest.raises(EngineError, match="answered 404 to /(api/tags|models).*it does not look like"):
        await list_models(TeacherSettings(host=other + "/nothing-here", backend=backend))
    with pytest.raises(EngineError) as exc:
        await list_models(TeacherSettings(host="http://127.0.0.1:9", connect_timeout=1.0, backend=backend))
    assert str(exc.value) == unreachable


async def test_a_refused_api_key_is_one_clear_line(openai_standin_factory, monkeypatch):
    srv = openai_standin_factory(api_key="sk-right")
    with pytest.raises(EngineError) as exc:
        await list_models(TeacherSettings(host=srv.base_url, backend="openai", api_key="sk-wrong"))
    assert str(exc.value) == (f"{srv.base_url} refused the request (HTTP 401: Unauthorized) — set "
                              "REBASE_TEACHER_API_KEY to a key the server accepts")
    assert "sk-wrong" not in str(exc.value)
    got = await list_models(TeacherSettings(host=srv.base_url, backend="openai", api_key="sk-right"))
    assert got and srv.requests("/v1/models")[-1].headers["Authorization"] == "Bearer sk-right"


async def test_chat_streams_and_reports_metrics(teacher_server):
    server = teacher_server()
    res = await call(server)
    assert res.done_reason == "stop" and res.attempts == 1 and res.errors == []
    assert res.metrics["eval_count"] > 0 and res.ttfb is not None and res.seconds >= res.ttfb
    assert json.loads(res.content)["input"]
    if server.backend == "openai":
        body = server.srv.requests("/v1/chat/completions")[0].body
        assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
        assert body["response_format"] == {"type": "json_schema",
                                           "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True}}
        assert body["max_tokens"] == 1024 and "num_ctx" not in json.dumps(body)
    else:
        body = server.srv.requests("/api/chat")[0].body
        assert body["format"] == SCHEMA and body["stream"] is True and body["think"] is False


async def test_chat_gives_up_after_retries_with_partial_text(teacher_server):
    server = teacher_server()
    server.srv.inject("error_line", times=10)
    with pytest.raises(TeacherCallFailed) as exc:
        await call(server, retries=2)
    assert exc.value.attempts == 3 and server.srv.chat_requests == 3
    assert exc.value.partial and exc.value.retryable and exc.value.kind == "server error mid-stream"
    assert all("mid-stream" in e for e in exc.value.errors)


async def test_chat_does_not_retry_a_4xx(standin, openai_standin_factory):
    from tests.fixtures.standin import Server

    with pytest.raises(TeacherCallFailed, match="HTTP 500") as exc:      # a server-side option error is a 5xx
        await call(Server(standin, "ollama", standin.url, "llama3.1:8b"), retries=1, schema="yaml")
    assert exc.value.attempts == 2 and exc.value.kind == "HTTP 500"
    with pytest.raises(TeacherCallFailed, match="HTTP 400") as exc:      # an embedding model cannot chat: final
        await call(Server(standin, "ollama", standin.url, "all-minilm"))
    assert not exc.value.retryable and exc.value.attempts == 1
    srv = openai_standin_factory()
    with pytest.raises(TeacherCallFailed, match="HTTP 400: messages: Field required") as exc:
        await call(Server(srv, "openai", srv.base_url, "meta-llama/Llama-3.1-8B-Instruct"), messages=[])
    assert not exc.value.retryable and exc.value.attempts == 1 and srv.chat_requests == 0


async def test_read_timeout_covers_queueing_and_backs_off(teacher_server):
    server = teacher_server(num_parallel=1, latency=0.6)
    sleeps: list[float] = []

    async def fake_sleep(d):
        sleeps.append(d)

    with pytest.raises(TeacherCallFailed, match="ReadTimeout") as exc:
        await call(server, read_timeout=0.3, retries=1, backoff=0.5, sleep=fake_sleep)
    assert exc.value.kind == "read timeout"
    assert len(sleeps) == 1 and 0.25 <= sleeps[0] <= 0.5, "exponential backoff with jitter"


async def test_concurrent_calls_share_slots(teacher_server):
    server = teacher_server(num_parallel=3, latency=0.1)
    s = server.settings()
    backend = open_backend(s)
    try:
        got = await asyncio.gather(*[chat(backend, s, [{"role": "user", "content": f"{{\"q\": \"{i} x\"}}"}],
                                          SCHEMA) for i in range(6)])
    finally:
        await backend.close()
    assert len(got) == 6 and server.srv.max_in_flight == 3


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
