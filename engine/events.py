"""Typed, frozen events yielded by the engine's long operations.

Every long operation is a generator of these (an async generator where the work is network-bound).
Front ends render them: the CLI with rich progress bars, the TUI by posting messages to widgets.
Domain-specific events live beside the module that yields them and subclass :class:`Event`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Event:
    """Base class of every engine event."""


@dataclass(frozen=True, slots=True)
class Progress(Event):
    """A state snapshot of a job's progress: ``done`` of ``total`` ``unit`` (total None when unknown).

    ``rate`` (units per second, smoothed) and ``eta_s`` are filled by the engine through
    :meth:`engine.rate.RateMeter.progress`, so every front end shows the same figures and none computes them.
    """

    stage: str
    done: int
    total: int | None = None
    unit: str = "items"
    message: str = ""
    rate: float | None = None
    eta_s: float | None = None


@dataclass(frozen=True, slots=True)
class Log(Event):
    """A line for the user's log (level is a logging level name: INFO, WARNING, ERROR)."""

    message: str
    level: str = "INFO"
