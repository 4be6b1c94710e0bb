"""The Train form's recipe: picking one shows the values it trains with, edits win over it, and what the form
sends becomes exactly those run settings (the engine's own resolution, as `train --recipe` does)."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Input, Select

from engine.student.run_config import LoraSettings, settings_from_config
from engine.workspace import Workspace
from rebase_tui.widgets.student_form import StudentForm


class _FormApp(App):
    def __init__(self, config) -> None:
        super().__init__()
        self.config = config

    def compose(self) -> ComposeResult:
        yield StudentForm(id="tr-form")

    def on_mount(self) -> None:
        self.query_one(StudentForm).fill(self.config)


async def test_recipe_fills_the_form_and_edits_override_it(tmp_path):
    with Workspace(tmp_path / "ws", {"student.model": "/models/tiny", "student.lr": 1e-3}) as ws:
        app = _FormApp(ws.config)
        async with app.run_test(size=(60, 40)) as pilot:
            await pilot.pause()
            form = app.query_one(StudentForm)
            first = form.values()
            assert first["lr"] == 1e-3 and first["recipe"] == "default" and first["scheduler"] == "cosine"
            assert "warmup_steps" not in first and first["load_in_4bit"] is None  # left to the engine
            default = settings_from_config(ws.config, **first)
            assert default.lr == 1e-3 and default.eval_fraction == 0.1 and default.lora == LoraSettings()

            app.query_one("#tr-recipe", Select).value = "paper"
            await pilot.pause()
            assert app.query_one("#tr-lr", Input).value == "0.0003"
            assert app.query_one("#tr-warmup_steps", Input).value == "20"
            assert app.query_one("#tr-method", Select).value == "lora"
            assert app.query_one("#tr-scheduler", Select).value == "linear"
            app.query_one("#tr-lora_r", Input).value = "4"  # an edit wins over the recipe
            await pilot.pause()
            paper = settings_from_config(ws.config, **form.values())
            assert paper.recipe == "paper" and paper.lr == 3e-4 and paper.epochs == 1.0
            assert paper.lora == LoraSettings(r=4, alpha=16, dropout=0.0)
            assert (paper.scheduler, paper.warmup_steps, paper.weight_decay) == ("linear", 20, 0.01)
            assert (paper.batch_size, paper.grad_accum, paper.max_length) == (2, 4, 2048)
            assert paper.eval_fraction == 0.0 and paper.student == "/models/tiny"
            assert paper.load_in_4bit is False  # no CUDA here: the recipe's 4-bit applies on a GPU only

            form.fill(ws.config)  # a refill (the workspace's settings changed) keeps the recipe picked
            assert app.query_one("#tr-lr", Input).value == "0.0003" and app.query_one("#tr-lora_r", Input).value == "8"

            app.query_one("#tr-recipe", Select).value = "default"
            await pilot.pause()
            assert app.query_one("#tr-lr", Input).value == "0.001" and app.query_one("#tr-lora_r", Input).value == "16"
