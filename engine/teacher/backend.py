"""The teacher's backends: one small interface over the servers a teacher runs on.

A :class:`Backend` lists the models a server offers and makes one streamed, schema-constrained chat
*attempt*. Everything around an attempt is the same for every server and lives above this module: retries
with backoff, the per-call deadline and the circuit breaker (:func:`engine.teacher.client.chat`), the quality
checks (:mod:`engine.teacher.ask`) and the cache (:mod:`engine.teacher.calls`). Two implementations:
:class:`~engine.teacher.ollama_backend.OllamaBackend` (Ollama's ``/api/chat``, NDJSON) and
:class:`~engine.teacher.openai_backend.OpenAIBackend` (``/v1/chat/completions``, server-sent events: vLLM,
llama.cpp's server, LM Studio).

Both read the HTTP stream themselves, line by line, through :meth:`Backend.lines`: a line longer than the
reply cap, or a reply that grows past it (:class:`Reply`), ends the attempt at once instead of being
buffered, so a 400 MB line or an endless stream costs a bounded amount of memory. Proxy variables are
ignored (``trust_env=False``): the teacher is a local or SSH-forwarded host.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import ssl
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from engine.errors import EngineError

if TYPE_CHECKING:
    import httpx

    from engine.teacher.client import TeacherSettings

log = logging.getLogger(__name__)

ERROR_BODY_BYTES = 65_536
LISTING_BYTES = 16 * 1024 * 1024
LINE_OVERHEAD = 65_536      # a stream line carries one piece of the reply plus its JSON envelope
CONNECTIONS_PER_CLIENT = 8

# What went wrong in one attempt, in the words the run's summary groups failures by.
CONNECT = "could not connect"
READ_TIMEOUT = "read timeout"
CONNECTION_LOST = "connection lost"
BROKEN_STREAM = "broken stream"
SERVER_ERROR = "server error mid-stream"
TOO_LARGE = "reply too large"
UNEXPECTED = "unexpected reply"


@dataclass(frozen=True)
class ModelInfo:
    """One model a server offers, as `rebase-tui models` shows it (fields a server does not report are
    empty or 0). ``digest`` identifies the weights: Ollama's digest, or for an OpenAI-compatible server a
    fingerprint of its listing entry."""

    name: str
    size: int
    family: str
    parameter_size: str
    quantization: str
    digest: str
    modified_at: str
    context: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "family": self.family,
                "parameter_size": self.parameter_size, "quantization": self.quantization,
                "digest": self.digest, "modified_at": self.modified_at, "context": self.context}


class AttemptFailed(Exception):
    """One attempt failed. ``kind`` names the fault for summaries (``HTTP 503``, :data:`CONNECT`, ...);
    ``what`` describes it; ``retryable`` says whether another attempt may help."""

    def __init__(self, kind: str, what: str, *, retryable: bool = True) -> None:
        super().__init__(what)
        self.kind, self.what, self.retryable = kind, what, retryable


@dataclass(frozen=True)
class Attempt:
    """A finished attempt: why the generation stopped, the server's token counts, the time to first byte."""

    done_reason: str | None
    metrics: dict[str, int]
    ttfb: float | None


class Reply:
    """The text of one attempt as it streams, capped at ``cap`` characters; ``on_text`` gets a getter of the
    text so far after each piece (joining is left to whoever wants the text: a throttled view asks rarely)."""

    def __init__(self, cap: int, on_text: Callable[[Callable[[], str]], None] | None = None) -> None:
        self.cap, self.on_text = cap, on_text
        self.parts: list[str] = []
        self.size = 0

    def add(self, piece: str) -> None:
        if not piece:
            return
        self.size += len(piece)
        if self.size > self.cap:
            room = self.cap - (self.size - len(piece))
            self.parts.append(piece[:max(0, room)])
            raise AttemptFailed(TOO_LARGE, f"the reply passed {self.cap:,} characters (teacher.max_reply_chars)",
                                retryable=False)
        self.parts.append(piece)
        if self.on_text is not None:
            self.on_text(self.text)

    def text(self) -> str:
        if len(self.parts) > 1:
            self.parts = ["".join(self.parts)]
        return self.parts[0] if self.parts else ""


class Breaker:
    """The circuit breaker of one host: it trips when a call used up its attempts failing to connect while no
    call succeeded since its first such failure, i.e. the host was unreachable for a whole retry window. A
    tripped breaker makes every later call fail at once, so a run stops instead of trying each remaining row
    several times."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.last_ok = float("-inf")

    @property
    def tripped(self) -> bool:
        return self.reason is not None

    def succeeded(self) -> None:
        self.last_ok = time.monotonic()

    def gave_up_connecting(self, since: float, reason: str) -> None:
        """A call failed for good, unable to connect since ``since`` (monotonic)."""
        if self.last_ok < since and self.reason is None:
            self.reason = reason


def error_message(raw: bytes) -> str:
    """The message of an error body as servers send it: Ollama ``{"error": "..."}``, vLLM and llama.cpp
    ``{"error": {"message": ...}}``, older vLLM ``{"object": "error", "message": ...}``, FastAPI
    ``{"detail": ...}``, or plain text."""
    text = raw.decode("utf-8", "replace").strip()
    try:
        obj = json.loads(text)
    except ValueError:
        return text[:200]
    if isinstance(obj, dict):
        inner = obj.get("error", obj)
        if isinstance(inner, str):
            return inner[:200]
        if isinstance(inner, dict):
            msg = inner.get("message", inner.get("detail", ""))
            return (msg if isinstance(msg, str) else json.dumps(msg))[:200]
    return text[:200]


class Backend(ABC):
    """One teacher server: its models and one streamed chat attempt. ``breaker`` is shared by every call
    made through this backend; ``notice`` receives one-off remarks worth a line in the run's log."""

    name: ClassVar[str]
    server: ClassVar[str]           # how messages name the server: "Ollama", "the OpenAI-compatible server"
    models_path: ClassVar[str]

    def __init__(self, settings: TeacherSettings, notice: Callable[[str], None] | None = None) -> None:
        import httpx

        self.settings, self.url, self.notice = settings, settings.url, notice
        self.breaker = Breaker()
        headers = {"Accept-Encoding": "identity"}
        if settings.api_key:
            headers["Authorization"] = f"Bearer {settings.api_key}"
        # httpcore's pool scans every connection for every waiting request at each state change, so its cost
        # grows with the square of the connections: at 64 in flight one pool spent more CPU than the rest of
        # the client. Several small clients, taken in turn, keep each scan short.
        shards = -(-max(1, settings.concurrency) // CONNECTIONS_PER_CLIENT)
        per_client = -(-max(1, settings.concurrency) // shards) + 2
        tls = ssl.create_default_context()      # one certificate store for all of them (loading one costs ~25 ms)
        self.clients = [httpx.AsyncClient(
            base_url=self.url, headers=headers, trust_env=False, verify=tls,
            timeout=httpx.Timeout(settings.connect_timeout, read=settings.read_timeout, pool=None),
            limits=httpx.Limits(max_connections=per_client, max_keepalive_connections=per_client))
            for _ in range(shards)]
        self._turn = itertools.count()

    @property
    def http(self) -> httpx.AsyncClient:
        """The HTTP client for the next request (the clients take turns)."""
        return self.clients[next(self._turn) % len(self.clients)]

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()

    # -- what each server does its own way ----------------------------------------------------------
    @abstractmethod
    def parse_models(self, doc: Any) -> list[ModelInfo]:
        """The models of the server's listing document; ValueError when it is not one."""

    @abstractmethod
    async def stream(self, settings: TeacherSettings, messages: list[dict[str, str]], schema: dict[str, Any] | None,
                     reply: Reply) -> Attempt:
        """Make one streamed chat request with ``settings``' model and options and read it into ``reply``;
        raise AttemptFailed or EngineError."""

    @abstractmethod
    def match(self, names: list[str], wanted: str) -> str | None:
        """The served model name that ``wanted`` refers to, or None."""

    @abstractmethod
    def missing_model(self, model: str, names: list[str] | None) -> EngineError:
        """The error for a model the server does not offer (``names``: what it offers, when known)."""

    @abstractmethod
    def unreachable(self) -> EngineError:
        """The error for a host that does not answer at all."""

    # -- shared machinery ----------------------------------------------------------------------------
    def host_fix(self) -> str:
        return "check the host and port (--host or teacher.host)"

    def key_refused(self, code: int, text: str) -> EngineError:
        return EngineError(f"{self.url} refused the request (HTTP {code}: {text or 'no details'})",
                           fix="set REBASE_TEACHER_API_KEY to a key the server accepts")

    def model_gone(self, text: str) -> EngineError:
        err = self.missing_model(self.settings.model, None)
        return EngineError(f"{err.message} (it went away during the run: {text or 'HTTP 404'})", fix=err.fix)

    async def list_models(self) -> list[ModelInfo]:
        """The server's models; EngineError when the host does not answer like this kind of server."""
        import httpx

        path = self.models_path
        try:
            async with self.http.stream("GET", path) as resp:
                raw = await read_capped(resp, LISTING_BYTES)
                code = resp.status_code
        except httpx.TransportError:
            raise self.unreachable() from None
        if code in (401, 403):
            raise self.key_refused(code, error_message(raw))
        if code != 200:
            raise EngineError(f"{self.url} answered {code} to {path} ({error_message(raw)[:80] or 'no details'}); "
                              f"it does not look like {self.server}", fix=self.host_fix())
        try:
            return self.parse_models(json.loads(raw))
        except (ValueError, TypeError, AttributeError, KeyError):
            raise EngineError(f"{self.url} sent a reply to {path} that is not {self.server}'s model list",
                              fix=self.host_fix()) from None

    async def check_model(self, model: str) -> ModelInfo:
        """The host answers and offers ``model``; else EngineError naming the problem and the fix."""
        models = await self.list_models()
        match = self.match([m.name for m in models], model)
        if match is None:
            raise self.missing_model(model, [m.name for m in models])
        return next(m for m in models if m.name == match)

    async def attempt(self, settings: TeacherSettings, messages: list[dict[str, str]],
                      schema: dict[str, Any] | None, reply: Reply) -> Attempt:
        """One attempt; every failure becomes AttemptFailed (EngineError when the run cannot go on)."""
        import httpx

        try:
            return await self.stream(settings, messages, schema, reply)
        except (AttemptFailed, EngineError):
            raise
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise AttemptFailed(CONNECT, f"{type(exc).__name__}: {str(exc)[:160]}") from None
        except httpx.TimeoutException as exc:
            raise AttemptFailed(READ_TIMEOUT, f"{type(exc).__name__} (no data within the read timeout of "
                                              f"{self.settings.read_timeout:g} s)") from None
        except httpx.TransportError as exc:
            raise AttemptFailed(CONNECTION_LOST, f"{type(exc).__name__}: {str(exc)[:160]}") from None
        except Exception as exc:  # noqa: BLE001 - a reply no rule foresaw fails its call, not the whole run
            log.warning("unexpected teacher reply", exc_info=True)
            raise AttemptFailed(UNEXPECTED, f"{type(exc).__name__}: {str(exc)[:160]}", retryable=False) from None

    @contextlib.asynccontextmanager
    async def post(self, path: str, body: dict[str, Any],
                   on_status: Callable[[int, str], None] | None = None) -> AsyncIterator[httpx.Response]:
        """POST ``body`` and yield the streaming response once it answered 200; a non-200 status is handed to
        ``on_status`` (which may raise its own error) and then to :meth:`status_error`."""
        async with self.http.stream("POST", path, json=body) as resp:
            if resp.status_code != 200:
                text = error_message(await read_capped(resp, ERROR_BODY_BYTES))
                if on_status is not None:
                    on_status(resp.status_code, text)
                raise self.status_error(resp.status_code, text)
            yield resp

    def status_error(self, code: int, text: str) -> Exception:
        """A non-200 answer: 404 means the model went away (the run ends), 401/403 a refused key; 5xx, 429
        and 408 are worth another attempt; any other 4xx is final for the call."""
        if code == 404:
            return self.model_gone(text)
        if code in (401, 403):
            return self.key_refused(code, text)
        return AttemptFailed(f"HTTP {code}", f"HTTP {code}: {text or '(empty body)'}",
                             retryable=code >= 500 or code in (408, 429))

    async def lines(self, resp: httpx.Response) -> AsyncIterator[bytes]:
        """The response body's lines (without the newline); AttemptFailed as soon as one line is longer than
        the reply cap allows, so a huge line is never held in memory whole."""
        limit = 6 * self.settings.max_reply_chars + LINE_OVERHEAD   # JSON may escape a character as \\uXXXX
        buf = bytearray()
        async for chunk in resp.aiter_raw():
            buf += chunk
            if b"\n" in chunk:
                *done, rest = buf.split(b"\n")
                buf = bytearray(rest)
                for line in done:
                    yield bytes(line)
            if len(buf) > limit:
                raise AttemptFailed(TOO_LARGE, f"a reply line passed {limit:,} bytes (teacher.max_reply_chars)",
                                    retryable=False)
        if buf:
            yield bytes(buf)


async def read_capped(resp: httpx.Response, limit: int) -> bytes:
    """At most ``limit`` bytes of a response body (a hostile or broken server cannot make us hold more)."""
    data = bytearray()
    async for chunk in resp.aiter_raw():
        data += chunk
        if len(data) >= limit:
            break
    return bytes(data[:limit])
