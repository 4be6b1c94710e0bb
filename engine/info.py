"""What `rebase-tui info` reports: workspace, schema, counts, config, versions, Ollama reachability."""

from __future__ import annotations

import importlib.metadata
from typing import Any

from engine.workspace import Workspace

LIBRARIES = ("rebase-tui", "textual", "rich", "duckdb", "usearch", "sentence-transformers", "ollama",
             "transformers", "torch", "peft", "numpy", "pyarrow", "ray", "openvino")


def library_versions() -> dict[str, str | None]:
    """Installed versions, read from package metadata (nothing is imported)."""
    out: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def probe_ollama(host: str, timeout: float = 1.5) -> dict[str, Any]:
    """Whether the Ollama server at ``host`` answers ``GET /api/version`` (never raises)."""
    import httpx

    from engine.teacher.hosts import normalize_host

    url = normalize_host(host)
    try:
        r = httpx.get(f"{url}/api/version", timeout=timeout, trust_env=False)
        r.raise_for_status()
        return {"host": url, "reachable": True, "version": r.json().get("version")}
    except (httpx.HTTPError, ValueError) as exc:
        return {"host": url, "reachable": False, "error": str(exc) or type(exc).__name__}


def embedding_info(ws: Workspace) -> dict[str, Any]:
    """What made the workspace's vectors, and what an ingest here would embed with (and why)."""
    from engine.datastore.backends import choose_compute
    from engine.datastore.provenance import vector_source
    from engine.errors import EngineError

    source = vector_source(ws)
    cfg = ws.config
    vectors = {"model": source.model, "dim": source.dim, "made_with": list(source.made_with),
               "rebuild": None if source.rebuild is None else
               {"state": source.rebuild.state, "model": source.rebuild.model}}
    try:
        c = choose_compute(str(cfg["embedder.backend"]), str(cfg["embedder.device"]), str(cfg["embedder.precision"]))
        ingest: dict[str, Any] = {"backend": c.backend, "device": c.device, "precision": c.precision,
                                  "reason": c.reason, "executor": cfg["embedder.executor"]}
    except EngineError as exc:
        ingest = {"error": str(exc)}
    if cfg["embedder.executor"] == "ray":
        ingest["note"] = "on Ray, each worker picks its precision for its own hardware"
    return {"vectors": vectors, "ingest": ingest}


def workspace_info(ws: Workspace, check_ollama: bool = True) -> dict[str, Any]:
    """Everything `info` prints, as a JSON-ready dict."""
    return {
        "workspace": str(ws.path),
        "database": str(ws.db_path),
        "schema_version": ws.store.schema_version(),
        "counts": ws.store.table_counts(),
        "embedder": ws.store.get_meta("embedder.name"),
        "embedding": embedding_info(ws),
        "config": ws.config.values,
        "config_sources": ws.config.sources,
        "config_file": str(ws.config_path),
        "versions": library_versions(),
        "ollama": probe_ollama(ws.config["teacher.host"]) if check_ollama else None,
    }
