"""Untrusted text never reaches the terminal raw: one dataset whose cells hold markup, escape sequences (clear
screen, window title, bell, C1, a bidi override) and a 1 MB line, a task, teacher examples and a training
run made of the same text, fed through every output path — the CLI's tables and ``--json``, and each screen
of the app (tables, details, cards, editors, stream cards, logs, results, dialogs, notifications). Nothing
raw is rendered, markup shows as typed, nothing crashes and every screen answers a key at once."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pyarrow as pa

from engine.datastore.ingest import run_ingest
from engine.events import Log
from engine.retrieval.pool import store_pool
from engine.retrieval.retriever import Retriever
from engine.tasks import Demonstration, Task, add_task
from engine.teacher.transform import ExampleDone, ExampleText
from engine.workspace import Workspace
from rebase_tui.app import RebaseApp
from rebase_tui.messages import EngineEvent
from tests.tui.helpers import raw_controls, screen_lines, until
from tests.tui.toy_workspace import add_run

ESCAPES = "\x1b[2J\x1b[H\x1b]0;pwned\x07\x9b31m\u202eevil"
MARKUP = "[bold]yes[/bold] [link=http://x]click[/link] [/oops]"
NASTY = f"{MARKUP} {ESCAPES} end"
BIG = "lorem ipsum " * 90_000  # a 1 MB line
CLI = [sys.executable, "-m", "rebase_tui"]


def _build(ws_dir, tmp_path, embedder) -> None:
    folder = tmp_path / "nasty-data"
    folder.mkdir()
    rows = [{"question": NASTY, "answer": MARKUP}, {"question": BIG, "answer": "no"},
            {"question": f"Is a cat an animal? {ESCAPES}", "answer": "yes"}]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    ws = Workspace(ws_dir)
    try:
        summary = run_ingest(ws, [folder], embedder=embedder)
        assert summary.totals.datasets >= 1, summary
        task = Task("nasty", f"Answer the question. {NASTY}",
                    (Demonstration(f"Is a dog an animal? {ESCAPES}", f"yes {MARKUP}"),), ())
        add_task(ws, task)
        store_pool(ws, task, Retriever(ws).search(task, top=10))
        n = 3
        table = pa.table({"task": ["nasty"] * n, "row": [None] * n,
                          "input": [NASTY, BIG, f"plain input {ESCAPES}"],
                          "output": [MARKUP, ESCAPES, BIG], "status": ["pending"] * n,
                          "teacher_model": [ESCAPES] * n, "reasoning": [NASTY] * n})
        with ws.store.cursor() as cur:
            cur.register("new_examples", table)
            cur.execute('insert into examples (task, "row", input, output, status, teacher_model, reasoning) '
                        'select task, "row", input, output, status, teacher_model, reasoning from new_examples')
            cur.unregister("new_examples")
        run = add_run(ws, task="nasty")
        (run / "predictions.jsonl").write_text(json.dumps(
            {"input": NASTY, "references": [MARKUP], "prediction": BIG, "answer": ESCAPES, "correct": False})
            + "\n", encoding="utf-8")
        (run / "stderr.log").write_text(f"warning: {NASTY}\n{BIG}\n", encoding="utf-8")
    finally:
        ws.close()


def _clean_stream(data: str) -> bool:
    return "\x1b[2J" not in data and "\x1b]0;" not in data and "\x07" not in data and "\x9b" not in data \
        and "\u202e" not in data


def test_cli_tables_and_json(tmp_path, embedder):
    ws_dir = tmp_path / "ws"
    _build(ws_dir, tmp_path, embedder)
    for args in (["examples", "nasty"], ["task", "show", "nasty"], ["datasets"]):
        r = subprocess.run([*CLI, "-w", str(ws_dir), *args], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert _clean_stream(r.stdout) and _clean_stream(r.stderr), args
        assert "Traceback" not in r.stderr
    r = subprocess.run([*CLI, "-w", str(ws_dir), "examples", "nasty", "--json"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and _clean_stream(r.stdout)  # JSON escapes control characters itself
    examples = json.loads(r.stdout)["examples"]
    assert {ex["output"] for ex in examples} == {MARKUP, ESCAPES, BIG}, "--json keeps the text exact"


async def _responsive(pilot) -> float:  # type: ignore[no-untyped-def]
    """Seconds for a key to be handled and the screen repainted (the help panel shown and hidden)."""
    start = time.monotonic()
    await pilot.press("f1")
    await pilot.press("f1")
    await pilot.pause()
    return time.monotonic() - start


async def test_every_screen(tmp_path, embedder):
    ws_dir = tmp_path / "ws"
    _build(ws_dir, tmp_path, embedder)
    app = RebaseApp(Workspace(ws_dir, {"teacher.host": "http://127.0.0.1:9", "teacher.retries": 0,
                                       "teacher.connect_timeout": 0.5}), stage="data", task="nasty")
    problems: list[str] = []
    seen_markup = False

    async def look(where: str) -> None:
        nonlocal seen_markup
        await pilot.pause(0.2)
        problems.extend(f"{where}: {p}" for p in raw_controls(app))
        seen_markup = seen_markup or any("[bold]yes[/bold]" in line for line in screen_lines(app))
        seconds = await _responsive(pilot)
        assert seconds < 5, f"{where}: a key took {seconds:.1f} s"

    async with app.run_test(size=(140, 44)) as pilot:
        await pilot.pause()
        # Data: the table, the card, the dataset's detail
        screen = app.screen
        table = screen.query_one("#ds-table")
        nasty_row = next(i for i, d in enumerate(screen._datasets) if "nasty" in d.name)
        table.focus()
        table.move_cursor(row=nasty_row)
        await look("data")
        await pilot.press("enter")
        await look("data: dataset detail")
        await pilot.press("escape")
        # Task: the list, the editors, the examples table
        await pilot.press("f3")
        await look("task")
        # Retrieve: the ranked rows and the detail of each
        await pilot.press("f4")
        await until(pilot, lambda: app.live.latest is not None and app.live.latest.rows, 120, "ranked rows")
        results = app.screen.query_one("#rq-results")
        results.focus()
        for _ in range(min(4, results.row_count)):
            await look("retrieve")
            await pilot.press("down")
        # Transform: stream cards, the log and the banner (fed the text a teacher could send)
        await pilot.press("f5")
        await pilot.pause(0.3)
        transform = app.screen
        for event in (ExampleText(1, 1, NASTY), ExampleText(2, 2, BIG),
                      ExampleDone(1, 1, None, "failed", ESCAPES, NASTY, MARKUP), Log(f"teacher said {NASTY}")):
            transform.post_message(EngineEvent("transform", event))
        await look("transform")
        # Review: list, card and source row of each example; the edit dialog; the reject-reason dialog
        await pilot.press("f6")
        await pilot.pause(0.3)
        for _ in range(3):
            await look("review")
            await pilot.press("j")
        await pilot.press("e")
        await look("review: edit dialog")
        await pilot.press("escape")
        # Train: the run's figures, log (stderr with the text and a 1 MB line) and predictions
        await pilot.press("f7")
        await until(pilot, lambda: getattr(app.screen, "built", False), 30, "the Train screen")
        await until(pilot, lambda: app.screen.query_one("#tr-runs").row_count == 1, 10, "the run")
        app.screen.open_run(next(iter((ws_dir / "runs").iterdir())))
        await look("train")
        # notifications quoting the text
        app.notify(f"about {NASTY}")
        await look("notification")
    assert not problems, "raw control characters reached the screen:\n" + "\n".join(problems[:20])
    assert seen_markup, "markup in data shows as typed somewhere"
