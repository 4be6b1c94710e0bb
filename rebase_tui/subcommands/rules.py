"""`rebase-tui rules TASK`: rules for the teacher made from the reviewer's rejection reasons.

With no action it proposes rules from the rejections no rule was made from yet (a check for a mechanical
reason, one teacher-written rule per group of other reasons), then lists every rule of the task with the
reviewer's rejection rate of the examples made before and after it was accepted. ``--accept``, ``--edit`` and
``--drop`` decide on a rule; accepted rules close the task's prompt (new calls only) and checks judge every
new example. Exit status 0; 1 when the teacher could not be asked.
"""

from __future__ import annotations

import argparse

from rebase_tui.output import add_json_flag, open_workspace, print_json, stderr_console, stdout_console


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("rules", parents=[common],
                       help="propose, accept, edit or drop rules for the teacher made from rejection reasons")
    p.add_argument("task", help="stored task name (or a task JSON file)")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--accept", type=int, nargs="+", metavar="ID",
                        help="accept rules: prompt rules join the task's prompt, checks judge new examples")
    action.add_argument("--edit", nargs=2, metavar=("ID", "TEXT"),
                        help="change a rule's text (a length check: the number of characters; a label check: "
                             "the labels, comma-separated)")
    action.add_argument("--drop", type=int, nargs="+", metavar="ID", help="drop rules (out of the prompt and checks)")
    action.add_argument("--list", action="store_true", help="only list the rules (propose nothing)")
    from rebase_tui.subcommands.transform import add_teacher_flags

    add_teacher_flags(p)
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.errors import EngineError
    from engine.tasks import resolve_task
    from engine.teacher import rules

    overrides = {"teacher.backend": args.backend, "teacher.host": args.host, "teacher.model": args.model}
    proposed: list = []
    with open_workspace(args, overrides) as ws:
        task = resolve_task(ws, args.task)
        if args.accept or args.drop:
            status = "accepted" if args.accept else "dropped"
            for rule_id in args.accept or args.drop:
                rules.set_rule_status(ws, task.name, rule_id, status)
        elif args.edit:
            try:
                rule_id = int(args.edit[0])
            except ValueError:
                raise EngineError(f"--edit {args.edit[0]!r}: a rule id is a whole number",
                                  fix=f"list the rules with `rebase-tui rules {task.name} --list`") from None
            rules.edit_rule(ws, task.name, rule_id, args.edit[1])
        elif not args.list:
            proposed = _propose(ws, task.name)
        reports = rules.rule_reports(ws, task.name)
    if args.json:
        print_json({"task": task.name, "proposed": [r.id for r in proposed],
                    "rules": [r.to_json() for r in reports]})
        return 0
    _print(task.name, reports, {r.id for r in proposed})
    return 0


def _propose(ws, task: str) -> list:
    """Propose rules with a spinner on stderr; the rules proposed."""
    import asyncio

    from engine.events import Log
    from engine.teacher.client import TeacherSettings
    from engine.teacher.rule_proposals import RuleProposed, propose_rules

    settings = TeacherSettings.from_config(ws.config)
    console = stderr_console()
    out: list = []

    async def go() -> None:
        with console.status(f"grouping the rejections of {task}…") as status:
            async for ev in propose_rules(ws, task, settings):
                if isinstance(ev, RuleProposed):
                    out.append(ev.rule)
                    status.update(f"{len(out)} rule(s) proposed…")
                elif isinstance(ev, Log):
                    console.print(ev.message, markup=False, highlight=False)

    asyncio.run(go())
    return out


def _print(task: str, reports: list, new: set[int]) -> None:
    from rich.markup import escape
    from rich.table import Table

    console = stdout_console()
    if not reports:
        console.print(f"no rules for {task} — reject examples with a reason (`rebase-tui review {task} --reject ID "
                      f"--reason TEXT`, or R in Review), then run `rebase-tui rules {task}`", markup=False)
        return
    table = Table("id", "kind", "status", "rule", "from", "rejected before", "rejected after",
                  title=f"{task}: rules", title_justify="left")
    for rep in reports:
        r = rep.rule
        kind = f"check: {r.check_name}" if r.kind == "check" else "prompt"
        status = r.status + (" (new)" if r.id in new else "") + (", edited" if r.edited else "")
        shown = r.text if r.kind == "prompt" else f"refuses {r.text}"
        before = rep.before.describe() if r.accepted_at else "—"
        after = rep.after.describe() if r.accepted_at else "—"
        table.add_row(str(r.id), kind, status, escape(shown), f"{len(r.examples)} rejection(s)", before, after)
    console.print(table)
    console.print(f"accept with `rebase-tui rules {task} --accept ID`; then `rebase-tui transform {task} "
                  "--redo-pending` re-makes the pending examples with them", markup=False)
