"""Reading data files into rows of cell texts.

Formats: Parquet, Arrow (IPC file or stream, as ``save_to_disk`` writes), JSONL, JSON (a list of records,
a ``{"data": [...]}``-style wrapper, or a dict of equal-length columns), CSV and TSV; ``.gz`` variants of
the text formats (read by :mod:`engine.datastore.text_formats`). Every reader gives a
:class:`~engine.datastore.tables.Table` of plain Python records; :mod:`engine.datastore.cells` turns one into
``{column: text}`` the way the datastore stores it. :func:`read_split` reads one config split, choosing rows
at a uniform stride.

Problems that spoil a whole file raise :class:`FileProblem` (the caller reports it in ``skipped``);
problems confined to lines, rows or cells are collected as notes on the :class:`ReadResult`, a note that
repeats row after row once, with its count. Any input gives rows or FileProblems, never another exception.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.datastore.cells import flatten_row, hf_labels, texts_of
from engine.datastore.tables import FileProblem, Table, schema_notes, short
from engine.datastore.text_formats import read_csv, read_json, read_jsonl

__all__ = ["DATA_SUFFIXES", "FileProblem", "ReadResult", "Table", "file_format", "read_split", "read_table",
           "stride_indices"]

DATA_SUFFIXES = {".parquet": "parquet", ".arrow": "arrow", ".feather": "arrow", ".ipc": "arrow",
                 ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv"}
TOO_DEEP_ROW = "a row nested too deeply to flatten was skipped"


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


def _read_parquet(path: Path) -> Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.stat().st_size == 0:
        raise FileProblem("empty file")
    try:
        pf = pq.ParquetFile(path)
        n = pf.metadata.num_rows
        meta = pf.schema_arrow.metadata or {}
    except (pa.ArrowException, OSError, ValueError) as exc:  # ValueError: e.g. a column name not in UTF-8
        raise FileProblem(f"not a readable Parquet file ({short(exc)})") from None
    row_ids = None
    if b"rebase.row_ids" in meta:  # original positions recorded by the tool that wrote the file
        try:
            ids = json.loads(meta[b"rebase.row_ids"])
            if isinstance(ids, list) and len(ids) == n and all(isinstance(i, int) for i in ids):
                row_ids = ids
        except ValueError:
            pass
    return Table(n, parquet=pf, labels=hf_labels(meta), row_ids=row_ids, notes=schema_notes(path, pf.schema_arrow))


def _read_arrow(path: Path) -> Table:
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
            # the IPC reader trusts the offsets and lengths a file declares: a damaged file read unchecked
            # crashed the process (SIGSEGV, SIGBUS); full validation finds every such lie first
            table.validate(full=True)
            break
        except (pa.ArrowException, OSError, ValueError) as exc:
            table = None
            errors.append(short(exc))
    if table is None:
        raise FileProblem(f"not a readable Arrow file ({errors[-1]})")
    return Table(table.num_rows, arrow=table, labels=hf_labels(table.schema.metadata),
                 notes=schema_notes(path, table.schema))


def read_table(path: Path, fmt: str | None = None) -> Table:
    """Open one data file; raises FileProblem with the reason when it cannot be read."""
    fmt = fmt or file_format(path)
    try:
        if fmt == "parquet":
            return _read_parquet(path)
        if fmt == "arrow":
            return _read_arrow(path)
        if fmt == "jsonl":
            return read_jsonl(path)
        if fmt == "json":
            return read_json(path)
        if fmt == "csv":
            return read_csv(path, ",")
        if fmt == "tsv":
            return read_csv(path, "\t")
    except PermissionError:
        raise FileProblem("permission denied — make it readable") from None
    except OSError as exc:  # vanished, a folder, an I/O error...
        raise FileProblem(f"cannot read it ({exc.strerror or short(exc)})") from None
    except (MemoryError, RecursionError) as exc:
        raise FileProblem(f"too large or too deeply nested to read ({type(exc).__name__})") from None
    raise FileProblem("unknown format (expected .parquet, .arrow, .jsonl, .json, .csv or .tsv)")


def read_split(files: Sequence[Path], limit: int, extra_labels: dict[str, list[str]] | None = None
               ) -> tuple[ReadResult, list[tuple[str, str]]]:
    """Read one config split spread over ``files`` (in order), choosing at most ``limit`` rows at a stride.

    Returns the result over the readable files and the ``(path, reason)`` of files that could not be read.
    Row ids are positions in the split (or the original ids recorded in the file's ``rebase.row_ids``).
    """
    tables: list[tuple[Path, Table]] = []
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
            try:
                flat = flatten_row(record if isinstance(record, dict) else {"value": record}, labels)
                row = texts_of(flat, str(path), notes)
            except RecursionError:  # nested deeper than flattening (or JSON text) goes: this row only
                notes.append((str(path), TOO_DEEP_ROW))
                continue
            for col in row:
                columns.setdefault(col, None)
            row_id = table.row_ids[pos] if table.row_ids is not None else start + pos
            rows.append((row_id, row))
        start = end
    return ReadResult(rows, list(columns), total, _counted(notes)), failed


def _counted(notes: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Notes in first-seen order, a repeated one once with its count (a note per row would flood the log)."""
    counts: dict[tuple[str, str], int] = {}
    for note in notes:
        counts[note] = counts.get(note, 0) + 1
    return [(p, r if n == 1 else f"{r} ({n:,} rows)") for (p, r), n in counts.items()]

