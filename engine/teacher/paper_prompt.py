"""The ReBase paper's transform prompt as its released code words and renders it (``transform --prompt paper``).

What is the paper's, kept as it was so that a reproduction sends what the paper sent:

* the wording (:data:`PAPER_TEMPLATE`) and the system message;
* the demonstrations rendered as loose JSON-like blocks in one fenced ``json`` block, values pasted in as
  they are (:func:`render_examples`: no escaping, a trailing comma after ``output``);
* the retrieved row as one line of JSON whose values are themselves JSON-encoded and cut to 250 characters
  plus "..." when their encoding is longer than 247 (:func:`render_row`; non-ASCII characters come out as
  ``\\uXXXX`` escapes, as Python's ``json.dumps`` writes them by default);
* the fallback for long rows: a row whose text (``str`` of the row) exceeds 4,000 characters is replaced by
  ``{"input": its best input cell, "output": its best output cell}`` — the two cells retrieval scored it by
  (:func:`paper_sample`).

What differs: the last sentence names the fields of the answer schema actually sent (the released prompt
always asked for ``input`` and ``output``; a reasoning task here is asked for ``input``, ``reasoning`` and
``answer``, so that the answer can be checked against the task's label set), and the synthesis variant
(:data:`PAPER_SYNTHESIZE_TEMPLATE`), which is the same wording without the data sample.
"""

from __future__ import annotations

import json
from typing import Any

SYSTEM = "You are a useful assistant"
ROW_CHARS = 250
LONG_ROW_CHARS = 4000

_HEAD = """
I would like you to create questions for a test. The directions for the test are:

```
{instruction}
```
The format should be in json like this:
{examples}

"""
_TAIL = """

Your response MUST be a JSON with exactly {fields}.
Response (JSON ONLY):
"""
PAPER_TEMPLATE = _HEAD + """\
Now I will provide you with a JSON file from a different dataset. Please create a question where the format \
and type of question is similar to the examples provided above, but the content is inspired by the example \
provided below.
You need to decide which part of the dataset to use.
{row}""" + _TAIL
PAPER_SYNTHESIZE_TEMPLATE = _HEAD + """\
Please create a new question where the format and type of question is similar to the examples provided above.\
""" + _TAIL


def render_examples(pairs: list[tuple[str, str]]) -> str:
    """The demonstrations in the released layout: one fenced ``json`` block of loose objects."""
    blocks = [f'{{\n"input": "{i}",\n"output": "{o}",\n}}' for i, o in pairs]
    return "\n```json\n" + "\n\n".join(blocks) + "\n```\n"


def render_row(row: dict[str, Any], limit: int = ROW_CHARS) -> str:
    """The row as the released code showed it: each value JSON-encoded and cut, then the whole as JSON."""
    cut = {}
    for key, value in row.items():
        text = json.dumps(value)
        cut[key] = text if len(text) <= limit - 3 else text[:limit] + "..."
    return json.dumps(cut)


def describe_fields(fields: list[str]) -> str:
    """``2 fields: "input" and "output"`` (the answer schema's fields, as the last sentence names them)."""
    quoted = [f'"{f}"' for f in fields]
    listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]
    return f"{len(fields)} field{'s' if len(fields) != 1 else ''}: {listed}"


def paper_sample(data: dict[str, Any], input_column: str | None, output_column: str | None) -> dict[str, Any]:
    """The row the paper's prompt shows: the row itself, or for a row longer than 4,000 characters only its
    best input and output cells (the released code measured ``str(row)``; empty cells are left out here, as
    they are left out of the prompt)."""
    row = {k: v for k, v in data.items() if v not in (None, "")}
    if len(str(row)) <= LONG_ROW_CHARS:
        return row
    return {"input": str(row.get(input_column or "", "")), "output": str(row.get(output_column or "", ""))}
