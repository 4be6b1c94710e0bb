"""RebaseApp: one mode per ReBase stage, a stage bar, themes, and the workspace it owns."""

from __future__ import annotations

import logging
import os
from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.notifications import SeverityLevel
from textual.signal import Signal
from textual.theme import Theme

from engine.config import Config
from engine.errors import ConfigError, EngineError
from engine.workspace import Workspace
from rebase_tui.palette import StageCommands
from rebase_tui.quitting import (
    TrackedExecutor,
    install_signal_handlers,
    question,
    remove_signal_handlers,
    running_jobs,
    stop_jobs,
    terminal_gone,
)
from rebase_tui.screens.base import StageScreen
from rebase_tui.screens.data import DataScreen
from rebase_tui.screens.retrieve import RetrieveScreen
from rebase_tui.screens.review import ReviewScreen
from rebase_tui.screens.task import TaskScreen
from rebase_tui.screens.train import TrainScreen
from rebase_tui.screens.transform import TransformScreen
from rebase_tui.themes import VARIABLE_DEFAULTS, discover_themes
from rebase_tui.widgets.dialogs import ConfirmDialog
from rebase_tui.widgets.stage_bar import STAGES

log = logging.getLogger(__name__)


class RebaseApp(App[None]):
    """The rebase-tui app. It holds the workspace (and so its DuckDB file) open for its lifetime."""

    TITLE = "rebase-tui"
    CSS_PATH = "app.tcss"
    MODES: ClassVar = {
        "data": DataScreen,
        "task": TaskScreen,
        "retrieve": RetrieveScreen,
        "transform": TransformScreen,
        "review": ReviewScreen,
        "train": TrainScreen,
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "toggle_help", "Help", id="app.help", tooltip="show or hide the keys of this screen"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit",
                tooltip="quit (asks first when a job would be interrupted; running training continues)",
                priority=True),
        Binding("ctrl+c", "quit", "Quit", id="app.quit_c", show=False, priority=True,
                tooltip="quit, as ctrl+q"),
        *(Binding(key, f"stage('{name}')", label, id=f"stage.{name}", tooltip=f"go to the {label} stage",
                  show=False)
          for name, key, label in STAGES),
        # tab moves the focus from the app itself, before any later key of the same burst is handed on: keys
        # typed (or pasted) right after a tab land in the newly focused field instead of the old one
        Binding("tab", "move_focus(1)", show=False, priority=True),
        Binding("shift+tab", "move_focus(-1)", show=False, priority=True),
        Binding("f8", "switch_task", "Tasks", id="app.switch_task", priority=True,
                tooltip="switch to another task (every screen shows the selected one)"),
    ]
    COMMANDS = App.COMMANDS | {StageCommands}
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (110, "-wide")]
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-short"), (32, "-tall")]
    """Screens get -narrow/-wide and -short/-tall classes from the terminal's size: the layouts fit 80×24."""

    def __init__(self, workspace: Workspace, stage: str = "data", task: str | None = None) -> None:
        super().__init__()
        self.workspace = workspace
        self.initial_stage = stage if stage in self.MODES else "data"
        self.task_signal: Signal[str | None] = Signal(self, "task")
        """Published with the task's name whenever another task is selected (every screen shows that one)."""
        self._task_name = task
        self.theme_problems: list[str] = []
        themes, problems = discover_themes()
        for theme in themes:
            self.register_theme(theme)
        self.theme_problems = [f"{p.path.name}: {p.reason}" for p in problems]
        from rebase_tui.inert import inert

        self.sub_title = inert(str(workspace.path))
        from rebase_tui.live import LiveRetrieval

        self.live = LiveRetrieval(self)
        """The task draft, the retriever (loaded by a warm-up worker) and the live search."""
        self.closing = False
        """True once quitting has begun: screens start no new work."""
        self.exit_note = ""
        """The one line to print after the app has quit (empty: none)."""
        self.workspace_closed = False
        """True once the workspace was closed after every job had stopped."""
        self.executor = TrackedExecutor()
        self._signals: list[int] = []
        self.config_signal: Signal[Config] = Signal(self, "config")
        """Published with the new settings whenever they change (a form's choice, or config.toml edited by
        `rebase-tui config` while the app runs): forms show the new values."""
        self._config_problem = ""

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(VARIABLE_DEFAULTS)

    def on_mount(self) -> None:
        import asyncio

        asyncio.get_running_loop().set_default_executor(self.executor)
        self._signals = install_signal_handlers(self._on_signal)
        wanted = self.workspace.config["ui.theme"]
        if wanted in self.available_themes:
            self.theme = wanted
        else:
            self.theme = "rebase-dark" if "rebase-dark" in self.available_themes else "textual-dark"
            self.notify(f"theme {wanted!r} not found; using {self.theme}. Pick one with ctrl+p → Theme.",
                        severity="warning")
        if self.theme_problems:
            self.notify("some theme files were skipped:\n" + "\n".join(self.theme_problems),
                        severity="warning", timeout=10)
        if self._task_name is None:  # every screen shows one task: the first stored one until another is picked
            from engine.tasks import list_tasks

            self._task_name = next((t.name for t in list_tasks(self.workspace)), None)
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        self.set_interval(1.0, self._watch_config)
        self.switch_mode(self.initial_stage)
        self.call_after_refresh(self.live.start_warmup)  # after the first paint: torch loads off-thread

    def _remember_theme(self, theme: Theme) -> None:
        """Persist the chosen theme in the workspace config."""
        if theme.name != self.workspace.config["ui.theme"]:
            self.choose("ui.theme", theme.name)

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """A toast. Messages name tasks, paths and teacher replies, so they are never read as markup and their
        control characters are shown inertly."""
        from rebase_tui.inert import inert

        super().notify(inert(message), title=inert(title), severity=severity, timeout=timeout, markup=False)

    # -- settings: config.toml is the one source of truth -----------------------------------
    def choose(self, key: str, value: object) -> bool:
        """Save a choice made in a form (in effect at once, on every screen); False when it was refused
        (the reason is shown)."""
        try:
            self.workspace.choose(key, value)
        except (EngineError, OSError) as exc:
            self.notify(f"could not save {key}: {exc}", severity="error", timeout=8)
            return False
        self.config_signal.publish(self.workspace.config)
        return True

    def _watch_config(self) -> None:
        """Pick up config.toml changed by another process (`rebase-tui config KEY VALUE`)."""
        if self.closing:
            return
        try:
            changed = self.workspace.reload_config()
        except ConfigError as exc:
            if str(exc) != self._config_problem:
                self._config_problem = str(exc)
                self.notify(f"config.toml changed but was not applied: {exc}", severity="error", timeout=15)
            return
        self._config_problem = ""
        if not changed:
            return
        wanted = self.workspace.config["ui.theme"]
        if wanted != self.theme and wanted in self.available_themes:
            self.theme = wanted
        self.config_signal.publish(self.workspace.config)
        self.notify("settings reloaded from config.toml", timeout=3)

    @property
    def task_name(self) -> str | None:
        """The selected task: the one every screen shows (its stage bar, pool, examples and runs)."""
        return self._task_name

    @task_name.setter
    def task_name(self, name: str | None) -> None:
        if name != self._task_name:
            self._task_name = name
            self.task_signal.publish(name)

    # -- actions -------------------------------------------------------------------------
    def action_stage(self, name: str) -> None:
        """Go to a stage's screen."""
        if name in self.MODES and self.current_mode != name:
            self.switch_mode(name)

    def action_move_focus(self, step: int) -> None:
        """Next (1) or previous (-1) widget; in a path field, tab first accepts the completion shown."""
        from rebase_tui.widgets.path_input import PathInput

        focused = self.focused
        if step > 0 and isinstance(focused, PathInput):
            focused.action_complete()  # completes, or moves on when there is nothing to complete
        elif step > 0:
            self.screen.focus_next()
        else:
            self.screen.focus_previous()

    def action_switch_task(self) -> None:
        """Pick another task (typing filters)."""
        from engine.tasks import list_tasks
        from rebase_tui.widgets.task_switcher import TaskSwitcher

        if isinstance(self.screen, TaskSwitcher):
            return
        names = [t.name for t in list_tasks(self.workspace)]
        if not names:
            self.notify("no tasks yet: write one on the Task screen (F3)", severity="warning")
            return

        def chosen(name: str | None) -> None:
            if name:
                self.select_task(name)

        self.push_screen(TaskSwitcher(names, self.task_name), chosen)

    def select_task(self, name: str) -> None:
        """Make ``name`` the selected task everywhere (asks before dropping unsaved edits of the draft)."""
        from engine.tasks import get_task
        from rebase_tui.live import TaskDraft

        task = get_task(self.workspace, name)
        if task is None:
            self.notify(f"task {name} no longer exists", severity="error")
            return
        draft = self.live.draft

        def load(yes: bool | None = True) -> None:
            if yes:
                self.live.load(TaskDraft.from_task(task), "app")
                self.notify(f"task {name} selected", timeout=2)

        if draft.stored != name and draft.dirty and any(draft.to_spec().values()):
            what = draft.stored or "the new task"
            self.push_screen(ConfirmDialog(f"Discard the unsaved changes to {what}?", yes="Discard"), load)
        else:
            load()

    def action_toggle_help(self) -> None:
        """Show or hide the help panel (the keys of the focused widget and screen)."""
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def set_theme(self, name: str) -> None:
        """Switch theme (remembered in config.toml)."""
        self.theme = name

    # -- workspace queries used by every screen ------------------------------------------
    def count(self, table: str) -> int:
        """Rows in ``table`` (0 when this workspace's schema has no such table yet)."""
        return self.workspace.store.table_counts([table]).get(table, 0)

    def status_text(self) -> str:
        """A short status for the stage bar."""
        embedder = self.workspace.store.get_meta("embedder.name")
        parts = [f"task {self.task_name}"] if self.task_name else ["no task selected"]
        n = self.count("datasets")
        parts.append(f"{n:,} dataset{'' if n == 1 else 's'}")
        if embedder:
            parts.append(f"embedder {embedder}")
        return " · ".join(parts)

    # -- quitting --------------------------------------------------------------------------
    async def action_quit(self) -> None:
        """Quit: ask first when a job would be interrupted (y quits, n/escape stays), then stop in order."""
        if self.closing:
            return
        if isinstance(self.screen, QuitDialog):
            self.screen.dismiss(True)  # the quit key again answers yes
            return
        jobs = running_jobs(self)
        if not jobs:
            self.begin_close()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.begin_close(jobs)

        self.push_screen(QuitDialog(question(jobs), yes="Quit"), answered)

    def _on_signal(self, name: str) -> None:
        """SIGTERM or SIGHUP: quit without asking (there may be nobody left to answer)."""
        log.info("%s received: quitting", name)
        self.hung_up = self.hung_up or name == "SIGHUP"
        self.begin_close(running_jobs(self))

    def begin_close(self, interrupted: list[str] | None = None) -> None:
        """Stop every job in order, then exit (the workspace closes on unmount)."""
        if self.closing:
            return
        self.closing = True
        self.exit_note = exit_note(interrupted or [], self.following_run())
        self.run_worker(self._close(), name="quit", group="quit", exit_on_error=False,
                        description="stop the jobs, then quit")

    async def _close(self) -> None:
        if self.executor.active or self.live.warming:
            self.notify("quitting: waiting for the running work to stop…", timeout=30)
        stoppers = [self.live.stop]
        for screen in self.stage_screens():
            stoppers += screen.stoppers()
        self.stopped_cleanly = await stop_jobs(self, self.executor, stoppers)
        if self.hung_up and terminal_gone():
            # The terminal is gone (an SSH link dropped): there is nothing to restore on it and nobody to tell,
            # and restoring it can block for ever (the SIGCONT that comes with the hang-up restarts the
            # driver's output under it). The work is stopped: close the workspace and end here.
            self._close_workspace()
            os._exit(0)
        self.exit()

    stopped_cleanly = False
    """True when every job stopped before the deadline (the workspace may be closed)."""
    hung_up = False
    """True once SIGHUP came: the terminal went away."""

    def stage_screens(self) -> list[StageScreen]:
        """The stage screens made so far (one per mode visited)."""
        return [s for stack in self._screen_stacks.values() for s in stack if isinstance(s, StageScreen)]

    def following_run(self) -> str:
        """The training run the Train screen follows (it goes on after a quit), or empty."""
        for screen in self.stage_screens():
            run = getattr(screen, "following_run", "")
            if run:
                return str(run)
        return ""

    def on_unmount(self) -> None:
        remove_signal_handlers(self._signals)
        if not self.closing:  # an exit that did not come through begin_close (a test, an error)
            self.live.shutdown()
            self.stopped_cleanly = self.executor.wait_idle(5.0)
        self._close_workspace()

    def _close_workspace(self) -> None:
        """Close the workspace once every job has stopped (else the process exit releases it)."""
        if self.stopped_cleanly and not self.workspace_closed:
            try:
                self.workspace.close()
                self.workspace_closed = True
            except Exception:  # never a traceback on the way out: the process exit releases the file
                log.exception("closing the workspace failed")


class QuitDialog(ConfirmDialog):
    """The confirmation before a quit that interrupts a job (a class of its own: the quit key answers it)."""


def exit_note(interrupted: list[str], following: str) -> str:
    """The one line printed after quitting: what was stopped, and a training run that goes on."""
    parts = []
    if interrupted:
        parts.append(f"stopped {' and '.join(interrupted)}; finished work is kept — run it again to resume")
    if following:
        parts.append(f"training run {following} continues in the background (rebase-tui runs)")
    return "; ".join(parts)
