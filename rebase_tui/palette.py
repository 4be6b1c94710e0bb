"""Command-palette providers: go to a stage, select a task, switch theme."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

from rebase_tui.widgets.stage_bar import STAGES

if TYPE_CHECKING:
    from rebase_tui.app import RebaseApp


class StageCommands(Provider):
    """``Go to <stage>`` for every stage, ``Task: <name>`` for every task, and ``Theme: <name>`` for every theme."""

    def _commands(self) -> list[tuple[str, object, str]]:
        app: RebaseApp = self.app  # type: ignore[assignment]
        cmds: list[tuple[str, object, str]] = [
            (f"Go to {label} stage", partial(app.action_stage, name), f"switch to the {label} screen ({key.upper()})")
            for name, key, label in STAGES
        ]
        from engine.tasks import list_tasks

        for task in list_tasks(app.workspace):
            cmds.append((f"Task: {task.name}", partial(app.select_task, task.name),
                         "select this task on every screen (F8 lists them)"))
        for theme in sorted(app.available_themes):
            cmds.append((f"Theme: {theme}", partial(app.set_theme, theme), "switch theme (remembered)"))
        return cmds

    async def discover(self) -> Hits:
        for text, command, help_ in self._commands():
            if text.startswith(("Go to", "Task:")):
                yield DiscoveryHit(text, command, help=help_)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, command, help_ in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), command, text=text, help=help_)
