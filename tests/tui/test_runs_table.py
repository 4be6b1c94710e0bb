"""The runs table: readable start times and task names instead of cut ids, full statuses, newest first, and
live updates (a run created elsewhere appears, a status change shows) with no key pressed."""

from __future__ import annotations

import json
import time

from engine.student import runs
from engine.student.run_config import RunSettings
from engine.tasks import get_task
from engine.workspace import Workspace
from rebase_tui.app import RebaseApp
from rebase_tui.widgets.runs_table import RunsTable
from tests.tui.helpers import screen_lines, until
from tests.tui.toy_workspace import make_datastore

ROWS = [{"input": f"Premise {i}. Hypothesis {i}.", "output": ["entailment", "neutral"][i % 2]} for i in range(12)]


def _run(ws: Workspace, created: float) -> str:
    path = runs.create_run(ws, ROWS, RunSettings(student="/models/tiny", epochs=1.0), task=get_task(ws, "nli"))
    cfg = json.loads((path / "run.json").read_text())
    cfg["created"] = created
    (path / "run.json").write_text(json.dumps(cfg))
    return path.name


async def test_runs_are_readable_newest_first_and_live(tmp_path):
    ws = Workspace(tmp_path / "ws")
    make_datastore(ws, 6)
    old = _run(ws, time.mktime((2025, 3, 1, 9, 30, 0, 0, 0, -1)))
    time.sleep(1.1)  # run ids carry the second they were made
    new = _run(ws, time.mktime((2025, 3, 2, 14, 5, 0, 0, 0, -1)))
    (ws.runs_dir / old / "events.jsonl").write_text(
        json.dumps({"type": "started", "start_step": 0}) + "\n"
        + json.dumps({"type": "stopped", "step": 3, "elapsed_s": 1.0}) + "\n")
    app = RebaseApp(ws, stage="train", task="nli")
    async with app.run_test(size=(110, 32)) as pilot:
        table = app.screen.query_one("#tr-runs", RunsTable)
        await until(pilot, lambda: table.row_count == 2, 10, "the runs")
        await pilot.pause()
        assert [s.run for s in table.summaries] == [new, old], "newest first"
        text = "\n".join(screen_lines(app))
        assert "03-02 14:05" in text and "03-01 09:30" in text, text
        assert "stopped" in text and "created" in text, text
        assert "nli" in text
        # a run made elsewhere (the CLI) appears, and a status change shows, without a key
        time.sleep(1.1)
        third = _run(ws, time.time())
        (ws.runs_dir / new / "events.jsonl").write_text(
            json.dumps({"type": "started", "start_step": 0}) + "\n"
            + json.dumps({"type": "finished", "step": 2, "elapsed_s": 1.0}) + "\n")
        await until(pilot, lambda: table.row_count == 3, 10, "the new run to appear")
        assert table.summaries[0].run == third
        await until(pilot, lambda: "finished" in "\n".join(screen_lines(app)), 10, "the status change")
