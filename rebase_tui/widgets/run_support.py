"""What the Train screen shows beside the run's events, off the screen's code: the worker's memory and the
results text of a run (its evaluations and sample predictions)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def rss_mb(pid: int | None) -> float | None:
    """Resident memory of process ``pid`` in MiB (Linux /proc), None when unknown."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def gpu_mb(pid: int | None) -> float | None:
    """GPU memory used by process ``pid`` in MiB (nvidia-smi), None without a GPU or the process."""
    if pid is None or shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0] == str(pid):
            try:
                return float(parts[1])
            except ValueError:
                return None
    return None


def results_text(run_path: Path, status: str, extra: str = "") -> str:
    """Eval metrics, five sample predictions (input, expected, predicted) and ``extra``."""
    from engine.student.evaluate import read_metrics, read_predictions

    parts: list[str] = []
    for name, m in (read_metrics(run_path) or {}).items():
        parts.append(f"{name}: exact_match {m.exact_match:.3f}, accuracy {m.accuracy:.3f}, f1 {m.f1:.3f}")
    predictions = read_predictions(run_path, limit=5)
    if predictions:
        parts.append("sample predictions:")
    for p in predictions:
        mark = "✓" if p.correct else "✗"
        parts.append(f"{mark} input: {p.input[:160]}\n  expected: {p.reference}\n  predicted: {p.prediction}")
    if not parts and status in ("finished", "stopped"):
        parts.append("no evaluation yet — v evaluates on the validation split")
    if extra:
        parts.append(extra)
    return "\n".join(parts)
