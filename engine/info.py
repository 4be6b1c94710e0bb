"""What `rebase-tui info` reports: workspace, schema, counts, config, versions, whether the teacher's host answers."""

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


def probe_teacher(host: str, backend: str = "ollama", timeout: float = 1.5) -> dict[str, Any]:
    """Whether the teacher's server answers: Ollama's ``GET /api/version``, or an OpenAI-compatible
    server's ``GET /models`` (with $REBASE_TEACHER_API_KEY as a bearer token when set, as the teacher calls
    send it). Never raises: a malformed host string is reported like an unreachable one."""
    import os

    import httpx

    from engine.errors import EngineError
    from engine.teacher.hosts import normalize_host

    try:
        url = normalize_host(host, backend)
    except EngineError as exc:
        return {"host": host, "backend": backend, "reachable": False, "error": str(exc)}
    key = os.environ.get("REBASE_TEACHER_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    path = "/models" if backend == "openai" else "/api/version"
    try:
        r = httpx.get(f"{url}{path}", timeout=timeout, trust_env=False, headers=headers)
        r.raise_for_status()
        doc = r.json()
        out: dict[str, Any] = {"host": url, "backend": backend, "reachable": True}
        if backend == "openai":
            out["models"] = [m.get("id") for m in doc.get("data", []) if isinstance(m, dict)]
        else:
            out["version"] = doc.get("version")
        return out
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        return {"host": url, "backend": backend, "reachable": False, "error": str(exc) or type(exc).__name__}


def _teacher_host(ws: Workspace) -> str:
    """The host the teacher commands would use (the backend decides which variables apply)."""
    from engine.errors import EngineError
    from engine.teacher.client import TeacherSettings

    try:
        return TeacherSettings.from_config(ws.config).host
    except EngineError:
        return str(ws.config["teacher.host"])


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
        "ollama": probe_teacher(_teacher_host(ws), ws.config["teacher.backend"]) if check_ollama else None,
    }
