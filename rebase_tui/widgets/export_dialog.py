"""The export dialog: what to export (the accepted examples in one of the CLI's formats, or the open run's
model) and where; ``enter`` exports, ``escape`` cancels. It returns an :class:`ExportChoice`.

The engine refuses to replace an existing path unless forced. The app's own ``exports/`` folder is its
target to refresh, so an export there replaces the earlier one (exporting twice in a row just works); a path
elsewhere that exists is replaced only after the dialog said so and ``enter`` was pressed again."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Select, Static

from rebase_tui.widgets.dialogs import DIALOG_CSS
from rebase_tui.widgets.path_input import PathInput

#: The file name ending of each dataset format (``hf`` is a folder).
SUFFIXES = {"jsonl": ".jsonl", "csv": ".csv", "parquet": ".parquet", "hf": "", "chat": ".chat.jsonl",
            "alpaca": ".alpaca.json"}
#: What each choice writes, as the dialog says it.
DESCRIPTIONS = {
    "jsonl": "one JSON object per example, with provenance",
    "csv": "one row per example, with provenance",
    "parquet": "one row per example, with provenance",
    "hf": "a folder for datasets.load_dataset (Parquet + card)",
    "chat": "TRL conversational: {\"messages\": [system, user, assistant]}",
    "alpaca": "{\"instruction\", \"input\", \"output\"}",
    "model": "the open run's student: a Hugging Face folder + an Ollama Modelfile",
}


def export_dataset_job(ws: Any, task: str | None, choice: ExportChoice) -> Any:
    """Export ``task``'s accepted examples as ``choice`` says (runs in a thread; returns the engine's
    DatasetExport)."""
    from engine.errors import EngineError
    from engine.student.training_data import export_dataset
    from engine.tasks import resolve_task

    if not task:
        raise EngineError("no task with accepted examples", fix="pick a task (F8) and accept examples in Review (F6)")
    return export_dataset(ws, resolve_task(ws, task), choice.what, choice.path, force=choice.force)


def export_notice(result: Any) -> str:
    """What an export wrote, where (a DatasetExport or a ModelExport), in one line."""
    if hasattr(result, "rows"):
        return f"exported {result.rows:,} examples as {result.format} to {result.path}"
    return (f"exported the model ({result.kind}) to {result.path} (Modelfile {result.modelfile}); serve it with: "
            f"{result.ollama_create}")


@dataclass(frozen=True)
class ExportChoice:
    """What to export (``model`` or a dataset format), the path to write, and whether an existing export
    there may be replaced."""

    what: str
    path: Path
    force: bool = False


class ExportDialog(ModalScreen["ExportChoice | None"]):
    """Choose a format (or the model) and a path; the path follows the format until it is edited."""

    DEFAULT_CSS = DIALOG_CSS.replace("PathDialog", "ExportDialog") + """
    ExportDialog Select { width: 1fr; margin-bottom: 1; }
    ExportDialog #export-what-help { color: $foreground-muted; height: auto; margin-bottom: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="export.cancel", tooltip="close without exporting"),
    ]

    def __init__(self, formats: tuple[str, ...], folder: Path, task: str | None, run: str | None,
                 what: str = "jsonl") -> None:
        super().__init__()
        self.formats = formats
        self.folder = folder
        self.task_name = task
        self.run_name = run
        self.what = what if what in self._choices() else self._choices()[0]
        self._auto_path = str(self.default_path(self.what))
        """The path the dialog filled in: it follows the format until the user types another."""
        self._replace: Path | None = None
        """An existing path outside exports/ the dialog warned about: ``enter`` again replaces it."""

    def _choices(self) -> list[str]:
        return [*(self.formats if self.task_name else ()), *(("model",) if self.run_name else ())]

    def default_path(self, what: str) -> Path:
        """exports/<task><suffix> for a dataset, exports/<run> for the model."""
        if what == "model":
            return self.folder / str(self.run_name)
        return self.folder / f"{self.task_name}{SUFFIXES.get(what, '.' + what)}"

    def compose(self) -> ComposeResult:
        options = [(f"model of run {self.run_name}" if c == "model" else f"dataset · {c}", c)
                   for c in self._choices()]
        what = f" task {self.task_name}" if self.task_name else ""
        with Vertical():
            yield Label(Content(f"Export{what} — enter exports, escape cancels"))
            yield Select(options, value=self.what, allow_blank=False, id="export-what")
            yield Static(Content(DESCRIPTIONS.get(self.what, "")), id="export-what-help")
            yield PathInput(self._auto_path, id="export-path")
            yield Static("", classes="dialog-error", id="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Export", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        # enter exports at once with the format offered; shift+tab reaches the format
        path = self.query_one("#export-path", PathInput)
        path.focus()
        path.cursor_position = len(path.value)

    @on(Select.Changed, "#export-what")
    def _what_changed(self, event: Select.Changed) -> None:
        if not isinstance(event.value, str):
            return
        self.what = event.value
        self.query_one("#export-what-help", Static).update(Content(DESCRIPTIONS.get(self.what, "")))
        path = self.query_one("#export-path", PathInput)
        if path.value.strip() in ("", self._auto_path):
            self._auto_path = path.value = str(self.default_path(self.what))

    @on(PathInput.Submitted, "#export-path")
    def _submitted(self) -> None:
        self._accept()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._accept()
        else:
            self.dismiss(None)

    def _accept(self) -> None:
        text = self.query_one("#export-path", PathInput).value.strip()
        error = self.query_one("#dialog-error", Static)
        if not text:
            error.update(Content("type a path (tab completes)"))
            return
        path = Path(text).expanduser()
        exists = path.exists() and not (path.is_dir() and not any(path.iterdir()))
        own = path.resolve().parent == self.folder.resolve()
        if exists and not own and path != self._replace:
            self._replace = path
            error.update(Content(f"{path} already exists: enter again replaces it, or type another name"))
            return
        self.dismiss(ExportChoice(self.what, path, force=exists))

    def action_cancel(self) -> None:
        """Close without exporting."""
        self.dismiss(None)
