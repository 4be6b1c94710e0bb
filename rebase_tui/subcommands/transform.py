"""`rebase-tui transform TASK`: the teacher (Ollama or an OpenAI-compatible server) rewrites the task's retrieved
rows into examples (or, with --method synthesize, writes N examples from the task alone). Exit status 0 when every call was made and answered (unusable or duplicate replies are
results); 1 when a call could not be made or answered (a transport or server fault, the deadline) or the run
stopped early because the host went away: re-running the command resumes."""

from __future__ import annotations

import argparse

from rebase_tui.output import (
    add_json_flag,
    open_workspace,
    print_json,
    stderr_console,
    stdout_console,
    whole_number,
)

BACKEND_CHOICES = ("ollama", "openai")


def add_teacher_flags(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--backend, --model and --host, the same on every command that calls the teacher."""
    p.add_argument("--backend", choices=BACKEND_CHOICES,
                   help="ollama, or openai for an OpenAI-compatible server: vLLM, llama.cpp, LM Studio "
                        "(default: config teacher.backend); its API key is read from $REBASE_TEACHER_API_KEY")
    p.add_argument("--model", help="teacher model (default: config teacher.model)")
    p.add_argument("--host", metavar="URL",
                   help="Ollama URL, or the OpenAI-compatible server's base URL such as http://gpu-box:8000/v1 "
                        "(default: config teacher.host, else $OLLAMA_HOST for Ollama)")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("transform", parents=[common],
                       help="turn the task's retrieved rows into examples with a teacher model")
    p.add_argument("task", help="stored task name (or a task JSON file)")
    add_teacher_flags(p)
    p.add_argument("--limit", type=int, metavar="N",
                   help="transform the first N rows of the pool (default: all); with --method synthesize, the "
                        "number of examples to write")
    p.add_argument("--method", choices=("rebase", "synthesize"), default="rebase",
                   help="rebase: from the retrieved rows (default); synthesize: the teacher writes examples from "
                        "the instruction and the task's examples alone (the baseline ReBase is compared with)")
    p.add_argument("--prompt", choices=("default", "paper"), default="default",
                   help="the prompt's wording: this project's (or the task's stored template), or the ReBase "
                        "paper's released prompt (rows over 4,000 characters send only their best cells)")
    p.add_argument("--concurrency", type=int, metavar="C",
                   help="requests in flight (default 2; match the server's parallel slots)")
    p.add_argument("--temperature", type=float, help="sampling temperature, 0 to 2 (default 0.7)")
    p.add_argument("--seed", type=int, help="sampling seed (0: random)")
    p.add_argument("--num-ctx", type=int, help="context length asked of Ollama (default 4096)")
    p.add_argument("--num-predict", type=int, help="max tokens per reply (default 1024)")
    p.add_argument("--cot", choices=("auto", "on", "off"), default="auto",
                   help="reasoning + answer fields (auto: when the task's examples end in 'the answer is X')")
    p.add_argument("--filter", action="store_true", help="second pass: ask the teacher whether each example fits")
    p.add_argument("--samples", type=whole_number(1), default=1, metavar="N",
                   help="self-consistency: ask N times per row (N >= 3, distinct seeds, all cached) and keep the "
                        "example only when most sampled answers agree; its agreement is stored")
    p.add_argument("--redo-pending", action="store_true",
                   help="re-transform the rows whose pending example was made before the task's current rules "
                        "(`rebase-tui rules`); each usable new example replaces the old one (undoable in review)")
    p.add_argument("--prompt-file", metavar="FILE",
                   help="store FILE as the task's prompt template ({instruction}, {examples}, {row}) and use it")
    p.add_argument("--reset-prompt", action="store_true", help="go back to the default prompt template")
    p.add_argument("--show-prompt", action="store_true",
                   help="print the prompt for the first pool row and the answer schema, and exit")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from engine.errors import EngineError
    from engine.tasks import resolve_task
    from engine.teacher import prompts
    from engine.teacher.client import TeacherSettings

    overrides = {"teacher.backend": args.backend, "teacher.host": args.host, "teacher.model": args.model,
                 "teacher.concurrency": args.concurrency, "teacher.temperature": args.temperature,
                 "teacher.seed": args.seed, "teacher.num_ctx": args.num_ctx, "teacher.num_predict": args.num_predict}
    if args.limit is not None and args.limit < 1:
        raise EngineError(f"--limit {args.limit} is below 1", fix="pass --limit 1 or more, or leave it out")
    with open_workspace(args, overrides) as ws:
        task = resolve_task(ws, args.task)
        if args.prompt_file:
            from pathlib import Path

            try:
                text = Path(args.prompt_file).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise EngineError(f"cannot read prompt file {args.prompt_file}: {exc}",
                                  fix="give a UTF-8 text file") from None
            prompts.set_template(ws, task.name, text)
        elif args.reset_prompt:
            prompts.set_template(ws, task.name, None)
        if args.show_prompt:
            return _show_prompt(ws, task, args)
        settings = TeacherSettings.from_config(ws.config)
        summary = asyncio.run(_consume(ws, task.name, settings, args))
    if args.json:
        print_json(summary.to_json())
    else:
        stdout_console().print(
            f"{summary.done} new examples, {summary.failed} failed, {summary.duplicates} duplicates"
            + (f", {summary.rejected} filtered out" if args.filter else "")
            + f", {summary.cached} already done, in {summary.seconds:.1f} s "
            f"({summary.examples_per_s:.2f} examples/s) — review them with `rebase-tui review {task.name}` "
            "or in the app", markup=False)
    if summary.complete:
        return 0
    import sys

    skipped = f"; {summary.skipped} row(s) not tried ({summary.stopped})" if summary.skipped or summary.stopped else ""
    print(f"rebase-tui: {summary.faults()}{skipped} — re-run the same command to try them again (finished rows "
          "are kept)", file=sys.stderr)
    return 1


def _show_prompt(ws, task, args: argparse.Namespace) -> int:
    import json

    from engine.retrieval.pool import load_pool
    from engine.teacher import prompts

    spec = prompts.spec_for(ws, task, cot=args.cot, prompt=args.prompt, method=args.method)
    row = None
    if spec.method == "rebase":
        pool = load_pool(ws, task.name, 1)
        row = spec.sample(pool[0].data, pool[0].input_column, pool[0].output_column) if pool else \
            {"column": "(the task has no pool yet: a row's fields appear here)"}
    messages = spec.messages(row)
    if args.json:
        print_json({"messages": messages, "format": spec.schema})
    else:
        out = stdout_console()
        out.print(messages[-1]["content"], markup=False, highlight=False)
        out.print("\nformat (JSON schema): " + json.dumps(spec.schema), markup=False, highlight=False)
    return 0


async def _consume(ws, task: str, settings, args: argparse.Namespace):
    """Run the transform with a progress bar on stderr; its TransformFinished."""
    from contextlib import aclosing

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from engine.events import Log
    from engine.events import Progress as ProgressEvent
    from engine.rate import format_seconds
    from engine.teacher.transform import ExampleDone, TransformFinished, transform

    console = stderr_console()
    summary = None
    bar = Progress(TextColumn("[bold]transform[/]"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[msg]}"), TimeElapsedColumn(), console=console, transient=False,
                   disable=not console.is_terminal)
    with bar:
        tid = bar.add_task("transform", total=None, msg="")
        async with aclosing(transform(ws, task, settings, limit=args.limit, cot=args.cot, use_filter=args.filter,
                                      prompt=args.prompt, method=args.method, samples=args.samples,
                                      redo_pending=args.redo_pending)) as events:
            async for ev in events:
                if isinstance(ev, ProgressEvent):
                    speed = f"{ev.rate:.2f}" if ev.rate is not None else "--"
                    bar.update(tid, completed=ev.done, total=ev.total,
                               msg=f"{ev.message}  {speed} examples/s  ETA {format_seconds(ev.eta_s)}")
                elif isinstance(ev, Log):
                    console.print(ev.message, markup=False, highlight=False)
                elif isinstance(ev, ExampleDone) and ev.status == "failed" and not args.json:
                    what = f"row {ev.row}" if ev.row >= 0 else f"example {ev.rank}"
                    console.print(f"{what}: failed — {ev.reason}", markup=False, highlight=False)
                elif isinstance(ev, TransformFinished):
                    summary = ev
    assert summary is not None, "transform ends with its TransformFinished"
    return summary
