"""The Train screen's evaluation (ctrl+r, or v / V on the runs table): the open run on its validation split, or
on a test file the user picks — the only choice for a run trained without a hold-out (the paper's recipe trains
on every example). The engine's warnings (a student that runs its own code) go to the run's log; progress and
then the metrics and sample predictions to the results pane."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from engine.events import Log, Progress
from rebase_tui.jobs import run_events

if TYPE_CHECKING:
    from rebase_tui.messages import EngineEvent, JobFinished
    from rebase_tui.screens.train import TrainScreen

    _Base = TrainScreen
else:
    _Base = object


class TrainEval(_Base):
    """Evaluation actions of :class:`~rebase_tui.screens.train.TrainScreen`."""

    last_test_file: str = ""
    """The test file evaluated last (the dialog offers it again)."""

    def action_evaluate(self) -> None:
        """Evaluate the open run on its validation split; a run without one asks for a test file."""
        if self.run_path is None or self.following:
            return
        from engine.student.evaluate import has_validation_split

        if has_validation_split(self.run_path):
            self._evaluate(self.run_path, None)
        else:
            self.action_evaluate_file(f"run {self.run_path.name} was trained without a validation hold-out: "
                                      "evaluate it on a test file (BIG-Bench-Hard JSON, JSONL of input/output, "
                                      "SQuAD, MCoNaLa)")

    def action_evaluate_file(self, why: str = "") -> None:
        """Evaluate the open run on a test file (a dialog asks for its path, with completion)."""
        if self.run_path is None or self.following:
            self.notify("open a finished run first (enter on a run)", severity="warning")
            return
        from rebase_tui.widgets.dialogs import PathDialog

        path = self.run_path

        def chosen(value: str | None) -> None:
            if value:
                self.last_test_file = value
                self._evaluate(path, Path(value).expanduser())

        self.app.push_screen(PathDialog(why or f"Evaluate run {path.name} on a test file", self.last_test_file,
                                        ok="Evaluate"), chosen)

    def _evaluate(self, path: Path, data: Path | None) -> None:
        from engine.student.evaluate import evaluate

        on = data.name if data is not None else "its validation split"
        self.panels.log.add(f"evaluating run {path.name} on {on}…")
        run_events(self, "eval", lambda: evaluate(path, data), description=f"evaluate {path.name}")

    def eval_event(self, message: EngineEvent) -> None:
        """An event of the evaluation: progress in the results pane, warnings and notes in the run's log."""
        event = message.event
        if isinstance(event, Progress):
            self.panels.show_eval_progress(event)
        elif isinstance(event, Log):
            self.panels.log.add(f"{event.level.lower()}: {event.message}" if event.level != "INFO" else event.message)

    def eval_finished(self, message: JobFinished) -> None:
        """The evaluation ended: its metrics (or why it failed) in the results pane and the log."""
        if message.ok:
            self.panels.log.add("evaluation finished")
            self.panels.show_results()
        else:
            self.panels.log.add(f"evaluation failed: {message.error}")
            self.panels.show_results(f"evaluation failed: {message.error}")
