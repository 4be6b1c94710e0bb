"""`transform --prompt paper`: the released ReBase prompt as the stand-in receives it, its long-row fallback, and
its own cache keys (the default prompt's keys unchanged)."""

from __future__ import annotations

import json

from engine.tasks import add_task, read_task_file
from engine.teacher import paper_prompt, prompts
from engine.teacher.client import TeacherSettings
from engine.teacher.transform import TransformFinished, transform
from rebase_tui.cli import main
from tests.conftest import corpus
from tests.fixtures.standin import pool_from_datastore

MODEL = "llama3.1:8b"


def settings(srv, **kw) -> TeacherSettings:
    return TeacherSettings(**{"host": srv.url, "model": MODEL, "backoff": 0.01, "read_timeout": 5.0, **kw})


async def run(ws, srv, task: str, **kw) -> TransformFinished:
    events = [ev async for ev in transform(ws, task, settings(srv), text_interval=0.0, **kw)]
    return next(e for e in events if isinstance(e, TransformFinished))


def q(ws, sql, params=()):
    with ws.store.cursor() as cur:
        return cur.execute(sql, list(params)).fetchall()


def add_long_row(ws, task: str, data: dict, input_column: str, output_column: str) -> int:
    """Append a row to the task's pool with the best cells retrieval would have named; return its rank."""
    with ws.store.transaction() as cur:
        rid = cur.execute("select coalesce(max(id), 0) + 1 from rows").fetchall()[0][0]
        rank = cur.execute("select coalesce(max(rank), 0) + 1 from retrievals where task = ?", [task]).fetchall()[0][0]
        cur.execute("insert into rows values (?, 1, 1, ?, ?)", [rid, 990000, json.dumps(data)])
        cur.execute("insert into retrievals (task, rank, row, score, input_score, output_score, dataset_score, "
                    "input_column, output_column) values (?, ?, ?, 0, 0, 0, 0, ?, ?)",
                    [task, rank, rid, input_column, output_column])
    return rank


def test_the_paper_prompt_reads_as_released(workspace):
    task = read_task_file(corpus("tasks", "mnli.json"))
    add_task(workspace, task)
    spec = prompts.spec_for(workspace, task, prompt="paper")
    row = {"premise": "A man plays a guitar on the street.", "hypothesis": "Someone makes music.",
           "label": "entailment", "long": "x" * 300, "empty": None}
    system, user = spec.messages(spec.sample(row))
    assert system == {"role": "system", "content": "You are a useful assistant"}
    text = user["content"]
    assert text.startswith("\nI would like you to create questions for a test. The directions for the test are:\n\n"
                           f"```\n{task.instruction}\n```\nThe format should be in json like this:\n\n```json\n{{\n")
    first = task.examples[0]
    assert f'{{\n"input": "{first.input}",\n"output": "{first.output}",\n}}' in text, "values pasted in as they are"
    assert ("Please create a question where the format and type of question is similar to the examples provided "
            "above, but the content is inspired by the example provided below.\nYou need to decide which part of "
            "the dataset to use.\n") in text
    shown = json.loads(text.split("You need to decide which part of the dataset to use.\n")[1].split("\n")[0])
    assert shown["premise"] == json.dumps(row["premise"]), "each value JSON-encoded inside the JSON line"
    assert shown["long"] == json.dumps(row["long"])[:250] + "...", "cut to 250 characters plus ..."
    assert "empty" not in shown
    assert text.endswith('Your response MUST be a JSON with exactly 2 fields: "input" and "output".\n'
                         "Response (JSON ONLY):\n")
    cot = prompts.spec_for(workspace, read_task_file(corpus("tasks", "web_of_lies.json")), prompt="paper")
    assert 'exactly 3 fields: "input", "reasoning" and "answer".' in cot.messages({"a": "b"})[1]["content"], \
        "the last sentence names the fields of the schema sent"


def test_a_row_over_4000_characters_sends_only_its_best_cells():
    row = {"question": "Which river runs through the town?", "context": "The town lies on a river. " * 200,
           "answer": "the Wensum", "id": "q-17"}
    assert len(str(row)) > paper_prompt.LONG_ROW_CHARS
    assert paper_prompt.paper_sample(row, "question", "answer") == \
        {"input": "Which river runs through the town?", "output": "the Wensum"}
    short = {k: v for k, v in row.items() if k != "context"}
    assert paper_prompt.paper_sample(short, "question", "answer") == short, "a short row is sent whole"


async def test_paper_prompt_has_its_own_cache_keys_and_is_recorded(workspace, standin_factory):
    task = read_task_file(corpus("tasks", "mnli.json"))
    add_task(workspace, task)
    pool_from_datastore(workspace, "mnli", ["corpus__nli-pairs"], 3)
    long = {"premise": "The committee met on Tuesday. " * 150, "hypothesis": "The committee met.",
            "label": "entailment"}
    rank = add_long_row(workspace, "mnli", long, "premise", "label")
    default = prompts.spec_for(workspace, task)
    assert default.hash == prompts.prompt_hash(prompts.DEFAULT_TEMPLATE, task, default.schema), \
        "the default prompt hashes as it did before the choice existed: old caches stay valid"
    assert prompts.spec_for(workspace, task, prompt="paper").hash != default.hash
    srv = standin_factory(num_parallel=2)
    first = await run(workspace, srv, "mnli")
    assert (first.requested, first.cached) == (rank, 0) and srv.chat_completed == rank
    paper = await run(workspace, srv, "mnli", prompt="paper")
    assert (paper.requested, paper.cached) == (rank, 0), "the paper's prompt makes calls of its own"
    assert srv.chat_completed == 2 * rank
    again = await run(workspace, srv, "mnli", prompt="paper")
    assert (again.cached, srv.chat_completed) == (rank, 2 * rank), "and caches them like any call"
    bodies = [r.body for r in srv.requests("/api/chat")]
    paper_bodies = [b for b in bodies if b["messages"][0]["role"] == "system"]
    assert len(paper_bodies) == rank
    sent = [b["messages"][1]["content"] for b in paper_bodies]
    rows = [json.loads(t.split("which part of the dataset to use.\n")[1].split("\n")[0]) for t in sent]
    fallback = [r for r in rows if set(r) == {"input", "output"}]
    assert fallback == [{"input": json.dumps(long["premise"])[:250] + "...", "output": '"entailment"'}], \
        "the long row is replaced by its best input and output cells"
    got = q(workspace, "select prompt, count(*), count(distinct prompt_hash) from examples group by prompt "
                       "order by prompt")
    assert got == [("default", rank, 1), ("paper", rank, 1)]


def test_show_prompt_follows_the_choice(workspace, tmp_path, capsys):
    w = str(tmp_path / "w")
    assert main(["task", "add", str(corpus("tasks", "mnli.json")), "-w", w]) == 0
    capsys.readouterr()
    assert main(["transform", "mnli", "--prompt", "paper", "--show-prompt", "--json", "-w", w]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["messages"][0]["content"] == "You are a useful assistant"
    assert "I would like you to create questions for a test." in doc["messages"][1]["content"]
    assert main(["transform", "mnli", "--method", "synthesize", "--show-prompt", "-w", w]) == 0
    out = capsys.readouterr().out
    assert "Write ONE new example of the task." in out and "data sample" not in out
