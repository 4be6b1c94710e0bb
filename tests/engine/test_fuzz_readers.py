"""Fuzzing the data readers and the task-file parser: any bytes give rows or a reported problem, never
another exception.

The seeds are the real files under ``tests/data/fuzz`` (one per format). Hypothesis truncates them, flips
and inserts bytes, re-encodes text, gzips, swaps the suffix so one format's bytes meet another's reader, or
writes bytes of its own. Every reader's answer must be rows whose column names and texts DuckDB can store
(UTF-8), plus ``(path, reason)`` problems; the task-file parser's must be a Task or one EngineError.

The runs are reproducible (``derandomize``: a seed fixed by the test) and bounded in time: each test stops
checking new inputs after ``REBASE_FUZZ_SECONDS`` (default 3) or ``REBASE_FUZZ_EXAMPLES`` inputs, so CI pays
a few seconds; raise both to fuzz for longer.
"""

from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.datastore.readers import DATA_SUFFIXES, read_split
from engine.errors import EngineError
from engine.tasks import Task, read_task_file

SEEDS = Path(__file__).resolve().parent.parent / "data" / "fuzz"
DATA_SEEDS = sorted(p for p in SEEDS.iterdir() if p.name not in ("README.md", "task.json"))
TASK_SEEDS = [SEEDS / "task.json", *sorted((SEEDS.parents[2] / "engine" / "demo_data" / "tasks").glob("*.json"))]
SECONDS = float(os.environ.get("REBASE_FUZZ_SECONDS", "3"))
EXAMPLES = int(os.environ.get("REBASE_FUZZ_EXAMPLES", "1000"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SUFFIXES = sorted({*DATA_SUFFIXES, ".jsonl.gz", ".json.gz", ".csv.gz", ".tsv.gz"})
ENCODINGS = ["utf-16", "utf-16-le", "utf-32", "latin-1", "cp1252", "utf-8-sig", "shift_jis"]


class Budget:
    """Wall-clock budget of one fuzz test: inputs after it runs out pass unchecked (Hypothesis has a limit
    on inputs, not on time). ``checked`` counts the inputs that were checked."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end: float | None = None
        self.checked = 0

    def left(self) -> bool:
        now = time.monotonic()
        if self.end is None:
            self.end = now + self.seconds
        if now > self.end:
            return False
        self.checked += 1
        return True


@st.composite
def mutated(draw: st.DrawFn, seeds: list[Path]) -> tuple[bytes, str]:
    """``(bytes, suffix)``: a seed file changed one or more ways, or bytes of Hypothesis's own."""
    seed = draw(st.sampled_from(seeds))
    data = seed.read_bytes()
    suffix = "".join(seed.suffixes)
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["truncate", "flip", "insert", "encode", "gzip", "suffix", "own"]))
        if how == "truncate" and data:
            data = data[: draw(st.integers(0, len(data) - 1))]
        elif how == "flip" and data:
            raw = bytearray(data)
            for _ in range(draw(st.integers(1, 8))):
                raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
            data = bytes(raw)
        elif how == "insert":
            at = draw(st.integers(0, len(data)))
            data = data[:at] + draw(st.binary(min_size=1, max_size=64)) + data[at:]
        elif how == "encode":
            text = data.decode("utf-8", errors="replace")
            data = text.encode(draw(st.sampled_from(ENCODINGS)), errors="replace")
        elif how == "gzip":
            data = gzip.compress(data, mtime=0)
            suffix = suffix if suffix.endswith(".gz") else suffix + ".gz"
        elif how == "suffix":
            suffix = draw(st.sampled_from(SUFFIXES))
        elif how == "own":
            data = draw(st.binary(max_size=512))
    return data, suffix


def _storable(text: str) -> bool:
    """UTF-8 (and DuckDB) holds every character but the surrogate halves."""
    return not any("\ud800" <= c <= "\udfff" for c in text)


def _check_read(path: Path, limit: int) -> None:
    """read_split's promise: rows of storable texts, and problems as ``(path, reason)`` strings."""
    result, failed = read_split([path], limit)
    assert all(isinstance(p, str) and isinstance(r, str) and r for p, r in failed)
    assert all(isinstance(p, str) and isinstance(r, str) and r for p, r in result.notes)
    assert result.rows or failed or result.rows_total == 0
    if limit:
        assert len(result.rows) <= limit
    for row_id, row in result.rows:
        assert isinstance(row_id, int)
        for col, text in row.items():
            assert isinstance(col, str) and _storable(col)
            assert text is None or (isinstance(text, str) and _storable(text))
    assert all(isinstance(c, str) and _storable(c) for c in result.columns)


def test_the_seed_files_are_read_whole():
    """The seeds themselves are good files: every row of every format is read, nothing is skipped."""
    for path in DATA_SEEDS:
        result, failed = read_split([path], 0)
        assert failed == [] and result.rows and len(result.rows) == result.rows_total, path
    assert {"parquet", "arrow", "jsonl", "json", "csv", "tsv"} <= {DATA_SUFFIXES.get(p.suffix, "jsonl")
                                                                  for p in DATA_SEEDS}


def test_any_bytes_give_rows_or_a_file_problem(tmp_path):
    budget = Budget(SECONDS)

    @FUZZ
    @given(case=mutated(DATA_SEEDS), limit=st.sampled_from([0, 1, 3]))
    def check(case: tuple[bytes, str], limit: int) -> None:
        if not budget.left():
            return
        data, suffix = case
        path = tmp_path / f"input{suffix}"
        path.write_bytes(data)
        try:
            _check_read(path, limit)
        finally:
            path.unlink()

    check()
    assert budget.checked >= min(50, EXAMPLES), budget.checked  # the time went on inputs


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
        st.sampled_from(["name", "instruction", "examples", "input", "output", "source_datasets_to_exclude",
                         "x"]) | st.text(max_size=8), inner, max_size=5),
    max_leaves=30)


@st.composite
def task_specs(draw: st.DrawFn) -> object:
    """A JSON value shaped like a task more often than not, with any value in any place."""
    spec = {"name": draw(st.sampled_from(["t", "a.b-c_1", "", "bad name", "\ud800"]) | st.text(max_size=10)),
            "instruction": draw(st.text(max_size=30) | JSON),
            "examples": draw(st.lists(st.fixed_dictionaries({"input": st.text(max_size=10) | JSON,
                                                             "output": st.text(max_size=10) | JSON}),
                                      max_size=4) | JSON)}
    if draw(st.booleans()):
        spec["source_datasets_to_exclude"] = draw(st.lists(st.text(max_size=10)) | JSON)
    return draw(st.just(spec) | JSON)


def _check_task(path: Path) -> None:
    try:
        task = read_task_file(path)
    except EngineError as exc:
        assert str(exc) and "\n" not in exc.message
        return
    assert isinstance(task, Task) and task.examples
    for text in (task.name, task.instruction, *task.exclude,
                 *(t for e in task.examples for t in (e.input, e.output))):
        assert isinstance(text, str) and _storable(text)


def test_any_task_file_gives_a_task_or_one_engine_error(tmp_path):
    budget = Budget(SECONDS)
    path = tmp_path / "task.json"

    @FUZZ
    @given(case=st.one_of(mutated(TASK_SEEDS), task_specs().map(lambda spec: (spec, ".json"))))
    def check(case: tuple[object, str]) -> None:
        if not budget.left():
            return
        data = case[0]
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(json.dumps(data), encoding="utf-8")
        _check_task(path)

    check()
    assert budget.checked >= min(50, EXAMPLES), budget.checked
