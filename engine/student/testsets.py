"""Test sets in their publishers' own formats, read into items of (input, references).

Accepted (``--data`` of ``eval`` and ``score``):

* BIG-Bench-Hard JSON — ``{"examples": [{"input", "target"}]}``;
* JSONL of ``{"input", "output"}`` (``target`` also accepted), where ``output`` may be a list of references;
* the SQuAD v1.1 JSON layout — ``{"data": [{"paragraphs": [{"context", "qas": [{"question", "answers"}]}]}]}``;
  each question becomes ``Question: <question> Context: <context>`` (the ReBase SQuAD task's input format)
  with every answer text as a reference;
* the MCoNaLa JSON layout — a list of ``{"intent", "rewritten_intent", "snippet"}``; ``rewritten_intent``
  (``intent`` where it is empty) is the input, ``snippet`` the reference;
* any Parquet, JSONL, JSON, CSV or TSV table, with ``input_col`` / ``output_col`` naming the columns.

A file that is none of these is refused with one line naming the file and the formats accepted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import EngineError

FORMATS_HELP = ("BIG-Bench-Hard JSON {\"examples\": [{\"input\", \"target\"}]}, JSONL of {\"input\", \"output\"}, "
                "SQuAD v1.1 JSON, MCoNaLa JSON, or a Parquet/JSONL/CSV table with --input-col and --output-col")


@dataclass(frozen=True, slots=True)
class TestItem:
    """One test question: the input the system sees and every acceptable reference answer."""

    input: str
    references: tuple[str, ...]


@dataclass(frozen=True)
class TestSet:
    """A test file read into items, with the layout it was read as (``bbh``, ``jsonl``, ``squad``, ``mconala``,
    ``table``)."""

    path: Path
    layout: str
    items: tuple[TestItem, ...]

    @property
    def references(self) -> list[tuple[str, ...]]:
        return [item.references for item in self.items]

    @property
    def inputs(self) -> list[str]:
        return [item.input for item in self.items]


def _refuse(path: Path, why: str) -> EngineError:
    return EngineError(f"data file {path}: {why}", fix=f"give one of: {FORMATS_HELP}")


def _refs(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return (value,) if value.strip() else None
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
        return tuple(value)
    return None


def _bbh(path: Path, data: dict[str, Any]) -> list[TestItem]:
    items = []
    for i, ex in enumerate(data["examples"], 1):
        refs = _refs(ex.get("target")) if isinstance(ex, dict) else None
        if refs is None or not isinstance(ex.get("input"), str):
            raise _refuse(path, f"example {i} needs a string input and a non-empty target")
        items.append(TestItem(ex["input"], refs))
    return items


def _squad(path: Path, data: dict[str, Any]) -> list[TestItem]:
    items = []
    for article in data["data"]:
        for paragraph in article.get("paragraphs", []) if isinstance(article, dict) else []:
            context = paragraph.get("context", "")
            for qa in paragraph.get("qas", []):
                refs = _refs([a.get("text") for a in qa.get("answers", []) if isinstance(a, dict)])
                if refs is None or not isinstance(qa.get("question"), str):
                    raise _refuse(path, f"question {qa.get('id', '?')} has no question text or no answers")
                items.append(TestItem(f"Question: {qa['question']} Context: {context}", refs))
    return items


def _mconala(path: Path, data: list[dict[str, Any]]) -> list[TestItem]:
    items = []
    for i, ex in enumerate(data, 1):
        intent = ex.get("rewritten_intent") or ex.get("intent")
        refs = _refs(ex.get("snippet"))
        if not isinstance(intent, str) or refs is None:
            raise _refuse(path, f"item {i} needs an intent and a snippet")
        items.append(TestItem(intent, refs))
    return items


def json_lines(path: Path, text: str, what: str, shape: str) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` of every non-empty line of a JSONL text; EngineError naming the file, the line
    and the expected ``shape`` at the first line that is not JSON."""
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            raise EngineError(f"{what} {path} line {lineno} is not valid JSON", fix=f"each line must be {shape}") \
                from None


def _jsonl(path: Path, text: str) -> list[TestItem]:
    items = []
    for lineno, obj in json_lines(path, text, "data file", '{"input": ..., "output": ...}'):
        refs = _refs(obj.get("output", obj.get("target"))) if isinstance(obj, dict) else None
        if refs is None or not isinstance(obj.get("input"), str):
            raise _refuse(path, f"line {lineno} needs a string input and an output (a string or a list of them)")
        items.append(TestItem(obj["input"], refs))
    return items


def _table(path: Path, input_col: str, output_col: str) -> list[TestItem]:
    from engine.datastore.readers import FileProblem, read_table

    try:
        table = read_table(path)
        records = table.take(list(range(table.count)))
    except FileProblem as exc:
        raise _refuse(path, str(exc)) from None
    items = []
    for i, rec in enumerate(records, 1):
        if input_col not in rec or output_col not in rec:
            missing = input_col if input_col not in rec else output_col
            raise EngineError(f"data file {path} has no column {missing!r} (columns: {', '.join(map(str, rec))})",
                              fix="name the columns with --input-col and --output-col")
        refs = _refs(rec[output_col]) or (_refs(str(rec[output_col])) if rec[output_col] is not None else None)
        if refs is None or rec[input_col] is None:
            raise _refuse(path, f"row {i} has an empty {input_col!r} or {output_col!r}")
        items.append(TestItem(str(rec[input_col]), refs))
    return items


def read_testset(path: str | Path, *, input_col: str | None = None, output_col: str | None = None) -> TestSet:
    """Read a test file in any accepted layout (see the module docstring); EngineError naming the file when it
    is none of them, is empty, or cannot be read."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise EngineError(f"data file {path} does not exist", fix="check the path given to --data")
    if input_col or output_col:
        items, layout = _table(path, input_col or "input", output_col or "output"), "table"
    else:
        items, layout = _by_content(path)
    if not items:
        raise _refuse(path, "it holds no test items")
    return TestSet(path, layout, tuple(items))


def _by_content(path: Path) -> tuple[list[TestItem], str]:
    if path.suffix.lower() in (".parquet", ".csv", ".tsv", ".arrow"):
        return _table(path, "input", "output"), "table"
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise _refuse(path, "it is not UTF-8 text") from None
    except OSError as exc:
        raise EngineError(f"cannot read data file {path}: {exc.strerror}", fix="check the path and its permissions") \
            from None
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return _jsonl(path, text), "jsonl"
    if isinstance(data, dict) and isinstance(data.get("examples"), list):
        return _bbh(path, data), "bbh"
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        return _squad(path, data), "squad"
    if isinstance(data, list) and data and all(isinstance(x, dict) and "snippet" in x for x in data):
        return _mconala(path, data), "mconala"
    if isinstance(data, dict) and "input" in data:   # a one-line JSONL file
        return _jsonl(path, text), "jsonl"
    raise _refuse(path, "it is JSON in none of the accepted layouts")


def read_predictions(path: str | Path) -> list[str]:
    """One prediction per line of a JSONL file, in test order: ``{"prediction": "..."}`` or a JSON string."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EngineError(f"predictions file {path} does not exist", fix="check the path") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise EngineError(f"cannot read predictions file {path} ({type(exc).__name__})",
                          fix="give a UTF-8 JSONL file, one prediction per line") from None
    out = []
    shape = '{"prediction": "..."} or a JSON string'
    for lineno, obj in json_lines(path, text, "predictions file", shape):
        if isinstance(obj, dict) and isinstance(obj.get("prediction"), str):
            out.append(obj["prediction"])
        elif isinstance(obj, str):
            out.append(obj)
        else:
            raise EngineError(f"{path} line {lineno} is not a prediction", fix=f"each line must be {shape}")
    return out
