"""RebaseApp: one mode per ReBase stage, a stage bar, themes, and the workspace it owns."""

from __future__ import annotations

from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.theme import Theme

from engine.errors import EngineError
from engine.workspace import Workspace
from rebase_tui.palette import StageCommands
from rebase_tui.screens.data import DataScreen
from rebase_tui.screens.retrieve import RetrieveScreen
from rebase_tui.screens.review import ReviewScreen
from rebase_tui.screens.task import TaskScreen
from rebase_tui.screens.train import TrainScreen
from rebase_tui.screens.transform import TransformScreen
from rebase_tui.themes import VARIABLE_DEFAULTS, discover_themes
from rebase_tui.widgets.stage_bar import STAGES


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
        Binding("ctrl+q", "quit", "Quit", id="app.quit", tooltip="quit (running training continues)",
                priority=True),
        *(Binding(key, f"stage('{name}')", label, id=f"stage.{name}", tooltip=f"go to the {label} stage",
                  show=False)
          for name, key, label in STAGES),
    ]
    COMMANDS = App.COMMANDS | {StageCommands}

    def __init__(self, workspace: Workspace, stage: str = "data", task: str | None = None) -> None:
        super().__init__()
        self.workspace = workspace
        self.initial_stage = stage if stage in self.MODES else "data"
        self.task_name = task
        self.theme_problems: list[str] = []
        themes, problems = discover_themes()
        for theme in themes:
            self.register_theme(theme)
        self.theme_problems = [f"{p.path.name}: {p.reason}" for p in problems]
        self.sub_title = str(workspace.path)
        from rebase_tui.live import LiveRetrieval

        self.live = LiveRetrieval(self)
        """The task draft, the retriever (loaded by a warm-up worker) and the live search."""

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(VARIABLE_DEFAULTS)

    def on_mount(self) -> None:
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
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        self.switch_mode(self.initial_stage)
        self.call_after_refresh(self.live.start_warmup)  # after the first paint: torch loads off-thread

    def _remember_theme(self, theme: Theme) -> None:
        """Persist the chosen theme in the workspace config."""
        if theme.name != self.workspace.config["ui.theme"]:
            try:
                self.workspace.set_setting("ui.theme", theme.name)
            except (EngineError, OSError) as exc:
                self.notify(f"could not save the theme choice: {exc}", severity="error")

    # -- actions -------------------------------------------------------------------------
    def action_stage(self, name: str) -> None:
        """Go to a stage's screen."""
        if name in self.MODES and self.current_mode != name:
            self.switch_mode(name)

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
        parts = [f"task {self.task_name}"] if self.task_name else []
        parts.append(f"datasets {self.count('datasets'):,}")
        if embedder:
            parts.append(f"embedder {embedder}")
        return " · ".join(parts)

    def on_unmount(self) -> None:
        self.live.shutdown()
        self.workspace.close()
