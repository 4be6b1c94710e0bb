"""The teacher as the ceiling: it answers a test set few-shot from the task's demonstrations.

Each test input is asked as a chat — the task's instruction as the system message, every demonstration as a
user/assistant turn, then the input — through the same backend, retries, deadline and cache as
``transform``: every finished call is stored in ``teacher_calls`` under a key of (the prompt, the model, its
options, the backend), so evaluating again repeats no call. The replies are scored by the caller with the
task's metric, like a student's answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field

from engine.events import Event, Log
from engine.rate import RateMeter
from engine.tasks import Task
from engine.teacher.ask import Teacher
from engine.teacher.calls import answered, call_key, store_answer_call
from engine.teacher.client import TeacherCallFailed, TeacherSettings
from engine.workspace import Workspace


@dataclass(frozen=True)
class TestsAnswered(Event):
    """The end: one reply per input (empty where the call failed), how many calls were made, reused from the
    cache, and failed (with the first failure's reason)."""

    outputs: list[str] = field(default_factory=list)
    calls: int = 0
    cached: int = 0
    failed: int = 0
    first_failure: str = ""


def few_shot_messages(task: Task, text: str) -> list[dict[str, str]]:
    """The instruction, each demonstration as a user/assistant turn, then ``text``."""
    messages = [{"role": "system", "content": task.instruction}]
    for demo in task.examples:
        messages += [{"role": "user", "content": demo.input}, {"role": "assistant", "content": demo.output}]
    return messages + [{"role": "user", "content": text}]


def _prompt_hash(messages: list[dict[str, str]]) -> str:
    return "answer:" + hashlib.sha256(json.dumps(messages, ensure_ascii=False).encode()).hexdigest()[:24]


async def answer_tests(ws: Workspace, task: Task, inputs: list[str],
                       settings: TeacherSettings) -> AsyncGenerator[Event, None]:
    """Ask the teacher for each of ``inputs`` (cached); yields Progress and ends with :class:`TestsAnswered`.

    Raises EngineError before any call when the host or the model is not there."""
    prompts = [few_shot_messages(task, x) for x in inputs]
    hashes = [_prompt_hash(m) for m in prompts]
    keys = [call_key(task.name, -1, h, settings, "answer") for h in hashes]
    done = await asyncio.to_thread(answered, ws, task.name, keys)
    outputs = [done.get(k, "") for k in keys]
    todo = [i for i, k in enumerate(keys) if k not in done]
    meter = RateMeter()
    yield meter.progress("teacher", len(inputs) - len(todo), len(inputs), "answers",
                         f"teacher {settings.model} on {len(inputs)} test items ({len(done)} cached)")
    failures: list[str] = []
    if todo:
        teacher = await Teacher.connect(settings)
        try:
            async for event in _ask_all(ws, teacher, task, inputs, todo, outputs, failures, meter):
                yield event
        finally:
            await teacher.close()
    if failures:
        yield Log(f"{len(failures)} teacher call(s) failed: {failures[0]}", "WARNING")
    yield TestsAnswered(outputs, calls=len(todo), cached=len(done), failed=len(failures),
                        first_failure=failures[0] if failures else "")


@dataclass(frozen=True)
class TeacherReply:
    """One test input answered: the reply (empty when the call failed), whether it came from the cache, the
    failure, and how long it took."""

    text: str
    cached: bool
    error: str | None
    seconds: float


async def answer_one(ws: Workspace, teacher: Teacher, task: Task, text: str,
                     on_text: Callable[[Callable[[], str]], None] | None = None) -> TeacherReply:
    """Ask the teacher for one input (few-shot), from the cache when it was asked before; stored when done."""
    messages = few_shot_messages(task, text)
    phash = _prompt_hash(messages)
    key = call_key(task.name, -1, phash, teacher.settings, "answer")
    done = await asyncio.to_thread(answered, ws, task.name, [key])
    if key in done:
        return TeacherReply(done[key], True, None, 0.0)
    t0 = time.perf_counter()
    try:
        result = await teacher.chat(messages, None, on_text)
        reply, error = result.content, None
    except TeacherCallFailed as exc:
        reply, error = "", exc.message
    await asyncio.to_thread(store_answer_call, ws, teacher, task.name, key, phash, reply or None, error)
    return TeacherReply(reply, False, error, time.perf_counter() - t0)


async def _ask_all(ws: Workspace, teacher: Teacher, task: Task, inputs: list[str], todo: list[int],
                   outputs: list[str], failures: list[str], meter: RateMeter) -> AsyncGenerator[Event, None]:
    """The uncached calls, ``teacher.settings.concurrency`` at a time, each stored as soon as it ends."""
    slots = asyncio.Semaphore(max(1, teacher.settings.concurrency))
    finished: asyncio.Queue[int] = asyncio.Queue()

    async def one(i: int) -> None:
        async with slots:
            got = await answer_one(ws, teacher, task, inputs[i])
            outputs[i] = got.text
            if got.error is not None:
                failures.append(f"item {i + 1}: {got.error}")
        finished.put_nowait(i)

    tasks = [asyncio.create_task(one(i)) for i in todo]
    try:
        total, count = len(inputs), len(inputs) - len(todo)
        for _ in todo:
            await finished.get()
            count += 1
            yield meter.progress("teacher", count, total, "answers", f"teacher {teacher.settings.model}")
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
