"""A run's state, read from its directory: status, steps, last losses and how it ended (:class:`RunSummary`).

The directory is the truth (``events.jsonl``, ``run.json``, ``metrics.json``); the ``runs`` table in DuckDB
holds a copy of :meth:`RunSummary.to_json` that :mod:`engine.student.runs` refreshes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.student.evaluate import EvalResult, read_metrics
from engine.student.events import TERMINAL, read_events
from engine.student.run_config import read_config

# Keys a summary carries only once an event has set them (absent before, not null).
_OPTIONAL = ("method", "device", "format", "parameters", "trainable", "checkpoint", "reason", "message", "fix",
             "hints", "metrics")


@dataclass(frozen=True, slots=True)
class RunSummary:
    """Where a run stands. ``status`` is created, running, finished, stopped or failed; ``reason``,
    ``message``, ``fix`` and ``hints`` describe the end of a stopped or failed attempt."""

    run: str
    status: str
    steps: int
    total_steps: int
    train_loss: float | None = None
    eval_loss: float | None = None
    seconds: float = 0.0
    method: str | None = None
    device: str | None = None
    format: str | None = None
    parameters: int | None = None
    trainable: int | None = None
    checkpoint: str | None = None
    reason: str | None = None
    message: str | None = None
    fix: str | None = None
    hints: list[str] | None = None
    metrics: dict[str, EvalResult] | None = None
    task: str | None = None
    student: str = ""
    created: float | None = None
    recipe: str = "default"
    settings: str = ""
    """The run's hyper-parameters on one line (:meth:`RunSettings.describe`, with the method it resolved)."""

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL

    def to_json(self) -> dict[str, Any]:
        """The summary as stored in DuckDB and printed by ``runs show --json`` (unset keys left out)."""
        out: dict[str, Any] = {"run": self.run, "status": self.status, "steps": self.steps,
                               "total_steps": self.total_steps, "train_loss": self.train_loss,
                               "eval_loss": self.eval_loss, "seconds": self.seconds}
        for key in _OPTIONAL:
            value = getattr(self, key)
            if value is not None:
                out[key] = {k: m.to_json() for k, m in value.items()} if key == "metrics" else value
        return out

    def listing_json(self) -> dict[str, Any]:
        """One row of ``runs --json``: the summary plus the run's task, student, creation time, recipe and
        hyper-parameters."""
        return {**self.to_json(), "task": self.task, "student": self.student, "created": self.created,
                "recipe": self.recipe, "settings": self.settings}


def summarize(run_dir: Path) -> RunSummary:
    """The run's state from its events (a resumed attempt clears the previous attempt's ending)."""
    cfg = read_config(run_dir)
    state: dict[str, Any] = {"status": "created", "steps": 0, "seconds": 0.0}
    for ev in read_events(run_dir):
        kind = ev["type"]
        if kind == "started":
            state["status"] = "running"
            state["steps"] = ev.get("start_step", state["steps"])
            state.update({k: ev[k] for k in ("method", "device", "format", "parameters", "trainable") if k in ev})
            for k in ("reason", "message", "fix", "hints"):
                state.pop(k, None)
        elif kind == "step":
            state.update(steps=ev["step"], train_loss=ev.get("loss"), seconds=ev.get("elapsed_s", state["seconds"]))
        elif kind == "eval":
            state["eval_loss"] = ev.get("eval_loss")
        elif kind == "checkpoint":
            state["checkpoint"] = ev.get("path")
        elif kind in TERMINAL:
            state.update(status=kind, steps=ev.get("step", state["steps"]),
                         seconds=ev.get("elapsed_s", state["seconds"]))
            state.update({k: ev[k] for k in ("reason", "message", "fix", "hints") if ev.get(k)})
            state.update({k: ev[k] for k in ("train_loss", "eval_loss") if ev.get(k) is not None})
    return RunSummary(run=cfg.id, total_steps=cfg.total_steps, metrics=read_metrics(run_dir),
                      task=cfg.task, student=cfg.settings.student, created=cfg.created, recipe=cfg.settings.recipe,
                      settings=cfg.settings.describe(state.get("method")), **state)
