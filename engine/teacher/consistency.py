"""Self-consistency: ``transform --samples N`` asks the teacher N times per row and keeps a majority answer.

Each of a row's N calls sends its own seed (the run's seed plus the sample's number, as synthesis slots do), so
even a fixed-seed teacher answers each differently; every call is cached in ``teacher_calls`` under its own
key (kind ``sample``) as soon as it finishes, so a stopped run asks only the samples it had not finished.
The answers are compared as the task's metric extracts them (:func:`answer_keyer`: the exact answer after
"the answer is", the SQuAD-normalised span, or the label a classification answer names) and the example is
kept only when more than half of the N samples give the same one. The example kept is the first sample that
reaches the majority answer (its input, its reasoning), and it records ``samples`` = N and ``agreement``, the
share of samples that agree. Without a majority the row's example is ``failed`` ("no majority"), its first
usable sample kept for inspection. Samples that failed the quality checks cast no vote.

The decision is stored like any call's example, under the row's *vote* key (kind ``vote:N``): a re-run finds
it there and repeats nothing. Tasks scored by text overlap (BLEU, chrF: code, long text) have no answer to
vote on, and are refused.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.errors import EngineError
from engine.student import metrics
from engine.teacher.ask import Answer, Teacher, ask_example, judge
from engine.teacher.calls import answered, call_key
from engine.teacher.plan import slot_seed

if TYPE_CHECKING:
    from engine.tasks import Task
    from engine.teacher.client import TeacherSettings
    from engine.teacher.prompts import PromptSpec
    from engine.teacher.quality import DuplicateIndex
    from engine.workspace import Workspace

MIN_SAMPLES = 3
_OPTION = re.compile(r"^\(([a-z])\)(\s|$)")


def check_samples(samples: int, method: str = "rebase") -> None:
    """EngineError for a sample count that cannot vote (1 means no vote), or a vote on synthesized examples."""
    if samples == 1:
        return
    if samples < MIN_SAMPLES:
        raise EngineError(f"--samples {samples}: a majority vote needs at least {MIN_SAMPLES} answers",
                          fix=f"pass --samples {MIN_SAMPLES} or more (an odd number avoids ties), or leave it out")
    if method != "rebase":
        raise EngineError("--samples votes on the answers to one row's example; synthesized examples have no row, "
                          "so their samples would answer different questions",
                          fix="leave --samples out with --method synthesize")


def answer_keyer(task: Task) -> Callable[[str], str | None]:
    """How the task's metric extracts an answer to compare (None: the output names no answer): the task's
    ``metric``, else the exact answer for a task whose demonstrations reason to "the answer is X", else the
    metric inferred from its demonstrations.

    EngineError for a task scored by text overlap (BLEU, chrF), whose outputs have no answer to vote on.
    """
    choice = metrics.choose_metric("jsonl", [[e.output] for e in task.examples], task=task)
    metric = choice.metrics[0]
    if task.reasons and not task.metric:    # reasoning to "the answer is X": X is the answer, whatever X looks like
        metric = "exact"
    if metric in ("bleu", "chrf"):
        raise EngineError(f"task {task.name} is scored by text overlap ({metric}): its outputs have no answer "
                          "the samples could agree on", fix="leave --samples out for this task")
    if metric == "squad":
        return lambda out: metrics.normalize_squad(metrics.extract_answer(out)) or None
    if metric == "accuracy":
        labels = metrics.LabelSet(choice.labels or tuple(dict.fromkeys(e.output for e in task.examples)))
        return labels.of

    def exact(out: str) -> str | None:
        answer = metrics.normalize_exact(metrics.extract_answer(out))
        option = _OPTION.match(answer)          # "(b)" and "(b) the option's text" are the same answer
        return f"({option.group(1)})" if option else answer or None

    return exact


@dataclass(frozen=True)
class Vote:
    """The most given answer among ``samples`` (None when no sample gave one), how many gave it, and whether
    that is a majority (more than half of all samples, unusable ones included)."""

    answer: str | None
    votes: int
    samples: int
    tally: tuple[tuple[str, int], ...] = ()

    @property
    def majority(self) -> bool:
        return self.answer is not None and 2 * self.votes > self.samples

    @property
    def agreement(self) -> float:
        return self.votes / self.samples if self.samples else 0.0

    def describe(self) -> str:
        """``"Yes ×1, No ×1, unusable ×1"``."""
        parts = [f"{a} ×{n}" for a, n in self.tally]
        unusable = self.samples - sum(n for _, n in self.tally)
        return ", ".join(parts + ([f"unusable ×{unusable}"] if unusable else []))


def tally(keys: list[str | None]) -> Vote:
    """Count the answers (None casts no vote); ties for the most votes go to the first answer given."""
    counts = collections.Counter(k for k in keys if k is not None)
    order = list(dict.fromkeys(k for k in keys if k is not None))
    ranked = sorted(order, key=lambda k: -counts[k])
    top = ranked[0] if ranked else None
    return Vote(top, counts[top] if top is not None else 0, len(keys), tuple((k, counts[k]) for k in ranked))


def sample_seeds(settings: TeacherSettings, samples: int) -> list[int]:
    """The seed of each sample call: the run's seed plus the sample's number."""
    return [slot_seed(settings.seed, i) for i in range(1, samples + 1)]


def sample_keys(task: str, row: int, phash: str, settings: TeacherSettings, samples: int) -> list[str]:
    """The cache keys of a row's sample calls, in sample order."""
    return [call_key(task, row, phash, dataclasses.replace(settings, seed=seed), "sample")
            for seed in sample_seeds(settings, samples)]


StoreSample = Callable[[Teacher, str, Answer], Awaitable[Any]]
"""Stores one finished sample call: (the seeded teacher, its key, its answer)."""


async def ask_voted(ws: Workspace, teacher: Teacher, spec: PromptSpec, row: int, data: dict[str, Any] | None,
                    dups: DuplicateIndex, samples: int, store: StoreSample, *, remember_as: str | None = None,
                    on_text: Callable[[Callable[[], str]], None] | None = None) -> Answer:
    """Ask for ``samples`` examples of one row (the cached ones are read back, each new one stored through
    ``store`` as soon as it finishes) and return the kept one (see the module docstring).

    An answer whose call could not be made or answered is returned at once as the row's answer (a failed
    call: the row is asked again next run, its finished samples then come from the cache).
    """
    keyer = answer_keyer(spec.task)
    teachers = [teacher.with_seed(seed) for seed in sample_seeds(teacher.settings, samples)]
    keys = sample_keys(spec.task.name, row, spec.hash, teacher.settings, samples)
    cached = await asyncio.to_thread(answered, ws, spec.task.name, keys)
    answers: list[Answer] = []
    for seeded, key in zip(teachers, keys, strict=True):
        if key in cached:
            parsed, status, reason = judge(spec, cached[key], None, dups, data)
            answers.append(Answer(status, reason, parsed, cached[key], True, None, 0, 0.0, {}, {}))
            continue
        answer = await ask_example(seeded, spec, data, dups, on_text=on_text)
        if answer.attempts == 0:            # not sent: the host went away meanwhile
            return answer
        await store(seeded, key, answer)
        if not answer.call_ok:
            return answer
        answers.append(answer)
    kept = decide(answers, [keyer(a.output) if a.status != "failed" else None for a in answers])
    if kept.status == "pending" and kept.parsed is not None and remember_as is not None:
        dups.add(kept.parsed.input, kept.parsed.output, remember_as)
    return kept


def decide(answers: list[Answer], keys: list[str | None]) -> Answer:
    """The kept answer of a row's samples, given each one's answer key (None: no vote), with the vote recorded."""
    vote = tally(keys)
    n = len(answers)
    tokens = sum(a.tokens.get("eval_count", 0) for a in answers)
    # one plus every sample's retries, so a caller counting retries as attempts - 1 counts the samples' retries
    attempts, seconds = 1 + sum(max(0, a.attempts - 1) for a in answers), sum(a.seconds for a in answers)
    agreement = round(vote.agreement, 6)
    if not vote.majority:
        shown = next((a for a, k in zip(answers, keys, strict=True) if k is not None), answers[0])
        return dataclasses.replace(shown, status="failed", reason=f"no majority among {n} sampled answers "
                                   f"({vote.describe()})", tokens=dict(shown.tokens, eval_count=tokens), samples=n,
                                   agreement=agreement, attempts=attempts, seconds=seconds)
    agreeing = [a for a, k in zip(answers, keys, strict=True) if k == vote.answer]
    chosen = next((a for a in agreeing if a.status == "pending"), agreeing[0])
    return dataclasses.replace(chosen, tokens=dict(chosen.tokens, eval_count=tokens), samples=n, agreement=agreement,
                               attempts=attempts, seconds=seconds)
