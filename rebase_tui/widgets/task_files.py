"""The Task screen's file actions: import a task JSON file (ctrl+o) and export the draft to one (ctrl+t)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import EngineError
from engine.tasks import TaskError, add_task, get_task, read_task_file, validate, write_task_file
from rebase_tui.widgets.dialogs import ConfirmDialog, PathDialog

if TYPE_CHECKING:
    from rebase_tui.screens.task import TaskScreen

    _Base = TaskScreen
else:
    _Base = object


class TaskFileActions(_Base):
    """Import and export, for :class:`~rebase_tui.screens.task.TaskScreen`."""

    def action_import_task(self) -> None:
        """Import a task JSON file (stored at once; a task of the same name is replaced after asking)."""

        def chosen(path: str | None) -> None:
            if not path:
                return
            try:
                task = read_task_file(Path(path).expanduser())
            except EngineError as exc:
                self.notify(str(exc), severity="error", timeout=10)
                return

            def store(replace: bool | None = True) -> None:
                if not replace:
                    return
                add_task(self.rebase.workspace, task, replace=True)
                self.refresh_state()
                self._open(task.name)
                self.notify(f"imported task {task.name} from {path}")

            if get_task(self.rebase.workspace, task.name) is not None:
                self.app.push_screen(ConfirmDialog(f"A task named {task.name} exists. Replace it?",
                                                   yes="Replace"), store)
            else:
                store()

        self.app.push_screen(PathDialog("Import a task JSON file", ok="Import"), chosen)

    def action_export_task(self) -> None:
        """Write the draft to a task JSON file (it must be valid)."""
        try:
            task = validate(self.draft.to_spec())
        except TaskError as exc:
            self._show_errors = True
            self._show_problems()
            self.notify(f"cannot export: {len(exc.problems)} problem(s), shown next to the fields",
                        severity="error")
            return

        def write(path: str | None) -> None:
            if not path:
                return
            try:
                target = write_task_file(task, Path(path))
            except EngineError as exc:
                self.notify(str(exc), severity="error")
                return
            self.notify(f"exported task {task.name} to {target}")

        self.app.push_screen(PathDialog("Export the task to a JSON file", f"{task.name}.json", ok="Export"),
                             write)
