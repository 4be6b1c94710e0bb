"""The try process: a run's student and base loaded once in a child process, answering inputs sent as JSON
lines with streamed text, the extracted answer and whether it is right; the teacher beside them (cached); a run
that cannot load says so in one line."""

from __future__ import annotations

import asyncio

from engine.student.tryout_process import TryAnswer, TryError, TryLoaded, TryProcess, TryText, teacher_answer
from engine.tasks import get_task
from engine.teacher.client import TeacherSettings
from engine.workspace import Workspace


async def _until_answers(events, wanted: int) -> list:
    got = []
    async for ev in events:
        got.append(ev)
        if sum(isinstance(e, TryAnswer | TryError) for e in got) >= wanted:
            break
    return got


def test_student_and_base_answer_in_a_child_process(trained_task_run):
    _ws, run = trained_task_run

    async def main() -> list:
        proc = await TryProcess.start(run, device="cpu")
        events = proc.events()
        try:
            loaded = []
            async for ev in events:
                loaded.append(ev)
                if sum(isinstance(e, TryLoaded) for e in loaded) == 2:
                    break
            assert [e.which for e in loaded if isinstance(e, TryLoaded)] == ["student", "base"]
            first = proc.ask("not ( True ) and False is", max_new_tokens=12, references=["False"], layout="bbh")
            second = proc.ask("True and True is", max_new_tokens=12, which=["student"], references=["True"],
                              layout="bbh")
            got = await _until_answers(events, 3)
            assert (first, second) == (1, 2)
            return got
        finally:
            await proc.close()
            await events.aclose()

    got = asyncio.run(main())
    answers = {(e.request, e.which): e for e in got if isinstance(e, TryAnswer)}
    assert set(answers) == {(1, "student"), (1, "base"), (2, "student")}, got
    assert answers[(1, "student")].text == "So the answer is True." and answers[(1, "student")].answer == "True."
    assert answers[(1, "student")].correct is False and answers[(2, "student")].correct is True
    assert answers[(1, "base")].text != answers[(1, "student")].text  # the untrained base babbles
    assert all(e.which in ("student", "base") for e in got if isinstance(e, TryText))


def test_a_run_without_weights_fails_in_one_line(trained_task_run, tmp_path):
    import shutil

    _ws, run = trained_task_run
    broken = tmp_path / run.name
    shutil.copytree(run, broken, ignore=shutil.ignore_patterns("model", "checkpoints"))

    async def main() -> list:
        proc = await TryProcess.start(broken, device="cpu")
        try:
            return [ev async for ev in proc.events()]
        finally:
            await proc.close()

    got = asyncio.run(main())
    errors = [e for e in got if isinstance(e, TryError)]
    assert errors and errors[0].request is None and "has no trained weights yet" in errors[0].message, got


def test_teacher_answer_streams_then_is_cached(trained_task_run, standin):
    ws_dir, _run = trained_task_run
    standin.known_answers = {"True or False is": "True or False = True. So the answer is True."}
    with Workspace(ws_dir) as ws:
        task = get_task(ws, "boolean_expressions")
        settings = TeacherSettings.from_config(ws.config, host=standin.url, model="llama3.1:8b")

        async def ask() -> list:
            return [ev async for ev in teacher_answer(ws, settings, task, "True or False is", 7,
                                                      references=["True"], layout="bbh")]

        first = asyncio.run(ask())
        calls = standin.chat_requests
        again = asyncio.run(ask())
    done = [e for e in first if isinstance(e, TryAnswer)]
    assert done and done[0].which == "teacher" and done[0].answer == "True." and done[0].correct is True, first
    assert not done[0].cached and [e for e in again if isinstance(e, TryAnswer)][0].cached
    assert standin.chat_requests == calls, "the second answer came from the cache"
