"""Review dialogs: the example editor (text areas beside the source row; ctrl+s saves and accepts), a one-line
question (:class:`LineDialog`: a rule's new text) and the reject reason, which is one."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, TextArea
from textual.widgets.button import ButtonVariant

from engine.review import ExampleRecord
from rebase_tui.inert import inert
from rebase_tui.key_order import after_typing
from rebase_tui.widgets.example_card import SourceRowView
from rebase_tui.widgets.text import plain

_CSS = """
ExampleEditor, LineDialog { align: center middle; }
ExampleEditor > Vertical { width: 94%; height: 92%; border: thick $primary; background: $surface; padding: 0 1; }
ExampleEditor #edit-main { height: 1fr; }
ExampleEditor #edit-fields { width: 3fr; }
ExampleEditor #edit-source { width: 2fr; border: round $primary-muted; margin-left: 1; }
ExampleEditor TextArea { height: 1fr; }
ExampleEditor #edit-reasoning { height: 1fr; }
ExampleEditor Label { margin-top: 1; color: $text-accent; }
LineDialog > Vertical { width: 90%; max-width: 100; height: auto; border: thick $primary; background: $surface;
                        padding: 1 2; }
LineDialog > Vertical.-error { border: thick $error; }
ExampleEditor .dialog-buttons, LineDialog .dialog-buttons { height: auto; align-horizontal: right; }
ExampleEditor Button, LineDialog Button { margin-left: 2; }
"""


class ExampleEditor(ModalScreen["dict[str, str] | None"]):
    """Edit an example's input, output and reasoning. Returns the new fields, or None when cancelled."""

    DEFAULT_CSS = _CSS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save + accept", id="review.edit.save", tooltip="save the edit and accept"),
        Binding("escape", "cancel", "Cancel", id="review.edit.cancel", tooltip="close without saving"),
    ]

    def __init__(self, example: ExampleRecord, origin: str = "", source: Any = None) -> None:
        super().__init__()
        self.example = example
        self.origin = origin
        """Where the example's source row comes from (dataset, config, row id)."""
        self.source = source
        """The source row's fields (shown beside the editors, as on the Review screen)."""

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Content(f"Edit example #{self.example.id} — ctrl+s saves and accepts, "
                                "escape cancels"))
            with Horizontal(id="edit-main"):
                with Vertical(id="edit-fields"):
                    yield Label("Input")
                    yield TextArea(inert(self.example.input), id="edit-input")
                    yield Label("Output")
                    yield TextArea(inert(self.example.output), id="edit-output")
                    if self.example.reasoning is not None:
                        yield Label("Reasoning")
                        yield TextArea(inert(self.example.reasoning), id="edit-reasoning")
                yield SourceRowView(id="edit-source")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save + accept", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        source = self.query_one("#edit-source", SourceRowView)
        source.border_title = "source row"
        source.show(self.origin or "imported example (no source row)", self.source)
        self.query_one("#edit-output", TextArea).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()

    @after_typing
    def action_save(self) -> None:
        """Close with the edited fields."""
        fields = {"input": self.query_one("#edit-input", TextArea).text,
                  "output": self.query_one("#edit-output", TextArea).text}
        reasoning = self.query("#edit-reasoning")
        if reasoning:
            fields["reasoning"] = reasoning.first(TextArea).text
        self.dismiss(fields)

    def action_cancel(self) -> None:
        """Close without saving."""
        self.dismiss(None)


class LineDialog(ModalScreen["str | None"]):
    """Ask for one line of text: ``enter`` (or the OK button) answers it, stripped (it may be empty);
    ``escape`` cancels (None)."""

    DEFAULT_CSS = _CSS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="dialog.line.cancel", tooltip="close without an answer"),
    ]

    def __init__(self, title: str, value: str = "", *, ok: str = "OK", placeholder: str = "",
                 variant: ButtonVariant = "primary") -> None:
        super().__init__()
        self.title_text = title
        self.value = value
        self.ok = ok
        self.placeholder = placeholder
        self.variant: ButtonVariant = variant

    def compose(self) -> ComposeResult:
        with Vertical(classes=f"-{self.variant}"):
            yield Label(plain(self.title_text, 500))
            yield Input(inert(self.value), placeholder=self.placeholder, id="line")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.ok, variant=self.variant, id="ok")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#line", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(self.query_one("#line", Input).value.strip() if event.button.id == "ok" else None)

    def action_cancel(self) -> None:
        """Close without an answer."""
        self.dismiss(None)


class ReasonDialog(LineDialog):
    """Ask why an example is rejected; enter confirms (an empty reason is allowed), escape cancels."""

    def __init__(self, title: str = "Reject — why? (enter rejects, escape cancels)") -> None:
        super().__init__(title, ok="Reject", placeholder="e.g. wrong label, off-task, copies the row", variant="error")
