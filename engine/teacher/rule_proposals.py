"""Proposing rules from the reviewer's new rejections: a check for each mechanical fault, and for each group of
free-text reasons one short imperative rule written by the teacher (see :mod:`engine.teacher.rules`).

:func:`propose_rules` is an async generator of events: a :class:`RuleProposed` per stored proposal, a
:class:`~engine.events.Progress` per teacher call. The teacher is asked only when a group needs it; its calls
are cached in ``teacher_calls`` under a key of the group's reasons and examples, so asking again (a run that
was stopped) repeats no call.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from engine.events import Event, Log
from engine.rate import RateMeter
from engine.tasks import Task, final_answer, resolve_task
from engine.teacher.ask import Teacher
from engine.teacher.calls import answered, call_key, store_answer_call
from engine.teacher.client import TeacherCallFailed, TeacherSettings
from engine.teacher.prompts import cut, fill
from engine.teacher.rule_checks import Check, make_param, task_is_non_latin
from engine.teacher.rules import ReasonGroup, Rule, add_rule, clean_text, group_rejections, new_rejections
from engine.workspace import Workspace

RULE_TEMPLATE = """\
You are helping to build a dataset for the following task.

Task description: {instruction}

A reviewer rejected these examples written for the task, and said why:

{rejected}

Write ONE short rule, in the imperative, that the writer of new examples of this task must follow so that \
these problems do not happen again (at most 30 words). Answer with JSON: {{"rule": "..."}}.
"""
RULE_SCHEMA: dict[str, Any] = {"type": "object", "properties": {"rule": {"type": "string"}}, "required": ["rule"],
                               "additionalProperties": False}
SHOWN_REJECTIONS = 5
"""Rejected examples shown to the teacher per group (the first ones)."""
MAX_LABELS = 20
"""A task whose demonstrations have more distinct answers than this has no label set to check."""


@dataclass(frozen=True, slots=True)
class RuleProposed(Event):
    """A rule was proposed (stored with status ``proposed``)."""

    rule: Rule


async def propose_rules(ws: Workspace, task_ref: str, settings: TeacherSettings | None) -> AsyncGenerator[Event, None]:
    """Group the reviewer's rejections no rule was made from yet and store one proposal per group.

    ``settings`` is the teacher to ask for prompt rules; with None, only checks are proposed and the groups
    that need the teacher are left for later (a Log says so). EngineError when the teacher is needed but its
    host or model is not there.
    """
    task = resolve_task(ws, task_ref)
    groups = group_rejections(await asyncio.to_thread(new_rejections, ws, task.name))
    if not groups:
        yield Log(f"{task.name}: no new rejections with a reason to make rules from (reject with a reason: "
                  f"`rebase-tui review {task.name} --reject ID --reason TEXT`, or R in Review)")
        return
    free: list[ReasonGroup] = []
    for group in groups:
        check = _check_for(ws, task, group) if group.check else None
        if check is None:
            free.append(group)
            continue
        rule = await asyncio.to_thread(add_rule, ws, task.name, "check", check.describe(), group.reasons,
                                       tuple(r.id for r in group.rejections), check.name, check.values)
        yield RuleProposed(rule)
    if not free:
        return
    if settings is None:
        yield Log(f"{task.name}: {len(free)} group(s) of reasons need the teacher to become rules", "WARNING")
        return
    teacher = await Teacher.connect(settings)
    meter = RateMeter()
    try:
        yield meter.progress("rules", 0, len(free), "rules", f"asking {settings.model}")
        for i, group in enumerate(free, 1):
            text = await _ask(ws, teacher, task, group)
            if text:
                rule = await asyncio.to_thread(add_rule, ws, task.name, "prompt", text, group.reasons,
                                               tuple(r.id for r in group.rejections))
                yield RuleProposed(rule)
            else:
                yield Log(f"the teacher gave no usable rule for the reasons {', '.join(group.reasons)[:120]}",
                          "WARNING")
            yield meter.progress("rules", i, len(free), "rules", f"asking {settings.model}")
    finally:
        await teacher.close()


def rule_messages(task: Task, group: ReasonGroup) -> list[dict[str, str]]:
    """The chat asking the teacher to turn a group of rejections into one rule."""
    shown = "\n\n".join(f"Example {i}:\nInput: {cut(r.input)}\nOutput: {cut(r.output)}\nReason: {r.reason}"
                        for i, r in enumerate(group.rejections[:SHOWN_REJECTIONS], 1))
    return [{"role": "user", "content": fill(RULE_TEMPLATE, instruction=task.instruction, rejected=shown)}]


async def _ask(ws: Workspace, teacher: Teacher, task: Task, group: ReasonGroup) -> str:
    """The rule the teacher writes for ``group`` (from the cache when it was asked before); "" when its reply
    has none. A call that fails is not stored, so the group is asked again next time."""
    messages = rule_messages(task, group)
    phash = "rule:" + hashlib.sha256(json.dumps(messages, ensure_ascii=False).encode()).hexdigest()[:16]
    key = call_key(task.name, 0, phash, teacher.settings, "rule")
    cached = (await asyncio.to_thread(answered, ws, task.name, [key])).get(key)
    if cached is None:
        try:
            res = await teacher.chat(messages, RULE_SCHEMA)
        except TeacherCallFailed as exc:
            await asyncio.to_thread(store_answer_call, ws, teacher, task.name, key, phash, exc.partial or None,
                                    "; ".join(exc.errors) or exc.message)
            return ""
        cached = res.content
        await asyncio.to_thread(store_answer_call, ws, teacher, task.name, key, phash, cached, None)
    try:
        rule = json.loads(cached).get("rule")
    except (ValueError, AttributeError):
        return ""
    return clean_text(rule) if isinstance(rule, str) else ""


def _check_for(ws: Workspace, task: Task, group: ReasonGroup) -> Check | None:
    """The check a mechanical group becomes, with its parameter; None when the task gives it nothing to check
    (no label set among its demonstrations): the group then goes to the teacher like any other."""
    name = group.check
    values: dict[str, Any]
    if name == "label_set":
        answers = [final_answer(e.output) if task.reasons else e.output for e in task.examples]
        labels = list(dict.fromkeys(a.strip().rstrip(".").strip() for a in answers if a))
        if not labels or len(labels) > MAX_LABELS or any(len(x) > 40 for x in labels):
            return None
        values = {"labels": labels}
    elif name == "max_chars":
        values = {"max_chars": _length_limit(ws, task.name, group)}
    elif name == "copied_row":
        values = {"share": 0.8}
    elif name == "language":
        values = {"non_latin": task_is_non_latin(task)}
    else:
        return None
    return Check(0, str(name), make_param(str(name), values))


def _length_limit(ws: Workspace, task: str, group: ReasonGroup) -> int:
    """A length limit between the accepted examples and the ones rejected as too long: the longest accepted
    example (input plus output) when it is shorter than the shortest rejected one, else 90 % of the latter."""
    shortest = min(len(r.input) + len(r.output) for r in group.rejections)
    with ws.store.cursor() as cur:
        longest = cur.execute("select max(length(input) + length(output)) from examples where task = ? "
                              "and status = 'accepted'", [task]).fetchall()[0][0]
    if longest is not None and int(longest) < shortest:
        return int(longest)
    return max(1, int(shortest * 0.9))
