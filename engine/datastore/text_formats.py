"""The text formats: JSON Lines, JSON and CSV/TSV (``.gz`` too), read whole as UTF-8 into records.

A problem that spoils the file raises :class:`~engine.datastore.tables.FileProblem`; one confined to some
lines or fields is kept as a note: a malformed or too deeply nested JSONL line is skipped, a CSV header that
repeats a name or a row with more fields than the header keeps every field, renamed.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from pathlib import Path
from typing import Any

from engine.datastore.cells import renamed_note, unique_names
from engine.datastore.tables import FileProblem, Table

WRAPPER_KEYS = ("data", "rows", "records", "examples", "instances", "items", "train", "dataset", "samples")
"""Keys under which a JSON document commonly wraps its list of records."""


def open_text(path: Path) -> str:
    """Whole file as UTF-8 text (BOM allowed); FileProblem on a wrong encoding or an empty file."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.name.lower().endswith(".gz") else path.read_bytes()
    except PermissionError:
        raise  # read_table says it the one way
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise FileProblem(f"cannot read it ({exc})") from None
    if not raw.strip():
        raise FileProblem("empty file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileProblem(f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}) — "
                          "re-save it as UTF-8") from None


def read_jsonl(path: Path) -> Table:
    """One JSON object per line. Lines end at a newline only: a string may hold a raw U+2028 or form feed,
    which ``str.splitlines`` would cut. A malformed line, or one nested deeper than the parser goes, is
    skipped and noted; the rest of the file is read."""
    text = open_text(path)
    records: list[dict[str, Any]] = []
    bad: list[int] = []
    deep: list[int] = []
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            bad.append(lineno)
            continue
        except RecursionError:
            deep.append(lineno)
            continue
        if isinstance(obj, dict):
            records.append(obj)
        else:
            bad.append(lineno)
    if not records and (bad or deep):
        first = min(bad + deep)
        raise FileProblem(f"no readable JSON object on any of its {len(bad) + len(deep)} lines "
                          f"(first bad line {first})")
    notes = [(str(path), f"{len(lines)} {what} line(s) skipped (line {_line_list(lines)}); {len(records)} rows read")
             for what, lines in (("malformed", bad), ("too deeply nested", deep)) if lines]
    return Table(len(records), records=records, notes=notes)


def _line_list(lines: list[int]) -> str:
    return ", ".join(map(str, lines[:5])) + (", ..." if len(lines) > 5 else "")


def records_from_json(obj: Any) -> list[dict[str, Any]] | None:
    if isinstance(obj, list):
        return obj if obj and all(isinstance(r, dict) for r in obj) else None
    if not isinstance(obj, dict):
        return None
    for key in WRAPPER_KEYS:
        if isinstance(obj.get(key), list):
            found = records_from_json(obj[key])
            if found is not None:
                return found
    lists = [v for v in obj.values() if isinstance(v, list)]
    if len(lists) == 1 and records_from_json(lists[0]) is not None:
        return lists[0]
    # a dict of equal-length columns: {"question": [...], "answer": [...]}
    if obj and all(isinstance(v, list) for v in obj.values()):
        lengths = {len(v) for v in obj.values()}
        if len(lengths) == 1 and lengths != {0}:
            n = lengths.pop()
            return [{k: v[i] for k, v in obj.items()} for i in range(n)]
    return None


def read_json(path: Path) -> Table:
    text = open_text(path)
    try:
        obj = json.loads(text)
    except ValueError as exc:
        # maybe it is JSON Lines with a .json suffix
        first = text.lstrip()[:1]
        if first == "{" and "\n" in text.strip():
            return read_jsonl(path)
        raise FileProblem(f"not valid JSON ({exc})") from None
    records = records_from_json(obj)
    if records is None:
        raise FileProblem("JSON holds no list of records (expected [{...}, ...] or {\"data\": [{...}, ...]})")
    return Table(len(records), records=records)


def read_csv(path: Path, delimiter: str) -> Table:
    """CSV/TSV with a header row. Repeated header names are kept apart (``a``, ``a_2``); fields past the
    header's end are kept as ``_extra_1``, ``_extra_2``...; both are noted, nothing is dropped."""
    text = open_text(path)
    csv.field_size_limit(1 << 30)
    kind = "TSV" if delimiter == "\t" else "CSV"
    notes: list[tuple[str, str]] = []
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        first = next(reader, None)
        if not first or not any(h.strip() for h in first):
            raise FileProblem("no header row")
        raw_header = [h.strip() or f"column_{i}" for i, h in enumerate(first)]
        header = unique_names(raw_header)
        renamed = renamed_note(raw_header, header)
        if renamed:
            notes.append((str(path), renamed))
        extra: list[str] = []  # names of the fields past the header, grown as rows need them
        long_rows, first_long = 0, 0
        records = []
        for values in reader:
            if not values:
                continue
            if len(values) > len(header):
                long_rows += 1
                first_long = first_long or reader.line_num
                while len(header) + len(extra) < len(values):
                    extra.append(unique_names([*header, *extra, f"_extra_{len(extra) + 1}"])[-1])
            names = header if len(values) <= len(header) else [*header, *extra]
            record = {h: (values[i] if i < len(values) else None) for i, h in enumerate(names)}
            records.append(record)
    except csv.Error as exc:
        raise FileProblem(f"not valid {kind} ({exc})") from None
    if not records:
        raise FileProblem("no data rows below the header")
    if long_rows:
        notes.append((str(path), f"{long_rows} row(s) have more fields than the header's {len(header)} "
                                 f"(first: line {first_long}); the extra fields are kept as "
                                 + ", ".join(extra[:5]) + (" ..." if len(extra) > 5 else "")))
    return Table(len(records), records=records, notes=notes)
