"""`rebase-tui experiment SPEC.toml [--json]`: the paper's comparison, unattended — per task the untrained student
(base), students trained on synthesized and on ReBase data, and the teacher — written to
experiments/<name>/results.json and results.md in the workspace. Run it again after a kill: it continues."""

from __future__ import annotations

import argparse

from rebase_tui.output import add_json_flag, open_workspace, print_json, stderr_console, stdout_console

SPEC_HELP = """\
The spec (TOML; relative paths are taken from the spec's folder):

  name = "bbh-small"                        the folder experiments/<name>/ in the workspace
  methods = ["base", "synthesize", "rebase", "teacher"]
  rounds = 2                                optional: refinement rounds after rebase (`rebase-tui refine`),
                                            each a column rebase+r1, rebase+r2... (needs [student] eval_fraction)
  [teacher]   model, host, backend, temperature, seed, concurrency, num_ctx, num_predict,
              prompt = "default" | "paper", cot = "auto" | "on" | "off"  (the workspace's settings otherwise)
  [student]   model, recipe = "default" | "paper", and any train setting: epochs, max_steps, lr,
              batch_size, grad_accum, max_length, lora_r, lora_alpha, lora_dropout, weight_decay,
              warmup_steps, scheduler, eval_fraction, load_in_4bit, device, seed, method (lora | full), ...
  [eval]      max_new_tokens, batch_size, limit (the first N test items), device
  [[tasks]]   task (a stored name or a task file), test (a test file in any layout `eval --data`
              reads), examples (examples per data method), metric (optional), exclude (optional list)

It stores each task's pool, accepts the pending examples its own teacher calls made and adds training
runs: give it a workspace of its own (-w DIR) to keep it apart from other work."""


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("experiment", parents=[common], formatter_class=argparse.RawDescriptionHelpFormatter,
                       help="run the paper's comparison (base / synthesize / rebase / teacher) from a spec file",
                       description="Retrieve, transform or synthesize, accept, train and evaluate every task of "
                                   "SPEC for every method, unattended, and write the results table. Killed and "
                                   "started again, it continues where it stopped.", epilog=SPEC_HELP)
    p.add_argument("spec", metavar="SPEC.toml", help="the experiment's spec")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from engine.experiments.results import RESULTS_JSON, RESULTS_MD
    from engine.experiments.spec import read_spec

    spec = read_spec(args.spec)
    with open_workspace(args) as ws:
        end = asyncio.run(_consume(ws, spec, quiet=args.json))
    if args.json:
        print_json(end.results.to_json())
        return 0
    from rich.table import Table

    head, lines = end.results.table()
    table = Table(*head, title=f"experiment {spec.name}", title_justify="left")
    for cells in lines:
        table.add_row(*cells)
    out = stdout_console()
    out.print(table)
    out.print(f"results in {end.folder / RESULTS_JSON} and {end.folder / RESULTS_MD} ({end.seconds:.0f} s)",
              markup=False)
    return 0


async def _consume(ws, spec, quiet: bool):
    """Run the experiment with one progress bar per stage of each task and method on stderr."""
    from contextlib import aclosing

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from engine.events import Log
    from engine.events import Progress as ProgressEvent
    from engine.experiments.runner import ExperimentFinished, run_experiment
    from engine.experiments.stages import StageDone, StageStarted
    from engine.rate import format_seconds

    console = stderr_console()
    bars = Progress(TextColumn("{task.description:<36}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[msg]}"), TimeElapsedColumn(), console=console,
                    disable=quiet or not console.is_terminal)
    end = None
    current = None
    with bars:
        async with aclosing(run_experiment(ws, spec)) as events:
            async for ev in events:
                if isinstance(ev, StageStarted):
                    current = bars.add_task(f"{ev.task} · {ev.method} · {ev.stage}", total=None, msg="")
                elif isinstance(ev, ProgressEvent) and current is not None:
                    rate = f"{ev.rate:.2f} {ev.unit}/s" if ev.rate is not None else ""
                    bars.update(current, completed=ev.done, total=ev.total,
                                msg=f"{ev.message}  {rate}  ETA {format_seconds(ev.eta_s)}")
                elif isinstance(ev, StageDone):
                    note = f"{ev.detail}  ({'done earlier' if ev.skipped else f'{ev.seconds:.1f} s'})".strip()
                    if current is not None:
                        done = next(t for t in bars.tasks if t.id == current).total or 1
                        bars.update(current, completed=done, total=done, msg=note)
                        current = None
                    if bars.disable and not quiet:
                        console.print(f"{ev.task} · {ev.method} · {ev.stage}: {note}", markup=False,
                                      highlight=False)
                elif isinstance(ev, Log) and (not quiet or ev.level != "INFO"):
                    console.print(ev.message, markup=False, highlight=False)
                elif isinstance(ev, ExperimentFinished):
                    end = ev
    assert end is not None, "an experiment ends with ExperimentFinished"
    return end
