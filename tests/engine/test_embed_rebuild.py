"""`ingest --re-embed`: every vector rebuilt (another precision or model), retrieval keeps the old ones until
the rebuild is complete, and a rebuild killed mid-way — while embedding or while swapping — resumes."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from engine.datastore import health, provenance, vindex
from engine.datastore.ingest import ingest, run_ingest
from engine.demo import demo_corpus_dir
from engine.errors import EngineError
from engine.events import Progress
from engine.workspace import Workspace


@pytest.fixture(scope="module")
def fp32_template(tmp_path_factory, embedder):
    """The demo corpus ingested in fp32 (the session's embedder); copied by each test."""
    path = tmp_path_factory.mktemp("rebuild") / "ws"
    with Workspace(path) as ws:
        run_ingest(ws, [demo_corpus_dir()], embedder=embedder)
    return path


@pytest.fixture
def ws_dir(fp32_template, tmp_path):
    dst = tmp_path / "ws"
    shutil.copytree(fp32_template, dst)
    return dst


def _vectors(ws: Workspace) -> dict[int, np.ndarray]:
    keys, vecs = vindex.load_value_vectors(ws)
    return dict(zip(keys.tolist(), vecs, strict=True))


def test_re_embed_rebuilds_every_vector_at_another_precision(ws_dir):
    with Workspace(ws_dir, {"embedder.precision": "bf16"}) as ws:
        before = _vectors(ws)
        counts = {k: n for k, n in ws.store.table_counts().items() if k != "meta"}
        summary = run_ingest(ws, [demo_corpus_dir()], re_embed=True, chunk_values=200)
        after = _vectors(ws)
        assert summary.added.values == len(before) and summary.embedding is not None
        assert summary.embedding.precision == "bf16" and summary.embedding.descriptions == 8
        assert {k: n for k, n in ws.store.table_counts().items() if k != "meta"} == counts
        assert summary.unchanged == 8
        assert after.keys() == before.keys()
        cos = np.array([float(after[k] @ before[k]) for k in before])
        assert cos.min() > 0.99 and not np.array_equal(after[next(iter(after))], before[next(iter(before))])
        assert provenance.vector_source(ws).made_with == ("torch/bf16",)
        assert provenance.vector_source(ws).rebuild is None
        assert health.check(ws).ok  # the usearch files were rebuilt from the new vectors
        assert not list(ws.index_dir.glob("*.rebuild"))


def test_a_killed_rebuild_leaves_the_live_vectors_and_resumes(ws_dir):
    with Workspace(ws_dir, {"embedder.precision": "bf16"}) as ws:
        before = _vectors(ws)
        events = ingest(ws, [demo_corpus_dir()], re_embed=True, chunk_values=100, batch_size=16)
        for ev in events:
            if isinstance(ev, Progress) and ev.stage == "embed" and 0 < ev.done < ev.total:
                break
        events.close()  # the consumer stops mid-rebuild, as a kill would
        rebuild = provenance.vector_source(ws).rebuild
        assert rebuild is not None and rebuild.state == "embedding"
        assert _vectors(ws).keys() == before.keys()  # retrieval still reads the untouched fp32 vectors
        assert all(np.array_equal(v, before[k]) for k, v in _vectors(ws).items())
        partial = provenance.rebuild_log(ws, vindex.VALUES, 384).count
        assert 0 < partial < len(before)

        plain = run_ingest(ws, [demo_corpus_dir()])  # without --re-embed: nothing is rebuilt or lost
        assert plain.embedding is None and provenance.vector_source(ws).rebuild is not None

        done = run_ingest(ws, [demo_corpus_dir()], re_embed=True, chunk_values=100, batch_size=16)
        assert done.added.values == len(before) - partial  # only what the killed run had not embedded
        assert _vectors(ws).keys() == before.keys() and health.check(ws).ok
        assert provenance.vector_source(ws).made_with == ("torch/bf16",)


def test_a_rebuild_killed_while_swapping_is_finished_by_the_next_ingest(ws_dir, monkeypatch):
    import os

    real_replace = os.replace
    calls = []

    def replace_once(src, dst):
        calls.append(src)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed between swapping the descriptions and the values
        real_replace(src, dst)

    with Workspace(ws_dir, {"embedder.precision": "bf16"}) as ws:
        n = len(_vectors(ws))
        monkeypatch.setattr(provenance.os, "replace", replace_once)
        with pytest.raises(KeyboardInterrupt):
            run_ingest(ws, [demo_corpus_dir()], re_embed=True)
        monkeypatch.setattr(provenance.os, "replace", real_replace)
        assert provenance.vector_source(ws).rebuild.state == "swapping"
        summary = run_ingest(ws, [demo_corpus_dir()])
        assert summary.embedding is None  # nothing embedded again: the swap was finished
        assert provenance.vector_source(ws).made_with == ("torch/bf16",) and len(_vectors(ws)) == n
        assert health.check(ws).ok


def test_another_model_is_refused_without_re_embed_and_rebuilt_with_it(ws_dir, tmp_path, embedder):
    other = tmp_path / "my-minilm"  # another model as far as the workspace knows: a local directory
    shutil.copytree(embedder.path, other)
    with Workspace(ws_dir, {"embedder.model": str(other), "embedder.precision": "fp32"}) as ws:
        with pytest.raises(EngineError) as err:
            run_ingest(ws, [demo_corpus_dir()])
        assert "all-MiniLM-L6-v2" in err.value.message and "--re-embed" in err.value.fix
        summary = run_ingest(ws, [demo_corpus_dir()], re_embed=True)
        assert summary.embedding is not None and summary.embedding.values > 0
        assert provenance.vector_source(ws).model == str(other.resolve())
        assert health.check(ws).ok
