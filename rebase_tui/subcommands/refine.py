"""`rebase-tui refine RUN`: the run's validation mistakes become extra retrieval queries for a new round.

The first call finds the items the run got wrong on its validation split (or on accepted examples it never
saw), adds the datastore rows closest to them to the task's pool and has the teacher transform them; review
them as usual, then call it again: a new run trains on everything accepted, continuing from RUN (``--fresh``:
from the base student), and is scored on the same validation items. ``--rounds TASK`` lists a task's rounds;
``--round N TASK`` shows the rows round N added with the failure each is closest to. Exit status 0; 1 when a
teacher call could not be made (refine again to retry).
"""

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


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("refine", parents=[common],
                       help="retrieve more data like a run's validation mistakes, then train on everything accepted")
    p.add_argument("target", metavar="RUN", help="the run to refine (with --rounds or --round: a task)")
    p.add_argument("--fresh", action="store_true",
                   help="train the next run from the base student instead of continuing from RUN")
    p.add_argument("--top", type=whole_number(1), metavar="N",
                   help="rows the round adds (default: 5 per failure, from 10 to 1000)")
    p.add_argument("--cot", choices=("auto", "on", "off"), default="auto", help="the teacher's format (as transform)")
    p.add_argument("--prompt", choices=("default", "paper"), default="default", help="the teacher's wording")
    show = p.add_mutually_exclusive_group()
    show.add_argument("--rounds", action="store_true", help="list the rounds of the task TARGET")
    show.add_argument("--round", type=whole_number(1), metavar="N",
                      help="the rows round N of the task TARGET added, each with the failure it is closest to")
    from rebase_tui.subcommands.transform import add_teacher_flags

    add_teacher_flags(p)
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from engine.loop.refine import RoundDone, RoundWaiting
    from engine.teacher.client import TeacherSettings

    overrides = {"teacher.backend": args.backend, "teacher.host": args.host, "teacher.model": args.model}
    with open_workspace(args, overrides) as ws:
        if args.rounds or args.round:
            return _show(ws, args)
        last = asyncio.run(_consume(ws, args.target, TeacherSettings.from_config(ws.config), args))
    if args.json:
        state = "done" if isinstance(last, RoundDone) else "review" if isinstance(last, RoundWaiting) else "transform"
        doc = {"state": state, "round": last.round.to_json() if last is not None else None}
        if isinstance(last, RoundWaiting):
            doc.update(pending=last.pending, made=last.made)
        print_json(doc)
    out = stdout_console()
    if isinstance(last, RoundWaiting):
        r = last.round
        if not args.json:
            out.print(f"{r.describe()}; the teacher made {last.made} examples, {last.pending} wait for review — "
                      f"review them (`rebase-tui review {r.task}`, or in the app), then run `rebase-tui refine "
                      f"{r.run}` again to train on everything accepted", markup=False, highlight=False)
        return 0
    if isinstance(last, RoundDone):
        if not args.json:
            r = last.round
            out.print(f"{r.describe()}; trained run {r.next_run} — refine it for the next round: "
                      f"`rebase-tui refine {r.next_run}`", markup=False, highlight=False)
        return 0
    return 1


async def _consume(ws, run_id: str, settings, args: argparse.Namespace):
    """Run the round's next steps with a progress bar per stage on stderr; the last round event."""
    from contextlib import aclosing

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from engine.events import Log
    from engine.events import Progress as ProgressEvent
    from engine.loop.refine import RoundDone, RoundWaiting, refine
    from engine.rate import format_seconds

    console = stderr_console()
    bars = Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[msg]}"), TimeElapsedColumn(), console=console,
                    disable=args.json or not console.is_terminal)
    ids: dict[str, int] = {}
    last = None
    with bars:
        async with aclosing(refine(ws, run_id, settings, fresh=args.fresh, top=args.top, cot=args.cot,
                                   prompt=args.prompt)) as events:
            async for ev in events:
                if isinstance(ev, ProgressEvent):
                    if ev.stage not in ids:
                        ids[ev.stage] = bars.add_task(ev.stage, total=None, msg="")
                    rate = f"{ev.rate:.2f} {ev.unit}/s" if ev.rate is not None else ""
                    bars.update(ids[ev.stage], completed=ev.done, total=ev.total,
                                msg=f"{ev.message}  {rate}  ETA {format_seconds(ev.eta_s)}")
                elif isinstance(ev, Log) and (not args.json or ev.level != "INFO"):
                    console.print(ev.message, markup=False, highlight=False)
                elif isinstance(ev, RoundWaiting | RoundDone):
                    last = ev
    return last


def _show(ws, args: argparse.Namespace) -> int:
    from rich.markup import escape
    from rich.table import Table

    from engine.loop.rounds import list_rounds, round_rows
    from engine.tasks import resolve_task

    task = resolve_task(ws, args.target)
    out = stdout_console()
    if args.round:
        rows = round_rows(ws, task.name, args.round)
        if args.json:
            print_json({"task": task.name, "round": args.round, "rows": [r.to_json() for r in rows]})
            return 0
        table = Table("rank", "score", "source", "closest failure", "cos", title=f"{task.name}: rows added by round "
                      f"{args.round}", title_justify="left")
        for r in rows:
            table.add_row(str(r.rank), f"{r.score:.3f}", escape(f"{r.dataset}/{r.config}#{r.row_id}"),
                          escape(r.failure_input[:90]), f"{r.closeness:.3f}")
        out.print(table)
        return 0
    found = list_rounds(ws, task.name)
    if args.json:
        print_json({"task": task.name, "rounds": [rnd.to_json() for rnd in found]})
        return 0
    if not found:
        out.print(f"no rounds for {task.name} — start one with `rebase-tui refine RUN` on a run trained for it",
                  markup=False)
        return 0
    table = Table("round", "from run", "status", "failures", "rows", "before", "after", "next run",
                  title=f"{task.name}: refinement rounds", title_justify="left")
    for rnd in found:
        name, value = rnd.before.headline
        after = f"{rnd.after.value(name):.3f}" if rnd.after and name in rnd.after.metrics else "—"
        table.add_row(str(rnd.number), rnd.run, rnd.status, f"{len(rnd.failures)}/{len(rnd.validation)}",
                      str(rnd.rows_added), f"{name} {value:.3f}", after, rnd.next_run or "—")
    out.print(table)
    stderr_console().print(f"the rows a round added: `rebase-tui refine {task.name} --round N`", markup=False)
    return 0
