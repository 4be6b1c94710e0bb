"""A command-palette provider that offers every keyed action of the current screen.

Put it in a screen's ``COMMANDS``: the palette (ctrl+p) then lists the screen's own bindings and those of
its widgets (the examples table's "Add example", the results table's "Exclude dataset"...), each named
``<Stage>: <description>`` with its key, so every action reachable by a key is also reachable by name. Only
the app's own bindings are listed (they have an id); Textual's cursor and editing keys are not.
A widget's action runs with that widget as its namespace, as if its key had been pressed there.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.dom import DOMNode


def _bindings(node: DOMNode) -> Iterator[Binding]:
    for binding in type(node).BINDINGS:
        if isinstance(binding, Binding):
            yield binding


def screen_actions(screen: DOMNode) -> list[tuple[str, str, DOMNode, str]]:
    """``(title, action, namespace, key)`` for every described binding of ``screen`` and its widgets."""
    seen: set[str] = set()
    out: list[tuple[str, str, DOMNode, str]] = []
    stage = getattr(screen, "STAGE", "") or type(screen).__name__
    for node in [screen, *screen.query("*")]:
        for binding in _bindings(node):
            # the app's own actions only: Textual's widget bindings (cursor moves, "Move cursor left and
            # select", ...) carry no id, and their keys are the ones everyone knows
            if not binding.id or not binding.description or binding.action in seen \
                    or binding.action.startswith("app.stage"):
                continue
            seen.add(binding.action)
            key = binding.key_display or binding.key.split(",")[0]
            out.append((f"{stage.title()}: {binding.description}", binding.action, node, key))
    return out


class ScreenActions(Provider):
    """The current screen's keyed actions, by name."""

    def _commands(self) -> list[tuple[str, object, str]]:
        return [(title, partial(self.app.run_action, action, node), f"key: {key}" + (
                 f" — {binding_help}" if (binding_help := _tooltip(node, action)) else ""))
                for title, action, node, key in screen_actions(self.screen)]

    async def discover(self) -> Hits:
        for title, command, help_ in self._commands():
            yield DiscoveryHit(title, command, help=help_)  # type: ignore[arg-type]

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, command, help_ in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), command, text=title, help=help_)  # type: ignore[arg-type]


def _tooltip(node: DOMNode, action: str) -> str:
    for binding in _bindings(node):
        if binding.action == action:
            return binding.tooltip or ""
    return ""
