"""Tasks: an instruction, a few input/output demonstrations, and datasets to exclude (contamination bans).

A task file is one JSON object:
``{"name", "instruction", "examples": [{"input", "output"}], "source_datasets_to_exclude": [...]}``.
Its ``examples`` are demonstrations (:class:`Demonstration`): pairs the user wrote to show the task, not
the teacher-made training examples of the ``examples`` table. Wherever a command takes a TASK it accepts a
stored name or a path to such a file (imported on the fly).
"""

from __future__ import annotations

import json
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.datastore.cells import storable
from engine.errors import EngineError
from engine.workspace import Workspace

TASK_KEYS = {"name", "instruction", "examples", "source_datasets_to_exclude", "metric"}
#: The metrics a task may name (see engine.student.metrics); several are comma-separated (``"bleu,chrf"``).
TASK_METRICS = ("exact", "squad", "accuracy", "bleu", "chrf")
UNSTORABLE = "holds a lone surrogate (an unpaired \\ud800-\\udfff escape), which UTF-8 text cannot store"
_ANSWER_RE = re.compile(r"the answer is\s*:?\s*(.+?)\s*\.?\s*$", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Demonstration:
    """One input/output pair that shows the task (an entry of the task file's ``examples`` list)."""

    input: str
    output: str


@dataclass(frozen=True)
class Task:
    """A validated task. ``examples`` holds its demonstrations (named after the task file's key);
    ``exclude`` the dataset ids its pool must never come from; ``metric`` how a student is scored on it
    (None: inferred from the test data)."""

    name: str
    instruction: str
    examples: tuple[Demonstration, ...]
    exclude: tuple[str, ...] = field(default=())
    metric: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The task file format."""
        return {
            "name": self.name,
            "instruction": self.instruction,
            "examples": [{"input": e.input, "output": e.output} for e in self.examples],
            "source_datasets_to_exclude": list(self.exclude),
        } | ({"metric": self.metric} if self.metric else {})

    @property
    def reasons(self) -> bool:
        """True when every example output reasons and ends in "the answer is X" (chain-of-thought)."""
        return bool(self.examples) and all(final_answer(e.output) is not None for e in self.examples)


def final_answer(output: str) -> str | None:
    """X from an output ending in "... the answer is X." (without the closing period), else None."""
    idx = output.lower().rfind("the answer is")
    if idx < 0:
        return None
    m = _ANSWER_RE.match(output[idx:])
    return m.group(1).strip() if m else None


OUTPUT_RULES = ("released", "stripped")
"""How a reasoning output becomes a retrieval query: see :func:`output_target`."""


def output_target(output: str, rule: str = "released") -> str:
    """What retrieval compares with: for an output that reasons, its answer; else the whole output.

    ``released`` takes the text after the last "answer is " as it stands (``"(A)."``, period kept) — what the
    paper's released code compared, and what reproduces its retrieval lists; ``stripped`` takes the final
    answer without its closing period (``"(A)"``).
    """
    if rule == "released":
        return output.split("answer is ")[-1] if "answer is " in output else output
    if rule != "stripped":
        raise EngineError(f"unknown output rule {rule!r}", fix=f"use one of {', '.join(OUTPUT_RULES)}")
    answer = final_answer(output)
    return answer if answer is not None else output


#: Problems a TaskError's message lists (``problems`` keeps them all): a file of thousands of broken
#: demonstrations must still read as one line.
SHOWN_PROBLEMS = 8


class TaskError(EngineError):
    """A task file or spec is invalid; ``problems`` lists every problem found."""

    def __init__(self, where: str, problems: list[str]) -> None:
        self.problems = problems
        shown = problems[:SHOWN_PROBLEMS]
        if len(problems) > SHOWN_PROBLEMS:
            shown = [*shown, f"and {len(problems) - SHOWN_PROBLEMS} more problem(s)"]
        super().__init__(f"{where}: " + "; ".join(shown),
                         fix='a task is {"name", "instruction", "examples": [{"input", "output"}, ...], '
                             '"source_datasets_to_exclude": [...]}')


def _storable(text: str) -> bool:
    """False for text holding a lone surrogate (JSON's ``"\\ud800"``): UTF-8, and so DuckDB, cannot store it."""
    return not storable(text)[1]


def _shown(text: str, limit: int = 40) -> str:
    """``text`` for a message: its repr, cut to ``limit`` characters."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _keys(keys: list[str]) -> str:
    """Unknown keys for a message: plain when they look like names, else quoted (a key may hold a newline
    or any other character), at most five."""
    shown = [k if re.fullmatch(r"[\w.\-]{1,40}", k) else _shown(k) for k in keys[:5]]
    return ", ".join(shown) + (", ..." if len(keys) > 5 else "")


def validate(data: Any, where: str = "task") -> Task:
    """Check a task spec and return it as a Task; raise TaskError listing every problem."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise TaskError(where, ["must be a JSON object"])
    unknown = sorted(set(data) - TASK_KEYS)
    if unknown:
        problems.append(f"unknown key(s) {_keys(unknown)} (allowed: {', '.join(sorted(TASK_KEYS))})")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append("missing or empty name")
    elif not re.fullmatch(r"[\w.\-]+", name.strip()):
        problems.append(f"name {_shown(name)} may only hold letters, digits, '_', '-' and '.'")
    instruction = data.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        problems.append("missing or empty instruction")
    elif not _storable(instruction):
        problems.append(f"instruction {UNSTORABLE}")
    examples = data.get("examples")
    parsed: list[Demonstration] = []
    if not isinstance(examples, list) or not examples:
        problems.append("no examples (give at least one {\"input\", \"output\"} pair)")
    else:
        for i, ex in enumerate(examples, 1):
            if not isinstance(ex, dict):
                problems.append(f"example {i} is not an object")
                continue
            bad = sorted(set(ex) - {"input", "output"})
            if bad:
                problems.append(f"example {i} has unknown key(s) {_keys(bad)}")
            for key in ("input", "output"):
                if not isinstance(ex.get(key), str) or not ex[key].strip():
                    problems.append(f"example {i} has no {key}")
                elif not _storable(ex[key]):
                    problems.append(f"example {i}'s {key} {UNSTORABLE}")
            if isinstance(ex.get("input"), str) and isinstance(ex.get("output"), str):
                parsed.append(Demonstration(ex["input"], ex["output"]))
    exclude = data.get("source_datasets_to_exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(x, str) for x in exclude):
        problems.append("source_datasets_to_exclude must be a list of dataset ids")
        exclude = []
    elif not all(_storable(x) for x in exclude):
        problems.append(f"source_datasets_to_exclude {UNSTORABLE}")
        exclude = []
    metric = data.get("metric")
    if metric is not None:
        names = [m.strip().lower() for m in metric.split(",")] if isinstance(metric, str) else []
        if not names or any(m not in TASK_METRICS for m in names):
            problems.append(f"metric must be one of {', '.join(TASK_METRICS)} (comma-separated for several), "
                            f"got {metric!r}")
            metric = None
        else:
            metric = ",".join(names)
    if problems:
        raise TaskError(where, problems)
    return Task(str(name).strip(), str(instruction).strip(), tuple(parsed),
                tuple(x.strip() for x in exclude if x.strip()), metric)


def read_task_file(path: Path) -> Task:
    """Read and validate a task JSON file; every problem is one EngineError (TaskError for the content)."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # a FIFO or device would block or never end
            raise EngineError(f"cannot read task file {path}: not a regular file", fix="pass a JSON file")
        text = path.read_text(encoding="utf-8-sig")  # a UTF-8 byte-order mark is fine
    except OSError as exc:
        raise EngineError(f"cannot read task file {path}: {exc.strerror}", fix="check the path") from None
    except UnicodeDecodeError:
        raise EngineError(f"task file {path} is not UTF-8 text", fix="save it as UTF-8 JSON") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EngineError(f"task file {path} is not valid JSON (line {exc.lineno}: {exc.msg})",
                          fix="fix the JSON syntax") from None
    except RecursionError:
        raise EngineError(f"task file {path} is nested too deeply to be a task",
                          fix='a task is one flat JSON object: {"name", "instruction", "examples": [...]}') from None
    return validate(data, str(path))


def write_task_file(task: Task, path: Path) -> Path:
    """Write ``task`` as a task JSON file at ``path`` (a folder gets ``<name>.json``); return the file."""
    target = Path(path).expanduser()
    if target.is_dir():
        target = target / f"{task.name}.json"
    try:
        target.write_text(json.dumps(task.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise EngineError(f"cannot write {target}: {exc.strerror}", fix="choose another path") from None
    return target


# -- storage --------------------------------------------------------------------------------
def add_task(ws: Workspace, task: Task, replace: bool = False) -> None:
    """Store a task; a duplicate name is an error unless ``replace``."""
    with ws.store.transaction() as cur:
        exists = cur.execute("select count(*) from tasks where name = ?", [task.name]).fetchall()[0][0]
        if exists and not replace:
            raise EngineError(f"a task named {task.name!r} already exists",
                              fix="choose another name, or remove it first with `rebase-tui task remove`")
        if exists:
            cur.execute("update tasks set spec = ?, updated_at = current_timestamp where name = ?",
                        [json.dumps(task.to_json()), task.name])
        else:
            cur.execute("insert into tasks (name, spec) values (?, ?)", [task.name, json.dumps(task.to_json())])


def get_task(ws: Workspace, name: str) -> Task | None:
    """The stored task of that name, or None."""
    with ws.store.cursor() as cur:
        rows = cur.execute("select spec from tasks where name = ?", [name]).fetchall()
    return validate(json.loads(rows[0][0]), f"stored task {name}") if rows else None


def list_tasks(ws: Workspace) -> list[Task]:
    """All stored tasks, by name."""
    with ws.store.cursor() as cur:
        rows = cur.execute("select name, spec from tasks order by name").fetchall()
    return [validate(json.loads(spec), f"stored task {name}") for name, spec in rows]


def remove_task(ws: Workspace, name: str) -> None:
    """Delete a stored task and its pool (examples and runs are kept)."""
    with ws.store.transaction() as cur:
        n = cur.execute("select count(*) from tasks where name = ?", [name]).fetchall()[0][0]
        if not n:
            raise unknown_task(ws, name)
        cur.execute("delete from retrievals where task = ?", [name])
        cur.execute("delete from tasks where name = ?", [name])


def unknown_task(ws: Workspace, name: str) -> EngineError:
    names = [t.name for t in list_tasks(ws)]
    known = f"known tasks: {', '.join(names)}" if names else "no tasks are stored yet"
    return EngineError(f"unknown task {name!r} ({known})",
                       fix="add it with `rebase-tui task add FILE`, or pass a path to a task JSON file")


def resolve_task(ws: Workspace, ref: str) -> Task:
    """A TASK argument: a stored name, or a path to a task file (imported, replacing a same-named one)."""
    task = get_task(ws, ref)
    if task is not None:
        return task
    path = Path(ref).expanduser()
    try:
        is_path = path.suffix.lower() == ".json" or path.is_file()
        exists = is_path and path.exists()
    except OSError as exc:  # e.g. a folder on the way that may not be searched
        raise EngineError(f"cannot read task file {path}: {exc.strerror}", fix="check the path") from None
    if is_path:
        if not exists:
            raise EngineError(f"task file {path} does not exist", fix="check the path")
        task = read_task_file(path)
        stored = get_task(ws, task.name)
        if stored != task:
            add_task(ws, task, replace=True)
        return task
    raise unknown_task(ws, ref)
