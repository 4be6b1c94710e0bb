"""What a data file reader returns: a :class:`Table` of records (or a handle on columnar data read only
where rows are chosen), and :class:`FileProblem` when the file cannot be read at all."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.datastore.cells import renamed_note, unique_names


class FileProblem(Exception):
    """A data file that cannot be ingested; ``reason`` says why (and what to do)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Table:
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
            records = self._take_parquet(positions)
        else:
            try:
                taken = self.arrow.take(pa.array(positions, type=pa.int64())) if positions else self.arrow.slice(0, 0)
                records = arrow_records(taken)
            except (pa.ArrowException, ValueError) as exc:  # e.g. a string column that is not UTF-8
                raise FileProblem(f"not a readable Arrow file ({short(exc)})") from None
        if len(records) != len(positions):  # a damaged file that claims more rows than its columns hold
            raise FileProblem(f"its rows could not be read back ({len(records)} of {len(positions)}): the file "
                              "is damaged")
        return records

    def _take_parquet(self, positions: Sequence[int]) -> list[dict[str, Any]]:
        import pyarrow as pa

        meta = self.parquet.metadata
        names = [f.name for f in self.parquet.schema_arrow]
        # binary columns (images, audio) are left unread; by name, which a repeated name makes ambiguous
        columns = ([f.name for f in self.parquet.schema_arrow if not is_binary(f.type)]
                   if len(set(names)) == len(names) else None)
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
                    out += arrow_records(table.take(pa.array(local, type=pa.int64())))
                start = end
                if p == len(positions):
                    break
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise FileProblem(f"not a readable Parquet file ({short(exc)})") from None
        return out


def is_binary(t: Any) -> bool:
    """True for a binary Arrow type (images, audio): such columns are never cell text."""
    import pyarrow as pa

    return pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)


def arrow_records(table: Any) -> list[dict[str, Any]]:
    """pyarrow Table → records; dictionary columns decode to values, binary columns are dropped, repeated
    column names are kept apart (:func:`~engine.datastore.cells.unique_names`)."""
    keep = [i for i, f in enumerate(table.schema) if not is_binary(f.type)]
    if len(keep) != table.num_columns:
        table = table.select(keep)
    unique = unique_names(table.column_names)
    if unique != table.column_names:
        table = table.rename_columns(unique)
    return table.to_pylist()


def schema_notes(path: Path, schema: Any) -> list[tuple[str, str]]:
    """The note for an Arrow/Parquet schema that repeats a column name (none otherwise); FileProblem for
    one without a column that can hold text (binary columns only, or none)."""
    names = [f.name for f in schema if not is_binary(f.type)]
    if not names:
        raise FileProblem("no column holds text or numbers (only binary data, or no columns at all)")
    note = renamed_note(names, unique_names(names))
    return [(str(path), note)] if note else []


def short(exc: BaseException) -> str:
    """The first line of an exception's message, whitespace folded, at most 200 characters."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return re.sub(r"\s+", " ", text)[:200]
