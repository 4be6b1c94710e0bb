"""Ollama's native API as a teacher backend: ``GET /api/tags`` lists the installed models, ``POST /api/chat``
streams NDJSON with the answer schema as ``format``.

A stream is complete only with its ``done: true`` line; an ``{"error": ...}`` line mid-stream, a line that is
not JSON (a blank one included: Ollama never sends one) and a stream that ends without ``done`` are broken
attempts, worth another. Thinking models are asked not to think (``think: false``): only the constrained
answer is used.
"""

from __future__ import annotations

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

METRICS = ("prompt_eval_count", "eval_count", "eval_duration", "total_duration", "load_duration")


def model_key(name: str) -> str:
    """The name Ollama resolves ``name`` to: case-insensitive, and a name without a tag means ``:latest``
    (``Llama3`` and ``llama3:latest`` are one model; the tag is what follows the last ``/``'s colon)."""
    n = name.lower()
    return n if ":" in n.rsplit("/", 1)[-1] else n + ":latest"


class OllamaBackend(Backend):
    name = "ollama"
    server = "Ollama"
    models_path = "/api/tags"

    def parse_models(self, doc: Any) -> list[ModelInfo]:
        out = []
        for m in doc["models"]:
            d = m.get("details") or {}
            out.append(ModelInfo(name=str(m.get("model") or m.get("name") or ""), size=int(m.get("size") or 0),
                                 family=str(d.get("family") or ""), parameter_size=str(d.get("parameter_size") or ""),
                                 quantization=str(d.get("quantization_level") or ""), digest=str(m.get("digest") or ""),
                                 modified_at=str(m.get("modified_at") or "")))
        return out

    def match(self, names: list[str], wanted: str) -> str | None:
        key = model_key(wanted)
        return next((name for name in names if model_key(name) == key), None)

    def missing_model(self, model: str, names: list[str] | None) -> EngineError:
        installed = "" if names is None else f" (installed: {', '.join(names) or 'none'})"
        return EngineError(f"model {model} is not installed on {self.url}", fix=f"`ollama pull {model}`{installed}")

    def unreachable(self) -> EngineError:
        return EngineError(f"Ollama is not reachable at {self.url}",
                           fix="start it with `ollama serve` or set OLLAMA_HOST")

    def host_fix(self) -> str:
        return "check the host and port (--host or OLLAMA_HOST)"

    async def stream(self, settings: TeacherSettings, messages: list[dict[str, str]], schema: dict[str, Any] | None,
                     reply: Reply) -> Attempt:
        body: dict[str, Any] = {"model": settings.model, "messages": messages, "options": settings.options(),
                                "stream": True, "think": False}
        if schema is not None:
            body["format"] = schema
        t0 = time.perf_counter()
        ttfb: float | None = None
        final: dict[str, Any] | None = None
        async with self.post("/api/chat", body) as resp:
            async for line in self.lines(resp):
                if ttfb is None:
                    ttfb = time.perf_counter() - t0
                obj = _parse_line(line)
                if "error" in obj:
                    raise AttemptFailed(SERVER_ERROR, f"error line mid-stream: {str(obj['error'])[:200]}")
                message = obj.get("message")
                piece = message.get("content") if isinstance(message, dict) else None
                if isinstance(piece, str):
                    reply.add(piece)
                if obj.get("done") is True:
                    final = obj
        if final is None:
            raise AttemptFailed(BROKEN_STREAM, "stream ended without done: true")
        metrics = {k: int(v) if isinstance(v := final.get(k), int | float) else 0 for k in METRICS}
        reason = final.get("done_reason")
        return Attempt(reason if isinstance(reason, str) else None, metrics, ttfb)


def _parse_line(line: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except ValueError:
        raise AttemptFailed(BROKEN_STREAM, f"garbled stream (a line is not JSON: {line[:60]!r})") from None
    if not isinstance(obj, dict):
        raise AttemptFailed(BROKEN_STREAM, "garbled stream (a line is not a JSON object)")
    return obj
