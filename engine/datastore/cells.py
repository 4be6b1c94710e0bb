"""From a source record to the datastore's cells: ``{column: text}``, the way the datastore stores it.

* nested fields are flattened (``a.b`` → ``a_b``); lists and remaining dicts become JSON text;
* label ids become label names where the schema knows them (Hugging Face ``ClassLabel`` features in the
  Parquet/Arrow metadata or the card; Arrow dictionary columns decode to their values);
* binary columns and image/audio structs (``{"bytes", "path"}``) are skipped; ``None`` and empty strings
  are skipped; values are kept exactly as stored otherwise (``str(value)`` for numbers and booleans);
* a cell longer than :data:`MAX_CELL_CHARS` is dropped and reported;
* a lone surrogate (JSON's unpaired ``"\\ud800"``), which UTF-8 and so DuckDB cannot store, becomes U+FFFD in
  texts and column names, and is reported;
* repeated column names (a CSV header, an Arrow schema) are kept apart as ``a``, ``a_2``, ... (:func:`unique_names`).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from decimal import Decimal
from typing import Any

MAX_CELL_CHARS = 1_000_000
"""Cells longer than this (1 M characters) are dropped and reported: no embedder reads that far."""
LONE_SURROGATES = ("lone surrogate(s) (unpaired \\ud800-\\udfff escapes, which UTF-8 cannot store) replaced by "
                   "U+FFFD")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


# -- label names from Hugging Face feature descriptions ----------------------------------------
def class_labels(features: Any, prefix: str = "") -> dict[str, list[str]]:
    """``{flat column: [label names]}`` from an HF ``features`` description (dict or list form)."""
    out: dict[str, list[str]] = {}
    if isinstance(features, list):  # card front matter: [{"name": ..., "dtype": {"class_label": {...}}}]
        for feat in features:
            if isinstance(feat, dict) and "name" in feat:
                out.update(class_labels({feat["name"]: feat.get("dtype", feat)}, prefix))
        return out
    if not isinstance(features, dict):
        return out
    for name, spec in features.items():
        col = f"{prefix}{name}"
        if not isinstance(spec, dict):
            continue
        kind = spec.get("_type")
        if kind == "ClassLabel" and isinstance(spec.get("names"), list):
            out[col] = [str(n) for n in spec["names"]]
        elif kind in ("Sequence", "List", "LargeList") and isinstance(spec.get("feature"), dict):
            inner = spec["feature"]
            if inner.get("_type") == "ClassLabel" and isinstance(inner.get("names"), list):
                out[col] = [str(n) for n in inner["names"]]
        elif isinstance(spec.get("class_label"), dict):
            names = spec["class_label"].get("names")
            if isinstance(names, dict):
                try:
                    out[col] = [str(names[k]) for k in sorted(names, key=lambda k: int(k))]
                except (TypeError, ValueError):
                    pass
            elif isinstance(names, list):
                out[col] = [str(n) for n in names]
        elif isinstance(spec.get("struct"), (list, dict)):
            out.update(class_labels(spec["struct"], f"{col}_"))
        elif kind is None and spec and all(isinstance(v, dict) for v in spec.values()):
            out.update(class_labels(spec, f"{col}_"))
    return out


def hf_labels(metadata: dict[bytes, bytes] | None) -> dict[str, list[str]]:
    """Label names from the Hugging Face ``features`` that Parquet/Arrow files written by ``datasets`` carry."""
    if not metadata or b"huggingface" not in metadata:
        return {}
    try:
        info = json.loads(metadata[b"huggingface"])
    except (ValueError, RecursionError):
        return {}
    if not isinstance(info, dict):
        return {}
    inner = info.get("info")
    features = (inner.get("features") if isinstance(inner, dict) else None) or info.get("features")
    return class_labels(features) if features else {}


# -- flattening ----------------------------------------------------------------------------------
def _is_media(value: dict) -> bool:
    """An HF Image/Audio cell: ``{"bytes": b"...", "path": ...}`` (maybe with ``array``/``sampling_rate``)."""
    keys = set(value)
    return bool(keys) and keys <= {"bytes", "path", "array", "sampling_rate"} and (
        isinstance(value.get("bytes"), (bytes, bytearray)) or "array" in keys or value.get("bytes") is None)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (bytes, bytearray)):
        raise TypeError("binary")
    if isinstance(obj, (_dt.date, _dt.datetime, _dt.time)):
        return obj.isoformat()
    if isinstance(obj, Decimal):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def cell_text(value: Any) -> str | None:
    """The text of one (already flattened) value, or None when it is empty, binary or NaN."""
    if value is None:
        return None
    if isinstance(value, str):
        return value if value != "" else None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return None if math.isnan(value) else str(value)
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, (_dt.date, _dt.datetime, _dt.time)):
        return value.isoformat()
    if isinstance(value, (list, tuple, dict)):
        if not value:
            return None
        try:
            return json.dumps(value, ensure_ascii=False, default=_json_default)
        except (TypeError, ValueError):
            return None  # contains binary data
    return str(value)


def flatten_row(record: dict[str, Any], labels: dict[str, list[str]] | None = None,
                prefix: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a_b": 1}``; label ids → names; media and binary skipped (raw values)."""
    out = {} if out is None else out
    for key, value in record.items():
        col = f"{prefix}{key}"
        if isinstance(value, dict):
            if _is_media(value):
                continue
            if value:
                flatten_row(value, labels, f"{col}_", out)
            continue
        if isinstance(value, (bytes, bytearray, memoryview)):
            continue
        if labels and col in labels and isinstance(value, int) and not isinstance(value, bool):
            names = labels[col]
            value = names[value] if 0 <= value < len(names) else value
        elif labels and col in labels and isinstance(value, list):
            names = labels[col]
            value = [names[v] if isinstance(v, int) and 0 <= v < len(names) else v for v in value]
        if col in out:  # {"a_b": 1, "a": {"b": 2}} flattens both to a_b: the second is kept apart
            k = 2
            while f"{col}_{k}" in out:
                k += 1
            col = f"{col}_{k}"
        out[col] = value
    return out


def storable(text: str) -> tuple[str, bool]:
    """``text`` with lone surrogates replaced by U+FFFD, and whether it held any (a surrogate pair in JSON is
    already one character; only an unpaired half is left in a Python string)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE_RE.sub("\ufffd", text), True
    return text, False


def texts_of(flat: dict[str, Any], path: str, notes: list[tuple[str, str]]) -> dict[str, str | None]:
    """Flattened raw values → ``{column: text or None}``, dropping (and noting) oversized cells and making
    every text and column name storable (noted once per row)."""
    row: dict[str, str | None] = {}
    replaced = False
    for col, value in flat.items():
        text = cell_text(value)
        col, bad_name = storable(str(col))
        if text is not None and len(text) > MAX_CELL_CHARS:
            notes.append((path, f"cell {col!r} holds {len(text):,} characters, over the "
                                f"{MAX_CELL_CHARS:,}-character limit; that cell was skipped"))
            text = None
        bad_text = False
        if text is not None:
            text, bad_text = storable(text)
        replaced = replaced or bad_name or bad_text
        row[col] = text
    if replaced:
        notes.append((path, LONE_SURROGATES))
    return row


def unique_names(names: list[str]) -> list[str]:
    """Column names made unique in order: a repeat of ``a`` becomes ``a_2`` (``a_3``... when taken), so no
    column overwrites another; names that are not repeats are kept as they are."""
    reserved = set(names)  # a renamed repeat never takes a name the header itself uses later
    used: set[str] = set()
    out = []
    for name in names:
        new = name
        if new in used:
            k = 2
            while f"{name}_{k}" in used or f"{name}_{k}" in reserved:
                k += 1
            new = f"{name}_{k}"
        used.add(new)
        out.append(new)
    return out


def renamed_note(names: list[str], unique: list[str]) -> str | None:
    """The note for columns :func:`unique_names` renamed (None when none were)."""
    moved = [f"{a!r} as {b!r}" for a, b in zip(names, unique, strict=True) if a != b]
    if not moved:
        return None
    return "repeated column name(s) kept apart: " + ", ".join(moved[:5]) + (" ..." if len(moved) > 5 else "")
