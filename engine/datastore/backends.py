"""How the embedder computes: the backend (``torch`` | ``openvino``), the device and the precision.

``choose_compute(backend, device, precision)`` turns the settings ``embedder.backend``, ``embedder.device``
and ``embedder.precision`` into a :class:`Compute` saying what runs and why. ``auto`` precision picks the
fastest path that keeps the ranking on the hardware found:

* ``fp16`` on a CUDA GPU (tensor cores);
* ``bf16`` on a CPU with AMX or AVX-512 BF16 instructions (``amx_bf16`` / ``avx512_bf16`` in the CPU flags):
  on such a 2-core Xeon, MiniLM in bf16 embeds about twice as many values per second as in fp32, and keeps
  ≥ 98 % of the fp32 top-100 neighbours (int8 quantisation was as fast but kept only 85 %, so it is not offered);
* ``fp32`` everywhere else (a CPU without bf16 instructions emulates it, slower than fp32).

Whatever the compute precision, vectors leave the embedder as float32, L2-normalised after the cast back,
so a workspace embedded in bf16 or on a GPU is searched exactly like one embedded in fp32.

The OpenVINO backend (optional: ``pip install "rebase-tui[openvino]"``) converts the sentence-transformers
model in memory at load time (a few seconds) and runs it on the CPU with OpenVINO's precision hint.
"""

from __future__ import annotations

import functools
import sys
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import EngineError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sentence_transformers import SentenceTransformer

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
BACKENDS = ("torch", "openvino")
DEVICES = ("auto", "cpu", "cuda", "mps")
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
"""CPU flags (Linux /proc/cpuinfo) of native bf16 matrix instructions."""


@dataclass(frozen=True, slots=True)
class Compute:
    """What the embedder runs on: backend, device, precision, and why that precision (shown by ``info``)."""

    backend: str
    device: str
    precision: str
    reason: str

    @property
    def label(self) -> str:
        """``torch/bf16`` — how vectors record what made them."""
        return f"{self.backend}/{self.precision}"


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo does not exist)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def _may_have_gpu() -> bool:
    """Whether a GPU could be visible: an NVIDIA driver is loaded, or this is a Mac (Metal)."""
    return Path("/proc/driver/nvidia").exists() or sys.platform == "darwin"


def pick_device(device: str = "auto") -> str:
    """``auto`` → ``cuda`` when a GPU is visible, else ``mps`` on Apple silicon, else ``cpu``.

    torch (about 1.5 s to import) is imported only where a GPU could exist at all, so ``info`` stays quick on
    a CPU-only machine.
    """
    if device and device != "auto":
        if device not in DEVICES and not device.startswith("cuda:"):
            raise EngineError(f"unknown embedder device {device!r}",
                              fix=f"set embedder.device to one of {', '.join(DEVICES)}")
        return device
    if not _may_have_gpu():
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def _check_names(backend: str, precision: str) -> None:
    if backend not in BACKENDS:
        raise EngineError(f"unknown embedder backend {backend!r}",
                          fix=f"use --backend {' or '.join(BACKENDS)} (embedder.backend)")
    if precision not in PRECISIONS:
        raise EngineError(f"unknown embedder precision {precision!r}",
                          fix=f"use --precision {', '.join(PRECISIONS)} (embedder.precision)")


def _auto_precision(device: str, flags: frozenset[str]) -> tuple[str, str]:
    if device.startswith("cuda"):
        return "fp16", "CUDA GPU: fp16 keeps the ranking at twice fp32's speed"
    if device == "cpu":
        found = [f for f in BF16_CPU_FLAGS if f in flags]
        if found:
            return "bf16", f"the CPU has {' and '.join(found)}: bf16 doubles the speed and keeps the ranking"
        return "fp32", "the CPU has no AMX/AVX-512 BF16 instructions (bf16 would be emulated, slower)"
    return "fp32", f"fp32 on {device}"


def choose_compute(backend: str = "torch", device: str = "auto", precision: str = "auto",
                   flags: frozenset[str] | None = None) -> Compute:
    """Resolve the embedder settings to what runs; raise EngineError for a combination that cannot run here.

    ``flags`` defaults to this machine's CPU flags (tests pass their own).
    """
    backend, precision = backend.strip().lower(), precision.strip().lower()
    _check_names(backend, precision)
    flags = cpu_flags() if flags is None else flags
    if backend == "openvino":
        if device not in ("auto", "cpu"):
            raise EngineError(f"the openvino backend runs on the CPU, not on {device}",
                              fix="use --backend torch on a GPU, or set embedder.device to cpu")
        device = "cpu"
    else:
        device = pick_device(device)
    if precision == "auto":
        chosen, reason = _auto_precision(device, flags)
        return Compute(backend, device, chosen, f"auto: {reason}")
    if precision == "fp16" and not device.startswith("cuda"):
        raise EngineError(f"fp16 embedding needs a CUDA GPU; this machine embeds on {device}",
                          fix="use --precision auto (bf16 or fp32 on a CPU), or run it on a GPU machine")
    if precision == "bf16" and device == "cpu" and not any(f in flags for f in BF16_CPU_FLAGS):
        return Compute(backend, device, precision,
                       "asked for; this CPU has no AMX/AVX-512 BF16, so bf16 is emulated (likely slower than fp32)")
    return Compute(backend, device, precision, "asked for")


def torch_dtype(precision: str) -> Any:
    """The torch dtype a model is cast to for ``precision``."""
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def normalized(vectors: Any) -> np.ndarray:
    """float32 copy of ``vectors`` (a torch tensor of any dtype, or an array), each row L2-normalised.

    The cast to float32 comes before the norm, so a bf16 or fp16 result is unit length in float32.
    """
    if hasattr(vectors, "detach"):
        vectors = vectors.detach().float().cpu().numpy()
    out = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.maximum(norms, 1e-12, out=norms)  # an all-zero row stays zero instead of NaN (as torch's normalize)
    out /= norms
    return out


# -- OpenVINO -----------------------------------------------------------------------------------
def _import_openvino() -> Any:
    """``openvino``, with its usage reporting off.

    OpenVINO's model converter reports usage to Google Analytics unless a consent file says no; its modules
    fall back to a built-in no-op stub when ``openvino_telemetry`` cannot be imported, so that import is
    blocked for this process before openvino is first imported (nothing leaves the machine).
    """
    if "openvino" not in sys.modules:
        sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]
    try:
        import openvino
    except ImportError:
        raise EngineError("the openvino backend is not installed",
                          fix='pip install "rebase-tui[openvino]", or use --backend torch') from None
    return openvino


def _tensor_features(model: SentenceTransformer, texts: Sequence[str]) -> dict[str, Any]:
    feats = model.preprocess(list(texts))
    return {k: v for k, v in feats.items() if hasattr(v, "shape")}


class OpenVinoRunner:
    """A sentence-transformers model converted to OpenVINO and compiled for the CPU at ``precision``."""

    def __init__(self, model: SentenceTransformer, precision: str, threads: int) -> None:
        import torch

        ov = _import_openvino()
        self.model = model
        example = _tensor_features(model, ["an example sentence", "another, longer example sentence here"])
        self.inputs = list(example)

        class _Pooled(torch.nn.Module):
            """The whole model (transformer, pooling, ...) as a function of its tensor inputs."""

            def __init__(self, st: SentenceTransformer, names: list[str]) -> None:
                super().__init__()
                self.st, self.names = st, names

            def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
                return self.st(dict(zip(self.names, tensors, strict=True)))["sentence_embedding"]

        try:
            # tracing warns about shape checks it freezes (padding and mask always agree here): not the
            # user's concern, so the warnings stay off the terminal
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                converted = ov.convert_model(_Pooled(model, self.inputs).eval(),
                                             example_input=tuple(example.values()))
            hint = {"fp32": "f32", "bf16": "bf16"}[precision]
            self.compiled = ov.Core().compile_model(converted, "CPU", {
                "INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": max(1, threads),
                "PERFORMANCE_HINT": "LATENCY"})
        except Exception as exc:  # noqa: BLE001 - any conversion failure is this model's problem
            raise EngineError(f"OpenVINO cannot convert this embedding model ({type(exc).__name__}: {exc})",
                              fix="use --backend torch") from None
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Raw (not normalised) sentence vectors of ``texts`` as one padded batch."""
        feats = _tensor_features(self.model, texts)
        with self._lock:
            out = self.compiled([feats[name].numpy() for name in self.inputs])[0]
        return np.asarray(out)
