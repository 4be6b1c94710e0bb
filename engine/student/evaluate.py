"""Evaluation of a run's student (or its untrained base): greedy generation, scored with the task's metric.

The metric is the one :mod:`engine.student.metrics` chooses: ``--metric``, else the task's ``metric`` key, else
inferred from the test data (BIG-Bench-Hard answers exactly, SQuAD by EM/F1 over all references, a label set by
accuracy, code by BLEU/chrF); every value carries a bootstrap 95 % confidence interval. The test set is the run's
validation split or a file in any layout :mod:`engine.student.testsets` reads.

Prompts come from :mod:`engine.student.formatting` with the run's own format, so evaluation sees the training
prompt. Results go to ``metrics.json`` (keyed ``student:<data>`` or ``base:<data>``) and ``predictions.jsonl``
(``predictions-base.jsonl`` for ``base``) in the run directory.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.events import Event, Log
from engine.rate import RateMeter
from engine.student import metrics
from engine.student.formatting import PromptFormat, encode_prompt, stop_strings
from engine.student.metrics import Scored
from engine.student.model import (
    check_student,
    checkpoints,
    final_model_dir,
    has_final_model,
    load_model,
    load_tokenizer,
    resolve_device,
)
from engine.student.run_config import RunConfig, read_config, trust_notice
from engine.student.testsets import TestItem, TestSet, read_testset
from engine.student.training_data import read_jsonl
from engine.tasks import Task, TaskError, validate

METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class EvalResult:
    """Scores of one system on one test set: ``model`` (student, base or teacher), ``data`` (the split or file
    name), the metric(s) chosen and why, every value with its 95 % CI, and how long answering took."""

    model: str
    data: str
    n: int
    metric: tuple[str, ...]
    metrics: dict[str, dict[str, Any]]
    why: str = ""
    seconds: float = 0.0

    def value(self, name: str) -> float:
        return float(self.metrics[name]["value"])

    @property
    def headline(self) -> tuple[str, float]:
        """The first value reported (what a one-line summary shows)."""
        name = next(iter(self.metrics))
        return name, self.value(name)

    def describe(self) -> str:
        """``exact 0.740 (95% CI 0.688–0.792)``, every value of the result."""
        return ", ".join(f"{name} {metrics.format_value(name, v)}" for name, v in self.metrics.items())

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "data": self.data, "n": self.n, "metric": list(self.metric), "why": self.why,
                "metrics": self.metrics, "seconds": self.seconds}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> EvalResult:
        if "metrics" not in obj:  # written before confidence intervals: exact_match / accuracy / f1 as floats
            legacy: dict[str, dict[str, Any]] = {k: {"value": float(obj[k]), "ci95": [float(obj[k])] * 2}
                      for k in ("exact_match", "accuracy", "f1") if k in obj}
            return cls(str(obj.get("model", "")), str(obj.get("data", "")), int(obj.get("n", 0)), tuple(legacy),
                       legacy, "scored before metrics had confidence intervals", float(obj.get("seconds", 0.0)))
        return cls(str(obj.get("model", "")), str(obj.get("data", "")), int(obj.get("n", 0)),
                   tuple(obj.get("metric") or ()), dict(obj["metrics"]), str(obj.get("why", "")),
                   float(obj.get("seconds", 0.0)))


@dataclass(frozen=True)
class EvalDone(Event):
    """The end of an evaluation: the scores, where predictions were written, and the per-item scoring (for a
    paired comparison with another system on the same items)."""

    metrics: EvalResult
    predictions: str = ""
    scored: tuple[Scored, ...] = field(default=(), repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Prediction:
    """One line of ``predictions.jsonl``: the input, every reference, the output, its extracted answer, and
    whether the metric counts it correct (None for corpus metrics such as BLEU)."""

    input: str
    references: list[str]
    prediction: str
    answer: str
    correct: bool | None

    @property
    def reference(self) -> str:
        return self.references[0] if self.references else ""

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Prediction:
        refs = obj.get("references")
        if refs is None:  # written before test sets could have several references
            refs = [obj.get("reference", "")]
        return cls(str(obj.get("input", "")), [str(r) for r in refs], str(obj.get("prediction", "")),
                   str(obj.get("answer", "")), obj.get("correct"))


def read_metrics(run_dir: Path) -> dict[str, EvalResult] | None:
    """The run's evaluations keyed ``student:<data>`` / ``base:<data>`` (None before the first one)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    out = {}
    for key, m in saved.items():
        if isinstance(m, dict):
            try:
                out[key] = EvalResult.from_json(m)
            except (KeyError, TypeError, ValueError):
                continue
    return out


def save_metrics(run_dir: Path, result: EvalResult) -> None:
    saved = read_metrics(run_dir) or {}
    saved[f"{result.model}:{result.data}"] = result
    (Path(run_dir) / METRICS_FILE).write_text(json.dumps({k: m.to_json() for k, m in saved.items()}, indent=2),
                                              encoding="utf-8")


def read_predictions(run_dir: Path, limit: int | None = None, base: bool = False) -> list[Prediction]:
    """The first ``limit`` predictions of the run's last evaluation (of its base with ``base``)."""
    path = Path(run_dir) / _predictions_file(base)
    if not path.exists():
        return []
    out: list[Prediction] = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if limit is not None and len(out) >= limit:
                break
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                out.append(Prediction.from_json(obj))
    return out


def _predictions_file(base: bool) -> str:
    return "predictions-base.jsonl" if base else "predictions.jsonl"


def run_task(cfg: RunConfig) -> Task | None:
    """The task a run was trained for (its instruction and demonstrations), None for a run on a bare data file."""
    if not cfg.examples or not cfg.instruction.strip():
        return None
    try:
        return validate({"name": cfg.task or cfg.id, "instruction": cfg.instruction,
                         "examples": [{"input": i, "output": o} for i, o in cfg.examples]})
    except TaskError:
        return None


def has_validation_split(run_dir: Path) -> bool:
    """True when the run held out a validation split (a run of the paper's recipe trains on everything)."""
    try:
        return (Path(run_dir) / "eval.jsonl").stat().st_size > 0
    except OSError:
        return False


def test_items(run_dir: Path, data: str | Path | None, *, input_col: str | None = None,
               output_col: str | None = None) -> tuple[str, str, list[TestItem]]:
    """``(label, layout, items)`` of what to evaluate on: the file ``data`` in any accepted layout, else the run's
    validation split."""
    if data is not None:
        test: TestSet = read_testset(data, input_col=input_col, output_col=output_col)
        return test.path.name, test.layout, list(test.items)
    rows = read_jsonl(run_dir / "eval.jsonl")
    if not rows:
        raise EngineError(f"run {run_dir.name} has no validation split", fix="evaluate on a file with --data FILE")
    return "validation", "jsonl", [TestItem(r["input"], (r["output"],)) for r in rows]


def score_answers(which: str, label: str, layout: str, items: list[TestItem], outputs: list[str], *,
                  task: Task | None, metric: str | None,
                  seconds: float) -> tuple[EvalResult, list[Scored], list[Prediction]]:
    """Score ``outputs`` (one per item) with the chosen metric: the result, the per-item scoring and the
    prediction records. Shared by every system evaluated (student, base, teacher)."""
    refs = [list(item.references) for item in items]
    choice = metrics.choose_metric(layout, refs, task=task, explicit=metric)
    scored = metrics.score_all(choice, outputs, refs)
    first = scored[0]
    preds = [Prediction(item.input, list(item.references), out, first.answers[i], first.correct[i])
             for i, (item, out) in enumerate(zip(items, outputs, strict=True))]
    result = EvalResult(which, label, len(items), choice.metrics, metrics.metrics_json(scored), choice.why,
                        round(seconds, 3))
    return result, scored, preds


def write_predictions(path: Path, preds: list[Prediction]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for p in preds:
            f.write(json.dumps(asdict(p), ensure_ascii=False) + "\n")


# -- generation -----------------------------------------------------------------------------
def load_for_inference(run_dir: Path, base: bool = False, device: str = "auto") -> tuple[Any, Any, PromptFormat, str]:
    """``(model, tokenizer, PromptFormat, device)`` of a run: its final model (or newest checkpoint), or its base."""
    cfg = read_config(run_dir)
    fmt_file = run_dir / "format.json"
    if not fmt_file.exists():
        raise EngineError(f"run {cfg.id} never started training (no format.json)",
                          fix=f"train it first: `rebase-tui train --resume {cfg.id}`")
    fmt = PromptFormat.from_json(json.loads(fmt_file.read_text(encoding="utf-8")))
    device = resolve_device(device)
    student, trc = cfg.settings.student, cfg.settings.trust_remote_code
    check_student(student)  # from local files only; a missing model says how to get it
    tokenizer = load_tokenizer(student, trc)
    if base:
        model, _ = load_model(student, device, method="full", trust_remote_code=trc, trainable=False)
    else:
        saved = checkpoints(run_dir)
        source = final_model_dir(run_dir) if has_final_model(run_dir) else saved[-1] if saved else None
        if source is None:
            raise EngineError(f"run {cfg.id} has no trained weights yet",
                              fix=f"let it train past its first checkpoint (`rebase-tui train --resume {cfg.id}`)")
        if (source / "adapter_config.json").exists():
            model, _ = load_model(student, device, method="lora", trust_remote_code=trc, adapter=source,
                                  trainable=False)
        else:
            model, _ = load_model(student, device, method="full", trust_remote_code=trc,
                                  full_weights=source, trainable=False)
    model.eval()
    return model, tokenizer, fmt, device


def fit_context(prompt_len: int, max_new_tokens: int, context: int | None,
                max_length: int | None = None) -> tuple[int, int]:
    """``(prompt cap, new tokens)`` so that a prompt of ``prompt_len`` tokens plus the generated ones fit.

    The prompt is first capped at ``max_length`` (as in training). With a known ``context``, the prompt
    keeps at least half the context (or all of itself when shorter) and the new tokens get the rest, at
    most ``max_new_tokens``: a 256-position student asked for 256 new tokens generates fewer instead of
    running past its position table.
    """
    cap = max(1, min(prompt_len, max_length or prompt_len))
    new = max(1, max_new_tokens)
    if context and context > 1:
        floor = max(1, min(cap, context // 2))
        new = max(1, min(new, context - floor))
        cap = max(1, min(cap, context - new))
    return cap, new


@dataclass(frozen=True)
class GenerationBatch:
    """Left-padded prompts ready for ``model.generate``: ids, mask, how many new tokens fit, the ids and strings
    that end a response, and how many prompts lost their start to fit the context."""

    ids: Any
    mask: Any
    width: int
    new_tokens: int
    stop_ids: list[int]
    stops: list[str]
    truncated: int

    def finish(self, tokenizer: Any, row: list[int]) -> str:
        """The response text of one generated row (the new tokens only), cut at the first stop."""
        cut = next((k for k, t in enumerate(row) if t in self.stop_ids), len(row))
        return self.cut(tokenizer.decode(row[:cut], skip_special_tokens=True))

    def cut(self, text: str) -> str:
        for s in self.stops:
            text = text.split(s)[0]
        return text.strip()


def prepare_batch(model: Any, tokenizer: Any, fmt: PromptFormat, inputs: list[str], device: str,
                  max_new_tokens: int, max_length: int | None = None) -> GenerationBatch:
    """Encode ``inputs`` in the run's format so that prompt plus new tokens fit the model's context (see
    :func:`fit_context`); a prompt that is too long loses its start, as in training (the input and the answer
    matter most)."""
    import torch

    prompts = [encode_prompt(fmt, tokenizer, x) for x in inputs]
    config = getattr(model, "config", None)
    context = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    cap, new_tokens = fit_context(max(len(p) for p in prompts), max_new_tokens,
                                  context if isinstance(context, int) else None, max_length)
    truncated = sum(len(p) > cap for p in prompts)
    prompts = [p[-cap:] for p in prompts]
    width = max(len(p) for p in prompts)
    pad = tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
    stops = stop_strings(fmt, tokenizer)
    stop_ids = sorted({i for s in stops for i in [tokenizer.convert_tokens_to_ids(s)]
                       if isinstance(i, int) and i != tokenizer.unk_token_id} | {tokenizer.eos_token_id})
    return GenerationBatch(ids, mask, width, new_tokens, stop_ids, stops, truncated)


def generate(model: Any, tokenizer: Any, fmt: PromptFormat, inputs: list[str], device: str, max_new_tokens: int,
             max_length: int | None = None) -> list[str]:
    """Greedy completions of ``inputs`` (one left-padded batch), cut at EOS / stop strings."""
    import torch

    batch = prepare_batch(model, tokenizer, fmt, inputs, device, max_new_tokens, max_length)
    with torch.inference_mode():
        out = model.generate(input_ids=batch.ids, attention_mask=batch.mask, max_new_tokens=batch.new_tokens,
                             do_sample=False, eos_token_id=batch.stop_ids, pad_token_id=tokenizer.pad_token_id)
    return [batch.finish(tokenizer, row) for row in out[:, batch.width:].tolist()]


def evaluate(run_dir: str | Path, data: str | Path | None = None, *, base: bool = False, limit: int | None = None,
             max_new_tokens: int = 256, batch_size: int = 8, device: str = "auto", task: Task | None = None,
             metric: str | None = None, input_col: str | None = None,
             output_col: str | None = None) -> Iterator[Event]:
    """Evaluate the run's student (``base``: the untrained student) on its validation split or ``data``.

    ``task`` (default: the run's own instruction and demonstrations) and ``metric`` choose the metric. Yields
    a WARNING :class:`~engine.events.Log` first when the run's student runs its own code, then
    :class:`~engine.events.Progress` per batch, and ends with :class:`EvalDone`. Closing the generator stops
    after the current batch (nothing is scored then).
    """
    run_dir = Path(run_dir)
    label, layout, items = test_items(run_dir, data, input_col=input_col, output_col=output_col)
    if limit:
        items = items[:limit]
    cfg = read_config(run_dir)
    task = task or run_task(cfg)
    which = "base" if base else "student"
    notice = trust_notice(cfg)
    if notice:
        yield Log(notice, "WARNING")
    model, tokenizer, fmt, device = load_for_inference(run_dir, base=base, device=device)
    max_length = cfg.settings.max_length or None
    outputs: list[str] = []
    t0 = time.monotonic()
    meter = RateMeter()
    yield meter.progress("eval", 0, len(items), "examples", f"{which} on {label}")
    for i in range(0, len(items), batch_size):
        batch = items[i:i + batch_size]
        outputs += generate(model, tokenizer, fmt, [it.input for it in batch], device, max_new_tokens, max_length)
        yield meter.progress("eval", len(outputs), len(items), "examples", f"{which} on {label}")
    result, scored, preds = score_answers(which, label, layout, items, outputs, task=task, metric=metric,
                                          seconds=time.monotonic() - t0)
    pred_path = run_dir / _predictions_file(base)
    write_predictions(pred_path, preds)
    save_metrics(run_dir, result)
    yield EvalDone(metrics=result, predictions=str(pred_path), scored=tuple(scored))
