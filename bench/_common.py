"""What the benchmarks share: the repository on the import path, the shared data, and the workspaces they
measure on.

Benchmarks measure at real scale on the shared data folder beside the repository (``../shared/data``, or
the folder ``REBASE_SHARED_DATA`` names), which a user's clone does not have; the test suite never needs it.
The helpers are the benchmarks' own (bench/ does not import from tests/). Import this module first: it puts
the repository on ``sys.path`` so that ``engine`` and ``rebase_tui`` import from this checkout.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
SHARED_DATA = Path(os.environ.get("REBASE_SHARED_DATA") or REPO.parent / "shared" / "data")


def shared(*parts: str) -> Path:
    """A path under the shared data folder; exits with one line naming it when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        raise SystemExit(f"{path} is not present: the benchmarks read the shared data folder beside the "
                         "repository (set REBASE_SHARED_DATA to use another)")
    return path


def pool_from_folders(ws: Any, task: str, folders: list[str], n: int) -> int:
    """Make the first ``n`` rows of shared datastore ``folders`` the pool of ``task`` (ranked in folder order,
    then config name, then file order); return the pool size.

    The rows are read by the real ingest, without embedding: a transform benchmark needs a pool, not a
    retrieval, and embedding thousands of values would only slow its setup.
    """
    from engine.datastore.ingest import run_ingest

    paths = [shared("datastore", f) for f in folders]
    run_ingest(ws, paths, max_rows_per_config=0, embed=False)
    place = {p.name: i for i, p in enumerate(paths)}
    with ws.store.cursor() as cur:
        rows = cur.execute("select r.id, d.source_path, c.name from rows r join datasets d on d.id = r.dataset "
                           "join configs c on c.id = r.config").fetchall()
    ranked = sorted(rows, key=lambda r: (place[Path(r[1]).name], r[2], r[0]))[:n]
    with ws.store.transaction() as cur:
        for rank, (row, _, _) in enumerate(ranked, 1):
            cur.execute('insert into retrievals (task, rank, "row", score, input_score, output_score, '
                        "dataset_score) values (?, ?, ?, 0, 0, 0, 0)", [task, rank, row])
    return len(ranked)


REVIEW_LABELS = ("entailment", "neutral", "contradiction")


def review_workspace(ws: Any, n_examples: int, n_rows: int = 40) -> None:
    """The Review benchmark's workspace: task ``nli``, a one-dataset datastore of ``n_rows`` premise/hypothesis
    rows that is all its pool, and ``n_examples`` pending examples spread over those rows."""
    import pyarrow as pa

    from engine.tasks import Example, Task, add_task

    add_task(ws, Task("nli", "Decide whether the premise entails the hypothesis. Answer entailment, neutral or "
                             "contradiction.",
                      (Example("Premise: A man sleeps. Hypothesis: A person rests.", "entailment"),
                       Example("Premise: A dog runs. Hypothesis: A cat sleeps.", "neutral")), ()))
    ids = list(range(100, 100 + n_rows))
    animals = ("cat", "dog", "bird", "fox")
    premises = [f"Premise {i}: the {animals[i % 4]} sat on mat {i}." for i in range(n_rows)]
    premises[3] = "Premise 3: closing [/foo] tag and [bold]not bold[/bold] and [link=x]y[/link]"  # shown verbatim
    data = [json.dumps({"premise": premises[i], "hypothesis": f"Hypothesis {i}: an animal is {i % 3} metres away.",
                        "label": REVIEW_LABELS[i % 3]}) for i in range(n_rows)]
    tables = {  # in the order the foreign keys need
        "datasets": pa.table({"id": [1], "name": ["toy/nli"], "source_path": ["/tmp/toy"],
                              "description": ["toy NLI rows"], "status": ["ready"]}),
        "configs": pa.table({"id": [1], "dataset": [1], "name": ["default"], "split": ["train"],
                             "columns": [json.dumps(["premise", "hypothesis", "label"])], "rows_total": [n_rows],
                             "status": ["ready"]}),
        "rows": pa.table({"id": ids, "dataset": [1] * n_rows, "config": [1] * n_rows,
                          "row_id": list(range(n_rows)), "data": data}),
        "retrievals": pa.table({"task": ["nli"] * n_rows, "rank": list(range(1, n_rows + 1)), "row": ids,
                                "score": [1.0 - i / 1000 for i in range(n_rows)], "input_score": [0.5] * n_rows,
                                "output_score": [0.5] * n_rows, "dataset_score": [0.5] * n_rows,
                                "input_column": ["premise"] * n_rows, "output_column": ["label"] * n_rows}),
        "examples": pa.table({
            "task": ["nli"] * n_examples, "row": [ids[i % n_rows] for i in range(n_examples)],
            "input": [f"Premise {i}: example number {i} about {['cats', 'dogs', 'birds'][i % 3]}. "
                      f"Hypothesis: it is {i % 7} o'clock." for i in range(n_examples)],
            "output": [REVIEW_LABELS[i % 3] for i in range(n_examples)],
            "status": ["pending"] * n_examples, "teacher_model": ["standin:1b"] * n_examples}),
    }
    insert_tables(ws, tables)


def insert_tables(ws: Any, tables: dict[str, Any]) -> None:
    """Insert Arrow tables into the workspace's tables of the same names, in order, in one transaction."""
    with ws.store.transaction() as cur:
        for name, table in tables.items():
            cur.register("incoming", table)
            columns = ", ".join(f'"{c}"' for c in table.column_names)
            cur.execute(f"insert into {name} ({columns}) select {columns} from incoming")
            cur.unregister("incoming")


def build_student(path: Path, rows: list[dict], layers: int, dim: int) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator([t for r in rows for t in (r["input"], r["output"])],
                            trainers.BpeTrainer(vocab_size=4000, special_tokens=["<|endoftext|>", "<pad>"],
                                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<pad>")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(fast), n_positions=1024, n_embd=dim, n_layer=layers,
                                       n_head=max(1, dim // 64), bos_token_id=fast.eos_token_id, eos_token_id=fast.eos_token_id,
                                       pad_token_id=fast.pad_token_id))
    model.save_pretrained(path)
    fast.save_pretrained(path)
