"""Which model, backend and precision made a workspace's vectors, and rebuilding them all.

The workspace's ``meta`` table records the model (``embedder.name``, ``embedder.dim``: one model per
workspace, since vectors of two models are not comparable) and every backend/precision that wrote vectors
(``embedder.made_with``, e.g. ``torch/bf16,torch/fp32``: precisions may mix, because their vectors agree
to within the ranking's tolerance and are all stored as float32).

A rebuild (``ingest --re-embed``) writes ``index/<kind>.vectors.rebuild`` beside the live logs, which
retrieval keeps using until :func:`swap_rebuilt` replaces them. ``embedder.rebuild`` records the rebuild in
progress (model, dimension, state) so a killed rebuild resumes where it stopped.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.datastore.vindex import DESCRIPTIONS, VALUES, VectorLog, log_path, usearch_path
from engine.datastore.vindex import vector_log as vindex_log
from engine.errors import EngineError

if TYPE_CHECKING:
    from engine.workspace import Workspace

REBUILD_SUFFIX = ".rebuild"


def rebuild_log(ws: Workspace, kind: str, dim: int) -> VectorLog:
    """The log a rebuild writes for ``kind`` (``index/<kind>.vectors.rebuild``), of dimension ``dim``."""
    path = log_path(ws, kind)
    return VectorLog(path.with_name(path.name + REBUILD_SUFFIX), dim)


@dataclass(frozen=True, slots=True)
class Rebuild:
    """A rebuild in progress (``ingest --re-embed``): ``state`` is ``embedding`` or ``swapping``; the model,
    dimension and ``backend/precision`` labels of the vectors it writes."""

    state: str
    model: str
    dim: int
    made_with: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class VectorSource:
    """What made a workspace's vectors: the model, its dimension, every ``backend/precision`` used, and the
    rebuild in progress (None when none)."""

    model: str | None
    dim: int | None
    made_with: tuple[str, ...]
    rebuild: Rebuild | None = None


def _rebuild(ws: Workspace) -> Rebuild | None:
    raw = ws.store.get_meta("embedder.rebuild")
    if not raw:
        return None
    data = json.loads(raw)
    return Rebuild(str(data["state"]), str(data["model"]), int(data["dim"]), tuple(data["made_with"]))


def _set_rebuild(ws: Workspace, rebuild: Rebuild | None) -> None:
    ws.store.set_meta("embedder.rebuild", "" if rebuild is None else json.dumps(
        {"state": rebuild.state, "model": rebuild.model, "dim": rebuild.dim, "made_with": list(rebuild.made_with)}))


def vector_source(ws: Workspace) -> VectorSource:
    """The workspace's :class:`VectorSource` (model None before the first embedding)."""
    made = ws.store.get_meta("embedder.made_with") or ""
    dim = ws.store.get_meta("embedder.dim")
    return VectorSource(ws.store.get_meta("embedder.name") or None, int(dim) if dim else None,
                        tuple(m for m in made.split(",") if m), _rebuild(ws))


def add_made_with(ws: Workspace, label: str) -> None:
    """Record that ``label`` (``backend/precision``) wrote vectors into the live logs."""
    made = set(vector_source(ws).made_with)
    if label not in made:
        ws.store.set_meta("embedder.made_with", ",".join(sorted(made | {label})))


def begin_rebuild(ws: Workspace, model: str, dim: int, label: str) -> Rebuild:
    """Start a rebuild with ``model`` (or continue the one in progress); return its state.

    Refuses to continue a rebuild begun with another model: its half-written log holds that model's vectors.
    """
    current = _rebuild(ws)
    if current is None:
        for kind in (DESCRIPTIONS, VALUES):  # nothing of an older, finished rebuild may be reused
            rebuild_log(ws, kind, dim).path.unlink(missing_ok=True)
        current = Rebuild("embedding", model, dim, (label,))
    elif current.model != model:
        raise EngineError(f"workspace {ws.path} is being re-embedded with {current.model}, not {model}",
                          fix=f"finish it with --re-embed --embedder {current.model}")
    elif label not in current.made_with:
        current = Rebuild(current.state, model, dim, tuple(sorted({*current.made_with, label})))
    _set_rebuild(ws, current)
    return current


def swap_rebuilt(ws: Workspace) -> None:
    """Make the rebuilt logs the live ones, record the rebuild's model, dimension and labels, and drop the
    usearch files (the next sync builds them from the new vectors).

    Every step can be repeated: a kill mid-swap leaves the rebuild in state ``swapping``, and the next
    ingest finishes the swap (:func:`finish_swap`) without embedding anything again.
    """
    rebuild = _rebuild(ws)
    if rebuild is None:
        return
    rebuild = Rebuild("swapping", rebuild.model, rebuild.dim, rebuild.made_with)
    _set_rebuild(ws, rebuild)
    for kind in (DESCRIPTIONS, VALUES):
        live = log_path(ws, kind)
        rebuilt = live.with_name(live.name + REBUILD_SUFFIX)
        if rebuilt.exists():
            os.replace(rebuilt, live)
        usearch_path(ws, kind).unlink(missing_ok=True)
    ws.store.set_meta("embedder.name", rebuild.model)
    ws.store.set_meta("embedder.dim", str(rebuild.dim))
    ws.store.set_meta("embedder.made_with", ",".join(rebuild.made_with))
    _set_rebuild(ws, None)


def finish_swap(ws: Workspace) -> bool:
    """Finish a rebuild killed while swapping its logs in (nothing is embedded again); True if there was one."""
    rebuild = _rebuild(ws)
    if rebuild is None or rebuild.state != "swapping":
        return False
    swap_rebuilt(ws)
    return True


def largest_key(ws: Workspace, kind: str) -> int:
    """The largest key in ``kind``'s live log and in a rebuild's log (0 when none): new ids go above it, so
    no id is reused for another text while an old vector may still carry it."""
    top = int(vindex_log(ws, kind).keys().max(initial=0))
    rebuild = _rebuild(ws)
    if rebuild is not None:
        top = max(top, int(rebuild_log(ws, kind, rebuild.dim).keys().max(initial=0)))
    return top
