"""An experiment's memory between runs: ``experiments/<name>/state.json``, what each stage finished.

Each entry is keyed by stage, task and method (``train/boolean_expressions/rebase``) and carries the
fingerprint of everything that shaped it (the task, the teacher, the student's settings, the test file...). An
entry is used only while its fingerprint matches, so an edited spec redoes exactly the stages it changed, and a
killed run redoes nothing that finished: the state is written (atomically) as soon as a stage ends, and a
training run's id as soon as it starts. Teacher calls need no entry: the call cache already never repeats one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from engine.student.outputs import atomic_file

STATE_FILE = "state.json"


def fingerprint(*parts: Any) -> str:
    """A short hash of JSON-able parts (key order does not matter)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def file_digest(path: Path) -> str:
    """The hash of a file's bytes (a test file edited in place changes the evaluations that read it)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


class State:
    """The stage entries of one experiment folder; :meth:`put` writes the file at once."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / STATE_FILE
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        self.entries: dict[str, dict[str, Any]] = data.get("stages", {}) if isinstance(data, dict) else {}

    def get(self, key: str, fp: str) -> dict[str, Any] | None:
        """The entry of ``key`` when it was made with fingerprint ``fp``, else None."""
        entry = self.entries.get(key)
        return entry if isinstance(entry, dict) and entry.get("fp") == fp else None

    def put(self, key: str, fp: str, **values: Any) -> dict[str, Any]:
        """Record ``key``'s entry (replacing an older one) and write the file."""
        entry = {"fp": fp, **values}
        self.entries[key] = entry
        self._write()
        return entry

    def _write(self) -> None:
        with atomic_file(self.path) as tmp:
            tmp.write_text(json.dumps({"stages": self.entries}, indent=1, ensure_ascii=False), encoding="utf-8")
