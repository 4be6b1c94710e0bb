"""The validation items a refinement round learns from, and the run's answers to them.

A round learns from the mistakes a run makes on held-out data it was not trained on, never on a test set: the
run's own validation split (``eval.jsonl``) when it has one, else — a run trained with no hold-out, as
``train --recipe paper`` does — a slice carved from the task's accepted examples the run was not trained on
(of the method it was trained on, compared by input and output with its ``train.jsonl``), written as ``refine-validation.jsonl`` in the run's
folder. When there is neither, :func:`validation_items` says why refine cannot go on.

The run's answers come from its last evaluation when that was on exactly these items; otherwise the run is
evaluated on them now (:func:`evaluate_validation`). Predictions of another file (a test set) are never read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import EngineError
from engine.events import Event, Log
from engine.student.evaluate import (
    EvalDone,
    EvalResult,
    Prediction,
    evaluate,
    read_metrics,
    read_predictions,
)
from engine.student.run_config import RunConfig
from engine.student.training_data import accepted_examples, read_jsonl, write_jsonl

if TYPE_CHECKING:
    from engine.tasks import Task
    from engine.workspace import Workspace

CARVED_FILE = "refine-validation.jsonl"


@dataclass(frozen=True)
class Validation:
    """The validation items of a run (``{"input", "output"}`` rows), where they come from (``split`` or
    ``carved``) and the file an evaluation reads them from (None for the run's own split)."""

    rows: tuple[dict[str, str], ...]
    kind: str
    file: Path | None

    @property
    def label(self) -> str:
        """The name evaluation records its scores under (``student:<label>`` in ``metrics.json``)."""
        return self.file.name if self.file is not None else "validation"


def validation_items(ws: Workspace, run_dir: Path, cfg: RunConfig) -> Validation:
    """The run's validation split, else a slice of the task's accepted examples it was not trained on."""
    split = read_jsonl(run_dir / "eval.jsonl") if (run_dir / "eval.jsonl").exists() else []
    if split:
        return Validation(tuple({"input": r["input"], "output": r["output"]} for r in split), "split", None)
    if not cfg.task:
        raise EngineError(f"run {cfg.id} has no validation split and no task to carve one from",
                          fix="refine a run trained on a task's examples")
    trained = {(r["input"], r["output"]) for r in read_jsonl(run_dir / "train.jsonl")}
    unseen = [{"input": r["input"], "output": r["output"]}
              for r in accepted_examples(ws, cfg.task, method=source_method(cfg))
              if (r["input"], r["output"]) not in trained]
    unseen = list({(r["input"], r["output"]): r for r in unseen}.values())
    if not unseen:
        raise EngineError(f"run {cfg.id} was trained on every accepted example of {cfg.task} (no validation "
                          "hold-out), so there is nothing it has not seen to find its mistakes on",
                          fix=f"accept more examples of {cfg.task} (transform, review), or train with a hold-out "
                              "(--eval-fraction 0.1), then refine that run")
    path = run_dir / CARVED_FILE
    write_jsonl(path, unseen)
    return Validation(tuple(unseen), "carved", path)


def source_method(cfg: RunConfig) -> str | None:
    """The method whose examples the run was trained on, when its source names one (``task:T (rebase)``)."""
    source = cfg.data.source
    if source.startswith("task:") and source.endswith(")") and " (" in source:
        return source[source.rindex(" (") + 2:-1]
    return None


def round_metric(task: Task, explicit: str | None = None) -> str | None:
    """The metric a round judges answers with: ``explicit``, else the task's, else the exact answer for a task
    whose demonstrations reason to "the answer is X" (whatever X looks like: a reasoning that writes
    ``not True = False`` is no code to score by text overlap), else None (inferred as ``eval`` does)."""
    return explicit or task.metric or ("exact" if task.reasons else None)


def stored_answers(run_dir: Path, val: Validation,
                   metric: str | None = None) -> tuple[EvalResult, list[Prediction]] | None:
    """The run's scores and answers on these items from its last evaluation, when it was on exactly them (and
    with ``metric``, when given)."""
    saved = (read_metrics(run_dir) or {}).get(f"student:{val.label}")
    preds = read_predictions(run_dir)
    if saved is None or [p.input for p in preds] != [r["input"] for r in val.rows]:
        return None
    if metric is not None and ",".join(saved.metric) != metric:
        return None
    if [p.reference for p in preds] != [r["output"] for r in val.rows]:
        return None
    return saved, preds


def evaluate_validation(run_dir: Path, val: Validation, *, metric: str | None = None, max_new_tokens: int = 256,
                        batch_size: int = 8, device: str = "auto") -> Iterator[Event]:
    """Evaluate the run on the validation items (its progress events), ending with the :class:`EvalDone`."""
    if (run_dir / "predictions.jsonl").exists():
        others = [k.split(":", 1)[1] for k in (read_metrics(run_dir) or {})
                  if k.startswith("student:") and k != f"student:{val.label}"]
        yield Log(f"run {run_dir.name}'s latest answers are not on its validation items"
                  + (f" (it was scored on {', '.join(others)})" if others else "") + ": refine never learns from a "
                  f"test set; evaluating it on its {len(val.rows)} validation items", "WARNING")
    yield from evaluate(run_dir, val.file, metric=metric, max_new_tokens=max_new_tokens, batch_size=batch_size,
                        device=device)


def answers(run_dir: Path, val: Validation, *, metric: str | None = None, max_new_tokens: int = 256,
            batch_size: int = 8, device: str = "auto") -> Iterator[Event]:
    """The run's answers on its validation items: an :class:`EvalDone` built from its stored evaluation when
    there is one on exactly these items, else the events of evaluating it now."""
    stored = stored_answers(run_dir, val, metric)
    if stored is not None:
        yield Log(f"using run {run_dir.name}'s evaluation on its {len(val.rows)} validation items")
        yield EvalDone(metrics=stored[0], predictions=str(run_dir / "predictions.jsonl"))
        return
    yield from evaluate_validation(run_dir, val, metric=metric, max_new_tokens=max_new_tokens, batch_size=batch_size,
                                   device=device)
