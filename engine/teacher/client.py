"""The teacher client: settings (checked), the backend they select, model listing and checks, and one chat
call with retries, an overall deadline and a circuit breaker.

A call (:func:`chat`) is up to ``retries + 1`` attempts of its backend (:mod:`engine.teacher.backend`): an
attempt is retried with exponential backoff and jitter after a connection error, a read timeout (an idle gap
of ``read_timeout``, which also covers waiting for a server slot: a queued request receives no bytes), a 5xx,
429 or 408, an error mid-stream, a garbled stream and a stream that ends early. A reply over
``max_reply_chars`` and any other 4xx are final for the call; a 404 (the model went away) or a refused API
key ends the run (EngineError). The whole call, backoff included, must finish within ``deadline`` seconds,
so a stream that never ends or trickles a byte at a time fails like any other fault. When a call spent every
attempt unable to connect while no call succeeded, the host is gone: the backend's breaker trips and every
later call fails at once, without a request.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.errors import EngineError
from engine.teacher.backend import CONNECT, AttemptFailed, Backend, ModelInfo, Reply
from engine.teacher.hosts import OLLAMA_DEFAULT, OPENAI_DEFAULT, normalize_host

if TYPE_CHECKING:
    from engine.config import Config

log = logging.getLogger(__name__)

BACKENDS = ("ollama", "openai")
API_KEY_ENV = "REBASE_TEACHER_API_KEY"
DEADLINE = "deadline passed"
HOST_GONE = "host gone"

# field: (config key, command-line flag or "", lowest, highest); numbers outside are refused with one line
LIMITS: dict[str, tuple[str, str, float, float]] = {
    "temperature": ("teacher.temperature", "--temperature", 0.0, 2.0),
    "seed": ("teacher.seed", "--seed", 0, 2**31 - 1),
    "num_ctx": ("teacher.num_ctx", "--num-ctx", 128, 1_048_576),
    "num_predict": ("teacher.num_predict", "--num-predict", 1, 1_048_576),
    "concurrency": ("teacher.concurrency", "--concurrency", 1, 1024),
    "read_timeout": ("teacher.timeout", "", 0.001, 86_400.0),
    "connect_timeout": ("teacher.connect_timeout", "", 0.001, 3_600.0),
    "deadline": ("teacher.deadline", "", 0.001, 604_800.0),
    "retries": ("teacher.retries", "", 0, 20),
    "max_reply_chars": ("teacher.max_reply_chars", "", 1_000, 100_000_000),
}


@dataclass(frozen=True)
class TeacherSettings:
    """Everything about how the teacher is called (from config, overridden by CLI/TUI values). ``api_key``
    comes only from $REBASE_TEACHER_API_KEY: it is never stored, shown or part of a cache key."""

    host: str = OLLAMA_DEFAULT
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
    backend: str = "ollama"
    deadline: float = 1200.0
    max_reply_chars: int = 200_000
    api_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_config(cls, config: Config, **overrides: Any) -> TeacherSettings:
        """Settings from the workspace config; ``overrides`` that are not None win. EngineError names the
        first value out of range (the option as the user gave it: flag, config key or form field)."""
        values: dict[str, Any] = {
            "backend": config["teacher.backend"], "model": config["teacher.model"],
            "temperature": config["teacher.temperature"], "seed": config["teacher.seed"],
            "num_ctx": config["teacher.num_ctx"], "num_predict": config["teacher.num_predict"],
            "concurrency": config["teacher.concurrency"], "read_timeout": config["teacher.timeout"],
            "connect_timeout": config["teacher.connect_timeout"], "retries": config["teacher.retries"],
            "deadline": config["teacher.deadline"], "max_reply_chars": config["teacher.max_reply_chars"],
            "api_key": os.environ.get(API_KEY_ENV) or None,
        }
        given = {k: v for k, v in overrides.items() if v is not None}
        backend = given.get("backend", values["backend"])
        values["host"] = _configured_host(config, backend)
        values.update(given)
        labels = {name: _label(config, name, name in given) for name in LIMITS}
        labels["backend"] = _label(config, "backend", "backend" in given, ("teacher.backend", "--backend"))
        s = cls(**values)
        s.check(labels)
        return s

    def check(self, labels: dict[str, str] | None = None) -> None:
        """Refuse a value no server should be sent: NaN, infinities, negative or absurd numbers, an unknown
        backend, a malformed host, an empty model name."""
        labels = labels or {}
        if self.backend not in BACKENDS:
            raise EngineError(f"{labels.get('backend', 'backend')} {self.backend!r} is not one of {', '.join(BACKENDS)}",
                              fix="use ollama, or openai for an OpenAI-compatible server (vLLM, llama.cpp, LM Studio)")
        for name, (_, _, low, high) in LIMITS.items():
            value = getattr(self, name)
            kind = int if isinstance(low, int) else float
            ok = (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
                  and low <= value <= high and (kind is float or float(value).is_integer()))
            if not ok:
                what = "a whole number" if kind is int else "a number"
                raise EngineError(f"{labels.get(name, name)} {value!r} is out of range",
                                  fix=f"use {what} from {_num(low)} to {_num(high)}")
        if not self.model.strip():
            raise EngineError("no teacher model is set", fix="pass --model NAME or set teacher.model")
        normalize_host(self.host, self.backend)

    @property
    def url(self) -> str:
        return normalize_host(self.host, self.backend)

    def options(self) -> dict[str, Any]:
        """The sampling options sent with every call and kept with every example (the seed only when fixed: 0
        means random). Ollama's ``options``; an OpenAI-compatible server has no per-request context length."""
        if self.backend == "openai":
            opts: dict[str, Any] = {"temperature": self.temperature, "max_tokens": self.num_predict}
        else:
            opts = {"temperature": self.temperature, "num_ctx": self.num_ctx, "num_predict": self.num_predict}
        if self.seed:
            opts["seed"] = self.seed
        return opts


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _label(config: Config, name: str, from_form: bool, names: tuple[str, str] | None = None) -> str:
    """How the user gave setting ``name``: a flag, a form field, a config key or an environment variable."""
    key, flag = names or LIMITS[name][:2]
    if from_form:
        return name.replace("_", " ")
    source = config.sources.get(key, "default")
    if source == "cli" and flag:
        return flag
    if source.startswith("env:"):
        return f"{key} (from ${source[4:]})"
    return f"{key} (config.toml)" if source == "config" else key


def _configured_host(config: Config, backend: str) -> str:
    """The host for ``backend``: --host, then $REBASE_OLLAMA_HOST, then the workspace's config file, then
    $OLLAMA_HOST, then the backend's default. The two variables name an Ollama server, so the openai backend
    skips them."""
    host, source = str(config["teacher.host"]), config.sources.get("teacher.host", "default")
    if source.startswith("env:"):
        in_file = None
        if config.path is not None:
            # a host written in the workspace's config file is a choice made for this workspace, so it
            # wins over OLLAMA_HOST, which is set for the whole machine
            from engine.config import read_config_file

            in_file = read_config_file(config.path).get("teacher.host")
        if backend == "openai":
            return str(in_file or OPENAI_DEFAULT)
        return str(in_file) if in_file and source == "env:OLLAMA_HOST" else host
    return OPENAI_DEFAULT if backend == "openai" and source == "default" else host


def open_backend(settings: TeacherSettings, notice: Callable[[str], None] | None = None) -> Backend:
    """The backend ``settings`` select, with its own HTTP client (close it with ``await backend.close()``)."""
    if settings.backend == "openai":
        from engine.teacher.openai_backend import OpenAIBackend

        return OpenAIBackend(settings, notice)
    from engine.teacher.ollama_backend import OllamaBackend

    return OllamaBackend(settings, notice)


def match_model(installed: list[str], wanted: str, backend: str = "ollama") -> str | None:
    """The offered model name that ``wanted`` refers to: Ollama's equivalence (``x`` ≡ ``x:latest``, any
    case) or, on an OpenAI-compatible server, the same id (any case)."""
    if backend == "openai":
        return wanted if wanted in installed else next((n for n in installed if n.lower() == wanted.lower()), None)
    from engine.teacher.ollama_backend import model_key

    key = model_key(wanted)
    return next((name for name in installed if model_key(name) == key), None)


async def list_models(settings: TeacherSettings) -> list[ModelInfo]:
    """The models the configured server offers; EngineError when it is unreachable or not that server."""
    backend = open_backend(settings)
    try:
        return await backend.list_models()
    finally:
        await backend.close()


def models_sync(settings: TeacherSettings) -> list[ModelInfo]:
    """:func:`list_models` for synchronous callers (the `models` command)."""
    return asyncio.run(list_models(settings))


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
    """A call that failed for good: retries used up, a final 4xx, a reply over the cap, the deadline, or the
    host gone (``attempts`` 0: nothing was sent). ``kind`` names the fault, ``partial`` the text received."""

    def __init__(self, message: str, *, kind: str, attempts: int, errors: list[str], partial: str = "",
                 retryable: bool = True) -> None:
        super().__init__(message)
        self.message, self.kind, self.attempts, self.errors = message, kind, attempts, errors
        self.partial, self.retryable = partial, retryable


async def chat(backend: Backend, settings: TeacherSettings, messages: list[dict[str, str]],
               schema: dict[str, Any] | None, *, on_text: Callable[[Callable[[], str]], None] | None = None,
               sleep: Callable[[float], Any] = asyncio.sleep) -> ChatResult:
    """One schema-constrained chat call with ``settings``' model and options through ``backend`` (module
    docstring); raises TeacherCallFailed, or EngineError when the run cannot go on. ``on_text`` gets a
    getter of the text so far after each streamed piece."""
    s, breaker = settings, backend.breaker
    if breaker.tripped:
        raise TeacherCallFailed(f"not sent: {breaker.reason}", kind=HOST_GONE, attempts=0, errors=[])
    errors: list[str] = []
    started = time.perf_counter()
    unreachable_since: float | None = None      # when this call's current run of connection failures began
    reply = Reply(s.max_reply_chars, on_text)
    attempt = 0
    deadline = asyncio.timeout(s.deadline)
    try:
        async with deadline:
            while True:
                attempt += 1
                reply = Reply(s.max_reply_chars, on_text)
                try:
                    got = await backend.attempt(s, messages, schema, reply)
                except AttemptFailed as exc:
                    errors.append(f"attempt {attempt}: {exc.what}")
                    log.warning("teacher call failed (%s)", errors[-1])
                    last_try = not exc.retryable or attempt > s.retries
                    if exc.kind != CONNECT:
                        unreachable_since = None
                    elif unreachable_since is None:
                        unreachable_since = time.monotonic()
                    if last_try and unreachable_since is not None:
                        gone = time.monotonic() - unreachable_since
                        breaker.gave_up_connecting(unreachable_since, f"{backend.server} at {backend.url} stopped "
                                                                      f"answering (no connection for {gone:.0f} s)")
                    if last_try or breaker.tripped:
                        raise TeacherCallFailed(exc.what, kind=exc.kind, attempts=attempt, errors=errors,
                                                partial=reply.text(), retryable=exc.retryable) from None
                    await sleep(min(30.0, s.backoff * 2 ** (attempt - 1)) * (0.5 + random.random() / 2))
                    continue
                breaker.succeeded()
                return ChatResult(reply.text(), got.done_reason, got.metrics, attempt, time.perf_counter() - started,
                                  got.ttfb, errors)
    except TimeoutError:
        if not deadline.expired():
            raise
        what = f"no complete reply within the deadline of {s.deadline:g} s (teacher.deadline)"
        errors.append(f"attempt {attempt}: {what}")
        raise TeacherCallFailed(what, kind=DEADLINE, attempts=attempt, errors=errors, partial=reply.text()) from None

