"""`rebase-tui check [--repair]`: verify that the datastore and its vector index agree (and fix them)."""

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
    p = sub.add_parser(
        "check", parents=[common], help="verify the datastore against its vector index",
        description="Check that every distinct value and dataset description has a vector, every vector a "
                    "value, and the usearch files hold the same keys. Exits 1 when it finds a problem. "
                    "--repair re-embeds what is missing, drops what is orphaned, finishes interrupted "
                    "ingests and rebuilds the index files.")
    p.add_argument("--repair", action="store_true", help="fix what the check finds")
    p.add_argument("--threads", type=whole_number(0), default=None, metavar="N",
                   help="torch threads when re-embedding (default: embedder.threads, 0 = all cores)")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.datastore import health

    with open_workspace(args) as ws:
        report = health.check(ws)
        if args.repair and not report.ok:
            from engine.datastore.embed import set_torch_threads
            from rebase_tui.subcommands.ingest import render

            set_torch_threads(args.threads if args.threads is not None else ws.config["embedder.threads"])
            done = render(health.repair(ws), stderr_console(), health.RepairDone)
            report = done.report
    if args.json:
        print_json(report.to_json())
    else:
        out = stdout_console()
        for key, value in report.repaired.items():
            out.print(f"repaired: {key.replace('_', ' ')}: {value:,}", highlight=False)
        if report.ok:
            out.print(f"ok: {report.datasets:,} datasets, {report.values:,} values, {report.vectors:,} vectors — "
                      "the store and the index agree", highlight=False)
        else:
            for problem in report.problems:
                out.print(f"problem: {problem}", markup=False, highlight=False)
            out.print("run `rebase-tui check --repair` to fix them")
    return 0 if report.ok else 1
