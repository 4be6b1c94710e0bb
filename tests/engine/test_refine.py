"""`rebase-tui refine RUN` end to end on the ingested test corpus with the Ollama stand-in and a tiny student: a
round adds only new, unbanned rows nearest the run's validation failures and records them with the failure
each is closest to; the teacher transforms exactly those rows; training waits for review, continues from the
run on everything accepted (the validation items held out) and records the scores after; and the refusals."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from engine import review
from engine.errors import EngineError
from engine.experiments.spec import EvalOptions
from engine.loop import rounds
from engine.loop.refine import RoundDone, RoundStarted, RoundTraining, RoundWaiting, refine
from engine.loop.validation import validation_items
from engine.retrieval.pool import load_pool, store_pool
from engine.student import runs
from engine.student.evaluate import evaluate, read_predictions
from engine.student.loop import train
from engine.student.run_config import RunSettings, read_config
from engine.tasks import add_task, read_task_file
from engine.teacher.client import TeacherSettings
from engine.teacher.transform import ExampleDone, transform
from engine.workspace import Workspace
from rebase_tui.cli import main
from tests.conftest import corpus

EVALS = EvalOptions(max_new_tokens=12, batch_size=8, device="cpu")
BAN = "movie_sentiment"


def teacher(srv) -> TeacherSettings:
    return TeacherSettings(host=srv.url, model="llama3.1:8b", concurrency=2, backoff=0.01, read_timeout=5.0, seed=3)


def student(tiny_student, **kw) -> RunSettings:
    base = dict(student=str(tiny_student), method="full", max_steps=4, lr=5e-3, batch_size=4, max_length=160,
                eval_every=4, device="cpu", seed=0, threads=1, eval_fraction=0.25)
    return RunSettings(**{**base, **kw})


async def events_of(gen) -> list:
    return [ev async for ev in gen]


def q(ws, sql, params=()):
    with ws.store.cursor() as cur:
        return cur.execute(sql, list(params)).fetchall()


@pytest.fixture
def ws(small_datastore):
    with Workspace(small_datastore) as w:
        yield w


async def _task_with_run(ws, srv, tiny_student, **settings) -> tuple[str, set[int]]:
    """The mnli task (movie_sentiment banned) with a pool of 16, its examples accepted, and a tiny run on them."""
    from engine.retrieval.retriever import Retriever

    task = read_task_file(corpus("tasks", "mnli.json"))
    task = replace(task, exclude=(*task.exclude, BAN))
    add_task(ws, task)
    store_pool(ws, task, Retriever(ws).search(task, top=16))
    await events_of(transform(ws, "mnli", teacher(srv), text_interval=0.0))
    review.accept_all(ws, "mnli")
    from engine.student.training_data import accepted_examples

    path = runs.create_run(ws, accepted_examples(ws, "mnli"), student(tiny_student, **settings), task=task,
                           source="task:mnli")
    assert list(train(path))[-1].status == "finished"
    runs.record(ws, path)
    return path.name, {p.row for p in load_pool(ws, "mnli")}


async def test_a_round_adds_new_rows_near_the_failures_then_trains_on_everything_accepted(ws, standin, tiny_student,
                                                                                         tmp_path, capsys):
    run, pool = await _task_with_run(ws, standin, tiny_student)
    path = ws.runs_dir / run
    # the run was last scored on a test file: refine never learns from it, it scores the validation split
    test_file = tmp_path / "test.jsonl"
    test_file.write_text("".join(json.dumps({"input": f"Premise: p{i}. Hypothesis: h{i}.", "output": "Neutral"}) + "\n"
                                 for i in range(3)), encoding="utf-8")
    [ev async for ev in _iterate(evaluate(path, test_file, max_new_tokens=12, device="cpu"))]
    calls = standin.chat_requests

    got = await events_of(refine(ws, run, teacher(standin), top=6, evals=EVALS))
    assert any("never learns from a test set" in getattr(e, "message", "") for e in got)
    started = next(e.round for e in got if isinstance(e, RoundStarted))
    waiting = got[-1]
    assert isinstance(waiting, RoundWaiting) and waiting.made == 6
    validation = [json.loads(line) for line in (path / "eval.jsonl").read_text().splitlines()]
    preds = read_predictions(path)
    assert [p.input for p in preds] == [v["input"] for v in validation], "scored on the validation split"
    wrong = [p.input for p in preds if p.correct is False]
    assert [f.input for f in started.failures] == wrong and wrong
    assert started.validation_kind == "split" and list(started.validation) == validation
    assert started.before.n == len(validation) and started.number == 1 and started.run == run

    # the rows: new (not in the pool before), not banned, the nearest to the failures, each with its closest one
    added = rounds.round_rows(ws, "mnli", 1)
    assert len(added) == 6 and not {r.row for r in added} & pool
    assert all(r.dataset != BAN for r in added)
    assert {r.row for r in added} <= {p.row for p in load_pool(ws, "mnli")}, "the rows joined the task's pool"
    from engine.retrieval.refine import Failure, refine_search
    from engine.retrieval.retriever import Retriever

    task = read_task_file(corpus("tasks", "mnli.json"))
    task = replace(task, exclude=(*task.exclude, BAN))
    fails = [Failure(f.input, f.references[0]) for f in started.failures]
    reference = refine_search(Retriever(ws), task, fails, top=6, exclude_rows=pool, full=True)
    assert [r.row for r in added] == [h.key for h in reference.hits]
    assert [(r.failure, round(r.closeness, 5)) for r in added] == \
        [(h.failure, round(h.closeness, 5)) for h in reference.hits]
    assert all(r.failure_input == started.failures[r.failure].input for r in added)
    # the teacher transformed exactly those rows
    assert standin.chat_requests == calls + 6
    made = rounds.round_examples(ws, "mnli", started.id)
    assert sum(len(v) for v in made.values()) == 6

    # review first: refine waits while any of the round's examples is pending
    again = await events_of(refine(ws, run, teacher(standin), evals=EVALS))
    assert isinstance(again[-1], RoundWaiting) and again[-1].pending == len(made.get("pending", []))
    assert standin.chat_requests == calls + 6 and len(runs.run_dirs(ws)) == 1
    review.accept_all(ws, "mnli")
    done = await events_of(refine(ws, run, teacher(standin), evals=EVALS))
    training = next(e for e in done if isinstance(e, RoundTraining))
    finished = done[-1]
    assert isinstance(finished, RoundDone) and finished.round.status == "done"
    nxt = ws.runs_dir / training.run
    cfg = read_config(nxt)
    assert cfg.init_from == str(path / "model") and finished.round.next_run == training.run
    assert [json.loads(line) for line in (nxt / "eval.jsonl").read_text().splitlines()] == validation
    trained = {json.loads(line)["input"] for line in (nxt / "train.jsonl").read_text().splitlines()}
    assert not trained & {v["input"] for v in validation}, "the validation items are never trained on"
    round_inputs = {e.input for e in review.list_examples(ws, "mnli", "accepted") if e.row in {r.row for r in added}}
    assert round_inputs and round_inputs <= trained
    assert finished.round.after is not None and finished.round.after.n == len(validation)
    # done: nothing more to do, nothing asked
    assert isinstance((await events_of(refine(ws, run, teacher(standin), evals=EVALS)))[-1], RoundDone)
    assert standin.chat_requests == calls + 6 and len(runs.run_dirs(ws)) == 2
    # the rounds, as front ends read them
    ws_path = str(ws.path)
    ws.close()
    capsys.readouterr()
    assert main(["refine", "mnli", "--rounds", "--json", "-w", ws_path]) == 0
    (listed,) = json.loads(capsys.readouterr().out)["rounds"]
    assert (listed["round"], listed["status"], listed["next_run"]) == (1, "done", training.run)
    assert listed["before"]["n"] == listed["after"]["n"] == len(validation)
    assert main(["refine", "mnli", "--round", "1", "-w", ws_path]) == 0
    assert "closest failure" in capsys.readouterr().out
    import asyncio

    assert await asyncio.to_thread(main, ["refine", run, "--json", "-w", ws_path]) == 0   # it runs its own loop
    assert json.loads(capsys.readouterr().out)["state"] == "done"


async def _iterate(gen):
    for ev in gen:
        yield ev


async def test_what_refine_refuses(ws, standin, tiny_student):
    run, _ = await _task_with_run(ws, standin, tiny_student, eval_fraction=0.0)
    path = ws.runs_dir / run
    with pytest.raises(EngineError, match="trained on every accepted example of mnli"):
        await events_of(refine(ws, run, teacher(standin), evals=EVALS))
    assert rounds.list_rounds(ws, "mnli") == []
    # accepted examples the run never saw make a carved validation slice
    await events_of(transform(ws, "mnli", teacher(standin), text_interval=0.0, limit=16))
    from engine.retrieval.retriever import Retriever

    task = replace(read_task_file(corpus("tasks", "mnli.json")), exclude=("movie_sentiment",))
    store_pool(ws, task, Retriever(ws).search(task, top=20))
    made = [ev async for ev in transform(ws, "mnli", teacher(standin), text_interval=0.0)
            if isinstance(ev, ExampleDone) and ev.status == "pending"]
    review.accept(ws, "mnli", [e.example_id for e in made])
    val = validation_items(ws, path, read_config(path))
    assert val.kind == "carved" and len(val.rows) == len(made) and (path / "refine-validation.jsonl").exists()
    with pytest.raises(EngineError, match="unknown run"):
        await events_of(refine(ws, "no-such-run", teacher(standin)))


def test_the_weights_a_continued_run_starts_from(tmp_path, tiny_student):
    from engine.student.events import TrainingFault
    from engine.student.model import start_weights
    from engine.student.run_config import DataInfo, RunConfig

    adapter, full, empty = tmp_path / "adapter", tmp_path / "full", tmp_path / "empty"
    for folder, marker in ((adapter, "adapter_config.json"), (full, "config.json"), (empty, None)):
        folder.mkdir()
        if marker:
            (folder / marker).write_text("{}", encoding="utf-8")

    def cfg(init):
        return RunConfig("r", student(tiny_student), DataInfo("", "", 1, 1), 4, init_from=str(init) if init else None)

    latest = tmp_path / "checkpoints" / "step-000004"
    assert start_weights(cfg(adapter), latest, "lora") == (latest, None), "a resumed run loads its checkpoint"
    assert start_weights(cfg(None), None, "full") == (None, None)
    assert start_weights(cfg(adapter), None, "lora") == (adapter, None)
    assert start_weights(cfg(full), None, "lora") == (None, full), "a new LoRA goes on full weights"
    assert start_weights(cfg(full), None, "full") == (None, full)
    with pytest.raises(TrainingFault, match="LoRA adapter"):
        start_weights(cfg(adapter), None, "full")
    with pytest.raises(TrainingFault, match="holds no model"):
        start_weights(cfg(empty), None, "lora")
    assert RunConfig.from_json(cfg(adapter).to_json()).init_from == str(adapter)
    assert "init_from" not in cfg(None).to_json(), "run.json of a run from the student is as before"
