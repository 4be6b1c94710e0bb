"""What the Train screen asks of the run directory and the system, off the screen's code: starting a run,
the worker's memory, how many tokens to generate in eval, and the results text of a run."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from engine.errors import EngineError


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


def start_run(ws: Any, task: str | None, form: dict[str, Any]) -> dict[str, Any]:
    """Freeze the accepted examples into a new run and launch its worker (runs in a thread worker)."""
    from engine import tasks
    from engine.student import runs, supervise, training_data
    from engine.student.loop import check_student

    if not task:
        raise EngineError("no task to train on", fix="pick a task on the Task screen (F3) and accept examples")
    task_obj = tasks.resolve_task(ws, task)
    rows = training_data.accepted_examples(ws, task_obj.name)
    if not rows:
        raise EngineError(f"task {task_obj.name!r} has no accepted examples", fix="accept examples in Review (F6)")
    settings = runs.settings_from_config(ws.config, **form)
    check_student(settings["student"], bool(settings.get("trust_remote_code")))
    path = runs.create_run(ws, rows, settings, task=task_obj, source=f"task:{task_obj.name}")
    handle = supervise.start(path)
    runs.record(ws, path)
    return {"path": str(path), "offset": handle.offset}


def results_text(run_path: Path, status: str, extra: str = "") -> str:
    """Eval metrics (metrics.json), five sample predictions (input, expected, predicted) and ``extra``."""
    parts: list[str] = []
    metrics_file = run_path / "metrics.json"
    if metrics_file.exists():
        try:
            allm = json.loads(metrics_file.read_text(encoding="utf-8"))
        except ValueError:
            allm = {}
        for name, m in allm.items():
            figures = ", ".join(f"{k} {v:.3f}" for k, v in m.items() if isinstance(v, float) and k != "seconds")
            parts.append(f"{name}: {figures}")
    preds = run_path / "predictions.jsonl"
    if preds.exists():
        lines = preds.read_text(encoding="utf-8").splitlines()[:5]
        if lines:
            parts.append("sample predictions:")
        for line in lines:
            try:
                p = json.loads(line)
            except ValueError:
                continue
            mark = "✓" if p.get("correct") else "✗"
            parts.append(f"{mark} input: {str(p.get('input'))[:160]}\n  expected: {p.get('reference')}\n"
                         f"  predicted: {p.get('prediction')}")
    if not parts and status in ("finished", "stopped"):
        parts.append("no evaluation yet — v evaluates on the validation split")
    if extra:
        parts.append(extra)
    return "\n".join(parts)
