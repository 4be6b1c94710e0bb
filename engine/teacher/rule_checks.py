"""Mechanical rules: checks every new example must pass, made from the reviewer's mechanical rejection reasons.

Some rejection reasons need no teacher to be understood, only a test (see :mod:`engine.teacher.rules`):

* ``label_set`` — the example's answer (as the task's metric extracts it) is one of ``labels``;
* ``copied_row`` — the example's input is not a copy of its source row: no field of the row (normalised as the
  duplicate checks do) makes up ``share`` or more of the normalised input;
* ``max_chars`` — the input and the output together hold at most ``max_chars`` characters;
* ``language`` — the example is written in the script of the task's demonstrations (Latin or not, as
  :mod:`engine.language` tells them apart).

A failed check makes the example ``failed`` with the reason ``rule N: ...``, as the other quality checks do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.errors import EngineError
from engine.language import NON_LATIN_SHARE, non_latin_scripts
from engine.student.metrics import extract_answer, normalize_exact
from engine.teacher.quality import Unusable, normalise

if TYPE_CHECKING:
    from engine.tasks import Task
    from engine.teacher.quality import Parsed

CHECKS = ("label_set", "copied_row", "max_chars", "language")
COPY_SHARE = 0.8
"""A row field making up this share of an example's (normalised) input makes it a copy."""
COPY_MIN_CHARS = 20
"""Fields shorter than this (normalised) are never counted as copied: short values repeat by chance."""


@dataclass(frozen=True)
class Check:
    """One accepted check rule: its rule id, the check's name and its parameter (JSON text, so the check is
    hashable and compares by value)."""

    rule: int
    name: str
    param: str = "{}"

    @property
    def values(self) -> dict[str, Any]:
        got = json.loads(self.param or "{}")
        return got if isinstance(got, dict) else {}

    def describe(self) -> str:
        """What the check refuses, in words."""
        v = self.values
        if self.name == "label_set":
            return f"answers outside {', '.join(v.get('labels', []))}"
        if self.name == "copied_row":
            return "inputs that copy a field of the source row"
        if self.name == "max_chars":
            return f"examples over {v.get('max_chars')} characters (input and output together)"
        return "examples in another script than the task's" if self.name == "language" else self.name


def make_param(name: str, values: dict[str, Any]) -> str:
    """The stored parameter of a check (EngineError for an unknown check or a bad value)."""
    if name not in CHECKS:
        raise EngineError(f"unknown check {name!r}", fix=f"use one of {', '.join(CHECKS)}")
    if name == "max_chars":
        limit = values.get("max_chars")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise EngineError(f"a max_chars check needs a whole number of at least 1, got {limit!r}",
                              fix="give the longest input plus output allowed, e.g. 600")
    if name == "label_set":
        labels = values.get("labels")
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x.strip() for x in labels):
            raise EngineError("a label_set check needs at least one label", fix="give the labels, comma-separated")
    return json.dumps(values, sort_keys=True, ensure_ascii=False)


def run_checks(checks: tuple[Check, ...], task: Task, parsed: Parsed, row: dict[str, Any] | None) -> None:
    """Raise :class:`~engine.teacher.quality.Unusable` naming the first check ``parsed`` fails."""
    for check in checks:
        why = _failure(check, task, parsed, row)
        if why:
            raise Unusable(f"rule {check.rule}: {why}")


def _failure(check: Check, task: Task, parsed: Parsed, row: dict[str, Any] | None) -> str | None:
    v = check.values
    if check.name == "label_set":
        labels = [str(x) for x in v.get("labels", [])]
        answer = normalize_exact(extract_answer(parsed.output))
        if answer not in {normalize_exact(x) for x in labels}:
            return f"answer {answer[:60]!r} is not one of {', '.join(labels)}"
    elif check.name == "copied_row":
        share = copied_share(parsed.input, row)
        if share >= float(v.get("share", COPY_SHARE)):
            return f"the input copies a field of its source row ({share:.0%} of it)"
    elif check.name == "max_chars":
        size, limit = len(parsed.input) + len(parsed.output), int(v.get("max_chars", 0))
        if limit and size > limit:
            return f"{size} characters of input and output, over the {limit} allowed"
    elif check.name == "language":
        share, scripts = non_latin_scripts([parsed.input, parsed.output])
        if bool(v.get("non_latin")) != (share >= NON_LATIN_SHARE):
            what = "not Latin" if v.get("non_latin") else "Latin"
            found = f"{share:.0%} non-Latin letters" + (f" ({scripts[0].lower()})" if scripts else "")
            return f"the task is written in {what} script, the example has {found}"
    return None


def copied_share(text: str, row: dict[str, Any] | None) -> float:
    """The largest share of ``text`` (normalised) that one field of ``row`` makes up, found verbatim in it."""
    if not row:
        return 0.0
    target = normalise(text)
    if not target:
        return 0.0
    best = 0.0
    for value in row.values():
        field = normalise(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
        if len(field) >= COPY_MIN_CHARS and field in target:
            best = max(best, len(field) / len(target))
    return min(best, 1.0)


def task_is_non_latin(task: Task) -> bool:
    """Whether the task's demonstrations are mostly written in a non-Latin script."""
    share, _ = non_latin_scripts([t for e in task.examples for t in (e.input, e.output)])
    return share >= NON_LATIN_SHARE
