"""Generations in flight: the teacher's text for the most recent few rows, as it streams.

Each generation is a card (a ``Static``) keyed by the engine's id for it; the card carries the CSS class
``-streaming`` while text arrives (elia's idiom) and ``-failed`` when it ended badly. Updates carry the
*full text so far* (snapshots the message queue may coalesce), so a dropped intermediate update loses nothing.
Only ``keep`` cards are kept: the oldest finished ones are removed first.
"""

from __future__ import annotations

from collections.abc import Hashable

from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

#: Characters of streamed text shown per card (the tail: the newest text is what matters).
TAIL_CHARS = 600


def _body(text: str) -> Content:
    """The card text: the tail of what was generated, control characters shown inertly."""
    from rebase_tui.inert import inert

    return Content(inert(text[-TAIL_CHARS:] if len(text) > TAIL_CHARS else text))


def inert_title(title: str) -> str:
    from rebase_tui.widgets.text import one_line

    return one_line(title, 200)


class StreamCard(Static):
    """One generation's text so far."""

    DEFAULT_CSS = """
    StreamCard { height: auto; max-height: 8; border: round $primary-muted; padding: 0 1; }
    StreamCard.-streaming { border: round $stream-cursor; }
    StreamCard.-failed { border: round $error; }
    """


class StreamView(VerticalScroll):
    """The last ``keep`` generations, newest at the bottom."""

    DEFAULT_CSS = """
    StreamView { height: 1fr; }
    """

    def __init__(self, keep: int = 4, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.keep = keep
        self.cards: dict[Hashable, StreamCard] = {}

    def update_text(self, key: Hashable, title: str, text: str) -> None:
        """Show ``text`` (everything generated so far) for generation ``key``."""
        if not self.is_attached:  # an event that arrived after the screen went away (the app is quitting)
            return
        card = self.cards.get(key)
        body = _body(text)
        if card is None:
            card = StreamCard(body, classes="-streaming")
            card.border_title = inert_title(title)
            self.cards[key] = card
            self._trim()
            self.mount(card)
            self.call_after_refresh(self.scroll_end, animate=False)
        else:
            card.update(body)

    def finish(self, key: Hashable, note: str = "", failed: bool = False, final: str = "") -> None:
        """Mark generation ``key`` as finished (``note`` goes in the card's subtitle); ``final`` replaces
        the streamed text (the snapshots are throttled, so the last one may stop short of the end)."""
        card = self.cards.get(key)
        if card is None:
            return
        if final:
            card.update(_body(final))
        card.remove_class("-streaming")
        card.set_class(failed, "-failed")
        from rebase_tui.widgets.text import one_line

        card.border_subtitle = one_line(note, 200)

    @property
    def streaming(self) -> int:
        """How many cards are still receiving text."""
        return sum(1 for c in self.cards.values() if c.has_class("-streaming"))

    def clear(self) -> None:
        """Remove every card."""
        for card in self.cards.values():
            card.remove()
        self.cards.clear()

    def _trim(self) -> None:
        while len(self.cards) >= self.keep:
            finished = [k for k, c in self.cards.items() if not c.has_class("-streaming")]
            victim = finished[0] if finished else next(iter(self.cards))
            self.cards.pop(victim).remove()
