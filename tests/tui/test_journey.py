"""The whole ReBase journey from the keyboard alone, in one app session on a fresh workspace: ingest a
dataset (Data), import a task file (Task), store the ranking as the pool (Retrieve), transform it with the
teacher (the Ollama stand-in), accept the examples (Review), train a tiny student (Train), evaluate it,
export the model (Modelfile + `ollama create` line) and the dataset. Only key presses drive the app; the
stored state is checked after each stage."""

from __future__ import annotations

import csv
import json

from textual.widgets import DataTable

from engine.workspace import Workspace
from rebase_tui.app import RebaseApp
from rebase_tui.messages import JobFinished
from tests.tui.helpers import search_settled, until

SIZE = (140, 42)
LABELS = ("entailment", "neutral", "contradiction")


def _dataset(root):  # type: ignore[no-untyped-def]
    """A small NLI dataset folder as a user would have it: a card and one CSV split."""
    ds = root / "toy__nli"
    (ds / "default").mkdir(parents=True)
    (ds / "README.md").write_text("# toy NLI\nPremise/hypothesis pairs labelled entailment, neutral or "
                                  "contradiction.\n", encoding="utf-8")
    animals = ("cat", "dog", "horse", "bird", "fox", "cow")
    with (ds / "default" / "train.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["premise", "hypothesis", "label"])
        for i in range(30):
            a = animals[i % len(animals)]
            w.writerow([f"A {a} is sleeping on the sofa number {i}.", f"An animal rests ({i}).", LABELS[i % 3]])
    return ds


def _task_file(path):  # type: ignore[no-untyped-def]
    path.write_text(json.dumps({
        "name": "nli",
        "instruction": "Decide whether the premise entails the hypothesis: answer entailment, neutral or "
                       "contradiction.",
        "examples": [{"input": "Premise: A man sleeps. Hypothesis: A person rests.", "output": "entailment"},
                     {"input": "Premise: A dog runs. Hypothesis: A cat sleeps.", "output": "neutral"}],
        "source_datasets_to_exclude": []}), encoding="utf-8")
    return path


def _finished(seen, job: str) -> list[JobFinished]:
    return [m for m in seen if isinstance(m, JobFinished) and m.job == job]


async def test_whole_journey_by_keyboard(tmp_path, standin, tiny_student, embedder):
    dataset = _dataset(tmp_path / "data")
    task_file = _task_file(tmp_path / "nli_task.json")
    ws = Workspace(tmp_path / "ws")
    for key, value in (("teacher.host", standin.url), ("teacher.model", "qwen2.5:0.5b"),
                       ("student.model", str(tiny_student)), ("student.epochs", 1.0),
                       ("student.batch_size", 4), ("student.max_length", 96)):
        ws.set_setting(key, value)
    seen: list = []
    app = RebaseApp(ws, stage="data")
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        # 1. Data: the path field has the cursor on an empty workspace; type, ctrl+j ingests.
        await pilot.pause()
        await pilot.press(*str(dataset), "ctrl+j")
        await until(pilot, lambda: _finished(seen, "ingest"), 240, "the ingest")
        assert _finished(seen, "ingest")[0].ok, _finished(seen, "ingest")[0].error
        assert app.count("rows") == 30
        # 2. Task: ctrl+o imports a task file.
        await pilot.press("f3")
        await pilot.pause(0.2)
        await pilot.press("ctrl+o")
        await pilot.pause(0.2)
        await pilot.press(*str(task_file), "enter")
        await until(pilot, lambda: app.live.draft.stored == "nli", 10, "the task import")
        # 3. Retrieve: the ranking follows the task; tab into the results, ctrl+j stores the pool.
        await pilot.press("f4")
        await until(pilot, lambda: app.live.ready, 120, "the embedder warm-up")
        await search_settled(pilot)
        for _ in range(12):
            if isinstance(app.screen.focused, DataTable):
                break
            await pilot.press("tab")
        assert isinstance(app.screen.focused, DataTable)
        await pilot.press("ctrl+j")
        await until(pilot, lambda: app.count("retrievals") > 0, 20, "the pool")
        pool = app.count("retrievals")
        # 4. Transform: ctrl+j asks the teacher for every pool row.
        await pilot.press("f5")
        await until(pilot, lambda: app.screen.query_one("#t-model").value == "qwen2.5:0.5b", 20, "the models")
        await pilot.press("ctrl+j")
        await until(pilot, lambda: _finished(seen, "transform"), 120, "the transform")
        assert _finished(seen, "transform")[0].outcome == "done", _finished(seen, "transform")[0].error
        assert app.count("examples") == pool
        # 5. Review: pending filter, accept all shown.
        await pilot.press("f6")
        await pilot.pause(0.2)
        await pilot.press("2", "A")
        await pilot.pause(0.2)
        await pilot.press("y")
        await app.screen.flush_writes()
        with ws.store.cursor() as cur:
            accepted = cur.execute("select count(*) from examples where status = 'accepted'").fetchall()[0][0]
        assert accepted >= pool - 3  # a few may be duplicates or failed: never accepted blindly
        # 6. Train: ctrl+j trains the student from config on the accepted examples.
        await pilot.press("f7")
        await pilot.pause(0.2)
        await pilot.press("ctrl+j")
        await until(pilot, lambda: _finished(seen, "train-follow"), 180, "the training run")
        screen = app.screen
        await until(pilot, lambda: screen.status == "finished" and not screen.following, 20)
        assert screen.focused is screen.query_one("#tr-runs")  # the run's letters act without a tab first
        # 7. Eval, model export, dataset export.
        await pilot.press("v")
        await until(pilot, lambda: _finished(seen, "eval"), 180, "the evaluation")
        assert _finished(seen, "eval")[0].ok, _finished(seen, "eval")[0].error
        await pilot.press("m")  # asks where: enter takes exports/<run>
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: _finished(seen, "export-model"), 120, "the model export")
        assert _finished(seen, "export-model")[0].ok, _finished(seen, "export-model")[0].error
        await pilot.press("d")  # asks the format and where: enter takes JSONL in exports/<task>.jsonl
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: _finished(seen, "export-dataset"), 60, "the dataset export")
        assert _finished(seen, "export-dataset")[0].ok, _finished(seen, "export-dataset")[0].error
        run = screen.run_path
    assert (run / "metrics.json").exists() and (run / "predictions.jsonl").exists()
    modelfile = tmp_path / "ws" / "exports" / run.name / "Modelfile"
    assert modelfile.exists() and "TEMPLATE" in modelfile.read_text(encoding="utf-8")
    rows = (tmp_path / "ws" / "exports" / "nli.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(rows) == accepted and json.loads(rows[0])["source_dataset"]
