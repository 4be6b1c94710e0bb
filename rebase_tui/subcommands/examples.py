"""`rebase-tui examples TASK`: the task's examples with their state, source row and, for examples made with
``transform --samples N``, their agreement (votes of N)."""

from __future__ import annotations

import argparse

from rebase_tui.output import add_json_flag, open_workspace, print_json, stdout_console


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("examples", parents=[common], help="list a task's examples (teacher output) and their state")
    p.add_argument("task", help="stored task name")
    p.add_argument("--status", choices=("pending", "accepted", "rejected", "failed", "duplicate"),
                   help="only examples in this state")
    p.add_argument("--method", choices=("rebase", "synthesize"),
                   help="only examples made from retrieved rows (rebase) or from the task alone (synthesize)")
    p.add_argument("--limit", type=int, metavar="N", help="at most N examples")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine import review
    from engine.tasks import resolve_task

    with open_workspace(args) as ws:
        task = resolve_task(ws, args.task)
        items = review.list_examples(ws, task.name, args.status, limit=args.limit, method=args.method)
        tally = review.counts(ws, task.name)
    if args.json:
        print_json({"task": task.name, "counts": tally, "examples": [e.to_json() for e in items]})
        return 0
    from rich.markup import escape
    from rich.table import Table

    console = stdout_console()
    if not items:
        console.print(f"no {args.status + ' ' if args.status else ''}{args.method + ' ' if args.method else ''}"
                      f"examples for {task.name} — create them with "
                      f"`rebase-tui transform {task.name} --model M`")
        return 0
    voted = any(e.samples for e in items)
    columns = ["id", "status", *(["agree"] if voted else []), "input", "output", "source"]
    table = Table(*columns, title=f"{task.name}: " + ", ".join(f"{n} {s}" for s, n in tally.items() if n),
                  title_justify="left")
    for e in items:
        src = e.source
        where = f"{src.dataset}/{src.config}#{src.row_id}" if src else \
            "(synthesized)" if e.method == "synthesize" else "—"
        output = e.output if e.status != "failed" else f"({e.reason})"
        agree = [e.votes or "—"] if voted else []
        table.add_row(str(e.id), e.status, *agree, escape(e.input[:120]), escape(output[:80]), escape(where))
    console.print(table)
    return 0
