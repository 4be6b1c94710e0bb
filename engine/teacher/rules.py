"""Rules for the teacher, made from the reviewer's rejections (the ``rules`` table; this module owns its SQL).

The reasons the reviewer gave when rejecting examples (``review --reject ID --reason TEXT``, ``R`` in Review)
are grouped: a reason that names a mechanical fault (wrong label set, a copy of the source row, too long, the
wrong language) becomes a *check* (:mod:`engine.teacher.rule_checks`) with no teacher call; the other reasons
are grouped by the words they share, and the teacher turns each group, with its rejected examples, into one
short imperative *prompt rule* (:mod:`engine.teacher.rule_proposals`). Rejections the program made itself
(regenerations, the filter pass, redone examples) never count.

Every rule starts ``proposed``; the user accepts, edits or drops it. Accepted prompt rules close the task's
prompt (:func:`accepted_rules`, read by :func:`engine.teacher.prompts.spec_for`), so the prompt hash and every
cache key change: old examples are kept and new calls use the rules. Accepted checks judge every new example.
:func:`rule_reports` tells, per accepted rule, how often the reviewer rejected the examples made after it
compared with those made before.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.errors import EngineError
from engine.review import SYSTEM_REASONS
from engine.teacher.calls import FILTER_REJECTED
from engine.teacher.quality import normalise
from engine.teacher.rule_checks import Check, make_param

if TYPE_CHECKING:
    from engine.workspace import Workspace

KINDS = ("prompt", "check")
STATUSES = ("proposed", "accepted", "dropped")
MAX_RULE_CHARS = 300
GROUP_OVERLAP = 0.6
"""Two free-text reasons share a group when this share of the shorter one's words is in the other's."""
MECHANICAL = (
    ("label_set", re.compile(r"\blabels?\b|label set|not one of|\bclass(es)?\b|categor|answer set|invalid answer")),
    ("copied_row", re.compile(r"\bcop(y|ies|ied|ying)\b|verbatim|same as the (row|source|data)|\bpaste|unchanged")),
    ("max_chars", re.compile(r"too long|\blong(er)?\b|verbose|wordy|lengthy|rambl")),
    ("language", re.compile(r"\blanguage\b|\benglish\b|wrong script|\bscript\b|translat|not in \w+ish\b")),
)
"""Reason patterns (matched on the normalised reason, first match wins) that name a mechanical fault."""
_STOP = frozenset("a an the is are was were be been it its of to and or in on at for from with as by this that these "
                  "those do does did doesn don didn so very too just all any some there here".split())


@dataclass(frozen=True)
class Rule:
    """One stored rule: a ``prompt`` rule (``text`` goes into the prompt) or a ``check`` (``check_name`` with
    ``param``; ``text`` says what it refuses), the reasons and rejected examples it came from, its status,
    and when it was accepted (None while proposed)."""

    id: int
    task: str
    kind: str
    text: str
    check_name: str | None
    param: dict[str, Any]
    reasons: tuple[str, ...]
    examples: tuple[int, ...]
    status: str
    edited: bool
    accepted_at: str | None
    created_at: str | None

    def check(self) -> Check | None:
        """The check this rule runs (None for a prompt rule)."""
        if self.kind != "check" or not self.check_name:
            return None
        return Check(self.id, self.check_name, json.dumps(self.param, sort_keys=True, ensure_ascii=False))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "task": self.task, "kind": self.kind, "text": self.text, "check": self.check_name,
                "param": self.param, "reasons": list(self.reasons), "examples": list(self.examples),
                "status": self.status, "edited": self.edited, "accepted_at": self.accepted_at}


@dataclass(frozen=True)
class Rejection:
    """A rejected example with the reviewer's reason, and the source row it was made from."""

    id: int
    input: str
    output: str
    reason: str
    row: dict[str, Any] | None


@dataclass(frozen=True)
class ReasonGroup:
    """Rejections with the same mechanical fault (``check`` names it) or with similar free-text reasons."""

    check: str | None
    rejections: tuple[Rejection, ...]

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.reason for r in self.rejections))


@dataclass(frozen=True)
class Rate:
    """How many reviewed examples were rejected by the reviewer, of ``n`` reviewed."""

    n: int
    rejected: int

    @property
    def value(self) -> float | None:
        return self.rejected / self.n if self.n else None

    def describe(self) -> str:
        return f"{self.value:.0%} of {self.n}" if self.value is not None else "none reviewed"


@dataclass(frozen=True)
class RuleReport:
    """A rule with the rejection rate of the examples made before it was accepted and of those made after."""

    rule: Rule
    before: Rate
    after: Rate

    def to_json(self) -> dict[str, Any]:
        return {**self.rule.to_json(), "before": {"n": self.before.n, "rejected": self.before.rejected},
                "after": {"n": self.after.n, "rejected": self.after.rejected}}


# -- grouping ---------------------------------------------------------------------------------------
def mechanical(reason: str) -> str | None:
    """The check a reason names (``label_set``, ``copied_row``, ``max_chars``, ``language``), or None."""
    text = " ".join(reason.casefold().split())
    return next((name for name, pattern in MECHANICAL if pattern.search(text)), None)


def _words(reason: str) -> frozenset[str]:
    """The reason's content words, contractions opened ("doesn't" → "not") and plural/tense endings cut."""
    tokens = normalise(reason.casefold().replace("’", "'").replace("n't", " not")).split()
    words = frozenset(_stem(w) for w in tokens if w not in _STOP)
    return words or frozenset(tokens)


def _stem(word: str) -> str:
    for suffix, keep in (("ing", 4), ("ed", 4), ("es", 4), ("s", 3)):
        if word.endswith(suffix) and len(word) - len(suffix) >= keep and not word.endswith("ss"):
            return word[: -len(suffix)]
    return word


def group_rejections(rejections: list[Rejection]) -> list[ReasonGroup]:
    """Mechanical reasons grouped by their check; the others greedily, in the order given, each joining the
    first group whose first reason shares at least :data:`GROUP_OVERLAP` of the shorter word set with it."""
    by_check: dict[str, list[Rejection]] = {}
    free: list[tuple[frozenset[str], list[Rejection]]] = []
    for r in rejections:
        name = mechanical(r.reason)
        if name is not None:
            by_check.setdefault(name, []).append(r)
            continue
        words = _words(r.reason)
        for head, members in free:
            shorter = min(len(head), len(words))
            if shorter and len(head & words) / shorter >= GROUP_OVERLAP:
                members.append(r)
                break
        else:
            free.append((words, [r]))
    groups = [ReasonGroup(name, tuple(members)) for name, members in by_check.items()]
    return groups + [ReasonGroup(None, tuple(members)) for _, members in free]


# -- the table ---------------------------------------------------------------------------------------
_RULE_COLUMNS = ("id, task, kind, text, check_name, param, reasons, examples, status, edited, accepted_at, "
                 "created_at")


def _rule(r: tuple[Any, ...]) -> Rule:
    param = json.loads(r[5]) if r[5] else {}
    return Rule(int(r[0]), r[1], r[2], r[3], r[4], param if isinstance(param, dict) else {},
                tuple(json.loads(r[6] or "[]")), tuple(int(i) for i in json.loads(r[7] or "[]")), r[8], bool(r[9]),
                str(r[10]) if r[10] is not None else None, str(r[11]) if r[11] is not None else None)


def list_rules(ws: Workspace, task: str, status: str | None = None) -> list[Rule]:
    """The task's rules, oldest first (only those in ``status`` when given)."""
    if status is not None and status not in STATUSES:
        raise EngineError(f"unknown rule status {status!r}", fix=f"use one of {', '.join(STATUSES)}")
    sql, params = f"select {_RULE_COLUMNS} from rules where task = ?", [task]
    if status is not None:
        sql += " and status = ?"
        params.append(status)
    with ws.store.cursor() as cur:
        return [_rule(r) for r in cur.execute(sql + " order by id", params).fetchall()]


def accepted_rules(ws: Workspace, task: str) -> tuple[tuple[str, ...], tuple[Check, ...]]:
    """The task's accepted prompt rules (their texts, in order) and checks: what a new call is made with."""
    rules = list_rules(ws, task, "accepted")
    checks = tuple(c for c in (r.check() for r in rules) if c is not None)
    return tuple(r.text for r in rules if r.kind == "prompt"), checks


def add_rule(ws: Workspace, task: str, kind: str, text: str, reasons: tuple[str, ...], examples: tuple[int, ...],
             check_name: str | None = None, param: dict[str, Any] | None = None) -> Rule:
    """Store a proposed rule and return it."""
    if kind not in KINDS:
        raise EngineError(f"unknown rule kind {kind!r}", fix=f"use one of {', '.join(KINDS)}")
    stored = make_param(check_name, param or {}) if kind == "check" and check_name else None
    with ws.store.cursor() as cur:
        got = cur.execute("insert into rules (task, kind, text, check_name, param, reasons, examples, status) "
                          f"values (?, ?, ?, ?, ?, ?, ?, 'proposed') returning {_RULE_COLUMNS}",
                          [task, kind, clean_text(text), check_name, stored, json.dumps(list(reasons)),
                           json.dumps([int(i) for i in examples])]).fetchall()
    return _rule(got[0])


def get_rule(ws: Workspace, task: str, rule_id: int) -> Rule:
    """Rule ``rule_id`` of ``task``; EngineError naming the task's rules when there is no such rule."""
    with ws.store.cursor() as cur:
        got = cur.execute(f"select {_RULE_COLUMNS} from rules where id = ? and task = ?",
                          [int(rule_id), task]).fetchall()
    if not got:
        raise EngineError(f"task {task} has no rule {rule_id}", fix=f"list its rules with `rebase-tui rules {task}`")
    return _rule(got[0])


def set_rule_status(ws: Workspace, task: str, rule_id: int, status: str) -> Rule:
    """Accept (into the prompt or the checks, from now on) or drop a rule, or put it back to proposed."""
    if status not in STATUSES:
        raise EngineError(f"unknown rule status {status!r}", fix=f"use one of {', '.join(STATUSES)}")
    rule = get_rule(ws, task, rule_id)
    if rule.status != status:
        with ws.store.cursor() as cur:
            cur.execute("update rules set status = ?, updated_at = current_timestamp, accepted_at = case "
                        "when ? = 'accepted' then current_timestamp else accepted_at end where id = ?",
                        [status, status, int(rule_id)])
    return get_rule(ws, task, rule_id)


def edit_rule(ws: Workspace, task: str, rule_id: int, text: str) -> Rule:
    """Change a rule: a prompt rule's text; a ``max_chars`` check's limit (a number) or a ``label_set`` check's
    labels (comma-separated). Other checks have nothing to edit."""
    rule = get_rule(ws, task, rule_id)
    if rule.kind == "prompt":
        new_text, param = clean_text(text), None
        if not new_text:
            raise EngineError(f"the new text of rule {rule_id} is empty", fix="give the rule's text")
    elif rule.check_name == "max_chars":
        try:
            param = make_param("max_chars", {"max_chars": int(text.strip())})
        except ValueError:
            raise EngineError(f"rule {rule_id} checks a length: {text!r} is not a whole number",
                              fix="give the longest input plus output allowed, e.g. 600") from None
        new_text = f"examples over {int(text.strip())} characters (input and output together)"
    elif rule.check_name == "label_set":
        labels = [x.strip() for x in text.split(",") if x.strip()]
        param = make_param("label_set", {"labels": labels})
        new_text = f"answers outside {', '.join(labels)}"
    else:
        raise EngineError(f"rule {rule_id} is a {rule.check_name} check: it has nothing to edit",
                          fix=f"drop it with `rebase-tui rules {task} --drop {rule_id}`, or keep it")
    with ws.store.cursor() as cur:
        cur.execute("update rules set text = ?, param = coalesce(?, param), edited = true, "
                    "updated_at = current_timestamp where id = ?", [new_text, param, int(rule_id)])
    return get_rule(ws, task, rule_id)


def clean_text(text: str) -> str:
    """A rule's text on one line, without wrapping quotes, at most :data:`MAX_RULE_CHARS` characters."""
    one = " ".join((text or "").split()).strip().strip("\"'“”").strip()
    return one if len(one) <= MAX_RULE_CHARS else one[: MAX_RULE_CHARS - 1].rstrip() + "…"


# -- reading rejections and rates --------------------------------------------------------------------------
def _system_reasons() -> list[str]:
    return [*SYSTEM_REASONS, FILTER_REJECTED]


def new_rejections(ws: Workspace, task: str) -> list[Rejection]:
    """The reviewer's rejections with a reason that no rule was made from yet, oldest first."""
    covered = {i for rule in list_rules(ws, task) for i in rule.examples}
    with ws.store.cursor() as cur:
        got = cur.execute(
            "select e.id, e.input, e.output, e.reason, w.data from examples e left join rows w on w.id = e.row "
            "where e.task = ? and e.status = 'rejected' and coalesce(trim(e.reason), '') <> '' "
            "and e.reason not in (select unnest(?::varchar[])) order by e.id", [task, _system_reasons()]).fetchall()
    out = []
    for i, inp, outp, reason, data in got:
        if int(i) in covered:
            continue
        row = json.loads(data) if isinstance(data, str) else data
        out.append(Rejection(int(i), inp or "", outp or "", reason.strip(),
                             row if isinstance(row, dict) else ({"value": row} if row is not None else None)))
    return out


def rule_reports(ws: Workspace, task: str) -> list[RuleReport]:
    """Every rule with the reviewer's rejection rate of the task's examples made before it was accepted and
    of those made after (reviewed examples only; rejections the program made do not count)."""
    reports = []
    with ws.store.cursor() as cur:
        for rule in list_rules(ws, task):
            if rule.accepted_at is None:
                reports.append(RuleReport(rule, Rate(0, 0), Rate(0, 0)))
                continue
            got = cur.execute(
                "select created_at >= ?::timestamp as after, count(*), count(*) filter (where status = 'rejected') "
                "from examples where task = ? and (status = 'accepted' or (status = 'rejected' and "
                "(reason is null or reason not in (select unnest(?::varchar[]))))) group by 1",
                [rule.accepted_at, task, _system_reasons()]).fetchall()
            rates = {bool(after): Rate(int(n), int(rej)) for after, n, rej in got}
            reports.append(RuleReport(rule, rates.get(False, Rate(0, 0)), rates.get(True, Rate(0, 0))))
    return reports
