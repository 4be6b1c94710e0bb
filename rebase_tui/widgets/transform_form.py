"""The Transform screen's form: the teacher (server, host, model) on one line, the run (temperature,
reasoning, parallel requests, rows) on the next.

Each label sits beside its field, so both lines fit an 80-column terminal with the host and the model
readable; a wide terminal gives the host and the model the room. The fields that are workspace settings
(:data:`FORM_SETTINGS`) are saved by the screen through :class:`~rebase_tui.widgets.settings_form.SettingsFields`;
this widget only lays them out and reads them back as typed values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Select

from engine.errors import EngineError

if TYPE_CHECKING:
    from engine.config import Config
    from engine.teacher.client import TeacherSettings

COT_MODES = ("auto", "on", "off")
BACKENDS = ("ollama", "openai")
#: Form fields that are workspace settings: a value chosen here is saved in config.toml.
FORM_SETTINGS = {"#t-backend": "teacher.backend", "#t-host": "teacher.host", "#t-model": "teacher.model",
                 "#t-temperature": "teacher.temperature", "#t-concurrency": "teacher.concurrency"}
#: What each field is for (its tooltip).
FIELD_TIPS = {
    "#t-backend": "ollama, or openai: vLLM, llama.cpp, LM Studio (key from $REBASE_TEACHER_API_KEY)",
    "#t-host": "host (an OpenAI-compatible server's base URL ends in /v1)",
    "#t-model": "teacher model (the models the server offers)",
    "#t-temperature": "temperature",
    "#t-cot": "reasoning: chain of thought (auto, on, off)",
    "#t-concurrency": "requests in parallel (match the server's parallel slots)",
    "#t-limit": "rows of the pool to transform (blank: all)",
}


class TransformForm(Vertical):
    """The teacher's line and the run's line of the Transform form."""

    DEFAULT_CSS = """
    TransformForm { height: auto; margin-top: 1; }
    TransformForm > .t-row { height: 1; }
    TransformForm .t-row > Label { width: auto; padding: 0 1 0 0; color: $foreground-muted; }
    TransformForm .t-row > Label.-next { margin-left: 2; }
    TransformForm #t-backend { width: 10; }
    TransformForm #t-host { width: 1fr; min-width: 16; max-width: 60; }
    TransformForm #t-model { width: 1fr; min-width: 16; max-width: 60; }
    TransformForm #t-temperature { width: 6; }
    TransformForm #t-cot { width: 9; }
    TransformForm #t-concurrency { width: 4; }
    TransformForm #t-limit { width: 8; }
    """

    def compose(self) -> ComposeResult:
        with Horizontal(id="t-row-teacher", classes="t-row"):
            yield Label("server")
            yield Select([(b, b) for b in BACKENDS], id="t-backend", value="ollama", allow_blank=False,
                         compact=True)
            yield Label("host", classes="-next")
            yield Input(id="t-host", compact=True)
            yield Label("model", classes="-next")
            yield Select([], id="t-model", prompt="model", compact=True)
        with Horizontal(id="t-row-run", classes="t-row"):
            yield Label("temp")
            yield Input(id="t-temperature", compact=True, type="number")
            yield Label("reasoning", classes="-next")
            yield Select([(m, m) for m in COT_MODES], id="t-cot", value="auto", allow_blank=False, compact=True)
            yield Label("parallel", classes="-next")
            yield Input(id="t-concurrency", compact=True, type="integer")
            yield Label("rows", classes="-next")
            yield Input(id="t-limit", compact=True, type="integer", placeholder="all")

    def on_mount(self) -> None:
        for wid, tip in FIELD_TIPS.items():
            self.query_one(wid).tooltip = tip

    # -- reading the fields --------------------------------------------------------------------
    def _number(self, wid: str, kind: type) -> Any:
        """The number typed in field ``wid`` (None when blank); EngineError naming the field otherwise."""
        text = self.query_one(wid, Input).value.strip()
        if not text:
            return None
        try:
            return kind(text)
        except ValueError:
            raise EngineError(f"{wid[3:]} {text!r} is not a number", fix="type a number or leave it blank") from None

    def teacher_settings(self, config: Config) -> TeacherSettings:
        """The teacher settings from ``config``, overridden by the form (EngineError when a value is bad)."""
        from engine.teacher.client import TeacherSettings

        model = self.query_one("#t-model", Select).value
        backend = self.query_one("#t-backend", Select).value
        return TeacherSettings.from_config(
            config,
            backend=backend if isinstance(backend, str) else None,
            host=self.query_one("#t-host", Input).value.strip() or None,
            model=model if isinstance(model, str) else None,
            temperature=self._number("#t-temperature", float),
            concurrency=self._number("#t-concurrency", int),
        )

    def limit(self) -> int | None:
        """The rows of the pool to transform (None: all); EngineError for a value that is not one."""
        value = self._number("#t-limit", int)
        if value is not None and value < 1:
            raise EngineError(f"rows {value} is not a number of rows", fix="type 1 or more, or leave it blank (all)")
        return value

    def cot(self) -> str:
        """The chain-of-thought mode chosen (auto, on, off)."""
        return str(self.query_one("#t-cot", Select).value)


def configured_host(config: Config, backend: str) -> str:
    """The host ``config`` gives ``backend`` (its default when the config names none for it)."""
    from engine.teacher.client import TeacherSettings

    try:
        return TeacherSettings.from_config(config, backend=backend).host
    except EngineError:
        return str(config["teacher.host"])
