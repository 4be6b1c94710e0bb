"""The Train screen's student form: the recipe and the hyper-parameters a run is started with, typed and checked.

Picking a recipe refills the fields with the values it trains with (the workspace's ``student.*`` settings,
then the recipe's, from :func:`engine.student.run_config.recipe_values`); whatever the user then edits wins,
as a flag does on the command line.
"""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, Label, Select

from engine.errors import EngineError
from engine.student.recipes import RECIPES
from engine.student.run_config import METHODS, recipe_values
from engine.student.schedule import SCHEDULERS

#: Typed fields: (id, label, type); the id is the run setting (LoRA's flat), the input's id ``tr-<id>``.
FIELDS: tuple[tuple[str, str, type], ...] = (
    ("student", "student", str),
    ("epochs", "epochs", float),
    ("max_steps", "max steps", int),
    ("lr", "learning rate", float),
    ("warmup_steps", "warm-up steps", int),
    ("weight_decay", "weight decay", float),
    ("batch_size", "batch size", int),
    ("grad_accum", "grad accum", int),
    ("max_length", "max length", int),
    ("lora_r", "LoRA r", int),
    ("lora_alpha", "LoRA alpha", int),
    ("lora_dropout", "LoRA dropout", float),
    ("eval_fraction", "eval fraction", float),
    ("eval_every", "eval every", int),
)
#: Fields that are workspace settings (``tr-<id>`` → key): a value chosen here is saved in config.toml.
SETTING_KEYS: dict[str, str] = {"student": "student.model", "epochs": "student.epochs", "lr": "student.lr",
                                "batch_size": "student.batch_size", "grad_accum": "student.grad_accum",
                                "max_length": "student.max_length"}
#: Choices: (id, label, options); the select's id is ``tr-<id>``.
CHOICES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("method", "method", METHODS),
    ("scheduler", "schedule", SCHEDULERS),
    ("load_in_4bit", "4-bit base", ("auto", "on", "off")),
)
_4BIT = {"auto": None, "on": True, "off": False}


class StudentForm(Vertical):
    """The student (``tr-student``) and the recipe (``tr-recipe``), then one labelled input per other field
    (``tr-<field>``) and the choices, in a scroll of bounded height so the runs list below keeps its room.

    :meth:`values` gives what the form holds as run-setting overrides: empty fields keep the recipe's or the
    workspace's value; ``auto`` choices are left to the engine (the method by the student's size, 4-bit
    weights by the recipe and the device).
    """

    DEFAULT_CSS = """
    StudentForm > #tr-fields {
        height: auto; max-height: 9; scrollbar-size-vertical: 1;
        /* the thumb is drawn in block characters: as legible against its track as muted text */
        scrollbar-color: $foreground-muted; scrollbar-color-hover: $foreground; scrollbar-color-active: $accent;
        scrollbar-background: $surface; scrollbar-background-hover: $surface; scrollbar-background-active: $surface;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "student (ctrl+j starts)"
        self._config: Any = None

    def compose(self) -> ComposeResult:
        # the student and the recipe stay in view (the two choices every run makes; alt+1 lands on the
        # student), the hyper-parameters scroll below them
        with Horizontal(classes="field"):
            yield Label(FIELDS[0][1])
            yield Input(id=f"tr-{FIELDS[0][0]}", compact=True)
        with Horizontal(classes="field"):
            yield Label("recipe")
            yield Select([(name, name) for name in RECIPES], id="tr-recipe", value="default", allow_blank=False,
                         compact=True, tooltip="\n".join(f"{r.name}: {r.summary}" for r in RECIPES.values()))
        with VerticalScroll(id="tr-fields"):
            for fid, label, _kind in FIELDS[1:]:
                with Horizontal(classes="field"):
                    yield Label(label)
                    yield Input(id=f"tr-{fid}", compact=True)
            for cid, label, options in CHOICES:
                with Horizontal(classes="field"):
                    yield Label(label)
                    yield Select([(o, o) for o in options], id=f"tr-{cid}", value=options[0], allow_blank=False,
                                 compact=True)

    def fill(self, config: Any, recipe: str | None = None) -> None:
        """Show what a run of ``recipe`` (default: the one picked) would use on this workspace (blank where the
        engine decides later: max steps, eval every, a warm-up of 3 % of the run)."""
        self._config = config
        picked = self.query_one("#tr-recipe", Select).value
        values = recipe_values(config, recipe or (picked if isinstance(picked, str) else None))
        for fid, _label, _kind in FIELDS:
            value = values.get(fid)
            self.query_one(f"#tr-{fid}", Input).value = "" if value is None else str(value)
        for cid, _label, options in CHOICES:
            value = values.get(cid)
            self.query_one(f"#tr-{cid}", Select).value = value if value in options else options[0]

    @on(Select.Changed, "#tr-recipe")
    def _recipe_changed(self, event: Select.Changed) -> None:
        if self._config is not None and isinstance(event.value, str):
            self.fill(self._config, event.value)

    def values(self) -> dict[str, Any]:
        """The filled fields, typed; an EngineError names a field that does not parse."""
        values: dict[str, Any] = {"recipe": self.query_one("#tr-recipe", Select).value}
        for fid, label, kind in FIELDS:
            text = self.query_one(f"#tr-{fid}", Input).value.strip()
            if not text:
                continue
            try:
                values[fid] = kind(text)
            except ValueError:
                raise EngineError(f"{label} {text!r} is not a {kind.__name__}", fix=f"type a {kind.__name__}") \
                    from None
        method = self.query_one("#tr-method", Select).value
        if isinstance(method, str) and method != "auto":
            values["method"] = method
        values["scheduler"] = self.query_one("#tr-scheduler", Select).value
        values["load_in_4bit"] = _4BIT.get(str(self.query_one("#tr-load_in_4bit", Select).value))
        return values
