"""Transform stage: the teacher LLM (served by Ollama or an OpenAI-compatible server such as vLLM or llama.cpp)
rewrites retrieved rows into task examples.

The screen runs :func:`engine.teacher.transform.transform` (an async generator) in an async worker through
:func:`rebase_tui.jobs.run_async_events`, shows the text of the generations in flight as it streams, the
counts, tokens/s and ETA, and a log of failures with their raw replies. Pause and cancel both close the
generator (the engine keeps every finished call in its cache); resume starts it again, which skips the
cached calls, so nothing is asked twice. The teacher is checked (host answers, model offered) when the
screen opens, on ``c``, when the backend or host changes and before each start: a banner gives the problem
and its fix, and the rest of the app keeps working. Each start builds a fresh client, so a server coming
back needs no restart. A run that ends with calls that could not be made or answered (or stopped because
the host went away) says so in the log and in an error notification.
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
    from engine.teacher.client import TeacherSettings

COT_MODES = ("auto", "on", "off")
BACKENDS = ("ollama", "openai")


class TransformScreen(StageScreen):
    """The teacher's settings, its progress on the task's pool, and its text as it streams."""

    STAGE = "transform"
    CSS_PATH = "transform.tcss"
    COMMANDS = {ScreenActions}
    AUTO_FOCUS = "#t-stream"
    """Single-letter keys act when no field has focus: the stream view has it on open (tab reaches the form)."""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+j,ctrl+enter", "start", "Start", id="transform.start",
                tooltip="transform the pool with the teacher (skips rows already done)"),
        Binding("space", "pause", "Pause/resume", id="transform.pause",
                tooltip="pause (finished rows are kept) or resume"),
        Binding("x", "cancel", "Cancel", id="transform.cancel", tooltip="stop the run (finished rows are kept)"),
        Binding("c", "check", "Check teacher", id="transform.check",
                tooltip="check that the teacher's server answers and offers the model"),
    ]

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
                for wid, label in (("backend", "backend"), ("host", "host"), ("model", "model"),
                                   ("temperature", "temperature"), ("cot", "chain of thought"),
                                   ("concurrency", "concurrency"), ("limit", "rows")):
                    yield Label(label, id=f"t-label-{wid}")
            with Horizontal(id="transform-settings"):
                yield Select([(b, b) for b in BACKENDS], id="t-backend", value="ollama", allow_blank=False,
                             compact=True)
                yield Input(id="t-host", compact=True)
                yield Select([], id="t-model", prompt="model", compact=True)
                yield Input(id="t-temperature", compact=True, type="number")
                yield Select([(m, m) for m in COT_MODES], id="t-cot", value="auto", allow_blank=False,
                             compact=True)
                yield Input(id="t-concurrency", compact=True, type="integer")
                yield Input(id="t-limit", compact=True, type="integer", placeholder="all")
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
        cfg = self.rebase.workspace.config
        backend = cfg["teacher.backend"] if cfg["teacher.backend"] in BACKENDS else "ollama"
        with self.prevent(Select.Changed):
            self.query_one("#t-backend", Select).value = backend
        self.query_one("#t-host", Input).value = self._configured_host(backend)
        self.query_one("#t-temperature", Input).value = str(cfg["teacher.temperature"])
        self.query_one("#t-concurrency", Input).value = str(cfg["teacher.concurrency"])
        for wid, label in (("#t-backend", "ollama, or openai: vLLM, llama.cpp, LM Studio (key from "
                                          "$REBASE_TEACHER_API_KEY)"),
                           ("#t-host", "host (an OpenAI-compatible server's base URL ends in /v1)"),
                           ("#t-model", "model"), ("#t-temperature", "temperature"),
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
        wanted = self.rebase.task_name
        self.task_name = wanted if wanted in pools else (next(iter(pools)) if pools else None)
        if self.state == "idle":
            self.total = pools.get(self.task_name or "", 0)
            bar = self.query_one("#t-progress", ProgressBar)
            if bar.total is None:  # an empty, determinate bar until the first run (no animation)
                bar.update(total=max(self.total, 1), progress=0)
        self._paint_state()

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
        backend = self.query_one("#t-backend", Select).value
        return TeacherSettings.from_config(
            self.rebase.workspace.config,
            backend=backend if isinstance(backend, str) else None,
            host=self.query_one("#t-host", Input).value.strip() or None,
            model=model if isinstance(model, str) else None,
            temperature=number("#t-temperature", float),
            concurrency=number("#t-concurrency", int),
        )

    def _configured_host(self, backend: str) -> str:
        """The host the configuration gives ``backend`` (its default when the config names none for it)."""
        from engine.teacher.client import TeacherSettings

        try:
            return TeacherSettings.from_config(self.rebase.workspace.config, backend=backend).host
        except EngineError:
            return str(self.rebase.workspace.config["teacher.host"])

    @on(Select.Changed, "#t-backend")
    def _backend_changed(self, event: Select.Changed) -> None:
        """Another backend: a host left at the other backend's configured value follows, and the check reruns."""
        host = self.query_one("#t-host", Input)
        others = {self._configured_host(b) for b in BACKENDS if b != event.value}
        if not host.value.strip() or host.value.strip() in others:
            host.value = self._configured_host(str(event.value))
        self.action_check()

    def action_check(self) -> None:
        """Ask the teacher's server for its models (in an async worker); the banner shows any problem."""
        self.run_worker(self._check(), name="teacher-check", group="teacher-check", exclusive=True,
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
            select.value = match
            self._set_problem("")
        else:
            self._set_problem(f"{backend.missing_model(current, self.models)}, or pick one in the model field")

    def _set_problem(self, problem: str) -> None:
        self.teacher_problem = problem
        banner = self.query_one("#teacher-banner", Static)
        banner.display = bool(problem)
        banner.update(Content(f"⚠ {problem}   (c: check again)" if problem else ""))

    @on(Input.Submitted, "#t-host")
    def _host_changed(self) -> None:
        self.query_one("#t-stream").focus()
        self.action_check()

    @on(Input.Submitted)
    def _field_done(self) -> None:
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
        label = {"idle": "idle — ctrl+j starts", "running": "running — space pauses, x cancels",
                 "paused": "paused — space resumes, x cancels"}[self.state]
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
                if not event.complete:
                    skipped = f"; {event.skipped} row(s) not tried" if event.skipped else ""
                    log.add(f"ERROR: {event.faults()}{skipped} — start again to retry them")
                    self.notify(f"{event.faults()}{skipped} — start again to retry them (finished rows are kept)",
                                severity="error", timeout=8)

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
