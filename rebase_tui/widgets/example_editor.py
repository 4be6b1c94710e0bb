"""Review dialogs: the example editor (text areas beside the source row; ctrl+s saves and accepts) and the
reject reason."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, TextArea

from engine.review import ExampleRecord
from rebase_tui.inert import inert
from rebase_tui.widgets.example_card import SourceRowView

_CSS = """
ExampleEditor, ReasonDialog { align: center middle; }
ExampleEditor > Vertical { width: 94%; height: 92%; border: thick $primary; background: $surface; padding: 0 1; }
ExampleEditor #edit-main { height: 1fr; }
ExampleEditor #edit-fields { width: 3fr; }
ExampleEditor #edit-source { width: 2fr; border: round $primary-muted; margin-left: 1; }
ExampleEditor TextArea { height: 1fr; }
ExampleEditor #edit-reasoning { height: 1fr; }
ExampleEditor Label { margin-top: 1; color: $text-accent; }
ReasonDialog > Vertical { width: 70; height: auto; border: thick $error; background: $surface; padding: 1 2; }
ExampleEditor .dialog-buttons, ReasonDialog .dialog-buttons { height: auto; align-horizontal: right; }
ExampleEditor Button, ReasonDialog Button { margin-left: 2; }
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


class ReasonDialog(ModalScreen["str | None"]):
    """Ask why an example is rejected; enter confirms (an empty reason is allowed), escape cancels."""

    DEFAULT_CSS = _CSS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="review.reason.cancel", tooltip="do not reject"),
    ]

    def __init__(self, title: str = "Reject — why? (enter rejects, escape cancels)") -> None:
        super().__init__()
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Content(self.title_text))
            yield Input(placeholder="e.g. wrong label, off-task, copies the row", id="reason")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Reject", variant="error", id="reject")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#reason", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "reject":
            self.dismiss(self.query_one("#reason", Input).value.strip())
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        """Close without rejecting."""
        self.dismiss(None)
