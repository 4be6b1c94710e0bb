"""Evaluation of a run's student (or its untrained base): greedy generation and three metrics.

* **exact match** — the normalised prediction equals the normalised reference (SQuAD normalisation:
  lower case, no punctuation, no articles, single spaces);
* **accuracy** — the *answers* agree after extraction: "... the answer is X" → X, else an option letter such as
  "(B)", else the first line; compared normalised, so "(B)", "B" and "b" match;
* **token F1** — SQuAD-style overlap of normalised tokens between prediction and reference.

Prompts come from :mod:`engine.student.formatting` with the run's own format, so evaluation sees the training prompt.
Results go to ``metrics.json`` (keyed ``student:<data>`` or ``base:<data>``) and ``predictions.jsonl``
(``predictions-base.jsonl`` for ``base``) in the run directory.
"""

from __future__ import annotations

import json
import re
import string
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.events import Event
from engine.rate import RateMeter
from engine.student.formatting import PromptFormat, encode_prompt, stop_strings
from engine.student.model import (
    checkpoints,
    final_model_dir,
    has_final_model,
    load_model,
    load_tokenizer,
    resolve_device,
)
from engine.student.run_config import read_config
from engine.student.training_data import read_examples_file, read_jsonl
from engine.tasks import final_answer

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_OPTION = re.compile(r"\(([A-Z])\)")


METRICS_FILE = "metrics.json"


@dataclass(frozen=True, slots=True)
class EvalResult:
    """Scores of one evaluation: ``n`` pairs, mean exact match, answer accuracy and token F1; ``model`` is
    student or base, ``data`` the split or file name, ``seconds`` how long generation took."""

    n: int
    exact_match: float
    accuracy: float
    f1: float
    model: str = ""
    data: str = ""
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> EvalResult:
        return cls(**{k: obj[k] for k in cls.__dataclass_fields__ if k in obj})


@dataclass(frozen=True, slots=True)
class EvalDone(Event):
    """The end of an evaluation: the scores and where predictions were written."""

    metrics: EvalResult
    predictions: str = ""


@dataclass(frozen=True, slots=True)
class Prediction:
    """One line of ``predictions.jsonl``."""

    input: str
    reference: str
    prediction: str
    answer: str
    reference_answer: str
    correct: bool


def normalize(text: str) -> str:
    """SQuAD normalisation: lower case, drop punctuation and articles, collapse whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def extract_answer(text: str) -> str:
    """The answer in an output: "the answer is X" → X; else the last option letter "(B)"; else the first line."""
    answer = final_answer(text)
    if answer is not None:
        return answer
    options = _OPTION.findall(text)
    if options:
        return f"({options[-1]})"
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[0].strip() if lines else ""


def exact_match(prediction: str, reference: str) -> float:
    return float(normalize(prediction) == normalize(reference))


def answer_accuracy(prediction: str, reference: str) -> float:
    return float(normalize(extract_answer(prediction)) == normalize(extract_answer(reference)))


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1 of the normalised texts (1.0 when both are empty)."""
    pred, ref = normalize(prediction).split(), normalize(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def score(predictions: list[str], references: list[str]) -> EvalResult:
    """Mean exact match, accuracy and token F1 over pairs."""
    n = len(predictions)
    if n == 0:
        return EvalResult(0, 0.0, 0.0, 0.0)
    return EvalResult(n=n, exact_match=sum(map(exact_match, predictions, references)) / n,
                      accuracy=sum(map(answer_accuracy, predictions, references)) / n,
                      f1=sum(map(token_f1, predictions, references)) / n)


def read_metrics(run_dir: Path) -> dict[str, EvalResult] | None:
    """The run's evaluations keyed ``student:<data>`` / ``base:<data>`` (None before the first one)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    return {key: EvalResult.from_json(m) for key, m in saved.items() if isinstance(m, dict)}


def _save_metrics(run_dir: Path, result: EvalResult) -> None:
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
                out.append(Prediction(**json.loads(line)))
            except (ValueError, TypeError):
                continue
    return out


def _predictions_file(base: bool) -> str:
    return "predictions-base.jsonl" if base else "predictions.jsonl"


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


def generate(model: Any, tokenizer: Any, fmt: PromptFormat, inputs: list[str], device: str, max_new_tokens: int,
             max_length: int | None = None) -> list[str]:
    """Greedy completions of ``inputs`` (one left-padded batch), cut at EOS / stop strings.

    Prompt plus new tokens never exceed the model's context (see :func:`fit_context`); a prompt that is
    too long loses its start, as in training (the input and the answer matter most).
    """
    import torch

    prompts = [encode_prompt(fmt, tokenizer, x) for x in inputs]
    config = getattr(model, "config", None)
    context = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    cap, max_new_tokens = fit_context(max(len(p) for p in prompts), max_new_tokens,
                                      context if isinstance(context, int) else None, max_length)
    prompts = [p[-cap:] for p in prompts]
    width = max(len(p) for p in prompts)
    pad = tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
    stops = stop_strings(fmt, tokenizer)
    stop_ids = sorted({i for s in stops for i in [tokenizer.convert_tokens_to_ids(s)]
                       if isinstance(i, int) and i != tokenizer.unk_token_id} | {tokenizer.eos_token_id})
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                             eos_token_id=stop_ids, pad_token_id=pad)
    texts = []
    for row in out[:, width:].tolist():
        cut = next((k for k, t in enumerate(row) if t in stop_ids), len(row))
        text = tokenizer.decode(row[:cut], skip_special_tokens=True)
        for s in stops:
            text = text.split(s)[0]
        texts.append(text.strip())
    return texts


def evaluate(run_dir: str | Path, data: str | Path | None = None, *, base: bool = False, limit: int | None = None,
             max_new_tokens: int = 256, batch_size: int = 8, device: str = "auto") -> Iterator[Event]:
    """Evaluate the run's student (``base``: the untrained student) on its validation split or ``data``.

    Yields :class:`~engine.events.Progress` per batch and ends with :class:`EvalDone`. Predictions are
    written as they are made; closing the generator stops after the current batch.
    """
    run_dir = Path(run_dir)
    if data is not None:
        rows = read_examples_file(data)
        label = Path(data).name
    else:
        rows = read_jsonl(run_dir / "eval.jsonl")
        label = "validation"
        if not rows:
            raise EngineError(f"run {run_dir.name} has no validation split",
                              fix="evaluate on a file with --data FILE")
    if limit:
        rows = rows[:limit]
    which = "base" if base else "student"
    model, tokenizer, fmt, device = load_for_inference(run_dir, base=base, device=device)
    max_length = read_config(run_dir).settings.max_length or None
    pred_path = run_dir / _predictions_file(base)
    preds: list[str] = []
    refs: list[str] = []
    t0 = time.monotonic()
    meter = RateMeter()
    yield meter.progress("eval", 0, len(rows), "examples", f"{which} on {label}")
    with pred_path.open("w", encoding="utf-8") as f:
        for i in range(0, len(rows), batch_size):
            batch = rows[i:i + batch_size]
            texts = generate(model, tokenizer, fmt, [r["input"] for r in batch], device, max_new_tokens,
                             max_length)
            for r, p in zip(batch, texts, strict=True):
                preds.append(p)
                refs.append(r["output"])
                line = Prediction(input=r["input"], reference=r["output"], prediction=p, answer=extract_answer(p),
                                  reference_answer=extract_answer(r["output"]),
                                  correct=bool(answer_accuracy(p, r["output"])))
                f.write(json.dumps(asdict(line), ensure_ascii=False) + "\n")
            f.flush()
            yield meter.progress("eval", len(preds), len(rows), "examples", f"{which} on {label}")
    result = replace(score(preds, refs), model=which, data=label, seconds=round(time.monotonic() - t0, 3))
    _save_metrics(run_dir, result)
    yield EvalDone(metrics=result, predictions=str(pred_path))
