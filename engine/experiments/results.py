"""An experiment's results: ``results.json`` (one row per task, method and metric) and ``results.md`` (the
table: one row per task and metric, one column per method, value ± half the 95 % interval), and the readers a
front end shows them with (:func:`list_experiments`, :func:`load_results`).

Both files are rewritten whole (atomically) each time a row is added, so a table read while an experiment runs
shows what is finished and "…" for the rest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import EngineError
from engine.student.outputs import atomic_file

if TYPE_CHECKING:
    from engine.workspace import Workspace

EXPERIMENTS_DIR = "experiments"
RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
SPEC_COPY = "spec.toml"
PENDING = "…"


@dataclass(frozen=True, slots=True)
class ResultRow:
    """One value of the table: a method's score on a task with one metric, its 95 % bootstrap interval, the
    training examples behind it, the teacher calls its data (or answers) took, and the wall-clock seconds of
    the stages that made it (an interrupted attempt's time is not counted)."""

    task: str
    method: str
    metric: str
    value: float
    ci95: tuple[float, float]
    n_train: int
    teacher_calls: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "method": self.method, "metric": self.metric, "value": self.value,
                "ci95": list(self.ci95), "n_train": self.n_train, "teacher_calls": self.teacher_calls,
                "seconds": round(self.seconds, 3)}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ResultRow:
        lo, hi = obj["ci95"]
        return cls(str(obj["task"]), str(obj["method"]), str(obj["metric"]), float(obj["value"]),
                   (float(lo), float(hi)), int(obj["n_train"]), int(obj["teacher_calls"]), float(obj["seconds"]))

    def cell(self) -> str:
        """``0.740 ± 0.052`` (BLEU and chrF on their 0-100 scale: ``31.2 ± 2.4``)."""
        half = (self.ci95[1] - self.ci95[0]) / 2
        digits = 1 if self.metric in ("bleu", "chrf") else 3
        return f"{self.value:.{digits}f} ± {half:.{digits}f}"


@dataclass(frozen=True)
class ExperimentResults:
    """What an experiment has found so far: its methods and tasks (the table's columns and rows) and the
    rows finished; ``complete`` once every task has every method's value."""

    name: str
    methods: tuple[str, ...]
    tasks: tuple[str, ...]
    rows: tuple[ResultRow, ...]
    complete: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "methods": list(self.methods), "tasks": list(self.tasks),
                "complete": self.complete, "rows": [r.to_json() for r in self.rows]}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ExperimentResults:
        rows = tuple(ResultRow.from_json(r) for r in obj.get("rows", []))
        return cls(str(obj["name"]), tuple(obj.get("methods") or dict.fromkeys(r.method for r in rows)),
                   tuple(obj.get("tasks") or dict.fromkeys(r.task for r in rows)), rows, bool(obj.get("complete")))

    def table(self) -> tuple[list[str], list[list[str]]]:
        """The header (``task``, ``metric``, then one column per method) and one line of cells per task and
        metric, ``…`` where a value is not there yet."""
        by_key = {(r.task, r.method, r.metric): r for r in self.rows}
        lines: list[list[str]] = []
        for task in self.tasks:
            metrics = list(dict.fromkeys(r.metric for r in self.rows if r.task == task)) or [PENDING]
            for metric in metrics:
                cells = [by_key[(task, m, metric)].cell() if (task, m, metric) in by_key else PENDING
                         for m in self.methods]
                lines.append([task, metric, *cells])
        return ["task", "metric", *self.methods], lines

    def markdown(self) -> str:
        """The table as Markdown (``results.md``)."""
        head, lines = self.table()
        out = [f"# {self.name}", "", "Value ± half the 95 % bootstrap interval, per task and metric."
               + ("" if self.complete else " Unfinished: … marks a value still to come."), "",
               "| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
        out += ["| " + " | ".join(cells) + " |" for cells in lines]
        return "\n".join(out) + "\n"


def experiment_dir(ws: Workspace, name: str) -> Path:
    return ws.path / EXPERIMENTS_DIR / name


def write_results(folder: Path, results: ExperimentResults) -> None:
    """Write ``results.json`` and ``results.md`` (each atomically)."""
    with atomic_file(folder / RESULTS_JSON) as tmp:
        tmp.write_text(json.dumps(results.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    with atomic_file(folder / RESULTS_MD) as tmp:
        tmp.write_text(results.markdown(), encoding="utf-8")


def load_results(ws: Workspace, name: str) -> ExperimentResults:
    """The results of experiment ``name`` (EngineError naming the known ones when it has none)."""
    path = experiment_dir(ws, name) / RESULTS_JSON
    try:
        return ExperimentResults.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        known = ", ".join(e.name for e in list_experiments(ws)) or "none yet"
        raise EngineError(f"experiment {name!r} has no results (experiments: {known})",
                          fix="run it with `rebase-tui experiment SPEC.toml`") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EngineError(f"{path} cannot be read: {exc}", fix="run the experiment again to rewrite it") from None


@dataclass(frozen=True, slots=True)
class ExperimentInfo:
    """One experiment of the workspace as a list shows it: its folder, how many values it has of how many,
    whether it is complete, and when its results last changed (seconds since the epoch)."""

    name: str
    path: Path
    values: int
    expected: int
    complete: bool
    updated: float


def list_experiments(ws: Workspace) -> list[ExperimentInfo]:
    """The workspace's experiments that have results, the most recently updated first."""
    root = ws.path / EXPERIMENTS_DIR
    out = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        path = folder / RESULTS_JSON
        try:
            res = ExperimentResults.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        cells = {(r.task, r.method) for r in res.rows}
        out.append(ExperimentInfo(res.name, folder, len(cells), len(res.tasks) * len(res.methods), res.complete,
                                  path.stat().st_mtime))
    return sorted(out, key=lambda e: -e.updated)
