"""Transform stage: the teacher LLM (Ollama) rewrites retrieved rows into task examples.

The screen runs :func:`engine.teacher.transform.transform` (an async generator) in an async worker through
:func:`rebase_tui.jobs.run_async_events`, shows the text of the generations in flight as it streams, the
counts, tokens/s and ETA, and a log of failures with their raw replies. Pause and cancel both close the
generator (the engine keeps every finished call in its cache); resume starts it again, which skips the
cached calls, so nothing is asked twice. The teacher is checked (host answers, model installed) when the
screen opens, on ``c`` and before each start: a banner gives the problem and its fix, and the rest of the
app keeps working. Each start builds a fresh client, so Ollama coming back needs no restart.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Select, Static

from engine.errors import EngineError
from engine.events import Log, Progress
from engine.retrieval.pool import pool_sizes
from rebase_tui.jobs import describe_error, run_async_events
from rebase_tui.key_order import after_typing
from rebase_tui.messages import EngineEvent, JobFinished
from rebase_tui.screens.base import StageScreen
from rebase_tui.widgets.actions_palette import ScreenActions
from rebase_tui.widgets.log_tail import LogTail
from rebase_tui.widgets.stream_view import StreamView
from rebase_tui.widgets.text import plain
from rebase_tui.widgets.transform_form import TransformForm
from rebase_tui.widgets.transform_status import TransformStatus

if TYPE_CHECKING:
    from engine.teacher.client import TeacherSettings

class TransformScreen(StageScreen):
    """The teacher's settings, its progress on the task's pool, and its text as it streams."""

    STAGE = "transform"
    CSS_PATH = "transform.tcss"
    COMMANDS = {ScreenActions}
    AUTO_FOCUS = "#t-stream"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+j,ctrl+enter", "start", "Start", id="transform.start", priority=True,
                tooltip="transform the pool with the teacher (skips rows already done); resumes after a pause"),
        Binding("ctrl+z", "pause", "Pause", id="transform.pause", priority=True,
                tooltip="pause: no new request starts, those in flight finish and are kept; again resumes"),
        Binding("ctrl+g", "cancel", "Stop", id="transform.cancel", priority=True,
                tooltip="stop the run (finished rows are kept; starting again skips them)"),
        Binding("ctrl+r", "check", "Check", id="transform.check", priority=True,
                tooltip="check that the teacher's server answers and offers the model"),
    ]
    PANES = (("#transform-settings", "teacher settings"), ("#t-stream", "generations"), ("#t-log", "log"))
    """Stage-wide actions are ctrl-chords (they work whatever has focus, a text field included); alt+1…3
    jump to the panes."""

    def __init__(self) -> None:
        super().__init__()
        self.state = "idle"  # idle | running | pausing | paused
        self.task_name: str | None = None
        """The selected task (the app's), whose pool and examples the screen shows."""
        self.job_task: str | None = None
        """The task the running (or paused) transform works on."""
        self.in_flight = 0
        """Teacher calls of the run in flight now (the engine's InFlight)."""
        self.redoing = False
        """True while the run makes the pending examples made before the task's rules again."""
        self.models: list[str] = []
        self.teacher_problem: str = ""
        self.counts: dict[str, int] = {}
        """The selected task's examples by state, as stored."""
        self.total = 0
        self._job: Any = None
        self._gate: asyncio.Event | None = None
        self._counts_due = False
        self._last_run = ""

    # -- layout ----------------------------------------------------------------------------
    def compose_body(self) -> ComposeResult:
        with Vertical(id="transform-pane"):
            yield Static("", id="teacher-banner")
            yield TransformForm(id="transform-settings")
            yield TransformStatus(id="transform-status")
            with Horizontal(id="transform-live"):
                yield StreamView(keep=4, id="t-stream")
                yield LogTail("log · failures with raw replies", id="t-log")

    def on_mount(self) -> None:
        self.query_one("#t-stream", StreamView).border_title = "generations in flight"
        super().on_mount()
        self.action_check()

    def empty_message(self) -> str | None:
        if self.rebase.count("retrievals"):
            return None
        return ("No pool to transform yet.\n\nThe teacher, a local model served by Ollama or an "
                "OpenAI-compatible server (vLLM, llama.cpp), rewrites each retrieved row into an example in the "
                "task's format. Retrieve rows for a task first (F4).")

    def refresh_state(self) -> None:
        super().refresh_state()
        empty = self.empty_message() is not None
        self.query_one("#transform-pane").display = not empty
        if empty:
            return
        pools = pool_sizes(self.rebase.workspace)
        # the selected task, pool or not (a task without one says so); with none selected, the first pool's
        self.task_name = self.rebase.task_name or next(iter(pools), None)
        self.total = pools.get(self.task_name or "", 0)
        self._refresh_counts()
        if not self._mine():
            self.query_one(TransformStatus).show_idle(self.total, sum(self.counts.values()), self._last_run)
        self._paint_state()

    def _mine(self) -> bool:
        """True while a run of the selected task is going on (its progress is this task's)."""
        return self.state != "idle" and self.job_task == self.task_name

    def _refresh_counts(self) -> None:
        """Read the selected task's examples by state again (the one source of the counts)."""
        from engine.review import counts

        self._counts_due = False
        self.counts = counts(self.rebase.workspace, self.task_name) if self.task_name else {}
        self.query_one(TransformStatus).show_counts(self.counts)

    # -- the form ----------------------------------------------------------------------------
    def on_transform_form_teacher_changed(self) -> None:
        """The server, host or model changed (typed, picked, or in config.toml): check the teacher again."""
        self.action_check()

    @on(Select.Changed, "#t-model")
    def _model_chosen(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            if event.value in self.models and self.teacher_problem.startswith("model "):
                self._set_problem("")  # the problem was the model, and this one is installed

    # -- teacher check -----------------------------------------------------------------------
    def settings(self) -> TeacherSettings:
        """The teacher settings from config, overridden by the form (EngineError when a value is bad)."""
        return self.query_one(TransformForm).teacher_settings(self.rebase.workspace.config)

    def action_check(self) -> None:
        """Ask the teacher's server for its models (in an async worker); the banner shows any problem."""
        self.run_worker(self._check, name="teacher-check", group="teacher-check", exclusive=True,
                        exit_on_error=False, description="check the teacher")

    async def _check(self) -> None:
        from engine.teacher.client import open_backend

        backend = None
        try:
            settings = self.settings()
            backend = open_backend(settings)
            models = await backend.list_models()
        except EngineError as exc:
            self._set_problem(str(exc))
            return
        except Exception as exc:  # never let a teacher problem take the app down
            self._set_problem(describe_error(exc))
            return
        finally:
            if backend is not None:
                await backend.close()
        self.models = [m.name for m in models]
        select = self.query_one("#t-model", Select)
        configured = self.rebase.workspace.config["teacher.model"]
        current = select.value if isinstance(select.value, str) else configured
        select.set_options([(m, m) for m in self.models])
        match = backend.match(self.models, current)
        if match is not None:
            with select.prevent(Select.Changed):
                select.value = match
            self._set_problem("")
        else:
            self._set_problem(f"{backend.missing_model(current, self.models)}, or pick one in the model field")

    def _set_problem(self, problem: str) -> None:
        self.teacher_problem = problem
        banner = self.query_one("#teacher-banner", Static)
        banner.display = bool(problem)
        banner.update(plain(f"⚠ {problem}   (ctrl+r: check again)" if problem else "", 2000))

    @on(Input.Submitted)
    def _field_done(self, event: Input.Submitted) -> None:
        self.query_one("#t-stream").focus()  # the form saved the value

    # -- running -------------------------------------------------------------------------------
    # idle → running (ctrl+j) → pausing (ctrl+z: no new request starts; those in flight finish and are
    # stored) → paused (nothing in flight) → running (ctrl+z or ctrl+j); ctrl+g stops from any of them.
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "start":
            return self.state in {"idle", "pausing", "paused"} or None
        if action in {"pause", "cancel"}:
            return self.state != "idle" or None
        return True

    @after_typing
    def action_start(self) -> None:
        """Start transforming the task's pool (rows already done are skipped: they are cached); after a
        pause, resume."""
        if self.state in {"pausing", "paused"}:
            self._resume()
            return
        self.start()

    def start(self, redo_pending: bool = False) -> None:
        """Start a run on the selected task's pool with the form's settings; with ``redo_pending``, only the
        pending examples made before the task's accepted rules are made again, with them (all of them: the
        rows field does not apply)."""
        if self.state != "idle" or not self.task_name:
            if self.state != "idle":
                self.notify(f"a transform of task {self.job_task} is {self.state}: stop it first (ctrl+g)",
                            severity="warning")
            return
        if not self.total:
            self.notify(f"task {self.task_name} has no pool yet: rank rows for it on the Retrieve stage (F4, "
                        "ctrl+j stores them)", severity="warning")
            return
        form = self.query_one(TransformForm)
        try:
            settings = self.settings()
            limit = None if redo_pending else form.limit()
            samples = form.samples()
        except EngineError as exc:
            self.notify(str(exc), severity="error")
            return
        cot = form.cot()
        from engine.teacher.transform import transform

        task, ws = self.task_name, self.rebase.workspace
        self.query_one("#t-stream", StreamView).clear()
        gate = self._gate = asyncio.Event()
        gate.set()
        self.job_task, self.in_flight, self.redoing = task, 0, redo_pending
        self._set_state("running")
        what = "redo the pending examples of" if redo_pending else "transform"
        self._job = run_async_events(self, "transform", lambda: transform(
            ws, task, settings, limit=limit, cot=cot, samples=samples, redo_pending=redo_pending, gate=gate),
            description=f"{what} {task}")

    def action_pause(self) -> None:
        """Pause (no new request starts; the requests in flight finish and are kept) or resume."""
        if self.state == "running" and self._gate is not None:
            self._gate.clear()
            self._set_state("pausing" if self.in_flight else "paused")
        elif self.state in {"pausing", "paused"}:
            self._resume()

    def _resume(self) -> None:
        if self._gate is not None:
            self._gate.set()
        self._set_state("running")

    def action_cancel(self) -> None:
        """Stop the run after a confirmation; finished rows stay stored."""
        if self.state == "idle":
            return
        from rebase_tui.widgets.dialogs import ConfirmDialog

        def confirmed(ok: bool | None) -> None:
            if ok and self._job is not None:
                self._job.cancel()  # the JobFinished that follows puts the screen back to idle

        self.app.push_screen(ConfirmDialog(f"Stop transforming task {self.job_task}? Rows already done are "
                                           "kept; starting again skips them.", yes="Stop"), confirmed)

    def _set_state(self, state: str) -> None:
        self.state = state
        self.refresh_bindings()
        self._paint_state()

    def _paint_state(self) -> None:
        n = self.in_flight
        label = {"idle": "idle — ctrl+j starts",
                 "running": f"running, {n} in flight — ctrl+z pauses, ctrl+g stops",
                 "pausing": f"pausing: no new request starts; {n} in flight finishing — ctrl+z resumes",
                 "paused": "paused: nothing in flight — ctrl+z resumes, ctrl+g stops"}[self.state]
        if self.state == "running" and self.redoing:
            label = f"making the pending examples again with the rules, {n} in flight — ctrl+z pauses, ctrl+g stops"
        if self.state != "idle" and self.job_task != self.task_name:
            label = f"idle — a transform of task {self.job_task} is {self.state} (F8 switches to it)"
        total = sum(self.counts.values())
        task = (f"task {self.task_name} · pool {self.total:,} rows · {total:,} example{'' if total == 1 else 's'} · "
                if self.task_name else "")
        if self.task_name and not self.total and self.state == "idle":
            label = "no pool yet — rank rows for it on the Retrieve stage (F4)"
        self.query_one(TransformStatus).show_state(task + label)

    @on(EngineEvent)
    def _engine_event(self, message: EngineEvent) -> None:
        if message.job != "transform":
            return
        from engine.teacher.transform import ExampleDone, ExampleText, InFlight, TransformFinished

        event = message.event
        stream = self.query_one("#t-stream", StreamView)
        log = self.query_one("#t-log", LogTail)
        match event:
            case ExampleText(row=row, rank=rank, text=text):
                stream.update_text(row, f"#{rank} · row {row}", text)
            case ExampleDone():
                note = event.status + (f": {event.reason}" if event.reason else "")
                final = f"{event.input}\n→ {event.output}" if event.output else ""
                stream.finish(event.row, note, failed=event.status == "failed", final=final)
                if event.status == "failed":
                    raw = self._raw_reply(event.example_id)
                    log.add(f"✗ #{event.rank} row {event.row}: {event.reason or 'failed'}"
                            + (f"\n  raw: {raw}" if raw else ""))
                if not self._counts_due:  # at most a few reads a second, however fast examples arrive
                    self._counts_due = True
                    self.set_timer(0.25, self._counts_changed)
            case InFlight(calls=calls):
                self.in_flight = calls
                if self.state == "pausing" and calls == 0:
                    self._set_state("paused")
                else:
                    self._paint_state()
            case Progress():
                if self._mine():
                    self.query_one(TransformStatus).show_progress(event, running=self.state == "running")
            case Log(message=text, level=level):
                if self.teacher_problem:
                    self._set_problem("")  # the teacher answered
                log.add(("" if level == "INFO" else f"{level}: ") + text)
            case TransformFinished():
                what = "last redo of the pending examples" if self.redoing else "last run"
                self._last_run = (f"{what} of {self.job_task}: {event.done} new, {event.failed} failed, "
                                  f"{event.duplicates} duplicates, {event.cached} already done, {event.seconds:.1f} s")
                log.add(self._last_run)
                if not event.complete:
                    skipped = f"; {event.skipped} row(s) not tried" if event.skipped else ""
                    log.add(f"ERROR: {event.faults()}{skipped} — start again to retry them")
                    self.notify(f"{event.faults()}{skipped} — start again to retry them (finished rows are kept)",
                                severity="error", timeout=8)

    def _counts_changed(self) -> None:
        if self.is_attached and self.task_name == self.job_task:
            self._refresh_counts()
            self._paint_state()

    def _raw_reply(self, example_id: int | None) -> str:
        from engine.teacher.calls import raw_response

        if example_id is None:
            return ""
        return (raw_response(self.rebase.workspace, example_id) or "")[:500]

    @on(JobFinished)
    def _job_finished(self, message: JobFinished) -> None:
        if message.job != "transform":
            return
        task, self._job, self._gate, self.in_flight = self.job_task, None, None, 0
        self.job_task, self.redoing = None, False
        if message.outcome == "error":
            self._set_problem(message.error)
            self.query_one("#t-log", LogTail).add(f"ERROR: {message.error}")
            self._last_run = f"last run of {task} failed: {message.error}"
        elif message.outcome == "done":
            self._set_problem("")
            self.notify(f"transform of {task} finished — review the examples (F6)")
        else:
            self._last_run = f"last run of {task} stopped; finished rows are kept (ctrl+j goes on)"
        self._set_state("idle")
        if self.is_current or self.is_attached:
            self.refresh_state()
