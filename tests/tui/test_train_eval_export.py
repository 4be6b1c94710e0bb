"""Train screen, by keys: a run trained without a validation hold-out (the paper's recipe) is evaluated on a test
file the user picks, with the engine's warning in the run's log; dataset exports work twice in a row (the
app's own exports/ target is replaced) and an existing path elsewhere is replaced only after the dialog said so."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

from textual.widgets import Static

from engine import review
from engine.student.run_config import read_config, write_config
from engine.workspace import Workspace
from rebase_tui.app import RebaseApp
from rebase_tui.messages import JobFinished
from rebase_tui.widgets.dialogs import PathDialog
from rebase_tui.widgets.export_dialog import ExportDialog
from tests.conftest import corpus
from tests.tui.helpers import text_of, until
from tests.tui.toy_workspace import add_examples, make_datastore

SIZE = (130, 40)


def _no_holdout_copy(trained_task_run, tmp_path):
    """A copy of the trained workspace whose run kept no validation split and runs its student's own code."""
    src_ws, src_run = trained_task_run
    ws_dir = tmp_path / "ws"
    shutil.copytree(src_ws, ws_dir)
    run = ws_dir / "runs" / src_run.name
    (run / "eval.jsonl").write_text("", encoding="utf-8")
    for stale in ("metrics.json", "predictions.jsonl"):
        (run / stale).unlink(missing_ok=True)
    cfg = read_config(run)  # a local GPT-2 folder: trusting its code runs nothing remote
    write_config(run, replace(cfg, settings=replace(cfg.settings, trust_remote_code=True)))
    return ws_dir, run


async def test_eval_without_holdout_asks_for_a_test_file(trained_task_run, tmp_path):
    ws_dir, run = _no_holdout_copy(trained_task_run, tmp_path)
    test_file = tmp_path / "bbh_boolean.json"
    examples = json.loads(corpus("bbh", "boolean_expressions.json").read_text(encoding="utf-8"))["examples"][:6]
    test_file.write_text(json.dumps({"examples": examples}), encoding="utf-8")
    seen: list = []
    app = RebaseApp(Workspace(ws_dir), stage="train", task="boolean_expressions")
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        screen = app.screen
        await until(pilot, lambda: screen.query_one("#tr-runs").row_count == 1, 20, "the runs")
        await pilot.press("alt+2", "enter")
        await until(pilot, lambda: screen.run_path == run, 10, "the run to open")
        await pilot.press("ctrl+r")  # no hold-out: the screen asks for a test file instead of failing
        await until(pilot, lambda: isinstance(app.screen, PathDialog), 5, "the test-file dialog")
        assert "without a validation hold-out" in text_of(app.screen.query_one("Label"))
        await pilot.press(*str(test_file), "enter")
        await until(pilot, lambda: any(isinstance(m, JobFinished) and m.job == "eval" for m in seen), 120,
                    "the evaluation")
        finished = next(m for m in seen if isinstance(m, JobFinished) and m.job == "eval")
        assert finished.ok, finished.error
        results = text_of(screen.query_one("#tr-results-text", Static))
        assert "student:bbh_boolean.json" in results and "expected:" in results, results
        log = "\n".join(screen.panels.log.lines)
        assert "warning: note: run" in log and "--trust-remote-code" in log, log
        assert "evaluation finished" in log


async def test_dataset_export_twice_then_elsewhere(tmp_path):
    ws = Workspace(tmp_path / "ws")
    make_datastore(ws, 12)
    add_examples(ws, 6)
    review.accept_all(ws, "nli")
    elsewhere = tmp_path / "mine.jsonl"
    elsewhere.write_text("keep me\n", encoding="utf-8")
    app = RebaseApp(ws, stage="train", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()

        def told() -> list[str]:
            return [str(n.message) for n in app._notifications]

        for attempt in (1, 2):  # the second export replaces the first in exports/
            await pilot.press("ctrl+t")
            await until(pilot, lambda: isinstance(app.screen, ExportDialog), 5, "the export dialog")
            await pilot.press("enter")
            await until(pilot, lambda n=attempt: sum("exported 6 examples as jsonl" in t for t in told()) == n, 30,
                        f"export {attempt}")
        assert not any("failed" in t for t in told()), told()
        assert len((ws.exports_dir / "nli.jsonl").read_text(encoding="utf-8").splitlines()) == 6
        # an existing file elsewhere: the dialog says so first, enter again replaces it
        await pilot.press("ctrl+t")
        await until(pilot, lambda: isinstance(app.screen, ExportDialog), 5, "the export dialog")
        dialog = app.screen
        dialog.query_one("#export-path").value = str(elsewhere)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ExportDialog)
        assert "already exists" in text_of(dialog.query_one("#dialog-error"))
        assert elsewhere.read_text(encoding="utf-8") == "keep me\n"
        await pilot.press("enter")
        await until(pilot, lambda: any(str(elsewhere) in t and "exported" in t for t in told()), 30, "the replace")
        assert len(elsewhere.read_text(encoding="utf-8").splitlines()) == 6
