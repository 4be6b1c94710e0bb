"""Hardening of the datastore, tasks and retrieval against bad or unusual input, on real components.

Each test feeds one kind of input that used to end in a traceback or a silent loss: a task with thousands
of demonstrations, an unreadable folder, a damaged usearch file, a task file or JSONL line nested
thousands deep, a second file claiming a dataset id already taken, CSV headers that repeat and rows that
run past the header, and numeric options out of range.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.errors import EngineError
from engine.workspace import Workspace
from rebase_tui.cli import main


def _jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _cli(capsys, *argv) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="session")
def tiny_template(tmp_path_factory, embedder) -> Path:
    """A workspace holding two small real datasets (60 rows, 120 values), ingested once per session."""
    from engine.datastore.ingest import run_ingest

    root = tmp_path_factory.mktemp("tiny")
    animals = _jsonl(root / "data" / "animals.jsonl",
                     [{"q": f"what sound does animal {i} make", "a": f"sound {i}"} for i in range(30)])
    sums = _jsonl(root / "data" / "sums.jsonl",
                  [{"question": f"{i} plus {i}", "answer": str(2 * i)} for i in range(30)])
    with Workspace(root / "ws") as ws:
        summary = run_ingest(ws, [animals, sums], embedder=embedder)
    assert summary.added.datasets == 2, summary
    return root / "ws"


@pytest.fixture
def tiny(tiny_template, tmp_path) -> Path:
    """A private copy of the tiny workspace (its directory)."""
    dst = tmp_path / "tiny"
    shutil.copytree(tiny_template, dst)
    return dst


TASK = {"name": "sums", "instruction": "Add the two numbers.",
        "examples": [{"input": "3 plus 3", "output": "6"}, {"input": "7 plus 7", "output": "14"}]}


# -- retrieval: thousands of demonstrations --------------------------------------------------------
def test_a_task_with_thousands_of_demonstrations_retrieves(tiny, embedder, tmp_path, capsys):
    """2,100 demonstrations are 4,201 query texts, more than the in-memory query cache holds: every one
    must still reach the scores (the cache used to be trimmed before the answer was read back)."""
    from engine.retrieval import retriever as r

    n = 2100
    assert 2 * n + 1 > r.QUERY_CACHE_SIZE
    big = {"name": "big", "instruction": "Add the two numbers.",
           "examples": [{"input": f"{i} plus {i}", "output": str(2 * i)} for i in range(n)]}
    task_file = tmp_path / "big.json"
    task_file.write_text(json.dumps(big))
    with Workspace(tiny) as ws:
        retriever = r.Retriever(ws)
        retriever._embedder = embedder  # the session's model (loading another copy only costs time)
        result = retriever.search(str(task_file), top=5)
        assert len(result) == 5 and all(h.dataset_id == "sums" for h in result)
        # the query vectors are the mean over all 2,100 demonstrations: recompute them from the model
        import numpy as np

        ins = embedder.encode([e["input"] for e in big["examples"]])
        q = retriever.queries(r.as_task(ws, "big"))
        assert np.allclose(q.inputs, ins, atol=1e-5)
        assert len(retriever._qcache) <= r.QUERY_CACHE_SIZE
        # a new retriever finds every vector in the workspace's table: the model is never loaded
        again = r.Retriever(ws)
        assert [h.key for h in again.search("big", top=5)] == [h.key for h in result]
        assert again._embedder is None
    rc, out, err = _cli(capsys, "-w", tiny, "retrieve", "big", "--top", "3", "--json")
    assert rc == 0, err
    assert [(h["dataset_id"], h["row_id"]) for h in json.loads(out)["results"]] == \
        [(h.dataset_id, h.row_id) for h in result][:3]


# -- retrieval: a damaged approximate index ---------------------------------------------------------
@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "header"])
def test_a_damaged_usearch_file_says_run_check_repair(tiny, tmp_path, capsys, monkeypatch, damage):
    """usearch raises ``ValueError`` on a damaged file; retrieve says which file and to run
    ``check --repair``, which rebuilds it, after which the same search works and agrees with exact."""
    from engine.datastore import vindex
    from engine.retrieval import retriever as r

    monkeypatch.setattr(r, "APPROX_MIN_CANDIDATES", 4)  # the tiny store has 120 values: use the index
    monkeypatch.setattr(r, "APPROX_FACTOR", 1)
    task_file = tmp_path / "sums.json"
    task_file.write_text(json.dumps(TASK))
    with Workspace(tiny) as ws:
        path = vindex.usearch_path(ws, vindex.VALUES)
    raw = path.read_bytes()
    path.write_bytes({"truncated": raw[: len(raw) // 2], "garbage": b"not a usearch index at all",
                      "empty": b"", "header": b"\xff" * 64 + raw[64:]}[damage])
    rc, out, err = _cli(capsys, "-w", tiny, "retrieve", task_file, "--top", "2", "--approximate")
    assert rc == 1 and not out
    assert err.count("\n") == 1 and "values.usearch" in err and "rebase-tui check --repair" in err
    assert "Traceback" not in err
    rc, out, err = _cli(capsys, "-w", tiny, "check", "--repair")
    assert rc == 0, out + err
    rc, out, err = _cli(capsys, "-w", tiny, "retrieve", task_file, "--top", "2", "--approximate", "--json")
    assert rc == 0, err
    approx = [(h["dataset_id"], h["row_id"]) for h in json.loads(out)["results"]]
    rc, out, err = _cli(capsys, "-w", tiny, "retrieve", task_file, "--top", "2", "--json")
    assert approx == [(h["dataset_id"], h["row_id"]) for h in json.loads(out)["results"]]


def test_an_index_that_lacks_values_is_refused(tiny, tmp_path, monkeypatch):
    """An index missing some of the datastore's values would make the exactness proof lie."""
    from usearch.index import Index

    from engine.datastore import vindex
    from engine.retrieval import retriever as r

    monkeypatch.setattr(r, "APPROX_MIN_CANDIDATES", 4)
    monkeypatch.setattr(r, "APPROX_FACTOR", 1)
    with Workspace(tiny) as ws:
        path = vindex.usearch_path(ws, vindex.VALUES)
        index = Index.restore(str(path))
        index.remove(index.keys[:3])
        index.save(str(path))
        with pytest.raises(EngineError, match="lacks 3 of the datastore's 120 values") as info:
            r.Retriever(ws).search(TASK, top=2, approximate=True)
        assert "check --repair" in str(info.value)
