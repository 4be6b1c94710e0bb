"""Helpers to show ranked retrieval rows: field access, the detail view, the control parsers.

A ranked row comes from :meth:`engine.retrieval.retriever.Retriever.search`. Its text (cells, dataset ids) is
untrusted: everything here builds :class:`~textual.content.Content` from plain strings, never markup.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from textual.content import Content

_MISSING = object()


def field(obj: Any, name: str, default: Any = None) -> Any:
    """``obj.name`` or ``obj[name]`` (rows may be dataclasses or dicts), else ``default``."""
    if obj is None:
        return default
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    value = getattr(obj, name, _MISSING)
    return default if value is _MISSING else value


def row_data(r: Any) -> dict[str, Any]:
    """The full row of a ranked result as a dict of column → value."""
    data = field(r, "row", None)
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            data = {"row": data}
    return dict(data) if isinstance(data, dict) else {}


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


def row_cell(r: Any, column: str | None) -> str:
    """The text of ``column`` in the row of ``r`` ('' when absent)."""
    if not column:
        return ""
    return cell_text(row_data(r).get(column))


def row_detail(r: Any) -> Content:
    """The full row with its provenance and scores; the cells that gave the input and output scores are
    highlighted and labelled. All row text is shown verbatim."""
    in_col, out_col = field(r, "input_column"), field(r, "output_column")
    parts: list[str | tuple[str, str]] = [
        (f"#{field(r, 'rank')}  ", "bold"),
        (str(field(r, "dataset_id", "")), "bold $accent"),
    ]
    config = field(r, "config")
    if config:
        parts.append(f"  config {config}")
    row_id = field(r, "row_id")
    if row_id is not None:
        parts.append(f"  row {row_id}")
    parts.append("\n")
    parts.append(f"final {_num(field(r, 'score'))}   in {_num(field(r, 'input_score'))}   "
                 f"out {_num(field(r, 'output_score'))}   ds {_num(field(r, 'dataset_score'))}\n")
    for column, value in row_data(r).items():
        tags = []
        if column == in_col:
            tags.append("input score")
        if column == out_col:
            tags.append("output score")
        parts.append("\n")
        if tags:
            parts.append((f"▶ {column}  ← {' + '.join(tags)}", "bold $success"))
            parts.append("\n")
            parts.append((cell_text(value), "$text $success 15%"))
        else:
            parts.append((column, "bold $text-muted"))
            parts.append("\n")
            parts.append(cell_text(value))
        parts.append("\n")
    return Content.assemble(*parts)


def _num(x: Any) -> str:
    return f"{x:.3f}" if isinstance(x, (int, float)) else "—"


def parse_int(text: str) -> int | None:
    """A whole number, or None."""
    try:
        return int(text.strip())
    except ValueError:
        return None


def parse_weights(text: str) -> tuple[float, float, float]:
    """``"IN,OUT,DS"`` → three non-negative weights with a positive sum (ValueError naming the fix)."""
    try:
        w = tuple(float(p) for p in text.split(","))
    except ValueError:
        raise ValueError(f"weights {text!r} are not numbers: write IN,OUT,DS like 1,1,1") from None
    if len(w) != 3 or any(not math.isfinite(x) or x < 0 for x in w) or sum(w) <= 0:
        raise ValueError(f"weights {text!r} must be three non-negative numbers IN,OUT,DS with a positive sum")
    return (w[0], w[1], w[2])


def format_weights(w: tuple[float, float, float]) -> str:
    """``(1.0, 1.0, 0.5)`` → ``1,1,0.5``."""
    return ",".join(f"{x:g}" for x in w)
