"""`rebase-tui export dataset TASK --format F --out PATH` and `export model RUN --out DIR [--merge]`.

Neither replaces an existing path without ``--force`` nor writes into the workspace's own files; both write
atomically (the engine checks and writes, see engine.student.outputs).
"""

from __future__ import annotations

import argparse

from rebase_tui.output import add_json_flag, open_workspace, print_json, stderr_console, stdout_console

FORCE_HELP = "replace an existing file, or a folder holding an earlier export"


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from engine.student.training_data import EXPORT_FORMATS

    p = sub.add_parser("export", parents=[common], help="export accepted examples or a trained student")
    esub = p.add_subparsers(dest="export_command", metavar="WHAT", required=True)
    ds = esub.add_parser("dataset", parents=[common], help="a task's accepted examples, with provenance")
    ds.add_argument("task", help="task name or task JSON")
    ds.add_argument("--format", choices=EXPORT_FORMATS, default="jsonl",
                    help="jsonl/csv/parquet rows, hf (folder for datasets.load_dataset), chat (TRL messages), "
                         "alpaca (instruction/input/output)")
    ds.add_argument("--out", required=True, metavar="PATH", help="file (a folder for hf)")
    ds.add_argument("--force", action="store_true", help=FORCE_HELP)
    ds.add_argument("--method", choices=("rebase", "synthesize"),
                    help="only examples made from retrieved rows (rebase) or from the task alone (synthesize)")
    add_json_flag(ds)
    md = esub.add_parser("model", parents=[common], help="a run's student as a HF folder plus an Ollama Modelfile")
    md.add_argument("run", help="run id (see `rebase-tui runs`)")
    md.add_argument("--out", required=True, metavar="DIR", help="new (or empty) folder")
    md.add_argument("--force", action="store_true", help=FORCE_HELP)
    md.add_argument("--merge", action="store_true", help="merge a LoRA adapter into the base weights")
    md.add_argument("--name", help="the Ollama model name in the printed `ollama create` line")
    add_json_flag(md)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine import tasks
    from engine.student import runs

    with open_workspace(args) as ws:
        if args.export_command == "dataset":
            from engine.student.training_data import export_dataset

            task = tasks.resolve_task(ws, args.task)
            result = export_dataset(ws, task, args.format, args.out, force=args.force, method=args.method)
            if args.json:
                print_json(result.to_json())
            else:
                stdout_console().print(f"wrote {result.rows} examples of {task.name} as {args.format} to "
                                       f"{result.path}")
            return 0
        from engine.student.export import export_model

        path = runs.run_dir(ws, args.run)
    model = export_model(path, args.out, merge=args.merge, name=args.name, force=args.force)
    if model.notice:
        stderr_console().print(model.notice, markup=False)
    if args.json:
        print_json(model.to_json())
    else:
        c = stdout_console()
        c.print(f"exported run {args.run} ({model.kind}) to {model.path}")
        c.print(f"serve it with Ollama:\n  {model.ollama_create}")
    return 0
