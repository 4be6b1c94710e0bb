"""Train stage: fine-tune a student model on the accepted examples and watch it live.

Training runs in a subprocess (:mod:`engine.student.supervise` starts ``python -m engine.student.worker RUN_DIR``);
the screen follows it by tailing ``RUN_DIR/events.jsonl`` with :func:`engine.student.supervise.afollow` in an
async worker, so following a run the screen started, re-attaching after an app restart and opening a
finished run are one code path. Panels: train/eval loss (log-scale toggle), learning rate, tokens/s,
step/epoch, ETA, the worker's CPU and GPU memory, and the tail of its ``stderr.log``. Stop is graceful
(SIGINT: the worker checkpoints, then exits; SIGKILL only after a grace period). For a finished run:
its eval metrics and sample predictions, and eval / dataset export / model export (with the Ollama
Modelfile and the ``ollama create`` line). Beside the run's tab: "try" (the student, its base and the teacher on
any input), "rounds" (refining the open run: its mistakes steer the next retrieval) and "experiments" (each
experiment's results table, read from its files). The pieces live in widgets: following (``train_follow``), tabs and the try keys (``train_tabs``,
``try_pane``), evaluation (``train_eval``) and exports (``train_exports``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, Select, TabbedContent

from engine.errors import EngineError
from rebase_tui.jobs import run_call
from rebase_tui.key_order import after_typing
from rebase_tui.messages import EngineEvent, JobFinished
from rebase_tui.screens.base import StageScreen
from rebase_tui.widgets.actions_palette import ScreenActions
from rebase_tui.widgets.export_dialog import export_notice
from rebase_tui.widgets.rounds_pane import RefineTraining, RefineWaiting
from rebase_tui.widgets.run_panels import RunPanels
from rebase_tui.widgets.run_support import RunView
from rebase_tui.widgets.runs_table import RunsTable, read_runs
from rebase_tui.widgets.settings_form import SettingsFields
from rebase_tui.widgets.student_form import StudentForm
from rebase_tui.widgets.train_eval import TrainEval
from rebase_tui.widgets.train_exports import TrainExports
from rebase_tui.widgets.train_follow import TrainFollow
from rebase_tui.widgets.train_tabs import TrainRight, TrainTabs

if TYPE_CHECKING:
    from engine.student.launch import LaunchedRun
    from engine.student.summary import RunSummary

class TrainScreen(TrainTabs, TrainFollow, TrainEval, TrainExports, StageScreen):
    """A student form, the runs list, and tabs: live panels of the open run with its results, try, rounds
    and experiments."""

    STAGE = "train"
    CSS_PATH = "train.tcss"
    COMMANDS = {ScreenActions}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+j,ctrl+enter", "start", "Start", id="train.start", priority=True,
                tooltip="train the student on the task's accepted examples"),
        Binding("ctrl+g", "stop", "Stop", id="train.stop", priority=True,
                tooltip="stop the run gracefully (checkpoint first)"),
        Binding("ctrl+r", "evaluate", "Eval", id="train.eval", priority=True,
                tooltip="evaluate the open run on its validation split (a run without one: on a test file)"),
        Binding("ctrl+t", "export", "Export…", id="train.export", priority=True,
                tooltip="export the accepted examples (six formats) or the open run's model"),
        Binding("ctrl+l", "toggle_log", "Log scale", id="train.log_scale", priority=True,
                tooltip="loss chart: log/linear scale"),
        Binding("ctrl+f", "refine", "Refine", id="train.refine", priority=True,
                tooltip="refine the open run: its validation mistakes steer the next retrieval, then review, "
                        "then the next run trains"),
        # the try tab's keys (in the footer while that tab is shown; ctrl+j asks there instead of training)
        Binding("ctrl+j,ctrl+enter", "try_ask", "Ask", id="train.try.ask", priority=True,
                tooltip="ask the student, the base and the teacher about the input"),
        Binding("ctrl+n", "try_example", "Next example", id="train.try.example", priority=True,
                tooltip="put the next example of the run's validation split (or test file) into the input"),
        Binding("ctrl+o", "try_file", "Test file…", id="train.try.file", priority=True,
                tooltip="read examples from a test file"),
    ]
    PANES = (("#tr-form", "student form"), ("#tr-runs", "runs"), ("#tr-chart", "loss chart"),
             ("#tr-log", "worker log"), ("#tr-results", "results"), ("#try-input", "try"),
             ("#rounds-table", "rounds"), ("#tr-experiments", "experiments"))
    TAB_ACTIONS = {"try_ask": "tab-try", "try_example": "tab-try", "try_file": "tab-try"}
    """Actions of one tab: hidden from the footer, and inactive, while another tab is shown."""

    def __init__(self) -> None:
        super().__init__()
        self.run_path: Path | None = None
        """The run the panels show (followed live while its worker runs)."""

    @property
    def panels(self) -> RunPanels:
        return self.query_one("#tr-run", RunPanels)

    @property
    def view(self) -> RunView | None:
        """The open run as the panels show it."""
        return self.panels.view

    @property
    def status(self) -> str:
        """The open run's status (created, running, finished, stopped, failed; empty when none is open)."""
        return self.view.status if self.view is not None else ""

    # -- layout ----------------------------------------------------------------------------------
    AUTO_FOCUS = None  # the runs table takes the focus once it is built (see _build)

    def compose_body(self) -> ComposeResult:
        # The form and the panels (some sixty widgets) are mounted after the first paint: the stage shows at
        # once, with a loading indicator, instead of after the second or two that mounting them takes.
        yield Horizontal(id="train-main")

    def on_mount(self) -> None:
        self.query_one("#train-main").loading = True
        self.call_after_refresh(self._build)

    async def _build(self) -> None:
        from rebase_tui.widgets.student_form import SETTING_KEYS

        main = self.query_one("#train-main")
        self.shown_loading = main.loading and self.is_current  # the frame was painted before the build
        await main.mount_all([Vertical(StudentForm(id="tr-form"), RunsTable(id="tr-runs"), id="train-left"),
                              TrainRight(id="train-right")])
        main.loading = False
        self.built = True

        self.form_settings = SettingsFields(self, {f"#tr-{fid}": key for fid, key in SETTING_KEYS.items()})
        self.query_one("#tr-form", StudentForm).fill(self.rebase.workspace.config)
        self._show_env_note(self.rebase.workspace.config)
        self.rebase.config_signal.subscribe(self, self._config_changed)
        table = self.query_one("#tr-runs", RunsTable)
        table.border_title = "runs (enter opens)"
        table.loading = True  # until the first listing arrives (gathered off the UI thread)
        super().on_mount()
        self._paint_stats()
        self.every(1.0, self._poll_files, name="train-poll")
        self.every(2.0, self._poll_runs, name="runs-poll")
        self.query_one("#tr-runs").focus()  # the runs: their letters act at once, the form is alt+1 away

    def empty_message(self) -> str | None:
        from engine.student.runs import run_dirs

        # a run made by the CLI may have a directory before the table knows it
        if self.rebase.count("runs") or run_dirs(self.rebase.workspace) or self._has_accepted():
            return None
        return ("No training runs yet.\n\nA student model (any Hugging Face causal LM on disk) is fine-tuned "
                "on the accepted examples, with LoRA or in full, then evaluated and exported. Accept examples "
                "in Review (F6) first; then the form here starts a run (ctrl+j).")

    def _has_accepted(self) -> bool:
        from engine.student.training_data import accepted_tasks

        return bool(accepted_tasks(self.rebase.workspace))

    built = False
    """True once the form and the panels are mounted (see compose_body)."""
    shown_loading = False
    """True when the screen was painted, with its loading indicator, before the form and panels were built."""

    def refresh_state(self) -> None:
        if not self.built:
            return
        super().refresh_state()
        self.query_one("#train-main").display = self.empty_message() is None
        if self.is_mounted and not self.following:
            self.action_refresh_runs()

    # -- the student form: choices are saved as the workspace's settings -------------------------
    @on(Input.Blurred, "#tr-form Input")
    @on(Input.Submitted, "#tr-form Input")
    def _student_field_done(self, event: Input.Blurred | Input.Submitted) -> None:
        if event.input.id:
            self.form_settings.save(f"#{event.input.id}")

    def _config_changed(self, config: object) -> None:
        """Settings changed elsewhere (another form, `rebase-tui config`): show them unless a field is being
        edited."""
        form = self.query_one("#tr-form", StudentForm)
        if not any(w.has_focus for w in form.query("Input, Select")):
            form.fill(config)
        self._show_env_note(config)

    def _show_env_note(self, config: Any) -> None:
        """The form's bottom border names an environment variable that decides a field (REBASE_STUDENT)."""
        self.query_one("#tr-form").border_subtitle = self.form_settings.env_note(config)

    @on(Select.Changed, "#tr-method")
    def _method_chosen(self, event: Select.Changed) -> None:
        if isinstance(event.value, str) and event.value != "auto" \
                and event.value != self.rebase.workspace.config["student.method"]:
            self.rebase.choose("student.method", event.value)

    # -- runs list -------------------------------------------------------------------------------
    def action_refresh_runs(self) -> None:
        """Re-read the runs (their directories are the truth) in a thread."""
        from engine.student import runs

        run_call(self, "runs-list", runs.reconcile, self.rebase.workspace)

    def _poll_runs(self) -> None:
        """Every few seconds while the screen is in view: the runs as their directories say (read only; a
        run started by the CLI appears, a running one's step and status move)."""
        if self.is_current and not any(w.group == "runs-list" and not w.is_finished for w in self.workers):
            run_call(self, "runs-list", read_runs, self.rebase.workspace)

    def _fill_runs(self, summaries: list[RunSummary]) -> None:
        table = self.query_one("#tr-runs", RunsTable)
        table.loading = False
        table.fill(summaries)
        if self.focused is None and self.is_current:  # a loading table cannot hold focus: give it back
            table.focus()
        from engine.student import supervise

        if not self.following:
            for s in summaries:
                path = self.rebase.workspace.runs_dir / s.run
                if not s.ended and supervise.worker_alive(path):
                    self.notify(f"re-attached to running run {s.run}", timeout=4)
                    self.attach(path)
                    break

    @on(DataTable.RowSelected, "#tr-runs")
    def _open_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self.open_run(self.rebase.workspace.runs_dir / str(event.row_key.value))

    @on(TabbedContent.TabActivated, "#train-tabs")
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.tab_shown(event)

    @on(RefineWaiting)
    def _refine_waiting(self, message: RefineWaiting) -> None:
        self.refine_waiting(message.task, message.number, message.pending)

    @on(RefineTraining)
    def _refine_training(self, message: RefineTraining) -> None:
        self.refine_training(message.run)

    @on(EngineEvent)
    def _engine_event(self, message: EngineEvent) -> None:
        if message.job == "train-follow":
            self.follow_event(message)
        elif message.job == "eval":
            self.eval_event(message)

    # -- actions ----------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.TAB_ACTIONS:
            return self.built and self.tab == self.TAB_ACTIONS[action]
        if not self.built and action not in ("pane",):
            return None  # still mounting the form and the panels
        if action == "start" and self.tab == "tab-try":
            return False  # ctrl+j asks the try pane instead
        if action == "start":
            return (not self.following) or None
        if action == "stop":
            return self.following or (None if self.tab == "tab-run" else False)
        if action == "toggle_log":
            return self.tab == "tab-run"  # the chart is in the run tab
        if action == "refine":
            if self.tab in ("tab-try", "tab-experiments"):
                return False
            return (self.run_path is not None and not self.following and not self.rounds_pane.running) or None
        if action in ("evaluate", "evaluate_file", "export_model"):
            return (self.run_path is not None and not self.following) or None
        return True

    @after_typing
    def action_start(self) -> None:
        """Freeze the accepted examples into a new run and start its worker (in a thread: it imports
        transformers to check the student)."""
        if self.following:
            return
        try:
            form = self.query_one("#tr-form", StudentForm).values()
        except EngineError as exc:
            self.notify(str(exc), severity="error")
            return
        task = self._train_task()
        if task is None:
            self.notify("no task to train on — pick one on the Task screen (F3) and accept examples in Review (F6)",
                        severity="error")
            return
        from engine.student.launch import start_training

        self.panels.log.add(f"starting a run on {task}'s accepted examples…")
        run_call(self, "train-start", start_training, self.rebase.workspace, task=task, **form)

    def _train_task(self) -> str | None:
        """The open task, else the one accepted into most recently."""
        if self.rebase.task_name:
            return self.rebase.task_name
        from engine.student.training_data import accepted_tasks

        return next(iter(accepted_tasks(self.rebase.workspace)), None)

    def action_stop(self) -> None:
        """Stop the followed run gracefully (after a confirmation)."""
        if not self.following or self.run_path is None:
            return
        from rebase_tui.widgets.dialogs import ConfirmDialog

        path = self.run_path

        def confirmed(ok: bool | None) -> None:
            if ok:
                from engine.student import supervise

                self.panels.log.add("stopping: the worker saves a checkpoint, then exits…")
                run_call(self, "train-stop", supervise.stop, path, 60.0)

        self.app.push_screen(ConfirmDialog(f"Stop run {path.name}? It saves a checkpoint first; "
                                           "`rebase-tui train --resume` continues it.", yes="Stop"), confirmed)

    def action_toggle_log(self) -> None:
        """Loss chart: switch between linear and log scale."""
        self.panels.chart.toggle_log()

    # -- results ----------------------------------------------------------------------------------
    @on(JobFinished)
    def _job_finished(self, message: JobFinished) -> None:
        log = self.panels.log
        match message.job:
            case "runs-list":
                if message.ok:
                    self._fill_runs(message.result or [])
            case "train-start":
                if message.ok:
                    started: LaunchedRun = message.result
                    self.attach(started.path, started.offset)  # (a new run: the panels start empty)
                    self.panels.log.add(f"run {started.run} started")
                    if started.notice:
                        self.panels.log.add(started.notice)
                    self.action_refresh_runs()
                else:
                    log.add(f"could not start: {message.error}")
                    self.notify(message.error, severity="error", timeout=10)
            case "train-follow":  # the run ended (or the follower was cancelled)
                self.follow_ended()
            case "train-stop":
                log.add(f"stop: {message.result if message.ok else message.error}")
            case "gpu-memory":
                if message.ok:
                    self._gpu = message.result
            case "eval":
                self.eval_finished(message)
            case "export-dataset" | "export-model":
                if message.ok:
                    self.notify(export_notice(message.result), timeout=15)
                    log.add(export_notice(message.result))
                else:
                    self.notify(f"{message.job.replace('-', ' ')} failed: {message.error}", severity="error",
                                timeout=15)
