"""Teacher prompts (ReBase's transformation and filter prompts), output schemas and label sets.

The transform prompt follows the paper: the task description, the task's examples in its own format, and
the retrieved row as JSON with every field cut to 250 characters; the teacher is asked for one new example
whose *format* follows the examples and whose *content* comes from the row. The template is stored per task
(``tasks.prompt_template``, null = :data:`DEFAULT_TEMPLATE`) and may be edited; the placeholders
``{instruction}``, ``{examples}`` and ``{row}`` are replaced (other braces are left alone). The hash of
everything that shapes the prompt (template, task, schema) is part of every teacher call's cache key.

Chain-of-thought: when the task's example outputs reason and end in "the answer is X" (``cot="auto"``), the
schema asks for ``input``, ``reasoning`` and ``answer``, and the stored output is written in the examples'
style: the reasoning, then "The answer is X.".

Two choices shape a prompt beside the template (:func:`spec_for`): the *prompt* wording — ``default`` (this
project's, or the task's stored template) or ``paper`` (the released ReBase code's, see
:mod:`engine.teacher.paper_prompt`) — and the *method*: ``rebase`` turns a retrieved row into an example,
``synthesize`` (the baseline ReBase is compared with) has the teacher write an example from the instruction and
the demonstrations alone. Both enter the prompt hash, so each choice has cache keys of its own; the default
choices hash exactly as before they existed, so existing caches stay valid.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.errors import EngineError
from engine.review import METHODS
from engine.tasks import Task, final_answer
from engine.teacher import paper_prompt

if TYPE_CHECKING:
    from engine.teacher.rule_checks import Check

FIELD_CHARS = 250
PROMPT_VERSION = "1"

DEFAULT_TEMPLATE = """\
You are helping to build a dataset for the following task.

Task description: {instruction}

Here are examples of the task, in the exact format its data must have:

{examples}

Here is a data sample taken from an existing dataset (as JSON; long fields are cut):

{row}

Transform the data sample into ONE new example of the task. The format of the new example (how its input \
is phrased and what its output looks like) must follow the examples above; its content must come from the \
data sample. Do not copy the examples. Answer with JSON only, using the fields asked for.
"""

SYNTHESIZE_TEMPLATE = """\
You are helping to build a dataset for the following task.

Task description: {instruction}

Here are examples of the task, in the exact format its data must have:

{examples}

Write ONE new example of the task. Its format (how its input is phrased and what its output looks like) must \
follow the examples above; its content must be new: an input unlike every example's, with its correct output. \
Do not copy the examples. Answer with JSON only, using the fields asked for.
"""

PROMPTS = ("default", "paper")
"""The prompt wordings: this project's (or the task's stored template), and the released ReBase code's."""

FILTER_TEMPLATE = """\
Task description: {instruction}

Here are examples of the task:

{examples}

Here is a candidate new example:

{candidate}

Is the candidate a correct, well-formed example of this task whose output answers its input? \
Answer with JSON: {{"fits": true}} or {{"fits": false}}.
"""

OPTION_RE = re.compile(r"^\([A-Z]\)$")
_PAIRS = ({"true", "false"}, {"yes", "no"}, {"valid", "invalid"})


@dataclass(frozen=True)
class LabelSet:
    """The answers a task allows: an explicit set, or a regex (multiple-choice letters)."""

    values: tuple[str, ...] = ()
    pattern: str | None = None

    def canonical(self, answer: str) -> str | None:
        """The allowed spelling of ``answer`` (case-insensitive match), or None when it is outside the set."""
        a = answer.strip().rstrip(".").strip()
        if self.pattern is not None:
            return a if re.fullmatch(self.pattern, a) else None
        for v in self.values:
            if v.lower() == a.lower():
                return v
        return None

    def describe(self) -> str:
        return f"/{self.pattern}/" if self.pattern else "{" + ", ".join(self.values) + "}"

    def schema(self) -> dict[str, Any]:
        if self.pattern is not None:
            return {"type": "string", "pattern": self.pattern}
        return {"type": "string", "enum": list(self.values)}


def resolve_cot(task: Task, mode: str) -> bool:
    """Whether examples carry reasoning: ``auto`` follows the task's examples, ``on``/``off`` force it."""
    if mode not in ("auto", "on", "off"):
        raise EngineError(f"--cot {mode!r} is not one of auto, on, off", fix="pass --cot auto, on or off")
    return task.reasons if mode == "auto" else mode == "on"


def label_set(task: Task, cot: bool) -> LabelSet | None:
    """The small set every example answer comes from, when there is one.

    Multiple-choice letters ("(A)") give the pattern ``^\\([A-Z]\\)$``; single-word answers (Yes/No,
    True/False, Entailment/Neutral/Contradiction) give that set (a known pair is completed: a task whose
    examples only say "No" still allows "Yes"). Anything else (numbers, spans, code) has no label set.
    """
    answers = []
    for e in task.examples:
        a = final_answer(e.output) if cot else e.output
        if a is None:
            return None
        answers.append(a.strip().rstrip(".").strip())
    if not answers:
        return None
    if all(OPTION_RE.fullmatch(a) for a in answers):
        return LabelSet(pattern=OPTION_RE.pattern)
    if all(re.fullmatch(r"[A-Za-z][A-Za-z_\-]{0,19}", a) for a in answers):
        distinct: dict[str, str] = {}
        for a in answers:
            distinct.setdefault(a.lower(), a)
        lowered = set(distinct)
        for pair in _PAIRS:
            if lowered <= pair:
                for word in sorted(pair - lowered):
                    sample = next(iter(distinct.values()))
                    distinct[word] = word.capitalize() if sample[:1].isupper() else word
        return LabelSet(values=tuple(distinct.values()))
    return None


def output_schema(task: Task, cot: bool) -> dict[str, Any]:
    """The JSON schema the teacher's answer must follow (Ollama ``format``, OpenAI ``response_format``)."""
    labels = label_set(task, cot)
    answer = labels.schema() if labels else {"type": "string"}
    if cot:
        props = {"input": {"type": "string"}, "reasoning": {"type": "string"}, "answer": answer}
    else:
        props = {"input": {"type": "string"}, "output": answer}
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


FILTER_SCHEMA: dict[str, Any] = {"type": "object", "properties": {"fits": {"type": "boolean"}},
                                 "required": ["fits"], "additionalProperties": False}


def render_examples(task: Task) -> str:
    """The task's examples in its own format."""
    return "\n\n".join(f"Example {i}:\nInput: {e.input}\nOutput: {e.output}"
                       for i, e in enumerate(task.examples, 1))


def cut(value: Any, limit: int = FIELD_CHARS) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "…"


def render_row(row: dict[str, Any], limit: int = FIELD_CHARS) -> str:
    """The retrieved row as JSON, every field cut to ``limit`` characters (empty fields dropped)."""
    return json.dumps({str(k): cut(v, limit) for k, v in row.items() if v not in (None, "")},
                      ensure_ascii=False, indent=1)


def fill(template: str, **values: str) -> str:
    """Replace ``{name}`` placeholders; other braces are kept (JSON in templates stays intact)."""
    parts = re.split(r"(\{(?:" + "|".join(map(re.escape, values)) + r")\})", template)
    out = []
    for part in parts:
        if part.startswith("{") and part.endswith("}") and part[1:-1] in values:
            out.append(values[part[1:-1]])
        else:
            out.append(part.replace("{{", "{").replace("}}", "}"))
    return "".join(out)


def validate_template(template: str) -> None:
    """A template must place the row (``{row}``) and should name the task (``{instruction}``)."""
    missing = [p for p in ("{instruction}", "{row}") if p not in template]
    if missing:
        raise EngineError(f"the prompt template lacks {', '.join(missing)}",
                          fix="keep the placeholders {instruction}, {examples} and {row} in the template")


def transform_messages(template: str, task: Task, row: dict[str, Any]) -> list[dict[str, str]]:
    """The chat messages of one transform call."""
    text = fill(template, instruction=task.instruction, examples=render_examples(task), row=render_row(row))
    return [{"role": "user", "content": text}]


def filter_messages(task: Task, example_input: str, example_output: str) -> list[dict[str, str]]:
    """The chat messages of the paper's yes/no filter question for one new example."""
    candidate = f"Input: {example_input}\nOutput: {example_output}"
    text = fill(FILTER_TEMPLATE, instruction=task.instruction, examples=render_examples(task),
                candidate=candidate)
    return [{"role": "user", "content": text}]


def prompt_hash(template: str, task: Task, schema: dict[str, Any], prompt: str = "default",
                method: str = "rebase", rules: tuple[str, ...] = ()) -> str:
    """Hash of everything that shapes a transform prompt except the row. The wording, the method and the
    task's accepted rules enter it only when they are not the defaults (none), so the hashes made before those
    choices existed stay the same."""
    parts: list[Any] = [PROMPT_VERSION, template, task.instruction, [[e.input, e.output] for e in task.examples],
                        schema]
    if prompt != "default":
        parts.append(f"prompt:{prompt}")
    if method != "rebase":
        parts.append(f"method:{method}")
    if rules:
        parts.append(["rules", list(rules)])
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PromptSpec:
    """Everything that shapes a task's transform calls except the row: the template, the format (reasoning
    or direct), the answer schema the server constrains replies to, the label set answers must come from, the
    wording (``prompt``), the ``method`` and the task's accepted ``rules``, and the hash of all of it (part of
    every call's cache key, so a changed prompt means new calls). ``checks`` are the task's accepted check
    rules: they judge replies, so they are not part of the hash (a cached reply is judged when it is made)."""

    task: Task
    template: str
    cot: bool
    schema: dict[str, Any]
    labels: LabelSet | None
    hash: str
    prompt: str = "default"
    method: str = "rebase"
    rules: tuple[str, ...] = ()
    checks: tuple[Check, ...] = ()
    base_hash: str = ""
    """The hash without the rules (``hash`` itself when there are none): rows made with the same prompt up to
    the rules are not made again when the rules change (see :func:`engine.teacher.plan.items_of`)."""

    @classmethod
    def build(cls, task: Task, template: str, cot: bool, *, prompt: str = "default",
              method: str = "rebase", rules: tuple[str, ...] = (), checks: tuple[Check, ...] = ()) -> PromptSpec:
        """The spec of ``task`` with ``template`` in the reasoning (``cot``) or direct format."""
        schema = output_schema(task, cot)
        base = prompt_hash(template, task, schema, prompt, method)
        return cls(task, template, cot, schema, label_set(task, cot),
                   prompt_hash(template, task, schema, prompt, method, rules) if rules else base, prompt, method,
                   rules, checks, base)

    def messages(self, row: dict[str, Any] | None) -> list[dict[str, str]]:
        """The chat messages asking for one example made from ``row`` (None when synthesizing), the task's
        accepted rules closing the last one."""
        out = self._messages(row)
        if self.rules:
            out[-1] = dict(out[-1], content=out[-1]["content"].rstrip("\n") + "\n\n" + render_rules(self.rules))
        return out

    def _messages(self, row: dict[str, Any] | None) -> list[dict[str, str]]:
        if self.prompt != "paper":
            if row is None:
                text = fill(self.template, instruction=self.task.instruction, examples=render_examples(self.task))
                return [{"role": "user", "content": text}]
            return transform_messages(self.template, self.task, row)
        values = {"instruction": self.task.instruction,
                  "examples": paper_prompt.render_examples([(e.input, e.output) for e in self.task.examples]),
                  "fields": paper_prompt.describe_fields(list(self.schema["properties"]))}
        if row is not None:
            values["row"] = paper_prompt.render_row(row)
        return [{"role": "system", "content": paper_prompt.SYSTEM},
                {"role": "user", "content": fill(self.template, **values)}]

    def sample(self, data: dict[str, Any], input_column: str | None = None,
               output_column: str | None = None) -> dict[str, Any]:
        """What the prompt shows of a pool row: the row, or with the paper's wording, only its best input and
        output cells when the row is longer than the paper allowed (see :func:`paper_prompt.paper_sample`)."""
        if self.prompt == "paper":
            return paper_prompt.paper_sample(data, input_column, output_column)
        return data

    def describe(self) -> str:
        """The format in words, for logs: "direct format, label set {Yes, No}, 2 rules"."""
        labels = f", label set {self.labels.describe()}" if self.labels else ""
        wording = ", the paper's prompt" if self.prompt == "paper" else ""
        rules = f", {len(self.rules)} rule(s)" if self.rules else ""
        checks = f", {len(self.checks)} check(s)" if self.checks else ""
        return f"{'reasoning' if self.cot else 'direct'} format{labels}{wording}{rules}{checks}"


def check_choices(prompt: str, method: str) -> None:
    """EngineError for a prompt wording or method that does not exist."""
    if prompt not in PROMPTS:
        raise EngineError(f"--prompt {prompt!r} is not one of {', '.join(PROMPTS)}",
                          fix="pass --prompt default (this project's wording) or --prompt paper (the paper's)")
    if method not in METHODS:
        raise EngineError(f"--method {method!r} is not one of {', '.join(METHODS)}",
                          fix="pass --method rebase (from retrieved rows) or --method synthesize (from the task alone)")


def spec_for(ws: Any, task: Task, *, cot: str = "auto", prompt: str = "default",
             method: str = "rebase") -> PromptSpec:
    """The spec a transform of ``task`` uses: the template follows the wording and the method (the task's
    stored template is this project's wording for retrieved rows; the other three are fixed), with the task's
    accepted rules and checks."""
    from engine.teacher.rules import accepted_rules

    check_choices(prompt, method)
    if prompt == "paper":
        template = paper_prompt.PAPER_TEMPLATE if method == "rebase" else paper_prompt.PAPER_SYNTHESIZE_TEMPLATE
    else:
        template = get_template(ws, task.name) if method == "rebase" else SYNTHESIZE_TEMPLATE
    rules, checks = accepted_rules(ws, task.name)
    return PromptSpec.build(task, template, resolve_cot(task, cot), prompt=prompt, method=method, rules=rules,
                            checks=checks)


def render_rules(rules: tuple[str, ...]) -> str:
    """The task's accepted rules as the prompt shows them."""
    lines = "\n".join(f"{i}. {rule}" for i, rule in enumerate(rules, 1))
    return f"Rules the new example must follow (from the reviewer of earlier examples):\n{lines}\n"


def compose_output(reasoning: str, answer: str) -> str:
    """A reasoning output in the examples' style: the reasoning, then "The answer is X."."""
    r = reasoning.strip()
    if r and r[-1] not in ".!?":
        r += "."
    a = answer.strip()
    if a.endswith("."):
        a = a[:-1]
    return f"{r} The answer is {a}." if r else f"The answer is {a}."


# -- stored templates -------------------------------------------------------------------------------
def get_template(ws: Any, task_name: str) -> str:
    """The task's prompt template (the default when none is stored)."""
    with ws.store.cursor() as cur:
        rows = cur.execute("select prompt_template from tasks where name = ?", [task_name]).fetchall()
    return rows[0][0] if rows and rows[0][0] else DEFAULT_TEMPLATE


def set_template(ws: Any, task_name: str, template: str | None) -> None:
    """Store (or with None, reset to the default) the task's prompt template."""
    if template is not None:
        validate_template(template)
        if template == DEFAULT_TEMPLATE:
            template = None
    with ws.store.transaction() as cur:
        n = cur.execute("select count(*) from tasks where name = ?", [task_name]).fetchall()[0][0]
        if not n:
            raise EngineError(f"unknown task {task_name!r}", fix="add it with `rebase-tui task add FILE`")
        cur.execute("update tasks set prompt_template = ?, updated_at = current_timestamp where name = ?",
                    [template, task_name])
