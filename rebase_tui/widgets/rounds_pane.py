"""The Train screen's "rounds" tab: refinement rounds of the open run's task, and refining the open run.

Refining (``ctrl+f``, or ``f`` on the runs table) drives :func:`engine.loop.refine.refine` in an async worker:
the run's validation mistakes steer a new retrieval, the teacher transforms the rows it found, and the round
waits for review — the screen then sends the user to Review (:class:`RefineWaiting`). Refining again once
nothing of the round is pending trains the next run on everything accepted (continuing from the run, or from
the base student with "fresh"); the screen follows it in the run tab (:class:`RefineTraining`); the new run is
then scored on the same validation items and the round shows its scores before → after. The table lists the
task's rounds (:func:`engine.loop.rounds.list_rounds`): the one the open run drove is marked ▸.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Checkbox, DataTable, Static

from engine.events import Log, Progress
from engine.rate import format_seconds
from rebase_tui.jobs import run_async_events, run_call
from rebase_tui.messages import EngineEvent, JobFinished
from rebase_tui.widgets.log_tail import LogTail
from rebase_tui.widgets.runs_table import short_run
from rebase_tui.widgets.text import one_line, plain

if TYPE_CHECKING:
    from engine.loop.rounds import Round

COLUMNS = ("round", "from run", "wrong", "rows", "status", "before → after", "next run")


@dataclass
class RefineWaiting(Message):
    """A round's examples wait for the reviewer (``pending`` of ``made``)."""

    task: str
    number: int
    pending: int
    made: int


@dataclass
class RefineTraining(Message):
    """The round's next run (``run``) started training."""

    run: str


def scores(r: Round) -> str:
    """``exact 0.667 → 0.833`` (``→ …`` until the next run is scored)."""
    name, before = r.before.headline
    after = f"{r.after.value(name):.3f}" if r.after is not None and name in r.after.metrics else "…"
    return f"{name} {before:.3f} → {after}"


def round_cells(r: Round, open_run: str | None) -> list[str]:
    mark = "▸" if r.run == open_run else " "
    return [f"{mark}{r.number}", short_run(r.run), f"{len(r.failures)}/{len(r.validation)}", str(r.rows_added),
            r.status, scores(r), short_run(r.next_run) if r.next_run else "—"]


class RoundsPane(Vertical):
    """The task's rounds, the "fresh" choice, the refine job's progress and log."""

    DEFAULT_CSS = """
    RoundsPane { height: 1fr; }
    RoundsPane #rounds-head { height: 1; }
    RoundsPane #rounds-fresh { width: auto; margin-right: 2; }
    RoundsPane #rounds-status { width: 1fr; color: $foreground-muted; }
    RoundsPane #rounds-table { height: 1fr; min-height: 5; border: round $primary-muted; }
    RoundsPane #rounds-log { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.task_name: str | None = None
        self.open_run: str | None = None
        self.rounds: list[Round] = []

    def compose(self) -> ComposeResult:
        with Horizontal(id="rounds-head"):
            yield Checkbox("fresh", id="rounds-fresh", compact=True,
                           tooltip="the round's next run starts from the base student instead of this run's model")
            yield Static("", id="rounds-status")
        yield DataTable(id="rounds-table", cursor_type="row", zebra_stripes=True)
        yield LogTail("refine log", id="rounds-log")

    def on_mount(self) -> None:
        table = self.query_one("#rounds-table", DataTable)
        table.add_columns(*COLUMNS)
        table.border_title = "rounds"
        self._status("ctrl+f refines the open run: its validation mistakes steer the next retrieval")

    def _status(self, text: str) -> None:
        self.query_one("#rounds-status", Static).update(plain(text, 500))

    @property
    def running(self) -> bool:
        return any(w.group == "refine" and not w.is_finished for w in self.workers)

    def show_rounds(self, task: str | None, open_run: str | None) -> None:
        """List ``task``'s rounds (read in a thread), marking the one ``open_run`` drove."""
        self.task_name, self.open_run = task, open_run
        table = self.query_one("#rounds-table", DataTable)
        table.border_title = f"rounds of {one_line(task, 40)}" if task else "rounds (no task)"
        if task:
            from engine.loop.rounds import list_rounds

            run_call(self, "rounds-list", list_rounds, self.app.workspace, task)  # type: ignore[attr-defined]

    def refine(self, run: str, task: str | None) -> None:
        """Take the round ``run`` drives one step further (see the module docstring)."""
        from engine.loop.refine import refine
        from engine.teacher.client import TeacherSettings

        ws = self.app.workspace  # type: ignore[attr-defined]
        try:
            settings = TeacherSettings.from_config(ws.config)
        except Exception as exc:  # noqa: BLE001 - a bad teacher setting is said in one line
            self.app.notify(f"cannot refine: {exc}", severity="error", timeout=10)
            return
        fresh = self.query_one("#rounds-fresh", Checkbox).value
        self.show_rounds(task, run)
        self.query_one("#rounds-log", LogTail).add(f"refining run {run}" + (" (fresh)" if fresh else "") + "…")
        run_async_events(self, "refine", lambda: refine(ws, run, settings, fresh=fresh), description=f"refine {run}")

    @on(EngineEvent)
    def _event(self, message: EngineEvent) -> None:
        if message.job != "refine":
            return
        message.stop()
        from engine.loop.refine import RoundDone, RoundStarted, RoundTraining, RoundWaiting

        ev, log = message.event, self.query_one("#rounds-log", LogTail)
        if isinstance(ev, Progress):
            total = f"/{ev.total:,}" if ev.total else ""
            rate = f" · {ev.rate:.2f} {ev.unit}/s" if ev.rate is not None else ""
            self._status(f"{ev.stage}: {ev.done:,}{total} {ev.unit}{rate} · ETA {format_seconds(ev.eta_s)} · "
                         f"{one_line(ev.message, 80)}")
        elif isinstance(ev, Log):
            log.add(ev.message if ev.level == "INFO" else f"{ev.level.lower()}: {ev.message}")
        elif isinstance(ev, RoundStarted | RoundDone):
            log.add(ev.round.describe())
            self.show_rounds(ev.round.task, self.open_run)
            if isinstance(ev, RoundDone):
                self.app.notify(f"{ev.round.describe()}", timeout=10)
        elif isinstance(ev, RoundWaiting):
            log.add(f"round {ev.round.number}: {ev.pending} of {ev.made} examples wait for review — accept or "
                    "reject them in Review (F6), then refine again (ctrl+f) to train")
            self.show_rounds(ev.round.task, self.open_run)
            self.post_message(RefineWaiting(ev.round.task, ev.round.number, ev.pending, ev.made))
        elif isinstance(ev, RoundTraining):
            log.add(f"round {ev.round.number}: training run {ev.run} on everything accepted")
            self.show_rounds(ev.round.task, self.open_run)
            self.post_message(RefineTraining(ev.run))

    @on(JobFinished)
    def _finished(self, message: JobFinished) -> None:
        if message.job not in ("refine", "rounds-list"):
            return
        message.stop()
        if message.job == "rounds-list":
            if message.ok:
                self._fill(message.result or [])
            return
        if message.outcome == "error":
            self.query_one("#rounds-log", LogTail).add(f"refine stopped: {message.error}")
            self._status("refine stopped — ctrl+f again continues where it stopped")
            self.app.notify(f"refine: {message.error}", severity="error", timeout=15)
        else:
            self._status("refine " + ("done" if message.ok else "cancelled") + " — ctrl+f takes the next step")
        self.screen.refresh_bindings()

    def _fill(self, found: list[Any]) -> None:
        self.rounds = found
        table = self.query_one("#rounds-table", DataTable)
        table.clear()
        for r in found:
            table.add_row(*round_cells(r, self.open_run), key=str(r.number))
        if not found:
            table.add_row(" ", "no rounds yet", "", "", "", "", "")
