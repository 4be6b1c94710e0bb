"""The optional OpenVINO backend: the same vectors as torch (fp32) or close to them (bf16), float32 and unit
length, an ingest through it, and no usage reports (its telemetry module is never loaded)."""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest

from engine.datastore.embed import load_embedder
from engine.demo import demo_corpus_dir
from engine.workspace import Workspace
from rebase_tui.cli import main
from tests.engine.test_embed_precision import _demo_texts

pytestmark = pytest.mark.skipif(importlib.util.find_spec("openvino") is None,
                                reason='the openvino extra is not installed (pip install "rebase-tui[openvino]")')


def test_openvino_vectors_match_torch(embedder):
    texts = _demo_texts()
    reference = embedder.encode(texts)
    fp32 = load_embedder("all-MiniLM-L6-v2", "cpu", precision="fp32", backend="openvino")
    bf16 = load_embedder("all-MiniLM-L6-v2", "cpu", precision="bf16", backend="openvino")
    assert (fp32.compute.label, bf16.compute.label) == ("openvino/fp32", "openvino/bf16")
    a, b = fp32.encode(texts, batch_size=16), bf16.encode(texts, batch_size=16)
    for v in (a, b):
        assert v.dtype == np.float32 and v.shape == reference.shape
        assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert float((a * reference).sum(axis=1).min()) > 0.9999
    assert float((b * reference).sum(axis=1).min()) > 0.99
    assert "openvino_telemetry" in sys.modules and sys.modules["openvino_telemetry"] is None


def test_ingest_with_the_openvino_backend(tmp_path, capsys):
    ws_dir = tmp_path / "ws"
    corpus = demo_corpus_dir() / "demo__word-problems"
    assert main(["-w", str(ws_dir), "ingest", str(corpus), "--backend", "openvino", "--precision", "fp32",
                 "--threads", "1", "--json"]) == 0
    e = json.loads(capsys.readouterr().out)["embedding"]
    assert (e["backend"], e["precision"], e["values"] > 0) == ("openvino", "fp32", True)
    with Workspace(ws_dir) as ws:
        assert ws.store.get_meta("embedder.made_with") == "openvino/fp32"
