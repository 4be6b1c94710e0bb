"""Running an experiment: every stage of every task, unattended, resumable, writing the results table as it goes.

:func:`run_experiment` is an async generator of events, like the stages it drives. Before any work it checks
what only the workspace can judge (the tasks resolve, the teacher's and the student's settings are valid, the
student is on disk) and fails with one line naming the spec file. Then, per task:

1. ``rebase`` in the methods: retrieve the task's pool (top = its ``examples``, with its bans);
2. per data method (``synthesize``, ``rebase``, in the spec's order): make the data (the teacher writes from
   the task alone, or transforms the pool), accept what passed the checks, train the student on exactly those
   examples, evaluate it on the test file with the task's metric;
3. ``base``: the untrained student, through the first data method's run;
4. ``teacher``: the teacher answers the test set few-shot.

``experiments/<name>/`` in the workspace holds a copy of the spec as run, the state (what finished, see
:mod:`engine.experiments.state`), ``results.json`` and ``results.md`` (rewritten after every evaluation) and
the teacher's predictions; training runs are ordinary runs under ``runs/``. Killed at any point and started
again, the experiment continues where it stopped: the call cache repeats no teacher call, and a finished
training run is never redone.

With ``rounds = N``, ``rebase`` is followed by N refinement rounds (:mod:`engine.loop.refine`): each refines the
last run on its validation mistakes, accepts the round's examples that passed the checks, trains the next run
from the last one and scores it on the test file (the column ``rebase+rK``). The per-task stage list is the
place to add stages: each is a generator of :mod:`engine.experiments.stages` with its own state key.

The experiment works in the given workspace: it stores each task's pool (replacing an earlier one), accepts the
pending examples its own calls made, and adds runs. A workspace of its own keeps it apart from other work.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.events import Event
from engine.experiments import stages
from engine.experiments.results import SPEC_COPY, ExperimentResults, ResultRow, experiment_dir, write_results
from engine.experiments.spec import ExperimentSpec, TaskEntry, round_method
from engine.experiments.state import State, file_digest, fingerprint
from engine.tasks import Task
from engine.workspace import Workspace


@dataclass(frozen=True)
class ExperimentFinished(Event):
    """The end: every value of the table, where the results were written, and how long this run took."""

    results: ExperimentResults
    folder: Path
    seconds: float


@dataclass(frozen=True)
class Checked:
    """What the workspace made of the spec: the tasks, the teacher's settings (None when no method asks the
    teacher) and the training settings (the keyword arguments of ``start_training``)."""

    tasks: tuple[Task, ...]
    teacher: Any
    train: dict[str, Any]
    run_settings: Any


def check(ws: Workspace, spec: ExperimentSpec) -> Checked:
    """Resolve the tasks and check the teacher's and the student's settings, before any work; each problem
    is one EngineError line naming the spec file."""
    from engine.student.model import check_4bit, check_student
    from engine.student.run_config import settings_from_config
    from engine.tasks import resolve_task

    where = spec.path.name
    tasks = []
    for i, entry in enumerate(spec.tasks, 1):
        try:
            tasks.append(resolve_task(ws, entry.task))
        except EngineError as exc:
            raise EngineError(f"{where}: tasks[{i}].task: {exc.message}", exc.fix) from None
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise EngineError(f"{where}: two [[tasks]] are the same task", fix="list each task once")
    teacher = _teacher(ws, spec) if spec.uses_teacher else None
    train = dict(spec.student)
    run_settings = None
    if spec.data_methods:
        try:
            run_settings = settings_from_config(ws.config, **train)
            check_student(run_settings.student)
            if run_settings.load_in_4bit:
                check_4bit(run_settings.device, run_settings.method)
        except EngineError as exc:
            raise EngineError(f"{where}: [student] {exc.message}", exc.fix) from None
        if spec.rounds and not run_settings.eval_fraction:
            raise EngineError(f"{where}: rounds need a validation hold-out to find the student's mistakes on, but "
                              "[student] trains on every example (eval_fraction 0)",
                              fix="set eval_fraction = 0.1 (or more) in [student], or leave rounds out")
    return Checked(tuple(tasks), teacher, train, run_settings)


def _teacher(ws: Workspace, spec: ExperimentSpec) -> Any:
    """The workspace's teacher settings with the spec's values, checked (one line naming the spec key)."""
    from engine.teacher.client import LIMITS, TeacherSettings

    given = spec.teacher
    try:
        base = TeacherSettings.from_config(ws.config, backend=given.get("backend"))
        settings = dataclasses.replace(base, **given)
        settings.check({name: name if name in given else key for name, (key, _, _, _) in LIMITS.items()}
                       | {"backend": "backend"})
    except EngineError as exc:
        raise EngineError(f"{spec.path.name}: [teacher] {exc.message}", exc.fix) from None
    return settings


def _stage(ws: Workspace, folder: Path, state: State, spec: ExperimentSpec, checked: Checked, task: Task,
           entry: TaskEntry) -> stages.Stage:
    return stages.Stage(ws, folder, state, task, entry, checked.teacher, spec.prompt, spec.cot, checked.train,
                        spec.eval)


class _Prints:
    """The fingerprints of one task's stages (see :mod:`engine.experiments.state`)."""

    def __init__(self, ws: Workspace, spec: ExperimentSpec, checked: Checked, task: Task, entry: TaskEntry) -> None:
        from engine.retrieval.loading import read_signature

        teacher = checked.teacher
        self.task = fingerprint(task.to_json())
        self.teacher = fingerprint(teacher.model, teacher.backend, teacher.options()) if teacher else ""
        self.retrieve = fingerprint("retrieve", self.task, entry.examples, entry.exclude,
                                    list(read_signature(ws))) if "rebase" in spec.methods else ""
        self.settings = checked.run_settings.to_json() if checked.run_settings is not None else {}
        self.test = fingerprint(file_digest(entry.test), entry.metric, dataclasses.asdict(spec.eval))
        self.spec = spec
        self.entry = entry

    def data(self, method: str) -> str:
        return fingerprint("data", self.task, method, self.entry.examples, self.teacher, self.spec.prompt,
                           self.spec.cot, self.retrieve if method == "rebase" else "")

    def train(self, method: str) -> str:
        return fingerprint("train", self.data(method), self.settings)

    def eval(self, method: str, run: str) -> str:
        return fingerprint("eval", self.train(method), run, self.test)

    def base(self, run: str) -> str:
        return fingerprint("base", self.settings.get("student"), run, self.test)

    def answers(self) -> str:
        return fingerprint("teacher", self.task, self.teacher, self.test)

    def round(self, k: int) -> str:
        before = self.train("rebase") if k == 1 else self.round(k - 1)
        return fingerprint("round", k, before, self.teacher, self.spec.prompt, self.spec.cot)

    def eval_round(self, k: int, run: str) -> str:
        return fingerprint("eval", self.round(k), run, self.test)


async def run_experiment(ws: Workspace, spec: ExperimentSpec) -> AsyncGenerator[Event, None]:
    """Run (or continue) the experiment ``spec`` in ``ws`` (see the module docstring); ends with
    :class:`ExperimentFinished`. Close the generator to stop: finished stages are kept, a training run in
    progress is asked to stop at a checkpoint."""
    t0 = time.monotonic()
    checked = check(ws, spec)
    folder = experiment_dir(ws, spec.name)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SPEC_COPY).write_text(spec.text, encoding="utf-8")
    state = State(folder)
    names = tuple(t.name for t in checked.tasks)
    current: dict[str, str] = {}      # evaluation key -> fingerprint, for the values this spec stands behind
    write_results(folder, _results(spec, names, state, current))
    for task, entry in zip(checked.tasks, spec.tasks, strict=True):
        st = _stage(ws, folder, state, spec, checked, task, entry)
        prints = _Prints(ws, spec, checked, task, entry)
        async for ev in _task(st, spec, prints, current):
            yield ev
            if isinstance(ev, stages.StageDone) and ev.stage in ("eval", "teacher"):
                write_results(folder, _results(spec, names, state, current))
    results = _results(spec, names, state, current)
    write_results(folder, results)
    yield ExperimentFinished(results, folder, time.monotonic() - t0)


async def _task(st: stages.Stage, spec: ExperimentSpec, fp: _Prints,
                current: dict[str, str]) -> AsyncGenerator[Event, None]:
    """Every stage of one task, in order; each evaluation's key and fingerprint go into ``current``."""
    retrieved = 0.0
    if "rebase" in spec.methods:
        async for ev in stages.retrieve(st, fp.retrieve):
            yield ev
        retrieved = _entry(st, "retrieve", "rebase", fp.retrieve)["seconds"]
    first_run = None
    for method in spec.data_methods:
        async for ev in stages.make_data(st, method, fp.data(method)):
            yield ev
        data = _entry(st, "data", method, fp.data(method))
        async for ev in stages.train(st, method, fp.train(method), data["ids"]):
            yield ev
        run = _entry(st, "train", method, fp.train(method))["run"]
        first_run = first_run or run
        train_s = _run_seconds(st.ws, run)
        spent = data["seconds"] + train_s + (retrieved if method == "rebase" else 0.0)
        async for ev in stages.evaluate_student(st, method, fp.eval(method, run), run, base=False, spent=spent,
                                                calls=data["calls"]):
            yield ev
        current[st.key("eval", method)] = fp.eval(method, run)
        if method == "rebase":
            async for ev in _rounds(st, spec, fp, current, run, data, spent):
                yield ev
    if "base" in spec.methods:
        assert first_run is not None
        async for ev in stages.evaluate_student(st, "base", fp.base(first_run), first_run, base=True, spent=0.0,
                                                calls=0):
            yield ev
        current[st.key("eval", "base")] = fp.base(first_run)
    if "teacher" in spec.methods:
        async for ev in stages.evaluate_teacher(st, fp.answers()):
            yield ev
        current[st.key("eval", "teacher")] = fp.answers()


async def _rounds(st: stages.Stage, spec: ExperimentSpec, fp: _Prints, current: dict[str, str], run: str,
                  data: dict[str, Any], spent: float) -> AsyncGenerator[Event, None]:
    """The refinement rounds after rebase: each refines the last run, then its new run is scored on the test
    file under the column ``rebase+rK``."""
    ids, calls = list(data["ids"]), int(data["calls"])
    for k in range(1, spec.rounds + 1):
        method = round_method(k)
        async for ev in stages.refine_round(st, method, fp.round(k), run, ids):
            yield ev
        done = _entry(st, "round", method, fp.round(k))
        run, ids = done["run"], done["ids"]
        spent, calls = spent + done["seconds"] + _run_seconds(st.ws, run), calls + done["calls"]
        async for ev in stages.evaluate_student(st, method, fp.eval_round(k, run), run, base=False, spent=spent,
                                                calls=calls):
            yield ev
        current[st.key("eval", method)] = fp.eval_round(k, run)


def _entry(st: stages.Stage, stage: str, method: str, fp: str) -> dict[str, Any]:
    got = st.state.get(st.key(stage, method), fp)
    assert got is not None, f"the {stage} stage of {st.task.name} ({method}) ended without its state entry"
    return got


def _run_seconds(ws: Workspace, run: str) -> float:
    from engine.student.summary import summarize

    return summarize(ws.runs_dir / run).seconds


def _results(spec: ExperimentSpec, names: tuple[str, ...], state: State,
             current: dict[str, str]) -> ExperimentResults:
    """The table from the finished evaluations of this spec (``current``: their keys and fingerprints; an
    entry an edited spec no longer stands behind is left out), in the spec's order of tasks and methods."""
    rows: list[ResultRow] = []
    for name in names:
        for method in spec.columns:
            key = f"eval/{name}/{method}"
            entry = state.get(key, current[key]) if key in current else None
            rows += [ResultRow.from_json(r) for r in (entry or {}).get("rows", [])]
    done = {(r.task, r.method) for r in rows}
    complete = all((t, m) in done for t in names for m in spec.columns)
    return ExperimentResults(spec.name, spec.columns, names, tuple(rows), complete)
