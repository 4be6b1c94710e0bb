"""The Ollama teacher client: host and model checks, model listing, streamed schema-constrained chat.

The ``ollama`` client sets no timeouts, never retries, and does not check that a stream ended with
``done: true`` (a stalled or cut stream would hang or pass for a reply). This module adds all three: an ``httpx.Timeout`` with a
connect and an idle-read limit (the read limit also covers waiting for a parallel slot, which sends no
bytes), retries with exponential backoff and jitter on connection errors, 5xx, mid-stream error lines,
garbled streams and streams that end without ``done: true``, and proxies are ignored (``trust_env=False``)
because the host is local. A 404 means the model vanished: that ends the run. Other 4xx are final for the
call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.errors import EngineError
from engine.teacher.hosts import normalize_host

if TYPE_CHECKING:
    import ollama

    from engine.config import Config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TeacherSettings:
    """Everything about how the teacher is called (from config, overridden by CLI/TUI values)."""

    host: str = "http://127.0.0.1:11434"
    model: str = "llama3.1:8b"
    temperature: float = 0.7
    seed: int = 0
    num_ctx: int = 4096
    num_predict: int = 1024
    concurrency: int = 2
    connect_timeout: float = 10.0
    read_timeout: float = 300.0
    retries: int = 3
    backoff: float = 1.0

    @classmethod
    def from_config(cls, config: Config, **overrides: Any) -> TeacherSettings:
        """Settings from the workspace config; ``overrides`` that are not None win."""
        values = {
            "host": config["teacher.host"], "model": config["teacher.model"],
            "temperature": config["teacher.temperature"], "seed": config["teacher.seed"],
            "num_ctx": config["teacher.num_ctx"], "num_predict": config["teacher.num_predict"],
            "concurrency": config["teacher.concurrency"], "read_timeout": config["teacher.timeout"],
            "connect_timeout": config["teacher.connect_timeout"], "retries": config["teacher.retries"],
        }
        if config.sources.get("teacher.host") == "env:OLLAMA_HOST" and config.path is not None:
            # a host written in the workspace's config file is a choice made for this workspace, so it
            # wins over the environment: --host, then the config file, then OLLAMA_HOST, then the default
            from engine.config import read_config_file

            in_file = read_config_file(config.path).get("teacher.host")
            if in_file:
                values["host"] = in_file
        values.update({k: v for k, v in overrides.items() if v is not None})
        s = cls(**values)
        if s.concurrency < 1:
            raise EngineError(f"concurrency {s.concurrency} is below 1", fix="pass --concurrency 1 or more")
        if not s.model:
            raise EngineError("no teacher model is set", fix="pass --model NAME or set teacher.model")
        return s

    @property
    def url(self) -> str:
        return normalize_host(self.host)

    def options(self) -> dict[str, Any]:
        """Ollama ``options`` (the seed only when fixed: 0 means random)."""
        opts: dict[str, Any] = {"temperature": self.temperature, "num_ctx": self.num_ctx,
                                "num_predict": self.num_predict}
        if self.seed:
            opts["seed"] = self.seed
        return opts


@dataclass(frozen=True)
class ModelInfo:
    """One installed model as `rebase-tui models` shows it."""

    name: str
    size: int
    family: str
    parameter_size: str
    quantization: str
    digest: str
    modified_at: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "family": self.family,
                "parameter_size": self.parameter_size, "quantization": self.quantization,
                "digest": self.digest, "modified_at": self.modified_at}


@dataclass
class ChatResult:
    """A finished chat call."""

    content: str
    done_reason: str | None
    metrics: dict[str, int]
    attempts: int
    seconds: float
    ttfb: float | None
    errors: list[str] = field(default_factory=list)


class TeacherCallFailed(Exception):
    """A call that failed for good (retries used up, or a final 4xx); ``partial`` is the text received."""

    def __init__(self, message: str, *, attempts: int, errors: list[str], partial: str = "",
                 retryable: bool = True) -> None:
        super().__init__(message)
        self.message, self.attempts, self.errors = message, attempts, errors
        self.partial, self.retryable = partial, retryable


class IncompleteStream(Exception):
    """The stream ended without a ``done: true`` chunk."""


def make_client(settings: TeacherSettings) -> ollama.AsyncClient:
    """An ``ollama.AsyncClient`` with connect and idle-read timeouts, ignoring proxy variables."""
    import httpx
    import ollama

    return ollama.AsyncClient(host=settings.url,
                              timeout=httpx.Timeout(settings.connect_timeout, read=settings.read_timeout),
                              trust_env=False)


def unreachable(url: str) -> EngineError:
    return EngineError(f"Ollama is not reachable at {url}",
                       fix="start it with `ollama serve` or set OLLAMA_HOST")


def model_key(name: str) -> str:
    """The name Ollama resolves ``name`` to: case-insensitive, and a name without a tag means ``:latest``
    (``Llama3`` and ``llama3:latest`` are one model; the tag is what follows the last ``/``'s colon)."""
    n = name.lower()
    return n if ":" in n.rsplit("/", 1)[-1] else n + ":latest"


def match_model(installed: list[str], wanted: str) -> str | None:
    """The installed model name that ``wanted`` refers to (see :func:`model_key`), or None."""
    key = model_key(wanted)
    return next((name for name in installed if model_key(name) == key), None)


async def list_models(client: ollama.AsyncClient, url: str) -> list[ModelInfo]:
    """The installed models; EngineError when the host does not answer like Ollama."""
    import httpx
    import ollama

    try:
        resp = await client.list()
    except (ConnectionError, httpx.TransportError):
        raise unreachable(url) from None
    except ollama.ResponseError as exc:
        raise EngineError(f"{url} answered {exc.status_code} to /api/tags ({exc.error[:80]}); it does not look "
                          "like Ollama", fix="check the host and port (--host or OLLAMA_HOST)") from None
    except ValueError:
        raise EngineError(f"{url} sent a reply that is not Ollama's model list",
                          fix="check the host and port (--host or OLLAMA_HOST)") from None
    out = []
    for m in resp.models:
        d = m.details
        out.append(ModelInfo(name=m.model or "", size=int(m.size or 0), family=(d.family if d else "") or "",
                             parameter_size=(d.parameter_size if d else "") or "",
                             quantization=(d.quantization_level if d else "") or "", digest=m.digest or "",
                             modified_at=m.modified_at.isoformat() if m.modified_at else ""))
    return out


async def check_model(client: ollama.AsyncClient, url: str, model: str) -> ModelInfo:
    """The host answers and ``model`` is installed (``x`` ≡ ``x:latest``, any case); else EngineError."""
    models = await list_models(client, url)
    match = match_model([m.name for m in models], model)
    if match is not None:
        return next(m for m in models if m.name == match)
    names = ", ".join(m.name for m in models) or "none"
    raise EngineError(f"model {model} is not installed on {url}",
                      fix=f"`ollama pull {model}` (installed: {names})")


def models_sync(settings: TeacherSettings) -> list[ModelInfo]:
    """``list_models`` for synchronous callers (the `models` command)."""

    async def go() -> list[ModelInfo]:
        async with make_client(settings) as client:
            return await list_models(client, settings.url)

    return asyncio.run(go())


def _classify(exc: BaseException) -> tuple[bool, str, int | None]:
    """(retryable, description, http status) of a failed attempt."""
    import httpx
    import ollama
    import pydantic

    if isinstance(exc, ollama.ResponseError):
        code = exc.status_code
        text = (exc.error or "").strip()[:200]
        if code == -1:
            return True, f"error line mid-stream: {text}", code
        return code >= 500 or code == 429, f"HTTP {code}: {text or '(empty body)'}", code
    if isinstance(exc, IncompleteStream):
        return True, "stream ended without done: true", None
    if isinstance(exc, httpx.TimeoutException):
        return True, f"{type(exc).__name__} (no data within the timeout)", None
    if isinstance(exc, (httpx.TransportError, ConnectionError)):
        return True, f"{type(exc).__name__}: {str(exc)[:160]}", None
    if isinstance(exc, (json.JSONDecodeError, pydantic.ValidationError)):
        return True, f"garbled stream ({type(exc).__name__})", None
    return False, f"{type(exc).__name__}: {str(exc)[:160]}", None


async def chat(client: ollama.AsyncClient, settings: TeacherSettings, messages: list[dict[str, str]],
               schema: dict[str, Any] | None, *, on_text: Callable[[str], None] | None = None,
               sleep: Callable[[float], Any] = asyncio.sleep) -> ChatResult:
    """One streamed, schema-constrained chat call with retries; raises TeacherCallFailed or EngineError (404).

    ``on_text`` receives the full text so far after each chunk (the caller throttles).
    """
    errors: list[str] = []
    started = time.perf_counter()
    partial = ""
    for attempt in range(1, settings.retries + 2):
        text_parts: list[str] = []
        ttfb = None
        t0 = time.perf_counter()
        try:
            stream = await client.chat(model=settings.model, messages=messages, format=schema,
                                       options=settings.options(), stream=True, think=False)
        except ValueError as exc:       # pydantic: the client refused the request itself, nothing was sent
            raise TeacherCallFailed(f"invalid request ({str(exc).splitlines()[0][:160]})", attempts=attempt,
                                    errors=[*errors, f"attempt {attempt}: invalid request"],
                                    retryable=False) from None
        try:
            final = None
            async for part in stream:
                if ttfb is None:
                    ttfb = time.perf_counter() - t0
                piece = part.message.content or ""
                if piece:
                    text_parts.append(piece)
                    if on_text is not None:
                        on_text("".join(text_parts))
                if part.done:
                    final = part
            if final is None:
                raise IncompleteStream()
            metrics = {k: int(getattr(final, k) or 0) for k in
                       ("prompt_eval_count", "eval_count", "eval_duration", "total_duration", "load_duration")}
            return ChatResult("".join(text_parts), final.done_reason, metrics, attempt,
                              time.perf_counter() - started, ttfb, errors)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - classified below; unknown kinds are final
            partial = "".join(text_parts) or partial
            retryable, what, status = _classify(exc)
            if status == 404:
                raise EngineError(f"model {settings.model} is not installed on {settings.url} (it went away "
                                  "during the run)", fix=f"`ollama pull {settings.model}`") from None
            if status == 400 and "does not support thinking" in what:
                retryable = False
            errors.append(f"attempt {attempt}: {what}")
            log.warning("teacher call failed (%s)", errors[-1])
            if not retryable or attempt > settings.retries:
                raise TeacherCallFailed(what, attempts=attempt, errors=errors, partial=partial,
                                        retryable=retryable) from None
            delay = min(30.0, settings.backoff * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
            await sleep(delay)
    raise AssertionError("unreachable")
