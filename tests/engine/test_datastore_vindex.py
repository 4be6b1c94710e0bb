"""The vector files: the append-only log (torn tails, readers beside a writer, rewrites) and usearch sync."""

from __future__ import annotations

import numpy as np
import pytest

from engine.datastore import vindex
from engine.datastore.vindex import HEADER, IndexSync, VectorLog
from engine.errors import EngineError


def _unit(n, dim=8, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_append_read_and_torn_tail(tmp_path):
    path = tmp_path / "values.vectors"
    log = VectorLog(path)
    a, b = _unit(5), _unit(3, seed=1)
    log.append(np.arange(5, dtype=np.uint64), a)
    log.append(np.array([10, 11, 12], dtype=np.uint64), b)
    assert path.stat().st_size == HEADER + 8 * (8 + 32)
    # a writer killed mid-record leaves a partial record: readers ignore it, a writer cuts it
    with open(path, "ab") as f:
        f.write(b"\x07" * 20)
    keys, vecs = VectorLog(path, recover=False).read()
    assert keys.tolist() == [0, 1, 2, 3, 4, 10, 11, 12] and np.array_equal(vecs, np.vstack([a, b]))
    assert path.stat().st_size == HEADER + 8 * 40 + 20  # the reader changed nothing
    writer = VectorLog(path)
    assert path.stat().st_size == HEADER + 8 * 40 and writer.count == 8 and writer.dim == 8
    writer.append(np.array([20], dtype=np.uint64), _unit(1, seed=2))
    assert VectorLog(path).keys().tolist() == [0, 1, 2, 3, 4, 10, 11, 12, 20]


def test_keep_only_drops_orphans_and_repeats_atomically(tmp_path):
    log = VectorLog(tmp_path / "v.vectors")
    v = _unit(4)
    log.append(np.array([1, 2, 3, 2], dtype=np.uint64), v)
    assert log.keep_only(np.array([1, 2], dtype=np.uint64)) == 2
    keys, vecs = log.read()
    assert keys.tolist() == [1, 2] and np.array_equal(vecs, v[:2])
    assert not (tmp_path / "v.vectors.tmp").exists()


def test_damaged_header_and_wrong_dimension_are_named(tmp_path):
    path = tmp_path / "v.vectors"
    path.write_bytes(b"NOTAVECTORFILE!!" + b"\x00" * 40)
    with pytest.raises(EngineError, match="damaged") as err:
        VectorLog(path)
    assert "check --repair" in err.value.fix
    VectorLog(tmp_path / "w.vectors").append(np.array([1], dtype=np.uint64), _unit(1))
    with pytest.raises(EngineError, match="8-dimensional"):
        VectorLog(tmp_path / "w.vectors", dim=384)


def test_usearch_sync_is_incremental_and_exact(workspace):
    ws = workspace
    ws.store.set_meta("embedder.dim", "8")
    log = vindex.vector_log(ws, vindex.VALUES)
    v = _unit(50)
    log.append(np.arange(1, 51, dtype=np.uint64), v)
    assert vindex.sync_usearch(ws, vindex.VALUES) == IndexSync(added=50, removed=0)
    assert vindex.sync_usearch(ws, vindex.VALUES) == IndexSync(added=0, removed=0)
    log.keep_only(np.arange(1, 41, dtype=np.uint64))
    log.append(np.array([99], dtype=np.uint64), _unit(1, seed=5))
    assert vindex.sync_usearch(ws, vindex.VALUES) == IndexSync(added=1, removed=10)
    keys = vindex.usearch_keys(vindex.usearch_path(ws, vindex.VALUES))
    assert sorted(keys.tolist()) == [*range(1, 41), 99]
    from usearch.index import Index

    index = Index.restore(str(vindex.usearch_path(ws, vindex.VALUES)), view=True)
    match = index.search(v[6], 1)
    assert int(match.keys[0]) == 7
    k, vecs = vindex.load_value_vectors(ws)
    assert k.dtype == np.uint64 and vecs.dtype == np.float32 and vecs.flags["C_CONTIGUOUS"]
