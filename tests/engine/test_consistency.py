"""transform --samples N (self-consistency) against the Ollama stand-in, whose answers vary with the seed."""

from __future__ import annotations

import collections
import json

import pytest

from engine.errors import EngineError
from engine.review import list_examples
from engine.tasks import add_task, read_task_file
from engine.teacher import prompts
from engine.teacher.ask import Answer
from engine.teacher.client import TeacherSettings
from engine.teacher.consistency import answer_keyer, check_samples, decide, sample_keys, tally
from engine.teacher.quality import Parsed
from engine.teacher.transform import TransformFinished, transform
from tests.conftest import corpus
from tests.fixtures.standin import pool_from_datastore

MODEL = "llama3.1:8b"


def settings(srv, **kw) -> TeacherSettings:
    base = {"host": srv.url, "model": MODEL, "concurrency": 2, "backoff": 0.01, "read_timeout": 5.0, "seed": 7}
    return TeacherSettings(**{**base, **kw})


async def run(ws, srv, task="mnli", **kw) -> TransformFinished:
    opts = {k: kw.pop(k) for k in ("limit", "samples", "cot") if k in kw}
    events = [ev async for ev in transform(ws, task, settings(srv, **kw), text_interval=0.0, **opts)]
    return next(e for e in events if isinstance(e, TransformFinished))


def q(ws, sql, params=()):
    with ws.store.cursor() as cur:
        return cur.execute(sql, list(params)).fetchall()


@pytest.fixture
def mnli_ws(workspace):
    add_task(workspace, read_task_file(corpus("tasks", "mnli.json")))
    pool_from_datastore(workspace, "mnli", ["corpus__nli-pairs", "science_entailment"], 40)
    return workspace


async def test_three_cached_calls_per_row_and_the_majority_kept(mnli_ws, standin):
    f = await run(mnli_ws, standin, limit=8, samples=3)
    assert standin.chat_requests == 24 and f.requested == 8 and f.call_failures == 0 and f.retries == 0
    spec = prompts.spec_for(mnli_ws, read_task_file(corpus("tasks", "mnli.json")))
    seeds = {r.body["options"]["seed"] for r in standin.requests("/api/chat")}
    assert len(seeds) == 3, "each sample of a row sends its own seed"
    examples = {e.row: e for e in list_examples(mnli_ws, "mnli")}
    assert len(examples) == 8
    kept = 0
    for row, ex in examples.items():
        keys = sample_keys("mnli", row, spec.hash, settings(standin), 3)
        stored = q(mnli_ws, "select key, response, status, prompt_hash from teacher_calls where key in "
                            "(select unnest(?::varchar[]))", [keys])
        assert len(stored) == 3 and all(s[2] == "ok" and s[3] == spec.hash for s in stored)
        answers = [json.loads(s[1])["output"] for s in stored]
        top, votes = collections.Counter(answers).most_common(1)[0]
        assert ex.samples == 3
        if votes >= 2:
            kept += ex.status == "pending"
            assert ex.output == top and ex.agreement == pytest.approx(votes / 3)
            assert ex.raw_response in {s[1] for s in stored if json.loads(s[1])["output"] == top}, \
                "the example kept is one of the samples that reached the majority answer"
        else:
            assert ex.status == "failed" and ex.reason.startswith("no majority among 3 sampled answers")
            assert ex.agreement == pytest.approx(1 / 3)
    assert kept >= 1
    from engine.review import briefs

    assert {b.id: b.agreement for b in briefs(mnli_ws, "mnli")} == {e.id: e.agreement for e in examples.values()}, \
        "the review queue carries the agreement (to sort by it)"
    # a re-run repeats no call; the votes are cached under their own keys
    again = await run(mnli_ws, standin, limit=8, samples=3)
    assert again.cached == 8 and standin.chat_requests == 24
    assert q(mnli_ws, "select count(*) from teacher_calls where prompt_hash = ?", ["vote:" + spec.hash])[0][0] == 8
    # one answer per row is another set of calls: a vote never masquerades as a plain call
    await run(mnli_ws, standin, limit=2)
    assert standin.chat_requests == 26


async def test_a_failed_sample_is_asked_again_and_the_finished_ones_are_not(mnli_ws, standin):
    standin.inject("http500", times=1)
    first = await run(mnli_ws, standin, limit=3, samples=3, concurrency=1, retries=0)
    assert first.call_failures == 1 and standin.chat_requests == 1 + 3 * 2
    second = await run(mnli_ws, standin, limit=3, samples=3, concurrency=1, retries=0)
    assert second.call_failures == 0 and second.cached == 2
    assert standin.chat_requests == 1 + 3 * 2 + 3
    got = q(mnli_ws, "select row, samples from examples")
    assert len(got) == 3 and {s for _, s in got} == {3}
    assert q(mnli_ws, "select count(*) from examples where reason like 'teacher call failed%'")[0][0] == 0, \
        "the failed vote was replaced when its row was asked again"


def test_votes_and_answers_as_the_metric_extracts_them():
    mnli = read_task_file(corpus("tasks", "mnli.json"))
    key = answer_keyer(mnli)
    assert key("Entailment") == key("entailment.") == "Entailment" and key("maybe") is None
    bbh = read_task_file(corpus("tasks", "boolean_expressions.json"))
    key = answer_keyer(bbh)
    assert key("not True is False. So the answer is False.") == key("The answer is false") == "false"
    assert tally(["a", None, "b", "a"]).agreement == 0.5 and not tally(["a", "b", None, None]).majority
    assert tally(["x", "y", "y"]).answer == "y" and tally(["x", "y", "y"]).majority
    with pytest.raises(EngineError, match="at least 3"):
        check_samples(2)
    with pytest.raises(EngineError, match="synthesize"):
        check_samples(3, "synthesize")
    with pytest.raises(EngineError, match="text overlap"):
        answer_keyer(read_task_file(corpus("tasks", "mconala.json")))


def _answer(output: str, status: str = "pending", response: str = "") -> Answer:
    return Answer(status, None, Parsed("q", output, None, output), response or output, True, None, 1, 0.1, {},
                  {"eval_count": 5})


def test_decide_keeps_the_first_usable_majority_sample():
    answers = [_answer("No", response="r1"), _answer("Yes", "duplicate", "r2"), _answer("Yes", response="r3"),
               _answer("?", "failed", "r4"), _answer("Yes", response="r5")]
    kept = decide(answers, ["no", "yes", "yes", None, "yes"])
    assert (kept.response, kept.status, kept.samples, kept.agreement) == ("r3", "pending", 5, 0.6)
    assert kept.tokens["eval_count"] == 25 and kept.attempts == 1, "no sample needed a retry"
    none = decide(answers[:2] + answers[3:4], ["no", "yes", None])
    assert none.status == "failed" and "no ×1, yes ×1, unusable ×1" in (none.reason or "")


def test_transform_samples_and_examples_on_the_command_line(mnli_ws, standin, capsys):
    from rebase_tui.cli import main

    w = str(mnli_ws.path)
    mnli_ws.close()
    assert main(["transform", "mnli", "--samples", "2", "--host", standin.url, "-w", w]) == 1
    assert "--samples 2: a majority vote needs at least 3 answers" in capsys.readouterr().err
    assert main(["transform", "mnli", "--samples", "3", "--limit", "3", "--seed", "7", "--host", standin.url,
                 "--json", "-w", w]) == 0
    assert json.loads(capsys.readouterr().out)["requested"] == 3 and standin.chat_requests == 9
    assert main(["examples", "mnli", "-w", w]) == 0
    out = capsys.readouterr().out
    assert "agree" in out and "/3" in out
    assert main(["examples", "mnli", "--json", "-w", w]) == 0
    assert {e["samples"] for e in json.loads(capsys.readouterr().out)["examples"]} == {3}
