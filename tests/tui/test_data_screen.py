"""The Data screen on real ingests: ingest from the screen (progress, keys handled while it runs, cancel,
resume, skipped files), the datasets table and card, remove with confirmation, index health."""

from __future__ import annotations

from textual.widgets import DataTable, Input, Log, Static

from engine.datastore.datasets import list_datasets
from engine.demo import demo_corpus_dir
from engine.workspace import Workspace
from rebase_tui.app import RebaseApp
from tests.conftest import corpus
from tests.tui.helpers import text_of, until
from tests.tui.snapshot import assert_snapshot

SIZE = (130, 40)


DEMO = ("demo__entailment-pairs", "demo__science-facts")  # a CSV and a JSON dataset


def _collection(tmp_path):  # type: ignore[no-untyped-def]
    """A folder holding (symlinked) the test datastore's datasets, two of the demo corpus, and a corrupt one:
    about 600 values to embed, several seconds of work, so keys arrive while the ingest runs."""
    root = tmp_path / "collection"
    root.mkdir()
    for folder in sorted(p for p in corpus("datastore").iterdir() if p.is_dir()):
        (root / folder.name).symlink_to(folder, target_is_directory=True)
    for name in DEMO:
        (root / name).symlink_to(demo_corpus_dir() / name, target_is_directory=True)
    bad = root / "broken_ds"
    bad.mkdir()
    (bad / "train.parquet").write_bytes(b"PAR1 this is not a parquet file")
    return root


async def test_ingest_from_the_screen_keys_work_meanwhile_cancel_resume_skipped(tmp_path, embedder):
    collection = _collection(tmp_path)
    ws = Workspace(tmp_path / "ws")
    app = RebaseApp(ws, stage="data")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        path = screen.query_one("#ingest-path", Input)
        assert app.focused is path  # empty workspace: the cursor waits in the path field
        await pilot.press(*str(tmp_path / "coll"))
        await pilot.pause(0.2)
        await pilot.press("tab")  # completes the folder name
        assert path.value == str(collection) + "/"
        screen.query_one("#ingest-max", Input).value = "15"
        await pilot.press("ctrl+j")
        # (a pause here would wait for the job's stream of progress messages to end: the whole ingest)
        assert screen.ingesting or screen.ingest_summary is not None, "the ingest started"
        # the UI keeps handling keys while the ingest works in its thread
        await pilot.press("f3")
        await pilot.pause(0.1)
        assert app.current_mode == "task"
        await pilot.press("ctrl+n", *"during")
        assert app.live.draft.name == "during"
        await pilot.press("f2")
        await pilot.pause(0.1)
        assert app.current_mode == "data" and app.screen is screen
        was_running = screen.ingesting
        # cancel: finished work is kept, and a new run resumes
        await pilot.press("ctrl+g")
        await until(pilot, lambda: not screen.ingesting, what="the ingest to stop")
        log = "\n".join(screen.query_one("#ingest-log", Log).lines)
        if was_running:
            assert "ingest cancelled" in log
        await pilot.press("ctrl+j")
        await until(pilot, lambda: not screen.ingesting, timeout=240, what="the resumed ingest")
        log = "\n".join(screen.query_one("#ingest-log", Log).lines)
        assert "ingest finished" in log
        assert "skipped:" in log and "broken_ds" in log
        names = sorted(p.name.replace("__", "/") for p in collection.iterdir() if p.name != "broken_ds")
        summary = screen.ingest_summary
        assert summary.totals.datasets == len(names) and [s for s in summary.skipped if "broken_ds" in s.path]
        table = screen.query_one("#ds-table", DataTable)
        assert [table.get_row_at(i)[0].plain for i in range(table.row_count)] == names
        assert {d.name for d in list_datasets(ws)} == set(names)
        await until(pilot, lambda: "healthy" in text_of(screen.query_one("#ds-health", Static)),
                    what="the index check")
        assert "all-MiniLM-L6-v2" in text_of(screen.query_one("#ds-health", Static))
        assert not screen.query_one("#empty-state").display


async def test_card_remove_with_confirmation(small_datastore):
    ws = Workspace(small_datastore)
    app = RebaseApp(ws, stage="data")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        table = screen.query_one("#ds-table", DataTable)
        assert app.focused is table
        names = [table.get_row_at(i)[0].plain for i in range(table.row_count)]
        assert names == sorted(d.name for d in list_datasets(ws))
        await pilot.press("down")
        await pilot.pause()
        card = text_of(screen.query_one("#ds-card", Static))
        assert names[1] in card and "Description" in card
        await pilot.press("delete")
        await pilot.pause()
        await pilot.press("n")  # changed my mind
        await pilot.pause()
        assert len(list_datasets(ws)) == len(names)
        await pilot.press("delete")
        await pilot.pause()
        await pilot.press("y")
        await until(pilot, lambda: table.row_count == len(names) - 1, what="the removal")
        assert names[1] not in {d.name for d in list_datasets(ws)}
        await until(pilot, lambda: "healthy" in text_of(screen.query_one("#ds-health", Static)),
                    what="the index check after the removal")


async def test_data_screen_snapshot(small_datastore, request):
    ws = Workspace(small_datastore)
    with ws.store.cursor() as cur:  # where the repository lives differs between machines
        cur.execute("update datasets set source_path = 'datastore/' || name")
    app = RebaseApp(ws, stage="data")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "healthy" in text_of(app.screen.query_one("#ds-health", Static)))
        await assert_snapshot(pilot, "data_screen", request)


def test_progress_line_shows_the_engines_rate_and_eta():
    from engine.events import Progress
    from rebase_tui.screens.data import progress_text

    assert progress_text(Progress("embed", 1200, 4096, "values", rate=350.4, eta_s=8.3)) == (
        "embed: 1,200/4,096 values · 350 values/s · ETA 0:08")
    # before the engine has a rate there is none to show; the message comes last
    assert progress_text(Progress("read", 0, 3, "datasets", "reading datasets")) == (
        "read: 0/3 datasets · reading datasets")


async def test_a_dataset_whose_id_is_taken_is_ingested_under_the_id_typed_beside_the_path(small_datastore, tmp_path):
    import shutil

    other = tmp_path / "elsewhere" / "yes_no_questions"  # another source with an id the workspace holds
    shutil.copytree(corpus("datastore", "yes_no_questions"), other)
    ws = Workspace(small_datastore)
    app = RebaseApp(ws, stage="data")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await pilot.pause()
        screen.query_one("#ingest-path", Input).value = str(other)
        screen.query_one("#ingest-max", Input).value = "5"
        screen.query_one("#ingest-id", Input).value = "not an id!"
        await pilot.press("ctrl+j")
        await pilot.pause()
        assert not screen.ingesting and any("'not an id!' is not a dataset id" in str(n.message)
                                            for n in app._notifications), "a bad id starts nothing"
        screen.query_one("#ingest-id", Input).value = ""
        await pilot.press("ctrl+j")
        await until(pilot, lambda: screen.ingest_summary is not None and not screen.ingesting, 60, "the ingest")
        skipped = screen.ingest_summary.skipped
        assert [(s.path, s.id_taken) for s in skipped] == [(str(other), True)]
        assert "--id NEW_ID" in skipped[0].reason, "the reason names the CLI way"
        field = screen.query_one("#ingest-id", Input)
        assert app.focused is field and screen.query_one("#ingest-path", Input).value == str(other), \
            "the source waits in the form for another id"
        assert "type another id in 'as'" in "\n".join(screen.query_one("#ingest-log", Log).lines)
        await pilot.press(*"yes_no_questions-2", "enter")
        await until(pilot, lambda: screen.ingest_summary is not None and not screen.ingesting, 120, "the second ingest")
        assert not screen.ingest_summary.skipped
        stored = {d.name: d for d in list_datasets(ws)}
        assert stored["yes_no_questions-2"].rows == 5 and stored["yes_no_questions-2"].ready
        assert stored["yes_no_questions"].rows == 12, "the first dataset is untouched"
        assert field.value == "", "the id named one dataset: the next path gets its own"


async def test_ctrl_j_right_after_a_burst_of_typing_uses_the_whole_path(tmp_path):
    """A pasted path followed at once by ctrl+j: the priority key reaches the app before the field has
    handled the characters queued for it; the action still reads the whole path."""
    from textual import events

    ws = Workspace(tmp_path / "ws")
    app = RebaseApp(ws, stage="data")
    notes: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+l")
        await pilot.pause()
        typed = "zz-no-such-folder/part.jsonl"
        original = app.notify

        def notify(message: str, *args, **kwargs):  # type: ignore[no-untyped-def]
            notes.append(str(message))
            return original(message, *args, **kwargs)

        app.notify = notify  # type: ignore[method-assign]
        for ch in typed:  # one burst, as a paste or a fast typist gives it: nothing waits in between
            app.post_message(events.Key(ch, ch))
        app.post_message(events.Key("ctrl+j", None))
        await until(pilot, lambda: notes, 10, "the ingest's answer")
        assert app.screen.query_one("#ingest-path", Input).value == typed
    assert f"{typed} does not exist" in notes[0], notes
