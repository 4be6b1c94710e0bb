"""The stage bar: the six ReBase stages with their keys, the current one highlighted."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

#: (stage name, key, label), in pipeline order.
STAGES: tuple[tuple[str, str, str], ...] = (
    ("data", "f2", "Data"),
    ("task", "f3", "Task"),
    ("retrieve", "f4", "Retrieve"),
    ("transform", "f5", "Transform"),
    ("review", "f6", "Review"),
    ("train", "f7", "Train"),
)


class StageBar(Static):
    """One line: ``F2 Data  F3 Task ...``, each clickable, the current stage highlighted."""

    def __init__(self, current: str, status: str = "") -> None:
        super().__init__(id="stage-bar")
        self.current = current
        self.status = status

    def on_mount(self) -> None:
        self.update(self.render_bar())

    def set_status(self, status: str) -> None:
        """Show ``status`` (plain text, never markup) at the right of the bar."""
        self.status = status
        self.update(self.render_bar())

    def render_bar(self) -> Content:
        markup = []
        for name, key, label in STAGES:
            style = "bold reverse" if name == self.current else "dim"
            markup.append(f"[{style} @click=app.stage('{name}')] {key.upper()} {label} [/]")
        bar = Content.from_markup(" ".join(markup))
        if self.status:
            bar = bar + Content.styled(f"   {self.status}", "dim")
        return bar
