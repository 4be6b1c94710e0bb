"""An experiment's spec: the TOML file ``rebase-tui experiment SPEC.toml`` runs, read and checked.

::

    name = "bbh-small"                                 # the folder experiments/<name>/ of the workspace
    methods = ["base", "synthesize", "rebase", "teacher"]
    rounds = 2                                         # optional: refinement rounds after rebase (default 0)
    [teacher]                                          # every key optional: the workspace's settings otherwise
    model = "qwen2.5:14b"                              # also host, backend, temperature, seed, concurrency,
    prompt = "paper"                                   # num_ctx, num_predict; prompt default|paper; cot auto|on|off
    [student]
    model = "./models/SmolLM2-135M"                    # a folder (relative to this file) or a cached hub name
    recipe = "paper"                                   # default | paper; any train setting may follow
    max_steps = 200                                    # (epochs, lr, batch_size, lora_r, load_in_4bit, ...)
    [eval]
    max_new_tokens = 256                               # also batch_size, limit (first N test items), device
    [[tasks]]
    task = "boolean_expressions"                       # a stored task name, or a task file (relative to this file)
    test = "bbh_test/boolean_expressions.json"         # any test layout `eval --data` reads (relative to this file)
    examples = 200                                     # examples each data method makes (retrieval's top N)
    metric = "exact"                                   # optional: the task's metric otherwise
    exclude = ["maveriq/bigbenchhard"]                 # optional: datasets retrieval must never return

The methods: ``base`` is the untrained student (evaluated through the base of a run this experiment trained, so it
needs ``synthesize`` or ``rebase`` too), ``synthesize`` trains on examples the teacher wrote from the task alone,
``rebase`` on examples it made from the task's retrieved rows, ``teacher`` is the teacher itself answering the
test set few-shot (the ceiling). ``rounds = N`` follows ``rebase`` with N refinement rounds (``rebase-tui refine``:
the run's validation mistakes steer more retrieval, the round's examples are accepted when they pass the checks,
and the next run continues from the last one); each round's run is a column of its own, ``rebase+r1``...

Every problem is found at once and reported one line each, naming the file and the key
(``paper.toml: tasks[2].examples must be a whole number of at least 1, got "ten"``). Values that only the
workspace can judge (the teacher's numbers, the student's settings, a stored task's name) are checked when the
run starts, before any work, with the same kind of line.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.tasks import TASK_METRICS

METHODS = ("base", "synthesize", "rebase", "teacher")
DATA_METHODS = ("synthesize", "rebase")
"""The methods that make examples and train a student on them."""

TEACHER_KEYS: dict[str, type | tuple[type, ...]] = {
    "model": str, "host": str, "backend": str, "temperature": (int, float), "seed": int, "concurrency": int,
    "num_ctx": int, "num_predict": int, "prompt": str, "cot": str,
}
STUDENT_KEYS: dict[str, type | tuple[type, ...]] = {
    "model": str, "recipe": str, "method": str, "device": str, "format": str, "scheduler": str,
    "epochs": (int, float), "lr": (int, float), "eval_fraction": (int, float), "weight_decay": (int, float),
    "lora_dropout": (int, float), "max_steps": int, "batch_size": int, "grad_accum": int, "max_length": int,
    "eval_every": int, "seed": int, "threads": int, "max_memory_mb": int, "warmup_steps": int, "lora_r": int,
    "lora_alpha": int, "trust_remote_code": bool, "gradient_checkpointing": bool, "group_by_length": bool,
    "load_in_4bit": bool,
}
EVAL_KEYS: dict[str, type | tuple[type, ...]] = {"max_new_tokens": int, "batch_size": int, "limit": int, "device": str}
TASK_KEYS: dict[str, type | tuple[type, ...]] = {"task": str, "test": str, "examples": int, "metric": str,
                                                 "exclude": list}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


def round_method(k: int) -> str:
    """The results' name of the run trained after refinement round ``k``."""
    return f"rebase+r{k}"


class SpecError(EngineError):
    """A spec file with problems: one line per problem, each naming the file."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.problems = [f"{path.name}: {p}" for p in problems]
        super().__init__("\n".join(self.problems),
                         fix="correct those lines of the spec (`rebase-tui experiment --help` lists its keys)")


@dataclass(frozen=True)
class TaskEntry:
    """One ``[[tasks]]`` table: the task (a stored name, or a task file's resolved path), its test file, how many
    examples each data method makes, and the optional metric and extra bans."""

    task: str
    test: Path
    examples: int
    metric: str | None = None
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class EvalOptions:
    """How students are evaluated: new tokens per answer, batch size, the first ``limit`` items, the device."""

    max_new_tokens: int = 256
    batch_size: int = 8
    limit: int | None = None
    device: str = "auto"


@dataclass(frozen=True)
class ExperimentSpec:
    """A checked spec. ``teacher`` and ``student`` hold only the keys the file gives (the workspace's
    settings fill the rest); ``student`` is in the form :func:`engine.student.launch.start_training` takes
    (``student`` for the model)."""

    path: Path
    name: str
    methods: tuple[str, ...]
    tasks: tuple[TaskEntry, ...]
    teacher: dict[str, Any] = field(default_factory=dict)
    prompt: str = "default"
    cot: str = "auto"
    student: dict[str, Any] = field(default_factory=dict)
    eval: EvalOptions = field(default_factory=EvalOptions)
    text: str = ""
    rounds: int = 0

    @property
    def columns(self) -> tuple[str, ...]:
        """The results table's methods: the spec's, then one ``rebase+rK`` per refinement round."""
        return self.methods + tuple(round_method(k) for k in range(1, self.rounds + 1))

    @property
    def data_methods(self) -> tuple[str, ...]:
        """The methods that make data and train, in the spec's order."""
        return tuple(m for m in self.methods if m in DATA_METHODS)

    @property
    def uses_teacher(self) -> bool:
        return any(m in ("synthesize", "rebase", "teacher") for m in self.methods)


def read_spec(path: str | Path) -> ExperimentSpec:
    """Read and check a spec file (see the module docstring); SpecError lists every problem."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise EngineError(f"experiment spec {path} does not exist", fix="check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EngineError(f"cannot read experiment spec {path}: {exc}", fix="give a UTF-8 TOML file") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(path, [f"not valid TOML ({exc})"]) from None
    return parse_spec(data, path, text)


def _kind(expected: type | tuple[type, ...]) -> str:
    names = {int: "a whole number", float: "a number", str: "text", bool: "true or false", list: "a list"}
    if isinstance(expected, tuple):
        return "a number"
    return names.get(expected, expected.__name__)


def _typed(table: Any, where: str, keys: dict[str, type | tuple[type, ...]], problems: list[str]) -> dict[str, Any]:
    """The entries of ``table`` whose key is known and whose value has the expected type; a line per other."""
    if not isinstance(table, dict):
        problems.append(f"{where} must be a table")
        return {}
    out: dict[str, Any] = {}
    for key, value in table.items():
        expected = keys.get(key)
        if expected is None:
            problems.append(f"{where}: unknown key {key!r} (allowed: {', '.join(keys)})")
            continue
        bad_bool = isinstance(value, bool) and expected is not bool
        if bad_bool or not isinstance(value, expected):
            problems.append(f"{where}.{key} must be {_kind(expected)}, got {value!r}")
            continue
        out[key] = value
    return out


def parse_spec(data: dict[str, Any], path: Path, text: str = "") -> ExperimentSpec:
    """Check a spec's parsed TOML (relative paths are taken from ``path``'s folder)."""
    problems: list[str] = []
    base = path.resolve().parent
    unknown = sorted(set(data) - {"name", "methods", "rounds", "teacher", "student", "eval", "tasks"})
    for key in unknown:
        problems.append(f"unknown key {key!r} (allowed: name, methods, rounds, teacher, student, eval, tasks)")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        problems.append(f"name must be letters, digits, '_', '-' or '.' (it names a folder), got {name!r}")
    methods = _methods(data.get("methods"), problems)
    rounds = data.get("rounds", 0)
    if not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < 0:
        problems.append(f"rounds must be a whole number of at least 0, got {rounds!r}")
        rounds = 0
    elif rounds and "rebase" not in methods:
        problems.append("rounds: refinement rounds follow the rebase method, so methods must hold rebase")
    teacher = _typed(data.get("teacher", {}), "[teacher]", TEACHER_KEYS, problems)
    prompt, cot = teacher.pop("prompt", "default"), teacher.pop("cot", "auto")
    if prompt not in ("default", "paper"):
        problems.append(f"[teacher].prompt must be default or paper, got {prompt!r}")
    if cot not in ("auto", "on", "off"):
        problems.append(f"[teacher].cot must be auto, on or off, got {cot!r}")
    student = _typed(data.get("student", {}), "[student]", STUDENT_KEYS, problems)
    if "model" in student:
        model = student.pop("model")
        local = base / Path(model).expanduser()
        student["student"] = str(local) if local.exists() else model
    evals = _typed(data.get("eval", {}), "[eval]", EVAL_KEYS, problems)
    for key in ("max_new_tokens", "batch_size", "limit"):
        if key in evals and evals[key] < 1:
            problems.append(f"[eval].{key} must be at least 1, got {evals[key]}")
    if evals.get("device", "auto") not in ("auto", "cpu", "cuda"):
        problems.append(f"[eval].device must be auto, cpu or cuda, got {evals['device']!r}")
    tasks = _tasks(data.get("tasks"), base, problems)
    if problems:
        raise SpecError(path, problems)
    assert isinstance(name, str)
    return ExperimentSpec(path=path.resolve(), name=name, methods=methods, tasks=tasks, teacher=teacher,
                          prompt=prompt, cot=cot, student=student, eval=EvalOptions(**evals), text=text,
                          rounds=rounds)


def _methods(value: Any, problems: list[str]) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(m, str) for m in value):
        problems.append(f"methods must be a list of some of {', '.join(METHODS)}, got {value!r}")
        return ()
    bad = [m for m in value if m not in METHODS]
    if bad:
        problems.append(f"methods: {', '.join(map(repr, bad))} is not one of {', '.join(METHODS)}")
    if len(set(value)) != len(value):
        problems.append("methods: a method is listed twice")
    if "base" in value and not any(m in DATA_METHODS for m in value):
        problems.append("methods: base is evaluated through a trained run's untrained student, so it needs "
                        "synthesize or rebase too")
    return tuple(value)


def _tasks(value: Any, base: Path, problems: list[str]) -> tuple[TaskEntry, ...]:
    if not isinstance(value, list) or not value:
        problems.append("tasks: give at least one [[tasks]] table with task, test and examples")
        return ()
    out: list[TaskEntry] = []
    for i, table in enumerate(value, 1):
        where = f"tasks[{i}]"
        got = _typed(table, where, TASK_KEYS, problems)
        missing = [k for k in ("task", "test", "examples") if isinstance(table, dict) and k not in table]
        if missing:
            problems.append(f"{where} lacks {', '.join(missing)}")
        if not {"task", "test", "examples"} <= set(got):
            continue
        if got["examples"] < 1:
            problems.append(f"{where}.examples must be a whole number of at least 1, got {got['examples']}")
            continue
        metric = got.get("metric")
        if metric is not None and any(m.strip().lower() not in TASK_METRICS for m in metric.split(",")):
            problems.append(f"{where}.metric must be one of {', '.join(TASK_METRICS)} (comma-separated for several), "
                            f"got {metric!r}")
            continue
        exclude = got.get("exclude", [])
        if not all(isinstance(x, str) for x in exclude):
            problems.append(f"{where}.exclude must be a list of dataset ids")
            continue
        task = got["task"]
        if task.lower().endswith(".json") or "/" in task:
            file = (base / Path(task).expanduser()).resolve()
            if not file.is_file():
                problems.append(f"{where}.task: no task file {file}")
                continue
            task = str(file)
        test = (base / Path(got["test"]).expanduser()).resolve()
        if not test.is_file():
            problems.append(f"{where}.test: no test file {test}")
            continue
        out.append(TaskEntry(task, test, got["examples"], metric, tuple(exclude)))
    refs = [t.task for t in out]
    if len(set(refs)) != len(refs):
        problems.append("tasks: a task is listed twice")
    return tuple(out)
