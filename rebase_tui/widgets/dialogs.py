"""Small modal dialogs: confirm (yes/no) and ask for a path. Every text shown is plain, never markup."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from rebase_tui.widgets.path_input import PathInput
from rebase_tui.widgets.text import plain

DIALOG_CSS = """
ConfirmDialog, PathDialog {
    align: center middle;
}
ConfirmDialog > Vertical, PathDialog > Vertical {
    width: 72;
    height: auto;
    max-height: 80%;
    border: thick $primary;
    background: $surface;
    padding: 1 2;
}
ConfirmDialog .dialog-buttons, PathDialog .dialog-buttons {
    height: auto;
    margin-top: 1;
    align-horizontal: right;
}
ConfirmDialog Button, PathDialog Button {
    margin-left: 2;
}
PathDialog .dialog-error {
    color: $error;
    height: auto;
}
"""


class ConfirmDialog(ModalScreen[bool]):
    """Asks a yes/no question: ``y``/``enter`` on Yes confirms, ``n``/``escape`` cancels."""

    DEFAULT_CSS = DIALOG_CSS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="dialog.yes", tooltip="confirm"),
        Binding("n,escape", "answer(False)", "No", id="dialog.no", tooltip="cancel"),
    ]

    def __init__(self, question: str, yes: str = "Yes") -> None:
        super().__init__()
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(plain(self.question, 2000))
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.yes, variant="error", id="yes")
                yield Button("Cancel", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        """Close with ``value``."""
        self.dismiss(value)


class PathDialog(ModalScreen[str | None]):
    """Asks for a path (with completion); ``enter`` accepts, ``escape`` cancels. Returns the text or None."""

    DEFAULT_CSS = DIALOG_CSS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="dialog.cancel", tooltip="close without a path"),
    ]

    def __init__(self, title: str, value: str = "", ok: str = "OK") -> None:
        super().__init__()
        self.title_text = title
        self.value = value
        self.ok = ok

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(plain(self.title_text, 500))
            yield PathInput(self.value, id="path")
            yield Static("", classes="dialog-error", id="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.ok, variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#path", PathInput).focus()

    def on_input_submitted(self) -> None:
        self._accept()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._accept()
        else:
            self.dismiss(None)

    def _accept(self) -> None:
        value = self.query_one("#path", PathInput).value.strip()
        if not value:
            self.query_one("#dialog-error", Static).update(Content("type a path (tab completes)"))
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        """Close without a path."""
        self.dismiss(None)
