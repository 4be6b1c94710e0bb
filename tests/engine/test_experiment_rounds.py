"""`experiment` with ``rounds = N``: rebase followed by refinement rounds, each round's run a column of its own,
run in-process on the ingested test corpus with the Ollama stand-in and a tiny student; run again, nothing is
asked or trained twice. And the spec's rules for rounds."""

from __future__ import annotations

import pytest

from engine.errors import EngineError
from engine.experiments.runner import ExperimentFinished, run_experiment
from engine.experiments.spec import SpecError, read_spec
from engine.loop.rounds import list_rounds
from engine.workspace import Workspace
from tests.conftest import corpus

SPEC = """name = "rounds"
methods = ["rebase"]
rounds = 1
[teacher]
model = "llama3.1:8b"
host = "{host}"
seed = 5
[student]
model = "{student}"
method = "full"
max_steps = 4
batch_size = 4
lr = 5e-3
max_length = 160
eval_fraction = 0.25
eval_every = 4
device = "cpu"
threads = 1
[eval]
max_new_tokens = 12
limit = 4
device = "cpu"
[[tasks]]
task = "{task}"
test = "{test}"
examples = 8
metric = "exact"
"""


def _spec(tmp_path, srv, tiny_student, **extra) -> object:
    text = SPEC.format(host=srv.url, student=tiny_student, task=corpus("tasks", "boolean_expressions.json"),
                       test=corpus("experiments", "bbh_test", "boolean_expressions.json"))
    for key, value in extra.items():
        text = text.replace(f"{key} = ", f"{key} = {value}\n# was: ", 1)
    path = tmp_path / "rounds.toml"
    path.write_text(text, encoding="utf-8")
    return read_spec(path)


async def _run(ws, spec):
    return [ev async for ev in run_experiment(ws, spec)]


async def test_rounds_follow_rebase_as_columns_of_their_own(small_datastore, tiny_student, standin, tmp_path):
    spec = _spec(tmp_path, standin, tiny_student)
    assert spec.rounds == 1 and spec.columns == ("rebase", "rebase+r1")
    with Workspace(small_datastore) as ws:
        events = await _run(ws, spec)
        end = events[-1]
        assert isinstance(end, ExperimentFinished) and end.results.complete
        assert {(r.method, r.metric) for r in end.results.rows} == {("rebase", "exact"), ("rebase+r1", "exact")}
        rows = {r.method: r for r in end.results.rows}
        (found,) = list_rounds(ws, "boolean_expressions")
        assert found.status == "done" and found.next_run and found.rows_added >= 10
        assert rows["rebase+r1"].teacher_calls == rows["rebase"].teacher_calls + found.rows_added
        assert rows["rebase+r1"].n_train > rows["rebase"].n_train, "the next run trained on the round's examples too"
        head, lines = end.results.table()
        assert head == ["task", "metric", "rebase", "rebase+r1"] and "…" not in lines[0]
        calls, runs = standin.chat_requests, sorted(p.name for p in ws.runs_dir.iterdir())
        again = await _run(ws, spec)
        assert again[-1].results.to_json() == end.results.to_json()
        assert standin.chat_requests == calls and sorted(p.name for p in ws.runs_dir.iterdir()) == runs


def test_rounds_need_rebase_and_a_validation_hold_out(tmp_path, standin, tiny_student, small_datastore):
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\nmethods = ["synthesize"]\nrounds = -1\n[[tasks]]\ntask = "t"\ntest = "t.json"\n'
                    'examples = 2\n', encoding="utf-8")
    (tmp_path / "t.json").write_text('{"examples": [{"input": "a", "target": "b"}]}', encoding="utf-8")
    with pytest.raises(SpecError, match="rounds must be a whole number of at least 0"):
        read_spec(path)
    path.write_text(path.read_text().replace("rounds = -1", "rounds = 2"), encoding="utf-8")
    with pytest.raises(SpecError, match="rounds: refinement rounds follow the rebase method"):
        read_spec(path)
    spec = _spec(tmp_path, standin, tiny_student, eval_fraction="0.0")
    with Workspace(small_datastore) as ws, pytest.raises(EngineError, match="rounds need a validation hold-out"):
        import asyncio

        asyncio.run(_run(ws, spec))
