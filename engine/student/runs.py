"""Training runs: the run directory (frozen data, config, events, checkpoints) and its summary in DuckDB.

A run directory ``<workspace>/runs/<id>/`` holds:

* ``run.json`` — the full configuration (student, method, hyper-parameters, prompt format, data hash,
  ``total_steps``), written once by the parent before launch;
* ``train.jsonl`` / ``eval.jsonl`` — the frozen ``{"input", "output"}`` rows the worker reads (it never
  opens DuckDB);
* ``events.jsonl`` — the worker's protocol, one JSON object per line (see :mod:`engine.student.loop`);
* ``checkpoints/step-NNNNNN/`` — weights (safetensors), ``optimizer.pt`` (tensors only) and ``state.json``;
* ``model/`` — the final weights (adapter or full model) with the tokenizer and ``format.json``;
* ``worker.pid``, ``stderr.log`` — the live worker and its warnings.

The directory is the truth; the ``runs`` table is a summary the parent (the DuckDB writer) refreshes when a
run ends or when runs are listed (:func:`reconcile`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from pathlib import Path
from typing import Any

from engine.errors import EngineError

TERMINAL = ("finished", "stopped", "failed")


def run_dir(ws: Any, run_id: str) -> Path:
    """The directory of run ``run_id`` (an EngineError naming the known runs when absent)."""
    path = ws.runs_dir / run_id
    if not (path / "run.json").exists():
        known = sorted(p.name for p in ws.runs_dir.iterdir() if (p / "run.json").exists()) \
            if ws.runs_dir.exists() else []
        hint = f"known runs: {', '.join(known[-5:])}" if known else "no runs yet"
        raise EngineError(f"unknown run {run_id!r} ({hint})", fix="list runs with `rebase-tui runs`")
    return path


def read_config(path: Path) -> dict[str, Any]:
    """The run's ``run.json``."""
    return json.loads((Path(path) / "run.json").read_text(encoding="utf-8"))


def new_run_id(ws: Any, label: str) -> str:
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


def create_run(ws: Any, rows: list[dict[str, Any]], settings: dict[str, Any], *, task: Any = None,
               source: str = "", eval_rows: list[dict[str, Any]] | None = None) -> Path:
    """Freeze the data and config of a new run into its directory and record it; return the directory.

    ``settings`` holds the hyper-parameters (student, method, epochs, max_steps, lr, batch_size, grad_accum,
    max_length, eval_every, device, seed, format, threads, ...). ``eval_rows`` (else a seeded split of
    ``rows`` by ``settings["eval_fraction"]``) is the validation split.
    """
    from engine.student.training_data import split_rows, write_jsonl

    if not rows:
        raise EngineError("no training examples", fix="accept examples in review, or pass --data FILE")
    cfg = dict(settings)
    if eval_rows is None:
        train_rows, eval_rows = split_rows(rows, float(cfg.get("eval_fraction", 0.1)), int(cfg.get("seed", 0)))
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
    steps = total_steps(len(train_rows), int(cfg["batch_size"]), int(cfg["grad_accum"]),
                        float(cfg["epochs"]), cfg.get("max_steps"))
    if not cfg.get("eval_every"):
        cfg["eval_every"] = max(1, steps // 5)
    cfg.update({
        "id": rid,
        "task": task.name if task is not None else None,
        "instruction": task.instruction if task is not None else "",
        "examples": [{"input": e.input, "output": e.output} for e in task.examples] if task is not None else [],
        "data": {"source": source, "sha256": digest.hexdigest(), "train": len(train_rows),
                 "eval": len(eval_rows)},
        "total_steps": steps,
        "created": time.time(),
    })
    (path / "run.json").write_text(json.dumps(cfg, indent=2, ensure_ascii=False), encoding="utf-8")
    with ws.store.cursor() as cur:
        cur.execute("insert into runs (id, task, student, status, config) values (?, ?, ?, 'created', ?)",
                    [rid, cfg["task"], cfg["student"], json.dumps(cfg)])
    return path


# -- events ---------------------------------------------------------------------------------
def read_events(path: Path) -> list[dict[str, Any]]:
    """Every complete line of ``events.jsonl`` (a torn last line, from a kill, is ignored)."""
    file = Path(path) / "events.jsonl"
    if not file.exists():
        return []
    return parse_event_lines(file.read_bytes().splitlines())


def parse_event_lines(lines: list[bytes] | list[str]) -> list[dict[str, Any]]:
    """The well-formed events among JSON lines (a torn or foreign line is skipped)."""
    out = []
    for line in lines:
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(obj, dict) and "type" in obj:
            out.append(obj)
    return out


def append_event(path: Path, event: dict[str, Any]) -> None:
    """Append one event line to ``events.jsonl`` (used by the parent to record a dead worker)."""
    with (Path(path) / "events.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(event, ensure_ascii=False) + "\n")


def summarize(path: Path) -> dict[str, Any]:
    """The run's state from its events: status, steps, last losses, seconds, and the end's message/hints."""
    events = read_events(path)
    cfg = read_config(path)
    status = "created"
    out: dict[str, Any] = {"run": cfg["id"], "status": status, "steps": 0, "total_steps": cfg["total_steps"],
                           "train_loss": None, "eval_loss": None, "seconds": 0.0}
    for ev in events:
        t = ev["type"]
        if t == "started":
            status = "running"
            out["steps"] = ev.get("start_step", out["steps"])
            for k in ("method", "device", "format", "parameters", "trainable"):
                if k in ev:
                    out[k] = ev[k]
            out.pop("message", None), out.pop("fix", None), out.pop("hints", None), out.pop("reason", None)
        elif t == "step":
            out["steps"] = ev["step"]
            out["train_loss"] = ev.get("loss")
            out["seconds"] = ev.get("elapsed_s", out["seconds"])
        elif t == "eval":
            out["eval_loss"] = ev.get("eval_loss")
        elif t == "checkpoint":
            out["checkpoint"] = ev.get("path")
        elif t in TERMINAL:
            status = t
            out["steps"] = ev.get("step", out["steps"])
            out["seconds"] = ev.get("elapsed_s", out["seconds"])
            for k in ("reason", "message", "fix", "hints"):
                if ev.get(k):
                    out[k] = ev[k]
            if ev.get("train_loss") is not None:
                out["train_loss"] = ev["train_loss"]
            if ev.get("eval_loss") is not None:
                out["eval_loss"] = ev["eval_loss"]
    out["status"] = status
    metrics = Path(path) / "metrics.json"
    if metrics.exists():
        out["metrics"] = json.loads(metrics.read_text(encoding="utf-8"))
    return out


def record(ws: Any, path: Path) -> dict[str, Any]:
    """Write the run's current summary into the ``runs`` table (the parent calls this; it owns DuckDB)."""
    from engine.student.supervise import worker_alive

    summary = summarize(path)
    if summary["status"] in ("running", "created") and not worker_alive(path) \
            and (Path(path) / "worker.pid").exists():
        from engine.student.supervise import record_dead_worker

        record_dead_worker(path)
        summary = summarize(path)
    cfg = read_config(path)
    finished = summary["status"] in TERMINAL
    with ws.store.transaction() as cur:
        exists = cur.execute("select count(*) from runs where id = ?", [cfg["id"]]).fetchall()[0][0]
        if not exists:
            cur.execute("insert into runs (id, task, student, status, config) values (?, ?, ?, ?, ?)",
                        [cfg["id"], cfg.get("task"), cfg["student"], summary["status"], json.dumps(cfg)])
        cur.execute("update runs set status = ?, summary = ?, "
                    "finished_at = case when ? then coalesce(finished_at, current_timestamp) else null end "
                    "where id = ?", [summary["status"], json.dumps(summary), finished, cfg["id"]])
    return summary


def reconcile(ws: Any) -> list[dict[str, Any]]:
    """Refresh the summaries of all runs from their directories and return them, newest first."""
    if not ws.runs_dir.exists():
        return []
    out = []
    for path in sorted(ws.runs_dir.iterdir(), reverse=True):
        if (path / "run.json").exists():
            summary = record(ws, path)
            cfg = read_config(path)
            summary.update({"task": cfg.get("task"), "student": cfg["student"], "created": cfg.get("created")})
            out.append(summary)
    return out


def settings_from_config(config: Any, **overrides: Any) -> dict[str, Any]:
    """Run settings: the workspace's ``student.*`` settings, then non-None ``overrides`` (CLI/TUI values)."""
    settings: dict[str, Any] = {
        "student": config["student.model"], "method": "auto", "epochs": config["student.epochs"],
        "max_steps": None, "lr": config["student.lr"], "batch_size": config["student.batch_size"],
        "grad_accum": config["student.grad_accum"], "max_length": config["student.max_length"],
        "eval_every": None, "device": config["student.device"], "seed": 0, "format": "auto",
        "threads": 0, "trust_remote_code": False, "gradient_checkpointing": False, "group_by_length": True,
        "eval_fraction": 0.1, "lora": {"r": 16, "alpha": 32, "dropout": 0.05},
    }
    if config.sources.get("student.method", "default") != "default":
        settings["method"] = config["student.method"]
    settings.update({k: v for k, v in overrides.items() if v is not None})
    if not settings["student"]:
        raise EngineError("no student model is set",
                          fix="pass --student MODEL (a local folder or a cached Hugging Face name), or "
                              "`rebase-tui config student.model MODEL`")
    for key in ("batch_size", "grad_accum", "max_length"):
        if int(settings[key]) < 1:
            raise EngineError(f"{key.replace('_', '-')} must be at least 1", fix=f"pass --{key.replace('_', '-')} N")
    if float(settings["lr"]) <= 0 or float(settings["epochs"]) <= 0:
        raise EngineError("--lr and --epochs must be positive", fix="pass positive values")
    if settings["method"] not in ("auto", "lora", "full"):
        raise EngineError(f"unknown training method {settings['method']!r}", fix="use lora, full (or auto)")
    return settings
