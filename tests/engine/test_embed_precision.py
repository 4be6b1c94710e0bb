"""Embedding precision and batching: what `auto` picks, what is refused, and that reduced-precision vectors
are float32 unit vectors that rank like fp32 ones (the real MiniLM, the committed demo corpus)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.datastore import health, provenance, vindex
from engine.datastore.backends import choose_compute
from engine.datastore.embed import load_embedder, plan_batches
from engine.datastore.ingest import run_ingest
from engine.demo import demo_corpus_dir
from engine.errors import EngineError
from engine.info import embedding_info
from engine.workspace import Workspace
from rebase_tui.cli import main

AMX = frozenset({"avx512f", "amx_tile", "amx_bf16", "avx512_bf16"})


def test_auto_picks_bf16_only_on_cpus_with_bf16_instructions():
    assert choose_compute("torch", "cpu", "auto", AMX).precision == "bf16"
    assert choose_compute("torch", "cpu", "auto", frozenset({"avx512_bf16"})).precision == "bf16"
    plain = choose_compute("torch", "cpu", "auto", frozenset({"avx2", "avx512f"}))
    assert plain.precision == "fp32" and "no AMX/AVX-512 BF16" in plain.reason
    assert choose_compute("torch", "cuda", "auto", frozenset()).precision == "fp16"
    assert choose_compute("openvino", "auto", "auto", AMX).label == "openvino/bf16"
    assert choose_compute("torch", "cpu", "fp32", AMX).reason == "asked for"


@pytest.mark.parametrize(("backend", "device", "precision", "words"), [
    ("torch", "cpu", "fp16", ("fp16", "CUDA GPU")),
    ("torch", "cpu", "int8", ("int8",)),
    ("onnx", "cpu", "auto", ("onnx",)),
    ("openvino", "cuda", "auto", ("openvino", "cuda")),
])
def test_what_cannot_run_here_is_refused_in_one_line(backend, device, precision, words):
    with pytest.raises(EngineError) as err:
        choose_compute(backend, device, precision, AMX)
    assert all(w in err.value.message for w in words) and err.value.fix
    assert "\n" not in str(err.value)


def test_batches_are_sorted_by_length_and_fill_a_token_budget():
    lengths = [5, 50, 7, 300, 12, 12, 1]
    assert plan_batches(lengths, 3) == [[3, 1, 4], [5, 2, 0], [6]]
    batches = plan_batches(lengths, 3, max_tokens=100)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert batches[0] == [3]  # longer than the budget alone: a batch of its own, never dropped
    assert all(len(b) * max(lengths[i] for i in b) <= 100 for b in batches[1:])
    assert len(batches[-1]) > 3  # short texts fill the budget beyond the batch size


def test_token_batches_count_real_tokens(embedder):
    texts = ["short", "a somewhat longer sentence about tokens", "x " * 200, "mid length text here"] * 5
    embedder.batch_tokens = 256  # the CUDA path's planning, exercised on the CPU
    try:
        batches = embedder.batches(texts, 64)
    finally:
        embedder.batch_tokens = 0
    tok = embedder.model.tokenizer
    lengths = [len(ids) for ids in tok(texts, truncation=True, max_length=embedder.model.max_seq_length)["input_ids"]]
    assert sorted(i for b in batches for i in b) == list(range(len(texts)))
    assert all(len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 256 for b in batches)


def _demo_texts() -> list[str]:
    """Every distinct cell of two committed demo files (word problems, entailment pairs)."""
    import csv

    texts: set[str] = set()
    for name in ("demo__word-problems", "demo__entailment-pairs"):
        with open(demo_corpus_dir() / name / "train.csv", encoding="utf-8") as f:
            texts.update(v for row in csv.DictReader(f) for v in row.values() if v)
    return sorted(texts)


def test_bf16_vectors_are_float32_unit_vectors_that_keep_the_ranking(embedder):
    bf16 = load_embedder("all-MiniLM-L6-v2", "cpu", precision="bf16")
    assert bf16.compute.label == "torch/bf16" and embedder.compute.label == "torch/fp32"
    texts = _demo_texts()
    a, b = embedder.encode(texts), bf16.encode(texts)
    assert b.dtype == np.float32 and np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert float((a * b).sum(axis=1).min()) > 0.99
    queries = embedder.encode(["how many apples are left?", "does the premise entail the hypothesis?"])
    for q in queries:
        top_a, top_b = set(np.argsort(-(a @ q))[:20]), set(np.argsort(-(b @ q))[:20])
        assert len(top_a & top_b) >= 17


def test_precisions_mix_in_one_workspace_and_are_recorded(tmp_path, embedder, capsys):
    corpus = sorted(p for p in demo_corpus_dir().iterdir() if p.is_dir())
    ws_dir = tmp_path / "ws"
    with Workspace(ws_dir) as ws:
        run_ingest(ws, corpus[:4], embedder=embedder)
    assert main(["-w", str(ws_dir), "ingest", *map(str, corpus[4:]), "--precision", "bf16", "--threads", "1",
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    e = doc["embedding"]
    assert (e["backend"], e["precision"], e["device"], e["executor"]) == ("torch", "bf16", "cpu", "local")
    assert e["values"] == doc["added"]["values"] > 0 and e["descriptions"] == 4
    assert e["seconds"] > 0 and e["values_per_s"] == pytest.approx((e["values"] + 4) / e["seconds"], rel=0.01)
    with Workspace(ws_dir) as ws:
        source = provenance.vector_source(ws)
        assert source.made_with == ("torch/bf16", "torch/fp32") and source.model == "all-MiniLM-L6-v2"
        assert health.check(ws).ok
        info = embedding_info(ws)
        assert info["vectors"]["made_with"] == ["torch/bf16", "torch/fp32"]
        assert info["ingest"]["precision"] in ("bf16", "fp32") and info["ingest"]["reason"]
        keys, vecs = vindex.load_value_vectors(ws)
        assert vecs.dtype == np.float32 and np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_fp16_on_this_cpu_is_one_clear_line_from_the_cli(tmp_path, capsys):
    f = tmp_path / "x.jsonl"
    f.write_text('{"a": "some text"}\n')
    assert main(["-w", str(tmp_path / "ws"), "ingest", str(f), "--precision", "fp16", "--threads", "1"]) == 1
    err = capsys.readouterr().err
    assert "fp16 embedding needs a CUDA GPU" in err and "Traceback" not in err
