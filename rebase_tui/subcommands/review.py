"""`rebase-tui review TASK`: headless review (accept all, accept/reject ids, undo, regenerate), for scripts."""

from __future__ import annotations

import argparse

from rebase_tui.output import add_json_flag, open_workspace, print_json, stderr_console, stdout_console


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("review", parents=[common], help="accept or reject a task's examples (headless review)")
    p.add_argument("task", help="stored task name")
    action = p.add_mutually_exclusive_group(required=True)
    action.add_argument("--accept-all", action="store_true", help="accept every pending example")
    action.add_argument("--accept", type=int, nargs="+", metavar="ID", help="accept these examples")
    action.add_argument("--reject", type=int, nargs="+", metavar="ID", help="reject these examples")
    action.add_argument("--undo", action="store_true", help="revert the last review action")
    action.add_argument("--regenerate", type=int, nargs="+", metavar="ID",
                        help="ask the teacher again for these examples' source rows (each old example is "
                             "rejected as 'regenerated' when the new one is usable; --undo reverts one)")
    p.add_argument("--reason", help="why (with --reject)")
    from rebase_tui.subcommands.transform import add_teacher_flags

    teacher = p.add_argument_group("teacher (with --regenerate)")
    add_teacher_flags(teacher)
    teacher.add_argument("--temperature", type=float, help="sampling temperature (default 0.7)")
    teacher.add_argument("--seed", type=int, help="base seed; regeneration n of a row uses seed + n")
    teacher.add_argument("--cot", choices=("auto", "on", "off"),
                         help="force the format (default: the format each example was made with)")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine import review
    from engine.tasks import resolve_task

    overrides = {"teacher.backend": args.backend, "teacher.host": args.host, "teacher.model": args.model,
                 "teacher.temperature": args.temperature, "teacher.seed": args.seed}
    results = None
    with open_workspace(args, overrides) as ws:
        task = resolve_task(ws, args.task)
        if args.accept_all:
            changed, what = review.accept_all(ws, task.name), "accepted"
        elif args.accept:
            changed, what = review.accept(ws, task.name, args.accept), "accepted"
        elif args.reject:
            changed, what = review.reject(ws, task.name, args.reject, args.reason), "rejected"
        elif args.regenerate:
            results = _regenerate(ws, task.name, args)
            changed, what = sum(1 for r in results if r.replaced and not r.cached), "regenerated"
        else:
            changed, what = len(review.undo(ws, task.name)), "restored"
        tally = review.counts(ws, task.name)
    if args.json:
        doc = {"task": task.name, "changed": changed, "action": what, "counts": tally}
        if results is not None:
            doc["results"] = [r.to_json() for r in results]
        print_json(doc)
    else:
        out = stdout_console()
        for r in results or []:
            if r.cached:
                out.print(f"#{r.old_id}: already regenerated as #{r.example_id} ({r.status})", highlight=False)
            elif r.example_id is None:
                out.print(f"#{r.old_id}: {r.reason}", highlight=False)
            else:
                out.print(f"#{r.old_id} → #{r.example_id} ({r.status}{': ' + r.reason if r.reason else ''})",
                          highlight=False)
        out.print(f"{changed} example(s) {what}; now " + ", ".join(f"{n} {s}" for s, n in tally.items() if n))
    return 1 if results is not None and any(r.status == "error" for r in results) else 0


def _regenerate(ws, task: str, args: argparse.Namespace) -> list:
    """Run engine.teacher.regenerate for the ids, with a spinner on stderr; its Regenerated events."""
    import asyncio

    from engine.teacher.client import TeacherSettings
    from engine.teacher.regenerate import Regenerated, regenerate

    settings = TeacherSettings.from_config(ws.config)
    results: list[Regenerated] = []

    async def go() -> None:
        console = stderr_console()
        with console.status(f"asking {settings.model} again for {len(args.regenerate)} example(s)…") as status:
            async for ev in regenerate(ws, task, args.regenerate, settings, cot=args.cot):
                if isinstance(ev, Regenerated):
                    results.append(ev)
                    status.update(f"{len(results)}/{len(set(args.regenerate))} regenerated…")

    asyncio.run(go())
    return results
