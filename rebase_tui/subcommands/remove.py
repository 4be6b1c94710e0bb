"""`rebase-tui remove DATASET_ID`: delete a dataset, its rows, cells, orphaned values and their vectors."""

from __future__ import annotations

import argparse

from rebase_tui.output import add_json_flag, open_workspace, print_json, stdout_console


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("remove", parents=[common], help="remove a dataset from the datastore")
    p.add_argument("dataset", metavar="DATASET_ID", help="the dataset id (see `rebase-tui datasets`)")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.datastore.datasets import remove_dataset

    with open_workspace(args) as ws:
        removed = remove_dataset(ws, args.dataset)
    if args.json:
        print_json(removed.to_json())
    else:
        stdout_console().print(
            f"removed {removed.dataset}: {removed.rows:,} rows, {removed.cells:,} cells, "
            f"{removed.values:,} values no other dataset used", markup=False, highlight=False)
    return 0
