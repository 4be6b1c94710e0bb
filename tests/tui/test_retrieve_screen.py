"""The Retrieve screen on a small real workspace (real MiniLM embedder, real ingest, real retriever):
live re-ranking (debounced, newest wins), the detail pane, exclusion, controls, "use as pool", and
untrusted text shown verbatim."""

from __future__ import annotations

import json

import pytest
from textual.widgets import DataTable, Input, Static

from engine.retrieval.pool import load_pool
from engine.tasks import Demonstration, Task, add_task
from engine.workspace import Workspace
from rebase_tui.app import RebaseApp
from rebase_tui.widgets.editor import PlainTextArea
from tests.tui.helpers import search_settled, text_of, until
from tests.tui.snapshot import assert_snapshot

SIZE = (140, 42)

NLI = Task("nli", "Decide whether the premise entails, contradicts or is neutral towards the hypothesis.",
           (Demonstration("Premise: A man plays a guitar. Hypothesis: A person makes music.", "entailment"),
            Demonstration("Premise: Two dogs run in a field. Hypothesis: The dogs are asleep.", "contradiction")))


def _rows(app) -> list:  # type: ignore[no-untyped-def]
    return list(app.live.latest.result.results)


@pytest.fixture
def nli_workspace(small_datastore):
    with Workspace(small_datastore) as ws:
        add_task(ws, NLI)
    return small_datastore


async def _open(pilot) -> None:  # type: ignore[no-untyped-def]
    await until(pilot, lambda: pilot.app.live.ready, what="the warm-up")
    await search_settled(pilot)


async def test_live_reranking_one_search_for_quick_keystrokes_and_last_query_wins(nli_workspace):
    app = RebaseApp(Workspace(nli_workspace), stage="retrieve", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        live = app.live
        live.debounce_s = 0.5  # generous: the machine is shared; typing below takes a few ms per key
        await _open(pilot)
        screen = app.screen
        table = screen.query_one("#rq-results", DataTable)
        assert table.row_count == len(_rows(app)) > 0
        assert live.latest.query.instruction == NLI.instruction
        instruction = screen.query_one("#rq-instruction", PlainTextArea)
        assert app.focused is instruction  # typing goes straight into the query
        calls = live.engine_calls
        first_generation = live.latest.generation
        stored_vectors = app.workspace.store.table_counts(["query_vectors"])
        instruction.move_cursor(instruction.document.end)
        await pilot.press(*" Answer yes or no.")  # 18 quick keystrokes
        await search_settled(pilot)
        assert live.engine_calls == calls + 1, "quick keystrokes must lead to one search"
        # live drafts' query vectors stay in memory: a search never writes to the workspace
        assert app.workspace.store.table_counts(["query_vectors"]) == stored_vectors
        assert live.generation - first_generation == 18
        shown = screen.shown
        assert shown is live.latest
        assert shown.query.instruction == NLI.instruction + " Answer yes or no."
        assert table.row_count == len(_rows(app))
        # the rows shown are that query's ranking, in order
        assert [str(table.get_row_at(i)[0]) for i in range(3)] == ["1", "2", "3"]
        assert table.get_row_at(0)[5].plain == _rows(app)[0].dataset_id


async def test_a_stale_result_never_overwrites_a_fresher_one(nli_workspace):
    app = RebaseApp(Workspace(nli_workspace), stage="retrieve", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        live = app.live
        await _open(pilot)
        screen = app.screen
        # a search starts at once and is in flight while the next edit arrives
        live.request(delay=0)
        await until(pilot, lambda: any(w.group == "search" and not w.is_finished for w in app.workers))
        example = screen.query_one("#rq-example-input", Input)
        example.focus()
        example.value = "Premise: A cat sleeps. Hypothesis: An animal rests."
        await search_settled(pilot)
        assert screen.shown.query.examples[0].input == "Premise: A cat sleeps. Hypothesis: An animal rests."
        assert screen.shown.generation == live.generation
        # the draft (shared with the Task screen) changed too
        assert live.draft.examples[0][0] == "Premise: A cat sleeps. Hypothesis: An animal rests."


async def test_detail_pane_exclusion_controls_and_pool(nli_workspace):
    ws = Workspace(nli_workspace)
    app = RebaseApp(ws, stage="retrieve", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot)
        screen = app.screen
        table = screen.query_one("#rq-results", DataTable)
        table.focus()
        top = _rows(app)[0]
        detail = text_of(screen.query_one("#rq-detail", Static))
        assert top.dataset_id in detail
        assert f"▶ {top.input_column}  ← input score" in detail or "input score + output score" in detail
        assert top.input_text in detail
        facets = text_of(screen.query_one("#rq-facets", Static))
        assert f"{len(_rows(app))} rows from" in facets and top.dataset_id in facets
        # x excludes the dataset under the cursor and re-ranks without it
        await pilot.press("x")
        await search_settled(pilot)
        assert top.dataset_id in app.live.draft.exclude
        assert all(r.dataset_id != top.dataset_id for r in _rows(app))
        # controls: top N and a per-dataset cap
        screen.query_one("#rq-top", Input).value = "5"
        await search_settled(pilot)
        assert table.row_count == 5
        screen.query_one("#rq-cap", Input).value = "1"
        await search_settled(pilot)
        names = [r.dataset_id for r in _rows(app)]
        assert len(names) == len(set(names)) == 5
        # bad weights: one clear message, no search
        calls = app.live.engine_calls
        screen.query_one("#rq-weights", Input).value = "1,x"
        await pilot.pause(0.4)
        assert "weights" in text_of(screen.query_one("#rq-status", Static))
        assert app.live.engine_calls == calls
        screen.query_one("#rq-weights", Input).value = "1,1,0"
        await search_settled(pilot)
        assert all(abs(r.score - (r.input_score + r.output_score) / 2) < 1e-5 for r in _rows(app))
        # use as pool: the draft has an unsaved exclusion → refused; saved → stored like `retrieve`
        table.focus()
        await pilot.press("ctrl+j")
        await pilot.pause()
        assert load_pool(ws, "nli") == []
        await pilot.press("f3")
        await pilot.pause(0.2)
        assert top.dataset_id in app.screen.query_one("#task-exclude", Input).value
        await pilot.press("ctrl+s")
        await pilot.press("f4")
        await pilot.pause(0.2)
        await search_settled(pilot)
        app.screen.query_one("#rq-results", DataTable).focus()
        await pilot.press("ctrl+j")
        await pilot.pause()
        pool = load_pool(ws, "nli")
        assert [p.rank for p in pool] == [1, 2, 3, 4, 5]
        assert [p.row for p in pool] == [r.key for r in _rows(app)]


async def test_untrusted_cells_display_verbatim(small_datastore, tmp_path, embedder):
    from engine.datastore.ingest import run_ingest

    nasty = tmp_path / "nasty"
    nasty.mkdir()
    rows = [{"question": "closing [/foo] tag and [bold]not bold[/bold]", "answer": "[red]x[/red] [/]"},
            {"question": "what is [link=http://x]this[/link]?", "answer": "a \\[escaped] [b"}]
    (nasty / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    ws = Workspace(small_datastore)
    run_ingest(ws, [nasty], embedder=embedder)
    add_task(ws, Task("tags", "Answer questions about markup tags like [bold] and [/foo].",
                      (Demonstration("closing [/foo] tag and [bold]not bold[/bold]", "[red]x[/red] [/]"),)))
    app = RebaseApp(ws, stage="retrieve", task="tags")
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot)
        screen = app.screen
        table = screen.query_one("#rq-results", DataTable)
        top = _rows(app)[0]
        assert top.input_text == rows[0]["question"]
        assert table.get_row_at(0)[6].plain == rows[0]["question"]
        detail = text_of(screen.query_one("#rq-detail", Static))
        assert rows[0]["question"] in detail and rows[0]["answer"] in detail
        table.focus()
        await pilot.press("down")
        await pilot.pause()
        detail = text_of(screen.query_one("#rq-detail", Static))
        assert _rows(app)[1].input_text in detail
        await pilot.pause()  # painting those cells raised nothing


async def test_retrieve_screen_snapshot(nli_workspace, request):
    app = RebaseApp(Workspace(nli_workspace), stage="retrieve", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot)
        app.screen.query_one("#rq-timing").display = False  # wall-clock text
        await assert_snapshot(pilot, "retrieve_screen", request)


def test_first_paint_does_not_wait_for_torch(small_datastore):
    """A fresh process paints the Retrieve screen with the results loading, before torch is imported."""
    import subprocess
    import sys

    child = (
        "import asyncio, sys\n"
        "from engine.workspace import Workspace\n"
        "from rebase_tui.app import RebaseApp\n"
        "async def main():\n"
        f"    app = RebaseApp(Workspace({str(small_datastore)!r}), stage='retrieve')\n"
        "    async with app.run_test(size=(140, 42)) as pilot:\n"
        "        print('torch' in sys.modules, app.screen.query_one('#rq-results').loading, flush=True)\n"
        "        while not app.live.ready and not app.live.warm_error:\n"
        "            await pilot.pause(0.1)\n"
        "        print(app.live.ready, 'torch' in sys.modules, app.screen.query_one('#rq-results').loading)\n"
        "asyncio.run(main())\n"
    )
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=180, check=True)
    first, later = out.stdout.split("\n")[:2]
    assert first == "False True", out.stdout  # painted: no torch yet, the results pane shows loading
    assert later == "True True False", out.stdout  # then the warm-up loaded it and the pane is ready


async def test_a_task_in_another_script_is_warned_about_an_english_only_embedder(small_datastore):
    ru = Task("ru_nli", "Определите, следует ли гипотеза из посылки.",
              (Demonstration("Посылка: Мужчина играет на гитаре. Гипотеза: Человек делает музыку.", "следует"),))
    with Workspace(small_datastore) as ws:
        add_task(ws, ru)
    app = RebaseApp(Workspace(small_datastore), stage="retrieve", task="ru_nli")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        warning = app.screen.query_one("#rq-warning", Static)
        assert warning.display, "the draft's examples are Cyrillic and the embedder is all-MiniLM-L6-v2"
        text = text_of(warning)
        assert "cyrillic" in text and "reads English only" in text and "multilingual" in warning.tooltip
        await _open(pilot)
        for wid, value in (("#rq-example-input", "Premise: A man plays. Hypothesis: A person plays."),
                           ("#rq-example-output", "entailment")):
            app.screen.query_one(wid, Input).value = value
        await pilot.pause()
        assert not warning.display, "an English example: no warning"


async def test_cap_weights_and_dedupe_are_saved_used_by_the_cli_and_picked_up(nli_workspace):
    """The controls are workspace settings: they survive a restart, `rebase-tui retrieve` ranks with them, and
    `rebase-tui config` while the app is open moves them."""
    import subprocess
    import sys

    from textual.widgets import Checkbox

    app = RebaseApp(Workspace(nli_workspace), stage="retrieve", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot)
        screen = app.screen
        screen.query_one("#rq-cap", Input).value = "2"
        screen.query_one("#rq-weights", Input).value = "1,2,0.5"
        screen.query_one("#rq-dedupe", Checkbox).value = True
        await search_settled(pilot)
        names = [r.dataset_id for r in _rows(app)]
        assert max(names.count(n) for n in names) == 2
    with Workspace(nli_workspace) as ws:
        cfg = ws.config
    assert (cfg["retrieval.per_dataset_cap"], cfg["retrieval.weights"], cfg["retrieval.dedupe"]) == (2, "1,2,0.5", True)

    done = subprocess.run([sys.executable, "-m", "rebase_tui", "-w", str(nli_workspace), "retrieve", "nli",
                           "--top", "20", "--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["results"]
    cli_names = [r["dataset_id"] for r in rows]
    assert max(cli_names.count(n) for n in cli_names) == 2  # the saved cap
    assert all(abs(r["score"] - (r["input_score"] + 2 * r["output_score"] + 0.5 * r["dataset_score"]) / 3.5) < 1e-4
               for r in rows)  # the saved weights

    app = RebaseApp(Workspace(nli_workspace), stage="retrieve", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot)
        screen = app.screen
        assert screen.query_one("#rq-cap", Input).value == "2"
        assert screen.query_one("#rq-weights", Input).value == "1,2,0.5"
        assert screen.query_one("#rq-dedupe", Checkbox).value is True
        r = subprocess.run([sys.executable, "-m", "rebase_tui", "-w", str(nli_workspace), "config",
                            "retrieval.per_dataset_cap", "0"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        await until(pilot, lambda: screen.query_one("#rq-cap", Input).value == "", 10, "the cap to be lifted")
        await search_settled(pilot)
        assert app.live.params.per_dataset_cap is None
