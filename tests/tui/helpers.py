"""Small helpers shared by the TUI tests (waiting on conditions, reading widget text)."""

from __future__ import annotations

import os
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


def screen_lines(app) -> list[str]:  # type: ignore[no-untyped-def]
    """The text of every line of the current screen, as the terminal would show it."""
    return ["".join(seg.text for seg in strip) for strip in app.screen._compositor.render_strips()]


def _luminance(color) -> float:  # type: ignore[no-untyped-def]
    def channel(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = color.triplet if color.triplet is not None else color.get_truecolor()
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(fg, bg) -> float:  # type: ignore[no-untyped-def]
    """The WCAG contrast ratio of two rich colours (1 to 21)."""
    a, b = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def illegible(app, minimum: float = 2.5) -> list[str]:  # type: ignore[no-untyped-def]
    """The runs of visible text on the current screen whose colour is too close to their background:
    ``'line 3: "text" 1.2:1'`` for each (empty when everything is legible)."""
    found = []
    for y, strip in enumerate(app.screen._compositor.render_strips()):
        for seg in strip:
            style = seg.style
            text = seg.text.strip()
            if not text or style is None or style.color is None or style.bgcolor is None:
                continue
            if all(ch in "▁▔▏▕▎▊▌▐│─╭╮╰╯┃━╸╺ " for ch in text):
                continue  # borders and rules are drawn on purpose in quiet colours
            if style.color == style.bgcolor:
                continue  # drawn in the background colour on purpose: nothing is shown (an empty checkbox)
            ratio = contrast(style.color, style.bgcolor)
            if ratio < minimum:
                found.append(f"line {y}: {text[:40]!r} {ratio:.1f}:1")
    return found


_RAW = set(range(0x00, 0x20)) | set(range(0x7F, 0xA0)) | {0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F),
                                                           *range(0x2066, 0x206A)}


def raw_controls(app) -> list[str]:  # type: ignore[no-untyped-def]
    """Lines of the current screen (modal screens included) that would write a control character, a C1 code
    or a bidirectional override to the terminal: ``'line 3: "a\\x1b[2J…"'`` for each."""
    found = []
    for y, strip in enumerate(app.screen._compositor.render_strips()):
        text = "".join(seg.text for seg in strip)
        if any(ord(ch) in _RAW for ch in text):
            found.append(f"line {y}: {text.strip()[:60]!r}")
    return found


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie has exited: only its parent has not reaped it yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:  # gone between the two looks
        return False
