"""Quality checks on every new example: parse, empty/over-long fields, label set, duplicates, copies.

``parse_reply`` turns the teacher's JSON reply into (input, output, reasoning) or raises
:class:`Unusable` (unparseable, schema-violating, empty, over-long or outside the label set: the example is
stored as ``failed`` with the raw reply kept). :class:`DuplicateIndex` finds exact duplicates (same input and
output after trimming) and near duplicates (same normalised input: case, punctuation and spacing ignored) of
earlier examples of the task, and copies of the task's own examples (stored as ``duplicate``).
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass

from engine.tasks import Task
from engine.teacher.prompts import LabelSet, compose_output

MAX_FIELD_CHARS = 4000
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


class Unusable(Exception):
    """The reply cannot become an example; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def normalise(text: str) -> str:
    """Text for near-duplicate comparison: NFKC, case-folded, punctuation and spacing collapsed."""
    t = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_NON_WORD.sub(" ", t).split())


@dataclass(frozen=True)
class Parsed:
    """A usable reply."""

    input: str
    output: str
    reasoning: str | None
    answer: str | None


def parse_reply(content: str, *, cot: bool, labels: LabelSet | None, done_reason: str | None = None,
                max_chars: int = MAX_FIELD_CHARS) -> Parsed:
    """Check a teacher reply against the schema and the field rules; raise Unusable otherwise."""
    try:
        obj = json.loads(content)
    except ValueError:
        cut = " (the reply was cut at num_predict)" if done_reason == "length" else ""
        raise Unusable(f"reply is not valid JSON{cut}") from None
    if not isinstance(obj, dict):
        raise Unusable("reply is not a JSON object")
    fields = ("input", "reasoning", "answer") if cot else ("input", "output")
    missing = [f for f in fields if f not in obj]
    if missing:
        raise Unusable(f"reply lacks {', '.join(missing)} (schema violation)")
    bad = [f for f in fields if not isinstance(obj[f], str)]
    if bad:
        raise Unusable(f"{', '.join(bad)} must be text (schema violation)")
    values = {f: obj[f].strip() for f in fields}
    empty = [f for f in fields if not values[f]]
    if empty:
        raise Unusable(f"empty {', '.join(empty)}")
    long = [f"{f} ({len(values[f])} chars)" for f in fields if len(values[f]) > max_chars]
    if long:
        raise Unusable(f"over-long {', '.join(long)}; the limit is {max_chars}")
    answer_field = "answer" if cot else "output"
    answer = values[answer_field]
    if labels is not None:
        canon = labels.canonical(answer)
        if canon is None:
            raise Unusable(f"answer {answer[:60]!r} is outside the label set {labels.describe()}")
        answer = canon
    if cot:
        return Parsed(values["input"], compose_output(values["reasoning"], answer), values["reasoning"], answer)
    return Parsed(values["input"], answer, None, answer)


class DuplicateIndex:
    """Inputs/outputs of the task's earlier examples, to flag exact/near duplicates and copies."""

    def __init__(self, task: Task) -> None:
        self.exact: dict[tuple[str, str], str] = {}
        self.near: dict[str, str] = {}
        self.task_inputs = {normalise(e.input): i for i, e in enumerate(task.examples, 1)}

    def add(self, input_: str, output: str, label: str) -> None:
        """Remember an example (``label`` names it in reasons, e.g. "#12" or "the example from row 7")."""
        self.exact.setdefault((input_.strip(), output.strip()), label)
        self.near.setdefault(normalise(input_), label)

    def check(self, input_: str, output: str) -> str | None:
        """Why this example is a duplicate, or None."""
        n = normalise(input_)
        if n in self.task_inputs:
            return f"copy of the task's example {self.task_inputs[n]}"
        hit = self.exact.get((input_.strip(), output.strip()))
        if hit is not None:
            return f"exact duplicate of {hit}"
        hit = self.near.get(n)
        if hit is not None:
            return f"near duplicate of {hit}"
        return None
