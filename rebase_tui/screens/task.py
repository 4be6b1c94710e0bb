"""Task stage: an instruction and a few input/output examples."""

from __future__ import annotations

from rebase_tui.screens.base import StageScreen


class TaskScreen(StageScreen):
    """The tasks of this workspace."""

    STAGE = "task"

    def empty_message(self) -> str | None:
        if self.rebase.count("tasks"):
            return None
        return ("No tasks yet.\n\nA task is an instruction plus a few input/output examples, as JSON: "
                '{"name", "instruction", "examples": [{"input", "output"}], '
                '"source_datasets_to_exclude": []}.')
