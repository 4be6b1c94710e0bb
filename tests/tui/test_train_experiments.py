"""The Train screen's experiments tab, keys only: the empty state names the command; an experiment's results
(written by the engine's own writer, as `rebase-tui experiment` does) show as a list entry with its values found
and a table with "…" for what is still to come; the highlighted value's details; an experiment that finishes in
another process is picked up by the poll (✓, the table complete); the newest experiment is listed first."""

from __future__ import annotations

import os
import time

from textual.widgets import DataTable

from engine import review
from engine.experiments.results import ExperimentResults, ResultRow, experiment_dir, write_results
from engine.workspace import Workspace
from rebase_tui.app import RebaseApp
from rebase_tui.widgets.experiments_pane import EMPTY
from tests.tui.helpers import screen_lines, text_of, until
from tests.tui.toy_workspace import add_examples, make_datastore

SIZE = (80, 24)  # the smallest terminal: the tab takes the whole width


def _row(task: str, method: str, value: float) -> ResultRow:
    return ResultRow(task, method, "exact", value, (value - 0.05, value + 0.05), 200, 210, 61.0)


def _write(ws: Workspace, name: str, rows: list[ResultRow], complete: bool) -> None:
    folder = experiment_dir(ws, name)
    folder.mkdir(parents=True, exist_ok=True)
    write_results(folder, ExperimentResults(name, ("base", "synthesize", "rebase"),
                                            ("boolean_expressions", "web_of_lies"), tuple(rows), complete))


async def test_experiments_tab(tmp_path):
    ws = Workspace(tmp_path / "ws")
    make_datastore(ws, 12)
    add_examples(ws, 4)
    review.accept_all(ws, "nli")
    app = RebaseApp(ws, stage="train", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await until(pilot, lambda: screen.built, 20, "the screen")
        await pilot.press("alt+8")
        pane = screen.query_one("#tr-experiments")
        await until(pilot, lambda: pane.query_one("#exp-empty").display, 10, "the empty state")
        assert text_of(pane.query_one("#exp-empty")) == EMPTY and "no experiments yet" in "\n".join(screen_lines(app))

        _write(ws, "older", [_row("boolean_expressions", "base", 0.5)], False)
        os.utime(experiment_dir(ws, "older") / "results.json", (time.time() - 60, time.time() - 60))
        rows = [_row("boolean_expressions", "base", 0.52), _row("boolean_expressions", "rebase", 0.74),
                _row("web_of_lies", "base", 0.48)]
        _write(ws, "bbh-small", rows, False)
        await until(pilot, lambda: "bbh-small · 3/6" in "\n".join(screen_lines(app)), 10, "the list")
        lines = screen_lines(app)
        assert next(i for i, ln in enumerate(lines) if "bbh-small · 3/6" in ln) < \
            next(i for i, ln in enumerate(lines) if "older · 1/6" in ln), "newest first"
        table = pane.query_one("#exp-table", DataTable)
        assert [str(c.label) for c in table.columns.values()] == ["task", "metric", "base", "synthesize", "rebase"]
        assert table.get_row_at(0)[2:] == ["0.520 ± 0.050", "…", "0.740 ± 0.050"]

        await pilot.press("alt+8", "tab", "right", "right", "right", "right")  # to the rebase value
        details = text_of(pane.query_one("#exp-details"))
        assert "rebase: exact 0.74" in details and "200 training examples" in details, details

        _write(ws, "bbh-small", [*rows, *(_row(t, m, 0.6) for t, m in (("boolean_expressions", "synthesize"),
                                                                       ("web_of_lies", "synthesize"),
                                                                       ("web_of_lies", "rebase")))], True)
        await until(pilot, lambda: "bbh-small · 6/6 ✓" in "\n".join(screen_lines(app)), 10, "the finished run")
        assert "…" not in [c for row in range(table.row_count) for c in table.get_row_at(row)]
