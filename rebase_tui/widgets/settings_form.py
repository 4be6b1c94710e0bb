"""Form fields that are workspace settings: the field shows the setting, a value typed there is saved in the
workspace's config.toml (``app.choose``: in effect at once, on every screen, and after a restart), and the
environment variable that decides a setting instead of the form is named beside it.

A :class:`SettingsFields` belongs to a screen and knows its ``{"#field-id": "setting.key"}`` map; the screen
calls :meth:`show` when the settings change, :meth:`save` when a field is left or submitted, and puts
:meth:`env_note` on screen.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from textual.widgets import Input, Select
from textual.widgets.select import InvalidSelectValueError

if TYPE_CHECKING:
    from engine.config import Config
    from rebase_tui.app import RebaseApp
    from rebase_tui.screens.base import StageScreen


class SettingsFields:
    """The settings behind some of a screen's fields."""

    def __init__(self, screen: StageScreen, fields: Mapping[str, str]) -> None:
        self.screen = screen
        self.fields = dict(fields)

    @property
    def app(self) -> RebaseApp:
        return self.screen.rebase

    def show(self, cfg: Config) -> None:
        """Put the settings into their fields; a field being edited keeps what is typed, and a dropdown
        shows a value only when it is one of its options."""
        for wid, key in self.fields.items():
            field = self.screen.query_one(wid)
            if field.has_focus:
                continue
            value = str(cfg[key])
            if isinstance(field, Input) and field.value != value:
                field.value = value
            elif isinstance(field, Select) and field.value != value:
                try:
                    with field.prevent(Select.Changed):
                        field.value = value
                except InvalidSelectValueError:  # not among the options (yet): the field keeps its value
                    pass

    def save(self, wid: str) -> bool:
        """Save field ``wid``'s value as its setting (when it has one and the value changed); True when a new
        value was saved. A value of the wrong type is refused with a notification."""
        key = self.fields.get(wid)
        if key is None:
            return False
        field = self.screen.query_one(wid)
        value = field.value.strip() if isinstance(field, Input) else field.value
        if not isinstance(value, str) or not value or value == str(self.app.workspace.config[key]):
            return False
        return self.app.choose(key, value)

    def env_note(self, cfg: Config) -> str:
        """Where the environment decides a setting instead of the form (empty when nowhere)."""
        notes = []
        for key in self.fields.values():
            source = cfg.sources.get(key, "")
            name = key.split(".", 1)[1]
            if source.startswith("env:"):
                notes.append(f"{name} from ${source[4:]}")
            elif variable := self.app.workspace.overridden_by(key):
                notes.append(f"{name} chosen here; ${variable} wins again at the next start")
        return "ⓘ " + " · ".join(notes) if notes else ""
