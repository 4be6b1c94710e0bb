"""The int8 copy on disk (engine/retrieval/compact.py): built from a real value log, kept in sync with appends,
rebuilt when the log is rewritten, and read back the same; the float32 vectors are read from the log."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.datastore.vindex import VectorLog
from engine.retrieval import compact


def _unit(rng, n, d=40):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(compact, "BLOCK", 64)  # several blocks per build and per append


def _sync(log_path, folder):
    """Run a sync; return how many records it quantized."""
    events = list(compact.sync_compact(log_path, folder))
    return events[-1].total if events else 0


def _assert_matches(cv, keys, vectors):
    q = compact.quantize(vectors)
    assert cv.n == len(keys) and cv.dim == vectors.shape[1]
    assert np.array_equal(cv.keys, keys.astype(np.uint64))
    assert np.array_equal(cv.codes, q.codes)
    assert np.array_equal(cv.scale, q.scale) and np.array_equal(cv.err, q.err)
    assert cv.code_norm >= q.code_norm * (1 - 1e-9) and cv.value_norm >= q.value_norm * (1 - 1e-9)
    pos = np.array([0, 3, 4, len(keys) - 1, 17])
    assert np.array_equal(cv.source[pos], vectors[pos])
    assert np.array_equal(cv.source[5:90], vectors[5:90])
    assert cv.source.shape == vectors.shape


def test_built_from_the_log_and_read_back(tmp_path, small_blocks):
    rng = np.random.default_rng(0)
    keys, vectors = np.arange(100, 400, dtype=np.uint64), _unit(rng, 300)
    log_path, folder = tmp_path / "values.vectors", tmp_path / compact.FOLDER
    VectorLog(log_path, 40).append(keys, vectors)
    assert _sync(log_path, folder) == 300
    assert _sync(log_path, folder) == 0  # current: nothing to do
    _assert_matches(compact.open_compact(log_path, folder), keys, vectors)


def test_appends_are_quantized_alone_and_a_rewrite_rebuilds(tmp_path, small_blocks):
    rng = np.random.default_rng(1)
    log_path, folder = tmp_path / "values.vectors", tmp_path / compact.FOLDER
    vlog = VectorLog(log_path, 40)
    keys, vectors = np.arange(200, dtype=np.uint64), _unit(rng, 200)
    vlog.append(keys[:150], vectors[:150])
    assert _sync(log_path, folder) == 150
    vlog.append(keys[150:], vectors[150:])
    assert _sync(log_path, folder) == 50  # only the appended records
    _assert_matches(compact.open_compact(log_path, folder), keys, vectors)

    keep = np.ones(200, dtype=bool)
    keep[[3, 120]] = False  # a removal rewrites the log without two records
    vlog.keep_only(keys[keep])
    assert _sync(log_path, folder) == 198  # rebuilt
    _assert_matches(compact.open_compact(log_path, folder), keys[keep], vectors[keep])


def test_a_killed_sync_leaves_the_last_copy_usable(tmp_path, small_blocks):
    rng = np.random.default_rng(2)
    log_path, folder = tmp_path / "values.vectors", tmp_path / compact.FOLDER
    vlog = VectorLog(log_path, 40)
    keys, vectors = np.arange(120, dtype=np.uint64), _unit(rng, 120)
    vlog.append(keys[:100], vectors[:100])
    _sync(log_path, folder)
    with open(folder / "codes.i8", "ab") as f:  # half an append's data, without its meta.json
        f.write(b"\x7f" * 40 * 7)
    with open(folder / "keys.u64", "ab") as f:
        f.write(b"\x00" * 8 * 7)
    cv = compact.open_compact(log_path, folder)
    _assert_matches(cv, keys[:100], vectors[:100])
    vlog.append(keys[100:], vectors[100:])
    assert _sync(log_path, folder) == 20
    _assert_matches(compact.open_compact(log_path, folder), keys, vectors)


def test_a_damaged_or_foreign_meta_rebuilds(tmp_path, small_blocks):
    rng = np.random.default_rng(3)
    log_path, folder = tmp_path / "values.vectors", tmp_path / compact.FOLDER
    keys, vectors = np.arange(90, dtype=np.uint64), _unit(rng, 90)
    VectorLog(log_path, 40).append(keys, vectors)
    _sync(log_path, folder)
    (folder / "meta.json").write_text("{not json")
    assert _sync(log_path, folder) == 90
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps(meta | {"dim": 41}))
    assert _sync(log_path, folder) == 90
    (folder / "scale.f32").write_bytes(b"")  # a data file cut short
    assert _sync(log_path, folder) == 90
    _assert_matches(compact.open_compact(log_path, folder), keys, vectors)


def test_vector_file_reads_cold_and_warm_alike(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    log_path = tmp_path / "values.vectors"
    vectors = _unit(rng, 700)
    VectorLog(log_path, 40).append(np.arange(700, dtype=np.uint64), vectors)
    vf = compact.VectorFile(log_path, 40, 700)
    pos = np.sort(rng.choice(700, 400, replace=False))
    assert np.array_equal(vf[pos], vectors[pos])
    monkeypatch.setattr(compact, "COLD_READ_S", 0.0)  # take the path of a log that is not cached
    assert np.array_equal(vf[pos], vectors[pos])
    with pytest.raises(IndexError):
        vf[np.array([700])]


# -- a workspace searched through the int8 copy ------------------------------------------------------
def _hits(result):
    return [(h.key, h.score, h.input_score, h.output_score, h.dataset_score, h.input_column, h.output_column,
             h.input_text, h.output_text, h.row) for h in result]


def test_a_workspace_searched_through_the_int8_copy_gives_the_float32_lists(small_datastore, embedder):
    from engine.retrieval.retriever import Retriever
    from engine.workspace import Workspace
    from tests.conftest import corpus

    specs = [json.loads(corpus("tasks", f"{n}.json").read_text()) for n in ("mnli", "squad", "boolean_expressions")]
    options = [{"top": 100}, {"top": 40, "weights": "2,1,0.5"}, {"top": 60, "exclude": ["nli-pairs"]},
               {"top": 50, "per_dataset_cap": 3}, {"top": 40, "per_dataset_cap": 4, "dedupe": True},
               {"top": 10_000}]
    with Workspace(small_datastore) as ws:
        ws.set_setting("retrieval.compact", "off")
        plain = Retriever(ws)
        assert plain.compact is None
        ws.set_setting("retrieval.compact", "on")
        fast = Retriever(ws)
        assert fast.compact is not None and isinstance(fast.values, compact.VectorFile)
        assert (ws.index_dir / compact.FOLDER / "meta.json").exists()
        for spec in specs:
            for kw in options:
                want, got = plain.search(spec, **kw), fast.search(spec, **kw)
                assert got.exact and _hits(got) == _hits(want), (spec["name"], kw)
            approx = fast.search(spec, top=20, approximate=True)  # the HNSW path reads the same float32 file
            if approx.exact:
                assert _hits(approx) == _hits(plain.search(spec, top=20))


def test_auto_turns_the_int8_copy_on_from_a_size_and_a_bad_value_is_refused(small_datastore, embedder,
                                                                            monkeypatch):
    from engine.errors import EngineError
    from engine.retrieval import loading
    from engine.retrieval.retriever import Retriever
    from engine.workspace import Workspace

    with Workspace(small_datastore) as ws:
        assert Retriever(ws).compact is None  # auto, far below the size
        monkeypatch.setattr(loading, "COMPACT_AUTO_VALUES", 10)
        assert Retriever(ws).compact is not None
        ws.set_setting("retrieval.compact", "fast")
        with pytest.raises(EngineError, match="retrieval.compact is 'fast'") as info:
            Retriever(ws)
        assert "rebase-tui config retrieval.compact auto" in info.value.fix
