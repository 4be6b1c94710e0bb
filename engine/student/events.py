"""The training event protocol: what a worker says about its run, one JSON object per line of ``events.jsonl``.

The loop (:mod:`engine.student.loop`) yields these dataclasses; the worker writes each as one line
(:meth:`TrainEvent.to_json`); the parent reads the lines back (:func:`parse_event_lines`,
:func:`event_from_json`). ``type`` names the event, ``time`` is Unix seconds:

* ``started``: run, start_step, total_steps, method, device, dtype, format, parameters, trainable,
  train_examples, eval_examples, resumed, truncated, max_length
* ``step``: step, total_steps, epoch, loss (mean since the previous step event), lr, grad_norm, tokens,
  tokens_per_s, examples_per_s, eta_s, elapsed_s, cpu_s (CPU seconds of the worker process)
* ``eval``: step, eval_loss
* ``checkpoint``: step, path
* ``finished`` / ``stopped`` / ``failed``: step, reason, message, fix, hints, train_loss, eval_loss, elapsed_s

A resumed run appends a new ``started`` segment to the same file.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.events import Event

TERMINAL = ("finished", "stopped", "failed")
EVENTS_FILE = "events.jsonl"


@dataclass(frozen=True, slots=True)
class TrainEvent(Event):
    """Base of training events; ``type`` is the protocol name, ``time`` when it happened."""

    time: float = field(default_factory=time.time, kw_only=True)
    type = "event"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, **asdict(self)}


@dataclass(frozen=True, slots=True)
class RunStarted(TrainEvent):
    run: str
    start_step: int
    total_steps: int
    method: str
    device: str
    dtype: str
    format: str
    parameters: int
    trainable: int
    train_examples: int
    eval_examples: int
    resumed: bool = False
    truncated: int = 0
    max_length: int = 0
    """Tokens an example is cut at: the setting, or the model's context when shorter (0: not recorded)."""
    type = "started"


@dataclass(frozen=True, slots=True)
class StepMetrics(TrainEvent):
    step: int
    total_steps: int
    epoch: float
    loss: float
    lr: float
    grad_norm: float
    tokens: int
    tokens_per_s: float | None
    examples_per_s: float | None
    eta_s: float | None
    elapsed_s: float
    cpu_s: float = 0.0
    type = "step"


@dataclass(frozen=True, slots=True)
class EvalMetrics(TrainEvent):
    step: int
    eval_loss: float
    type = "eval"


@dataclass(frozen=True, slots=True)
class CheckpointSaved(TrainEvent):
    step: int
    path: str
    type = "checkpoint"


@dataclass(frozen=True, slots=True)
class RunEnded(TrainEvent):
    """The last event of a worker's life: ``status`` is finished, stopped or failed."""

    status: str
    step: int
    reason: str = ""
    message: str = ""
    fix: str = ""
    hints: list[str] = field(default_factory=list)
    train_loss: float | None = None
    eval_loss: float | None = None
    elapsed_s: float = 0.0

    @property  # the protocol name is the status; a class attribute cannot vary per instance
    def type(self) -> str:  # type: ignore[override]
        return self.status

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "type": self.status}


EVENT_TYPES: dict[str, type[TrainEvent]] = {
    "started": RunStarted, "step": StepMetrics, "eval": EvalMetrics, "checkpoint": CheckpointSaved,
}


class TrainingFault(EngineError):
    """A run cannot go on: ``reason`` is oom, nan, model, data or config; ``hints`` say what to try.

    The loop turns it into a ``failed`` :class:`RunEnded` carrying the same reason, message, fix and hints.
    """

    def __init__(self, reason: str, message: str, fix: str | None = None, hints: list[str] | None = None):
        super().__init__(message, fix)
        self.reason = reason
        self.hints = hints or []


def event_from_json(obj: dict[str, Any]) -> TrainEvent:
    """The dataclass of one protocol line (unknown keys are ignored, so old readers survive new fields)."""
    kind = obj.get("type")
    if kind in TERMINAL:
        cls: type[TrainEvent] = RunEnded
        obj = {**obj, "status": kind}
    elif kind in EVENT_TYPES:
        cls = EVENT_TYPES[kind]
    else:
        raise ValueError(f"unknown event type {kind!r}")
    names = set(cls.__dataclass_fields__)
    return cls(**{k: v for k, v in obj.items() if k in names})


def parse_event_lines(lines: list[bytes] | list[str]) -> list[dict[str, Any]]:
    """The well-formed events among JSON lines (a torn or foreign line is skipped)."""
    out = []
    for line in lines:
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(obj, dict) and "type" in obj:
            out.append(obj)
    return out


def typed_events(objs: list[dict[str, Any]]) -> list[TrainEvent]:
    """The protocol events among parsed lines (a line of an unknown type or shape is skipped)."""
    out = []
    for obj in objs:
        try:
            out.append(event_from_json(obj))
        except (TypeError, ValueError):
            continue
    return out


def read_events(run_dir: Path) -> list[dict[str, Any]]:
    """Every complete line of the run's ``events.jsonl`` (a torn last line, from a kill, is ignored)."""
    file = Path(run_dir) / EVENTS_FILE
    if not file.exists():
        return []
    return parse_event_lines(file.read_bytes().splitlines())


def load_events(run_dir: Path) -> list[TrainEvent]:
    """The run's whole history as event dataclasses (what a front end replays for a run that is not live)."""
    return typed_events(read_events(run_dir))


def append_event(run_dir: Path, event: TrainEvent) -> None:
    """Append one event line to ``events.jsonl`` (the parent records a dead worker this way)."""
    with (Path(run_dir) / EVENTS_FILE).open("a", encoding="utf-8") as f:
        f.write(json.dumps(event.to_json(), ensure_ascii=False) + "\n")
