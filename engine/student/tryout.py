"""Trying a run's student on any input, beside its untrained base: the model loaded once, kept warm, its
answer streamed as it is generated.

The prompt is the run's own training format (the same as ``eval``), cut to the student's context as ``eval``
cuts it (the attempt says so). The answer shown is what the task's metric would extract from the output (the
text after "answer is", or the label named); the teacher's side lives in :mod:`engine.teacher.solve`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.student import metrics
from engine.student.evaluate import load_for_inference, prepare_batch, run_task
from engine.student.run_config import read_config
from engine.tasks import Task


@dataclass(frozen=True)
class Attempt:
    """One system's answer to one input: the full text, the extracted answer, the time it took, when the first
    token came, how many tokens were generated, and whether the prompt lost its start to fit the context."""

    text: str
    answer: str
    seconds: float
    first_token_s: float | None = None
    tokens: int = 0
    truncated: bool = False
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "answer": self.answer, "seconds": round(self.seconds, 3)}


def answer_of(task: Task | None, text: str) -> str:
    """What the task's metric would take as the answer of ``text``."""
    if task is not None:
        named = (task.metric or "").split(",")[0]
        if named in ("bleu", "chrf"):
            return text.strip()
        labels = metrics.task_labels(task)
        if labels and named in ("", "accuracy"):
            label = metrics.LabelSet(labels).of(text)
            if label is not None:
                return label
    return metrics.extract_answer(text)


def judge(task: Task | None, layout: str, references: tuple[str, ...], text: str) -> bool | None:
    """Whether ``text`` answers an item with ``references`` right, by the metric ``eval`` would choose for
    ``layout`` (``jsonl`` for a run's validation split, a test file's own); None for a metric that scores only
    a whole set (BLEU, chrF)."""
    from engine.student.evaluate import score_answers
    from engine.student.testsets import TestItem

    if not references:
        return None
    _, _, preds = score_answers("try", "try", layout, [TestItem("", tuple(references))], [text], task=task,
                                metric=None, seconds=0.0)
    return preds[0].correct


class WarmModel:
    """A run's student (or its base) loaded once for answering inputs one at a time."""

    def __init__(self, run_dir: Path, *, base: bool = False, device: str = "auto") -> None:
        t0 = time.perf_counter()
        self.model, self.tokenizer, self.fmt, self.device = load_for_inference(run_dir, base=base, device=device)
        self.max_length = read_config(run_dir).settings.max_length or None
        self.load_seconds = time.perf_counter() - t0

    def answer(self, text: str, task: Task | None, max_new_tokens: int = 256,
               on_text: Callable[[str], None] | None = None) -> Attempt:
        """Greedy answer to ``text``; ``on_text`` gets the response so far as tokens arrive."""
        import torch
        from transformers import TextIteratorStreamer

        batch = prepare_batch(self.model, self.tokenizer, self.fmt, [text], self.device, max_new_tokens,
                              self.max_length)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        failure: list[BaseException] = []

        def run() -> None:
            try:
                with torch.inference_mode():
                    self.model.generate(input_ids=batch.ids, attention_mask=batch.mask,
                                        max_new_tokens=batch.new_tokens, do_sample=False,
                                        eos_token_id=batch.stop_ids, pad_token_id=self.tokenizer.pad_token_id,
                                        streamer=streamer)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread below
                failure.append(exc)
                streamer.end()

        t0 = time.perf_counter()
        first: float | None = None
        worker = threading.Thread(target=run, name="try-generate", daemon=True)
        worker.start()
        so_far = ""
        for piece in streamer:
            if first is None and piece:
                first = time.perf_counter() - t0
            so_far += piece
            if on_text is not None:
                on_text(batch.cut(so_far))
        worker.join()
        if failure:
            raise failure[0]
        final = batch.cut(so_far)
        tokens = len(self.tokenizer(final, add_special_tokens=False)["input_ids"]) if final else 0
        return Attempt(final, answer_of(task, final), time.perf_counter() - t0, first, tokens, batch.truncated > 0)


def run_context(run_dir: Path) -> tuple[str, Task | None]:
    """The run's id and its task (instruction and demonstrations), for prompts and answers."""
    cfg = read_config(run_dir)
    return cfg.id, run_task(cfg)
