"""The paper's retrieval settings: bans by config and by the task's name, and the output rule."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.errors import EngineError
from engine.retrieval.retriever import Retriever
from engine.tasks import output_target, validate
from engine.workspace import Workspace
from rebase_tui.cli import main

CODE_TASK = {"name": "sanitized", "instruction": "Write a Python function for the problem.",
             "examples": [{"input": "Return the sum of a list.", "output": "def f(xs): return sum(xs)"}]}


def test_output_rule_released_keeps_the_text_as_it_stands():
    out = "Let us think. Yes, it is. So the answer is (A)."
    assert output_target(out) == "(A)."                     # the released code: period kept
    assert output_target(out, "stripped") == "(A)"
    assert output_target("Neutral") == output_target("Neutral", "stripped") == "Neutral"
    with pytest.raises(EngineError, match="unknown output rule"):
        output_target(out, "loose")


def test_a_config_ban_drops_only_that_config(small_datastore, embedder):
    with Workspace(small_datastore) as ws:
        r = Retriever(ws)
        r._embedder = embedder
        task = validate(CODE_TASK)
        every = r.search(task, top=500)
        configs = {(h.dataset_id, h.config) for h in every.results if h.dataset_id == "python_problems"}
        assert configs == {("python_problems", "full"), ("python_problems", "sanitized")}
        banned = r.search(task, top=500, exclude=["python_problems:sanitized"])
        kept = {(h.dataset_id, h.config) for h in banned.results if h.dataset_id == "python_problems"}
        assert kept == {("python_problems", "full")}
        assert len(banned.results) == len(every.results) - sum(
            1 for h in every.results if (h.dataset_id, h.config) == ("python_problems", "sanitized"))
        mask = r.banned_rows(["python_problems:sanitized"])
        assert mask is not None and int(mask.sum()) > 0
        assert r.banned_rows(["python_problems:nope"]) is None and r.banned_rows([]) is None
        # approximate search honours the same bans
        approx = r.search(task, top=50, exclude=["python_problems:sanitized"], approximate=True)
        assert all((h.dataset_id, h.config) != ("python_problems", "sanitized") for h in approx.results)
        assert [h.key for h in approx.results] == [h.key for h in banned.results[:50]] or not approx.exact


def test_ban_task_name_lists_and_drops_datasets_and_configs(small_datastore, embedder, capsys):
    with Workspace(small_datastore) as ws:
        r = Retriever(ws)
        assert r.task_name_bans("sanitized") == ["python_problems:sanitized"]
        assert r.task_name_bans("nli") == ["corpus/nli-pairs"]
        assert r.task_name_bans("zzz") == []
    task_file = small_datastore.parent / "sanitized.json"
    task_file.write_text(json.dumps(CODE_TASK))
    assert main(["retrieve", str(task_file), "-w", str(small_datastore), "--ban-task-name", "--top", "400",
                 "--json"]) == 0
    captured = capsys.readouterr()
    assert "banned by the task's name (sanitized): python_problems:sanitized" in captured.err
    doc = json.loads(captured.out)
    assert "python_problems:sanitized" in doc["exclude"]
    assert not any(r["dataset_id"] == "python_problems" and r["config"] == "sanitized" for r in doc["results"])
    assert np.any([r["dataset_id"] == "python_problems" for r in doc["results"]])


@pytest.mark.parametrize("cap", [None, 2])
def test_config_bans_on_the_compact_path_give_the_float32_lists(small_datastore, embedder, cap):
    task = validate(CODE_TASK)
    bans = ["python_problems:sanitized", "movie_sentiment"]
    lists = []
    for mode in ("off", "on"):
        with Workspace(small_datastore, {"retrieval.compact": mode}) as ws:
            r = Retriever(ws)
            r._embedder = embedder
            assert (r.compact is not None) == (mode == "on")
            got = r.search(task, top=40, exclude=bans, per_dataset_cap=cap)
            assert got.exact
            lists.append([(h.key, h.score) for h in got.results])
            assert all((h.dataset_id, h.config) != ("python_problems", "sanitized") for h in got.results)
            assert all(h.dataset_id != "movie_sentiment" for h in got.results)
    assert [k for k, _ in lists[0]] == [k for k, _ in lists[1]]
    assert np.allclose([s for _, s in lists[0]], [s for _, s in lists[1]], atol=1e-6)
