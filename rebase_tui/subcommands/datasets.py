"""`rebase-tui datasets`: the datasets in the workspace's datastore, with their counts."""

from __future__ import annotations

import argparse

from rebase_tui.output import add_json_flag, open_workspace, print_json, stdout_console


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("datasets", parents=[common], help="list the datasets in the datastore")
    p.add_argument("--card", action="store_true", help="include each dataset's card in --json")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.datastore.datasets import list_datasets, totals

    with open_workspace(args) as ws:
        items = list_datasets(ws)
        total = totals(ws)
        embedder = ws.store.get_meta("embedder.name")
    if args.json:
        print_json({"datasets": [d.to_json(card=args.card) for d in items], "totals": total.to_json(),
                    "embedder": embedder})
        return 0
    console = stdout_console()
    if not items:
        console.print("no datasets yet — ingest some with `rebase-tui ingest PATH`, or try `rebase-tui demo`")
        return 0
    from rich.table import Table
    from rich.text import Text

    table = Table("dataset", "configs", "rows", "cells", "status", "description")
    for d in items:
        desc = " ".join(d.description.split())
        desc = desc[:70] + ("…" if len(desc) > 70 else "")
        table.add_row(Text(d.name), f"{d.configs:,}", f"{d.rows:,}", f"{d.cells:,}",
                      d.status, Text(desc + (" (generated)" if d.description_generated else ""), style="dim"))
    console.print(table)
    console.print(f"{total.datasets:,} datasets, {total.configs:,} configs, {total.rows:,} rows, "
                  f"{total.cells:,} cells, {total.values:,} distinct values, {total.vectors:,} vectors"
                  + (f" — embedder {embedder}" if embedder else ""), highlight=False)
    return 0
