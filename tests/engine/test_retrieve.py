"""Retrieval end to end on an ingested workspace of the test corpus, checked against an independent brute force.

The brute force is the paper's procedure written out plainly: embed the task texts with the real embedder,
take every cell's stored vector, compute the cosine of every cell with every example, average over the
examples, take the maximum over the row's cells, add the cosine of the instruction with the dataset's
description, average the three. It shares no code with engine/retrieval/scoring.py or engine/retrieval/retriever.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import corpus, shared_data

TASKS = ("mnli", "squad", "boolean_expressions")


def _answer_part(output: str) -> str:
    """What an example output contributes to the output score, as the paper's released code took it (written
    independently of engine.tasks): everything after the last "answer is ", as it stands."""
    at = output.rfind("answer is ")
    return output if at < 0 else output[at + len("answer is "):]


def brute_force(ws, embedder, spec: dict, weights=(1.0, 1.0, 1.0)) -> dict[int, dict]:
    """Every row's scores the paper's way: {rows.id: {"in", "out", "ds", "final", "cols_in", "cols_out"}}."""
    from engine.datastore.vindex import load_description_vectors, load_value_vectors

    vkeys, vvecs = load_value_vectors(ws)
    vec = {int(k): v for k, v in zip(vkeys.tolist(), vvecs, strict=True)}
    dkeys, dvecs = load_description_vectors(ws)
    desc = {int(k): v for k, v in zip(dkeys.tolist(), dvecs, strict=True)}
    with ws.store.cursor() as cur:
        cells = cur.execute('select c."row", c."column", c.value, r.dataset from cells c '
                            'join rows r on r.id = c."row" join datasets d on d.id = r.dataset '
                            "where d.status = 'ready'").fetchall()

    def unit(m):
        m = np.asarray(m, dtype=np.float64)
        return m / np.linalg.norm(m, axis=-1, keepdims=True)

    x = unit(embedder.encode([e["input"] for e in spec["examples"]]))
    y = unit(embedder.encode([_answer_part(e["output"]) for e in spec["examples"]]))
    instr = unit(embedder.encode([spec["instruction"]]))[0]
    per_row: dict[int, dict] = {}
    for row, column, value, dataset in cells:
        c = unit(vec[int(value)])
        s_in = float(np.mean([float(c @ xj) for xj in x]))
        s_out = float(np.mean([float(c @ yj) for yj in y]))
        r = per_row.setdefault(int(row), {"in": -9.0, "out": -9.0, "dataset": int(dataset), "cells": {}})
        r["cells"][column] = (s_in, s_out)
        r["in"], r["out"] = max(r["in"], s_in), max(r["out"], s_out)
    w_in, w_out, w_ds = weights
    for r in per_row.values():
        r["ds"] = float(unit(desc[r["dataset"]]) @ instr)
        r["final"] = (w_in * r["in"] + w_out * r["out"] + w_ds * r["ds"]) / (w_in + w_out + w_ds)
    return per_row


def assert_matches_brute_force(result, brute: dict[int, dict], k: int = 100, allowed=None) -> None:
    """Our top k equals the brute-force top k: same scores rank by rank, each row's own scores and
    explanations agree, and no row left out beats the last one kept."""
    rows = {key: r for key, r in brute.items() if allowed is None or allowed(key)}
    ranked = sorted(rows.values(), key=lambda r: -r["final"])[:k]
    hits = result.results[:k]
    assert len(hits) == min(k, len(rows))
    for hit, ref in zip(hits, ranked, strict=True):
        assert hit.score == pytest.approx(ref["final"], abs=2e-5)
        b = rows[hit.key]
        assert hit.score == pytest.approx(b["final"], abs=2e-5)
        assert hit.input_score == pytest.approx(b["in"], abs=2e-5)
        assert hit.output_score == pytest.approx(b["out"], abs=2e-5)
        assert hit.dataset_score == pytest.approx(b["ds"], abs=2e-5)
        assert b["cells"][hit.input_column][0] == pytest.approx(b["in"], abs=2e-5)
        assert b["cells"][hit.output_column][1] == pytest.approx(b["out"], abs=2e-5)
    kept = {h.key for h in hits}
    floor = hits[-1].score
    assert not [key for key, r in rows.items() if key not in kept and r["final"] > floor + 2e-5]


def _spec(name: str) -> dict:
    return json.loads(corpus("tasks", f"{name}.json").read_text())


@pytest.fixture
def ws(small_datastore):
    from engine.workspace import Workspace

    with Workspace(small_datastore) as w:
        yield w


@pytest.fixture
def retriever(ws, embedder):
    from engine.retrieval.retriever import Retriever

    return Retriever(ws)


# -- the score -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", TASKS)
def test_top_100_equals_brute_force(ws, retriever, embedder, name):
    spec = _spec(name)
    result = retriever.search(spec, top=100)
    assert result.exact and result.task == name
    assert_matches_brute_force(result, brute_force(ws, embedder, spec))


def test_weights_change_the_mean(ws, retriever, embedder):
    spec = _spec("squad")
    result = retriever.search(spec, top=50, weights="2,1,0.5")
    assert_matches_brute_force(result, brute_force(ws, embedder, spec, (2.0, 1.0, 0.5)), k=50)
    only_input = retriever.search(spec, top=10, weights=[1, 0, 0])
    assert all(h.score == pytest.approx(h.input_score, abs=1e-6) for h in only_input)


def test_results_carry_the_source_row_and_its_provenance(ws, retriever):
    result = retriever.search(_spec("mnli"), top=20)
    with ws.store.cursor() as cur:
        for h in result:
            ((name,), (cfg, split), (row_id, data)) = (
                cur.execute("select d.name from rows r join datasets d on d.id = r.dataset where r.id = ?",
                            [h.key]).fetchall()[0:1]
                + cur.execute("select c.name, c.split from rows r join configs c on c.id = r.config "
                              "where r.id = ?", [h.key]).fetchall()
                + cur.execute("select row_id, data from rows where id = ?", [h.key]).fetchall())
            assert (h.dataset_id, h.config, h.split, h.row_id) == (name, cfg, split, row_id)
            assert h.row == json.loads(data)
            assert h.input_text == cur.execute(
                'select v.text from cells c join cell_values v on v.id = c.value where c."row" = ? '
                'and c."column" = ?', [h.key, h.input_column]).fetchall()[0][0]
    assert [h.rank for h in result] == list(range(1, 21))
    doc = result.to_json()
    assert set(doc) == {"task", "top", "exact", "exclude", "seconds", "results"}
    assert set(doc["seconds"]) == {"embed", "score"}
    assert set(doc["results"][0]) == {"rank", "dataset_id", "config", "row_id", "score", "input_score",
                                      "output_score", "dataset_score", "input_column", "output_column", "row"}


# -- bans and diversity ----------------------------------------------------------------------------
def test_excluded_datasets_never_appear(ws, retriever, embedder):
    spec = _spec("mnli")
    full = retriever.search(spec, top=100)
    counts: dict[str, int] = {}
    for h in full:
        counts[h.dataset_id] = counts.get(h.dataset_id, 0) + 1
    banned = sorted(counts, key=counts.get, reverse=True)[:2]
    # ban one by its last path component, one through the task's own list
    spec_banned = dict(spec, source_datasets_to_exclude=[banned[0]])
    result = retriever.search(spec_banned, top=100, exclude=[banned[1].rsplit("/", 1)[-1]])
    assert set(result.exclude) >= {banned[0], banned[1].rsplit("/", 1)[-1]}
    assert not [h for h in result if h.dataset_id in banned]
    with ws.store.cursor() as cur:
        ds_of = dict(cur.execute("select r.id, d.name from rows r join datasets d on d.id = r.dataset").fetchall())
    assert_matches_brute_force(result, brute_force(ws, embedder, spec), allowed=lambda k: ds_of[k] not in banned)
    approx = retriever.search(spec_banned, top=30, exclude=[banned[1]], approximate=True)
    assert not [h for h in approx if h.dataset_id in banned]
    for approximate in (False, True):
        nothing = retriever.search(spec, top=5, exclude=retriever.dataset_ids, approximate=approximate)
        assert len(nothing) == 0 and nothing.exact


def test_per_dataset_cap_and_dedupe_are_the_greedy_filter_of_the_full_ranking(retriever):
    spec = _spec("boolean_expressions")
    everything = retriever.search(spec, top=10_000, fetch_rows=False)
    capped = retriever.search(spec, top=40, per_dataset_cap=3, dedupe=True)
    expected, per_ds, seen = [], {}, set()
    for h in everything:
        if per_ds.get(h.dataset_id, 0) >= 3 or h.input_text in seen:
            continue
        seen.add(h.input_text)
        per_ds[h.dataset_id] = per_ds.get(h.dataset_id, 0) + 1
        expected.append(h.key)
        if len(expected) == 40:
            break
    assert [h.key for h in capped] == expected
    assert max(sum(1 for h in capped if h.dataset_id == d) for d in {h.dataset_id for h in capped}) <= 3
    assert len({h.input_text for h in capped}) == len(capped)
    assert [h.rank for h in capped] == list(range(1, len(capped) + 1))


# -- the approximate path --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mnli", "boolean_expressions"])
def test_approximate_is_exact_when_it_says_so(retriever, name, monkeypatch):
    import engine.retrieval.retriever as r

    # the small datastore has ~150 rows: start from few candidates so that the HNSW path really prunes
    monkeypatch.setattr(r, "APPROX_MIN_CANDIDATES", 8)
    monkeypatch.setattr(r, "APPROX_FACTOR", 1)
    spec = _spec(name)
    exact = retriever.search(spec, top=5)
    approx = retriever.search(spec, top=5, approximate=True)
    assert approx.approximate and approx.exact
    assert approx.candidates < retriever.index.n_rows  # it really pruned
    assert [h.key for h in approx] == [h.key for h in exact]
    assert [h.score for h in approx] == [h.score for h in exact]  # bit for bit
    assert [(h.input_column, h.output_column) for h in approx] == [(h.input_column, h.output_column)
                                                                    for h in exact]


def test_approximate_reports_not_exact_when_the_bound_cannot_be_met(retriever, monkeypatch):
    import engine.retrieval.retriever as r

    spec = _spec("squad")
    # one candidate value per query and no retries: the bound (k-th value scores) is far above the top 50
    monkeypatch.setattr(r, "APPROX_FACTOR", 0)
    monkeypatch.setattr(r, "APPROX_MIN_CANDIDATES", 1)
    monkeypatch.setattr(r, "APPROX_MAX_ROUNDS", 1)
    approx = retriever.search(spec, top=50, approximate=True)
    assert not approx.exact


# -- caching, the pool -----------------------------------------------------------------------------
def test_query_vectors_are_cached_in_the_workspace(ws, retriever):
    from engine.retrieval.retriever import Retriever

    spec = _spec("squad")
    first = retriever.search(spec, top=10)
    again = Retriever(ws)  # a new process would start like this: nothing in memory
    second = again.search(spec, top=10)
    assert again._embedder is None, "the model was loaded although every text was cached"
    assert [h.score for h in second] == [h.score for h in first]
    changed = dict(spec, instruction=spec["instruction"] + " Be brief.")
    again.search(changed, top=10)
    assert again._embedder is not None


def test_the_query_vector_table_is_bounded(ws, retriever, monkeypatch):
    import engine.retrieval.retriever as r

    monkeypatch.setattr(r, "QUERY_TABLE_MAX", 5)
    spec = _spec("mnli")
    for i in range(3):  # what live typing does: a new instruction draft each time
        retriever.search(dict(spec, instruction=spec["instruction"][: 20 + i]), top=3)
    assert ws.store.table_counts(["query_vectors"]) == {"query_vectors": 5}
    import hashlib

    newest = hashlib.sha256(spec["instruction"][:22].encode()).hexdigest()
    with ws.store.cursor() as cur:
        assert cur.execute("select count(*) from query_vectors where text_hash = ?", [newest]).fetchall()[0][0] == 1


def test_store_pool_replaces_the_tasks_pool(ws, retriever):
    from engine.retrieval.pool import load_pool, store_pool
    from engine.tasks import get_task, validate

    task = validate(_spec("mnli"))
    assert store_pool(ws, task, retriever.search(task, top=30)) == 30
    assert get_task(ws, "mnli") == task
    result = retriever.search(task, top=12, per_dataset_cap=2)
    store_pool(ws, task, result)
    pool = load_pool(ws, "mnli")
    assert [p.rank for p in pool] == list(range(1, 13))
    assert [(p.row, p.row_id, p.dataset_id, p.input_column) for p in pool] == \
        [(h.key, h.row_id, h.dataset_id, h.input_column) for h in result]
    assert pool[0].score == pytest.approx(result.results[0].score)
    assert pool[0].data == result.results[0].row


def test_stale_after_the_datastore_changes(ws, retriever):
    assert not retriever.is_stale()
    with ws.store.cursor() as cur:
        cur.execute("update datasets set status = 'ingesting' where id = (select min(id) from datasets)")
    assert retriever.is_stale()


# -- the command -----------------------------------------------------------------------------------
def _cli(capsys, *argv):
    from rebase_tui.cli import main

    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_json_and_table(small_datastore, embedder, capsys):
    task_file = corpus("tasks", "mnli.json")
    rc, out, err = _cli(capsys, "-w", small_datastore, "retrieve", task_file, "--top", "7", "--json",
                        "--exclude", "yes_no_questions", "--weights", "1,1,1")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["task"] == "mnli" and doc["top"] == 7 and doc["exact"] is True
    assert len(doc["results"]) == 7 and all(r["dataset_id"] != "yes_no_questions" for r in doc["results"])
    assert isinstance(doc["results"][0]["row"], dict) and isinstance(doc["results"][0]["row_id"], int)
    rc, out, err = _cli(capsys, "-w", small_datastore, "retrieve", "mnli", "--top", "5", "--approximate",
                        "--per-dataset-cap", "1", "--exclude", "no_such_dataset")
    assert rc == 0, err
    assert "--exclude no_such_dataset matches no dataset" in err
    assert "rank" in out and "input cell" in out
    assert "5 rows stored as the pool of task mnli" in err
    rc, out, _ = _cli(capsys, "-w", small_datastore, "task", "show", "mnli", "--json")
    assert rc == 0 and json.loads(out)["name"] == "mnli"


def test_cli_bad_input_gets_one_clear_message(small_datastore, workspace, tmp_path, embedder, capsys,
                                              monkeypatch):
    rc, out, err = _cli(capsys, "-w", small_datastore, "retrieve", "no_such_task")
    assert rc == 1 and not out and err.count("\n") == 1 and "unknown task 'no_such_task'" in err

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "bad", "instruction": "", "examples": []}))
    rc, out, err = _cli(capsys, "-w", small_datastore, "retrieve", bad)
    assert rc == 1 and err.count("\n") == 1 and "missing or empty instruction" in err and "no examples" in err

    rc, out, err = _cli(capsys, "-w", small_datastore, "retrieve", "mnli.json")
    assert rc == 1 and "does not exist" in err

    empty = workspace.path
    workspace.close()
    rc, out, err = _cli(capsys, "-w", empty, "retrieve", corpus("tasks", "mnli.json"))
    assert rc == 1 and err.count("\n") == 1 and "no ingested datasets" in err and "rebase-tui ingest" in err

    monkeypatch.setenv("REBASE_EMBEDDER", "sentence-transformers/paraphrase-MiniLM-L3-v2")
    rc, out, err = _cli(capsys, "-w", small_datastore, "retrieve", corpus("tasks", "mnli.json"))
    assert rc == 1 and err.count("\n") == 1
    assert "was built with embedder all-MiniLM-L6-v2" in err.replace("'", "") and "paraphrase-MiniLM" in err

    monkeypatch.delenv("REBASE_EMBEDDER")
    rc, out, err = _cli(capsys, "-w", small_datastore, "retrieve", corpus("tasks", "mnli.json"), "--weights", "1,2")
    assert rc == 1 and err.count("\n") == 1 and "IN,OUT,DS" in err
    with pytest.raises(SystemExit):
        _cli(capsys, "-w", small_datastore, "retrieve", corpus("tasks", "mnli.json"), "--top", "0")
    assert "must be at least 1" in capsys.readouterr().err


# -- the shared datastore (slow: a ~30-minute ingest unless REBASE_SHARED_WS points at one) --------------
@pytest.mark.slow
def test_shared_datastore_top_100_exact_and_approximate(tmp_path, embedder):
    from engine.retrieval.retriever import Retriever
    from engine.workspace import Workspace

    root = shared_data("datastore")
    path = Path(os.environ["REBASE_SHARED_WS"]) if os.environ.get("REBASE_SHARED_WS") else tmp_path / "ws"
    with Workspace(path) as ws:
        if not os.environ.get("REBASE_SHARED_WS"):
            from engine.datastore.ingest import run_ingest

            run_ingest(ws, sorted(p for p in root.iterdir() if p.is_dir()), embedder=embedder)
        retriever = Retriever(ws)
        for name in TASKS:
            spec = json.loads(shared_data("tasks", f"{name}.json").read_text())
            result = retriever.search(spec, top=100)
            assert result.seconds["score"] < 1.0
            assert_matches_brute_force(result, brute_force(ws, embedder, spec))
            approx = retriever.search(spec, top=100, approximate=True)
            assert approx.exact
            assert [h.key for h in approx] == [h.key for h in result]
        assert retriever.n_values > 100_000, "this is not the whole shared datastore"
