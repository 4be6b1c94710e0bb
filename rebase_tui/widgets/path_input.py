"""An Input for file-system paths, with completion (``tab`` or ``→`` at the end accepts it)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.suggester import Suggester
from textual.widgets import Input


def complete_path(value: str, limit: int = 500) -> str | None:
    """The completion of ``value`` as a path: the first (sorted) entry that extends its last part.

    A folder completes with a trailing ``/``. ``~`` is kept as typed. None when nothing matches.
    """
    if not value:
        return None
    expanded = os.path.expanduser(value)
    folder, _, prefix = expanded.rpartition(os.sep)
    base = Path(folder or ("/" if expanded.startswith(os.sep) else "."))
    try:
        names = sorted(entry.name for _, entry in zip(range(limit), os.scandir(base), strict=False))
    except OSError:
        return None
    for name in names:
        if name.startswith(prefix) and (prefix or not name.startswith(".")):
            done = value[: len(value) - len(prefix)] + name
            if (base / name).is_dir():
                done += os.sep
            return done if done != value else None
    return None


class PathSuggester(Suggester):
    """Suggests the completion of a path (case-sensitive, not cached: the file system changes)."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        return complete_path(value)


class PathInput(Input):
    """A path Input: the completion shows dimmed; ``tab`` (or ``→``) accepts it, ``tab`` with nothing to
    complete moves focus on as usual."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("tab", "complete", "Complete path", show=False, id="path.complete",
                tooltip="accept the suggested completion"),
    ]

    def __init__(self, value: str = "", **kwargs: object) -> None:
        kwargs.setdefault("placeholder", "path to a file or folder (tab completes)")
        super().__init__(value, suggester=PathSuggester(), **kwargs)  # type: ignore[arg-type]

    def action_complete(self) -> None:
        """Accept the completion, else move focus to the next widget."""
        if self._suggestion and self._suggestion != self.value:
            self.value = self._suggestion
            self.cursor_position = len(self.value)
        else:
            self.screen.focus_next()
