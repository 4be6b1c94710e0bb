"""As a person would: the real ``rebase-tui`` binary in tmux on a prepared workspace.

It opens the Retrieve stage of a small datastore (the test corpus), types an instruction and an example
input with real key presses, and waits until the screen shows ranked rows; then quits with ctrl+q. Skips
when tmux is not installed (CI needs the ``tmux`` package: ``apt-get install tmux``). Run it by hand with
``pytest tests/tui/test_tmux_smoke.py -s`` to see the captured screen.
"""

from __future__ import annotations

import time

from tests.tui.tmux import Tmux, needs_tmux


@needs_tmux
def test_type_an_instruction_in_the_real_binary_and_see_results(small_datastore):
    with Tmux(["-w", str(small_datastore), "tui", "--stage", "retrieve"], size=(140, 40)) as tmux:
        tmux.wait(lambda s: "F4 Retrieve" in s and "Instruction" in s, 30)  # the first paint
        tmux.wait("type an instruction", 90)  # the embedder has loaded
        # the instruction editor has the focus: type as a person would
        tmux.type("Decide whether the premise entails or contradicts the hypothesis.")
        # tmux delivers a send-keys string as one burst; Textual routes a burst's keys to the widget that
        # had focus when the burst arrived, so give the Tab a moment, as a typist would
        time.sleep(0.5)
        tmux.keys("Tab")
        time.sleep(0.5)
        tmux.type("Premise: A man plays a guitar. Hypothesis: A person makes music.")
        screen = tmux.wait(lambda s: "rows from" in s and "datasets:" in s, 120)  # ranked rows
        assert "✗" not in screen, screen
        assert "nli-pairs" in screen or "paraphrase-pairs" in screen, screen
        tmux.keys("C-q")
        tmux.wait(lambda s: "F4 Retrieve" not in s, 20)  # the app quit
