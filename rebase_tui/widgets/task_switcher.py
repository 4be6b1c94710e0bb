"""The task switcher (F8 on every screen): the workspace's tasks, filtered as you type; ``enter`` selects one,
``escape`` keeps the current task. The selected task is what every screen shows."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from rebase_tui.inert import inert


class TaskSwitcher(ModalScreen["str | None"]):
    """Pick a task by name (typing filters); returns its name, or None."""

    DEFAULT_CSS = """
    TaskSwitcher { align: center middle; }
    TaskSwitcher > Vertical { width: 60; max-width: 90%; height: auto; max-height: 80%; border: thick $primary;
                              background: $surface; padding: 0 1; }
    TaskSwitcher OptionList { height: auto; max-height: 16; border: none; }
    TaskSwitcher Label { color: $foreground-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="task_switcher.cancel", tooltip="keep the current task"),
        Binding("down", "move(1)", "Next", show=False),
        Binding("up", "move(-1)", "Previous", show=False),
    ]

    def __init__(self, tasks: list[str], current: str | None) -> None:
        super().__init__()
        self.tasks = tasks
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Switch task — type to filter, enter selects, escape cancels")
            yield Input(placeholder="task name", id="switch-filter")
            yield OptionList(id="switch-list")

    def on_mount(self) -> None:
        self._fill("")
        self.query_one("#switch-filter", Input).focus()

    def _fill(self, text: str) -> None:
        options = self.query_one("#switch-list", OptionList)
        options.clear_options()
        needle = text.strip().lower()
        shown = [t for t in self.tasks if needle in t.lower()]
        options.add_options([Option(Content(inert(t) + ("  (current)" if t == self.current else "")), id=t)
                             for t in shown])
        if shown:
            options.highlighted = shown.index(self.current) if self.current in shown else 0

    @on(Input.Changed, "#switch-filter")
    def _filter(self, event: Input.Changed) -> None:
        self._fill(event.value)

    @on(Input.Submitted, "#switch-filter")
    def _choose_highlighted(self) -> None:
        options = self.query_one("#switch-list", OptionList)
        if options.highlighted is not None:
            self.dismiss(options.get_option_at_index(options.highlighted).id)

    @on(OptionList.OptionSelected, "#switch-list")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_move(self, step: int) -> None:
        """Move the highlight while typing in the filter."""
        options = self.query_one("#switch-list", OptionList)
        if options.option_count:
            current = options.highlighted if options.highlighted is not None else -step
            options.highlighted = (current + step) % options.option_count

    def action_cancel(self) -> None:
        """Keep the current task."""
        self.dismiss(None)
