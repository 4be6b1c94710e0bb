"""A protocol-faithful Ollama stand-in HTTP server for tests and benchmarks (stdlib only).

It behaves like ``ollama serve`` on the wire, as described in Ollama's API documentation: chunked NDJSON
streams flushed line by line, integer-nanosecond metrics, the real error shapes and status codes, ``N``
parallel slots per model where extra requests wait without any response bytes, and answers to ``format``
JSON schemas that validate against the schema. The content of a constrained answer is drawn from the prompt
(from the last JSON object in the last user message when there is one, i.e. the retrieved row),
deterministically: the same model, messages and seed give the same text.

Every failure mode can be injected for the next chat/generate requests (optionally only those whose
prompt contains a substring)::

    with OllamaStandin(num_parallel=4, latency=0.05) as srv:
        srv.inject("error_line", times=2, match="row 17")
        client = ollama.Client(host=srv.url)

Fault modes (``FAULTS``): ``http500`` (JSON body), ``http500_text``, ``http500_empty``, ``http503`` (server
busy), ``http404`` (model not found), ``close`` (connection closed before a status line), ``error_line``
(an ``{"error"}`` line mid-stream), ``cut`` (socket closed without the terminating chunk), ``no_done``
(clean end without a ``done: true`` chunk), ``stall`` (one long silence mid-stream, ``seconds``),
``malformed_line``, ``blank_line``, ``bad_json`` (content that is not JSON, ``done_reason: "length"``),
``schema_violation`` (valid JSON that breaks the schema), ``off_label`` (``enum``/``pattern`` ignored, as
servers without grammar support do), and the runaways ``trickle``, ``endless`` and ``huge_line`` (see
tests/standin_server.py, which also describes the counters, ``hold_after`` and ``release``).

Run it by hand: ``python tests/ollama_standin.py --port 11435 --parallel 4 --latency 0.2``.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):       # run as a script: make `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.standin_server import (  # noqa: E402
    FAULTS,
    PRE_STREAM_FAULTS,
    RUNAWAY_FAULTS,
    BaseHandler,
    Fault,
    HTTPError,
    StandinServer,
    answer_for,
    command_line,
    knobs,
    last_user_text,
    now_rfc3339,
    pieces,
    serve,
    violate,
)
from tests.standin_server import digest as _digest  # noqa: E402

__all__ = ["BUSY", "DEFAULT_MODELS", "FAULTS", "PRE_STREAM_FAULTS", "RUNNER_ERROR", "Model", "OllamaStandin",
           "answer_for"]

BUSY = "server busy, please try again.  maximum pending requests exceeded"
RUNNER_ERROR = "an error was encountered while running the model"
THINK_VALUES = {"low", "medium", "high", "max"}


@dataclass
class Model:
    """An 'installed' model."""

    name: str                       # with tag, e.g. "llama3.1:8b"
    family: str = "llama"
    parameter_size: str = "8.0B"
    quantization_level: str = "Q4_K_M"
    size: int = 4_920_753_328
    context_length: int = 131072
    capabilities: tuple[str, ...] = ("completion", "tools")
    embedding_length: int = 0       # > 0: an embedding model of that dimension

    @property
    def digest(self) -> str:
        return _digest(self.name)

    def details(self) -> dict[str, Any]:
        return {"parent_model": "", "format": "gguf", "family": self.family, "families": [self.family],
                "parameter_size": self.parameter_size, "quantization_level": self.quantization_level}

    def tag_entry(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.name, "modified_at": "2026-01-02T03:04:05.123456789Z",
                "size": self.size, "digest": self.digest, "details": self.details()}


DEFAULT_MODELS = (
    Model("llama3.1:8b"),
    Model("qwen2.5:0.5b", family="qwen2", parameter_size="494.03M", quantization_level="Q4_K_M",
          size=397_821_319, context_length=32768),
    Model("qwen3:4b", family="qwen3", parameter_size="4.0B", size=2_497_293_931, context_length=40960,
          capabilities=("completion", "tools", "thinking")),
    Model("all-minilm:latest", family="bert", parameter_size="23M", quantization_level="F16", size=45_960_996,
          context_length=512, capabilities=("embedding",), embedding_length=384),
)




class OllamaStandin(StandinServer):
    """The Ollama stand-in; ``start()`` binds 127.0.0.1 on an ephemeral port (or ``port``)."""

    name = "ollama"

    def __init__(self, models: tuple[Model, ...] | list[Model] = DEFAULT_MODELS, *, num_parallel: int = 1,
                 latency: float = 0.0, token_delay: float = 0.0, piece_chars: int = 8, load_time: float = 0.0,
                 max_queue: int = 512, version: str = "0.12.6", pace: bool = False, port: int = 0) -> None:
        super().__init__(num_parallel=num_parallel, latency=latency, token_delay=token_delay,
                         piece_chars=piece_chars, pace=pace, port=port)
        self.models = list(models)
        self.load_time = load_time
        self.max_queue = max_queue
        self.version = version
        self._loaded: dict[str, float] = {}     # model -> expires_at (monotonic)
        self._loading = 0

    def find_model(self, name: str) -> Model | None:
        want = name.lower()
        if ":" not in want.rsplit("/", 1)[-1]:
            want += ":latest"
        for m in self.models:
            if m.name.lower() == want:
                return m
        return None


class _Handler(BaseHandler):
    server_version = "ollama-standin"
    standin: OllamaStandin

    ROUTES = {
        "/": ("GET", "HEAD"),
        "/api/version": ("GET", "HEAD"),
        "/api/tags": ("GET", "HEAD"),
        "/api/ps": ("GET",),
        "/api/show": ("POST",),
        "/api/chat": ("POST",),
        "/api/generate": ("POST",),
        "/api/embed": ("POST",),
        "/api/embeddings": ("POST",),
        "/api/pull": ("POST",),
        "/api/delete": ("DELETE",),
        "/api/copy": ("POST",),
    }

    def route_name(self, path: str) -> str:
        return path.strip("/").replace("api/", "") or "root"

    # -- simple endpoints -------------------------------------------------------------------------
    def _h_root(self, body: Any) -> None:
        self._text("Ollama is running")

    def _h_version(self, body: Any) -> None:
        self._json({"version": self.standin.version})

    def _h_tags(self, body: Any) -> None:
        self._json({"models": [m.tag_entry() for m in self.standin.models]})

    def _h_ps(self, body: Any) -> None:
        srv, now = self.standin, time.monotonic()
        out = []
        for name, expires in sorted(srv._loaded.items(), key=lambda kv: -kv[1]):
            m = srv.find_model(name)
            if m is None or expires < now:
                continue
            out.append({"name": m.name, "model": m.name, "size": m.size, "digest": m.digest,
                        "details": m.details(), "expires_at": "2099-01-01T00:00:00Z", "size_vram": m.size,
                        "context_length": 4096})
        self._json({"models": out})

    def _h_show(self, body: dict[str, Any]) -> None:
        name = str(body.get("model") or body.get("name") or "")
        m = self.standin.find_model(name)
        if m is None:
            full = name if ":" in name else f"{name}:latest"
            raise HTTPError(404, f"model '{full}' not found")
        self._json({
            "modelfile": f"FROM {m.name}\n", "parameters": "stop \"<|eot_id|>\"", "template": "{{ .Prompt }}",
            "details": m.details(), "capabilities": list(m.capabilities), "modified_at": "2026-01-02T03:04:05Z",
            "model_info": {"general.architecture": m.family, f"{m.family}.context_length": m.context_length},
        })

    def _h_delete(self, body: dict[str, Any]) -> None:
        m = self.standin.find_model(str(body.get("model") or ""))
        if m is None:
            raise HTTPError(404, f"model '{body.get('model')}' not found")
        self.standin.models.remove(m)
        self._send(200, b"", "application/json; charset=utf-8")

    def _h_copy(self, body: dict[str, Any]) -> None:
        m = self.standin.find_model(str(body.get("source") or ""))
        if m is None:
            raise HTTPError(404, f"model '{body.get('source')}' not found")
        dst = str(body.get("destination") or "")
        self.standin.models.append(Model(dst if ":" in dst else f"{dst}:latest", m.family, m.parameter_size,
                                         m.quantization_level, m.size, m.context_length, m.capabilities))
        self._send(200, b"", "application/json; charset=utf-8")

    def _h_pull(self, body: dict[str, Any]) -> None:
        name = str(body.get("model") or body.get("name") or "")
        known = name.split(":")[0] in {m.name.split(":")[0] for m in self.standin.models} or name.startswith("pullable")
        if not known:
            raise HTTPError(500, "pull model manifest: file does not exist")
        if body.get("stream") is False:
            if self.standin.find_model(name) is None:
                self.standin.models.append(Model(name if ":" in name else f"{name}:latest"))
            self._json({"status": "success"})
            return
        digest = "sha256:" + _digest(name)
        lines = [{"status": "pulling manifest"},
                 {"status": f"pulling {digest[7:19]}", "digest": digest, "total": 1000},
                 {"status": f"pulling {digest[7:19]}", "digest": digest, "total": 1000, "completed": 1000},
                 {"status": "verifying sha256 digest"}, {"status": "writing manifest"}, {"status": "success"}]
        if self.standin.find_model(name) is None:
            self.standin.models.append(Model(name if ":" in name else f"{name}:latest"))
        self._stream_lines(lines)

    def _h_embed(self, body: dict[str, Any]) -> None:
        name = str(body.get("model") or "")
        m = self.standin.find_model(name)
        if m is None:
            raise HTTPError(404, f'model "{name}" not found, try pulling it first')
        inputs = body.get("input", "")
        if isinstance(inputs, str):
            inputs = [inputs] if inputs else []
        if not isinstance(inputs, list) or not all(isinstance(x, str) for x in inputs):
            raise HTTPError(400, "invalid input type")
        dim = int(body.get("dimensions") or m.embedding_length or 384)
        vecs = []
        for text in inputs:
            rng = random.Random(hashlib.sha256(text.encode()).digest())
            v = [rng.gauss(0, 1) for _ in range(dim)]
            norm = sum(x * x for x in v) ** 0.5 or 1.0
            vecs.append([x / norm for x in v])
        self._json({"model": name, "embeddings": vecs, "total_duration": 1_000_000, "load_duration": 100_000,
                    "prompt_eval_count": sum(len(t.split()) for t in inputs)})

    def _h_embeddings(self, body: dict[str, Any]) -> None:
        name = str(body.get("model") or "")
        if self.standin.find_model(name) is None:
            raise HTTPError(404, f'model "{name}" not found, try pulling it first')
        rng = random.Random(hashlib.sha256(str(body.get("prompt", "")).encode()).digest())
        self._json({"embedding": [rng.gauss(0, 1) for _ in range(384)]})

    # -- chat and generate --------------------------------------------------------------------------
    def _h_chat(self, body: dict[str, Any]) -> None:
        self._generate_like(body, chat=True)

    def _h_generate(self, body: dict[str, Any]) -> None:
        self._generate_like(body, chat=False)

    def _validate(self, body: dict[str, Any], chat: bool) -> tuple[Model, dict[str, Any]]:
        name = body.get("model")
        if name is not None and not isinstance(name, str):
            raise HTTPError(400, "json: cannot unmarshal number into Go struct field ChatRequest.model of type string")
        if chat and not name:
            raise HTTPError(400, "model is required")
        if chat and "messages" in body and not isinstance(body["messages"], list | type(None)):
            raise HTTPError(400, "json: cannot unmarshal string into Go struct field ChatRequest.messages "
                                  "of type []api.Message")
        think = body.get("think")
        if isinstance(think, str) and think not in THINK_VALUES:
            raise HTTPError(400, f'invalid think value: "{think}" (must be "high", "medium", "low", "max", '
                                  "true, or false)")
        top = body.get("top_logprobs")
        if top is not None and not (isinstance(top, int) and 0 <= top <= 20):
            raise HTTPError(400, "top_logprobs must be between 0 and 20")
        keep_alive = body.get("keep_alive")
        if isinstance(keep_alive, str) and re.fullmatch(r"-?\d+(\.\d+)?", keep_alive.strip()):
            raise HTTPError(400, f'time: missing unit in duration "{keep_alive}"')
        m = self.standin.find_model(name or "")
        if m is None:
            raise HTTPError(404, f"model '{name or ''}' not found")
        if "completion" not in m.capabilities:
            raise HTTPError(400, f'"{name}" does not support {"chat" if chat else "generate"}')
        if think not in (None, False) and "thinking" not in m.capabilities:
            raise HTTPError(400, f'"{name}" does not support thinking')
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise HTTPError(400, "json: cannot unmarshal into Go struct field options of type map[string]any")
        if "stop" in options and not isinstance(options["stop"], list):
            raise HTTPError(500, 'option "stop" must be of type array')
        for key in ("num_predict", "num_ctx", "seed"):
            if key in options and not isinstance(options[key], int | float):
                raise HTTPError(500, f'option "{key}" must be of type integer')
        fmt = body.get("format")
        if fmt not in (None, "", "json") and not isinstance(fmt, dict):
            raise HTTPError(500, f"invalid format: {json.dumps(json.dumps(fmt))}; expected \"json\" or a valid "
                                  "JSON Schema object")
        return m, options


    def _generate_like(self, body: dict[str, Any], chat: bool) -> None:
        srv = self.standin
        m, options = self._validate(body, chat)
        self._raw = bool(body.get("raw"))
        if self._raw and (body.get("template") or body.get("system") or body.get("context")):
            raise HTTPError(400, "raw mode does not support template, system, or context")
        stream = body.get("stream") is not False
        messages = (body.get("messages") or []) if chat else None
        prompt_text = last_user_text(messages) if chat else str(body.get("prompt") or "")
        empty = (not messages) if chat else not body.get("prompt")
        if empty:      # load / unload
            reason = "unload" if body.get("keep_alive") in (0, 0.0, "0", "0s") else "load"
            obj = {"model": body["model"], "created_at": now_rfc3339(), "done": True, "done_reason": reason}
            if chat:
                obj["message"] = {"role": "assistant", "content": ""}
            else:
                obj["response"] = ""
            if reason == "load":
                srv._loaded[m.name] = time.monotonic() + 300
            else:
                srv._loaded.pop(m.name, None)
            self._json(obj)
            return
        if chat:
            srv.count_request()
        fault = srv.take_fault(prompt_text)
        mode = fault.mode if fault else None
        if mode == "close":
            self._close_now()
            raise HTTPError(-1, None)
        if mode == "http500":
            raise HTTPError(500, "model runner has unexpectedly stopped, this may be due to resource limitations "
                                 "or an internal error, check ollama server logs for details")
        if mode == "http500_text":
            raise HTTPError(500, "Internal Server Error", "text/plain")
        if mode == "http500_empty":
            raise HTTPError(500, None)
        if mode == "http503":
            raise HTTPError(503, BUSY)
        if mode == "http404":
            raise HTTPError(404, f"model '{body['model']}' not found")

        # Wait for a slot (and a hold): no bytes at all go out meanwhile. While the model loads, waiters sit
        # in the scheduler's pending queue, which is bounded (503 when full).
        with srv._cond:
            queued = m.name not in srv._loaded and srv.load_time > 0
            if queued:
                if srv._loading >= srv.max_queue:
                    raise HTTPError(503, BUSY)
                srv._loading += 1
        try:
            with self.in_slot(m.name):
                if queued:
                    with srv._cond:
                        srv._loading -= 1
                    queued = False
                self._generate(body, chat, m, options, messages, prompt_text, stream, fault)
        finally:
            if queued:
                with srv._cond:
                    srv._loading -= 1

    def _generate(self, body: dict[str, Any], chat: bool, m: Model, options: dict[str, Any],
                  messages: list[dict[str, Any]] | None, prompt_text: str, stream: bool, fault: Fault | None) -> None:
        srv = self.standin
        mode = fault.mode if fault else None
        load_ns = 0
        t0 = time.monotonic_ns()
        if m.name not in srv._loaded:
            if srv.load_time:
                srv._stopping.wait(srv.load_time)
            srv._loaded[m.name] = time.monotonic() + 300
            load_ns = int(srv.load_time * 1e9) or 1_234_567
        self.wait_latency(stream)
        fmt = body.get("format")
        if chat:
            content = answer_for(m.name, messages or [], fmt, options, mode == "off_label", srv.known_answers)
        else:
            content = answer_for(m.name, [{"role": "user", "content": prompt_text}], fmt, options)
        done_reason = "stop"
        if mode == "bad_json":
            content, done_reason = content[: max(1, len(content) // 2)], "length"
        elif mode == "schema_violation":
            content = violate(content, fmt)
        parts = pieces(content, srv.piece_chars)
        for stop in options.get("stop") or []:
            joined = "".join(parts)
            if stop and stop in joined:
                parts = pieces(joined[: joined.index(stop)], srv.piece_chars)
        num_predict = options.get("num_predict")
        if isinstance(num_predict, int | float) and 0 <= num_predict < len(parts):
            parts, done_reason = parts[: int(num_predict)], "length"
        thinking = None
        if chat and "thinking" in m.capabilities and body.get("think") is not False:
            thinking = "Let me think about the request."
        metrics = {"prompt_eval_count": max(1, len(prompt_text.split())), "eval_count": max(1, len(parts))}

        def completed(delta: int = 1) -> None:
            if chat:
                srv.completed(prompt_text, delta)

        if stream:
            self._stream_reply(body["model"], chat, parts, thinking, done_reason, metrics, t0, load_ns, fault,
                               completed)
            return
        obj = self._final(body["model"], chat, "".join(parts), done_reason, metrics, t0, load_ns)
        if chat and thinking:
            obj["message"]["thinking"] = thinking
        if not chat and not body.get("raw"):
            obj["context"] = list(range(1, metrics["eval_count"] + 5))
        completed()
        try:
            self._json(obj)
        except OSError:
            completed(-1)
            raise

    def _final(self, model: str, chat: bool, last: str, done_reason: str, metrics: dict[str, int], t0: int,
               load_ns: int) -> dict[str, Any]:
        total = max(1, time.monotonic_ns() - t0)
        obj: dict[str, Any] = {"model": model, "created_at": now_rfc3339()}
        if chat:
            obj["message"] = {"role": "assistant", "content": last}
        else:
            obj["response"] = last
        obj.update({"done": True, "done_reason": done_reason, "total_duration": total})
        if load_ns:
            obj["load_duration"] = load_ns
        obj.update({"prompt_eval_count": metrics["prompt_eval_count"], "prompt_eval_duration": max(1, total // 10),
                    "eval_count": metrics["eval_count"], "eval_duration": max(1, total // 2)})
        return obj

    def _line(self, obj: Any) -> None:
        self._chunk(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n")

    def _stream_lines(self, lines: list[dict[str, Any]]) -> None:
        self._start_stream("application/x-ndjson")
        for line in lines:
            self._line(line)
        self._chunk(b"")

    def _stream_reply(self, model: str, chat: bool, pieces: list[str], thinking: str | None, done_reason: str,
                      metrics: dict[str, int], t0: int, load_ns: int, fault: Fault | None,
                      completed: Any) -> bool:
        """Stream the reply; True when the final chunk went out."""
        mode = fault.mode if fault else None
        after = fault.after_pieces if fault else 0
        try:
            self._start_stream("application/x-ndjson")
            if thinking:
                self._line({"model": model, "created_at": now_rfc3339(),
                            "message": {"role": "assistant", "content": "", "thinking": thinking}, "done": False})
            body_pieces, last = (pieces[:-1], pieces[-1]) if len(pieces) > 1 else (pieces, "")
            for i, piece in enumerate(body_pieces):
                if mode and i == min(after, len(body_pieces) - 1):
                    if mode == "error_line":
                        self._line({"error": RUNNER_ERROR})
                        self._chunk(b"")
                        return False
                    if mode == "cut":
                        self._close_now()
                        return False
                    if mode == "malformed_line":
                        self._chunk(b'{"model":"' + model.encode() + b'","message":{"role":\n')
                    if mode == "blank_line":
                        self._chunk(b"\n")
                    if mode == "stall" and not self._wait_unless_gone(fault.seconds):   # a long silence
                        return False
                    if mode in RUNAWAY_FAULTS:
                        start = b'{"model":"' + model.encode() + b'","created_at":"' + now_rfc3339().encode() + \
                            b'","message":{"role":"assistant","content":"'
                        line = {"model": model, "created_at": now_rfc3339(), "done": False,
                                "message": {"role": "assistant", "content": " "}}
                        self.runaway(fault, start, json.dumps(line).encode() + b"\n")
                        return False
                obj = {"model": model, "created_at": now_rfc3339(), "done": False}
                if chat:
                    obj["message"] = {"role": "assistant", "content": piece}
                else:
                    obj["response"] = piece
                self._line(obj)
                self.pace_piece(t0, i, len(body_pieces))
            if mode == "no_done":
                self._chunk(b"")
                return False
            self.pace_piece(t0, len(body_pieces), len(body_pieces))
            final = self._final(model, chat, last, done_reason, metrics, t0, load_ns)
            if not chat and not self._raw:
                final["context"] = list(range(1, metrics["eval_count"] + 5))
            self._line(final)
            completed()
            self._chunk(b"")
            return True
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True
            return False


OllamaStandin.handler = _Handler


def main() -> None:
    """Run the stand-in in the foreground (for trying the CLI by hand, and for the benchmark)."""
    args = command_line("Ollama stand-in server for tests", 11435).parse_args()
    srv = OllamaStandin(**knobs(args)).start()
    serve(srv, f"ollama stand-in on {srv.url} (models: {', '.join(m.name for m in srv.models)})")


if __name__ == "__main__":
    main()
