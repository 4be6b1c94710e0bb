"""Review stage: accept, reject and edit the teacher's examples by keyboard."""

from __future__ import annotations

from rebase_tui.screens.base import StageScreen


class ReviewScreen(StageScreen):
    """The examples waiting for review."""

    STAGE = "review"

    def empty_message(self) -> str | None:
        if self.rebase.count("examples"):
            return None
        return ("No examples to review yet.\n\nExamples appear here as the teacher writes them (F5); "
                "accept, reject or edit each one beside its source row.")
