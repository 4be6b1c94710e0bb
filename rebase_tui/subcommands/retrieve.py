"""`rebase-tui retrieve TASK`: rank the datastore's rows for a task and store them as its pool."""

from __future__ import annotations

import argparse
import os

from rebase_tui.output import (
    add_json_flag,
    open_workspace,
    print_json,
    stderr_console,
    stdout_console,
    whole_number,
)

#: Rows the human-readable table shows (the whole pool is stored, and printed with --json).
TABLE_ROWS = 30


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "retrieve", parents=[common], help="rank the datastore's rows for a task (stored as its pool)",
        description="Score every row of the datastore for TASK the ReBase way (best cell vs. the example "
                    "inputs, best cell vs. the example outputs, dataset description vs. the instruction), "
                    "store the top N as the task's pool, and print them.")
    p.add_argument("task", metavar="TASK", help="a stored task name, or a task JSON file (imported)")
    p.add_argument("--top", type=whole_number(1), default=3000, metavar="N", help="rows to keep (default 3000)")
    p.add_argument("--exclude", action="append", default=[], metavar="DATASET_ID",
                   help="never return rows of this dataset, or of one config with DATASET:CONFIG (repeatable; adds "
                        "to the task's own exclusions; 'glue' also excludes 'nyu-mll/glue', 'glue:mnli' one config)")
    p.add_argument("--ban-task-name", action="store_true",
                   help="also ban every dataset, or config of a dataset, whose id contains the task's name (the "
                        "paper's contamination rule); the bans are listed")
    p.add_argument("--output-rule", choices=("released", "stripped"), default=None,
                   help="what a reasoning example output contributes: released (the text after 'answer is ' as "
                        "it stands, the paper's code; default) or stripped (without the closing period)")
    p.add_argument("--per-dataset-cap", type=whole_number(0), default=None, metavar="K",
                   help="at most K rows of one dataset, 0 for no cap (default: retrieval.per_dataset_cap, 0)")
    p.add_argument("--dedupe", action=argparse.BooleanOptionalAction, default=None,
                   help="drop rows whose best-input cell text repeats an earlier result (default: "
                        "retrieval.dedupe, off)")
    p.add_argument("--weights", default=None, metavar="IN,OUT,DS",
                   help="weights of the input, output and dataset scores (default: retrieval.weights, 1,1,1: "
                        "the paper)")
    p.add_argument("--approximate", action="store_true",
                   help="HNSW candidates + exact re-scoring (for very large datastores); reports whether the "
                        "result is provably exact")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.language import embedder_warning, workspace_embedder
    from engine.retrieval.pool import store_pool
    from engine.retrieval.retriever import Retriever, as_task

    given = {"retrieval.output_rule": args.output_rule, "retrieval.weights": args.weights,
             "retrieval.per_dataset_cap": args.per_dataset_cap, "retrieval.dedupe": args.dedupe}
    with open_workspace(args, given) as ws:
        cfg = ws.config
        task = as_task(ws, args.task)
        warning = embedder_warning(task, workspace_embedder(ws))
        if warning:
            stderr_console().print(f"warning: {warning}", markup=False)
        # a lone CLI job: all cores for the query embedding, unless OMP_NUM_THREADS says otherwise
        threads = int(os.environ["OMP_NUM_THREADS"]) if os.environ.get("OMP_NUM_THREADS", "").isdigit() else 0
        retriever = Retriever(ws, threads=threads)
        by_name = retriever.task_name_bans(task.name) if args.ban_task_name else []
        if by_name:
            stderr_console().print(f"banned by the task's name ({task.name}): {', '.join(by_name)}", markup=False)
        elif args.ban_task_name:
            stderr_console().print(f"no dataset or config id contains the task's name ({task.name})", markup=False)
        result = retriever.search(task, top=args.top, weights=cfg["retrieval.weights"],
                                  exclude=[*args.exclude, *by_name],
                                  per_dataset_cap=cfg["retrieval.per_dataset_cap"] or None,
                                  dedupe=cfg["retrieval.dedupe"], approximate=args.approximate)
        store_pool(ws, task, result)
        unmatched = [x for x in args.exclude if x.strip() and retriever.banned_rows([x]) is None]
        if unmatched:  # a typo would silently ban nothing
            stderr_console().print(f"note: --exclude {', '.join(unmatched)} matches no dataset in this workspace",
                                   markup=False)
        if args.json:
            print_json(result.to_json())
            return 0
        _print_table(result)
        err = stderr_console()
        exactness = "exact" if result.exact else "approximate (not proven exact)"
        err.print(f"{len(result)} rows stored as the pool of task {task.name} · {exactness} · "
                  f"embed {result.seconds['embed'] * 1000:.0f} ms, score {result.seconds['score'] * 1000:.0f} ms"
                  + (f" · excluded: {', '.join(result.exclude)}" if result.exclude else ""))
    return 0


def _print_table(result) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    out = stdout_console()
    if not result.results:
        out.print("no rows: every dataset is excluded")
        return
    shown = result.results[:TABLE_ROWS]
    ds_width = min(24, max(7, *(len(h.dataset_id) for h in shown)))
    preview_width = max(16, out.width - (4 + 4 * 5 + ds_width) - 3 * 6 - 1)
    table = Table(header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False,
                  collapse_padding=True)
    table.add_column("rank", justify="right", no_wrap=True, min_width=4)
    for name in ("final", "in", "out", "ds"):
        table.add_column(name, justify="right", no_wrap=True, min_width=5)
    table.add_column("dataset", no_wrap=True, width=ds_width, overflow="ellipsis")
    table.add_column("best input cell", no_wrap=True, overflow="ellipsis", max_width=preview_width)
    for h in shown:
        preview = " ".join(h.input_text.split())
        table.add_row(str(h.rank), f"{h.score:.3f}", f"{h.input_score:.3f}", f"{h.output_score:.3f}",
                      f"{h.dataset_score:.3f}", Text(h.dataset_id), Text(f"[{h.input_column}] {preview}"))
    out.print(table)
    more = len(result.results) - TABLE_ROWS
    if more > 0:
        out.print(f"… {more} more rows in the pool (see them all with --json)")
