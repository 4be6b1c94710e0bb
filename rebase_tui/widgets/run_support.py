"""What the Train screen shows of a run, off the screen's code: the run folded from its events
(:class:`RunView`), the worker's memory, the new lines of its stderr.log, and the results text (evaluations
and sample predictions)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.rate import format_seconds
from engine.student.events import CheckpointSaved, EvalMetrics, RunEnded, RunStarted, StepMetrics, TrainEvent

HISTORY = 400  # points kept for the sparklines


def format_value(value: Any, spec: str = ".4g") -> str:
    """``value`` in ``spec``, or a dash before there is one."""
    return "—" if value is None else format(value, spec)


@dataclass
class RunView:
    """One run as the panels show it, folded from its events (followed live, or replayed from its file)."""

    run: str
    status: str = ""
    step: int = 0
    total: int | None = None
    epoch: float | None = None
    loss: float | None = None
    eval_loss: float | None = None
    lr: float | None = None
    tokens_per_s: float | None = None
    eta_s: float | None = None
    checkpoint: int | None = None
    end: str = ""
    """How the last attempt ended: its message and fix (empty while running, or after a plain finish)."""
    hints: list[str] = field(default_factory=list)
    lr_history: list[float] = field(default_factory=list)
    tps_history: list[float] = field(default_factory=list)

    def apply(self, event: TrainEvent) -> None:
        """Fold one training event in."""
        match event:
            case RunStarted():
                self.status, self.step, self.total = "running", event.start_step, event.total_steps
            case StepMetrics():
                self.step, self.total, self.epoch, self.loss = event.step, event.total_steps, event.epoch, event.loss
                self.lr, self.tokens_per_s, self.eta_s = event.lr, event.tokens_per_s, event.eta_s
                self.lr_history.append(event.lr)
                if event.tokens_per_s is not None:
                    self.tps_history.append(event.tokens_per_s)
                del self.lr_history[:-HISTORY], self.tps_history[:-HISTORY]
            case EvalMetrics():
                self.eval_loss = event.eval_loss
            case CheckpointSaved():
                self.checkpoint = event.step
            case RunEnded():
                self.status, self.step, self.eta_s = event.status, event.step, None
                if event.message:
                    self.end = f"{event.message} — {event.fix}" if event.fix else event.message
                    self.hints = list(event.hints)

    def stat_rows(self, rss_mb: float | None, gpu_mb: float | None) -> list[tuple[str, str]]:
        """The run panel's rows (memory figures of the live worker, or None)."""
        return [
            ("run", self.run),
            ("status", self.status or "starting…"),
            ("step", f"{self.step}/{'?' if self.total is None else self.total}"),
            ("epoch", format_value(self.epoch, ".2f")),
            ("loss", f"{format_value(self.loss, '.4f')} (eval {format_value(self.eval_loss, '.4f')})"),
            ("lr", format_value(self.lr, ".2e")),
            ("tokens/s", format_value(self.tokens_per_s, ".0f")),
            ("ETA", format_seconds(self.eta_s) if self.status == "running" else "—"),
            ("memory", f"CPU {format_value(rss_mb, '.0f')} MiB · GPU {format_value(gpu_mb, '.0f')} MiB"),
        ]


class FileTail:
    """The text appended to a file since the last read (at most the last 64 kB of a burst)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def read(self) -> str:
        try:
            size = self.path.stat().st_size
        except OSError:
            return ""
        if size <= self.offset:
            return ""
        with self.path.open("rb") as f:
            f.seek(max(self.offset, size - 64_000))
            chunk = f.read()
        self.offset = size
        return chunk.decode("utf-8", errors="replace").rstrip("\n")


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
        parts.append(f"{name}: {m.describe()}")
    predictions = read_predictions(run_path, limit=5)
    if predictions:
        parts.append("sample predictions:")
    for p in predictions:
        mark = "·" if p.correct is None else "✓" if p.correct else "✗"
        parts.append(f"{mark} input: {p.input[:160]}\n  expected: {p.reference}\n  predicted: {p.prediction}")
    if not parts and status in ("finished", "stopped"):
        from engine.student.evaluate import has_validation_split

        parts.append("no evaluation yet — ctrl+r evaluates on the validation split" if has_validation_split(run_path)
                     else "no evaluation yet — trained without a hold-out: ctrl+r evaluates on a test file")
    if extra:
        parts.append(extra)
    return "\n".join(parts)
