"""`rebase-tui demo`: build the demo workspace (once) from the corpus shipped in the package, then open it."""

from __future__ import annotations

import argparse

from rebase_tui.output import add_json_flag, print_json, stderr_console


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "demo", parents=[common], help="build the demo workspace and open the app on it",
        description="Ingest the small demo corpus shipped with rebase-tui (8 datasets, 300 rows) through the "
                    "real ingest path and add two demo tasks, into <user data dir>/rebase-tui/demo (or -w "
                    "DIR); then open the app. Running it again reuses what is there.")
    p.add_argument("--no-open", action="store_true",
                   help="build the workspace but do not open the app (implied by --json)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch threads while embedding (default: embedder.threads, 0 = all cores)")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.datastore.embed import set_torch_threads
    from engine.demo import DEMO_TASKS, DemoDone, build_demo, default_demo_dir
    from engine.workspace import Workspace
    from rebase_tui.subcommands.ingest import print_summary, render

    path = getattr(args, "workspace", None) or default_demo_dir()
    console = stderr_console()
    ws = Workspace.open(path)
    handed_over = False
    try:
        threads = args.threads if args.threads is not None else ws.config["embedder.threads"]
        set_torch_threads(threads)
        done = render(build_demo(ws), console, DemoDone)
        if args.json:
            print_json({**done.to_json(), "workspace": str(ws.path)})
        else:
            print_summary(done.summary, console)
            console.print(f"demo workspace: {ws.path} — tasks: {', '.join(done.tasks)}",
                          highlight=False, markup=False)
        if args.no_open or args.json:  # --json is for scripts: never take over the terminal
            return 0
        if args.threads is None:
            set_torch_threads(1)  # the app shares the cores between its workers
        from rebase_tui.app import RebaseApp
        from rebase_tui.subcommands.tui import run_app

        app = RebaseApp(ws, stage="data", task=DEMO_TASKS[0])
        handed_over = True  # the app owns the workspace now (and closes it)
        return run_app(app)
    finally:
        if not handed_over:
            ws.close()
