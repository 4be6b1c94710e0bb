"""Data stage: the datasets in the workspace's datastore."""

from __future__ import annotations

from rebase_tui.screens.base import StageScreen


class DataScreen(StageScreen):
    """The datastore: datasets ingested cell by cell, embedded for retrieval."""

    STAGE = "data"

    def empty_message(self) -> str | None:
        if self.rebase.count("datasets"):
            return None
        return ("No datasets yet.\n\nThe datastore holds the datasets you already have on disk (Parquet, "
                "JSONL, CSV, Hugging Face caches), cell by cell. Ingest a folder from a shell with\n\n"
                "    rebase-tui ingest PATH\n\nthen come back here (F2).")
