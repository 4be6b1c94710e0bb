"""`rebase-tui ingest PATH...`: read local datasets cell by cell into the workspace's datastore."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, TypeVar

from engine.errors import EngineError
from engine.events import Event
from engine.events import Progress as ProgressEvent
from rebase_tui.output import add_json_flag, open_workspace, print_json, stderr_console, whole_number

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID

    from engine.datastore.ingest import IngestSummary

D = TypeVar("D", bound=Event)


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "ingest", parents=[common], help="ingest dataset folders or files into the datastore",
        description="Read datasets (Parquet, Arrow/save_to_disk, JSONL, JSON, CSV/TSV; dataset folders with a "
                    "README.md card, collections of them, Hugging Face hub cache folders) row by row, store "
                    "every distinct cell text once and embed it once. Resumable: run it again after an "
                    "interruption; datasets already in the workspace are left as they are.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="dataset folder, collection folder, cache folder or file")
    p.add_argument("--max-rows-per-config", type=whole_number(0), default=1000, metavar="N",
                   help="at most N rows per config, at a uniform stride (0: all; default 1000)")
    p.add_argument("--split", default="train", metavar="NAME", help="split to ingest (default train)")
    p.add_argument("--embedder", metavar="MODEL", default=None,
                   help="sentence-transformers name or local path (default: the workspace's, else "
                        "all-MiniLM-L6-v2)")
    p.add_argument("--batch-size", type=whole_number(1), default=None, metavar="B", help="texts per embedding batch")
    p.add_argument("--threads", type=whole_number(0), default=None, metavar="N",
                   help="torch threads (default: embedder.threads, 0 = all cores)")
    p.add_argument("--id", dest="dataset_id", metavar="NAME", default=None,
                   help="the dataset id to store the one dataset PATH holds under (instead of its card's or "
                        "folder's), e.g. when that id is already taken by another source")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default=None,
                   help="compute precision (default: embedder.precision = auto: bf16 on CPUs with AMX/AVX-512 "
                        "BF16, fp16 on CUDA, else fp32); vectors are stored float32 either way")
    p.add_argument("--backend", choices=("torch", "openvino"), default=None,
                   help="embedding backend (default: embedder.backend = torch; openvino needs "
                        'pip install "rebase-tui[openvino]")')
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="embed on Ray: a local Ray on this machine, or the cluster at ADDRESS "
                        '(ray://HOST:10001); needs pip install "rebase-tui[ray]"')
    p.add_argument("--ray-workers", type=int, default=None, metavar="N",
                   help="embedder actors on Ray (default: embedder.ray_workers = 0: one per GPU, else per CPU)")
    p.add_argument("--re-embed", action="store_true",
                   help="rebuild every vector (another precision, backend or --embedder); retrieval keeps the "
                        "old vectors until it is done; resumable")
    p.add_argument("--no-embed", action="store_true",
                   help="only read and store rows/cells/values (fast counts); the datasets stay invisible to "
                        "retrieval until an ingest without it (or `check --repair`) embeds them")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.datastore.ingest import IngestDone, ingest

    overrides = {"embedder.model": args.embedder, "embedder.precision": args.precision,
                 "embedder.backend": args.backend, "embedder.ray_workers": args.ray_workers}
    if args.ray is not None:
        overrides |= {"embedder.executor": "ray", "embedder.ray_address": args.ray or None}
    console = stderr_console()
    with open_workspace(args, overrides) as ws:
        from engine.datastore.embed import set_torch_threads

        threads = args.threads if args.threads is not None else ws.config["embedder.threads"]
        set_torch_threads(threads)
        events = ingest(ws, args.paths, max_rows_per_config=args.max_rows_per_config, split=args.split,
                        batch_size=args.batch_size, embed=not args.no_embed, dataset_id=args.dataset_id,
                        re_embed=args.re_embed)
        done = render(events, console, IngestDone)
    if args.json:
        print_json(done.summary.to_json())
    else:
        print_summary(done.summary, console)
    if done.summary.found_nothing:
        print("rebase-tui: nothing was ingested — fix or remove the paths listed as skipped above",
              file=sys.stderr)
        return 1
    return 0


LABELS = {"find": "looking for datasets", "read": "reading datasets", "embed": "embedding values", "index": "updating index"}
"""What each ingest stage is called in the progress display (the stage names are the engine's)."""


def progress_info(ev: ProgressEvent) -> str:
    """The rate and ETA the engine put in a Progress event, as ``1,234/s  ETA 0:42`` ('' before a rate)."""
    from engine.rate import format_seconds

    info = f"{ev.rate:,.0f}/s  ETA {format_seconds(ev.eta_s)}" if ev.rate else ""
    if ev.message and ev.stage == "read":
        info = f"{info}  {ev.message}".strip()
    return info


def render(events: Iterable[Event], console: Console, done_type: type[D]) -> D:
    """Show engine events as rich progress bars (or plain lines when stderr is not a terminal); return the
    last event of ``done_type``: every engine job ends with one that carries its result."""
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from engine.events import Log

    done: D | None = None
    live = console.is_terminal
    bars = Progress(TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[unit]}"), TextColumn("{task.fields[info]}"),
                    console=console, transient=False, disable=not live)
    tasks: dict[str, TaskID] = {}
    last_plain: dict[str, float] = {}
    with bars:
        for ev in events:
            if isinstance(ev, done_type):
                done = ev
            elif isinstance(ev, ProgressEvent):
                info = progress_info(ev)
                label = LABELS.get(ev.stage, ev.stage)
                if live:
                    if ev.stage not in tasks:
                        tasks[ev.stage] = bars.add_task(label, total=ev.total, unit=ev.unit, info="")
                    bars.update(tasks[ev.stage], completed=ev.done, total=ev.total, info=escape(info))
                else:
                    now = time.monotonic()
                    if now - last_plain.get(ev.stage, 0.0) >= 5 or ev.done == ev.total:
                        last_plain[ev.stage] = now
                        total = f"/{ev.total:,}" if ev.total is not None else ""
                        console.print(f"{label}: {ev.done:,}{total} {ev.unit} {info}", markup=False)
            elif isinstance(ev, Log):
                style = {"WARNING": "yellow", "ERROR": "red"}.get(ev.level, "dim")
                console.print(f"[{style}]{escape(ev.message)}[/]")
    if done is None:
        raise EngineError(f"the job ended without its {done_type.__name__} event",
                          fix="this is a bug in rebase-tui: please report it with the command you ran")
    return done


def print_summary(summary: IngestSummary, console: Console) -> None:
    """The human summary of an ingest (on stderr; stdout stays free for --json)."""
    a, t = summary.added, summary.totals
    console.print(
        f"added {a.datasets:,} dataset(s), {a.rows:,} rows, {a.values:,} new values in "
        f"{summary.seconds:.1f} s — workspace: {t.datasets:,} datasets, {t.configs:,} "
        f"configs, {t.rows:,} rows, {t.cells:,} cells, {t.values:,} values, "
        f"{t.vectors:,} vectors", highlight=False)
    e = summary.embedding
    if e is not None and e.values + e.descriptions:
        console.print(f"embedded {e.values:,} values and {e.descriptions:,} descriptions in {e.seconds:.1f} s "
                      f"({e.values_per_s:,.0f}/s, {e.backend}/{e.precision} on {e.device}, {e.executor})",
                      highlight=False, markup=False)
    if summary.unembedded > 0:
        console.print(f"{summary.unembedded:,} value(s)/description(s) are not embedded yet, so their datasets "
                      "stay invisible to retrieval: run the ingest again without --no-embed (or "
                      "`rebase-tui check --repair`)", highlight=False, markup=False)
    if summary.skipped:
        console.print(f"[yellow]{len(summary.skipped)} problem(s) reported above (skipped)[/]")
