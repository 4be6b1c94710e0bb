"""Ollama host strings → base URLs, parsed as the ollama client does (``:9999``, ``host:port``, ...)."""

from __future__ import annotations

from urllib.parse import urlsplit


def normalize_host(host: str | None) -> str:
    """``None``/``""`` → ``http://127.0.0.1:11434``; ``localhost:1234`` → ``http://localhost:1234``."""
    host = (host or "").strip()
    if not host:
        return "http://127.0.0.1:11434"
    scheme, rest = ("", host)
    if "://" in host:
        scheme, rest = host.split("://", 1)
    parts = urlsplit(f"//{rest}")
    hostname = parts.hostname or "127.0.0.1"
    if ":" in hostname:
        hostname = f"[{hostname}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = {"http": 80, "https": 443}.get(scheme, 11434)
    path = parts.path.rstrip("/")
    return f"{scheme or 'http'}://{hostname}:{port}{path}"
