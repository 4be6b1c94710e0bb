"""The Task screen's lists: the stored tasks and the draft's examples, and the text helpers they use.

Task and example text is the user's or a dataset's: it is shown inertly, never as markup.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, OptionList

from rebase_tui.inert import inert

PREVIEW = 50


def preview(text: str, width: int = PREVIEW) -> Text:
    """One line of untrusted text, verbatim (never markup), cut to ``width``."""
    line = inert(" ".join(text[: width * 4].split()))
    return Text(line if len(line) <= width else line[: width - 1] + "…")


def field_of(problem: str) -> str:
    """Which editor field a validation problem concerns: name, instruction, examples or exclude."""
    low = problem.lower()
    if low.startswith(("example", "no examples")):
        return "examples"
    if "source_datasets_to_exclude" in low:
        return "exclude"
    if "instruction" in low:
        return "instruction"
    return "name"


class TaskList(OptionList):
    """The stored tasks. ``enter`` opens one, ``delete`` removes it (with confirmation)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("delete", "screen.remove_task", "Remove task", id="task.remove",
                tooltip="remove the highlighted task (asks first)"),
    ]


class ExampleTable(DataTable):
    """The examples of the draft. ``a`` adds one, ``delete`` removes the highlighted one, ``shift+↑/↓``
    (or ``K``/``J``) move it; the editors below edit the highlighted example."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a,insert", "screen.add_example", "Add example", id="task.example.add",
                tooltip="add an empty example and edit it"),
        Binding("delete,d", "screen.delete_example", "Delete example", id="task.example.delete",
                tooltip="delete the highlighted example"),
        Binding("shift+up,K", "screen.move_example(-1)", "Move up", id="task.example.up",
                tooltip="move the highlighted example up"),
        Binding("shift+down,J", "screen.move_example(1)", "Move down", id="task.example.down",
                tooltip="move the highlighted example down"),
    ]



def split_ids(text: str) -> list[str]:
    """``"glue, squad"`` → ``["glue", "squad"]``."""
    return [part.strip() for part in text.split(",") if part.strip()]
