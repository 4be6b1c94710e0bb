"""Small helpers shared by the TUI tests (waiting on conditions, reading widget text)."""

from __future__ import annotations

import time
from collections.abc import Callable


async def until(pilot, condition: Callable[[], object], timeout: float = 60.0, what: str = "") -> None:  # type: ignore[no-untyped-def]
    """Let the app run until ``condition()`` is true (fails after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or condition}")
        await pilot.pause(0.05)


def text_of(widget) -> str:  # type: ignore[no-untyped-def]
    """The plain text a Static-like widget shows."""
    return str(widget.render())


async def search_settled(pilot) -> None:  # type: ignore[no-untyped-def]
    """Wait until the newest requested search is shown (or the live search has nothing to run)."""
    live = pilot.app.live
    await pilot.pause()  # let pending edits (Changed messages) request their search first

    def settled() -> bool:
        latest = live.latest
        return (live.ready and latest is not None and latest.generation == live.generation
                and not any(w.group == "search" and not w.is_finished for w in pilot.app.workers))

    await until(pilot, settled, what="the newest search to be shown")
    await pilot.pause()
