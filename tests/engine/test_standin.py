"""The Ollama stand-in behaves like Ollama on the wire (checked through the real `ollama` client and raw sockets)."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import ollama
import pytest

from tests.ollama_standin import BUSY, RUNNER_ERROR, OllamaStandin, answer_for

SCHEMA = {
    "type": "object",
    "properties": {"input": {"type": "string"}, "output": {"type": "string", "enum": ["Yes", "No"]},
                   "n": {"type": "integer", "minimum": 1, "maximum": 3},
                   "tags": {"type": "array", "items": {"$ref": "#/$defs/Tag"}},
                   "opt": {"anyOf": [{"type": "null"}, {"type": "boolean"}]}, "c": {"const": "k"}},
    "required": ["input", "output", "n", "tags", "opt", "c"],
    "$defs": {"Tag": {"type": "string", "pattern": r"^\([A-Z]\)$"}},
}
MSGS = [{"role": "user", "content": 'Rewrite this row: {"premise": "A man plays a guitar on stage", "label": "1"}'}]


def client(srv: OllamaStandin, read: float = 5.0) -> ollama.Client:
    return ollama.Client(host=srv.url, timeout=httpx.Timeout(5.0, read=read), trust_env=False)


def raw_request(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            out += chunk
            if out.endswith(b"0\r\n\r\n"):
                break
    return out


def test_metadata_endpoints(standin):
    c = client(standin)
    models = c.list().models
    assert [m.model for m in models][:2] == ["llama3.1:8b", "qwen2.5:0.5b"]
    assert models[0].details.quantization_level == "Q4_K_M" and models[0].size > 0
    assert c.show("LLAMA3.1:8B").modelinfo["general.architecture"] == "llama"
    with pytest.raises(ollama.ResponseError) as exc:
        c.show("missing")
    assert exc.value.status_code == 404 and exc.value.error == "model 'missing:latest' not found"
    assert httpx.get(standin.url).text == "Ollama is running"
    assert httpx.get(f"{standin.url}/api/version").json()["version"].startswith("0.")
    r = httpx.get(f"{standin.url}/nope")
    assert (r.status_code, r.text, r.headers["content-type"].split(";")[0]) == (404, "404 page not found",
                                                                               "text/plain")
    assert httpx.get(f"{standin.url}/api/chat").status_code == 405
    assert c.ps().models == []
    vec = c.embed(model="all-minilm", input="hello").embeddings
    assert len(vec) == 1 and abs(sum(x * x for x in vec[0]) - 1) < 1e-6
    assert [p.status for p in c.pull("llama3.1:8b", stream=True)][-1] == "success"


def test_chat_stream_is_chunked_ndjson_with_final_metrics(standin):
    body = json.dumps({"model": "llama3.1:8b", "messages": MSGS, "format": SCHEMA}).encode()
    raw = raw_request(standin.port, b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                      % (len(body), body))
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head and b"application/x-ndjson" in head
    lines = []
    while rest:
        size_s, _, rest = rest.partition(b"\r\n")
        size = int(size_s, 16)
        if size == 0:
            break
        lines.append(rest[:size])
        rest = rest[size + 2:]
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in lines)
    objs = [json.loads(line) for line in lines]
    assert all(o["message"]["role"] == "assistant" for o in objs)
    final = objs[-1]
    assert final["done"] is True and final["done_reason"] == "stop" and not any(o["done"] for o in objs[:-1])
    for key in ("total_duration", "load_duration", "prompt_eval_count", "eval_count", "eval_duration"):
        assert isinstance(final[key], int)
    assert final["message"]["content"], "the final chunk carries the last piece"
    content = "".join(o["message"]["content"] for o in objs)
    value = json.loads(content)
    assert value["output"] in ("Yes", "No") and value["c"] == "k" and value["opt"] in (True, False)
    assert 1 <= value["n"] <= 3 and all(t.startswith("(") for t in value["tags"])
    assert set(value["input"].split()) <= set("A man plays a guitar on stage 1".split())


def test_non_stream_and_determinism(standin):
    c = client(standin)
    a = c.chat(model="llama3.1:8b", messages=MSGS, format=SCHEMA, options={"seed": 3, "temperature": 0})
    b = c.chat(model="llama3.1:8b", messages=MSGS, format=SCHEMA, options={"seed": 3, "temperature": 0})
    assert a.message.content == b.message.content and a.done and a.done_reason == "stop"
    streamed = "".join(p.message.content for p in c.chat(model="llama3.1:8b", messages=MSGS, format=SCHEMA,
                                                          stream=True, options={"seed": 3, "temperature": 0}))
    assert streamed == a.message.content
    short = c.chat(model="llama3.1:8b", messages=MSGS, options={"num_predict": 1})
    assert short.done_reason == "length"
    assert c.chat(model="llama3.1:8b", messages=[]).done_reason == "load"
    req = standin.requests("/api/chat")[0]
    assert req.body["stream"] is False and req.body["tools"] == []
    g = c.generate(model="llama3.1:8b", prompt="say something")
    assert g.response and g.context
    assert c.generate(model="llama3.1:8b", prompt="say something", raw=True).context is None
    with pytest.raises(ollama.ResponseError, match="raw mode does not support"):
        c.generate(model="llama3.1:8b", prompt="x", raw=True, system="be brief")
    streamed = list(c.generate(model="llama3.1:8b", prompt="say something", stream=True))
    assert streamed[-1].done and streamed[-1].context and "".join(p.response for p in streamed) == g.response


@pytest.mark.parametrize(("kwargs", "status", "text"), [
    ({"model": "ghost"}, 404, "model 'ghost' not found"),
    ({"model": "llama3.1:8b", "options": {"stop": "\n"}}, 500, 'option "stop" must be of type array'),
    ({"model": "llama3.1:8b", "think": True}, 400, '"llama3.1:8b" does not support thinking'),
    ({"model": "all-minilm"}, 400, '"all-minilm" does not support chat'),
])
def test_request_errors(standin, kwargs, status, text):
    with pytest.raises(ollama.ResponseError) as exc:
        client(standin).chat(messages=MSGS, **kwargs)
    assert exc.value.status_code == status and exc.value.error == text


def test_validation_errors_over_raw_http(standin):
    post = lambda body: httpx.post(f"{standin.url}/api/chat", content=body)  # noqa: E731
    assert post(b"").json() == {"error": "missing request body"}
    assert post(b"{bad").status_code == 400
    assert post(json.dumps({"messages": MSGS}).encode()).json() == {"error": "model is required"}
    r = post(json.dumps({"model": "llama3.1:8b", "messages": MSGS, "format": "yaml"}).encode())
    assert r.status_code == 500 and "invalid format" in r.json()["error"]
    r = post(json.dumps({"model": "llama3.1:8b", "messages": MSGS, "keep_alive": "3600"}).encode())
    assert r.status_code == 400


@pytest.mark.parametrize(("mode", "exc_type", "status"), [
    ("http500", ollama.ResponseError, 500),
    ("http500_text", ollama.ResponseError, 500),
    ("http500_empty", ollama.ResponseError, 500),
    ("http503", ollama.ResponseError, 503),
    ("http404", ollama.ResponseError, 404),
    ("close", httpx.RemoteProtocolError, None),
    ("error_line", ollama.ResponseError, -1),
    ("cut", httpx.RemoteProtocolError, None),
    ("malformed_line", json.JSONDecodeError, None),
    ("blank_line", json.JSONDecodeError, None),
])
def test_faults_surface_as_the_real_client_errors(standin, mode, exc_type, status):
    standin.inject(mode)
    c = client(standin)
    seen = []
    with pytest.raises(exc_type) as exc:
        for part in c.chat(model="llama3.1:8b", messages=MSGS, format=SCHEMA, stream=True):
            seen.append(part)
    if status is not None:
        assert exc.value.status_code == status
    if mode == "http503":
        assert exc.value.error == BUSY
    if mode == "error_line":
        assert exc.value.error == RUNNER_ERROR and seen, "earlier chunks arrive before the error"
    # the fault is used up: the next call succeeds
    assert json.loads(c.chat(model="llama3.1:8b", messages=MSGS, format=SCHEMA).message.content)


def test_content_faults_and_no_done(standin):
    c = client(standin)
    standin.inject("no_done")
    parts = list(c.chat(model="llama3.1:8b", messages=MSGS, format=SCHEMA, stream=True))
    assert parts and not any(p.done for p in parts)
    standin.inject("bad_json")
    parts = list(c.chat(model="llama3.1:8b", messages=MSGS, format=SCHEMA, stream=True))
    assert parts[-1].done_reason == "length"
    with pytest.raises(json.JSONDecodeError):
        json.loads("".join(p.message.content for p in parts))
    standin.inject("schema_violation")
    value = json.loads(c.chat(model="llama3.1:8b", messages=MSGS, format=SCHEMA).message.content)
    assert "input" not in value


def test_fault_matching_only_hits_matching_prompts(standin):
    c = client(standin)
    standin.inject("http500", times=1, match="SPECIAL")
    assert c.chat(model="llama3.1:8b", messages=MSGS).done
    with pytest.raises(ollama.ResponseError):
        c.chat(model="llama3.1:8b", messages=[{"role": "user", "content": "a SPECIAL one"}])


def test_stall_past_the_read_timeout(standin):
    standin.inject("stall", seconds=1.0)
    c = client(standin, read=0.3)
    t0 = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        list(c.chat(model="llama3.1:8b", messages=MSGS, stream=True))
    assert time.monotonic() - t0 < 0.9


def test_parallel_slots_queue_without_bytes(standin_factory):
    srv = standin_factory(num_parallel=2, latency=0.4)
    clients = [client(srv) for _ in range(4)]
    threads = [threading.Thread(target=c.chat, kwargs={"model": "llama3.1:8b", "messages": MSGS}) for c in clients]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    deadline = time.monotonic() + 0.35
    while srv.waiting < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert srv.waiting == 2 and srv.in_flight == 2, "two requests run, two wait for a slot"
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    assert srv.max_in_flight == 2 and 0.78 < elapsed < 1.6
    assert srv.chat_completed == 4 and srv.chat_requests == 4


def test_hold_and_dropped_waiters(standin_factory):
    srv = standin_factory(num_parallel=1)
    c = client(srv)
    c.chat(model="llama3.1:8b", messages=MSGS)
    srv.hold_after(1)
    with pytest.raises(httpx.ReadTimeout):
        client(srv, read=0.3).chat(model="llama3.1:8b", messages=MSGS)
    srv.release()
    time.sleep(0.2)
    assert srv.chat_completed == 1 and srv.dropped == 1, "a waiter whose client left never generates"
    assert c.chat(model="llama3.1:8b", messages=MSGS).done
    deadline = time.monotonic() + 2      # the server counts a generation once its last byte went out
    while srv.chat_completed < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert srv.chat_completed == 2


def test_answer_is_drawn_from_the_row():
    text = answer_for("m", MSGS, {"type": "object", "properties": {"input": {"type": "string"}},
                                  "required": ["input"]}, {})
    words = json.loads(text)["input"].split()
    assert words and set(words) <= {"A", "man", "plays", "a", "guitar", "on", "stage", "1"}


def test_max_queue_applies_while_loading(standin_factory):
    srv = standin_factory(num_parallel=1, load_time=0.5, max_queue=2)
    errors, oks = [], []

    def call():
        try:
            oks.append(client(srv).chat(model="llama3.1:8b", messages=MSGS))
        except ollama.ResponseError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join()
    assert [e.status_code for e in errors] == [503] and errors[0].error == BUSY
    loads = [o.load_duration for o in oks if o.load_duration]
    assert len(oks) == 3 and len(loads) == 1 and loads[0] >= 400_000_000, "one call reports the model load"
    assert client(srv).chat(model="llama3.1:8b", messages=MSGS).load_duration is None, "loaded: no queue limit"


# -- the OpenAI-compatible stand-in -------------------------------------------------------------------
def _sse_events(raw: bytes) -> list[str]:
    """The lines of a chunked SSE response body, chunk framing removed."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    body = b""
    while rest:
        size_s, _, rest = rest.partition(b"\r\n")
        size = int(size_s, 16)
        if size == 0:
            break
        body += rest[:size]
        rest = rest[size + 2:]
    return body.decode().split("\n")


def _post(port: int, path: str, obj) -> bytes:
    body = json.dumps(obj).encode()
    return raw_request(port, b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (path.encode(), len(body), body))


OPENAI_BODY = {"model": "meta-llama/Llama-3.1-8B-Instruct", "messages": MSGS, "seed": 3, "temperature": 0,
               "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": SCHEMA}}}


@pytest.mark.parametrize("flavor", ["vllm", "llamacpp"])
def test_openai_models_listing(openai_standin_factory, flavor):
    srv = openai_standin_factory(flavor=flavor)
    doc = httpx.get(f"{srv.base_url}/models").json()
    assert doc["object"] == "list" and [m["id"] for m in doc["data"]][0] == "meta-llama/Llama-3.1-8B-Instruct"
    first = doc["data"][0]
    assert first["owned_by"] == ("vllm" if flavor == "vllm" else "llamacpp")
    assert ("max_model_len" in first) == (flavor == "vllm") and ("meta" in first) == (flavor == "llamacpp")


def test_openai_stream_is_server_sent_events(openai_standin_factory):
    srv = openai_standin_factory()
    raw = _post(srv.port, "/v1/chat/completions", {**OPENAI_BODY, "stream": True,
                                                   "stream_options": {"include_usage": True}})
    assert b"Transfer-Encoding: chunked" in raw and b"text/event-stream" in raw
    lines = _sse_events(raw)
    assert lines[-3:] == ["data: [DONE]", "", ""] and all(x == "" or x.startswith("data: ") for x in lines)
    events = [json.loads(x[6:]) for x in lines if x.startswith("data: {")]
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(e["object"] == "chat.completion.chunk" and e["id"] == events[0]["id"] for e in events)
    assert events[-2]["choices"][0]["finish_reason"] == "stop" and events[-1]["choices"] == []
    usage = events[-1]["usage"]
    assert usage["completion_tokens"] == len(events) - 3 and usage["total_tokens"] == usage["prompt_tokens"] + \
        usage["completion_tokens"]
    content = "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-1])
    value = json.loads(content)
    assert value["output"] in ("Yes", "No") and value["c"] == "k" and all(t.startswith("(") for t in value["tags"])
    plain = httpx.post(f"{srv.base_url}/chat/completions", json=OPENAI_BODY).json()
    assert plain["object"] == "chat.completion" and plain["choices"][0]["message"]["content"] == content, \
        "streamed and plain answers agree for the same seed"
    assert plain["choices"][0]["finish_reason"] == "stop" and plain["usage"]["completion_tokens"] > 0
    short = httpx.post(f"{srv.base_url}/chat/completions", json={**OPENAI_BODY, "max_tokens": 1}).json()
    assert short["choices"][0]["finish_reason"] == "length"


@pytest.mark.parametrize(("flavor", "body", "status", "error"), [
    ("vllm", {"model": "ghost"}, 404, {"message": "The model `ghost` does not exist.", "type": "NotFoundError",
                                       "param": None, "code": 404}),
    ("vllm", {"messages": []}, 400, {"message": "messages: Field required", "type": "BadRequestError",
                                     "param": None, "code": 400}),
    ("llamacpp", {"messages": []}, 400, {"code": 400, "message": "'messages' is required",
                                         "type": "invalid_request_error"}),
    ("vllm", {"max_tokens": 0}, 400, {"message": "max_tokens must be at least 1, got 0.", "type": "BadRequestError",
                                      "param": None, "code": 400}),
    ("llamacpp", {"response_format": {"type": "yaml"}}, 400, {
        "code": 400, "type": "invalid_request_error",
        "message": 'response_format type must be one of "text", "json_object" or "json_schema", but got: yaml'}),
])
def test_openai_request_errors_have_each_servers_shape(openai_standin_factory, flavor, body, status, error):
    srv = openai_standin_factory(flavor=flavor)
    r = httpx.post(f"{srv.base_url}/chat/completions", json={**OPENAI_BODY, **body})
    assert r.status_code == status and r.json() == {"error": error}
    assert srv.chat_requests == 0


def test_openai_schema_refusal_key_and_json_mode(openai_standin_factory):
    srv = openai_standin_factory(flavor="llamacpp", schemas=False, api_key="k1")
    url = f"{srv.base_url}/chat/completions"
    r = httpx.post(url, json=OPENAI_BODY)
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    auth = {"Authorization": "Bearer k1"}
    r = httpx.post(url, json=OPENAI_BODY, headers=auth)
    assert r.status_code == 400 and "but got: json_schema" in r.json()["error"]["message"]
    told = [{"role": "user", "content": MSGS[0]["content"] + "\nFollow this JSON schema: " + json.dumps(SCHEMA)}]
    r = httpx.post(url, json={**OPENAI_BODY, "messages": told, "response_format": {"type": "json_object"}},
                   headers=auth)
    value = json.loads(r.json()["choices"][0]["message"]["content"])
    assert set(value) == set(SCHEMA["properties"]), "a schema written in the prompt is followed"
    assert set(value["input"].split()) <= set("A man plays a guitar on stage 1".split()), "content from the row"


@pytest.mark.parametrize(("flavor", "error_line"), [("vllm", 'data: {"error":{'), ("llamacpp", "error: {")])
def test_openai_mid_stream_error_shapes(openai_standin_factory, flavor, error_line):
    srv = openai_standin_factory(flavor=flavor)
    srv.inject("error_line")
    lines = _sse_events(_post(srv.port, "/v1/chat/completions", {**OPENAI_BODY, "stream": True}))
    err = next(x for x in lines if x.startswith(error_line))
    assert "engine core died" in err and lines[-3:] == ["data: [DONE]", "", ""]


@pytest.mark.parametrize("kind", ["ollama", "openai"])
def test_runaway_faults_stop_once_the_client_leaves(standin, openai_standin_factory, kind):
    srv = standin if kind == "ollama" else openai_standin_factory()
    path = "/api/chat" if kind == "ollama" else "/v1/chat/completions"
    body = {"model": "llama3.1:8b", "messages": MSGS} if kind == "ollama" else {**OPENAI_BODY, "stream": True}
    srv.inject("trickle", seconds=0.01)
    with httpx.stream("POST", srv.url + path, json=body, timeout=5) as r:
        got, t0 = b"", time.monotonic()
        for chunk in r.iter_raw():
            got += chunk
            if got.count(b"x") > 20:
                break
    assert time.monotonic() - t0 > 0.15, "one byte at a time, never finishing the line"
    assert got.rstrip(b"x").endswith(b'"content":"'), "the line never ends"
    time.sleep(0.3)
    sent = srv.bytes_sent
    time.sleep(0.3)
    assert srv.bytes_sent == sent, "the stand-in stops once the client is gone"
