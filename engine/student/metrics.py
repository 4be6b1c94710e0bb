"""Metrics for a student's (or any system's) answers, one per kind of task, with bootstrap confidence intervals.

* ``exact`` — the extracted answer equals the target, compared case-insensitively with surrounding whitespace,
  quotes and one final period trimmed and inner whitespace collapsed. Signs, decimals, brackets and inner
  punctuation are kept (``-12`` is not ``12``, ``3.5`` is not ``35``, ``) ]`` is not ``]``). A multiple-choice
  target ``(B)`` also accepts ``B`` and ``(B) <option text>``, never ``(C)``.
* ``squad`` — the official SQuAD v1.1 exact match and token F1 (lower case, no punctuation, no articles), each
  the best over all of an item's references. Reports ``exact_match`` and ``f1``.
* ``accuracy`` — classification over a label set (e.g. MNLI's three labels, taken from the task's examples):
  the prediction is mapped to a label (its extracted answer is a label, or exactly one label appears in it as
  a word) and compared with the target's label; an answer that names no label, or several, is wrong.
* ``bleu`` and ``chrf`` (chrF++: character n-grams plus word bigrams) — corpus-level text overlap for
  generation (e.g. code), computed by sacrebleu over all references; on sacrebleu's 0–100 scale.

Every metric is computed from per-item statistics (a 0/1 or a score per item for the first three, sacrebleu's
sufficient statistics for the corpus metrics), so a bootstrap over items gives a 95 % confidence interval,
and two systems answering the same items get a paired-bootstrap p-value (:func:`paired_bootstrap`).

The answer of an output is what follows its last "answer is" (up to the end of that line), else its first
non-empty line: a chain-of-thought student and a direct one are scored on the same thing.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.errors import EngineError
from engine.tasks import TASK_METRICS

METRICS = TASK_METRICS
"""The metrics a task (``metric`` key), ``eval --metric`` and ``score --metric`` can name."""
VALUE_NAMES = {"exact": ("exact",), "squad": ("exact_match", "f1"), "accuracy": ("accuracy",),
               "bleu": ("bleu",), "chrf": ("chrf",)}
"""The values each metric reports (the keys of ``metrics`` in ``--json`` output)."""
BOOTSTRAP_SAMPLES = 1000
BOOTSTRAP_SEED = 0

_ANSWER_IS = re.compile(r"answer is\s*:?\s*", re.IGNORECASE)
_QUOTES = "\"'`“”‘’"
_OPTION = re.compile(r"^\(([a-z])\)$")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


# -- answers -------------------------------------------------------------------------------------------
def extract_answer(text: str) -> str:
    """The answer of an output: the rest of the line after its last "answer is", else its first non-empty line."""
    text = text or ""
    hits = list(_ANSWER_IS.finditer(text))
    if hits:
        rest = text[hits[-1].end():]
        return rest.split("\n", 1)[0].strip()
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def normalize_exact(text: str) -> str:
    """Case folded, surrounding whitespace and quotes and one final period trimmed, inner whitespace collapsed;
    everything else (signs, decimals, brackets, inner punctuation) kept."""
    text = " ".join(text.split()).lower()
    text = text.strip().strip(_QUOTES).strip()
    if text.endswith("."):
        text = text[:-1].rstrip()
    return text.strip(_QUOTES).strip()


def exact_correct(prediction: str, target: str) -> bool:
    """Whether the extracted answer of ``prediction`` is ``target`` (see the module docstring for the rules).

    A target that reasons ("... the answer is X.", a validation split of a chain-of-thought task) counts by
    its own answer X."""
    answer = normalize_exact(extract_answer(prediction))
    goal = normalize_exact(extract_answer(target) if _ANSWER_IS.search(target) else target)
    if answer == goal:
        return True
    option = _OPTION.match(goal)
    if option:  # "(b)" accepts "b" and "(b) the option's text", nothing else
        letter = option.group(1)
        return answer == letter or answer.startswith(f"({letter}) ")
    return False


def normalize_squad(text: str) -> str:
    """The official SQuAD v1.1 normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def squad_exact(prediction: str, reference: str) -> float:
    """SQuAD v1.1 exact match of two answers."""
    return float(normalize_squad(prediction) == normalize_squad(reference))


def squad_f1(prediction: str, reference: str) -> float:
    """SQuAD v1.1 token F1 of two answers (0 when they share no token, empty answers included)."""
    pred, ref = normalize_squad(prediction).split(), normalize_squad(reference).split()
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


@dataclass(frozen=True)
class LabelSet:
    """The labels of a classification task, matched case-insensitively (trailing period and quotes ignored)."""

    labels: tuple[str, ...]

    def of(self, text: str) -> str | None:
        """The label an output names: its extracted answer is a label, else exactly one label appears in the
        answer (then in the whole output) as a word; None when no label or several do."""
        keys = {normalize_exact(label): label for label in self.labels}
        answer = normalize_exact(extract_answer(text))
        if answer in keys:
            return keys[answer]
        for haystack in (answer, " ".join((text or "").lower().split())):
            found = {keys[k] for k in keys if re.search(rf"(?<!\w){re.escape(k)}(?!\w)", haystack)}
            if len(found) == 1:
                return found.pop()
            if found:
                return None
        return None


# -- per-item statistics and aggregation -----------------------------------------------------------
@dataclass(frozen=True)
class _Stat:
    """One reported value: per-item statistics (rows) and how a set of rows becomes the value."""

    name: str
    stats: np.ndarray                                # (n, k)
    aggregate: Callable[[np.ndarray], float]         # summed or averaged rows -> value
    mean: bool = True                                # aggregate the mean of rows (else their sum)

    def value_of(self, idx: np.ndarray | None = None) -> float:
        rows = self.stats if idx is None else self.stats[idx]
        return self.aggregate(rows.mean(axis=0) if self.mean else rows.sum(axis=0))


def _mean_stat(name: str, scores: Sequence[float]) -> _Stat:
    return _Stat(name, np.asarray(scores, dtype=np.float64).reshape(-1, 1), lambda v: float(v[0]))


def _sacrebleu_stat(name: str, predictions: Sequence[str], references: Sequence[Sequence[str]]) -> _Stat:
    import sacrebleu

    metric: Any = sacrebleu.BLEU() if name == "bleu" else sacrebleu.CHRF(word_order=2)
    width = max((len(r) for r in references), default=1) or 1
    streams = [[refs[i] if i < len(refs) else None for refs in references] for i in range(width)]
    stats = np.asarray(metric._extract_corpus_statistics(list(predictions), streams), dtype=np.float64)
    if name == "bleu":  # BLEU's statistics must be integers again (its n-gram counts)
        return _Stat(name, stats, lambda v: float(metric._compute_score_from_stats(
            [int(round(x)) for x in v]).score), mean=False)
    return _Stat(name, stats, lambda v: float(metric._compute_score_from_stats(list(v)).score), mean=False)


@dataclass(frozen=True)
class MetricValue:
    """One metric's value over a test set and its bootstrap 95 % confidence interval."""

    value: float
    ci95: tuple[float, float]

    def to_json(self) -> dict[str, Any]:
        return {"value": round(self.value, 6), "ci95": [round(self.ci95[0], 6), round(self.ci95[1], 6)]}


@dataclass(frozen=True)
class Scored:
    """Scores of one system's answers on one test set: every value with its CI, and the per-item answers."""

    metric: str
    n: int
    values: dict[str, MetricValue]
    answers: list[str]
    correct: list[bool | None] = field(default_factory=list)
    _stats: dict[str, _Stat] = field(default_factory=dict, repr=False, compare=False)

    def metrics_json(self) -> dict[str, Any]:
        """``{NAME: {"value", "ci95"}}`` as ``eval --json`` and ``score --json`` print it."""
        return {name: v.to_json() for name, v in self.values.items()}


def _bootstrap_indices(n: int, samples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(samples, n))


def _interval(stat: _Stat, idx: np.ndarray) -> tuple[float, float]:
    if stat.stats.shape[0] == 0:
        return (0.0, 0.0)
    values = np.array([stat.value_of(row) for row in idx]) if stat.stats.shape[1] > 1 or not stat.mean \
        else stat.stats[idx, 0].mean(axis=1)
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def score(metric: str, predictions: Sequence[str], references: Sequence[Sequence[str]], *,
          labels: Sequence[str] = (), samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED) -> Scored:
    """Score ``predictions`` (raw outputs) against ``references`` (one or more per item) with ``metric``."""
    if metric not in METRICS:
        raise EngineError(f"unknown metric {metric!r}", fix=f"use one of {', '.join(METRICS)}")
    if len(predictions) != len(references):
        raise EngineError(f"{len(predictions)} predictions for {len(references)} test items",
                          fix="give exactly one prediction per test item, in test order")
    refs = [[str(r) for r in (rs if isinstance(rs, list | tuple) else [rs])] for rs in references]
    if any(not r for r in refs):
        raise EngineError("a test item has no reference answer", fix="give every item at least one reference")
    answers = [extract_answer(p) for p in predictions]
    correct: list[bool | None] = [None] * len(refs)
    stats: dict[str, _Stat]
    if metric == "exact":
        ok = [any(exact_correct(p, r) for r in rs) for p, rs in zip(predictions, refs, strict=True)]
        correct = list(ok)
        stats = {"exact": _mean_stat("exact", [float(c) for c in ok])}
    elif metric == "squad":
        em = [max(squad_exact(a, r) for r in rs) for a, rs in zip(answers, refs, strict=True)]
        f1 = [max(squad_f1(a, r) for r in rs) for a, rs in zip(answers, refs, strict=True)]
        correct = [e == 1.0 for e in em]
        stats = {"exact_match": _mean_stat("exact_match", em), "f1": _mean_stat("f1", f1)}
    elif metric == "accuracy":
        label_set = LabelSet(tuple(labels) or tuple(dict.fromkeys(r for rs in refs for r in rs)))
        got = [label_set.of(p) for p in predictions]
        want = [{label_set.of(r) for r in rs} - {None} for rs in refs]
        ok = [g is not None and g in w for g, w in zip(got, want, strict=True)]
        correct = list(ok)
        answers = [g if g is not None else a for g, a in zip(got, answers, strict=True)]
        stats = {"accuracy": _mean_stat("accuracy", [float(c) for c in ok])}
    else:
        stats = {metric: _sacrebleu_stat(metric, predictions, refs)}
    idx = _bootstrap_indices(len(refs), samples, seed) if refs else np.zeros((0, 0), dtype=np.int64)
    values = {name: MetricValue(s.value_of() if refs else 0.0, _interval(s, idx)) for name, s in stats.items()}
    return Scored(metric, len(refs), values, answers, correct, stats)


def paired_bootstrap(a: Scored, b: Scored, *, samples: int = BOOTSTRAP_SAMPLES,
                     seed: int = BOOTSTRAP_SEED) -> dict[str, float]:
    """Two-sided paired-bootstrap p-value, per value, that ``b`` and ``a`` (the same items) differ.

    The items are resampled together for both systems; the p-value is the share of resamples whose difference,
    centred on the observed one, is at least as large as the observed difference (the test sacrebleu uses).
    """
    if a.n != b.n or a.metric != b.metric:
        raise EngineError("the two systems were not scored on the same test set with the same metric",
                          fix="score both on the same --data with the same --metric")
    idx = _bootstrap_indices(a.n, samples, seed)
    out = {}
    for name, sa in a._stats.items():
        sb = b._stats[name]
        observed = sb.value_of() - sa.value_of()
        deltas = np.array([sb.value_of(row) - sa.value_of(row) for row in idx])
        extreme = np.abs(deltas - observed) >= abs(observed) - 1e-12
        out[name] = float((1 + extreme.sum()) / (samples + 1))
    return out


# -- choosing the metric ------------------------------------------------------------------------------
@dataclass(frozen=True)
class MetricChoice:
    """The metrics to report for a test set, the label set (for ``accuracy``) and why they were chosen."""

    metrics: tuple[str, ...]
    labels: tuple[str, ...] = ()
    why: str = ""


def parse_metrics(text: str) -> tuple[str, ...]:
    """``"bleu,chrf"`` → ``("bleu", "chrf")``; EngineError naming an unknown metric."""
    names = tuple(dict.fromkeys(n.strip().lower() for n in text.split(",") if n.strip()))
    bad = [n for n in names if n not in METRICS]
    if bad or not names:
        raise EngineError(f"unknown metric {', '.join(bad) or repr(text)}",
                          fix=f"use one or more of {', '.join(METRICS)} (comma-separated)")
    return names


_CODE_MARKS = re.compile(r"[A-Za-z_]\w*[(\[]|[A-Za-z_]\w*\.[A-Za-z_]|\w\s*=|^\s*(import|def|for|print|return)\b")


def choose_metric(layout: str, references: Sequence[Sequence[str]], *, task: Any = None,
                  explicit: str | None = None) -> MetricChoice:
    """The metrics for a test set: ``explicit`` (``--metric``), else the task file's ``metric`` key, else
    inferred from the test data (and the task's examples) — the reason is returned for the user to see."""
    labels = task_labels(task)
    if explicit:
        return MetricChoice(parse_metrics(explicit), labels, "given with --metric")
    if task is not None and getattr(task, "metric", None):
        return MetricChoice(parse_metrics(task.metric), labels, f"the task {task.name!r} names it")
    firsts = [refs[0] for refs in references if refs]
    if layout == "squad":
        return MetricChoice(("squad",), (), "SQuAD layout: extractive QA with several references")
    if layout == "bbh":
        return MetricChoice(("exact",), (), "BIG-Bench-Hard: exact answer")
    if task is not None and task.reasons:
        return MetricChoice(("exact",), (), "the task's examples reason to a final answer: exact answer")
    if firsts and sum(bool(_ANSWER_IS.search(r)) for r in firsts) > 0.5 * len(firsts):
        return MetricChoice(("exact",), (), "the references reason to a final answer: exact answer")
    if layout == "mconala" or (firsts and sum(bool(_CODE_MARKS.search(r)) for r in firsts) > 0.5 * len(firsts)):
        return MetricChoice(("bleu", "chrf"), (), "the references are code: text overlap")
    keyed = {normalize_exact(label) for label in labels}
    if len(labels) >= 2 and firsts and all(normalize_exact(r) in keyed for r in firsts):
        return MetricChoice(("accuracy",), labels, f"every reference is one of the labels {', '.join(labels)}")
    distinct = tuple(dict.fromkeys(firsts))
    if layout != "bbh" and 2 <= len(distinct) <= 10 and len(firsts) >= 4 * len(distinct) \
            and not any(_OPTION.match(normalize_exact(d)) for d in distinct):
        return MetricChoice(("accuracy",), distinct, f"the references take {len(distinct)} values: a label set")
    if any(len(refs) > 1 for refs in references):
        return MetricChoice(("squad",), (), "several references per item: SQuAD exact match and F1")
    if firsts and sum(len(r.split()) for r in firsts) / len(firsts) > 12:
        return MetricChoice(("bleu", "chrf"), (), "long free-text references: text overlap")
    return MetricChoice(("exact",), (), "short answers: exact answer")


def task_labels(task: Any) -> tuple[str, ...]:
    """The distinct final answers of a direct (non-reasoning) task's examples, in order."""
    if task is None or task.reasons:
        return ()
    outs = [e.output.strip() for e in task.examples]
    distinct = tuple(dict.fromkeys(outs))
    return distinct if 2 <= len(distinct) < len(outs) or (2 <= len(distinct) <= 5) else ()


def score_all(choice: MetricChoice, predictions: Sequence[str], references: Sequence[Sequence[str]],
              **kw: Any) -> list[Scored]:
    """Score with every metric of ``choice``."""
    return [score(m, predictions, references, labels=choice.labels, **kw) for m in choice.metrics]


def metrics_json(scored: Sequence[Scored]) -> dict[str, Any]:
    """All values of several scorings as ``{NAME: {"value", "ci95"}}``."""
    out: dict[str, Any] = {}
    for s in scored:
        out.update(s.metrics_json())
    return out


def format_value(name: str, value: dict[str, Any]) -> str:
    """``0.732 (95% CI 0.680–0.781)``; BLEU and chrF on their 0–100 scale with one decimal."""
    lo, hi = value["ci95"]
    if name in ("bleu", "chrf"):
        return f"{value['value']:.1f} (95% CI {lo:.1f}–{hi:.1f})"
    return f"{value['value']:.3f} (95% CI {lo:.3f}–{hi:.3f})"
