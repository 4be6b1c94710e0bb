"""The Train screen's student form: the hyper-parameters a run is started with, typed and checked."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Select

from engine.errors import EngineError
from engine.student.run_config import METHODS

#: Form fields: (id, label, workspace setting shown at first or None, type).
FIELDS: tuple[tuple[str, str, str | None, type], ...] = (
    ("student", "student", "student.model", str),
    ("epochs", "epochs", "student.epochs", float),
    ("max_steps", "max steps", None, int),
    ("lr", "learning rate", "student.lr", float),
    ("batch_size", "batch size", "student.batch_size", int),
    ("grad_accum", "grad accum", "student.grad_accum", int),
    ("max_length", "max length", "student.max_length", int),
    ("eval_every", "eval every", None, int),
)


class StudentForm(Vertical):
    """One labelled input per field (ids ``tr-<field>``) and the method (``tr-method``).

    :meth:`values` gives what the user typed as run-setting overrides: empty fields keep the workspace's
    settings, and the method is sent only when chosen.
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "student (ctrl+j starts)"

    def compose(self) -> ComposeResult:
        for fid, label, _key, _kind in FIELDS:
            with Horizontal(classes="field"):
                yield Label(label)
                yield Input(id=f"tr-{fid}", compact=True)
        with Horizontal(classes="field"):
            yield Label("method")
            yield Select([(m, m) for m in METHODS], id="tr-method", value="auto", allow_blank=False, compact=True)

    def fill(self, config: Any) -> None:
        """Show the workspace's ``student.*`` settings (the method only when set there explicitly)."""
        for fid, _label, key, _kind in FIELDS:
            if key is not None:
                self.query_one(f"#tr-{fid}", Input).value = str(config[key] or "")
        method = str(config["student.method"])
        if method in METHODS and config.sources.get("student.method", "default") != "default":
            self.query_one("#tr-method", Select).value = method

    def values(self) -> dict[str, Any]:
        """The filled fields, typed; an EngineError names a field that does not parse."""
        values: dict[str, Any] = {}
        for fid, label, _key, kind in FIELDS:
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
        return values
