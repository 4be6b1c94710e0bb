"""The Data screen's ingest form: the path (with completion) and the id to store its one dataset under, then
the options of `rebase-tui ingest` (max rows per config, split, batch size).

:meth:`IngestForm.options` reads the fields back as :class:`IngestOptions`, or raises ``EngineError`` naming
every field that is wrong, so the screen starts nothing until the form is right. The id field is
``ingest --id NAME``: the one dataset a path holds is stored under that id, the way to ingest a source whose
own id is already taken; :meth:`IngestForm.offer` puts such a source back in the form for another id.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label

from engine.errors import EngineError
from rebase_tui.widgets.path_input import PathInput
from rebase_tui.widgets.results import parse_int


@dataclass(frozen=True)
class IngestOptions:
    """What to ingest, and how."""

    path: Path
    max_rows: int
    split: str
    batch: int | None
    dataset_id: str | None

    def describe(self) -> str:
        """``ingest PATH as ID (max 1000 rows per config, split train)``."""
        as_id = f" as {self.dataset_id}" if self.dataset_id else ""
        return f"ingest {self.path}{as_id} (max {self.max_rows} rows per config, split {self.split})"


class IngestForm(Vertical):
    """Path and id on one line, the ingest's options on the next."""

    DEFAULT_CSS = """
    IngestForm { height: auto; }
    IngestForm > Horizontal { height: 1; }
    IngestForm > #ingest-form { margin-top: 1; }
    IngestForm .control-label { width: auto; padding: 0 1; color: $foreground-muted; }
    IngestForm #ingest-path { width: 1fr; }
    IngestForm #ingest-id { width: 18; margin-right: 1; }
    IngestForm #ingest-max, IngestForm #ingest-batch { width: 9; }
    IngestForm #ingest-split { width: 12; }
    """

    def compose(self) -> ComposeResult:
        with Horizontal(id="ingest-form"):
            yield Label("Ingest path", classes="control-label")
            yield PathInput(id="ingest-path", compact=True)
            yield Label("as", classes="control-label")
            yield Input("", id="ingest-id", placeholder="its own id", compact=True, valid_empty=True,
                        tooltip="store the one dataset the path holds under this id (when its own is taken); "
                                "blank: its card's or folder's name")
        with Horizontal(id="ingest-options"):
            yield Label("Max rows per config", classes="control-label")
            yield Input("1000", id="ingest-max", type="integer", tooltip="0 = all rows", compact=True)
            yield Label("Split", classes="control-label")
            yield Input("train", id="ingest-split", compact=True)
            yield Label("Batch", classes="control-label")
            yield Input("", id="ingest-batch", type="integer", placeholder="auto", compact=True, valid_empty=True)

    def options(self) -> IngestOptions:
        """The fields as options; EngineError naming every field that is wrong."""
        from engine.datastore.ids import checked_id

        path_text = self.query_one("#ingest-path", PathInput).value.strip()
        max_rows = parse_int(self.query_one("#ingest-max", Input).value)
        split = self.query_one("#ingest-split", Input).value.strip()
        batch_text = self.query_one("#ingest-batch", Input).value.strip()
        batch = parse_int(batch_text) if batch_text else None
        id_text = self.query_one("#ingest-id", Input).value.strip()
        problems = []
        try:
            exists = bool(path_text) and Path(path_text).expanduser().exists()
        except OSError:  # a folder on the way that may not be searched: the ingest reports it as skipped
            exists = True
        if not path_text:
            problems.append("type a path to ingest (tab completes)")
        elif not exists:
            problems.append(f"{path_text} does not exist — check the path")
        dataset_id = None
        if id_text:
            try:
                dataset_id = checked_id(id_text)
            except EngineError as exc:
                problems.append(f"{exc.message.removeprefix('--')} — {exc.fix}, or leave the id blank")
        if max_rows is None or max_rows < 0:
            problems.append("max rows per config must be a whole number ≥ 0 (0 = all)")
        if not split:
            problems.append("split must not be empty (train, validation, test...)")
        if batch_text and (batch is None or batch < 1):
            problems.append("batch size must be empty (auto) or a whole number ≥ 1")
        if problems or max_rows is None:
            raise EngineError("; ".join(problems))
        return IngestOptions(Path(path_text).expanduser(), max_rows, split, batch, dataset_id)

    def offer(self, path: str) -> None:
        """Put ``path`` (a source passed over because its id is taken) in the path field, and the cursor in
        the id field."""
        self.query_one("#ingest-path", PathInput).value = path
        field = self.query_one("#ingest-id", Input)
        field.value = ""
        field.focus()

    def clear_id(self) -> None:
        """Empty the id field (an id names one dataset: the next path gets its own)."""
        self.query_one("#ingest-id", Input).value = ""
