"""Smoothed throughput and ETA, computed here only and carried by :class:`engine.events.Progress`.

The engine's long operations build their progress events with :meth:`RateMeter.progress`; front ends show
``event.rate`` and ``event.eta_s`` as they are, so the CLI and the TUI always agree.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.events import Progress


@dataclass
class RateMeter:
    """Exponential moving average of a rate (units per second) with an ETA.

    ``clock`` is injectable so tests and snapshots are deterministic.
    """

    alpha: float = 0.3
    clock: Callable[[], float] = time.monotonic
    rate: float | None = None
    _last_time: float | None = field(default=None, repr=False)
    _last_done: float = field(default=0.0, repr=False)

    def update(self, done: float) -> float | None:
        """Record that ``done`` units are finished in total; return the smoothed rate."""
        now = self.clock()
        if self._last_time is None:
            self._last_time, self._last_done = now, done
            return self.rate
        dt = now - self._last_time
        if dt <= 0:
            return self.rate
        inst = (done - self._last_done) / dt
        self.rate = inst if self.rate is None else (1 - self.alpha) * self.rate + self.alpha * inst
        self._last_time, self._last_done = now, done
        return self.rate

    def eta(self, done: float, total: float | None) -> float | None:
        """Seconds left to reach ``total`` at the smoothed rate (None when unknown)."""
        if total is None or not self.rate or self.rate <= 0:
            return None
        return max(0.0, (total - done) / self.rate)

    def progress(self, stage: str, done: int, total: int | None = None, unit: str = "items",
                 message: str = "") -> Progress:
        """A :class:`Progress` event for ``done`` of ``total``, with the smoothed rate and the ETA."""
        rate = self.update(done)
        return Progress(stage, done, total, unit, message, rate=rate, eta_s=self.eta(done, total))


def format_seconds(seconds: float | None) -> str:
    """``75`` → ``1:15``; ``3700`` → ``1:01:40``; None → ``--:--``."""
    if seconds is None:
        return "--:--"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
