"""Reading data files into rows of cell texts.

Formats: Parquet, Arrow (IPC file or stream, as ``save_to_disk`` writes), JSONL, JSON (a list of records,
a ``{"data": [...]}``-style wrapper, or a dict of equal-length columns), CSV and TSV; ``.gz`` variants of
the text formats. Every reader yields plain Python records; :mod:`engine.datastore.cells` turns one into
``{column: text}`` the way the datastore stores it. :func:`read_split` reads one config split, choosing rows
at a uniform stride.

Problems that spoil a whole file raise :class:`FileProblem` (the caller reports it in ``skipped``);
problems confined to lines or cells are collected as notes on the :class:`ReadResult`.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.datastore.cells import flatten_row, hf_labels, texts_of

DATA_SUFFIXES = {".parquet": "parquet", ".arrow": "arrow", ".feather": "arrow", ".ipc": "arrow",
                 ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv"}
_WRAPPER_KEYS = ("data", "rows", "records", "examples", "instances", "items", "train", "dataset", "samples")


class FileProblem(Exception):
    """A data file that cannot be ingested; ``reason`` says why (and what to do)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def file_format(path: Path) -> str | None:
    """``parquet``/``arrow``/``jsonl``/``json``/``csv``/``tsv`` from the file name (``.gz`` allowed), else None."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
        fmt = DATA_SUFFIXES.get(Path(name).suffix)
        return fmt if fmt in ("jsonl", "json", "csv", "tsv") else None
    return DATA_SUFFIXES.get(Path(name).suffix)


@dataclass
class ReadResult:
    """Rows chosen from one config split: ``(row_id, flattened row)`` pairs, plus what went wrong."""

    rows: list[tuple[int, dict[str, str | None]]]
    columns: list[str]
    rows_total: int
    notes: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) of partial problems


# -- row selection -------------------------------------------------------------------------------
def stride_indices(total: int, limit: int) -> list[int]:
    """At most ``limit`` positions of ``range(total)`` at a uniform stride (``limit`` 0: all)."""
    if limit <= 0 or total <= limit:
        return list(range(total))
    return [(i * total) // limit for i in range(limit)]


# -- per-format readers: each yields (position, record, labels) for chosen positions ----------------
def _open_text(path: Path) -> str:
    """Whole file as UTF-8 text (BOM allowed); FileProblem on a wrong encoding or an empty file."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.name.lower().endswith(".gz") else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise FileProblem(f"cannot read it ({exc})") from None
    if not raw.strip():
        raise FileProblem("empty file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileProblem(f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}) — "
                          "re-save it as UTF-8") from None


@dataclass
class _Table:
    """Records of one file as ``(count, getter(positions) -> records)`` plus label names and row ids."""

    count: int
    records: list[dict[str, Any]] | None = None
    arrow: Any = None  # a pyarrow Table for columnar formats
    labels: dict[str, list[str]] = field(default_factory=dict)
    row_ids: list[int] | None = None
    notes: list[tuple[str, str]] = field(default_factory=list)

    parquet: Any = None  # a pyarrow ParquetFile: only the row groups holding chosen rows are read

    def take(self, positions: Sequence[int]) -> list[dict[str, Any]]:
        """The records at ``positions`` (ascending); FileProblem when the data turns out unreadable."""
        if self.records is not None:
            return [self.records[i] for i in positions]
        import pyarrow as pa

        if self.parquet is not None:
            return self._take_parquet(positions)
        taken = self.arrow.take(pa.array(positions, type=pa.int64())) if positions else self.arrow.slice(0, 0)
        return _arrow_records(taken)

    def _take_parquet(self, positions: Sequence[int]) -> list[dict[str, Any]]:
        import pyarrow as pa

        meta = self.parquet.metadata
        columns = [f.name for f in self.parquet.schema_arrow if not _is_binary(f.type)]
        out: list[dict[str, Any]] = []
        start, p = 0, 0
        try:
            for group in range(meta.num_row_groups):
                end = start + meta.row_group(group).num_rows
                local = []
                while p < len(positions) and positions[p] < end:
                    local.append(positions[p] - start)
                    p += 1
                if local:
                    table = self.parquet.read_row_group(group, columns=columns)
                    out += _arrow_records(table.take(pa.array(local, type=pa.int64())))
                start = end
                if p == len(positions):
                    break
        except (pa.ArrowException, OSError) as exc:
            raise FileProblem(f"not a readable Parquet file ({_short(exc)})") from None
        return out


def _is_binary(t: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)


def _arrow_records(table: Any) -> list[dict[str, Any]]:
    """pyarrow Table → records; dictionary columns decode to values, binary columns are dropped."""
    keep = [i for i, f in enumerate(table.schema) if not _is_binary(f.type)]
    if len(keep) != table.num_columns:
        table = table.select(keep)
    return table.to_pylist()


def _read_parquet(path: Path) -> _Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.stat().st_size == 0:
        raise FileProblem("empty file")
    try:
        pf = pq.ParquetFile(path)
        n = pf.metadata.num_rows
        meta = pf.schema_arrow.metadata or {}
    except (pa.ArrowException, OSError) as exc:
        raise FileProblem(f"not a readable Parquet file ({_short(exc)})") from None
    row_ids = None
    if b"rebase.row_ids" in meta:  # original positions recorded by the tool that wrote the file
        try:
            ids = json.loads(meta[b"rebase.row_ids"])
            if isinstance(ids, list) and len(ids) == n and all(isinstance(i, int) for i in ids):
                row_ids = ids
        except ValueError:
            pass
    return _Table(n, parquet=pf, labels=hf_labels(meta), row_ids=row_ids)


def _read_arrow(path: Path) -> _Table:
    import pyarrow as pa
    import pyarrow.ipc as ipc

    if path.stat().st_size == 0:
        raise FileProblem("empty file")
    table = None
    errors = []
    for opener in (ipc.open_stream, ipc.open_file):
        try:
            with pa.memory_map(str(path)) as source:
                table = opener(source).read_all()
            break
        except (pa.ArrowException, OSError) as exc:
            errors.append(_short(exc))
    if table is None:
        raise FileProblem(f"not a readable Arrow file ({errors[-1]})")
    return _Table(table.num_rows, arrow=table, labels=hf_labels(table.schema.metadata))


def _read_jsonl(path: Path) -> _Table:
    text = _open_text(path)
    records: list[dict[str, Any]] = []
    bad: list[int] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            bad.append(lineno)
            continue
        if isinstance(obj, dict):
            records.append(obj)
        else:
            bad.append(lineno)
    notes = []
    if bad:
        if not records:
            raise FileProblem(f"no valid JSON object on any of its {len(bad)} lines (first bad line {bad[0]})")
        shown = ", ".join(map(str, bad[:5])) + (", ..." if len(bad) > 5 else "")
        notes.append((str(path), f"{len(bad)} malformed line(s) skipped (line {shown}); "
                                 f"{len(records)} rows read"))
    return _Table(len(records), records=records, notes=notes)


def _records_from_json(obj: Any) -> list[dict[str, Any]] | None:
    if isinstance(obj, list):
        return obj if obj and all(isinstance(r, dict) for r in obj) else None
    if not isinstance(obj, dict):
        return None
    for key in _WRAPPER_KEYS:
        if isinstance(obj.get(key), list):
            found = _records_from_json(obj[key])
            if found is not None:
                return found
    lists = [v for v in obj.values() if isinstance(v, list)]
    if len(lists) == 1 and _records_from_json(lists[0]) is not None:
        return lists[0]
    # a dict of equal-length columns: {"question": [...], "answer": [...]}
    if obj and all(isinstance(v, list) for v in obj.values()):
        lengths = {len(v) for v in obj.values()}
        if len(lengths) == 1 and lengths != {0}:
            n = lengths.pop()
            return [{k: v[i] for k, v in obj.items()} for i in range(n)]
    return None


def _read_json(path: Path) -> _Table:
    text = _open_text(path)
    try:
        obj = json.loads(text)
    except ValueError as exc:
        # maybe it is JSON Lines with a .json suffix
        first = text.lstrip()[:1]
        if first == "{" and "\n" in text.strip():
            return _read_jsonl(path)
        raise FileProblem(f"not valid JSON ({exc})") from None
    records = _records_from_json(obj)
    if records is None:
        raise FileProblem("JSON holds no list of records (expected [{...}, ...] or {\"data\": [{...}, ...]})")
    return _Table(len(records), records=records)


def _read_csv(path: Path, delimiter: str) -> _Table:
    text = _open_text(path)
    csv.field_size_limit(1 << 30)
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise FileProblem("no header row")
        header = [h.strip() or f"column_{i}" for i, h in enumerate(header)]
        records = []
        for values in reader:
            if not values:
                continue
            records.append({h: (values[i] if i < len(values) else None) for i, h in enumerate(header)})
    except csv.Error as exc:
        raise FileProblem(f"not valid {'TSV' if delimiter == chr(9) else 'CSV'} ({exc})") from None
    if not records:
        raise FileProblem("no data rows below the header")
    return _Table(len(records), records=records)


def read_table(path: Path, fmt: str | None = None) -> _Table:
    """Open one data file; raises FileProblem with the reason when it cannot be read."""
    fmt = fmt or file_format(path)
    try:
        if fmt == "parquet":
            return _read_parquet(path)
        if fmt == "arrow":
            return _read_arrow(path)
        if fmt == "jsonl":
            return _read_jsonl(path)
        if fmt == "json":
            return _read_json(path)
        if fmt == "csv":
            return _read_csv(path, ",")
        if fmt == "tsv":
            return _read_csv(path, "\t")
    except PermissionError:
        raise FileProblem("permission denied — make it readable") from None
    except (MemoryError, RecursionError) as exc:
        raise FileProblem(f"too large or too deeply nested to read ({type(exc).__name__})") from None
    raise FileProblem("unknown format (expected .parquet, .arrow, .jsonl, .json, .csv or .tsv)")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return re.sub(r"\s+", " ", text)[:200]


def read_split(files: Sequence[Path], limit: int, extra_labels: dict[str, list[str]] | None = None
               ) -> tuple[ReadResult, list[tuple[str, str]]]:
    """Read one config split spread over ``files`` (in order), choosing at most ``limit`` rows at a stride.

    Returns the result over the readable files and the ``(path, reason)`` of files that could not be read.
    Row ids are positions in the split (or the original ids recorded in the file's ``rebase.row_ids``).
    """
    tables: list[tuple[Path, _Table]] = []
    failed: list[tuple[str, str]] = []
    for path in files:
        try:
            tables.append((path, read_table(path)))
        except FileProblem as exc:
            failed.append((str(path), exc.reason))
    total = sum(t.count for _, t in tables)
    chosen = stride_indices(total, limit)
    rows: list[tuple[int, dict[str, str | None]]] = []
    notes: list[tuple[str, str]] = [n for _, t in tables for n in t.notes]
    columns: dict[str, None] = {}
    start = 0
    ci = 0
    for path, table in tables:
        end = start + table.count
        local = []
        while ci < len(chosen) and chosen[ci] < end:
            local.append(chosen[ci] - start)
            ci += 1
        labels = dict(extra_labels or {})
        labels.update(table.labels)
        try:
            records = table.take(local)
        except FileProblem as exc:
            failed.append((str(path), exc.reason))
            start = end
            continue
        for pos, record in zip(local, records, strict=True):
            flat = flatten_row(record if isinstance(record, dict) else {"value": record}, labels)
            row = texts_of(flat, str(path), notes)
            for col in row:
                columns.setdefault(col, None)
            row_id = table.row_ids[pos] if table.row_ids is not None else start + pos
            rows.append((row_id, row))
        start = end
    return ReadResult(rows, list(columns), total, notes), failed

