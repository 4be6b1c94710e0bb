"""Ask the teacher for one example: the call, the quality checks and the timings, shared by transform and
regenerate so both make and judge an example the same way.

:class:`Teacher` is a checked connection (the host answers, the model is installed; its digest is recorded
with every example). :func:`ask_example` sends one row through a :class:`~engine.teacher.prompts.PromptSpec`
and returns an :class:`Answer`: the parsed example and its state (``pending``, ``duplicate`` or ``failed``),
the raw reply, and what the call cost. It writes nothing: the caller decides what to store (a transform run
stores a failed call as a failed example to retry next run; a regeneration whose call failed stores nothing).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.teacher.client import ChatResult, TeacherCallFailed, TeacherSettings, chat, open_backend
from engine.teacher.prompts import PromptSpec
from engine.teacher.quality import DuplicateIndex, Parsed, Unusable, parse_reply
from engine.teacher.rule_checks import run_checks

if TYPE_CHECKING:
    from engine.teacher.backend import Backend


@dataclass(frozen=True)
class Teacher:
    """A teacher that answered: its backend (Ollama or an OpenAI-compatible server), the settings of every
    call, and the model's digest (recorded with every example)."""

    backend: Backend
    settings: TeacherSettings
    digest: str

    @classmethod
    async def connect(cls, settings: TeacherSettings, notice: Callable[[str], None] | None = None) -> Teacher:
        """Check the host and the model (EngineError naming the problem and its fix); close with :meth:`close`.
        ``notice`` receives the backend's one-off remarks (e.g. a fallback to JSON mode)."""
        backend = open_backend(settings, notice)
        try:
            info = await backend.check_model(settings.model)
        except BaseException:
            await backend.close()
            raise
        return cls(backend, settings, info.digest)

    def with_seed(self, seed: int) -> Teacher:
        """The same teacher asked with another seed (the backend is shared: close the original only)."""
        return dataclasses.replace(self, settings=dataclasses.replace(self.settings, seed=seed))

    async def chat(self, messages: list[dict[str, str]], schema: dict[str, Any] | None,
                   on_text: Callable[[Callable[[], str]], None] | None = None) -> ChatResult:
        """One call with this teacher's settings (see :func:`engine.teacher.client.chat`)."""
        return await chat(self.backend, self.settings, messages, schema, on_text=on_text)

    async def close(self) -> None:
        await self.backend.close()


@dataclass(frozen=True)
class Answer:
    """One finished call as an example.

    ``status`` is ``pending`` (usable), ``duplicate`` (``reason`` names the earlier example) or ``failed``:
    either the reply was unusable (``call_ok``, ``reason`` says why, the raw reply is in ``response``) or the
    call itself could not be made or answered (not ``call_ok``: retries used up, a final 4xx, the deadline,
    a reply over the cap; ``fault`` names the kind, ``response`` holds the partial text, ``error`` every
    attempt's error; ``attempts`` 0 means nothing was sent because the host is gone).
    """

    status: str
    reason: str | None
    parsed: Parsed | None
    response: str | None
    call_ok: bool
    error: str | None
    attempts: int
    seconds: float
    timings: dict[str, float]
    tokens: dict[str, int]
    fault: str | None = None
    samples: int | None = None
    """With ``transform --samples N``: the N answers sampled (this one is the kept one; None: one answer)."""
    agreement: float | None = None
    """With ``transform --samples N``: the share of the sampled answers that agree with this one's."""

    @property
    def input(self) -> str:
        return self.parsed.input if self.parsed else ""

    @property
    def output(self) -> str:
        return self.parsed.output if self.parsed else ""

    @property
    def reasoning(self) -> str | None:
        return self.parsed.reasoning if self.parsed else None


def judge(spec: PromptSpec, content: str, done_reason: str | None, dups: DuplicateIndex,
          row: dict[str, Any] | None) -> tuple[Parsed | None, str, str | None]:
    """A reply as an example: ``(parsed, status, reason)`` after the checks every new example passes (parse,
    fields, label set, the task's accepted check rules on ``row``, duplicates of ``dups``); status is
    ``pending``, ``duplicate`` or ``failed``. Also used on a stored reply (a cached sample)."""
    parsed: Parsed | None = None
    try:
        parsed = parse_reply(content, cot=spec.cot, labels=spec.labels, done_reason=done_reason)
        run_checks(spec.checks, spec.task, parsed, row)
        reason = dups.check(parsed.input, parsed.output)
        return parsed, "duplicate" if reason else "pending", reason
    except Unusable as exc:
        return parsed, "failed", exc.reason


def throttled(emit: Callable[[str], None], interval: float) -> Callable[[Callable[[], str]], None]:
    """An ``on_text`` callback that calls ``emit`` with the text so far at most once per ``interval``
    seconds: streamed text is a snapshot, so a dropped one loses nothing, and a fast stream would otherwise
    flood the front end with redraws (and join a long reply once per piece)."""
    last = 0.0

    def on_text(text: Callable[[], str]) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= interval:
            last = now
            emit(text())

    return on_text


async def ask_example(teacher: Teacher, spec: PromptSpec, row: dict[str, Any] | None, dups: DuplicateIndex, *,
                      on_text: Callable[[Callable[[], str]], None] | None = None,
                      remember_as: str | None = None) -> Answer:
    """Ask for one example made from ``row`` (None: written from the task alone, for a synthesizing spec) and
    check it (see :func:`judge`).

    ``on_text`` receives a getter of the streamed text so far after each piece (see :func:`throttled`). With
    ``remember_as``, a usable example is added to ``dups`` under that label before this returns, so calls
    running beside this one see it. Raises EngineError only when the run cannot go on (the model went away,
    the server refused the API key).
    """
    t0 = time.perf_counter()
    messages = spec.messages(row)
    prompt_ms = round((time.perf_counter() - t0) * 1e3, 3)
    try:
        res = await teacher.chat(messages, spec.schema, on_text)
    except TeacherCallFailed as exc:
        return Answer("failed", f"teacher call failed after {exc.attempts} attempt(s): {exc.message}", None,
                      exc.partial or None, False, "; ".join(exc.errors), exc.attempts, 0.0,
                      {"prompt_ms": prompt_ms}, {}, exc.kind)
    t1 = time.perf_counter()
    parsed, status, reason = judge(spec, res.content, res.done_reason, dups, row)
    if status == "pending" and parsed is not None and remember_as is not None:
        dups.add(parsed.input, parsed.output, remember_as)
    timings = {"prompt_ms": prompt_ms, "call_s": round(res.seconds, 4), "ttfb_s": round(res.ttfb or 0.0, 4),
               "check_ms": round((time.perf_counter() - t1) * 1e3, 3)}
    return Answer(status, reason, parsed, res.content, True, None, res.attempts, res.seconds, timings,
                  dict(res.metrics, attempts=res.attempts))
