"""The loop in the app, against the Ollama stand-in: the Transform form's samples field (a majority vote of
sampled answers), Review's votes and its order by agreement, the Rules panel (propose, accept, edit, drop,
the rejection rates before and after, redo of the pending examples with the rules), and the Retrieve
screen's refinement rounds (the rows each added with the failure each is closest to), each showing untrusted
text inertly. Every effect is checked in DuckDB through the engine."""

from __future__ import annotations

import json

from textual.widgets import DataTable, Input, OptionList, Static

from engine import review
from engine.loop import rounds
from engine.retrieval.refine import RoundHit, RoundRetrieval
from engine.student.evaluate import EvalResult
from engine.teacher import rules
from engine.teacher.client import TeacherSettings
from engine.teacher.transform import transform
from engine.workspace import Workspace
from rebase_tui.app import RebaseApp
from rebase_tui.messages import JobFinished
from rebase_tui.widgets.actions_palette import screen_actions
from rebase_tui.widgets.example_card import ExampleCard
from rebase_tui.widgets.example_editor import LineDialog
from rebase_tui.widgets.example_list import ExampleList
from rebase_tui.widgets.review_rules import RulesPanel
from rebase_tui.widgets.round_rows import RoundsView
from tests.tui.helpers import raw_controls, screen_lines, text_of, until
from tests.tui.toy_workspace import add_examples, make_datastore

SIZE = (130, 40)
MODEL = "qwen2.5:0.5b"


def _ws(path, srv, n_rows: int = 12) -> Workspace:
    ws = Workspace(path, {"ui.theme": "rebase-dark", "teacher.host": srv.url, "teacher.model": MODEL,
                          "teacher.retries": 0})
    make_datastore(ws, n_rows)
    return ws


def _finished(seen: list, job: str) -> list[JobFinished]:
    return [m for m in seen if isinstance(m, JobFinished) and m.job == job]


async def _type(pilot, field: Input, text: str) -> None:  # type: ignore[no-untyped-def]
    field.focus()
    field.value = ""
    await pilot.press(*text)


async def test_samples_vote_and_review_shows_the_votes_and_sorts_by_them(tmp_path, standin):
    ws = _ws(tmp_path / "ws", standin)
    seen: list = []
    app = RebaseApp(ws, stage="transform", task="nli")
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        screen = app.screen
        await until(pilot, lambda: screen.query_one("#t-model").value == MODEL, 20, "the model list")
        samples = screen.query_one("#t-samples", Input)
        await _type(pilot, samples, "2")
        await pilot.press("ctrl+j")
        await pilot.pause(0.2)
        assert screen.state == "idle" and standin.chat_requests == 0, "two answers cannot vote: nothing starts"
        assert any("at least 3 answers" in n.message for n in app._notifications), "the form says why"
        await _type(pilot, samples, "3")
        await _type(pilot, screen.query_one("#t-limit", Input), "10")
        await pilot.press("ctrl+j")
        await until(pilot, lambda: _finished(seen, "transform"), 60, "the run")
        assert _finished(seen, "transform")[0].outcome == "done", _finished(seen, "transform")[0].error
        assert standin.chat_requests == 30, "three sampled answers per row"
        made = review.list_examples(ws, "nli")
        assert len(made) == 10 and all(e.samples == 3 and e.agreement is not None for e in made)

        await pilot.press("f6")
        await pilot.pause(0.3)
        review_screen = app.screen
        lst = review_screen.query_one("#review-list", ExampleList)
        assert [r.votes for r in lst.rows] == [e.votes for e in made] and all(r.votes for r in lst.rows)
        card = review_screen.query_one("#review-card", ExampleCard)
        await until(pilot, lambda: card.shown_id == lst.current.id, 10, "the card")
        assert f"votes {made[0].votes} agree" in text_of(card.query_one("#card-body", Static))
        assert {"Review: Sort", "Review: Rules"} <= {t for t, *_ in screen_actions(review_screen)}, "in the palette"
        await pilot.press("s")
        by_agreement = sorted(made, key=lambda e: (e.agreement, e.id))
        assert by_agreement != made, "the votes differ from row to row (the stand-in's answers vary by seed)"
        assert [r.id for r in lst.rows] == [e.id for e in by_agreement], "the least agreed first"
        assert "sorted by agreement" in text_of(review_screen.query_one("#review-filters", Static))
        await pilot.press("s")
        assert [r.id for r in lst.rows] == [e.id for e in made], "by id again"


async def _teach(ws: Workspace, url: str, n: int) -> None:
    settings = TeacherSettings.from_config(ws.config, host=url, model=MODEL)
    async for _ in transform(ws, "nli", settings, limit=n):
        pass


async def test_rules_panel_proposes_accepts_edits_drops_and_redoes_the_pending(tmp_path, standin):
    ws = _ws(tmp_path / "ws", standin)
    await _teach(ws, standin.url, 8)
    ids = [e.id for e in review.list_examples(ws, "nli")]
    review.reject(ws, "nli", ids[:2], "the hypothesis does not follow from the premise")
    review.reject(ws, "nli", ids[2:3], "far too long")
    review.accept(ws, "nli", ids[3:4])
    pending = [e.id for e in review.list_examples(ws, "nli", "pending")]
    assert len(pending) == 4
    seen: list = []
    app = RebaseApp(ws, stage="review", task="nli")
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+o")
        await until(pilot, lambda: isinstance(app.screen, RulesPanel), 5, "the rules panel")
        panel = app.screen
        assert {"Rules: Propose", "Rules: Accept", "Rules: Edit", "Rules: Drop", "Rules: Redo pending"} <= \
            {t for t, *_ in screen_actions(panel)}, "every key of the panel is in the palette"
        calls = standin.chat_requests
        await pilot.press("p")
        await until(pilot, lambda: len(panel.reports) == 2 and not panel.proposing, 30, "two proposals")
        assert standin.chat_requests == calls + 1, "the teacher writes the free-text rule; the length check needs none"
        kinds = {r.rule.kind: r.rule for r in panel.reports}
        prompt_rule, check_rule = kinds["prompt"], kinds["check"]
        table = panel.query_one("#rules-table", DataTable)
        assert table.row_count == 2

        async def cursor_on(rule_id: int) -> None:
            table.move_cursor(row=[r.rule.id for r in panel.reports].index(rule_id))
            await pilot.pause()

        await cursor_on(prompt_rule.id)
        assert prompt_rule.text in text_of(panel.query_one("#rules-detail", Static))
        await pilot.press("a")
        assert rules.get_rule(ws, "nli", prompt_rule.id).status == "accepted"
        row = table.get_row_at([r.rule.id for r in panel.reports].index(prompt_rule.id))
        assert row[3] == "75% of 4" and row[4] == "none reviewed", "rejected before / after the rule"

        await cursor_on(check_rule.id)
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, LineDialog), 5, "the edit dialog")
        field = app.screen.query_one("#line", Input)
        assert field.value == str(check_rule.param["max_chars"])
        field.value = ""
        await pilot.press("6", "0", "enter")
        await until(pilot, lambda: app.screen is panel, 5, "back to the panel")
        edited = rules.get_rule(ws, "nli", check_rule.id)
        assert edited.param == {"max_chars": 60} and edited.edited
        await pilot.press("d")
        assert rules.get_rule(ws, "nli", check_rule.id).status == "dropped"

        await pilot.press("ctrl+j")  # redo the pending examples with the accepted rule, on the Transform stage
        await until(pilot, lambda: app.current_mode == "transform", 10, "the Transform stage")
        await until(pilot, lambda: _finished(seen, "transform"), 60, "the redo")
        assert _finished(seen, "transform")[0].outcome == "done", _finished(seen, "transform")[0].error
        assert standin.chat_requests == calls + 1 + len(pending), "one new call per pending example"
        assert prompt_rule.text in standin.requests("/api/chat")[-1].body["messages"][0]["content"]
        redone = review.get_examples(ws, pending)
        assert all((e.status, e.reason) == ("rejected", review.REDONE) for e in redone)
        assert len(review.list_examples(ws, "nli", "pending")) == len(pending)
        assert "last redo of the pending examples of nli" in text_of(app.screen.query_one("#t-message", Static))


def _a_round(ws: Workspace) -> rounds.Round:
    """A round of task nli from a run's two failures that added the rows 108, 110 and 109 (not in the pool)."""
    with ws.store.cursor() as cur:
        cur.execute("delete from retrievals where task = 'nli' and rank > 8")
    failures = [rounds.RoundFailure("Premise: a cat naps. Hypothesis: an animal rests.", ("entailment",), "neutral"),
                rounds.RoundFailure("Premise: a dog barks. Hypothesis: it is silent.", ("contradiction",), "entailment")]
    hits = tuple(RoundHit(key, rank, 0.9 - rank / 10, 0.5, 0.4, 0.3, failure, 0.8 - rank / 20, "premise", "label")
                 for rank, (key, failure) in enumerate(((108, 1), (110, 0), (109, 1)), start=1))
    before = EvalResult("run-1", "validation", 4, ("exact",), {"exact": {"value": 0.5, "ci95": [0.1, 0.9]}})
    found = RoundRetrieval(hits, "stored", True, 3, {"search": 0.01})
    return rounds.create_round(ws, "nli", "run-1", "split", [{"input": f.input, "output": f.references[0]}
                                                               for f in failures], failures, before, found)


async def test_retrieve_shows_the_rows_a_round_added_with_the_failure_each_is_closest_to(tmp_path, standin):
    ws = _ws(tmp_path / "ws", standin)
    app = RebaseApp(ws, stage="retrieve", task="nli")
    async with app.run_test(size=(80, 24)) as pilot:
        assert "Retrieve: Rounds" in {t for t, *_ in screen_actions(app.screen)}
        await pilot.press("ctrl+o")
        await until(pilot, lambda: isinstance(app.screen, RoundsView), 5, "the rounds")
        options = app.screen.query_one("#rounds-list", OptionList)
        assert "no refinement rounds for task nli yet" in str(options.get_option_at_index(0).prompt)
        await pilot.press("escape")
        made = _a_round(ws)
        await pilot.press("ctrl+o")
        await until(pilot, lambda: isinstance(app.screen, RoundsView), 5, "the rounds")
        view = app.screen
        await pilot.pause()
        assert "round 1 of nli (from run run-1): 2 of 2 validation items wrong, 3 rows added" in \
            str(view.query_one("#rounds-list", OptionList).get_option_at_index(0).prompt)
        table = view.query_one("#round-rows", DataTable)
        await until(pilot, lambda: table.row_count == 3, 5, "the round's rows")
        expected = rounds.round_rows(ws, "nli", made.number)
        assert [r.row for r in expected] == [108, 110, 109]
        cells = [table.get_row_at(i) for i in range(3)]
        assert [c[2] for c in cells] == ["2", "1", "2"], "the failure each row is closest to"
        assert str(cells[0][3]).startswith("Premise: a dog barks")
        detail = text_of(view.query_one("#round-detail", Static))
        assert "failure 2 of 2" in detail and "the run answered  entailment" in detail
        assert "expected  contradiction" in detail and "Premise 8: the cat sat on mat 8." in detail
        await pilot.press("down")
        await pilot.pause()
        assert "Premise: a cat naps" in text_of(view.query_one("#round-detail", Static))
        await pilot.press("escape")
        assert not isinstance(app.screen, RoundsView)


async def test_rules_and_rounds_show_untrusted_text_inertly(tmp_path, standin):
    markup, escapes = "[bold]yes[/bold] [/oops]", "\x1b[2J\x1b]0;pwned\x07\x9b31m\u202eevil"
    ws = _ws(tmp_path / "ws", standin)
    add_examples(ws, 3)
    review.reject(ws, "nli", [1], reason=f"reason {escapes}")
    rules.add_rule(ws, "nli", "prompt", f"{markup} {escapes}", (f"reason {escapes}",), (1,))
    made = _a_round(ws)
    with ws.store.cursor() as cur:  # the run's answer and a failure's input as a model or a dataset may write them
        failures = [{"input": f"{markup} {escapes} " + "x" * 50_000, "references": [markup], "prediction": escapes}] * 2
        cur.execute("update rounds set failures = ? where id = ?", [json.dumps(failures), made.id])
    app = RebaseApp(ws, stage="review", task="nli")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+o")
        await until(pilot, lambda: isinstance(app.screen, RulesPanel), 5, "the rules panel")
        await pilot.pause()
        assert not raw_controls(app) and markup in "\n".join(screen_lines(app))
        await pilot.press("escape", "f4")
        await pilot.pause()
        await pilot.press("ctrl+o")
        await until(pilot, lambda: isinstance(app.screen, RoundsView), 5, "the rounds")
        await pilot.pause()
        assert not raw_controls(app) and markup in "\n".join(screen_lines(app))
