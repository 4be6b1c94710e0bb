"""The Train screen's exports (ctrl+t, or d / m on the runs table): the export dialog offers the accepted
examples in the CLI's six formats or the open run's model, then the export runs in a thread; the screen's
JobFinished handler says what was written where. An earlier export in the app's ``exports/`` folder is
replaced; one elsewhere only after the dialog asked."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rebase_tui.jobs import run_call
from rebase_tui.widgets.export_dialog import ExportChoice, export_dataset_job

if TYPE_CHECKING:
    from rebase_tui.screens.train import TrainScreen

    _Base = TrainScreen
else:
    _Base = object


class TrainExports(_Base):
    """Export actions of :class:`~rebase_tui.screens.train.TrainScreen`."""

    def action_export(self, what: str | None = None) -> None:
        """Choose what to export (the accepted examples in one of six formats, or the open run's model) and
        where, then export it in a thread; a notification gives the path written."""
        from engine.student.training_data import EXPORT_FORMATS
        from rebase_tui.widgets.export_dialog import ExportDialog

        task = self._train_task()
        run = self.run_path.name if self.run_path is not None and not self.following else None
        if not task and not run:
            self.notify("nothing to export yet: accept examples in Review (F6), or open a finished run",
                        severity="warning")
            return
        default = what or ("model" if run and not task else "jsonl")
        self.app.push_screen(ExportDialog(EXPORT_FORMATS, self.rebase.workspace.exports_dir, task, run, default),
                             self._export_chosen)

    def _export_chosen(self, choice: ExportChoice | None) -> None:
        if choice is None:
            return
        if choice.what == "model" and self.run_path is not None:
            from engine.student.export import export_model

            self.notify(f"exporting the model of run {self.run_path.name}…", timeout=3)
            run_call(self, "export-model", export_model, self.run_path, choice.path, force=choice.force)
        elif choice.what != "model":
            run_call(self, "export-dataset", export_dataset_job, self.rebase.workspace, self._train_task(), choice)

    def action_export_dataset(self) -> None:
        """Export the task's accepted examples (the dialog offers the six formats)."""
        self.action_export("jsonl")

    def action_export_model(self) -> None:
        """Export the open run's model (HF folder + Ollama Modelfile)."""
        if self.run_path is None or self.following:
            self.notify("open a finished run first (enter on a run)", severity="warning")
            return
        self.action_export("model")

