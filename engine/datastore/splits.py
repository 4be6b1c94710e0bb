"""Split names: which split a file or folder name means (``train-00000-of-00002.parquet`` is ``train``)."""

from __future__ import annotations

import re

SPLIT_ALIASES = {"train": "train", "training": "train", "validation": "validation", "valid": "validation",
                 "val": "validation", "dev": "validation", "test": "test", "testing": "test"}
"""Split names as written in the wild, and the split each means."""


def split_of(name: str) -> str | None:
    """The split named by a file or folder name (``train-00000-of-00002.parquet`` → ``train``), else None."""
    base = name.lower()
    for suffix in (".gz", ".parquet", ".arrow", ".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".feather"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    for token in re.split(r"[-_.\s]+", base):
        if token in SPLIT_ALIASES:
            return SPLIT_ALIASES[token]
    return None


def normalize_split(split: str) -> str:
    """``dev`` → ``validation`` and so on; other names are kept."""
    return SPLIT_ALIASES.get(split.lower(), split)
