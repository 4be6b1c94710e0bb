"""Is a task written in a script an English-only embedder cannot read? A warning for retrieval and `task show`.

Retrieval compares the task's examples with the datastore's cells through the workspace's embedder. The
default, ``all-MiniLM-L6-v2``, was trained on English: Japanese or Russian examples land near unrelated text,
and the pool is poor without any error. The paper's own embedder, ``distiluse-base-multilingual-cased``, is
multilingual. The check is deliberately simple: the share of the letters in the examples' inputs and outputs
that are not Latin-script letters (CJK, kana, Cyrillic, Arabic, ...), and whether the embedder's name says it
is multilingual. Latin-script languages other than English (French, German) are not detected.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.tasks import Task
    from engine.workspace import Workspace

NON_LATIN_SHARE = 0.3
"""A task whose letters are at least this share non-Latin counts as not English."""
MULTILINGUAL_MARKS = ("multilingual", "labse", "bge-m3", "xlm", "mbert", "nomic-embed-text-v2", "jina-embeddings-v3")
"""Parts of a model name that mark a multilingual embedder (case-insensitive)."""
MULTILINGUAL_EMBEDDER = "sentence-transformers/distiluse-base-multilingual-cased"
"""The paper's embedder, suggested in the warning."""


def non_latin_scripts(texts: list[str]) -> tuple[float, list[str]]:
    """The share of letters outside the Latin script, and the scripts found (first word of the Unicode
    name: CJK, HIRAGANA, CYRILLIC...), most frequent first."""
    letters = 0
    counts: dict[str, int] = {}
    for text in texts:
        for ch in text:
            if not ch.isalpha():
                continue
            letters += 1
            name = unicodedata.name(ch, "")
            script = name.split(" ", 1)[0] if name else "UNKNOWN"
            if script != "LATIN":
                counts[script] = counts.get(script, 0) + 1
    share = sum(counts.values()) / letters if letters else 0.0
    return share, sorted(counts, key=lambda s: -counts[s])


def english_only(embedder: str) -> bool:
    """Whether the embedder's name names no multilingual model."""
    name = embedder.lower()
    return not any(mark in name for mark in MULTILINGUAL_MARKS)


def embedder_warning(task: Task, embedder: str | None) -> str | None:
    """One line when ``task``'s examples are mostly not in the Latin script and ``embedder`` is English-only."""
    if not embedder or not english_only(embedder):
        return None
    share, scripts = non_latin_scripts([t for e in task.examples for t in (e.input, e.output)])
    if share < NON_LATIN_SHARE:
        return None
    shown = ", ".join(s.lower() for s in scripts[:3])
    return (f"task {task.name}: {share:.0%} of its examples' letters are not Latin ({shown}), but the embedder "
            f"{embedder} reads English only, so retrieval will match them poorly; use a multilingual embedder "
            f"such as {MULTILINGUAL_EMBEDDER} (`rebase-tui config embedder.model NAME` before the first ingest, "
            "or a new workspace)")


def workspace_embedder(ws: Workspace) -> str:
    """The embedder the workspace's vectors were made with (its configured one before the first ingest)."""
    return ws.store.get_meta("embedder.name") or str(ws.config["embedder.model"])
