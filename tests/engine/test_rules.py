"""Rules for the teacher from rejection reasons: grouping, proposals (teacher stand-in), the prompt hash, new calls
only, a mechanical check that filters, redo of pending examples, and the before/after rejection rates."""

from __future__ import annotations

import pytest

from engine import review
from engine.errors import EngineError
from engine.tasks import add_task, read_task_file
from engine.teacher import prompts, rules
from engine.teacher.client import TeacherSettings
from engine.teacher.rule_checks import copied_share
from engine.teacher.rule_proposals import RuleProposed, propose_rules
from engine.teacher.rules import Rejection, group_rejections, mechanical
from engine.teacher.transform import TransformFinished, transform
from rebase_tui.cli import main
from tests.conftest import corpus
from tests.fixtures.standin import pool_from_datastore

MODEL = "llama3.1:8b"


def settings(srv, **kw) -> TeacherSettings:
    base = {"host": srv.url, "model": MODEL, "concurrency": 2, "backoff": 0.01, "read_timeout": 5.0, "seed": 7}
    return TeacherSettings(**{**base, **kw})


async def run(ws, srv, **kw) -> TransformFinished:
    events = [ev async for ev in transform(ws, "mnli", settings(srv), text_interval=0.0, **kw)]
    return next(e for e in events if isinstance(e, TransformFinished))


async def propose(ws, srv) -> list:
    return [ev.rule async for ev in propose_rules(ws, "mnli", settings(srv)) if isinstance(ev, RuleProposed)]


def q(ws, sql, params=()):
    with ws.store.cursor() as cur:
        return cur.execute(sql, list(params)).fetchall()


@pytest.fixture
def mnli_ws(workspace):
    add_task(workspace, read_task_file(corpus("tasks", "mnli.json")))
    pool_from_datastore(workspace, "mnli", ["corpus__nli-pairs", "science_entailment"], 40)
    return workspace


def test_reasons_are_grouped_mechanical_ones_by_their_check():
    assert mechanical("Way too long") == "max_chars" and mechanical("copied the row verbatim") == "copied_row"
    assert mechanical("wrong label") == "label_set" and mechanical("not in English") == "language"
    assert mechanical("the hypothesis does not follow from the premise") is None
    made = [Rejection(i, "in", "out", reason, None) for i, reason in enumerate([
        "hypothesis does not follow from the premise", "too long", "the premise is missing",
        "The hypothesis doesn't follow from the premise.", "far too verbose", "premise is missing"], 1)]
    groups = group_rejections(made)
    assert [(g.check, [r.id for r in g.rejections]) for g in groups] == [
        ("max_chars", [2, 5]), (None, [1, 4]), (None, [3, 6])]
    assert copied_share("Q: the cat sat on the mat today", {"t": "the cat sat on the mat today"}) > 0.8
    assert copied_share("A wholly new question", {"t": "the cat sat on the mat today"}) == 0.0


async def test_rules_from_rejections_steer_new_calls_only(mnli_ws, standin):
    await run(mnli_ws, standin, limit=6)
    ids = [e.id for e in review.list_examples(mnli_ws, "mnli")]
    review.reject(mnli_ws, "mnli", ids[:2], "the hypothesis does not follow from the premise")
    review.reject(mnli_ws, "mnli", ids[2:3], "hypothesis doesn't follow the premise at all")
    review.reject(mnli_ws, "mnli", ids[3:4], "far too long")
    review.accept(mnli_ws, "mnli", ids[4:5])
    calls = standin.chat_requests
    proposed = await propose(mnli_ws, standin)
    assert sorted(r.kind for r in proposed) == ["check", "prompt"] and standin.chat_requests == calls + 1
    prompt_rule = next(r for r in proposed if r.kind == "prompt")
    check_rule = next(r for r in proposed if r.kind == "check")
    assert prompt_rule.text and set(prompt_rule.examples) == set(ids[:3]) and prompt_rule.status == "proposed"
    assert check_rule.check_name == "max_chars" and check_rule.examples == (ids[3],)
    assert "the hypothesis does not follow" in standin.requests("/api/chat")[-1].body["messages"][0]["content"]
    assert await propose(mnli_ws, standin) == [] and standin.chat_requests == calls + 1, "nothing new to propose"

    task = read_task_file(corpus("tasks", "mnli.json"))
    before = prompts.spec_for(mnli_ws, task)
    rules.set_rule_status(mnli_ws, "mnli", prompt_rule.id, "accepted")
    after = prompts.spec_for(mnli_ws, task)
    assert after.hash != before.hash and after.rules == (prompt_rule.text,)
    assert prompt_rule.text in after.messages({"premise": "p", "hypothesis": "h"})[-1]["content"]
    # old examples are kept; the pending ones are re-made with the rule, the old ones rejected (undoable)
    pending = [e.id for e in review.list_examples(mnli_ws, "mnli", "pending")]
    f = await run(mnli_ws, standin, limit=6, redo_pending=True)
    assert f.requested == len(pending) == 1 and standin.chat_requests == calls + 2
    assert prompt_rule.text in standin.requests("/api/chat")[-1].body["messages"][0]["content"]
    redone = review.get_examples(mnli_ws, pending)
    assert [(e.status, e.reason) for e in redone] == [("rejected", review.REDONE)]
    assert q(mnli_ws, "select count(*) from examples where prompt_hash = ?", [before.hash])[0][0] == 6
    assert q(mnli_ws, "select count(*) from examples where prompt_hash = ? and status = 'pending'",
             [after.hash])[0][0] == 1
    assert review.undo(mnli_ws, "mnli") and review.get_examples(mnli_ws, pending)[0].status == "pending"

    # the mechanical rule filters: a length check at 60 characters fails every longer new example
    rules.edit_rule(mnli_ws, "mnli", check_rule.id, "60")
    rules.set_rule_status(mnli_ws, "mnli", check_rule.id, "accepted")
    assert prompts.spec_for(mnli_ws, task).hash == after.hash, "a check judges replies: the prompt is unchanged"
    f = await run(mnli_ws, standin, limit=10)
    made = [e for e in review.list_examples(mnli_ws, "mnli") if e.row not in
            {r[0] for r in q(mnli_ws, "select row from examples where prompt_hash = ?", [before.hash])}]
    assert len(made) == f.requested == 4 and f.done + f.failed + f.duplicates == 4, "rows made before the rules stay"
    for e in made:
        long = len(e.input) + len(e.output) > 60
        assert (e.status == "failed") == long
        if long:
            assert e.reason.startswith(f"rule {check_rule.id}: ")
    assert any(e.status == "failed" for e in made)

    # rates: of the examples made before the prompt rule, the reviewer rejected 4 of 6; after it, 1 of 2
    review.accept(mnli_ws, "mnli", [e.id for e in review.list_examples(mnli_ws, "mnli", "pending")])
    rules.set_rule_status(mnli_ws, "mnli", check_rule.id, "dropped")
    await run(mnli_ws, standin, limit=12)
    new = [e.id for e in review.list_examples(mnli_ws, "mnli", "pending")]
    assert len(new) == 2
    review.accept(mnli_ws, "mnli", new[:1])
    review.reject(mnli_ws, "mnli", new[1:], "the premise is missing")
    report = next(r for r in rules.rule_reports(mnli_ws, "mnli") if r.rule.id == prompt_rule.id)
    assert (report.before.n, report.before.rejected, report.after.n, report.after.rejected) == (6, 4, 2, 1)
    assert report.before.describe() == "67% of 6"


def test_rules_cli_lists_edits_and_refuses(mnli_ws, capsys):
    r = rules.add_rule(mnli_ws, "mnli", "prompt", '  "Keep the premise and hypothesis apart."  ', ("x",), (1,))
    assert r.text == "Keep the premise and hypothesis apart."
    w = str(mnli_ws.path)
    mnli_ws.close()
    assert main(["rules", "mnli", "--edit", str(r.id), "Write the hypothesis as one sentence.", "-w", w]) == 0
    assert main(["rules", "mnli", "--accept", str(r.id), "--json", "-w", w]) == 0
    out = capsys.readouterr().out
    assert '"status": "accepted"' in out and "one sentence" in out and '"edited": true' in out
    assert main(["rules", "mnli", "--drop", "99", "-w", w]) == 1
    assert "mnli has no rule 99" in capsys.readouterr().err
    with pytest.raises(EngineError, match="nothing to edit"):
        from engine.workspace import Workspace

        with Workspace(mnli_ws.path) as ws:
            check = rules.add_rule(ws, "mnli", "check", "copies", ("copied",), (2,), "copied_row", {"share": 0.8})
            rules.edit_rule(ws, "mnli", check.id, "x")
