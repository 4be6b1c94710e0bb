"""The small things a daily user trips on: an empty per-dataset cap is valid (no red border), the dedupe box
looks different on and off, the palette lists the app's commands only, "1 dataset" (not "1 datasets"),
stream cards end with the whole example, and the loss chart has an x-axis and tells train from eval."""

from __future__ import annotations

from textual.widgets import Checkbox, Input, Select

from engine.workspace import Workspace
from rebase_tui.app import RebaseApp
from rebase_tui.widgets.actions_palette import screen_actions
from rebase_tui.widgets.loss_chart import EVAL_MARK, LossChart
from rebase_tui.widgets.stream_view import StreamView
from tests.tui.helpers import screen_lines, text_of, until
from tests.tui.toy_workspace import make_datastore

SIZE = (120, 36)


async def test_retrieve_controls(tmp_path):
    ws = Workspace(tmp_path / "ws")
    make_datastore(ws, 4)
    app = RebaseApp(ws, stage="retrieve", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        cap = app.screen.query_one("#rq-cap", Input)
        cap.focus()
        await pilot.press("1", "backspace")  # typed and erased: empty again
        await pilot.pause()
        assert cap.value == "" and cap.is_valid and not cap.has_class("-invalid")
        box = app.screen.query_one("#rq-dedupe", Checkbox)
        off = box.get_component_rich_style("toggle--button")
        box.value = True
        await pilot.pause()
        on = box.get_component_rich_style("toggle--button")
        assert off.color != on.color, "the dedupe box draws the same in both states"
        assert off.color == off.bgcolor, "off is an empty box"


async def test_palette_lists_the_apps_commands_only(tmp_path):
    ws = Workspace(tmp_path / "ws")
    make_datastore(ws, 4)
    app = RebaseApp(ws, stage="task", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        titles = [title for title, *_ in screen_actions(app.screen)]
        assert "Task: Save" in titles and "Task: Add example" in titles
        assert not [t for t in titles if "cursor" in t.lower() or "select" in t.lower()], titles


async def test_one_dataset_is_singular(tmp_path):
    ws = Workspace(tmp_path / "ws")
    make_datastore(ws, 4)
    app = RebaseApp(ws, stage="data", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "1 dataset" in app.status_text() and "1 datasets" not in app.status_text()
        assert "1 config ·" in text_of(app.screen.query_one("#ds-card"))


async def test_stream_cards_end_with_the_whole_example(tmp_path, standin_factory):
    srv = standin_factory(num_parallel=1, token_delay=0.003, piece_chars=4)
    ws = Workspace(tmp_path / "ws", {"teacher.host": srv.url, "teacher.model": "qwen2.5:0.5b"})
    make_datastore(ws, 3)
    app = RebaseApp(ws, stage="transform", task="nli")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await until(pilot, lambda: screen.query_one("#t-model", Select).value == "qwen2.5:0.5b", 20, "models")
        await pilot.press("ctrl+j")
        await until(pilot, lambda: screen.state == "idle" and sum(screen.counts.values()) == 3, 30, "the run")
        cards = list(screen.query_one("#t-stream", StreamView).cards.values())
        assert cards
        with ws.store.cursor() as cur:
            outputs = {r[0] for r in cur.execute("select output from examples").fetchall()}
        for card in cards:
            body = text_of(card)
            assert "→ " in body and body.rsplit("→ ", 1)[1].strip() in outputs, body


async def test_loss_chart_has_an_x_axis_and_tells_eval_from_train(tmp_path):
    from textual.app import App, ComposeResult

    from rebase_tui.themes import VARIABLE_DEFAULTS

    class ChartApp(App[None]):
        def get_theme_variable_defaults(self) -> dict[str, str]:
            return dict(VARIABLE_DEFAULTS)

        def compose(self) -> ComposeResult:
            yield LossChart(id="chart")

    app = ChartApp()
    async with app.run_test(size=(70, 16)) as pilot:
        chart = app.query_one(LossChart)
        for step in range(1, 101):
            chart.add("train", step, 3.0 / step ** 0.5)
            if step % 25 == 0:
                chart.add("eval", step, 3.3 / step ** 0.5)
        await pilot.pause()
        lines = screen_lines(app)
        assert any("└" in line and "─" * 20 in line for line in lines), "an x-axis rule"
        labels = next(line for line in lines if line.strip(" │").startswith("step"))
        assert "1" in labels and "100" in labels, labels
        marks = [(y, seg) for y, strip in enumerate(app.screen._compositor.render_strips())
                 for seg in strip if seg.text == EVAL_MARK]  # (the legend in the title is "● eval")
        assert len(marks) == 4, "one marker per evaluation"
        train = [seg for strip in app.screen._compositor.render_strips() for seg in strip
                 if seg.text.strip() and all(0x2800 < ord(c) <= 0x28FF for c in seg.text.strip())]
        assert train and train[0].style.color != marks[0][1].style.color, "train and eval have their own colours"
