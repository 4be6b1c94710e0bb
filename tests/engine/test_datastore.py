"""Datastore queries on an ingested workspace of the test corpus: list, remove, check, repair (engine and CLI)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.datastore import health, vindex
from engine.datastore.datasets import list_datasets, remove_dataset, totals
from engine.errors import EngineError
from engine.workspace import Workspace
from rebase_tui.cli import main
from tests.fixtures.datastore import SMALL_DATASETS


def test_list_datasets_counts(small_datastore):
    with Workspace(small_datastore) as ws:
        items = list_datasets(ws)
        total = totals(ws)
    assert len(items) == len(SMALL_DATASETS)
    assert sum(d.rows for d in items) == total.rows
    assert sum(d.cells for d in items) == total.cells
    assert all(d.ready and d.description and d.configs >= 1 for d in items)
    assert total.vectors == total.values + total.datasets


def test_remove_deletes_rows_cells_orphan_values_and_vectors(small_datastore, embedder):
    with Workspace(small_datastore) as ws:
        with ws.store.cursor() as cur:
            own = cur.execute("""
                select count(distinct c.value) from cells c join rows r on r.id = c."row"
                join datasets d on d.id = r.dataset where d.name = 'question_types'
                and c.value not in (select c2.value from cells c2 join rows r2 on r2.id = c2."row"
                                    join datasets d2 on d2.id = r2.dataset where d2.name <> 'question_types')""").fetchall()[0][0]
            shared = cur.execute("""
                select v.id from cell_values v where v.id in (select c.value from cells c join rows r on r.id = c."row"
                join datasets d on d.id = r.dataset where d.name = 'question_types') and v.id in (select c.value from cells c
                join rows r on r.id = c."row" join datasets d on d.id = r.dataset where d.name <> 'question_types')""").fetchall()
            removed_id = cur.execute("select id from datasets where name = 'question_types'").fetchall()[0][0]
        before = totals(ws)
        removed = remove_dataset(ws, "question_types")
        after = totals(ws)
        assert removed.dataset == "question_types" and removed.values == own
        assert after.datasets == before.datasets - 1
        assert after.rows == before.rows - removed.rows
        assert after.values == before.values - own
        assert after.vectors == before.vectors - own - 1
        keys, _ = vindex.load_value_vectors(ws)
        assert all(np.isin([s[0] for s in shared], keys))  # values other datasets use keep their vectors
        d_keys, _ = vindex.load_description_vectors(ws)
        assert removed_id not in d_keys.tolist()
        assert health.check(ws).ok
        with pytest.raises(EngineError, match="no dataset question_types"):
            remove_dataset(ws, "question_types")
        # ingest it again: the same counts as before, new ids (never reused), store and index agree
        from engine.datastore.ingest import run_ingest
        from tests.conftest import corpus
        from tests.fixtures.datastore import SMALL_MAX_ROWS

        again = run_ingest(ws, [corpus("datastore", "question_types")], max_rows_per_config=SMALL_MAX_ROWS,
                           embedder=embedder)
        assert again.totals == before
        assert again.added.values == own
        with ws.store.cursor() as cur:
            assert cur.execute("select id from datasets where name = 'question_types'").fetchall()[0][0] > removed_id
        assert health.check(ws).ok


def test_remove_by_last_path_component(small_datastore):
    with Workspace(small_datastore) as ws:
        assert remove_dataset(ws, "nli-pairs").dataset == "corpus/nli-pairs"


def test_check_finds_and_repair_fixes_every_kind_of_damage(small_datastore, embedder):
    with Workspace(small_datastore) as ws:
        assert health.check(ws).ok
        vlog = vindex.vector_log(ws, vindex.VALUES)
        keys, vecs = vlog.read()
        # 1) three values lose their vectors, 2) an orphan vector appears, 3) the usearch file goes,
        # 4) a torn record at the end of the description log, 5) a dataset left 'ingesting'
        orphan_key = int(keys.max()) + 1000
        vlog.rewrite(np.concatenate([keys[3:], [orphan_key]]).astype(np.uint64), np.vstack([vecs[3:], vecs[:1]]))
        vindex.usearch_path(ws, vindex.VALUES).unlink()
        with open(vindex.log_path(ws, vindex.DESCRIPTIONS), "ab") as f:
            f.write(b"\x01\x02\x03")
        with ws.store.cursor() as cur:
            cur.execute("update datasets set status = 'ingesting' where name = 'movie_sentiment'")
        report = health.check(ws)
        assert not report.ok
        text = " | ".join(report.problems)
        assert "3 value(s) without a vector" in text
        assert "1 value vector(s) whose value is gone" in text
        assert "values.usearch is missing" in text
        assert "1 dataset(s) left 'ingesting'" in text
        fixed = health.run_repair(ws, embedder)
        assert fixed.ok, fixed.problems
        assert fixed.repaired["values_embedded"] == 3 and fixed.repaired["orphan_vectors_dropped"] == 1
        keys2, vecs2 = vindex.load_value_vectors(ws)
        pos = {int(k): i for i, k in enumerate(keys2)}
        for k, v in zip(keys[:3], vecs[:3], strict=True):  # re-embedded vectors equal the originals
            assert float(vecs2[pos[int(k)]] @ v) > 0.999
        with ws.store.cursor() as cur:
            assert cur.execute("select status from datasets where name = 'movie_sentiment'").fetchall()[0][0] == "ready"


def test_cli_datasets_remove_check(small_datastore, capsys):
    ws = str(small_datastore)
    assert main(["-w", ws, "datasets", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["datasets"]) == len(SMALL_DATASETS) and doc["embedder"] == "all-MiniLM-L6-v2"
    assert "card" not in doc["datasets"][0]
    assert main(["-w", ws, "check", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    assert main(["-w", ws, "remove", "yes_no_questions", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["dataset"] == "yes_no_questions"
    assert main(["-w", ws, "remove", "no-such-dataset"]) == 1
    assert "no dataset no-such-dataset" in capsys.readouterr().err
    # damage the index: check exits 1 and names the problem; --repair fixes it (nothing to re-embed)
    (small_datastore / "index" / "descriptions.usearch").unlink()
    assert main(["-w", ws, "check"]) == 1
    assert "descriptions.usearch is missing" in capsys.readouterr().out
    assert main(["-w", ws, "check", "--repair", "--json", "--threads", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    assert main(["-w", ws, "datasets"]) == 0
    assert "multiple_choice_qa" in capsys.readouterr().out
