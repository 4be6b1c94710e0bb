"""Training data: a task's accepted examples (with provenance) or a JSONL file, split and exported.

Rows are ``{"input", "output"}`` dicts; rows from the workspace also carry provenance
(``example_id``, ``source_dataset``, ``config``, ``split``, ``row_id``, ``teacher_model``, ``reasoning``).
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.student.formatting import CHAT, PromptFormat
from engine.student.outputs import atomic_file, atomic_folder, check_out
from engine.student.testsets import read_testset
from engine.tasks import Task, final_answer

EXPORT_FORMATS = ("jsonl", "csv", "parquet", "hf", "chat", "alpaca")
PROVENANCE = ("example_id", "source_dataset", "config", "split", "row_id", "teacher_model")


@dataclass(frozen=True, slots=True)
class DatasetExport:
    """Where a dataset export went, in which format, and how many rows it holds."""

    path: str
    format: str
    rows: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def training_target(output: str, reasoning: str | None) -> str:
    """What the student learns to write: the reasoning then the answer, when the teacher gave them apart."""
    if reasoning and reasoning.strip() and final_answer(output) is None and reasoning.strip() not in output:
        answer = output.strip().rstrip(".")
        return f"{reasoning.strip()} So the answer is {answer}."
    return output


def accepted_examples(ws: Any, task: str, *, method: str | None = None,
                      ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """The task's accepted examples, oldest first, with provenance (source dataset, config, row, teacher).

    ``method`` keeps those one method made (``rebase`` or ``synthesize``); ``ids`` keeps those among these
    example ids (what one experiment made, when the task has other examples too).
    """
    from engine.review import check_method

    check_method(method)
    sql = """
        select e.id, e.input, e.output, e.reasoning, e.teacher_model, d.name, c.name, c.split, r.row_id
        from examples e
        left join rows r on r.id = e."row"
        left join datasets d on d.id = r.dataset
        left join configs c on c.id = r.config
        where e.task = ? and e.status = 'accepted'"""
    params: list[Any] = [task]
    if method is not None:
        sql += " and e.method = ?"
        params.append(method)
    if ids is not None:
        sql += " and e.id in (select unnest(?::bigint[]))"
        params.append([int(i) for i in ids])
    with ws.store.cursor() as cur:
        rows = cur.execute(sql + " order by e.id", params).fetchall()
    out = []
    for ex_id, inp, output, reasoning, teacher, dataset, config, split, row_id in rows:
        out.append({"input": inp, "output": training_target(output, reasoning), "reasoning": reasoning,
                    "example_id": ex_id, "source_dataset": dataset, "config": config, "split": split,
                    "row_id": row_id, "teacher_model": teacher})
    return out


def accepted_tasks(ws: Any) -> list[str]:
    """Tasks that have accepted examples, the one accepted into most recently first."""
    with ws.store.cursor() as cur:
        rows = cur.execute("select task from examples where status = 'accepted' group by task "
                           "order by max(updated_at) desc").fetchall()
    return [r[0] for r in rows]


def read_examples_file(path: str | Path) -> list[dict[str, str]]:
    """``{"input", "output"}`` rows to train on, from a file in any layout a test set may have (JSONL of
    ``{"input", "output"}``, BIG-Bench-Hard, SQuAD, MCoNaLa): an item with several references trains on the first."""
    test = read_testset(path)
    return [{"input": item.input, "output": item.references[0]} for item in test.items]


def split_rows(rows: list[dict[str, Any]], eval_fraction: float, seed: int) -> tuple[list, list]:
    """Seeded shuffle, then ``(train, eval)``; eval gets round(n * fraction) rows (at least 1 when > 0)."""
    if not 0 <= eval_fraction < 1:
        raise EngineError(f"eval fraction {eval_fraction} is out of range", fix="use a value in [0, 1)")
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_eval = 0 if eval_fraction == 0 or len(rows) < 2 else max(1, round(len(rows) * eval_fraction))
    return [rows[i] for i in order[n_eval:]], [rows[i] for i in order[:n_eval]]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write rows as JSON lines (atomically: a temp file renamed into place)."""
    with atomic_file(path) as tmp, tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file this engine wrote."""
    with Path(path).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# -- export ---------------------------------------------------------------------------------
def _flat_rows(task: Task, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"task": task.name, "input": r["input"], "output": r["output"], "reasoning": r.get("reasoning"),
             **{k: r.get(k) for k in PROVENANCE}} for r in rows]


def is_hf_export(path: Path) -> bool:
    """Whether the folder ``path`` is a dataset export in the ``hf`` format (``--force`` may replace it)."""
    return (path / "README.md").is_file() and (path / "data").is_dir()


def export_dataset(ws: Any, task: Task, fmt: str, out: str | Path, *, force: bool = False,
                   method: str | None = None) -> DatasetExport:
    """Write the task's accepted examples (only those ``method`` made, when given) with provenance in ``fmt``.

    ``jsonl``/``csv``/``parquet``: one row per example (task, input, output, reasoning, provenance);
    ``hf``: a folder loadable with ``datasets.load_dataset(PATH)`` (Parquet + dataset card);
    ``chat``: ``{"messages": [system, user, assistant]}`` (TRL conversational) with the same system text
    as training; ``alpaca``: ``{"instruction", "input", "output"}``. Provenance travels in every format.

    ``out`` is checked first (:func:`~engine.student.outputs.check_out`: never the workspace's own files, an
    existing path only with ``force``) and written atomically.
    """
    if fmt not in EXPORT_FORMATS:
        raise EngineError(f"unknown export format {fmt!r}", fix=f"use one of {', '.join(EXPORT_FORMATS)}")
    path = check_out(out, folder=fmt == "hf", force=force, workspace=ws.path, earlier_export=is_hf_export)
    rows = accepted_examples(ws, task.name, method=method)
    if not rows:
        made = f" made by {method}" if method else ""
        raise EngineError(f"task {task.name!r} has no accepted examples{made} to export",
                          fix="generate examples (`rebase-tui transform`) and accept them (`rebase-tui review`)")
    flat = _flat_rows(task, rows)
    if fmt == "hf":
        with atomic_folder(path) as tmp:
            (tmp / "data").mkdir()
            _write_parquet(tmp / "data" / "train-00000-of-00001.parquet", flat)
            (tmp / "README.md").write_text(_dataset_card(task), encoding="utf-8")
    elif fmt in ("jsonl", "chat", "alpaca"):
        write_jsonl(path, _shaped(task, fmt, flat))
    else:
        with atomic_file(path) as tmp:
            if fmt == "parquet":
                _write_parquet(tmp, flat)
            else:
                with tmp.open("w", encoding="utf-8", newline="") as f:
                    w = csv.DictWriter(f, fieldnames=list(flat[0]))
                    w.writeheader()
                    w.writerows(flat)
    return DatasetExport(str(path), fmt, len(flat))


def _shaped(task: Task, fmt: str, flat: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The JSON-lines formats' rows: flat (``jsonl``), TRL messages (``chat``) or Alpaca records."""
    keep = ("task", *PROVENANCE)
    if fmt == "chat":
        system = PromptFormat(CHAT, task.instruction, tuple((e.input, e.output) for e in task.examples)).system
        return [{"messages": [{"role": "system", "content": system}, {"role": "user", "content": r["input"]},
                              {"role": "assistant", "content": r["output"]}], **{k: r[k] for k in keep}}
                for r in flat]
    if fmt == "alpaca":
        return [{"instruction": task.instruction, "input": r["input"], "output": r["output"],
                 **{k: r[k] for k in keep}} for r in flat]
    return flat


def _dataset_card(task: Task) -> str:
    return ("---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n"
            "    path: data/train-*.parquet\n---\n"
            f"# {task.name}\n\nExamples generated with rebase-tui (ReBase retrieval-based distillation).\n\n"
            f"Instruction: {task.instruction}\n\nEach row keeps its provenance: source dataset, config, "
            "split, row id and teacher model.\n")


def _write_parquet(path: Path, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
