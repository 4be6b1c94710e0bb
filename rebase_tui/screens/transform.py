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

from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Input, Label, ProgressBar, Select, Static

from engine.errors import EngineError
from engine.events import Log, Progress
from engine.rate import format_seconds
from engine.retrieval.pool import pool_sizes
from rebase_tui.jobs import describe_error, run_async_events
from rebase_tui.messages import EngineEvent, JobFinished
from rebase_tui.screens.base import StageScreen
from rebase_tui.widgets.actions_palette import ScreenActions
from rebase_tui.widgets.log_tail import LogTail
from rebase_tui.widgets.stat_panel import StatPanel
from rebase_tui.widgets.stream_view import StreamView

if TYPE_CHECKING:
    from engine.config import Config
    from engine.teacher.client import TeacherSettings

COT_MODES = ("auto", "on", "off")
#: Form fields that are workspace settings: a value chosen here is saved in config.toml.
FORM_SETTINGS = {"#t-host": "teacher.host", "#t-model": "teacher.model", "#t-temperature": "teacher.temperature",
                 "#t-concurrency": "teacher.concurrency"}


class TransformScreen(StageScreen):
    """The teacher's settings, its progress on the task's pool, and its text as it streams."""

    STAGE = "transform"
    CSS_PATH = "transform.tcss"
    COMMANDS = {ScreenActions}
    AUTO_FOCUS = "#t-stream"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+j,ctrl+enter", "start", "Start", id="transform.start", priority=True,
                tooltip="transform the pool with the teacher (skips rows already done); resumes after a pause"),
        Binding("ctrl+z", "pause", "Pause/resume", id="transform.pause", priority=True,
                tooltip="pause: no new request starts, those in flight finish and are kept; again resumes"),
        Binding("ctrl+g", "cancel", "Stop", id="transform.cancel", priority=True,
                tooltip="stop the run (finished rows are kept; starting again skips them)"),
        Binding("ctrl+r", "check", "Check teacher", id="transform.check", priority=True,
                tooltip="check that Ollama answers and the model is installed"),
    ]
    PANES = (("#transform-settings", "teacher settings"), ("#t-stream", "generations"), ("#t-log", "log"))
    """Stage-wide actions are ctrl-chords (they work whatever has focus, a text field included); alt+1…3
    jump to the panes."""

    def __init__(self) -> None:
        super().__init__()
        self.state = "idle"  # idle | running | paused
        self.task_name: str | None = None
        self.models: list[str] = []
        self.teacher_problem: str = ""
        self.counts: dict[str, int] = {}
        self.total = 0
        self._job: Any = None

    # -- layout ----------------------------------------------------------------------------
    def compose_body(self) -> ComposeResult:
        with Vertical(id="transform-pane"):
            yield Static("", id="teacher-banner")
            with Horizontal(id="transform-labels"):
                for wid, label in (("host", "host"), ("model", "model"), ("temperature", "temperature"),
                                   ("cot", "chain of thought"), ("concurrency", "concurrency"),
                                   ("limit", "rows")):
                    yield Label(label, id=f"t-label-{wid}")
            with Horizontal(id="transform-settings"):
                yield Input(id="t-host", compact=True)
                yield Select([], id="t-model", prompt="model", compact=True)
                yield Input(id="t-temperature", compact=True, type="number")
                yield Select([(m, m) for m in COT_MODES], id="t-cot", value="auto", allow_blank=False,
                             compact=True)
                yield Input(id="t-concurrency", compact=True, type="integer")
                yield Input(id="t-limit", compact=True, type="integer", placeholder="all")
            yield Static("", id="t-env-note")
            with Horizontal(id="transform-status"):
                with Vertical(id="transform-progress"):
                    yield Static("", id="t-state")
                    yield ProgressBar(id="t-progress", show_eta=False)
                    yield Static("", id="t-message")
                yield StatPanel("counts", id="t-stats")
            with Horizontal(id="transform-live"):
                yield StreamView(keep=4, id="t-stream")
                yield LogTail("log · failures with raw replies", id="t-log")

    def on_mount(self) -> None:
        self._show_settings(self.rebase.workspace.config)
        self.rebase.config_signal.subscribe(self, self._config_changed)
        for wid, label in (("#t-host", "host"), ("#t-model", "model"), ("#t-temperature", "temperature"),
                           ("#t-cot", "chain of thought"), ("#t-concurrency", "concurrency"),
                           ("#t-limit", "rows (blank: all)")):
            self.query_one(wid).tooltip = label
        self.query_one("#t-stream", StreamView).border_title = "generations in flight"
        super().on_mount()
        self._paint_stats()
        self.action_check()

    def empty_message(self) -> str | None:
        if self.rebase.count("retrievals"):
            return None
        return ("No pool to transform yet.\n\nThe teacher, a local model served by Ollama, rewrites each "
                "retrieved row into an example in the task's format. Retrieve rows for a task first (F4).")

    def refresh_state(self) -> None:
        super().refresh_state()
        empty = self.empty_message() is not None
        self.query_one("#transform-pane").display = not empty
        if empty:
            return
        pools = pool_sizes(self.rebase.workspace)
        wanted = self.rebase.task_name
        self.task_name = wanted if wanted in pools else (next(iter(pools)) if pools else None)
        if self.state == "idle":
            self.total = pools.get(self.task_name or "", 0)
            bar = self.query_one("#t-progress", ProgressBar)
            if bar.total is None:  # an empty, determinate bar until the first run (no animation)
                bar.update(total=max(self.total, 1), progress=0)
        self._paint_state()

    # -- the form: the workspace's settings, and choices saved there -------------------------
    def _show_settings(self, cfg: Config) -> None:
        """Put the teacher settings into the form (fields being edited keep what is typed)."""
        for wid, key in FORM_SETTINGS.items():
            if wid == "#t-model":
                continue
            field = self.query_one(wid, Input)
            if not field.has_focus and field.value != str(cfg[key]):
                field.value = str(cfg[key])
        self._show_env_note(cfg)

    def _show_env_note(self, cfg: Config) -> None:
        """Say where the environment decides a teacher setting instead of the form."""
        notes = []
        for key in FORM_SETTINGS.values():
            source = cfg.sources.get(key, "")
            name = key.split(".", 1)[1]
            if source.startswith("env:"):
                notes.append(f"{name} from ${source[4:]}")
            elif variable := self.rebase.workspace.overridden_by(key):
                notes.append(f"{name} chosen here; ${variable} wins again at the next start")
        note = self.query_one("#t-env-note", Static)
        note.display = bool(notes)
        note.update(Content("ⓘ " + " · ".join(notes) if notes else ""))

    def _config_changed(self, cfg: Config) -> None:
        host_before = self.query_one("#t-host", Input).value
        self._show_settings(cfg)
        select = self.query_one("#t-model", Select)
        if cfg["teacher.model"] != select.value and cfg["teacher.model"] in self.models:
            with select.prevent(Select.Changed):
                select.value = cfg["teacher.model"]
        if self.query_one("#t-host", Input).value != host_before or cfg["teacher.model"] != select.value:
            self.action_check()

    def _save_field(self, wid: str) -> None:
        """Save the form field ``wid`` as the workspace's setting (when it holds a valid value)."""
        key = FORM_SETTINGS.get(wid)
        if key is None:
            return
        text = self.query_one(wid, Input).value.strip()
        if not text or text == str(self.rebase.workspace.config[key]):
            return
        if self.rebase.choose(key, text):
            self._show_env_note(self.rebase.workspace.config)

    @on(Input.Blurred)
    def _field_left(self, event: Input.Blurred) -> None:
        if event.input.id is not None:
            self._save_field(f"#{event.input.id}")

    @on(Select.Changed, "#t-model")
    def _model_chosen(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            if event.value in self.models and self.teacher_problem.startswith("model "):
                self._set_problem("")  # the problem was the model, and this one is installed
            if event.value != self.rebase.workspace.config["teacher.model"]:
                self.rebase.choose("teacher.model", event.value)

    # -- teacher check -----------------------------------------------------------------------
    def settings(self) -> TeacherSettings:
        """The teacher settings from config, overridden by the form (EngineError when a value is bad)."""
        from engine.teacher.client import TeacherSettings

        def number(wid: str, kind: type) -> Any:
            text = self.query_one(wid, Input).value.strip()
            if not text:
                return None
            try:
                return kind(text)
            except ValueError:
                raise EngineError(f"{wid[3:]} {text!r} is not a number",
                                  fix="type a number or leave it blank") from None

        model = self.query_one("#t-model", Select).value
        return TeacherSettings.from_config(
            self.rebase.workspace.config,
            host=self.query_one("#t-host", Input).value.strip() or None,
            model=model if isinstance(model, str) else None,
            temperature=number("#t-temperature", float),
            concurrency=number("#t-concurrency", int),
        )

    def action_check(self) -> None:
        """Ask Ollama for its models (in an async worker); the banner shows any problem."""
        self.run_worker(self._check, name="teacher-check", group="teacher-check", exclusive=True,
                        exit_on_error=False, description="check the teacher")

    async def _check(self) -> None:
        from engine.teacher.client import list_models, make_client

        try:
            settings = self.settings()
            async with make_client(settings) as client:
                models = await list_models(client, settings.url)
        except EngineError as exc:
            self._set_problem(str(exc))
            return
        except Exception as exc:  # never let a teacher problem take the app down
            self._set_problem(describe_error(exc))
            return
        self.models = [m.name for m in models]
        select = self.query_one("#t-model", Select)
        configured = self.rebase.workspace.config["teacher.model"]
        current = select.value if isinstance(select.value, str) else configured
        select.set_options([(m, m) for m in self.models])
        from engine.teacher.client import match_model

        match = match_model(self.models, current)
        if match is not None:
            with select.prevent(Select.Changed):
                select.value = match
            self._set_problem("")
        else:
            names = ", ".join(self.models) or "none"
            self._set_problem(f"model {current} is not installed on {settings.url} — `ollama pull {current}` "
                              f"(installed: {names}), or pick an installed model")

    def _set_problem(self, problem: str) -> None:
        self.teacher_problem = problem
        banner = self.query_one("#teacher-banner", Static)
        banner.display = bool(problem)
        banner.update(Content(f"⚠ {problem}   (ctrl+r: check again)" if problem else ""))

    @on(Input.Submitted, "#t-host")
    def _host_changed(self) -> None:
        self._save_field("#t-host")
        self.query_one("#t-stream").focus()
        self.action_check()

    @on(Input.Submitted)
    def _field_done(self, event: Input.Submitted) -> None:
        if event.input.id is not None:
            self._save_field(f"#{event.input.id}")
        self.query_one("#t-stream").focus()

    # -- running -------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "start":
            return self.state == "idle" or None
        if action == "pause":
            return self.state in {"running", "paused"} or None
        if action == "cancel":
            return self.state in {"running", "paused"} or None
        return True

    def action_start(self) -> None:
        """Start transforming the task's pool (rows already done are skipped: they are cached)."""
        if self.state == "running" or not self.task_name:
            return
        try:
            settings = self.settings()
            limit = self.query_one("#t-limit", Input).value.strip()
            limit_n = int(limit) if limit else None
        except (EngineError, ValueError) as exc:
            self.notify(str(exc), severity="error")
            return
        cot = self.query_one("#t-cot", Select).value
        from engine.teacher.transform import transform

        task, ws = self.task_name, self.rebase.workspace
        if self.state == "idle":
            self.counts = {}
            self.query_one("#t-stream", StreamView).clear()
        self._set_state("running")
        self._job = run_async_events(self, "transform", lambda: transform(
            ws, task, settings, limit=limit_n, cot=str(cot)), description=f"transform {task}")

    def action_pause(self) -> None:
        """Pause (close the run; finished rows are kept) or resume (start again, skipping them)."""
        if self.state == "running":
            self._set_state("paused")
            if self._job is not None:
                self._job.cancel()
        elif self.state == "paused":
            self.action_start()

    def action_cancel(self) -> None:
        """Stop the run after a confirmation; finished rows stay stored."""
        if self.state not in {"running", "paused"}:
            return
        from rebase_tui.widgets.dialogs import ConfirmDialog

        def confirmed(ok: bool | None) -> None:
            if ok:
                if self._job is not None:
                    self._job.cancel()
                self._set_state("idle")

        self.app.push_screen(ConfirmDialog("Stop transforming? Rows already done are kept; starting again "
                                           "skips them.", yes="Stop"), confirmed)

    def _set_state(self, state: str) -> None:
        self.state = state
        self.refresh_bindings()
        self._paint_state()

    def _paint_state(self) -> None:
        label = {"idle": "idle — ctrl+j starts", "running": "running — ctrl+z pauses, ctrl+g stops",
                 "paused": "paused — ctrl+z resumes, ctrl+g stops"}[self.state]
        task = f"task {self.task_name} · pool {self.total:,} rows · " if self.task_name else ""
        self.query_one("#t-state", Static).update(Content(task + label))

    def _paint_stats(self) -> None:
        c = self.counts
        finished = sum(c.values())
        self.query_one("#t-stats", StatPanel).set([
            ("done", c.get("pending", 0) + c.get("accepted", 0)),
            ("failed", c.get("failed", 0)),
            ("duplicates", c.get("duplicate", 0)),
            ("filtered", c.get("rejected", 0)),
            ("finished", finished),
        ])

    @on(EngineEvent)
    def _engine_event(self, message: EngineEvent) -> None:
        if message.job != "transform":
            return
        from engine.teacher.transform import ExampleDone, ExampleText, TransformFinished

        event = message.event
        stream = self.query_one("#t-stream", StreamView)
        log = self.query_one("#t-log", LogTail)
        match event:
            case ExampleText(row=row, rank=rank, text=text):
                stream.update_text(row, f"#{rank} · row {row}", text)
            case ExampleDone():
                self.counts[event.status] = self.counts.get(event.status, 0) + 1
                note = event.status + (f": {event.reason}" if event.reason else "")
                stream.finish(event.row, note, failed=event.status == "failed")
                if event.status == "failed":
                    raw = self._raw_reply(event.example_id)
                    log.add(f"✗ #{event.rank} row {event.row}: {event.reason or 'failed'}"
                            + (f"\n  raw: {raw}" if raw else ""))
                self._paint_stats()
            case Progress(done=done, total=total, message=text, rate=rate, eta_s=eta_s):
                bar = self.query_one("#t-progress", ProgressBar)
                if total:
                    self.total = total
                bar.update(total=total, progress=done)
                remaining = (total or 0) - done
                speed = f"{rate:.2f} examples/s" if rate is not None else "-- examples/s"
                self.query_one("#t-message", Static).update(Content(
                    f"{done:,}/{total or 0:,} · {remaining:,} remaining · {text} · {speed} · "
                    f"ETA {format_seconds(eta_s)}"))
            case Log(message=text, level=level):
                if self.teacher_problem:
                    self._set_problem("")  # the teacher answered
                log.add(("" if level == "INFO" else f"{level}: ") + text)
            case TransformFinished():
                log.add(f"finished: {event.done} new, {event.failed} failed, {event.duplicates} duplicates, "
                        f"{event.cached} cached, {event.seconds:.1f} s")

    def _raw_reply(self, example_id: int | None) -> str:
        from engine.teacher.calls import raw_response

        if example_id is None:
            return ""
        return (raw_response(self.rebase.workspace, example_id) or "")[:500]

    @on(JobFinished)
    def _job_finished(self, message: JobFinished) -> None:
        if message.job != "transform":
            return
        self._job = None
        if message.outcome == "error":
            self._set_problem(message.error)
            self.query_one("#t-log", LogTail).add(f"ERROR: {message.error}")
            self._set_state("idle")
        elif message.outcome == "done":
            self._set_problem("")
            self._set_state("idle")
            self.notify(f"transform finished: {self.counts.get('pending', 0)} new examples — review them (F6)")
        elif self.state != "paused":
            self._set_state("idle")
