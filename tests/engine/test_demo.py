"""`rebase-tui demo`: the shipped corpus, built through the real ingest path, idempotently."""

from __future__ import annotations

import json
import os

from engine.datastore import health
from engine.datastore.datasets import list_datasets
from engine.datastore.ingest import AddedCounts
from engine.datastore.readers import file_format
from engine.demo import DEMO_TASKS, DemoDone, build_demo, default_demo_dir, demo_corpus_dir, demo_task_files
from engine.tasks import get_task, read_task_file
from engine.workspace import Workspace
from rebase_tui.cli import main


def test_corpus_is_shipped_with_cards_and_several_formats():
    folders = sorted(p for p in demo_corpus_dir().iterdir() if p.is_dir())
    assert len(folders) == 8
    assert all((f / "README.md").is_file() for f in folders)
    formats = {file_format(p) for f in folders for p in f.rglob("*") if p.is_file() and file_format(p)}
    assert {"parquet", "jsonl", "json", "csv", "tsv"} <= formats
    for path in demo_task_files():
        task = read_task_file(path)
        assert task.name in DEMO_TASKS and len(task.examples) >= 2


def test_demo_command_builds_default_workspace_once(embedder, capsys):
    # no -w: the workspace goes under the user data dir (an isolated XDG_DATA_HOME in tests)
    assert str(default_demo_dir()).startswith(os.environ["XDG_DATA_HOME"])
    assert main(["demo", "--no-open", "--json", "--threads", "1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["workspace"] == str(default_demo_dir())
    assert (doc["datasets"], doc["configs"], doc["rows"]) == (8, 9, 300)
    assert doc["vectors"] == doc["values"] + 8 and doc["skipped"] == []
    assert doc["added"]["datasets"] == 8 and doc["tasks"] == sorted(DEMO_TASKS)
    with Workspace(default_demo_dir()) as ws:
        items = {d.name: d for d in list_datasets(ws)}
        assert all(not d.description_generated and d.status == "ready" for d in items.values())
        assert items["demo/movie-snippets"].rows == 40  # the test split is not ingested
        assert health.check(ws).ok
        with ws.store.cursor() as cur:
            labels = {r[0] for r in cur.execute(
                "select r.data->>'label' from rows r join datasets d on d.id = r.dataset "
                "where d.name = 'demo/product-reviews'").fetchall()}
            nested = cur.execute("select r.data from rows r join datasets d on d.id = r.dataset "
                                 "where d.name = 'demo/recipes' order by r.id limit 1").fetchall()[0][0]
        assert labels == {"positive", "negative"}  # ClassLabel ids mapped to names
        assert {"meta_cuisine", "meta_minutes", "ingredients"} <= set(json.loads(nested))
        before = ws.store.table_counts()
        # again: nothing added, tasks kept, one summary at the end
        events = list(build_demo(ws, embedder=embedder))
        assert isinstance(events[-1], DemoDone) and events[-1].tasks == DEMO_TASKS
        assert events[-1].summary.added == AddedCounts(0, 0, 0)
        assert ws.store.table_counts() == before
        assert get_task(ws, "demo-word-problems").exclude == ("demo/word-problems",)
