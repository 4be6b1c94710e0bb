"""`rebase-tui train (TASK | --data FILE) --student MODEL ...`: fine-tune the student in a supervised worker."""

from __future__ import annotations

import argparse
import sys

from rebase_tui.output import add_json_flag, open_workspace, print_json, stderr_console
from rebase_tui.subcommands.runs import format_loss


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from engine.student.recipes import RECIPES
    from engine.student.schedule import SCHEDULERS

    p = sub.add_parser("train", parents=[common], help="fine-tune the student on accepted examples or a file",
                       description="Freeze the data into runs/<id>/, start the training worker and follow it. "
                                   "Ctrl-C stops gracefully (checkpoint first); --resume RUN continues.")
    p.add_argument("task", nargs="?", help="task name or task JSON (its accepted examples, and its instruction "
                                           "and examples for the prompt)")
    p.add_argument("--data", metavar="FILE", help='JSONL of {"input", "output"} to train on instead')
    p.add_argument("--method", dest="example_method", choices=("rebase", "synthesize"),
                   help="train only on the accepted examples made from retrieved rows (rebase) or from the task "
                        "alone (synthesize); default: every accepted example")
    p.add_argument("--student", metavar="MODEL", help="Hugging Face causal LM: local folder or cached name")
    m = p.add_mutually_exclusive_group()
    m.add_argument("--lora", dest="method", action="store_const", const="lora", help="LoRA adapter (default)")
    m.add_argument("--full", dest="method", action="store_const", const="full",
                   help="full fine-tuning (default for models under 50 M parameters)")
    p.add_argument("--recipe", choices=list(RECIPES),
                   help="a set of settings to start from; the flags below override it. paper: "
                        + RECIPES["paper"].summary.split(": ", 1)[1] + ", no hold-out, 4-bit on CUDA")
    p.add_argument("--epochs", type=float)
    p.add_argument("--max-steps", type=int, help="optimizer steps (overrides --epochs)")
    p.add_argument("--lr", type=float, help="peak learning rate (reached after the warm-up)")
    p.add_argument("--scheduler", choices=list(SCHEDULERS),
                   help="after warm-up: cosine decay to 10%% of --lr (default), or linear decay towards 0")
    p.add_argument("--warmup-steps", type=int, metavar="N", help="linear warm-up steps (default: 3%% of the run)")
    p.add_argument("--weight-decay", type=float, metavar="X", help="AdamW weight decay (default 0)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--grad-accum", type=int)
    p.add_argument("--max-length", type=int, help="max tokens per example (prompt cut first)")
    p.add_argument("--lora-r", type=int, metavar="R", help="LoRA rank (default 16)")
    p.add_argument("--lora-alpha", type=int, metavar="A", help="LoRA scaling alpha (default 32)")
    p.add_argument("--lora-dropout", type=float, metavar="P", help="LoRA dropout (default 0.05)")
    p.add_argument("--load-in-4bit", action=argparse.BooleanOptionalAction, default=None,
                   help="4-bit base weights (QLoRA): needs a CUDA GPU and the gpu extra (bitsandbytes)")
    p.add_argument("--eval-every", type=int, help="steps between validation losses and checkpoints")
    p.add_argument("--eval-fraction", type=float,
                   help="validation split (default 0.1; 0 trains on every example, eval then needs --data)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--seed", type=int)
    p.add_argument("--format", choices=["auto", "base", "chat"],
                   help="prompt format (auto: chat when the tokenizer has a chat template)")
    p.add_argument("--threads", type=int, help="torch threads of the worker (0: torch's default)")
    p.add_argument("--gradient-checkpointing", action="store_true", default=None,
                   help="recompute activations in the backward pass (less memory, slower)")
    p.add_argument("--max-memory", type=int, metavar="MB",
                   help="host memory the worker may allocate beyond its loaded model; past it the run fails "
                        "as out-of-memory instead of meeting the system's OOM killer (Linux)")
    p.add_argument("--trust-remote-code", action="store_true", default=None,
                   help="allow the student's own Python code (only for models you trust)")
    p.add_argument("--resume", metavar="RUN", help="continue RUN from its last checkpoint to its final step")
    p.add_argument("--detach", action="store_true", help="start the worker and return (follow with `runs`)")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.student import launch, runs

    with open_workspace(args) as ws:
        if args.resume:
            started = launch.resume_training(ws, args.resume)
        else:
            started = launch.start_training(
                ws, task=args.task, data=args.data, example_method=args.example_method, student=args.student,
                method=args.method, recipe=args.recipe,
                epochs=args.epochs, max_steps=args.max_steps, lr=args.lr, scheduler=args.scheduler,
                warmup_steps=args.warmup_steps, weight_decay=args.weight_decay, batch_size=args.batch_size,
                grad_accum=args.grad_accum, max_length=args.max_length, lora_r=args.lora_r,
                lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout, load_in_4bit=args.load_in_4bit,
                eval_every=args.eval_every, eval_fraction=args.eval_fraction, device=args.device, seed=args.seed,
                format=args.format, threads=args.threads, gradient_checkpointing=args.gradient_checkpointing,
                trust_remote_code=args.trust_remote_code, max_memory_mb=args.max_memory)
    path = started.path
    console = stderr_console()
    if started.notice:
        console.print(started.notice, markup=False)
    if args.detach:
        if args.json:
            print_json({"run": started.run, "status": "running", "pid": started.pid, "dir": str(path)})
        else:
            console.print(f"run [bold]{started.run}[/] started (pid {started.pid}); "
                          f"follow with `rebase-tui runs`, stop with `rebase-tui runs stop {started.run}`")
        return 0
    end = _follow(console, path, started.offset, quiet=args.json)
    with open_workspace(args) as ws:
        summary = runs.record(ws, path)
    result = {"run": started.run, "status": summary.status, "steps": summary.steps,
              "train_loss": summary.train_loss, "eval_loss": summary.eval_loss, "seconds": summary.seconds}
    if summary.status == "failed":
        result.update({"reason": summary.reason, "message": summary.message, "fix": summary.fix,
                       "hints": summary.hints})
    if args.json:
        print_json(result)
    if summary.status == "failed":
        print(f"rebase-tui: run {started.run} failed: {summary.message or 'training failed'} — {summary.fix or ''}",
              file=sys.stderr)
        for hint in summary.hints or []:
            print(f"  hint: {hint}", file=sys.stderr)
        return 1
    if not args.json:
        console.print(f"run [bold]{started.run}[/] {summary.status} at step {summary.steps}"
                      f"/{summary.total_steps}: train loss {format_loss(summary.train_loss)}, "
                      f"eval loss {format_loss(summary.eval_loss)} ({summary.seconds:.0f} s)")
        if end is not None and summary.status == "stopped":
            console.print(f"resume with `rebase-tui train --resume {started.run}`")
    return 0


def _follow(console, path, offset: int, quiet: bool):
    """Follow the worker's events with a live line; Ctrl-C asks for a graceful stop (twice: kill)."""
    import contextlib
    import itertools
    import signal

    from rich.live import Live
    from rich.text import Text

    from engine.rate import format_seconds
    from engine.student import supervise
    from engine.student.events import EvalMetrics, RunEnded, RunStarted, StepMetrics

    line = "starting the training worker…"
    eval_loss: float | None = None
    end = None
    interrupts = seen = 0
    events = supervise.follow(path, offset)
    # Ctrl-C must reach us even when started with SIGINT ignored (a background job of a script)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    live_view = Live(Text(line), console=console, transient=False, refresh_per_second=4)
    with (contextlib.nullcontext(_Quiet()) if quiet else live_view) as live:
        while True:
            try:
                ev = next(events)
                seen += 1
            except StopIteration:
                break
            except KeyboardInterrupt:
                # the interrupt closed the follower; a new one skips what was already shown
                events = itertools.islice(supervise.follow(path, offset), seen, None)
                interrupts += 1
                if interrupts == 1:
                    supervise.request_stop(path)
                    live.console.print("stopping: saving a checkpoint first (Ctrl-C again to kill)…")
                else:
                    supervise.stop(path, grace_s=0)
                continue
            if isinstance(ev, RunStarted):
                _print_started(live.console, ev)
            elif isinstance(ev, StepMetrics):
                line = (f"step {ev.step}/{ev.total_steps}  epoch {ev.epoch:.2f}  loss {ev.loss:.4f}  "
                        f"eval {format_loss(eval_loss)}  lr {ev.lr:.2e}  "
                        f"{(ev.tokens_per_s or 0):,.0f} tok/s  ETA {format_seconds(ev.eta_s)}")
            elif isinstance(ev, EvalMetrics):
                eval_loss = ev.eval_loss
            elif isinstance(ev, RunEnded):
                end = ev
            live.update(Text(line))
    return end


def _print_started(console, ev) -> None:
    """What the worker loaded: method, device, format, parameters, data (and a truncation warning)."""
    console.print(f"run {ev.run}: {ev.method} on {ev.device} ({ev.dtype}), {ev.format} format, "
                  f"{ev.trainable:,}/{ev.parameters:,} trainable parameters, "
                  f"{ev.train_examples} train / {ev.eval_examples} eval examples"
                  + (f", resuming at step {ev.start_step}" if ev.resumed else ""))
    if ev.truncated:
        console.print(f"[yellow]warning:[/] {ev.truncated} of {ev.train_examples} examples are longer than "
                      f"{ev.max_length or 'max-length'} tokens; their prompts lose their start (instruction and "
                      "demonstrations first)")


class _Quiet:
    """Stands in for rich's Live under --json (stderr stays quiet, stdout holds the JSON)."""

    class console:  # noqa: N801 - mimics Live.console
        @staticmethod
        def print(*args, **kwargs) -> None:
            pass

    def update(self, *args, **kwargs) -> None:
        pass
