"""Text editors that leave the app's stage keys alone."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import TextArea


class PlainTextArea(TextArea):
    """A soft-wrapping TextArea for prose. TextArea binds ``f6``/``f7`` (select line / select all);
    here they keep their app meaning (go to the Review / Train stage), so stage keys work everywhere."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f6", "app.stage('review')", "Review", show=False),
        Binding("f7", "app.stage('train')", "Train", show=False),
    ]

    def __init__(self, text: str = "", **kwargs: object) -> None:
        kwargs.setdefault("soft_wrap", True)
        kwargs.setdefault("tab_behavior", "focus")
        kwargs.setdefault("show_line_numbers", False)
        super().__init__(text, **kwargs)  # type: ignore[arg-type]

    def set_text(self, text: str) -> None:
        """Replace the text unless it is already that (keeps the cursor and undo history when equal)."""
        if self.text != text:
            self.load_text(text)
