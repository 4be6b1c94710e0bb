"""The training worker: ``python -m engine.student.worker RUN_DIR``.

Runs :func:`engine.student.loop.train` on a run directory and writes every event as one JSON line to stdout and
to ``RUN_DIR/events.jsonl`` (flushed per line). SIGINT or SIGTERM asks for a graceful stop: the loop saves a
checkpoint at the next step boundary and ends with a ``stopped`` event, exit code 0. A fault ends with a
``failed`` event (exit code 1); an unexpected crash also writes its traceback to stderr (the parent sends
stderr to ``RUN_DIR/stderr.log``). It never opens the workspace's DuckDB file.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from pathlib import Path
from types import FrameType
from typing import Any

from engine.student.events import EVENTS_FILE, TERMINAL, RunEnded
from engine.student.run_config import RUN_FILE, read_config
from engine.student.summary import summarize


class _Protocol:
    """Writes events to stdout and events.jsonl, one flushed JSON line each."""

    def __init__(self, run_dir: Path) -> None:
        self.file = (run_dir / EVENTS_FILE).open("a", encoding="utf-8")
        self.stdout_ok = True

    def emit(self, obj: dict[str, Any]) -> None:
        line = json.dumps(obj, ensure_ascii=False)
        self.file.write(line + "\n")
        self.file.flush()
        if self.stdout_ok:
            try:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
            except (BrokenPipeError, OSError, ValueError):
                self.stdout_ok = False  # the parent went away (detached): the file is the record


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not (Path(args[0]) / RUN_FILE).exists():
        print("usage: python -m engine.student.worker RUN_DIR (a run directory holding run.json)", file=sys.stderr)
        return 2
    run_dir = Path(args[0]).resolve()
    # first thing: a stop asked during start-up (imports take seconds) is honoured at the first step
    stop = {"asked": False}

    def _ask_stop(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
        stop["asked"] = True

    signal.signal(signal.SIGINT, _ask_stop)
    signal.signal(signal.SIGTERM, _ask_stop)
    cfg = read_config(run_dir)
    threads = cfg.settings.threads
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    if threads:
        torch.set_num_threads(threads)
    (run_dir / "worker.pid").write_text(str(os.getpid()), encoding="utf-8")
    proto = _Protocol(run_dir)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    from engine.student.loop import train

    status = "failed"
    try:
        for event in train(run_dir, stop_requested=lambda: stop["asked"]):
            obj = event.to_json()
            proto.emit(obj)
            if obj["type"] in TERMINAL:
                status = obj["type"]
    except BaseException as exc:  # noqa: BLE001 - the run must end in a recorded state
        traceback.print_exc(file=sys.stderr)
        proto.emit(_crashed(run_dir, cfg.id, exc).to_json())
        return 1
    return 0 if status in ("finished", "stopped") else 1


def _crashed(run_dir: Path, run_id: str, exc: BaseException) -> RunEnded:
    """The final event of a worker that met an unexpected error (its traceback is in stderr.log)."""
    try:
        summary = summarize(run_dir)
    except Exception:  # noqa: BLE001 - a crash report must not crash
        summary = None
    return RunEnded(status="failed", step=summary.steps if summary else 0, reason="crash",
                    message=f"the training worker crashed: {type(exc).__name__}: {exc}"[:500],
                    fix=f"see {run_dir / 'stderr.log'}; resume with `rebase-tui train --resume {run_id}`",
                    train_loss=summary.train_loss if summary else None,
                    eval_loss=summary.eval_loss if summary else None,
                    elapsed_s=summary.seconds if summary else 0.0)


if __name__ == "__main__":
    raise SystemExit(main())
