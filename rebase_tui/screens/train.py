"""Train stage: fine-tune a student model on the accepted examples and watch it live."""

from __future__ import annotations

from rebase_tui.screens.base import StageScreen


class TrainScreen(StageScreen):
    """Training runs of this workspace."""

    STAGE = "train"

    def empty_message(self) -> str | None:
        if self.rebase.count("runs"):
            return None
        return ("No training runs yet.\n\nA student model (any Hugging Face causal LM on disk) is fine-tuned "
                "on the accepted examples (F6), with LoRA or in full, then evaluated and exported.")
