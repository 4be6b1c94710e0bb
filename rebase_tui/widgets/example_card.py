"""An example (input, output, reasoning, status) and the source row it was written from.

Everything shown comes from datasets or the teacher model, so it is wrapped in ``Content`` (never parsed
as markup: brackets display verbatim).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from engine.review import ExampleRecord
from rebase_tui.widgets.text import plain, shown


def _section(title: str, body: str) -> Content:
    return Content.assemble((shown(title, 200), "bold $text-accent"), "\n", plain(body) if body else "—", "\n")


class ExampleCard(VerticalScroll):
    """The selected example: status line, then input, output and reasoning."""

    DEFAULT_CSS = """
    ExampleCard { height: 1fr; padding: 0 1; }
    ExampleCard > #card-body { height: auto; }
    ExampleCard.-streaming > #card-body { color: $foreground-muted; }
    """

    shown_id: int | None = None
    """The id of the example on the card (None: blank)."""
    shown: ExampleRecord | None = None
    """The example on the card."""

    def compose(self) -> ComposeResult:
        yield Static("", id="card-body")

    def show(self, example: ExampleRecord | None, missing_id: int | None = None) -> None:
        """Show ``example``, or a blank card (naming ``missing_id`` when that example no longer exists)."""
        body = self.query_one("#card-body", Static)
        self.shown = example
        self.shown_id = example.id if example is not None else missing_id
        if example is None:
            body.update(Content("no example selected" if missing_id is None
                                else f"example #{missing_id} no longer exists"))
            return
        line = f"#{example.id} · {example.status}"
        if example.edited:
            line += " · edited"
        if example.votes:
            line += f" · votes {example.votes} agree"
        if example.reason:
            line += f" · {example.reason}"
        if example.teacher_model:
            line += f" · {example.teacher_model}"
        parts = [Content.styled(shown(line, 500) + "\n", "$foreground-muted"), _section("Input", example.input),
                 _section("Output", example.output)]
        if example.reasoning:
            parts.append(_section("Reasoning", example.reasoning))
        if example.status == "failed" and example.raw_response:
            parts.append(_section("Raw response", example.raw_response))
        body.update(Content("\n").join(parts))
        self.scroll_home(animate=False)


    def restatus(self, status: str) -> None:
        """Show the example on the card in state ``status`` (a decision painted before it is written)."""
        if self.shown is not None and self.shown.status != status:
            import dataclasses

            self.show(dataclasses.replace(self.shown, status=status, reason=None))


class SourceRowView(VerticalScroll):
    """The source row of an example: where it comes from, then each field."""

    DEFAULT_CSS = """
    SourceRowView { height: 1fr; padding: 0 1; }
    SourceRowView > #source-origin { color: $foreground-muted; height: auto; margin-bottom: 1; }
    SourceRowView > #source-body { height: auto; }
    """

    shown_origin: str | None = None
    """The origin line on show (the same source row is not redrawn)."""

    def compose(self) -> ComposeResult:
        yield Static("", id="source-origin")
        yield Static("", id="source-body")

    def show(self, origin: str, data: Mapping[str, Any] | str | None) -> None:
        """Show a row's ``origin`` (dataset/config/row id) and its fields (a mapping or JSON text)."""
        self.shown_origin = origin
        self.query_one("#source-origin", Static).update(plain(origin, 500))
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                data = {"row": data}
        if not data:
            self.query_one("#source-body", Static).update(Content("no source row (imported example)"))
            return
        parts = [_section(str(k), v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))
                 for k, v in dict(data).items()]
        self.query_one("#source-body", Static).update(Content("\n").join(parts))
        self.scroll_home(animate=False)
