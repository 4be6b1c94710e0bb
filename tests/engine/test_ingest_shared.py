"""The whole shared datastore (224 datasets) beside the repository: the acceptance counts.

All three need the shared data folder, so all are marked slow (``pytest -m slow
tests/engine/test_ingest_shared.py``): the reader test takes seconds, the stage-only test runs the real
ingest path without embedding, the full test embeds all 110 k distinct values (about 30 minutes on 2
cores). The same reader check on the committed test corpus runs in every clone (test_ingest.py).
"""

from __future__ import annotations

import os
import time

import pytest

from engine.datastore.ingest import StagedCounts, run_ingest
from engine.datastore.readers import read_split
from engine.datastore.sources import discover
from engine.workspace import Workspace
from tests.conftest import shared_data

ACCEPTANCE = {"datasets": 224, "configs": 390, "rows": 37_648, "cells": 264_763, "values": 110_299}


@pytest.mark.slow
def test_readers_find_the_acceptance_counts():
    found = discover([shared_data("datastore")])
    assert found.skipped == [] and len(found.notes) == 1  # catalog.jsonl beside the dataset folders
    rows = cells = configs = 0
    values: set[str] = set()
    problems = []
    for ds in found.datasets:
        problems += ds.problems
        for cfg in ds.configs:
            result, failed = read_split(cfg.files, 0, ds.labels)
            problems += failed + result.notes
            configs += 1
            rows += len(result.rows)
            for _, row in result.rows:
                texts = [t for t in row.values() if t is not None]
                cells += len(texts)
                values.update(texts)
    assert problems == []
    got = {"datasets": len(found.datasets), "configs": configs, "rows": rows, "cells": cells,
           "values": len(values)}
    assert got == ACCEPTANCE
    assert len({ds.name for ds in found.datasets}) == 224


@pytest.mark.slow
def test_stage_only_gives_the_acceptance_counts(tmp_path):
    with Workspace(tmp_path / "ws") as ws:
        summary = run_ingest(ws, [shared_data("datastore")], max_rows_per_config=0, embed=False)
    assert {k: summary.to_json()[k] for k in ACCEPTANCE} == ACCEPTANCE
    assert summary.totals.vectors == 0 and summary.staged == StagedCounts(224, 37_648)


@pytest.mark.slow
def test_full_shared_datastore(tmp_path):
    """`rebase-tui ingest ../shared/data/datastore --max-rows-per-config 0`, then again: adds nothing."""
    from engine.datastore.embed import load_embedder, set_torch_threads

    set_torch_threads(int(os.environ.get("REBASE_TEST_THREADS", "0")))  # a lone slow test: all cores
    embedder = load_embedder("all-MiniLM-L6-v2")
    t0 = time.monotonic()
    with Workspace(tmp_path / "ws") as ws:
        summary = run_ingest(ws, [shared_data("datastore")], max_rows_per_config=0, embedder=embedder)
        print(f"full shared datastore: {summary} in {time.monotonic() - t0:.0f} s")
        assert {k: summary.to_json()[k] for k in ACCEPTANCE} == ACCEPTANCE
        assert summary.totals.vectors == 110_523 and summary.skipped == ()
        again = run_ingest(ws, [shared_data("datastore")], max_rows_per_config=0, embedder=embedder)
        assert again.to_json()["added"] == {"datasets": 0, "rows": 0, "values": 0} and again.unchanged == 224
        from engine.datastore import health

        assert health.check(ws).ok
