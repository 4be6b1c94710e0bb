"""`rebase-tui task add|list|show|remove`: the workspace's tasks."""

from __future__ import annotations

import argparse

from rebase_tui.output import add_json_flag, open_workspace, print_json, stderr_console, stdout_console


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("task", parents=[common], help="add, list, show or remove tasks")
    tsub = p.add_subparsers(dest="task_command", metavar="ACTION", required=True)
    add = tsub.add_parser("add", parents=[common], help="store a task from a JSON file")
    add.add_argument("file", help='task JSON: {"name", "instruction", "examples", "source_datasets_to_exclude"}')
    add.add_argument("--replace", action="store_true", help="replace a stored task of the same name")
    add_json_flag(add)
    lst = tsub.add_parser("list", parents=[common], help="list stored tasks")
    add_json_flag(lst)
    show = tsub.add_parser("show", parents=[common], help="show one task")
    show.add_argument("name")
    add_json_flag(show)
    rm = tsub.add_parser("remove", parents=[common], help="delete a stored task and its pool")
    rm.add_argument("name")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine import tasks

    with open_workspace(args) as ws:
        if args.task_command == "add":
            task = tasks.read_task_file(args.file)
            tasks.add_task(ws, task, replace=args.replace)
            if args.json:
                print_json(task.to_json())
            else:
                stdout_console().print(f"added task [bold]{task.name}[/] ({len(task.examples)} examples)")
        elif args.task_command == "list":
            all_tasks = tasks.list_tasks(ws)
            if args.json:
                print_json([{"name": t.name, "instruction": t.instruction, "examples": len(t.examples),
                             "exclude": list(t.exclude)} for t in all_tasks])
            else:
                from rich.table import Table

                table = Table("name", "examples", "instruction")
                for t in all_tasks:
                    table.add_row(t.name, str(len(t.examples)), t.instruction[:80])
                stdout_console().print(table if all_tasks else "no tasks yet — add one with `rebase-tui task add FILE`")
        elif args.task_command == "show":
            stored = tasks.get_task(ws, args.name)
            if stored is None:
                raise tasks.unknown_task(ws, args.name)
            from engine.language import embedder_warning, workspace_embedder

            warning = embedder_warning(stored, workspace_embedder(ws))
            if args.json:  # stdout stays the task file; the warning goes to stderr
                print_json(stored.to_json())
                if warning:
                    stderr_console().print(f"warning: {warning}", markup=False)
            else:
                from rich.markup import escape

                c = stdout_console()
                c.print(f"[bold]{stored.name}[/]\n{escape(stored.instruction)}\n")
                for i, e in enumerate(stored.examples, 1):
                    c.print(f"[bold]example {i}[/]\n  input:  {escape(e.input)}\n  output: {escape(e.output)}")
                if stored.exclude:
                    c.print(f"\nexcluded datasets: {', '.join(stored.exclude)}")
                if warning:
                    c.print(f"\n[yellow]warning:[/] {escape(warning)}")
        elif args.task_command == "remove":
            tasks.remove_task(ws, args.name)
            stdout_console().print(f"removed task {args.name}")
    return 0
