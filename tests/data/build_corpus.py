"""Writes the test corpus beside this file: ``datastore/``, ``tasks/`` and ``teacher_outputs/``.

    python -m tests.data.build_corpus

Deterministic (one seeded generator): running it again writes identical text files and Parquet files with
the same content. ``bbh/`` is not generated: it holds a few BIG-Bench-Hard test items as published, with
their licence. The datastore uses the layout of a folder of downloaded datasets: ``<org>__<name>/<config>/
train.parquet`` plus a ``README.md`` card per dataset, every value a string, and the original row ids in
each Parquet file's key-value metadata under ``rebase.row_ids``.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

from engine.demo_data.build_corpus import card
from tests.data import corpus_code, corpus_pairs, corpus_questions, corpus_sentences
from tests.data.corpus_tasks import TASKS, boolean_outputs, nli_outputs, squad_outputs
from tests.data.dataset import Dataset

HERE = Path(__file__).resolve().parent
SEED = 20240913
BUILDERS = (corpus_pairs.nli_pairs, corpus_pairs.science_entailment, corpus_questions.yes_no_questions,
            corpus_questions.reading_comprehension, corpus_questions.science_questions,
            corpus_questions.multiple_choice_qa, corpus_questions.commonsense_explanations,
            corpus_sentences.movie_sentiment, corpus_questions.question_types, corpus_sentences.pronoun_choice,
            corpus_pairs.paraphrase_pairs, corpus_pairs.medical_question_pairs, corpus_code.python_problems)
"""Every dataset, in the order they draw from the one seeded generator."""


def write_parquet(path: Path, rows: list[dict[str, str]], dataset: str, config: str, row_ids: list[int]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {name: [r[name] for r in rows] for name in rows[0]}
    meta = {b"rebase.dataset_id": dataset.encode(), b"rebase.config_id": config.encode(),
            b"rebase.row_ids": json.dumps(row_ids).encode()}
    table = pa.table({k: pa.array(v, pa.string()) for k, v in columns.items()}).replace_schema_metadata(meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def generate(rng: random.Random) -> list[tuple[Dataset, dict[str, list[int]]]]:
    """Every dataset with the original row ids of each config (the rows were drawn, in order, from a
    larger source). Tests call this too, to know what the files hold by construction."""
    out = []
    for build in BUILDERS:
        ds = build(rng)
        out.append((ds, {config: sorted(rng.sample(range(len(rows) * 8), len(rows)))
                         for config, rows in ds.configs.items()}))
    return out


def write_dataset(root: Path, ds: Dataset, row_ids: dict[str, list[int]]) -> None:
    folder = root / ds.folder
    shutil.rmtree(folder, ignore_errors=True)
    for config, rows in ds.configs.items():
        write_parquet(folder / config / "train.parquet", rows, ds.name, config, row_ids[config])
    (folder / "README.md").write_text(card(ds.name, ds.description), encoding="utf-8")


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def main() -> None:
    rng = random.Random(SEED)
    for ds, row_ids in generate(rng):
        write_dataset(HERE / "datastore", ds, row_ids)
    tasks = HERE / "tasks"
    tasks.mkdir(exist_ok=True)
    for spec in TASKS:
        (tasks / f"{spec['name']}.json").write_text(json.dumps(spec, indent=2, ensure_ascii=False) + "\n",
                                                    encoding="utf-8")
    out = HERE / "teacher_outputs"
    write_jsonl(out / "boolean_expressions.jsonl", boolean_outputs(rng))
    write_jsonl(out / "squad.jsonl", squad_outputs(rng))
    write_jsonl(out / "mnli.jsonl", nli_outputs())


if __name__ == "__main__":
    main()
