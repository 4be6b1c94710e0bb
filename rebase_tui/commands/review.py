"""`rebase-tui review TASK`: headless review (accept all, accept/reject ids, undo), for scripts."""

from __future__ import annotations

import argparse

from rebase_tui.output import add_json_flag, open_workspace, print_json, stdout_console


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("review", parents=[common], help="accept or reject a task's examples (headless review)")
    p.add_argument("task", help="stored task name")
    action = p.add_mutually_exclusive_group(required=True)
    action.add_argument("--accept-all", action="store_true", help="accept every pending example")
    action.add_argument("--accept", type=int, nargs="+", metavar="ID", help="accept these examples")
    action.add_argument("--reject", type=int, nargs="+", metavar="ID", help="reject these examples")
    action.add_argument("--undo", action="store_true", help="revert the last review action")
    p.add_argument("--reason", help="why (with --reject)")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine import review
    from engine.tasks import resolve_task

    with open_workspace(args) as ws:
        task = resolve_task(ws, args.task)
        if args.accept_all:
            changed, what = review.accept_all(ws, task.name), "accepted"
        elif args.accept:
            changed, what = review.accept(ws, task.name, args.accept), "accepted"
        elif args.reject:
            changed, what = review.reject(ws, task.name, args.reject, args.reason), "rejected"
        else:
            changed, what = len(review.undo(ws, task.name)), "restored"
        tally = review.counts(ws, task.name)
    if args.json:
        print_json({"task": task.name, "changed": changed, "action": what, "counts": tally})
    else:
        stdout_console().print(f"{changed} example(s) {what}; now " +
                               ", ".join(f"{n} {s}" for s, n in tally.items() if n))
    return 0
