"""Training runs: the run directory (frozen data, config, events, checkpoints) and its summary in DuckDB.

A run directory ``<workspace>/runs/<id>/`` holds:

* ``run.json`` — the full configuration (:class:`~engine.student.run_config.RunConfig`), written once by the
  parent before launch;
* ``train.jsonl`` / ``eval.jsonl`` — the frozen ``{"input", "output"}`` rows the worker reads (it never
  opens DuckDB);
* ``events.jsonl`` — the worker's protocol, one JSON object per line (:mod:`engine.student.events`);
* ``checkpoints/step-NNNNNN/`` — weights (safetensors), ``optimizer.pt`` (tensors only) and ``state.json``;
* ``model/`` — the final weights (adapter or full model) with the tokenizer and ``format.json``;
* ``worker.pid``, ``stderr.log`` — the live worker and its warnings.

The directory is the truth; the ``runs`` table is a summary the parent (the DuckDB writer) refreshes when a
run ends or when runs are listed (:func:`reconcile`). This module owns the ``runs`` table's SQL.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from engine.errors import EngineError
from engine.student import supervise
from engine.student.run_config import RUN_FILE, DataInfo, RunConfig, RunSettings, read_config, write_config
from engine.student.schedule import default_warmup
from engine.student.summary import RunSummary, summarize
from engine.student.training_data import split_rows, write_jsonl
from engine.tasks import Task

if TYPE_CHECKING:
    from engine.workspace import Workspace


def run_dirs(ws: Workspace) -> list[Path]:
    """The workspace's run directories, oldest first (ids start with their creation time)."""
    if not ws.runs_dir.exists():
        return []
    return sorted(p for p in ws.runs_dir.iterdir() if (p / RUN_FILE).exists())


def run_dir(ws: Workspace, run_id: str) -> Path:
    """The directory of run ``run_id`` (an EngineError naming the known runs when absent)."""
    path = ws.runs_dir / run_id
    if not (path / RUN_FILE).exists():
        known = [p.name for p in run_dirs(ws)]
        hint = f"known runs: {', '.join(known[-5:])}" if known else "no runs yet"
        raise EngineError(f"unknown run {run_id!r} ({hint})", fix="list runs with `rebase-tui runs`")
    return path


def new_run_id(ws: Workspace, label: str) -> str:
    """``YYYYmmdd-HHMMSS-<label>`` (a suffix keeps it unique)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-")[:40] or "run"
    base = f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}"
    rid, n = base, 1
    while (ws.runs_dir / rid).exists():
        n += 1
        rid = f"{base}-{n}"
    return rid


def total_steps(n_train: int, batch_size: int, grad_accum: int, epochs: float, max_steps: int | None) -> int:
    """Optimizer steps of a run: ``max_steps`` when given, else epochs over the data."""
    if max_steps:
        return int(max_steps)
    micro_per_epoch = math.ceil(n_train / batch_size)
    return max(1, math.ceil(epochs * micro_per_epoch / grad_accum))


def create_run(ws: Workspace, rows: list[dict[str, Any]], settings: RunSettings, *, task: Task | None = None,
               source: str = "", eval_rows: list[dict[str, Any]] | None = None, init_from: str | None = None) -> Path:
    """Freeze the data and config of a new run into its directory and record it; return the directory.

    ``eval_rows`` (else a seeded split of ``rows`` by ``settings.eval_fraction``) is the validation split;
    ``init_from`` the model folder training continues from (see :class:`~engine.student.run_config.RunConfig`).
    """
    if not rows:
        raise EngineError("no training examples", fix="accept examples in review, or pass --data FILE")
    if eval_rows is None:
        train_rows, eval_rows = split_rows(rows, settings.eval_fraction, settings.seed)
    else:
        train_rows = rows
    if not train_rows:
        raise EngineError("no examples left for training after the validation split",
                          fix="add examples or lower the eval fraction")
    rid = new_run_id(ws, task.name if task is not None else (Path(source).stem if source else "run"))
    path = ws.runs_dir / rid
    path.mkdir(parents=True)
    write_jsonl(path / "train.jsonl", [{"input": r["input"], "output": r["output"]} for r in train_rows])
    write_jsonl(path / "eval.jsonl", [{"input": r["input"], "output": r["output"]} for r in eval_rows])
    digest = hashlib.sha256((path / "train.jsonl").read_bytes() + (path / "eval.jsonl").read_bytes())
    steps = total_steps(len(train_rows), settings.batch_size, settings.grad_accum, settings.epochs,
                        settings.max_steps)
    cfg = RunConfig(id=rid, settings=settings, total_steps=steps,
                    data=DataInfo(source=source, sha256=digest.hexdigest(), train=len(train_rows),
                                  eval=len(eval_rows)),
                    task=task.name if task is not None else None,
                    instruction=task.instruction if task is not None else "",
                    examples=tuple((e.input, e.output) for e in task.examples) if task is not None else (),
                    created=time.time(), init_from=init_from)
    warmup = settings.warmup_steps if settings.warmup_steps is not None else default_warmup(steps)
    cfg = replace(cfg, settings=replace(settings, eval_every=cfg.eval_every, warmup_steps=warmup))  # the values used
    write_config(path, cfg)
    with ws.store.cursor() as cur:
        cur.execute("insert into runs (id, task, student, status, config) values (?, ?, ?, 'created', ?)",
                    [rid, cfg.task, settings.student, json.dumps(cfg.to_json())])
    return path


def mark_running(ws: Workspace, run_id: str) -> None:
    """Record that a worker was just started on the run (its events say so once it has loaded)."""
    with ws.store.cursor() as cur:
        cur.execute("update runs set status = 'running', finished_at = null where id = ?", [run_id])


RECORD_ATTEMPTS = 5
"""Tries of recording a run's summary when another thread records the same run at the same moment."""


def record(ws: Workspace, path: Path) -> RunSummary:
    """Write the run's current summary into the ``runs`` table (the parent calls this; it owns DuckDB).

    A run whose worker died without a final event is first recorded as failed (killed).
    """
    summary = summarize(path)
    if not summary.ended and (Path(path) / "worker.pid").exists() and not supervise.worker_alive(path):
        supervise.record_dead_worker(path)
        summary = summarize(path)
    cfg = read_config(path)
    for attempt in range(RECORD_ATTEMPTS):
        try:
            with ws.store.transaction() as cur:
                exists = cur.execute("select count(*) from runs where id = ?", [cfg.id]).fetchall()[0][0]
                if not exists:
                    cur.execute("insert into runs (id, task, student, status, config) values (?, ?, ?, ?, ?)",
                                [cfg.id, cfg.task, cfg.settings.student, summary.status, json.dumps(cfg.to_json())])
                cur.execute("update runs set status = ?, summary = ?, "
                            "finished_at = case when ? then coalesce(finished_at, current_timestamp) else null end "
                            "where id = ?", [summary.status, json.dumps(summary.to_json()), summary.ended, cfg.id])
            break
        except duckdb.TransactionException:
            # two followers of one run (the app's panels and a refine or experiment driving it) record its end
            # at the same moment: DuckDB lets one commit and refuses the other, which writes the same summary
            if attempt == RECORD_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    return summary


def reconcile(ws: Workspace) -> list[RunSummary]:
    """Refresh the summaries of all runs from their directories and return them, newest first."""
    return [record(ws, path) for path in reversed(run_dirs(ws))]
