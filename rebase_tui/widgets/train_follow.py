"""The Train screen's open run: opening one (replayed from its events file), following a running one live (its
worker's ``events.jsonl`` tailed by :func:`engine.student.supervise.afollow` in an async worker), and the
once-a-second figures (the worker's stderr.log, its CPU and GPU memory). Following a run the screen started,
re-attaching after an app restart and opening a finished run are one code path."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import EngineError
from rebase_tui.jobs import run_async_events, run_call
from rebase_tui.widgets.run_support import gpu_mb, rss_mb

if TYPE_CHECKING:
    from rebase_tui.messages import EngineEvent
    from rebase_tui.screens.train import TrainScreen
    from rebase_tui.widgets.log_tail import LogTail

    _Base = TrainScreen
else:
    _Base = object


class TrainFollow(_Base):
    """Opening and following runs for :class:`~rebase_tui.screens.train.TrainScreen`."""

    following = False
    """True while the open run's worker is followed live."""
    _pid: int | None = None
    _gpu: float | None = None

    @property
    def following_run(self) -> str:
        """The run followed live (its worker goes on after the app quits), or empty."""
        return self.run_path.name if self.following and self.run_path is not None else ""

    def open_run(self, path: Path) -> None:
        """Show run ``path``: follow it when its worker runs, else replay its events and show results."""
        from engine.student import supervise

        if supervise.worker_alive(path):
            self.attach(path)
        else:
            if self.following:
                self.workers.cancel_group(self, "train-follow")
                self.following = False
            from engine.student.events import load_events

            self._reset(path)
            for event in load_events(path):
                self.panels.apply(event)
            self.panels.show_results()
            self._paint_stats()
            self.refresh_bindings()  # eval and export act on the open run
        self.run_opened(path)

    def attach(self, path: Path, offset: int | None = None) -> None:
        """Follow run ``path`` live from its current segment (re-attach works the same way)."""
        from engine.student import supervise

        self._reset(path)
        self.following = True
        self._pid = supervise.read_pid(path)
        run_async_events(self, "train-follow", lambda: supervise.afollow(path, offset),
                         description=f"follow {path.name}")
        self.refresh_bindings()

    def _reset(self, path: Path) -> None:
        self.run_path = path
        self.panels.reset(path)

    def follow_event(self, message: EngineEvent) -> None:
        """One event of the followed run: the panels fold it in; checkpoints and the end go to the log."""
        from engine.student.events import CheckpointSaved, RunEnded

        event = message.event
        self.panels.apply(event)
        log = self.panels.log
        if isinstance(event, CheckpointSaved):
            log.add(f"checkpoint at step {event.step}")
        if isinstance(event, RunEnded) and self.view is not None:
            log.add(f"run {event.status} at step {event.step}" + (f": {self.view.end}" if self.view.end else ""))
            for hint in self.view.hints:
                log.add(f"  hint: {hint}")
        self._paint_stats()

    def follow_ended(self) -> None:
        """The followed run ended (or its follower was cancelled): record it, show its results."""
        self.following = False
        self._pid = None
        self.refresh_bindings()
        self._record_open_run(self.panels.log)
        self._paint_stats()
        if self.focused is None:  # the panes rebuilt while following took focus with them: the runs' letters act
            self.query_one("#tr-runs").focus()
        self.panels.show_results()
        self.action_refresh_runs()

    def _record_open_run(self, log: LogTail) -> None:
        """Record the open run's summary in DuckDB before its results show, so that whoever sees them (or
        quits right after) finds the run's end in the runs table."""
        if self.run_path is None:
            return
        from engine.student import runs

        try:
            runs.record(self.rebase.workspace, self.run_path)
        except (EngineError, OSError) as exc:
            log.add(f"could not record the run: {exc}")

    def _paint_stats(self) -> None:
        self.panels.paint(rss_mb(self._pid) if self.following else None, self._gpu if self.following else None)

    def _poll_files(self) -> None:
        """Once a second: new lines of the worker's stderr.log, and memory figures."""
        self.panels.read_stderr()
        if self.following:
            if shutil.which("nvidia-smi") is not None:
                run_call(self, "gpu-memory", gpu_mb, self._pid)
            self._paint_stats()
