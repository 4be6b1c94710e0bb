"""Starting a training run, the one way both front ends do it: freeze the data, start the worker, record it.

:func:`start_training` creates a new run from a task's accepted examples or a data file;
:func:`resume_training` continues a run from its last checkpoint. Both return at once with a
:class:`LaunchedRun`; the caller follows the run with :func:`engine.student.supervise.follow` (or ``afollow``)
from ``offset``, where this attempt's events begin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import tasks
from engine.errors import EngineError
from engine.student import runs, supervise
from engine.student.model import check_4bit, check_student
from engine.student.run_config import RunSettings, read_config, settings_from_config, trust_notice
from engine.student.training_data import accepted_examples, read_examples_file

if TYPE_CHECKING:
    from engine.workspace import Workspace


@dataclass(frozen=True, slots=True)
class LaunchedRun:
    """A run whose worker was just started: its id, directory, worker pid and the events offset of this
    attempt (a resumed run appends to the same ``events.jsonl``); ``notice`` is a line the front end shows
    (a resumed run that runs its student's own code says so)."""

    run: str
    path: Path
    pid: int
    offset: int
    notice: str | None = None


def start_training(ws: Workspace, *, task: str | None = None, data: str | Path | None = None,
                   example_method: str | None = None, example_ids: Sequence[int] | None = None,
                   eval_rows: list[dict[str, Any]] | None = None, init_from: str | Path | None = None,
                   settings: RunSettings | None = None, **overrides: Any) -> LaunchedRun:
    """Create a run on ``data`` (a JSONL or BIG-Bench-Hard file) or on ``task``'s accepted examples, and
    start its worker.

    ``task`` also gives the prompt its instruction and demonstrations (with ``data`` too). ``example_method``
    trains on the accepted examples one method made (``rebase`` or ``synthesize``), ``example_ids`` on those
    among these ids (see :func:`~engine.student.training_data.accepted_examples`). ``overrides`` are
    :class:`~engine.student.run_config.RunSettings` fields, ``recipe`` and the flat LoRA keys (see
    :func:`~engine.student.run_config.settings_from_config`); None values keep the recipe's or the workspace's
    settings; ``settings`` (a whole RunSettings, such as the run being continued) replaces them all.
    ``eval_rows`` is the validation split (``{"input", "output"}`` rows, never trained on: a training row
    equal to one is left out) instead of a split of the data; ``init_from`` a finished model folder (another
    run's ``model/``) training continues from. The student (and 4-bit support, when asked) is checked before
    any run directory exists, so a missing model leaves nothing behind.
    """
    task_obj = tasks.resolve_task(ws, task) if task else None
    if data is not None:
        rows: list[dict[str, Any]] = list(read_examples_file(data))
        source = str(data)
    elif task_obj is not None:
        rows = accepted_examples(ws, task_obj.name, method=example_method, ids=example_ids)
        source = f"task:{task_obj.name}" + (f" ({example_method})" if example_method else "")
        if not rows:
            made = f" made by {example_method}" if example_method else ""
            raise EngineError(f"task {task_obj.name!r} has no accepted examples{made}",
                              fix="accept examples in review first, or train on a file with --data FILE")
    else:
        raise EngineError("nothing to train on",
                          fix="name a task with accepted examples, or pass --data FILE")
    if eval_rows is not None:
        held = {(r["input"], r["output"]) for r in eval_rows}
        rows = [r for r in rows if (r["input"], r["output"]) not in held]
    settings = settings or settings_from_config(ws.config, **overrides)
    _check_loadable(settings)
    return _launch(ws, runs.create_run(ws, rows, settings, task=task_obj, source=source, eval_rows=eval_rows,
                                       init_from=str(init_from) if init_from is not None else None))


def _check_loadable(settings: RunSettings) -> None:
    check_student(settings.student)
    if settings.load_in_4bit:
        check_4bit(settings.device, settings.method)


def resume_training(ws: Workspace, run_id: str) -> LaunchedRun:
    """Start the worker of run ``run_id`` again: it continues from the last checkpoint to the final step."""
    path = runs.run_dir(ws, run_id)
    summary = runs.record(ws, path)
    if summary.status == "finished":
        raise EngineError(f"run {run_id} already finished ({summary.steps} steps)",
                          fix="start a new run, or evaluate it with `rebase-tui eval`")
    if supervise.worker_alive(path):
        raise EngineError(f"run {run_id} is still running",
                          fix=f"stop it first with `rebase-tui runs stop {run_id}`")
    cfg = read_config(path)
    _check_loadable(cfg.settings)
    return _launch(ws, path, notice=trust_notice(cfg))


def _launch(ws: Workspace, path: Path, notice: str | None = None) -> LaunchedRun:
    handle = supervise.start(path)
    runs.mark_running(ws, path.name)
    return LaunchedRun(run=path.name, path=path, pid=handle.pid, offset=handle.offset, notice=notice)
