"""Teacher host strings → base URLs, checked: a bad string is one clear EngineError, never a traceback or a
silently different host.

Ollama hosts are read as the ollama client reads them (``:9999``, ``host:port``, ``https://h``; no port means
11434 without a scheme, else the scheme's port). An OpenAI-compatible server's host is its base URL
(``http://gpu-box:8000/v1``); one given without a path gets ``/v1``, where vLLM, llama.cpp's server and LM
Studio all serve the API.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from engine.errors import EngineError

OLLAMA_DEFAULT = "http://127.0.0.1:11434"
OPENAI_DEFAULT = "http://127.0.0.1:8000/v1"


def _bad(host: str, why: str, example: str) -> EngineError:
    return EngineError(f"teacher host {host!r} is not a usable URL: {why}",
                       fix=f"give it as http://HOST:PORT (for example {example}) with --host or teacher.host")


def normalize_host(host: str | None, backend: str = "ollama") -> str:
    """The base URL of ``host`` for ``backend``; EngineError naming the problem for a malformed string, a port
    outside 1-65535 or a scheme other than http/https.

    Ollama: ``None``/``""`` → ``http://127.0.0.1:11434``; ``localhost:1234`` → ``http://localhost:1234``.
    OpenAI: ``None``/``""`` → ``http://127.0.0.1:8000/v1``; ``gpu-box:8000`` → ``http://gpu-box:8000/v1``.
    """
    example = OPENAI_DEFAULT if backend == "openai" else OLLAMA_DEFAULT
    text = (host or "").strip()
    if not text:
        return example
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in text):
        raise _bad(text, "it contains spaces or control characters", example)
    scheme, rest = "", text
    if "://" in text:
        scheme, rest = text.split("://", 1)
        scheme = scheme.lower()
        if scheme not in ("http", "https"):
            raise _bad(text, f"the scheme {scheme!r} is not http or https", example)
    try:
        parts = urlsplit(f"//{rest}")
        hostname = parts.hostname
    except ValueError as exc:
        raise _bad(text, str(exc), example) from None
    if parts.query or parts.fragment:
        raise _bad(text, "it has a query or a fragment", example)
    port_text = parts.netloc.rpartition("]")[2].rpartition("@")[2]
    port_text = port_text.rpartition(":")[2] if ":" in port_text else ""
    if port_text:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise _bad(text, f"the port {port_text} is not a number from 1 to 65535", example)
        port = int(port_text)
    else:
        port = {"http": 80, "https": 443}.get(scheme, 80 if backend == "openai" else 11434)
    hostname = hostname or "127.0.0.1"
    if ":" in hostname:
        hostname = f"[{hostname}]"
    path = parts.path.rstrip("/")
    if backend == "openai" and not path:
        path = "/v1"
    return f"{scheme or 'http'}://{hostname}:{port}{path}"
