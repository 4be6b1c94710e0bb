"""The stage bar: the six ReBase stages with their keys, the current one highlighted, and the selected task.

The selected task matters most on a narrow terminal: the bar shortens the stage names (then shows only the
keys of the other stages) before it drops the task, and the task before the dataset count and embedder.
"""

from __future__ import annotations

from textual.content import Content
from textual.widget import Widget

from rebase_tui.inert import inert

#: (stage name, key, label), in pipeline order.
STAGES: tuple[tuple[str, str, str], ...] = (
    ("data", "f2", "Data"),
    ("task", "f3", "Task"),
    ("retrieve", "f4", "Retrieve"),
    ("transform", "f5", "Transform"),
    ("review", "f6", "Review"),
    ("train", "f7", "Train"),
)
SHORT = {"retrieve": "Retr", "transform": "Trans", "review": "Rev"}


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


class StageBar(Widget):
    """One line: ``F2 Data  F3 Task …`` (each clickable), then the status (task first)."""

    DEFAULT_CSS = """
    StageBar { height: 1; }
    """

    def __init__(self, current: str, status: str = "") -> None:
        super().__init__(id="stage-bar")
        self.current = current
        self.status = status

    def on_mount(self) -> None:
        signal = getattr(self.app, "task_signal", None)
        if signal is not None:  # another task selected on any screen: this bar says so at once
            signal.subscribe(self, self._task_changed)

    def _task_changed(self, _task: object) -> None:
        self.set_status(self.app.status_text())  # type: ignore[attr-defined]

    def set_status(self, status: str) -> None:
        """Show ``status`` (plain text, never markup; parts separated by `` · ``, most important first)."""
        self.status = inert(status)
        self.refresh()

    def _stages(self, style: str) -> tuple[Content, int]:
        markup, width = [], 0
        for name, key, label in STAGES:
            text = {"full": label, "short": SHORT.get(name, label),
                    "keys": label if name == self.current else ""}[style]
            item = f" {key.upper()}{' ' + text if text else ''} "
            width += len(item) + 1
            look = "bold reverse" if name == self.current else "$foreground-muted"
            markup.append(f"[{look} @click=app.stage('{name}')]{item}[/]")
        return Content.from_markup(" ".join(markup)), width - 1

    def render(self) -> Content:
        width = self.size.width or 200
        parts = [p for p in self.status.split(" · ") if p]
        for style in ("full", "short", "keys"):
            bar, used = self._stages(style)
            room = width - used - 3
            if not parts or room >= min(len(parts[0]), 18):
                break
        status = ""
        for part in parts:  # as many parts as fit, the first (the task) cut to fit when it must
            candidate = f"{status} · {part}" if status else part
            if len(candidate) <= room:
                status = candidate
            elif not status:
                status = _fit(part, room)
                break
            else:
                break
        return bar + Content.styled(f"   {status}", "$foreground-muted") if status else bar
