"""Ingest on the test corpus: counts, deduplication, idempotence, vectors agreeing with the store, embedder rules."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from engine.datastore import vindex
from engine.datastore.ingest import AddedCounts, IngestDone, ingest, run_ingest
from engine.errors import EngineError
from engine.events import Log, Progress
from engine.workspace import Workspace
from tests.conftest import corpus
from tests.fixtures.datastore import SMALL_DATASETS, SMALL_MAX_ROWS


def _expected(folders, max_rows):
    """Counts computed independently from the Parquet files (stride sampling as documented)."""
    rows = cells = 0
    values = set()
    configs = 0
    for folder in folders:
        for path in sorted(folder.glob("*/*.parquet")):
            table = pq.read_table(path)
            n = table.num_rows
            idx = range(n) if max_rows == 0 or n <= max_rows else [(i * n) // max_rows for i in range(max_rows)]
            configs += 1
            data = table.to_pylist()
            for i in idx:
                rows += 1
                for v in data[i].values():
                    if v is not None and v != "":
                        cells += 1
                        values.add(v)
    return {"datasets": len(folders), "configs": configs, "rows": rows, "cells": cells, "values": len(values)}


def test_readers_give_exactly_the_rows_the_corpus_was_built_from():
    """Discovery and the readers over the test datastore: every dataset, config, row id and cell text the
    corpus generator wrote (empty values read as absent), nothing skipped."""
    import random

    from engine.datastore.readers import read_split
    from engine.datastore.sources import discover
    from tests.data.build_corpus import SEED, generate

    built = {ds.name: (ds, row_ids) for ds, row_ids in generate(random.Random(SEED))}
    found = discover([corpus("datastore")])
    assert found.skipped == [] and found.notes == []
    assert sorted(ds.name for ds in found.datasets) == sorted(built)
    for ds in found.datasets:
        source, row_ids = built[ds.name]
        assert ds.problems == [] and ds.description == source.description
        assert {c.name: c.split for c in ds.configs} == {name: "train" for name in source.configs}
        for cfg in ds.configs:
            result, failed = read_split(cfg.files, 0, ds.labels)
            assert failed == [] and result.notes == []
            expected = [(i, {k: v or None for k, v in row.items()})
                        for i, row in zip(row_ids[cfg.name], source.configs[cfg.name], strict=True)]
            assert result.rows == expected, (ds.name, cfg.name)


def test_small_datastore_counts_match_the_files(small_datastore):
    root = corpus("datastore")
    expected = _expected([root / name for name in SMALL_DATASETS], SMALL_MAX_ROWS)
    with Workspace(small_datastore) as ws:
        counts = ws.store.table_counts(["datasets", "configs", "rows", "cells", "cell_values"])
        assert counts["datasets"] == expected["datasets"]
        assert counts["configs"] == expected["configs"]
        assert counts["rows"] == expected["rows"]
        assert counts["cells"] == expected["cells"]
        assert counts["cell_values"] == expected["values"]
        with ws.store.cursor() as cur:
            assert cur.execute("select count(*) from datasets where status <> 'ready'").fetchall()[0][0] == 0
            names = {r[0] for r in cur.execute("select name from datasets").fetchall()}
            # every value text is stored once; every cell points at the value holding its text
            assert cur.execute("select count(*) - count(distinct text) from cell_values").fetchall()[0][0] == 0
        assert "corpus/nli-pairs" in names and "yes_no_questions" in names
        assert ws.store.get_meta("embedder.name") == "all-MiniLM-L6-v2"
        assert ws.store.get_meta("embedder.dim") == "384"


def test_vectors_agree_with_the_store(small_datastore, embedder):
    with Workspace(small_datastore) as ws:
        keys, vecs = vindex.load_value_vectors(ws)
        with ws.store.cursor() as cur:
            ids = cur.execute("select id, text from cell_values order by id").fetchall()
            ds = cur.execute("select id, description from datasets order by id").fetchall()
        assert sorted(keys.tolist()) == [i for i, _ in ids]
        assert vecs.dtype == np.float32 and vecs.shape == (len(ids), 384)
        assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
        # the stored vector of a value is the embedding of its text
        pos = {int(k): i for i, k in enumerate(keys)}
        some = ids[:: max(1, len(ids) // 7)]
        fresh = embedder.encode([t for _, t in some])
        stored = np.stack([vecs[pos[i]] for i, _ in some])
        assert np.allclose((fresh * stored).sum(axis=1), 1.0, atol=1e-3)
        d_keys, d_vecs = vindex.load_description_vectors(ws)
        assert sorted(d_keys.tolist()) == [i for i, _ in ds]
        # the usearch files hold the same keys
        assert sorted(vindex.usearch_keys(vindex.usearch_path(ws, "values")).tolist()) == [i for i, _ in ids]
        assert sorted(vindex.usearch_keys(vindex.usearch_path(ws, "descriptions")).tolist()) == [i for i, _ in ds]


def test_row_ids_and_row_data_come_from_the_source(small_datastore):
    root = corpus("datastore")
    path = root / "question_types" / "default" / "train.parquet"
    table = pq.read_table(path)
    source_ids = json.loads(table.schema.metadata[b"rebase.row_ids"])
    data = table.to_pylist()
    n = table.num_rows
    chosen = [(i * n) // SMALL_MAX_ROWS for i in range(SMALL_MAX_ROWS)] if n > SMALL_MAX_ROWS else range(n)
    with Workspace(small_datastore) as ws, ws.store.cursor() as cur:
        got = cur.execute("select r.row_id, r.data from rows r join datasets d on d.id = r.dataset "
                          "where d.name = 'question_types' order by r.id").fetchall()
        assert [g[0] for g in got] == [source_ids[i] for i in chosen]
        assert [json.loads(g[1]) for g in got] == [data[i] for i in chosen]
        cfg = cur.execute("select c.name, c.split, c.rows_total, c.columns from configs c join datasets d "
                          "on d.id = c.dataset where d.name = 'question_types'").fetchall()
        assert cfg == [("default", "train", n, json.dumps(list(data[0].keys())))]


def test_second_ingest_adds_nothing_and_keeps_files(small_datastore, embedder):
    root = corpus("datastore")
    with Workspace(small_datastore) as ws:
        before = ws.store.table_counts()
        index_before = {p.name: p.read_bytes() for p in ws.index_dir.iterdir()}
        events = list(ingest(ws, [root / n for n in SMALL_DATASETS], max_rows_per_config=SMALL_MAX_ROWS,
                             embedder=embedder))
        summary = events[-1].summary
        assert isinstance(events[-1], IngestDone)
        assert summary.added == AddedCounts(0, 0, 0)
        assert summary.unchanged == len(SMALL_DATASETS)
        assert ws.store.table_counts() == before
        assert {p.name: p.read_bytes() for p in ws.index_dir.iterdir()} == index_before
        assert not [e for e in events if isinstance(e, Progress) and e.stage == "embed"]


def test_shared_values_are_embedded_once(workspace, embedder, tmp_path):
    a = tmp_path / "a.jsonl"
    b = tmp_path / "b.jsonl"
    a.write_text("\n".join(json.dumps({"q": f"question {i}", "label": "yes"}) for i in range(5)))
    b.write_text("\n".join(json.dumps({"text": f"question {i}", "answer": "yes"}) for i in range(3)))
    summary = run_ingest(workspace, [a, b], embedder=embedder)
    t = summary.totals
    assert t.datasets == 2 and t.rows == 8 and t.cells == 16
    assert t.values == 6  # question 0..4 and "yes"
    assert t.vectors == 6 + 2
    assert summary.added == AddedCounts(datasets=2, rows=8, values=6)


def test_max_rows_uses_a_uniform_stride(workspace, embedder, tmp_path):
    f = tmp_path / "numbers.jsonl"
    f.write_text("\n".join(json.dumps({"n": f"row {i}"}) for i in range(10)))
    run_ingest(workspace, [f], max_rows_per_config=4, embedder=embedder)
    with workspace.store.cursor() as cur:
        got = cur.execute("select row_id, data->>'n' from rows order by id").fetchall()
    assert got == [(0, "row 0"), (2, "row 2"), (5, "row 5"), (7, "row 7")]


def test_another_embedder_is_refused(small_datastore, tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_text('{"a": "b"}\n')
    with Workspace(small_datastore, {"embedder.model": "some-org/other-model"}) as ws:
        before = ws.store.table_counts()
        with pytest.raises(EngineError) as err:
            list(ingest(ws, [f]))
        assert "all-MiniLM-L6-v2" in err.value.message and "other-model" in err.value.message
        assert ws.store.table_counts() == before


def test_unknown_model_names_itself(workspace, tmp_path):
    from engine.datastore.embed import load_embedder

    with pytest.raises(EngineError) as err:
        load_embedder("no-such-org/no-such-model-xyz")
    assert "no-such-org/no-such-model-xyz" in err.value.message and err.value.fix


def test_events_are_time_batched(workspace, embedder, tmp_path):
    f = tmp_path / "many.jsonl"
    f.write_text("\n".join(json.dumps({"t": f"short text number {i}"}) for i in range(300)))
    events = list(ingest(workspace, [f], embedder=embedder, batch_size=8))
    embeds = [e for e in events if isinstance(e, Progress) and e.stage == "embed"]
    # 38 batches, but at most ~4 events per second (plus first and last)
    assert 2 <= len(embeds) < 38
    assert embeds[-1].done == embeds[-1].total == 300
    # the engine fills in rate and ETA (front ends only show them): none before a second sample
    assert embeds[0].rate is None and embeds[0].eta_s is None
    assert embeds[-1].rate is not None and embeds[-1].rate > 0 and embeds[-1].eta_s == 0.0
    assert any(isinstance(e, Log) and "ready" in e.message for e in events)
