"""Helpers to show ranked retrieval rows: the preview and detail of a row, and the control parsers.

A ranked row is an :class:`engine.retrieval.results.RowHit`. Its text (cells, dataset ids) is untrusted:
everything here builds :class:`~textual.content.Content` from plain strings, never markup, shown inertly
and bounded (:mod:`rebase_tui.widgets.text`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from textual.content import Content

from rebase_tui.widgets.text import one_line, shown

if TYPE_CHECKING:
    from engine.retrieval.results import RowHit


def cell_text(value: Any) -> str:
    """A cell value as text (lists and dicts as JSON)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def row_preview(r: RowHit, width: int = 200) -> str:
    """The best input cell's text on one inert line, cut to ``width`` characters (the table shows the start)."""
    return one_line(r.input_text, width)


def row_detail(r: RowHit) -> Content:
    """The full row with its provenance and scores; the cells that gave the input and output scores are
    highlighted and labelled. All row text is shown verbatim."""
    parts: list[str | tuple[str, str]] = [(f"#{r.rank}  ", "bold"), (shown(r.dataset_id, 200), "bold $accent")]
    if r.config:
        parts.append(f"  config {shown(r.config, 200)}")
    parts.append(f"  row {r.row_id}\n")
    parts.append(f"final {r.score:.3f}   in {r.input_score:.3f}   out {r.output_score:.3f}   "
                 f"ds {r.dataset_score:.3f}\n")
    for column, value in r.row.items():
        tags = []
        if column == r.input_column:
            tags.append("input score")
        if column == r.output_column:
            tags.append("output score")
        parts.append("\n")
        name = shown(str(column), 200)
        if tags:
            parts.append((f"▶ {name}  ← {' + '.join(tags)}", "bold $success"))
            parts.append("\n")
            parts.append((shown(cell_text(value)), "$text on $success 15%"))
        else:
            parts.append((name, "bold $foreground-muted"))
            parts.append("\n")
            parts.append(shown(cell_text(value)))
        parts.append("\n")
    return Content.assemble(*parts)


def parse_int(text: str) -> int | None:
    """A whole number, or None."""
    try:
        return int(text.strip())
    except ValueError:
        return None


def format_weights(w: tuple[float, float, float]) -> str:
    """``(1.0, 1.0, 0.5)`` → ``1,1,0.5``."""
    return ",".join(f"{x:g}" for x in w)
