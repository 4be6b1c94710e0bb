"""The Train screen's "try" pane: put the open run's student, its untrained base and the teacher side by side on
any input.

The input is typed, or picked from the run's validation split or a test file (``ctrl+n`` steps through the
items, ``ctrl+o`` reads a test file); ``ctrl+j`` asks all three. The student and the base are loaded once, when
the pane opens, in a child process (:class:`engine.student.tryout_process.TryProcess`): torch generates there,
never in the app's process, so the screen stays responsive; the load time is shown, and closing the pane ends
the process and gives its memory back. The teacher is asked in an async worker of the app, few-shot from the
task's demonstrations and cached like every teacher call. Each answer streams into its column, then shows the
answer the task's metric extracts and — for an input picked with its reference — whether it is right.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Input, Label, Static

from rebase_tui.jobs import run_async_events, run_call
from rebase_tui.messages import EngineEvent, JobFinished
from rebase_tui.widgets.editor import PlainTextArea
from rebase_tui.widgets.text import one_line, plain

if TYPE_CHECKING:
    from engine.events import Event
    from engine.student.testsets import TestItem
    from engine.student.tryout_process import TryAnswer, TryProcess
    from engine.tasks import Task

SYSTEMS = ("student", "base", "teacher")
CUT_NOTE = "input cut to fit the context, as eval cuts it"


class AnswerBox(VerticalScroll):
    """One system's answer: streamed text, then the extracted answer, right or wrong, and its time."""

    DEFAULT_CSS = """
    AnswerBox { width: 1fr; height: 1fr; border: round $primary-muted; padding: 0 1; }
    AnswerBox:focus { border: round $accent; }
    AnswerBox.-right { border: round $success; }
    AnswerBox.-wrong { border: round $error; }
    AnswerBox > .answer-note { color: $foreground-muted; display: none; }
    AnswerBox.-cut > .answer-note { display: block; }
    """

    def __init__(self, system: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.system = system
        self.border_title = system
        self.text = ""
        self.verdict = ""
        """The subtitle once answered: ``answer: X ✓ · 1.2 s`` (empty while it streams)."""

    def compose(self) -> ComposeResult:
        yield Static(f"({CUT_NOTE})", classes="answer-note")
        yield Static("", classes="answer-text")

    def show(self, text: str, note: str = "") -> None:
        """The answer so far (or a note such as "asking…")."""
        self.text = text
        self.query_one(".answer-text", Static).update(plain(text) if text else Content(note))
        self.scroll_end(animate=False)

    def reset(self, note: str) -> None:
        self.verdict = ""
        self.tooltip = None
        self.border_title = self.system
        self.border_subtitle = ""
        self.remove_class("-right", "-wrong", "-cut")
        self.show("", note)

    def done(self, ev: TryAnswer) -> None:
        """The whole answer; the title gets its time, the bottom border the extracted answer and ✓/✗, and a cut
        input is said above the text (the whole verdict is also the box's tooltip)."""
        mark = "" if ev.correct is None else " ✓" if ev.correct else " ✗"
        took = "cached" if ev.cached else f"{ev.seconds:.2f} s" if ev.seconds < 10 else f"{ev.seconds:.0f} s"
        notes = [took] + ([f"first token {ev.first_token_s:.2f} s"] if ev.first_token_s is not None else [])
        if ev.truncated:
            notes.append(CUT_NOTE)
        answer = one_line(ev.answer, 40) or "—"
        self.verdict = f"answer: {answer}{mark} · {' · '.join(notes)}"
        self.tooltip = self.verdict
        self.border_title = f"{self.system} · {took}"
        self.border_subtitle = f"{answer}{mark}"
        self.set_class(ev.correct is True, "-right")
        self.set_class(ev.correct is False, "-wrong")
        self.set_class(ev.truncated, "-cut")
        self.show(ev.text, "(empty answer)")

    def failed(self, message: str) -> None:
        self.verdict = "failed"
        self.border_subtitle = "failed"
        self.show("", "")
        self.query_one(".answer-text", Static).update(plain(message))
        self.add_class("-wrong")


class TryPane(Vertical):
    """Input, example picking and the three answer columns of the open run (see the module docstring)."""

    DEFAULT_CSS = """
    TryPane { height: 1fr; }
    TryPane #try-head { height: 1; }
    TryPane #try-head > Label { width: auto; color: $foreground-muted; }
    TryPane #try-max { width: 7; margin-right: 2; }
    TryPane #try-status { width: 1fr; height: 1; color: $foreground-muted; }
    TryPane #try-input { height: 5; }
    TryPane #try-source { height: 1; color: $foreground-muted; }
    TryPane #try-answers { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.run_path: Path | None = None
        self.run_task: Task | None = None
        self.process: TryProcess | None = None
        self.loaded: dict[str, str] = {}
        """``{"student": "1.2 s (cpu)", ...}``: what the process has loaded, and in how long."""
        self.examples: list[TestItem] = []
        self.test_layout = "jsonl"
        self.source = ""
        """Where the examples come from (``validation split`` or a file name)."""
        self.index = -1
        self.request = 0
        """The request whose answers the columns show (0: none yet)."""
        self.pending: set[str] = set()

    def compose(self) -> ComposeResult:
        with Horizontal(id="try-head"):
            yield Label("max tokens ")
            yield Input("256", id="try-max", compact=True, type="integer")
            yield Static("", id="try-status")
        yield PlainTextArea(id="try-input")
        yield Static("", id="try-source")
        with Horizontal(id="try-answers"):
            for system in SYSTEMS:
                yield AnswerBox(system, id=f"try-{system}")

    def on_mount(self) -> None:
        field = self.query_one("#try-input", PlainTextArea)
        field.border_title = "input · ctrl+j asks all three"
        field.match_cursor_bracket = False  # an input is data, not code: no bracket highlighted
        self._status("open a run (enter in the runs table), then type an input or ctrl+n for an example")

    def _status(self, text: str) -> None:
        self.query_one("#try-status", Static).update(plain(text, 500))

    def box(self, system: str) -> AnswerBox:
        return self.query_one(f"#try-{system}", AnswerBox)

    # -- the process: started when the pane opens on a run, ended when it closes ---------------------
    def open(self, run_path: Path | None) -> None:
        """Show run ``run_path``: load its student and base in a child process (unless already loaded)."""
        if run_path is None:
            self.close()
            self._status("no run open: enter on a run in the runs table (alt+2) opens it")
            return
        if run_path == self.run_path and self._serving():
            return
        self.close()
        self.run_path, self.loaded, self.examples, self.index, self.request = run_path, {}, [], -1, 0
        self.pending.clear()
        for system in SYSTEMS:
            self.box(system).reset("")
        self._status(f"loading the student and the base of run {run_path.name}…")
        run_async_events(self, "try-model", lambda: self._serve(run_path), description=f"try {run_path.name}")
        run_call(self, "try-context", _context, run_path)

    def _serving(self) -> bool:
        return any(w.group == "try-model" and not w.is_finished for w in self.workers)

    async def _serve(self, run_path: Path) -> AsyncIterator[Event]:
        from engine.student.tryout_process import TryProcess

        proc = await TryProcess.start(run_path)
        self.process = proc
        try:
            async for event in proc.events():
                yield event
        finally:
            self.process = None
            await proc.close()

    def close(self) -> None:
        """End the child process (its memory goes back); the pane shows that nothing is loaded."""
        self.workers.cancel_group(self, "try-model")
        self.workers.cancel_group(self, "try-teacher")
        if self.run_path is not None and self.loaded:
            self._status(f"released run {self.run_path.name} (its models load again when this tab is shown)")
        self.run_path, self.loaded = None, {}

    def kill(self) -> None:
        """End the child at once (the app is quitting; called off the event loop)."""
        if self.process is not None:
            self.process.kill()

    # -- inputs ------------------------------------------------------------------------------------
    def next_example(self) -> None:
        """Put the next example of the validation split (or the test file read) into the input."""
        if not self.examples:
            self.app.notify("no examples: the run kept no validation split — ctrl+o reads a test file",
                            severity="warning")
            return
        self.index = (self.index + 1) % len(self.examples)
        item = self.examples[self.index]
        self.query_one("#try-input", PlainTextArea).set_text(item.input)
        self._show_source()

    def _show_source(self) -> None:
        if not self.examples or self.index < 0:
            text = f"{len(self.examples)} examples ({self.source}): ctrl+n picks one" if self.examples else ""
        else:
            item = self.examples[self.index]
            typed = self.query_one("#try-input", PlainTextArea).text
            reference = " | ".join(item.references)
            text = (f"example {self.index + 1}/{len(self.examples)} of {self.source} · reference: "
                    f"{one_line(reference, 60)}" if typed == item.input else
                    f"edited example {self.index + 1} of {self.source}: judged without its reference")
        self.query_one("#try-source", Static).update(plain(text, 500))

    @on(PlainTextArea.Changed, "#try-input")
    def _input_edited(self) -> None:
        self._show_source()

    def read_test_file(self, path: Path) -> None:
        """Read a test file's items (any layout eval reads) in a thread; ctrl+n then steps through them."""
        if self.run_path is None:
            self.app.notify("open a run first (enter in the runs table)", severity="warning")
            return
        from engine.student.evaluate import test_items

        run_call(self, "try-examples", test_items, self.run_path, path)

    def ask(self) -> None:
        """Ask the student, the base and the teacher about the input (streamed into the three columns)."""
        text = self.query_one("#try-input", PlainTextArea).text.strip()
        if self.run_path is None:
            self.app.notify("open a run first (enter in the runs table)", severity="warning")
        elif not text:
            self.app.notify("type an input, or ctrl+n for an example of the run", severity="warning")
        elif self.process is None or "student" not in self.loaded:
            self.app.notify("the student is still loading; ask again in a moment", severity="warning")
        elif self.pending:
            self.app.notify(f"still answering ({', '.join(sorted(self.pending))})", severity="warning")
        else:
            self._ask(text)

    def _ask(self, text: str) -> None:
        assert self.process is not None and self.run_path is not None
        item = self.examples[self.index] if 0 <= self.index < len(self.examples) else None
        refs = tuple(item.references) if item is not None and item.input.strip() == text else ()
        try:
            max_new = max(1, int(self.query_one("#try-max", Input).value or 256))
        except ValueError:
            max_new = 256
        models = [s for s in ("student", "base") if s in self.loaded]
        self.request = self.process.ask(text, max_new_tokens=max_new, which=models, references=refs,
                                        layout=self.test_layout)
        self.pending = set(models)
        for system in SYSTEMS:
            self.box(system).reset("asking…" if system in models or system == "teacher" else "")
        if self.run_task is None:
            self.box("teacher").failed("this run was trained without a task: the teacher has no examples to follow")
            return
        from engine.student.tryout_process import teacher_answer
        from engine.teacher.client import TeacherSettings

        try:
            settings = TeacherSettings.from_config(self.app.workspace.config)  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - a bad setting is shown in the teacher's column
            self.box("teacher").failed(str(exc))
            return
        self.pending.add("teacher")
        ws, task, request = self.app.workspace, self.run_task, self.request  # type: ignore[attr-defined]
        run_async_events(self, "try-teacher", lambda: teacher_answer(ws, settings, task, text, request,
                                                                     references=refs, layout=self.test_layout))

    # -- what the workers report -------------------------------------------------------------------
    @on(EngineEvent)
    def _event(self, message: EngineEvent) -> None:
        if not message.job.startswith("try-"):
            return
        message.stop()
        from engine.student.tryout_process import TryAnswer, TryError, TryLoaded, TryText

        ev = message.event
        if isinstance(ev, TryLoaded):
            self.loaded[ev.which] = f"{ev.seconds:.1f} s"
            self._status("loaded in " + " + ".join(f"{took} ({which})" for which, took in self.loaded.items())
                         + f" on {ev.device}")
        elif isinstance(ev, TryText) and ev.request == self.request:
            self.box(ev.which).show(ev.text)
        elif isinstance(ev, TryAnswer) and ev.request == self.request:
            self.box(ev.which).done(ev)
            self.pending.discard(ev.which)
        elif isinstance(ev, TryError) and ev.request is None:
            self._status(f"could not load: {ev.message}")
        elif isinstance(ev, TryError) and ev.request == self.request:
            self.box(ev.which).failed(ev.message)
            self.pending.discard(ev.which)

    @on(JobFinished)
    def _finished(self, message: JobFinished) -> None:
        if not message.job.startswith("try-"):
            return
        message.stop()
        if message.job == "try-context" and message.ok:
            self.run_task, examples = message.result
            if examples:
                self.examples, self.test_layout, self.source, self.index = examples, "jsonl", "the validation split", -1
                self._show_source()
        elif message.job == "try-examples":
            if message.ok:
                label, self.test_layout, self.examples = message.result
                self.source, self.index = label, -1
                self._show_source()
                self.next_example()
            else:
                self.app.notify(message.error, severity="error", timeout=10)
        elif message.job == "try-model":
            self.pending -= {"student", "base"}
            if message.outcome == "error":
                self._status(f"could not load: {message.error}")
        elif message.job == "try-teacher":
            if message.outcome == "error":
                self.box("teacher").failed(message.error)
            self.pending.discard("teacher")


def _context(run_path: Path) -> tuple[Any, list[Any]]:
    """The run's task (for the teacher and the answers) and its validation items (empty without a split)."""
    from engine.student.evaluate import has_validation_split, test_items
    from engine.student.tryout import run_context

    _, task = run_context(run_path)
    items = test_items(run_path, None)[2] if has_validation_split(run_path) else []
    return task, items
