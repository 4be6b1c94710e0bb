"""The OpenAI-compatible chat API as a teacher backend (vLLM, llama.cpp's ``llama-server``, LM Studio):
``GET /models`` lists the served models, ``POST /chat/completions`` streams server-sent events.

The answer schema goes in ``response_format`` (``{"type": "json_schema", "json_schema": {...}}``), the same
schema the Ollama path sends as ``format``. A server that rejects schemas there (older llama.cpp builds, or a
schema feature its grammar engine lacks) gets JSON mode instead (``{"type": "json_object"}``, with the schema
written into the prompt so the model knows the fields); replies still go through the same parser, which checks
every field. The switch is made once per backend and announced once through ``notice``.

A stream is complete only with ``data: [DONE]``. An error event mid-stream (vLLM sends ``data: {"error":
...}``, llama.cpp an ``error: {...}`` field), an event that is not JSON and a stream that ends without
``[DONE]`` are broken attempts, worth another. ``num_ctx`` is not sent: such a server fixes its context length
when it starts.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import TYPE_CHECKING, Any

from engine.errors import EngineError
from engine.teacher.backend import (
    BROKEN_STREAM,
    SERVER_ERROR,
    Attempt,
    AttemptFailed,
    Backend,
    ModelInfo,
    Reply,
)

if TYPE_CHECKING:
    from engine.teacher.client import TeacherSettings

SCHEMA_WORDS = ("response_format", "json_schema", "schema", "grammar")


class SchemaRejected(Exception):
    """The server refused the schema in ``response_format``."""


def _fingerprint(entry: dict[str, Any]) -> str:
    ident = {k: entry.get(k) for k in ("id", "root", "owned_by", "meta")}
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()


def _params(n: Any) -> str:
    if not isinstance(n, int | float) or n <= 0:
        return ""
    return f"{n / 1e9:.1f}B" if n >= 1e9 else f"{n / 1e6:.0f}M"


def with_schema_in_prompt(messages: list[dict[str, str]], schema: dict[str, Any]) -> list[dict[str, str]]:
    """The messages with the answer schema spelled out at the end of the last one (JSON mode enforces only
    "some JSON object": the model needs to be told which fields)."""
    note = "\n\nAnswer with one JSON object that follows this JSON schema:\n" + json.dumps(schema, ensure_ascii=False)
    return [*messages[:-1], {**messages[-1], "content": messages[-1]["content"] + note}]


class OpenAIBackend(Backend):
    name = "openai"
    server = "an OpenAI-compatible server"
    models_path = "/models"

    json_mode = False       # set once the server rejected a schema in response_format

    def parse_models(self, doc: Any) -> list[ModelInfo]:
        out = []
        for m in doc["data"]:
            meta = m.get("meta") if isinstance(m.get("meta"), dict) else {}
            # "created" is the time of the listing request on vLLM and llama.cpp, not of the weights: not shown
            out.append(ModelInfo(
                name=str(m["id"]), size=int(meta.get("size") or 0), family=str(m.get("owned_by") or ""),
                parameter_size=_params(meta.get("n_params")), quantization="", digest=_fingerprint(m),
                modified_at="", context=int(m.get("max_model_len") or meta.get("n_ctx_train") or 0)))
        return out

    def match(self, names: list[str], wanted: str) -> str | None:
        if wanted in names:
            return wanted
        return next((n for n in names if n.lower() == wanted.lower()), None)

    def missing_model(self, model: str, names: list[str] | None) -> EngineError:
        served = "" if names is None else f" ({'served: ' + ', '.join(names) if names else 'it serves none'})"
        return EngineError(f"model {model} is not served by {self.url}",
                           fix=f"pass --model with a served name{served}, or start the server with that model "
                               f"(`vllm serve {model}`)")

    def unreachable(self) -> EngineError:
        return EngineError(f"the OpenAI-compatible server is not reachable at {self.url}",
                           fix="start it (`vllm serve MODEL` or `llama-server -m FILE`) or pass --host with its "
                               "base URL")

    def host_fix(self) -> str:
        return "check the base URL (--host or teacher.host); it usually ends in /v1"

    def _body(self, s: TeacherSettings, messages: list[dict[str, str]], schema: dict[str, Any] | None) -> dict[str, Any]:
        body: dict[str, Any] = {"model": s.model, "messages": messages, "stream": True,
                                "stream_options": {"include_usage": True}, "temperature": s.temperature,
                                "max_tokens": s.num_predict}
        if s.seed:
            body["seed"] = s.seed
        if schema is not None and self.json_mode:
            body["messages"] = with_schema_in_prompt(messages, schema)
            body["response_format"] = {"type": "json_object"}
        elif schema is not None:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "answer", "schema": schema, "strict": True}}
        return body

    async def stream(self, settings: TeacherSettings, messages: list[dict[str, str]], schema: dict[str, Any] | None,
                     reply: Reply) -> Attempt:
        body = self._body(settings, messages, schema)
        try:
            return await self._stream(body, reply)
        except SchemaRejected as exc:
            if not self.json_mode:      # calls in flight beside this one may have been refused too: say it once
                self.json_mode = True
                if self.notice is not None:
                    self.notice(f"{self.url} does not accept a JSON schema in response_format ({str(exc)[:120]}); "
                                "using JSON mode with the schema in the prompt, and checking every reply against it")
            return await self._stream(self._body(settings, messages, schema), reply)

    async def _stream(self, body: dict[str, Any], reply: Reply) -> Attempt:
        t0 = time.perf_counter()
        ttfb: float | None = None
        finish: str | None = None
        metrics: dict[str, int] = {}
        data: list[str] = []
        done = False
        sent_schema = (body.get("response_format") or {}).get("type") == "json_schema"

        def refused(code: int, text: str) -> None:
            if sent_schema and code in (400, 422, 500, 501) and any(w in text.lower() for w in SCHEMA_WORDS):
                raise SchemaRejected(text)

        async with self.post("/chat/completions", body, refused) as resp:
            async for raw in self.lines(resp):
                if ttfb is None:
                    ttfb = time.perf_counter() - t0
                line = raw.decode("utf-8", "replace").rstrip("\r")
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if line and field == "error":
                    raise AttemptFailed(SERVER_ERROR, f"error event mid-stream: {_error_text(value)}")
                if line and field == "data":
                    data.append(value)
                if line or not data:
                    continue            # an event ends at a blank line; comments, ids and event names are ignored
                event, data = "\n".join(data), []
                if event == "[DONE]":
                    done = True         # read on to the body's end: a fully read response keeps its connection
                elif not done:
                    finish = _chunk(event, reply, metrics) or finish
        if data and "\n".join(data) != "[DONE]":
            finish = _chunk("\n".join(data), reply, metrics) or finish
        elif data:
            done = True
        if not done:
            raise AttemptFailed(BROKEN_STREAM, "stream ended without data: [DONE]")
        return Attempt(finish, metrics, ttfb)


def _error_text(value: str) -> str:
    try:
        obj = json.loads(value)
    except ValueError:
        return value[:200]
    inner = obj.get("error", obj) if isinstance(obj, dict) else obj
    return str(inner.get("message", inner) if isinstance(inner, dict) else inner)[:200]


def _chunk(event: str, reply: Reply, metrics: dict[str, int]) -> str | None:
    """Read one ``chat.completion.chunk`` into ``reply`` and ``metrics``; its finish reason, if any."""
    try:
        obj = json.loads(event)
    except ValueError:
        raise AttemptFailed(BROKEN_STREAM, f"garbled stream (an event is not JSON: {event[:60]!r})") from None
    if not isinstance(obj, dict):
        raise AttemptFailed(BROKEN_STREAM, "garbled stream (an event is not a JSON object)")
    if "error" in obj or obj.get("object") == "error":
        raise AttemptFailed(SERVER_ERROR, f"error event mid-stream: {_error_text(event)}")
    finish = None
    for choice in obj.get("choices") or []:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        piece = delta.get("content") if isinstance(delta, dict) else None
        if isinstance(piece, str):
            reply.add(piece)
        if isinstance(choice, dict) and isinstance(choice.get("finish_reason"), str):
            finish = choice["finish_reason"]
    usage = obj.get("usage")
    if isinstance(usage, dict):
        for ours, theirs in (("prompt_eval_count", "prompt_tokens"), ("eval_count", "completion_tokens")):
            if isinstance(usage.get(theirs), int):
                metrics[ours] = usage[theirs]
    return finish
