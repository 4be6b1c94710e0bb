"""What the teacher stand-ins (tests/ollama_standin.py, tests/openai_standin.py) share: deterministic answers
drawn from the prompt, injectable faults, parallel slots with silent queueing, holds, counters, and the HTTP
plumbing of a stdlib ``ThreadingHTTPServer`` that streams chunked responses flushed line by line.

Each stand-in subclasses :class:`StandinServer` (its state and knobs) and :class:`BaseHandler` (its routes and
wire format). Faults common to both (``FAULTS``) are injected with :meth:`StandinServer.inject` for the next
chat requests (optionally only those whose prompt contains a substring). The runaway faults a client must
survive with a deadline and a size cap: ``trickle`` (one byte every ``seconds``, never finishing the line),
``endless`` (valid content pieces every ``seconds``, never finishing the reply) and ``huge_line`` (one line of
``size`` bytes, sent in 1 MB chunks until the client leaves; ``bytes_sent`` counts what went out).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import json
import random
import re
import select
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self

FAULTS = (
    "http500", "http500_text", "http500_empty", "http503", "http404", "close",
    "error_line", "cut", "no_done", "stall", "malformed_line", "blank_line", "bad_json", "schema_violation",
    "off_label", "trickle", "endless", "huge_line",
)
PRE_STREAM_FAULTS = {"http500", "http500_text", "http500_empty", "http503", "http404", "close"}
RUNAWAY_FAULTS = {"trickle", "endless", "huge_line"}


def now_rfc3339() -> str:
    """RFC 3339 UTC with up to 9 fractional digits, trailing zeros trimmed (as Go marshals time)."""
    t = datetime.now(UTC)
    frac = f"{t.microsecond:06d}".rstrip("0")
    return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


def digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


@dataclass
class Fault:
    """A failure to inject into the next ``times`` matching requests."""

    mode: str
    times: int = 1
    match: str | None = None
    seconds: float = 5.0            # "stall": the silence; "trickle", "endless": the gap between sends
    after_pieces: int = 2           # mid-stream faults happen after this many content pieces
    size: int = 64 * 1024 * 1024    # "huge_line": the line's length in bytes


@dataclass
class RequestRecord:
    """One received request."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float = field(default_factory=time.monotonic)


class HTTPError(Exception):
    """Answer the request with ``status`` and ``error`` in the stand-in's error shape, or with ``body`` as
    it is (``-1``: answer nothing, the connection is already gone)."""

    def __init__(self, status: int, error: str | None, content_type: str = "application/json",
                 body: Any = None) -> None:
        self.status, self.error, self.content_type, self.body = status, error, content_type, body


# -- content generation -------------------------------------------------------------------------
def last_user_text(messages: list[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "user":
            return str(m.get("content") or "")
    return str(messages[-1].get("content") or "") if messages else ""


def _is_schema(obj: dict[str, Any]) -> bool:
    return obj.get("type") == "object" and isinstance(obj.get("properties"), dict)


def _find_schema(text: str) -> tuple[dict[str, Any], int] | None:
    for start in [m.start() for m in re.finditer(r"\{", text)][::-1]:
        try:
            obj, _ = json.JSONDecoder().raw_decode(text[start:])
        except ValueError:
            continue
        if isinstance(obj, dict) and _is_schema(obj):
            return obj, start
    return None


def schema_in(text: str) -> dict[str, Any] | None:
    """The last JSON schema written into a prompt (what a model told "follow this schema" would follow)."""
    found = _find_schema(text)
    return found[0] if found else None


def _source_words(text: str) -> list[str]:
    """Words of the last JSON object in the text before any schema written into it (the values of a
    retrieved row), else of the text."""
    found = _find_schema(text)
    if found:
        text = text[:found[1]]
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
               ignore_enum: bool = False, known: dict[str, str] | None = None) -> str:
    """The deterministic reply text for a chat request: for a free-text request whose last user message is
    one of ``known``, that answer (a model that knows some questions), else text drawn from the prompt."""
    text = last_user_text(messages)
    if fmt is None and known and text in known:
        return known[text]
    seed_text = json.dumps([model, messages, options.get("seed"), options.get("temperature")], sort_keys=True)
    words = _source_words(text)
    if isinstance(fmt, dict):
        gen = _Gen(seed_text, words, fmt, ignore_enum)
        return json.dumps(gen.instance(fmt), ensure_ascii=False)
    gen = _Gen(seed_text, words, {})
    if fmt == "json":
        return json.dumps({"response": gen.text(6, 20)}, ensure_ascii=False)
    return gen.text(8, 30) + "."


def pieces(text: str, size: int) -> list[str]:
    """Split a reply into token-like pieces of about ``size`` characters."""
    size = max(1, size)
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def violate(content: str, fmt: Any) -> str:
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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024       # as servers listen (Go 4096, uvicorn 2048); socketserver's 5 drops connects

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (a cancelled call, a closed keep-alive connection) is normal, not an error."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


# -- the server state ------------------------------------------------------------------------------
class StandinServer:
    """State and knobs shared by the stand-ins; ``start()`` binds 127.0.0.1 on an ephemeral port (or ``port``).

    Counters for assertions: ``chat_requests`` (chat requests received), ``chat_completed`` (generations that
    ran to their final chunk), ``completed_prompts`` (a Counter of last-user-message texts completed),
    ``waiting`` (requests waiting for a slot), ``in_flight``, ``max_in_flight``, ``dropped`` (waiters whose
    client left), ``bytes_sent`` (by the runaway faults); ``log`` holds every request. ``hold_after(n)``
    makes every request after the n-th completed generation wait (no bytes) until ``release()``.
    """

    handler: ClassVar[type[BaseHandler]]
    name: ClassVar[str] = "standin"

    def __init__(self, *, num_parallel: int = 1, latency: float = 0.0, token_delay: float = 0.0,
                 piece_chars: int = 8, pace: bool = False, port: int = 0) -> None:
        self.num_parallel = num_parallel
        self.latency = latency
        self.pace = pace
        self.token_delay = token_delay
        self.piece_chars = piece_chars
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
        self.bytes_sent = 0
        self.known_answers: dict[str, str] = {}
        """Free-text questions this "model" answers with a fixed reply (the rest get text drawn from the prompt)."""
        self._lock = threading.Lock()
        self._slots: dict[str, threading.Semaphore] = {}
        self._hold_after: int | None = None
        self._admitted = 0  # generations let through a slot, the count hold_after compares with
        self._cond = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

    # -- lifetime -------------------------------------------------------------------------------
    def start(self) -> Self:
        handler = type("Handler", (self.handler,), {"standin": self})
        self._server = _Server(("127.0.0.1", self.port), handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"{self.name}-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.release()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def kill(self) -> None:
        """The host dies: it stops listening and every open connection is reset mid-request."""
        self.stop()
        with self._lock:
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- knobs ----------------------------------------------------------------------------------
    def inject(self, mode: str, times: int = 1, match: str | None = None, **params: Any) -> None:
        """Make the next ``times`` chat requests (containing ``match``, if given) fail so."""
        if mode not in FAULTS:
            raise ValueError(f"unknown fault {mode!r}; known: {', '.join(FAULTS)}")
        with self._lock:
            self.faults.append(Fault(mode, times, match, **params))

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def hold_after(self, completed: int) -> None:
        """Once ``completed`` generations were let through in all (at most that many finish), further
        requests wait (no bytes) until release()."""
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
            self.chat_requests = self.chat_completed = self.max_in_flight = self.dropped = self.bytes_sent = 0
            self._admitted = 0
            self.completed_prompts.clear()

    def requests(self, path: str | None = None) -> list[RequestRecord]:
        with self._lock:
            return [r for r in self.log if path is None or r.path == path]

    # -- internals used by the handlers -----------------------------------------------------------
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

    def count_request(self) -> None:
        with self._lock:
            self.chat_requests += 1

    def completed(self, prompt: str, delta: int = 1) -> None:
        """Count a generation as finished (once its last line is out, before the stream's terminator: a
        client cannot see its call finished before the stand-in has counted it)."""
        with self._cond:
            self.chat_completed += delta
            self.completed_prompts[prompt] += delta
            self._cond.notify_all()


# -- the HTTP plumbing -----------------------------------------------------------------------------
class BaseHandler(BaseHTTPRequestHandler):
    """Routing, bodies, chunked streaming, slot waiting and the runaway faults; subclasses add ``ROUTES``
    (path → allowed methods), one ``_h_<name>`` method per route and :meth:`error_body`."""

    protocol_version = "HTTP/1.1"
    sys_version = ""
    standin: StandinServer
    ROUTES: ClassVar[dict[str, tuple[str, ...]]] = {}

    def setup(self) -> None:
        super().setup()
        # Go's net package and uvicorn set TCP_NODELAY; without it, Nagle + delayed ACKs add ~40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.standin._lock:
            self.standin._connections.add(self.connection)

    def finish(self) -> None:
        with self.standin._lock:
            self.standin._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr logging
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def error_body(self, status: int, error: str) -> Any:
        """The JSON body of an error answer, in the server's own shape."""
        return {"error": error}

    def route_name(self, path: str) -> str:
        return path.strip("/").replace("/", "_") or "root"

    def not_found(self, path: str) -> HTTPError:
        return HTTPError(404, "404 page not found", "text/plain")

    def bad_body(self, kind: str, detail: str) -> HTTPError:
        """The answer to a POST without a body (``kind`` "missing"), with invalid JSON ("invalid") or with JSON
        that is not an object ("type")."""
        return HTTPError(400, {"missing": "missing request body", "type": "json: cannot unmarshal array into Go "
                               "value of type api.Request"}.get(kind, detail))

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
                raise self.not_found(path)
            if method not in allowed:
                raise HTTPError(405, "405 method not allowed", "text/plain")
            if method in ("POST", "DELETE"):
                if not raw:
                    raise self.bad_body("missing", "")
                if parse_error:
                    raise self.bad_body("invalid", parse_error)
                if not isinstance(body, dict):
                    raise self.bad_body("type", "")
            getattr(self, f"_h_{self.route_name(path)}")(body)
        except HTTPError as exc:
            if exc.status == -1:
                return
            if exc.body is not None:
                self._json(exc.body, exc.status)
            elif exc.content_type == "text/plain":
                self._text(exc.error or "", exc.status)
            elif exc.error is None:
                self._send(exc.status, b"", "application/json; charset=utf-8")
            else:
                self._json(self.error_body(exc.status, exc.error), exc.status)
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

    def _close_now(self) -> None:
        """Close the connection before any status line (a server that died)."""
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    @contextlib.contextmanager
    def in_slot(self, model: str) -> Iterator[None]:
        """Wait for a free slot of ``model`` (and for any hold) sending no bytes, as a busy server does; a
        request whose client left meanwhile is dropped without generating."""
        srv = self.standin
        with srv._cond:
            srv.waiting += 1
        slot = srv.slot(model)
        acquired = False
        try:
            while not srv._stopping.is_set():
                if not slot.acquire(timeout=0.05):
                    continue
                with srv._cond:
                    # counted at admission, under the lock: two slots freed at once must not both pass a
                    # hold of "after n" that only one of them fits under
                    if srv._hold_after is None or srv._admitted < srv._hold_after:
                        srv._admitted += 1
                        acquired = True
                if acquired:
                    break
                slot.release()
                with srv._cond:
                    srv._cond.wait(0.05)
        finally:
            with srv._cond:
                srv.waiting -= 1
        if not acquired:
            raise HTTPError(-1, None)
        try:
            if self._client_gone():
                with srv._lock:
                    srv.dropped += 1
                self.close_connection = True
                raise HTTPError(-1, None)
            with srv._lock:
                srv.in_flight += 1
                srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
            try:
                yield
            finally:
                with srv._lock:
                    srv.in_flight = max(0, srv.in_flight - 1)
        finally:
            slot.release()

    def wait_latency(self, streamed: bool) -> None:
        """The server's latency before a reply starts (a paced stream spends it between its pieces instead)."""
        srv = self.standin
        if srv.latency and not (srv.pace and streamed):
            srv._stopping.wait(srv.latency)

    def pace_piece(self, t0_ns: int, i: int, n: int) -> None:
        """Before piece ``i`` of ``n`` (``n``: the end): ``token_delay``, or with ``pace`` the wait that
        spreads the reply over ``latency`` seconds from ``t0_ns`` (``time.monotonic_ns()``), as a server
        generating tokens streams them; late pieces do not push the later ones back."""
        srv = self.standin
        if srv.pace and srv.latency:
            left = t0_ns / 1e9 + srv.latency * (i + 1) / (n + 1) - time.monotonic()
            if left > 0:
                srv._stopping.wait(left)
        elif srv.token_delay and i < n:
            srv._stopping.wait(srv.token_delay)

    # -- chunked streaming ----------------------------------------------------------------------------
    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _start_stream(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Date", self.date_time_string())
        self.end_headers()

    def _wait_unless_gone(self, seconds: float) -> bool:
        """Sleep ``seconds`` in small steps; False as soon as the client left or the server stops."""
        srv = self.standin
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if srv._stopping.wait(min(0.02, max(0.0, end - time.monotonic()))) or self._client_gone():
                self.close_connection = True
                return False
        return not self._client_gone()

    def runaway(self, fault: Fault, line_start: bytes, piece_line: bytes) -> None:
        """Play a runaway fault until the client leaves (or the server stops): ``trickle`` sends
        ``line_start`` then one byte every ``seconds``; ``endless`` sends ``piece_line`` (one valid content
        piece) every ``seconds``; ``huge_line`` sends ``line_start`` then ``size`` bytes of content in 1 MB
        chunks, then the line's end."""
        srv = self.standin
        if fault.mode == "huge_line":
            self._chunk(line_start)
            block = b"x" * (1 << 20)
            left = fault.size
            while left > 0 and not srv._stopping.is_set():
                part = block[:left]
                self._chunk(part)
                with srv._lock:
                    srv.bytes_sent += len(part)
                left -= len(part)
            self._chunk(b'"}}\n')
            return
        if fault.mode == "trickle":
            self._chunk(line_start)
        while not srv._stopping.is_set():
            data = b"x" if fault.mode == "trickle" else piece_line
            self._chunk(data)
            with srv._lock:
                srv.bytes_sent += len(data)
            if not self._wait_unless_gone(fault.seconds):
                return


# -- running a stand-in by hand ------------------------------------------------------------------------
def command_line(description: str, port: int) -> argparse.ArgumentParser:
    """The options every stand-in takes when run by hand (or by the benchmark)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--port", type=int, default=port, help="0: any free port (printed on the first line)")
    p.add_argument("--parallel", type=int, default=1, help="parallel slots")
    p.add_argument("--latency", type=float, default=0.0, help="seconds before each reply starts")
    p.add_argument("--token-delay", type=float, default=0.0, help="seconds between streamed pieces")
    p.add_argument("--piece-chars", type=int, default=8, help="characters per streamed piece")
    p.add_argument("--pace", action="store_true",
                   help="stream each reply over --latency seconds instead of waiting --latency before it")
    return p


def knobs(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`StandinServer` keyword arguments of :func:`command_line`'s options."""
    return {"num_parallel": args.parallel, "latency": args.latency, "token_delay": args.token_delay,
            "piece_chars": args.piece_chars, "pace": args.pace, "port": args.port}


def serve(srv: StandinServer, banner: str) -> None:
    """Run a started stand-in in the foreground until Ctrl-C; ``banner`` is printed first (it names the URL)."""
    print(banner, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()
