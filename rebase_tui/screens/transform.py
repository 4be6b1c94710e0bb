"""Transform stage: the teacher LLM (Ollama) rewrites retrieved rows into task examples."""

from __future__ import annotations

from rebase_tui.screens.base import StageScreen


class TransformScreen(StageScreen):
    """The teacher's progress on the task's pool."""

    STAGE = "transform"

    def empty_message(self) -> str | None:
        if self.rebase.count("retrievals"):
            return None
        return ("No pool to transform yet.\n\nThe teacher, a local model served by Ollama, rewrites each "
                "retrieved row into an example in the task's format. Retrieve rows for a task first (F4).")
