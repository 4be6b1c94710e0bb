"""`rebase-tui try RUN [INPUT] [--base] [--teacher]`: the student's answer to any input, streamed, beside the
untrained base and the teacher."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rebase_tui.output import add_json_flag, open_workspace, stdout_console
from rebase_tui.subcommands.transform import add_teacher_flags


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("try", parents=[common], help="ask a run's student (its base, the teacher) about any input")
    p.add_argument("run", help="run id (see `rebase-tui runs`)")
    p.add_argument("input", nargs="?", help="the input (default: one input per line from stdin)")
    p.add_argument("--base", action="store_true", help="also the untrained student")
    p.add_argument("--teacher", action="store_true", help="also the teacher, few-shot from the task's examples")
    p.add_argument("--task", metavar="TASK", help="the task whose examples the teacher follows (default: the run's)")
    add_teacher_flags(p)
    p.add_argument("--max-new-tokens", type=int, default=256, metavar="N")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    add_json_flag(p)
    p.set_defaults(func=run)


def _inputs(args: argparse.Namespace) -> list[str]:
    if args.input is not None:
        return [args.input]
    return [line.rstrip("\n") for line in sys.stdin if line.strip()]


def run(args: argparse.Namespace) -> int:
    import asyncio

    from engine.errors import EngineError
    from engine.student import runs
    from engine.student.tryout import WarmModel, run_context
    from engine.tasks import resolve_task
    from engine.teacher.client import TeacherSettings
    from rebase_tui.output import stderr_console

    if args.max_new_tokens < 1:
        raise EngineError(f"--max-new-tokens {args.max_new_tokens} is not a positive number",
                          fix="give a number of tokens, e.g. --max-new-tokens 128")
    overrides = {"teacher.backend": args.backend, "teacher.host": args.host, "teacher.model": args.model}
    with open_workspace(args, overrides) as ws:
        path = runs.run_dir(ws, args.run)
        _, task = run_context(path)
        if args.task:
            task = resolve_task(ws, args.task)
        if args.teacher and task is None:
            raise EngineError(f"run {args.run} was trained without a task: the teacher has no examples to follow",
                              fix="name a task with --task")
        settings = TeacherSettings.from_config(ws.config) if args.teacher else None
        texts = _inputs(args)
        if not texts:
            raise EngineError("no input to try", fix="give one as an argument, or one per line on stdin")
        note = stderr_console()
        if not args.json:
            note.print(f"loading run {args.run}…", markup=False)
        models = {"student": WarmModel(path, device=args.device)}
        if args.base:
            models["base"] = WarmModel(path, base=True, device=args.device)
        asyncio.run(_answer_all(ws, texts, models, task, settings, args))
    return 0


async def _answer_all(ws: Any, texts: list[str], models: dict[str, Any], task: Any, settings: Any,
                      args: argparse.Namespace) -> None:
    import asyncio

    from engine.teacher.ask import Teacher

    teacher = await Teacher.connect(settings) if settings is not None else None
    try:
        for text in texts:
            doc: dict[str, Any] = {"input": text}
            for name, model in models.items():
                shown = _Stream(name, args.json)
                got = await asyncio.to_thread(model.answer, text, task, args.max_new_tokens, shown.update)
                shown.done(got)
                doc[name] = got.to_json()
            if teacher is not None:
                doc["teacher"] = await _teacher(ws, teacher, task, text, args.json)
            if args.json:
                print_json_line(doc)
    finally:
        if teacher is not None:
            await teacher.close()


async def _teacher(ws: Any, teacher: Any, task: Any, text: str, quiet: bool) -> dict[str, Any]:
    from engine.student.tryout import Attempt, answer_of
    from engine.teacher.solve import answer_one

    shown = _Stream("teacher", quiet)
    got = await answer_one(ws, teacher, task, text, lambda so_far: shown.update(so_far()))
    attempt = Attempt(got.text, answer_of(task, got.text), got.seconds, error=got.error)
    shown.done(attempt, cached=got.cached)
    return attempt.to_json()


def print_json_line(doc: dict[str, Any]) -> None:
    """One JSON document per line (one per input)."""
    import json

    sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
    sys.stdout.flush()


class _Stream:
    """A system's answer printed as it arrives (text mode), then its extracted answer and timing."""

    def __init__(self, name: str, quiet: bool) -> None:
        self.name, self.quiet, self.printed = name, quiet, 0
        self.out = stdout_console()
        if not quiet:
            self.out.print(f"{name}: ", end="", markup=False, style="bold")

    def update(self, so_far: str) -> None:
        if self.quiet or len(so_far) <= self.printed:
            return
        self.out.print(so_far[self.printed:], end="", markup=False, highlight=False, soft_wrap=True)
        self.printed = len(so_far)

    def done(self, got: Any, cached: bool = False) -> None:
        if self.quiet:
            return
        if len(got.text) > self.printed:
            self.out.print(got.text[self.printed:], end="", markup=False, highlight=False, soft_wrap=True)
        notes = [f"{got.seconds:.1f} s" if not cached else "cached"]
        if getattr(got, "first_token_s", None) is not None:
            notes.append(f"first token {got.first_token_s:.2f} s")
        if getattr(got, "truncated", False):
            notes.append("the input was cut to fit the student's context, as eval cuts it")
        if got.error:
            notes.append(f"failed: {got.error}")
        self.out.print(f"\n  → answer: {got.answer!r} ({', '.join(notes)})", markup=False, highlight=False,
                       soft_wrap=True)

