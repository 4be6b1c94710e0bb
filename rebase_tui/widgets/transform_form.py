"""The Transform screen's form: the teacher (server, host, model) on one line, the run (temperature,
reasoning, parallel requests, rows, samples per row) on the next.

Each label sits beside its field, so both lines fit an 80-column terminal with the host and the model
readable; a wide terminal gives the host and the model the room. The fields that are workspace settings
(:data:`FORM_SETTINGS`) show config.toml and save a value typed or picked there
(:class:`~rebase_tui.widgets.settings_form.SettingsFields`), and a line under them names an environment
variable that decides a setting instead. When the server, host or model changes, the form posts
:class:`TransformForm.TeacherChanged` (the screen checks the teacher again); the screen reads the run's
values back through :meth:`TransformForm.teacher_settings`, :meth:`limit`, :meth:`samples` and :meth:`cot`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Input, Label, Select, Static

from engine.errors import EngineError
from rebase_tui.widgets.settings_form import SettingsFields

if TYPE_CHECKING:
    from engine.config import Config
    from engine.teacher.client import TeacherSettings
    from rebase_tui.screens.base import StageScreen

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
    "#t-samples": "answers asked per row: 1, or 3 or more to keep an example only when most of them agree",
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
    TransformForm #t-limit { width: 7; }
    TransformForm #t-samples { width: 4; }
    TransformForm #t-env-note { display: none; height: auto; color: $foreground-muted; padding: 0 1; }
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
            yield Label("samples", classes="-next")
            yield Input(id="t-samples", compact=True, type="integer", placeholder="1")
        yield Static("", id="t-env-note")

    class TeacherChanged(Message):
        """The server, host or model changed (typed and left, picked, or changed in config.toml): the screen
        checks the teacher again."""

    def on_mount(self) -> None:
        for wid, tip in FIELD_TIPS.items():
            self.query_one(wid).tooltip = tip
        screen: StageScreen = self.screen  # type: ignore[assignment]
        self.fields = SettingsFields(screen, FORM_SETTINGS)
        self.fields.show(screen.rebase.workspace.config)
        self._show_env_note()
        screen.rebase.config_signal.subscribe(self, self._config_changed)

    # -- settings: shown from config.toml, saved there -----------------------------------------
    def _show_env_note(self) -> None:
        text = self.fields.env_note(self.fields.app.workspace.config)
        note = self.query_one("#t-env-note", Static)
        note.display = bool(text)
        note.update(Content(text))

    def _config_changed(self, cfg: Config) -> None:
        before = (self.query_one("#t-host", Input).value, self.query_one("#t-model", Select).value)
        self.fields.show(cfg)
        self._show_env_note()
        after = (self.query_one("#t-host", Input).value, self.query_one("#t-model", Select).value)
        if after != before or cfg["teacher.model"] != after[1]:
            self.post_message(self.TeacherChanged())

    @on(Input.Blurred)
    def _field_left(self, event: Input.Blurred) -> None:
        if event.input.id and self.fields.save(f"#{event.input.id}"):
            self._show_env_note()

    @on(Input.Submitted)
    def _field_done(self, event: Input.Submitted) -> None:
        if event.input.id:
            self.fields.save(f"#{event.input.id}")
        if event.input.id == "t-host":
            self.post_message(self.TeacherChanged())

    @on(Select.Changed, "#t-backend")
    def _backend_changed(self, event: Select.Changed) -> None:
        """Another backend: a host left at the other backend's configured value follows, and the check reruns."""
        if not isinstance(event.value, str):
            return
        host = self.query_one("#t-host", Input)
        cfg = self.fields.app.workspace.config
        others = {configured_host(cfg, b) for b in BACKENDS if b != event.value}
        if not host.value.strip() or host.value.strip() in others:
            host.value = configured_host(cfg, event.value)
        self.fields.save("#t-backend")
        self.post_message(self.TeacherChanged())

    @on(Select.Changed, "#t-model")
    def _model_chosen(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.fields.save("#t-model")

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

    def samples(self) -> int:
        """The answers to ask per row: 1, or at least three that vote (EngineError otherwise)."""
        from engine.teacher.consistency import MIN_SAMPLES

        value = self._number("#t-samples", int)
        if value is None:
            return 1
        if value != 1 and value < MIN_SAMPLES:
            raise EngineError(f"samples {value}: a majority vote needs at least {MIN_SAMPLES} answers",
                              fix=f"type {MIN_SAMPLES} or more (an odd number avoids ties), or 1 for one answer per row")
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
