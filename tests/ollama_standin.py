"""A protocol-faithful Ollama stand-in HTTP server for tests and benchmarks (stdlib only).

It behaves like ``ollama serve`` on the wire, as Ollama's API documentation describes it: chunked NDJSON
streams flushed line by line, integer-nanosecond metrics, the real error shapes and status codes, ``N``
parallel slots per model where extra requests wait without any response bytes, and answers to ``format``
JSON schemas that validate against the schema. The content of a constrained answer is drawn from the
prompt (from the last JSON object in the last user message when there is one, i.e. the retrieved row),
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
servers without grammar support do).

Counters for assertions: ``chat_requests`` (chat requests received), ``chat_completed`` (generations that
ran to their final chunk), ``completed_prompts`` (a Counter of last-user-message texts completed),
``waiting`` (requests waiting for a slot), ``max_in_flight``; ``log`` holds every request.
``hold_after(n)`` makes every request after the n-th completed generation wait (no bytes) until
``release()``: a way to freeze a client at a known point. A request whose client went away while it
waited is dropped without generating, as the real server does.

Run it by hand: ``python tests/ollama_standin.py --port 11435 --parallel 4 --latency 0.2``.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import random
import re
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULTS = (
    "http500", "http500_text", "http500_empty", "http503", "http404", "close",
    "error_line", "cut", "no_done", "stall", "malformed_line", "blank_line", "bad_json", "schema_violation",
    "off_label",
)
PRE_STREAM_FAULTS = {"http500", "http500_text", "http500_empty", "http503", "http404", "close"}
BUSY = "server busy, please try again.  maximum pending requests exceeded"
RUNNER_ERROR = "an error was encountered while running the model"
THINK_VALUES = {"low", "medium", "high", "max"}


def _now() -> str:
    """RFC 3339 UTC with up to 9 fractional digits, trailing zeros trimmed (as Go marshals time)."""
    t = datetime.now(UTC)
    frac = f"{t.microsecond:06d}".rstrip("0")
    return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


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


@dataclass
class Fault:
    """A failure to inject into the next ``times`` matching requests."""

    mode: str
    times: int = 1
    match: str | None = None
    seconds: float = 5.0            # for "stall"
    after_pieces: int = 2           # mid-stream faults happen after this many content pieces


@dataclass
class RequestRecord:
    """One received request."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float = field(default_factory=time.monotonic)


class _HTTPError(Exception):
    def __init__(self, status: int, error: str | None, content_type: str = "application/json") -> None:
        self.status, self.error, self.content_type = status, error, content_type


# -- content generation -------------------------------------------------------------------------
def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "user":
            return str(m.get("content") or "")
    return str(messages[-1].get("content") or "") if messages else ""


def _source_words(text: str) -> list[str]:
    """Words of the last JSON object in the text (the values of a retrieved row), else of the text."""
    for start in [m.start() for m in re.finditer(r"\{", text)][::-1]:
        depth, end = 0, None
        for i in range(start, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    end = i + 1
                    break
        if end is None:
            continue
        try:
            obj = json.loads(text[start:end])
        except ValueError:
            continue
        if isinstance(obj, dict) and obj:
            words = " ".join(str(v) for v in obj.values()).split()
            if words:
                return words
    return text.split() or ["empty"]


class _Gen:
    """Deterministic generator of schema instances from prompt words."""

    def __init__(self, seed_text: str, words: list[str], root: dict[str, Any], ignore_enum: bool = False) -> None:
        self.rng = random.Random(hashlib.sha256(seed_text.encode()).digest())
        self.words = words
        self.root = root
        self.ignore_enum = ignore_enum

    def text(self, lo: int, hi: int) -> str:
        n = min(len(self.words), self.rng.randint(lo, hi))
        start = self.rng.randrange(0, max(1, len(self.words) - n + 1))
        return " ".join(self.words[start:start + n])

    def resolve(self, schema: Any) -> dict[str, Any]:
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < 20:
            ref = schema["$ref"]
            node: Any = self.root
            for part in ref.lstrip("#/").split("/"):
                node = node.get(part, {}) if isinstance(node, dict) else {}
            schema, seen = node, seen + 1
        return schema if isinstance(schema, dict) else {}

    def instance(self, schema: Any, name: str = "") -> Any:
        s = self.resolve(schema)
        if "const" in s:
            return s["const"]
        if "enum" in s and s["enum"] and not self.ignore_enum:
            return self.rng.choice(s["enum"])
        for key in ("anyOf", "oneOf"):
            if key in s:
                options = [o for o in s[key] if self.resolve(o).get("type") != "null"] or s[key]
                return self.instance(options[0], name)
        if "allOf" in s and s["allOf"]:
            return self.instance(s["allOf"][0], name)
        t = s.get("type")
        if isinstance(t, list):
            t = next((x for x in t if x != "null"), "null")
        if t is None:
            t = "object" if "properties" in s else "string"
        if t == "object":
            props = s.get("properties", {})
            return {k: self.instance(v, k) for k, v in props.items()}
        if t == "array":
            n = max(int(s.get("minItems", 1)), 1)
            n = min(n + self.rng.randint(0, 1), int(s.get("maxItems", n + 1)))
            return [self.instance(s.get("items", {"type": "string"}), name) for _ in range(n)]
        if t == "integer":
            lo, hi = int(s.get("minimum", 0)), int(s.get("maximum", 100))
            return self.rng.randint(lo, max(lo, hi))
        if t == "number":
            lo, hi = float(s.get("minimum", 0.0)), float(s.get("maximum", 1.0))
            return round(self.rng.uniform(lo, max(lo, hi)), 4)
        if t == "boolean":
            return self.rng.random() < 0.5
        if t == "null":
            return None
        return self.string(s, name)

    def string(self, s: dict[str, Any], name: str) -> str:
        fmt = s.get("format")
        if fmt == "date-time":
            return "2026-01-02T03:04:05Z"
        if fmt == "date":
            return "2026-01-02"
        if fmt == "time":
            return "03:04:05"
        if fmt == "email":
            return "someone@example.com"
        if fmt in ("uri", "url"):
            return "https://example.com/"
        if fmt == "uuid":
            return "12345678-1234-5678-1234-567812345678"
        if "pattern" in s and not self.ignore_enum:
            cands = [f"({c})" for c in "ABCDEFGH"] + ["yes", "no", "True", "False", "0", "1", self.text(1, 3)]
            self.rng.shuffle(cands)
            for c in cands:
                if re.search(s["pattern"], c):
                    return c
        lo, hi = (20, 45) if name in ("input", "question", "premise") else (6, 25)
        text = self.text(lo, hi)
        if name == "reasoning":
            text = f"The text says {text}, so that settles it"
        min_len, max_len = int(s.get("minLength", 0)), s.get("maxLength")
        while len(text) < min_len:
            text += " " + self.text(3, 8)
        return text[: int(max_len)] if max_len is not None else text


def answer_for(model: str, messages: list[dict[str, Any]], fmt: Any, options: dict[str, Any],
               ignore_enum: bool = False) -> str:
    """The deterministic reply text for a chat request."""
    text = _last_user_text(messages)
    seed_text = json.dumps([model, messages, options.get("seed"), options.get("temperature")], sort_keys=True)
    words = _source_words(text)
    if isinstance(fmt, dict):
        gen = _Gen(seed_text, words, fmt, ignore_enum)
        return json.dumps(gen.instance(fmt), ensure_ascii=False)
    gen = _Gen(seed_text, words, {})
    if fmt == "json":
        return json.dumps({"response": gen.text(6, 20)}, ensure_ascii=False)
    return gen.text(8, 30) + "."


def _pieces(text: str, size: int) -> list[str]:
    """Split a reply into token-like pieces of about ``size`` characters."""
    size = max(1, size)
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def _violate(content: str, fmt: Any) -> str:
    """Valid JSON that breaks the schema: the first required property removed, or a wrong type."""
    try:
        obj = json.loads(content)
    except ValueError:
        return '{"unexpected": true}'
    if isinstance(obj, dict) and obj:
        required = (fmt or {}).get("required") or list(obj)
        obj.pop(required[0], None)
        obj["unexpected"] = 1
        return json.dumps(obj)
    return json.dumps({"unexpected": obj})


# -- the server ----------------------------------------------------------------------------------
class OllamaStandin:
    """The stand-in server; ``start()`` binds 127.0.0.1 on an ephemeral port (or ``port``)."""

    def __init__(self, models: tuple[Model, ...] | list[Model] = DEFAULT_MODELS, *, num_parallel: int = 1,
                 latency: float = 0.0, token_delay: float = 0.0, piece_chars: int = 8, load_time: float = 0.0,
                 max_queue: int = 512, version: str = "0.12.6", port: int = 0) -> None:
        self.models = list(models)
        self.num_parallel = num_parallel
        self.latency = latency
        self.token_delay = token_delay
        self.piece_chars = piece_chars
        self.load_time = load_time
        self.max_queue = max_queue
        self.version = version
        self.port = port
        self.log: list[RequestRecord] = []
        self.faults: list[Fault] = []
        self.chat_requests = 0
        self.chat_completed = 0
        self.completed_prompts: collections.Counter[str] = collections.Counter()
        self.waiting = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._slots: dict[str, threading.Semaphore] = {}
        self._loaded: dict[str, float] = {}     # model -> expires_at (monotonic)
        self._loading = 0
        self._hold_after: int | None = None
        self._cond = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifetime -------------------------------------------------------------------------------
    def start(self) -> OllamaStandin:
        handler = type("Handler", (_Handler,), {"standin": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="ollama-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.release()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> OllamaStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- knobs ----------------------------------------------------------------------------------
    def inject(self, mode: str, times: int = 1, match: str | None = None, **params: Any) -> None:
        """Make the next ``times`` chat/generate requests (containing ``match``, if given) fail so."""
        if mode not in FAULTS:
            raise ValueError(f"unknown fault {mode!r}; known: {', '.join(FAULTS)}")
        with self._lock:
            self.faults.append(Fault(mode, times, match, **params))

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def hold_after(self, completed: int) -> None:
        """Requests arriving after ``completed`` finished generations wait (no bytes) until release()."""
        with self._cond:
            self._hold_after = completed
            self._cond.notify_all()

    def release(self) -> None:
        with self._cond:
            self._hold_after = None
            self._cond.notify_all()

    def reset_counters(self) -> None:
        with self._lock:
            self.log.clear()
            self.chat_requests = self.chat_completed = self.max_in_flight = self.dropped = 0
            self.completed_prompts.clear()

    def requests(self, path: str | None = None) -> list[RequestRecord]:
        with self._lock:
            return [r for r in self.log if path is None or r.path == path]

    # -- internals used by the handler ------------------------------------------------------------
    def find_model(self, name: str) -> Model | None:
        want = name.lower()
        if ":" not in want.rsplit("/", 1)[-1]:
            want += ":latest"
        for m in self.models:
            if m.name.lower() == want:
                return m
        return None

    def take_fault(self, prompt: str) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if f.times > 0 and (f.match is None or f.match in prompt):
                    f.times -= 1
                    if f.times == 0:
                        self.faults.remove(f)
                    return f
        return None

    def slot(self, model: str) -> threading.Semaphore:
        with self._lock:
            if model not in self._slots:
                self._slots[model] = threading.Semaphore(self.num_parallel)
            return self._slots[model]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ollama-standin"
    sys_version = ""
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

    def setup(self) -> None:
        super().setup()
        # Go's net package sets TCP_NODELAY on every connection; without it, Nagle + delayed ACKs add ~40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr logging
        pass

    # -- plumbing -------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _read_body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Date", self.date_time_string())
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj: Any, status: int = 200) -> None:
        self._send(status, json.dumps(obj, separators=(",", ":")).encode(), "application/json; charset=utf-8")

    def _text(self, text: str, status: int = 200) -> None:
        self._send(status, text.encode(), "text/plain; charset=utf-8")

    def _dispatch(self, method: str) -> None:
        srv = self.standin
        path = self.path.split("?", 1)[0]
        raw = self._read_body() if method in ("POST", "DELETE") else b""
        body: Any = None
        parse_error = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError as exc:
                parse_error = f"invalid character looking for beginning of value ({exc.msg})"
        with srv._lock:
            srv.log.append(RequestRecord(method, path, dict(self.headers.items()), body if raw else None))
        allowed = self.ROUTES.get(path)
        try:
            if allowed is None:
                raise _HTTPError(404, "404 page not found", "text/plain")
            if method not in allowed:
                raise _HTTPError(405, "405 method not allowed", "text/plain")
            if method in ("POST", "DELETE"):
                if not raw:
                    raise _HTTPError(400, "missing request body")
                if parse_error:
                    raise _HTTPError(400, parse_error)
                if not isinstance(body, dict):
                    raise _HTTPError(400, "json: cannot unmarshal array into Go value of type api.Request")
            name = path.strip("/").replace("api/", "") or "root"
            getattr(self, f"_h_{name}")(body)
        except _HTTPError as exc:
            if exc.status == -1:
                return
            if exc.content_type == "text/plain":
                self._text(exc.error or "", exc.status)
            elif exc.error is None:
                self._send(exc.status, b"", "application/json; charset=utf-8")
            else:
                self._json({"error": exc.error}, exc.status)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _client_gone(self) -> bool:
        """True when the client closed its side (a blocked request whose caller went away)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if readable:
                return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True
        return False

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
            raise _HTTPError(404, f"model '{full}' not found")
        self._json({
            "modelfile": f"FROM {m.name}\n", "parameters": "stop \"<|eot_id|>\"", "template": "{{ .Prompt }}",
            "details": m.details(), "capabilities": list(m.capabilities), "modified_at": "2026-01-02T03:04:05Z",
            "model_info": {"general.architecture": m.family, f"{m.family}.context_length": m.context_length},
        })

    def _h_delete(self, body: dict[str, Any]) -> None:
        m = self.standin.find_model(str(body.get("model") or ""))
        if m is None:
            raise _HTTPError(404, f"model '{body.get('model')}' not found")
        self.standin.models.remove(m)
        self._send(200, b"", "application/json; charset=utf-8")

    def _h_copy(self, body: dict[str, Any]) -> None:
        m = self.standin.find_model(str(body.get("source") or ""))
        if m is None:
            raise _HTTPError(404, f"model '{body.get('source')}' not found")
        dst = str(body.get("destination") or "")
        self.standin.models.append(Model(dst if ":" in dst else f"{dst}:latest", m.family, m.parameter_size,
                                         m.quantization_level, m.size, m.context_length, m.capabilities))
        self._send(200, b"", "application/json; charset=utf-8")

    def _h_pull(self, body: dict[str, Any]) -> None:
        name = str(body.get("model") or body.get("name") or "")
        known = name.split(":")[0] in {m.name.split(":")[0] for m in self.standin.models} or name.startswith("pullable")
        if not known:
            raise _HTTPError(500, "pull model manifest: file does not exist")
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
            raise _HTTPError(404, f'model "{name}" not found, try pulling it first')
        inputs = body.get("input", "")
        if isinstance(inputs, str):
            inputs = [inputs] if inputs else []
        if not isinstance(inputs, list) or not all(isinstance(x, str) for x in inputs):
            raise _HTTPError(400, "invalid input type")
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
            raise _HTTPError(404, f'model "{name}" not found, try pulling it first')
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
            raise _HTTPError(400, "json: cannot unmarshal number into Go struct field ChatRequest.model of type string")
        if chat and not name:
            raise _HTTPError(400, "model is required")
        if chat and "messages" in body and not isinstance(body["messages"], list | type(None)):
            raise _HTTPError(400, "json: cannot unmarshal string into Go struct field ChatRequest.messages "
                                  "of type []api.Message")
        think = body.get("think")
        if isinstance(think, str) and think not in THINK_VALUES:
            raise _HTTPError(400, f'invalid think value: "{think}" (must be "high", "medium", "low", "max", '
                                  "true, or false)")
        top = body.get("top_logprobs")
        if top is not None and not (isinstance(top, int) and 0 <= top <= 20):
            raise _HTTPError(400, "top_logprobs must be between 0 and 20")
        keep_alive = body.get("keep_alive")
        if isinstance(keep_alive, str) and re.fullmatch(r"-?\d+(\.\d+)?", keep_alive.strip()):
            raise _HTTPError(400, f'time: missing unit in duration "{keep_alive}"')
        m = self.standin.find_model(name or "")
        if m is None:
            raise _HTTPError(404, f"model '{name or ''}' not found")
        if "completion" not in m.capabilities:
            raise _HTTPError(400, f'"{name}" does not support {"chat" if chat else "generate"}')
        if think not in (None, False) and "thinking" not in m.capabilities:
            raise _HTTPError(400, f'"{name}" does not support thinking')
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise _HTTPError(400, "json: cannot unmarshal into Go struct field options of type map[string]any")
        if "stop" in options and not isinstance(options["stop"], list):
            raise _HTTPError(500, 'option "stop" must be of type array')
        for key in ("num_predict", "num_ctx", "seed"):
            if key in options and not isinstance(options[key], int | float):
                raise _HTTPError(500, f'option "{key}" must be of type integer')
        fmt = body.get("format")
        if fmt not in (None, "", "json") and not isinstance(fmt, dict):
            raise _HTTPError(500, f"invalid format: {json.dumps(json.dumps(fmt))}; expected \"json\" or a valid "
                                  "JSON Schema object")
        return m, options

    def _generate_like(self, body: dict[str, Any], chat: bool) -> None:
        srv = self.standin
        m, options = self._validate(body, chat)
        self._raw = bool(body.get("raw"))
        if self._raw and (body.get("template") or body.get("system") or body.get("context")):
            raise _HTTPError(400, "raw mode does not support template, system, or context")
        stream = body.get("stream") is not False
        messages = (body.get("messages") or []) if chat else None
        prompt_text = _last_user_text(messages) if chat else str(body.get("prompt") or "")
        empty = (not messages) if chat else not body.get("prompt")
        if empty:      # load / unload
            reason = "unload" if body.get("keep_alive") in (0, 0.0, "0", "0s") else "load"
            obj = {"model": body["model"], "created_at": _now(), "done": True, "done_reason": reason}
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
        with srv._lock:
            if chat:
                srv.chat_requests += 1
        fault = srv.take_fault(prompt_text)
        mode = fault.mode if fault else None
        if mode == "close":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            raise _HTTPError(-1, None)
        if mode == "http500":
            raise _HTTPError(500, "model runner has unexpectedly stopped, this may be due to resource limitations "
                                  "or an internal error, check ollama server logs for details")
        if mode == "http500_text":
            raise _HTTPError(500, "Internal Server Error", "text/plain")
        if mode == "http500_empty":
            raise _HTTPError(500, None)
        if mode == "http503":
            raise _HTTPError(503, BUSY)
        if mode == "http404":
            raise _HTTPError(404, f"model '{body['model']}' not found")

        # Wait for a slot (and a hold): no bytes at all go out meanwhile.
        load_ns = 0
        loading = m.name not in srv._loaded
        with srv._cond:
            queued = loading and srv.load_time > 0     # the scheduler's pending queue: only while loading
            if queued:
                if srv._loading >= srv.max_queue:
                    raise _HTTPError(503, BUSY)
                srv._loading += 1
            srv.waiting += 1
        slot = srv.slot(m.name)
        acquired = False
        try:
            while not srv._stopping.is_set():
                with srv._cond:
                    while srv._hold_after is not None and srv.chat_completed >= srv._hold_after \
                            and not srv._stopping.is_set():
                        srv._cond.wait(0.05)
                if slot.acquire(timeout=0.05):
                    acquired = True
                    break
        finally:
            with srv._cond:
                srv.waiting -= 1
                if queued:
                    srv._loading -= 1
        if not acquired:
            raise _HTTPError(-1, None)
        try:
            if self._client_gone():
                with srv._lock:
                    srv.dropped += 1
                self.close_connection = True
                raise _HTTPError(-1, None)
            with srv._lock:
                srv.in_flight += 1
                srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
            t0 = time.monotonic_ns()
            if m.name not in srv._loaded:
                if srv.load_time:
                    srv._stopping.wait(srv.load_time)
                srv._loaded[m.name] = time.monotonic() + 300
                load_ns = int(srv.load_time * 1e9) or 1_234_567
            if srv.latency:
                srv._stopping.wait(srv.latency)
            fmt = body.get("format")
            if chat:
                content = answer_for(m.name, messages, fmt, options, mode == "off_label")
            else:
                content = answer_for(m.name, [{"role": "user", "content": prompt_text}], fmt, options)
            done_reason = "stop"
            if mode == "bad_json":
                content, done_reason = content[: max(1, len(content) // 2)], "length"
            elif mode == "schema_violation":
                content = _violate(content, fmt)
            pieces = _pieces(content, srv.piece_chars)
            for stop in options.get("stop") or []:
                joined = "".join(pieces)
                if stop and stop in joined:
                    pieces = _pieces(joined[: joined.index(stop)], srv.piece_chars)
            num_predict = options.get("num_predict")
            if isinstance(num_predict, int | float) and 0 <= num_predict < len(pieces):
                pieces, done_reason = pieces[: int(num_predict)], "length"
            thinking = None
            if chat and "thinking" in m.capabilities and body.get("think") is not False:
                thinking = "Let me think about the request."
            metrics = {"prompt_eval_count": max(1, len(prompt_text.split())), "eval_count": max(1, len(pieces))}

            def completed(delta: int = 1) -> None:
                # counted once the last line is out, before the stream's terminator: a client cannot see its
                # call finished before the stand-in has counted it
                if not chat:
                    return
                with srv._cond:
                    srv.chat_completed += delta
                    srv.completed_prompts[prompt_text] += delta
                    srv._cond.notify_all()

            if stream:
                self._stream_reply(body["model"], chat, pieces, thinking, done_reason, metrics, t0, load_ns, fault,
                                   completed)
            else:
                obj = self._final(body["model"], chat, "".join(pieces), done_reason, metrics, t0, load_ns)
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
        finally:
            with srv._lock:
                srv.in_flight = max(0, srv.in_flight - 1) if acquired else srv.in_flight
            slot.release()

    def _final(self, model: str, chat: bool, last: str, done_reason: str, metrics: dict[str, int], t0: int,
               load_ns: int) -> dict[str, Any]:
        total = max(1, time.monotonic_ns() - t0)
        obj: dict[str, Any] = {"model": model, "created_at": _now()}
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

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _line(self, obj: Any) -> None:
        self._chunk(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n")

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Date", self.date_time_string())
        self.end_headers()

    def _stream_lines(self, lines: list[dict[str, Any]]) -> None:
        self._start_stream()
        for line in lines:
            self._line(line)
        self._chunk(b"")

    def _stream_reply(self, model: str, chat: bool, pieces: list[str], thinking: str | None, done_reason: str,
                      metrics: dict[str, int], t0: int, load_ns: int, fault: Fault | None,
                      completed: Any) -> bool:
        """Stream the reply; True when the final chunk went out."""
        srv = self.standin
        mode = fault.mode if fault else None
        after = fault.after_pieces if fault else 0
        try:
            self._start_stream()
            if thinking:
                self._line({"model": model, "created_at": _now(),
                            "message": {"role": "assistant", "content": "", "thinking": thinking}, "done": False})
            body_pieces, last = (pieces[:-1], pieces[-1]) if len(pieces) > 1 else (pieces, "")
            for i, piece in enumerate(body_pieces):
                if mode and i == min(after, len(body_pieces) - 1):
                    if mode == "error_line":
                        self._line({"error": RUNNER_ERROR})
                        self._chunk(b"")
                        return False
                    if mode == "cut":
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return False
                    if mode == "malformed_line":
                        self._chunk(b'{"model":"' + model.encode() + b'","message":{"role":\n')
                    if mode == "blank_line":
                        self._chunk(b"\n")
                    if mode == "stall":      # a long silence; generation stops when the client leaves
                        end = time.monotonic() + fault.seconds
                        while time.monotonic() < end and not srv._stopping.is_set():
                            srv._stopping.wait(0.02)
                            if self._client_gone():
                                self.close_connection = True
                                return False
                obj = {"model": model, "created_at": _now(), "done": False}
                if chat:
                    obj["message"] = {"role": "assistant", "content": piece}
                else:
                    obj["response"] = piece
                self._line(obj)
                if srv.token_delay:
                    srv._stopping.wait(srv.token_delay)
            if mode == "no_done":
                self._chunk(b"")
                return False
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


def main() -> None:
    """Run the stand-in in the foreground (for trying the CLI by hand)."""
    p = argparse.ArgumentParser(description="Ollama stand-in server for tests")
    p.add_argument("--port", type=int, default=11435)
    p.add_argument("--parallel", type=int, default=1)
    p.add_argument("--latency", type=float, default=0.0)
    p.add_argument("--token-delay", type=float, default=0.0)
    args = p.parse_args()
    srv = OllamaStandin(num_parallel=args.parallel, latency=args.latency, token_delay=args.token_delay,
                        port=args.port).start()
    print(f"ollama stand-in on {srv.url} (models: {', '.join(m.name for m in srv.models)})", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()


if __name__ == "__main__":
    main()
