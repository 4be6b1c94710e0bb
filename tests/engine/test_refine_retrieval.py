"""A refinement round's retrieval on the ingested test corpus: the failures scored as examples beside the task's
own, checked against the paper's procedure written out plainly (tests/engine/test_retrieve.py's brute force),
the stored path equal to a full rescore while scoring fewer rows, and the closest failure of every row."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.retrieval import refine
from engine.retrieval.pool import load_pool, store_pool
from engine.retrieval.refine import Failure, refine_search
from tests.conftest import corpus
from tests.engine.test_retrieve import brute_force


@pytest.fixture
def ws(small_datastore):
    from engine.workspace import Workspace

    with Workspace(small_datastore) as w:
        yield w


def failures() -> list[Failure]:
    rows = [json.loads(line) for line in corpus("teacher_outputs", "mnli.jsonl").read_text().splitlines()[:4]]
    return [Failure(r["input"], r["output"]) for r in rows]


@pytest.mark.parametrize("top", [15, 60])
def test_a_round_adds_the_rows_nearest_the_failures_exactly(ws, embedder, monkeypatch, top):
    from engine.retrieval.retriever import Retriever
    from engine.tasks import read_task_file

    task = read_task_file(corpus("tasks", "mnli.json"))
    retriever = Retriever(ws)
    store_pool(ws, task, retriever.search(task, top=20))
    pool = {p.row for p in load_pool(ws, "mnli")}
    fails = failures()
    monkeypatch.setattr(refine, "MIN_CANDIDATES", 8)      # few candidates: the bound must bring in the rest
    monkeypatch.setattr(refine, "FACTOR", 1)
    stored = refine_search(retriever, task, fails, top=top, exclude_rows=pool, bans=["movie_sentiment"])
    full = refine_search(retriever, task, fails, top=top, exclude_rows=pool, bans=["movie_sentiment"], full=True)
    assert stored.method == "stored" and not stored.stored_reused and full.method == "full"
    assert [h.key for h in stored.hits] == [h.key for h in full.hits] and len(stored.hits) == top
    assert [h.score for h in stored.hits] == pytest.approx([h.score for h in full.hits], abs=1e-6)
    assert stored.rescored < retriever.index.n_rows, "the stored scores spared rows a rescore"
    again = refine_search(retriever, task, fails, top=top, exclude_rows=pool, bans=["movie_sentiment"])
    assert again.stored_reused and [h.key for h in again.hits] == [h.key for h in stored.hits]

    # the paper's scoring with the failures as examples beside the task's own, written out plainly
    spec = task.to_json()
    spec["examples"] = spec["examples"] + [{"input": f.input, "output": f.output} for f in fails]
    brute = brute_force(ws, embedder, spec)
    with ws.store.cursor() as cur:
        dataset_of = dict(cur.execute("select r.id, d.name from rows r join datasets d on d.id = r.dataset")
                          .fetchall())
    allowed = {k: r for k, r in brute.items() if k not in pool and dataset_of[k] != "movie_sentiment"}
    ranked = sorted(allowed, key=lambda k: -allowed[k]["final"])[:top]
    assert [allowed[h.key]["final"] for h in stored.hits] == pytest.approx([allowed[k]["final"] for k in ranked],
                                                                             abs=2e-5)
    for h in stored.hits:
        assert h.key not in pool and dataset_of[h.key] != "movie_sentiment"
        assert (h.input_score, h.output_score) == pytest.approx((brute[h.key]["in"], brute[h.key]["out"]), abs=2e-5)

    # the failure each row is closest to: the best cosine of a failure's input with any of the row's cells
    from engine.datastore.vindex import load_value_vectors

    keys, vecs = load_value_vectors(ws)
    vec = dict(zip(keys.tolist(), vecs, strict=True))
    f_vecs = embedder.encode([f.input for f in fails])
    with ws.store.cursor() as cur:
        for h in stored.hits:
            cells = [vec[v] for (v,) in cur.execute('select value from cells where "row" = ?', [h.key]).fetchall()]
            sims = np.array([[float(c @ f) for f in f_vecs] for c in cells]).max(axis=0)
            assert h.failure == int(sims.argmax()) and h.closeness == pytest.approx(float(sims.max()), abs=1e-5)


def test_stored_scores_follow_the_task_and_the_datastore(ws, embedder):
    from engine.retrieval.retriever import Retriever
    from engine.tasks import read_task_file

    task = read_task_file(corpus("tasks", "mnli.json"))
    retriever = Retriever(ws)
    q = retriever.queries(task)
    t_in, t_out, reused = refine.task_scores(retriever, task, q)
    assert not reused and t_in.shape == (retriever.index.n_rows,)
    assert refine.task_scores(retriever, task, q)[2], "unchanged: read back"
    other = read_task_file(corpus("tasks", "squad.json"))
    changed = type(task)(task.name, other.instruction, other.examples)
    assert not refine.task_scores(retriever, changed, retriever.queries(changed))[2], "new queries: made again"
    full = refine_search(retriever, task, failures(), top=5, full=True)
    assert full.rescored == retriever.index.n_rows
