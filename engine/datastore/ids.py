"""Dataset ids: from folder names and cards, the one ``ingest --id`` gives, and when two sources collide.

A dataset's id is the card's ``pretty_name`` when it looks like an id (no spaces), else the folder name
(``ORG__NAME`` → ``ORG/NAME``, ``datasets--ORG--NAME`` → ``ORG/NAME``), else the file stem. Ids name
datasets in the workspace, so a second source claiming a taken id is never read in silence: it is
reported with the way to ingest it under another id.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from engine.datastore.cells import storable
from engine.errors import EngineError

ID_RE = re.compile(r"[\w.\-]+(/[\w.\-]+)?")
"""A dataset id: ``name`` or ``org/name`` of letters, digits, ``_``, ``-`` and ``.``."""


def id_from_folder(name: str) -> str:
    """``ORG__NAME`` → ``ORG/NAME``; ``datasets--ORG--NAME`` → ``ORG/NAME``; else unchanged."""
    if name.startswith("datasets--"):
        parts = name[len("datasets--"):].split("--", 1)
        return "/".join(parts)
    if "__" in name:
        org, rest = name.split("__", 1)
        if org and rest:
            return f"{org}/{rest}"
    return name


def pretty_id(meta: dict[str, Any]) -> str | None:
    """The card's ``pretty_name`` when it is usable as an id, else None."""
    pretty = meta.get("pretty_name")
    if isinstance(pretty, str) and ID_RE.fullmatch(pretty.strip()):
        return pretty.strip()
    return None


def checked_id(text: str) -> str:
    """An id given by the user (``ingest --id``), stripped; EngineError when it is not one."""
    name = text.strip()
    if not ID_RE.fullmatch(name):
        raise EngineError(f"--id {text!r} is not a dataset id",
                          fix="use letters, digits, '_', '-' and '.', with at most one '/' (e.g. my-org/reviews)")
    return name


def source_text(root: Path) -> str:
    """Where a dataset came from, as the workspace stores it (a file name that is not UTF-8 keeps U+FFFD)."""
    return storable(str(root))[0]


def same_source(stored: str, root: Path) -> bool:
    """True when the stored ``source_path`` is ``root`` (so the stored dataset is this one, perhaps
    interrupted: the ingest resumes it)."""
    if stored == source_text(root):
        return True
    try:
        return Path(stored).resolve() == root.resolve()
    except (OSError, RuntimeError):  # a symlink loop on the way
        return False


def collision(name: str, stored: str, root: Path) -> str:
    """The skipped reason of a source whose id ``name`` a dataset from ``stored`` already has."""
    return (f"dataset id {name} is already in the workspace, from {stored}; this different source was not read "
            f"— ingest it under another id: rebase-tui ingest {root} --id NEW_ID (or first "
            f"`rebase-tui remove {name}`)")


def repeated(name: str, first: str, root: Path) -> str:
    """The skipped reason of a second source with the id ``name`` in one ingest (the first, ``first``, wins)."""
    return (f"dataset id {name} also found at {first}; only the first is ingested — ingest this one "
            f"under another id: rebase-tui ingest {root} --id NEW_ID")
