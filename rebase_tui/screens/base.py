"""The frame every stage screen shares: header, stage bar, body, footer, and an empty state."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Header, Static

from rebase_tui.widgets.stage_bar import StageBar

if TYPE_CHECKING:
    from rebase_tui.app import RebaseApp


#: What Textual makes of alt+digit: terminals send ESC then the digit, which Textual reads as the character
#: macOS's Option+digit types (ESC 1 is "¡"); a key bound to both names works everywhere.
ALT_DIGIT_KEYS = {1: "inverted_exclamation_mark", 2: "trade_mark_sign", 3: "pound_sign", 4: "cent_sign",
                  5: "infinity", 6: "section_sign", 7: "pilcrow_sign", 8: "bullet"}


class StageScreen(Screen):
    """Base of the six stage screens. Subclasses set ``STAGE`` and override :meth:`compose_body`
    and :meth:`empty_message` (None when the stage has something to show).

    ``PANES`` names the screen's panes in order, as ``(selector, label)``: ``alt+1`` … ``alt+N`` put the
    focus in them (a pane that cannot take focus passes it to its first widget that can), so no pane is
    more than one key away however many fields sit before it; ``ctrl+↓``/``ctrl+↑`` step through them, from
    a text field too.
    """

    STAGE = ""
    PANES: ClassVar[tuple[tuple[str, str], ...]] = ()
    BINDINGS: ClassVar[list[BindingType]] = [
        # ctrl+↓/↑ reach every pane from anywhere, a text field included: a terminal sends alt+digit as ESC
        # and the digit, which a focused text field takes as a typed character
        Binding("ctrl+down", "next_pane(1)", "Next pane", id="pane.next", priority=True, show=False,
                tooltip="focus the next pane (alt+1…alt+N go to one directly)"),
        Binding("ctrl+up", "next_pane(-1)", "Previous pane", id="pane.previous", priority=True, show=False,
                tooltip="focus the previous pane"),
    ]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        if "PANES" in cls.__dict__ and cls.PANES:
            stage = cls.__dict__.get("STAGE", "") or cls.__name__.lower()
            cls.BINDINGS = [*cls.__dict__.get("BINDINGS", []), *(
                Binding(f"alt+{i},{ALT_DIGIT_KEYS[i]}", f"pane({i})", f"Go to the {label} pane", show=False,
                        key_display=f"alt+{i}", id=f"{stage}.pane.{i}",
                        tooltip=f"alt+{i}: focus the {label} pane", priority=True)
                for i, (_selector, label) in enumerate(cls.PANES, start=1))]
        super().__init_subclass__(**kwargs)

    @property
    def rebase(self) -> RebaseApp:
        """The app, typed."""
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield StageBar(self.STAGE)
        with Vertical(classes="stage-body"):
            yield Static("", id="empty-state", classes="empty-state")
            yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        """The stage's own widgets."""
        yield from ()

    def empty_message(self) -> str | None:
        """What to do next when the stage has nothing to show yet, else None."""
        return None

    def on_mount(self) -> None:
        self.refresh_state()
        self.every(1.0, self._leave_empty_state)
        self.rebase.task_signal.subscribe(self, self._other_task_selected)

    def _other_task_selected(self, _task: object) -> None:
        """Another task was selected: the screen in view shows it at once (the others on their return)."""
        if self.is_current:
            self.refresh_state()

    def every(self, seconds: float, callback: Callable[[], object], name: str | None = None) -> None:
        """Call ``callback`` every ``seconds`` until the app starts quitting (a poll never starts new work on
        a workspace that is being closed)."""

        def tick() -> None:
            if not self.rebase.closing:
                callback()

        self.set_interval(seconds, tick, name=name)

    def _pane_target(self, number: int) -> Widget | None:
        """The widget that takes the focus for pane ``number`` (1-based), or None when it shows nothing."""
        if not 1 <= number <= len(self.PANES):
            return None
        found = self.query(self.PANES[number - 1][0])
        if not found:
            return None
        pane = found.first()
        if not (pane.display and pane.visible):
            return None
        return pane if pane.focusable else next((w for w in pane.query("*") if w.focusable), None)

    def action_pane(self, number: int) -> None:
        """Focus pane ``number`` (1-based) of ``PANES``."""
        target = self._pane_target(number)
        if target is not None:
            target.focus()

    def _pane_of(self, widget: object) -> int | None:
        """The index in PANES of the pane holding ``widget`` (None when it is in none of them)."""
        for i, (selector, _label) in enumerate(self.PANES):
            for pane in self.query(selector):
                if widget is pane or pane in getattr(widget, "ancestors", ()):
                    return i
        return None

    def action_next_pane(self, step: int) -> None:
        """Focus the next (1) or previous (-1) pane that shows something."""
        count = len(self.PANES)
        current = self._pane_of(self.focused)
        start = (-1 if step > 0 else 0) if current is None else current
        for k in range(1, count + 1):
            target = self._pane_target((start + k * step) % count + 1)
            if target is not None and target is not self.focused:
                target.focus()  # (focus lands on the next refresh: self.focused cannot be read back here)
                return

    def stoppers(self) -> list[Callable[[float], bool]]:
        """Threads of this screen's own to stop before the workspace closes: each is called with the seconds
        left (off the event loop) and returns True once its thread has stopped. Most screens have none (their
        jobs run as workers, which quitting cancels and waits for)."""
        return []

    def _leave_empty_state(self) -> None:
        """While the empty state shows, notice when the stage gets something to show (another screen's
        or process's writes may land after this screen was opened)."""
        if self.is_current and self.query_one("#empty-state", Static).display and self.empty_message() is None:
            self.refresh_state()

    def on_screen_resume(self) -> None:
        self.refresh_state()

    def refresh_state(self) -> None:
        """Re-read what the stage shows from the workspace (cheap: counts only)."""
        message = self.empty_message()
        empty = self.query_one("#empty-state", Static)
        empty.display = message is not None
        if message is not None:
            empty.update(Content(message))
        self.query_one(StageBar).set_status(self.rebase.status_text())
