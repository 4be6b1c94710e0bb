"""A protocol-faithful stand-in for the OpenAI-compatible chat API, as vLLM (``vllm serve``) and llama.cpp's
server (``llama-server``) speak it, for tests and benchmarks (stdlib only).

On the wire: ``GET /v1/models`` (vLLM's model cards with ``max_model_len``, or llama.cpp's with ``meta``),
``POST /v1/chat/completions`` answered as one ``chat.completion`` JSON document or, with ``"stream": true``,
as server-sent events over a chunked response: ``data: {chat.completion.chunk}`` events (the role first,
then content deltas, then the finish reason, then the usage when ``stream_options.include_usage`` asks for
it) and ``data: [DONE]``. Structured output through ``response_format``: ``json_schema`` (the answer is an
instance of the schema, drawn from the row in the prompt as the Ollama stand-in draws it), ``json_object``
(some JSON object: an instance of a schema written into the prompt when there is one, as an instructed
model would write) and ``text``. ``schemas=False`` makes the server refuse ``json_schema`` the way an older
llama.cpp (or vLLM's grammar engine, for a schema it cannot compile) does. Errors have each server's shape:
vLLM ``{"error": {"message", "type": "BadRequestError", "param", "code"}}``, llama.cpp ``{"error": {"code",
"message", "type": "invalid_request_error"}}``; an unknown model is a 404 on vLLM and ignored by llama.cpp
(it serves its one model); a mid-stream error is ``data: {"error": ...}`` on vLLM and an ``error: {...}``
field on llama.cpp, both followed by ``data: [DONE]``. With ``api_key`` set, requests without
``Authorization: Bearer KEY`` get a 401.

The fault switches, slots, holds and counters are those of the Ollama stand-in (tests/standin_server.py):
``http503`` is llama.cpp's "Loading model", ``blank_line`` a ``: ping`` comment (legal in SSE: a client
must ignore it), ``no_done`` a clean end without ``data: [DONE]``.

Run it by hand: ``python tests/openai_standin.py --port 8000 --parallel 8 --latency 0.2`` and point
``rebase-tui transform TASK --backend openai --host http://127.0.0.1:8000/v1`` at it.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):       # run as a script: make `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.standin_server import (  # noqa: E402
    RUNAWAY_FAULTS,
    BaseHandler,
    Fault,
    HTTPError,
    StandinServer,
    answer_for,
    command_line,
    knobs,
    last_user_text,
    pieces,
    schema_in,
    serve,
    violate,
)

FLAVORS = ("vllm", "llamacpp")
VLLM_TYPES = {400: "BadRequestError", 401: "Unauthorized", 404: "NotFoundError", 500: "InternalServerError",
              503: "ServiceUnavailableError"}
LLAMA_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
               500: "server_error", 501: "not_supported_error", 503: "unavailable_error"}
LLAMA_NO_SCHEMA = 'response_format type must be one of "text" or "json_object", but got: json_schema'
VLLM_NO_SCHEMA = "The provided JSON schema contains features not supported by xgrammar."
MID_STREAM_ERROR = "Internal server error: the engine core died while generating"


@dataclass
class ServedModel:
    """A served model as the listing shows it."""

    id: str
    max_model_len: int = 8192
    n_params: int = 8_030_261_248
    size: int = 4_920_753_328


DEFAULT_MODELS = (ServedModel("meta-llama/Llama-3.1-8B-Instruct"), ServedModel("Qwen/Qwen2.5-0.5B-Instruct",
                                                                                32768, 494_032_768, 397_821_319))


class OpenAIStandin(StandinServer):
    """The stand-in server; ``flavor`` is ``vllm`` or ``llamacpp``; ``start()`` binds 127.0.0.1."""

    name = "openai"

    def __init__(self, models: tuple[ServedModel, ...] | list[ServedModel] = DEFAULT_MODELS, *, flavor: str = "vllm",
                 schemas: bool = True, api_key: str | None = None, num_parallel: int = 1, latency: float = 0.0,
                 token_delay: float = 0.0, piece_chars: int = 8, pace: bool = False, port: int = 0) -> None:
        super().__init__(num_parallel=num_parallel, latency=latency, token_delay=token_delay,
                         piece_chars=piece_chars, pace=pace, port=port)
        if flavor not in FLAVORS:
            raise ValueError(f"flavor must be one of {FLAVORS}")
        self.models, self.flavor, self.schemas, self.api_key = list(models), flavor, schemas, api_key
        self._ids = itertools.count(1)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def find_model(self, name: str) -> ServedModel | None:
        if self.flavor == "llamacpp":       # llama-server answers with its one model, whatever is asked
            return self.models[0]
        return next((m for m in self.models if m.id == name), None)


class _Handler(BaseHandler):
    standin: OpenAIStandin
    ROUTES = {"/v1/models": ("GET",), "/v1/chat/completions": ("POST",), "/health": ("GET",),
              "/models": ("GET",), "/chat/completions": ("POST",)}

    @property
    def server_version(self) -> str:
        return "uvicorn" if self.standin.flavor == "vllm" else "llama.cpp"

    def route_name(self, path: str) -> str:
        return {"/health": "health", "/v1/models": "models", "/models": "models"}.get(path, "chat")

    def error_body(self, status: int, error: str) -> Any:
        if self.standin.flavor == "llamacpp":
            return {"error": {"code": status, "message": error, "type": LLAMA_TYPES.get(status, "server_error")}}
        return {"error": {"message": error, "type": VLLM_TYPES.get(status, "BadRequestError"), "param": None,
                          "code": status}}

    def not_found(self, path: str) -> HTTPError:
        if self.standin.flavor == "llamacpp":
            return HTTPError(404, "File Not Found")
        return HTTPError(404, None, body={"detail": "Not Found"})      # FastAPI's own 404

    def bad_body(self, kind: str, detail: str) -> HTTPError:
        return HTTPError(400, {"missing": "Expecting value: line 1 column 1 (char 0)",
                               "type": "Input should be a valid dictionary"}.get(kind, detail))

    def _authorized(self) -> None:
        key = self.standin.api_key
        if key and self.headers.get("Authorization") != f"Bearer {key}":
            if self.standin.flavor == "vllm":
                raise HTTPError(401, None, body={"error": "Unauthorized"})
            raise HTTPError(401, "Invalid API Key")

    # -- endpoints ----------------------------------------------------------------------------------
    def _h_health(self, body: Any) -> None:
        if self.standin.flavor == "llamacpp":
            self._json({"status": "ok"})
        else:
            self._send(200, b"", "application/json")

    def _h_models(self, body: Any) -> None:
        self._authorized()
        srv, created = self.standin, int(time.time())
        if srv.flavor == "llamacpp":
            data = [{"id": m.id, "object": "model", "created": created, "owned_by": "llamacpp",
                     "meta": {"vocab_type": 2, "n_vocab": 128256, "n_ctx_train": m.max_model_len, "n_embd": 4096,
                              "n_params": m.n_params, "size": m.size}} for m in srv.models]
        else:
            data = [{"id": m.id, "object": "model", "created": created, "owned_by": "vllm", "root": m.id,
                     "parent": None, "max_model_len": m.max_model_len,
                     "permission": [{"id": f"modelperm-{i}", "object": "model_permission", "created": created,
                                     "allow_create_engine": False, "allow_sampling": True, "allow_logprobs": True,
                                     "allow_search_indices": False, "allow_view": True, "allow_fine_tuning": False,
                                     "organization": "*", "group": None, "is_blocking": False}]}
                    for i, m in enumerate(srv.models)]
        self._json({"object": "list", "data": data})

    def _format(self, body: dict[str, Any], prompt: str) -> Any:
        """The answer format a request asks for: a schema, "json" (any object) or None (text)."""
        rf = body.get("response_format")
        if rf is None:
            return None
        kind = rf.get("type") if isinstance(rf, dict) else None
        if kind == "json_schema":
            if not self.standin.schemas:
                raise HTTPError(400, LLAMA_NO_SCHEMA if self.standin.flavor == "llamacpp" else VLLM_NO_SCHEMA)
            spec = rf.get("json_schema")
            if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
                raise HTTPError(400, "response_format.json_schema.schema: Field required")
            if self.standin.flavor == "vllm" and not isinstance(spec.get("name"), str):
                raise HTTPError(400, "response_format.json_schema.name: Field required")
            return spec["schema"]
        if kind == "json_object":
            return schema_in(prompt) or "json"
        if kind == "text":
            return None
        raise HTTPError(400, f"response_format type must be one of \"text\", \"json_object\" or \"json_schema\", "
                             f"but got: {kind}")

    def _validate(self, body: dict[str, Any]) -> tuple[ServedModel, list[dict[str, Any]], Any]:
        srv = self.standin
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise HTTPError(400, "'messages' is required" if srv.flavor == "llamacpp" else
                            "messages: Field required")
        model = srv.find_model(str(body.get("model") or ""))
        if model is None:
            raise HTTPError(404, f"The model `{body.get('model')}` does not exist.")
        max_tokens = body.get("max_tokens")
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            raise HTTPError(400, f"max_tokens must be at least 1, got {max_tokens}.")
        temperature = body.get("temperature", 1.0)
        if not isinstance(temperature, int | float) or temperature < 0:
            raise HTTPError(400, f"temperature must be non-negative, got {temperature}.")
        return model, messages, self._format(body, last_user_text(messages))

    def _h_chat(self, body: dict[str, Any]) -> None:
        self._authorized()
        srv = self.standin
        model, messages, fmt = self._validate(body)
        prompt = last_user_text(messages)
        srv.count_request()
        fault = srv.take_fault(prompt)
        mode = fault.mode if fault else None
        if mode == "close":
            self._close_now()
            raise HTTPError(-1, None)
        if mode == "http500":
            raise HTTPError(500, "CUDA error: an illegal memory access was encountered")
        if mode == "http500_text":
            raise HTTPError(500, "Internal Server Error", "text/plain")
        if mode == "http500_empty":
            raise HTTPError(500, None)
        if mode == "http503":
            raise HTTPError(503, "Loading model")
        if mode == "http404":
            raise HTTPError(404, f"The model `{body.get('model')}` does not exist.")
        with self.in_slot(model.id):
            t0 = time.monotonic_ns()
            self.wait_latency(body.get("stream") is True)
            options = {"seed": body.get("seed"), "temperature": body.get("temperature")}
            content = answer_for(model.id, messages, fmt, options, mode == "off_label", srv.known_answers)
            finish = "stop"
            if mode == "bad_json":
                content, finish = content[: max(1, len(content) // 2)], "length"
            elif mode == "schema_violation":
                content = violate(content, fmt if isinstance(fmt, dict) else None)
            parts = pieces(content, srv.piece_chars)
            max_tokens = body.get("max_tokens")
            if isinstance(max_tokens, int) and max_tokens < len(parts):
                parts, finish = parts[:max_tokens], "length"
            usage = {"prompt_tokens": max(1, len(prompt.split())), "completion_tokens": len(parts)}
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            head = {"id": f"chatcmpl-{next(srv._ids)}", "created": int(time.time()), "model": body.get("model")}
            if body.get("stream") is True:
                include = (body.get("stream_options") or {}).get("include_usage") is True
                self._stream(head, parts, finish, usage if include else None, fault, prompt, t0)
                return
            doc = {**head, "object": "chat.completion", "choices": [{
                "index": 0, "message": {"role": "assistant", "content": "".join(parts), "tool_calls": []},
                "logprobs": None, "finish_reason": finish}], "usage": usage}
            srv.completed(prompt)
            try:
                self._json(doc)
            except OSError:
                srv.completed(prompt, -1)
                raise

    # -- streaming ------------------------------------------------------------------------------
    def _event(self, obj: Any) -> None:
        self._chunk(b"data: " + json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n")

    def _chunk_obj(self, head: dict[str, Any], delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**head, "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    def _stream(self, head: dict[str, Any], parts: list[str], finish: str, usage: dict[str, int] | None,
                fault: Fault | None, prompt: str, t0: int) -> None:
        srv = self.standin
        mode = fault.mode if fault else None
        after = fault.after_pieces if fault else 0
        try:
            self._start_stream("text/event-stream; charset=utf-8")
            self._event(self._chunk_obj(head, {"role": "assistant", "content": ""}))
            for i, piece in enumerate(parts):
                if mode and i == min(after, len(parts) - 1) and self._fault(mode, fault, head):
                    return
                self._event(self._chunk_obj(head, {"content": piece}))
                self.pace_piece(t0, i, len(parts))
            self.pace_piece(t0, len(parts), len(parts))
            self._event(self._chunk_obj(head, {}, finish))
            if usage is not None:
                self._event({**head, "object": "chat.completion.chunk", "choices": [], "usage": usage})
            srv.completed(prompt)
            if mode != "no_done":
                self._chunk(b"data: [DONE]\n\n")
            self._chunk(b"")
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    def _fault(self, mode: str, fault: Fault, head: dict[str, Any]) -> bool:
        """Play a mid-stream fault; True when the stream ends with it."""
        if mode == "error_line":
            err = self.error_body(500, MID_STREAM_ERROR)
            if self.standin.flavor == "llamacpp":
                self._chunk(b"error: " + json.dumps(err["error"]).encode() + b"\n\n")
            else:
                self._event(err)
            self._chunk(b"data: [DONE]\n\n")
            self._chunk(b"")
            return True
        if mode == "cut":
            self._close_now()
            return True
        if mode == "malformed_line":
            self._chunk(b'data: {"id":"' + head["id"].encode() + b'","choices":[{"delta":{"content":\n\n')
        if mode == "blank_line":
            self._chunk(b": ping\n\n")
        if mode == "stall" and not self._wait_unless_gone(fault.seconds):
            return True
        if mode in RUNAWAY_FAULTS:
            start = b'data: {"id":"' + head["id"].encode() + b'","choices":[{"index":0,"delta":{"content":"'
            line = b"data: " + json.dumps(self._chunk_obj(head, {"content": " "})).encode() + b"\n\n"
            self.runaway(fault, start, line)
            return True
        return False


OpenAIStandin.handler = _Handler


def main() -> None:
    """Run the stand-in in the foreground (for trying the CLI by hand, and for the benchmark)."""
    p = command_line("OpenAI-compatible chat API stand-in server for tests", 8000)
    p.add_argument("--flavor", choices=FLAVORS, default="vllm")
    args = p.parse_args()
    srv = OpenAIStandin(flavor=args.flavor, **knobs(args)).start()
    serve(srv, f"openai stand-in on {srv.base_url} (models: {', '.join(m.id for m in srv.models)})")


if __name__ == "__main__":
    main()
