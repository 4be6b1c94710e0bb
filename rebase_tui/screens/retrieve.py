"""Retrieve stage: the datastore's rows ranked for the selected task."""

from __future__ import annotations

from rebase_tui.screens.base import StageScreen


class RetrieveScreen(StageScreen):
    """Ranked rows for the selected task."""

    STAGE = "retrieve"

    def empty_message(self) -> str | None:
        if self.rebase.count("datasets") and self.rebase.count("tasks"):
            return None
        return ("Nothing to rank yet.\n\nRetrieval scores every row of the datastore against a task "
                "(best cell vs. the example inputs and outputs, dataset description vs. the "
                "instruction). It needs datasets (F2) and a task (F3).")
