"""A toy NLI workspace for the Transform, Review and Train screens: one dataset, a task and its pool.

The rows are inserted as the datastore stores them (schema of migrations 0002/0003), so the teacher and
the review screens read real tables; examples for review come from the real teacher pipeline against the
Ollama stand-in where a test is about that, or from :func:`add_examples` for sheer volume.
Some cells hold markup-like text on purpose: it must display verbatim.
"""

from __future__ import annotations

import json
from typing import Any

from engine.tasks import Demonstration, Task, add_task

TASK = Task(
    name="nli",
    instruction="Decide whether the premise entails the hypothesis. Answer entailment, neutral or contradiction.",
    examples=(Demonstration("Premise: A man sleeps. Hypothesis: A person rests.", "entailment"),
              Demonstration("Premise: A dog runs. Hypothesis: A cat sleeps.", "neutral")),
    exclude=(),
)

WEIRD = "closing [/foo] tag and [bold]not bold[/bold] and [link=x]y[/link]"


def make_datastore(ws: Any, n_rows: int = 40) -> list[int]:
    """One dataset, one config, ``n_rows`` rows, the task, and its pool (all rows); return the row ids."""
    rows = []
    for i in range(n_rows):
        premise = f"Premise {i}: the {['cat', 'dog', 'bird', 'fox'][i % 4]} sat on mat {i}."
        if i == 3:
            premise = f"Premise 3: {WEIRD}"
        rows.append({"premise": premise, "hypothesis": f"Hypothesis {i}: an animal is {i % 3} metres away.",
                     "label": ["entailment", "neutral", "contradiction"][i % 3]})
    with ws.store.transaction() as cur:
        cur.execute("insert into datasets (id, name, source_path, description, status) "
                    "values (1, 'toy/nli', '/tmp/toy', 'toy NLI rows', 'ready')")
        cur.execute("insert into configs (id, dataset, name, split, columns, rows_total, status) "
                    "values (1, 1, 'default', 'train', ?, ?, 'ready')",
                    [json.dumps(["premise", "hypothesis", "label"]), n_rows])
        for i, data in enumerate(rows):
            cur.execute("insert into rows (id, dataset, config, row_id, data) values (?, 1, 1, ?, ?)",
                        [100 + i, i, json.dumps(data)])
    add_task(ws, TASK)
    with ws.store.transaction() as cur:
        for i in range(n_rows):
            cur.execute("insert into retrievals (task, rank, \"row\", score, input_score, output_score, "
                        "dataset_score, input_column, output_column) values (?, ?, ?, ?, 0.5, 0.5, 0.5, "
                        "'premise', 'label')", [TASK.name, i + 1, 100 + i, 1.0 - i / 1000])
    return [100 + i for i in range(n_rows)]


def add_examples(ws: Any, n: int, task: str = "nli", n_rows: int = 40) -> None:
    """``n`` pending examples of ``task`` written straight into the examples table (volume fixture)."""
    import pyarrow as pa

    table = pa.table({
        "task": [task] * n,
        "row": [100 + (i % n_rows) for i in range(n)],
        "input": [f"Premise {i}: example number {i} about {['cats', 'dogs', 'birds'][i % 3]}. "
                  f"Hypothesis: it is {i % 7} o'clock." for i in range(n)],
        "output": [["entailment", "neutral", "contradiction"][i % 3] for i in range(n)],
        "status": ["pending"] * n,
        "teacher_model": ["standin:1b"] * n,
    })
    with ws.store.cursor() as cur:
        cur.register("new_examples", table)
        cur.execute('insert into examples (task, "row", input, output, status, teacher_model) '
                    'select task, "row", input, output, status, teacher_model from new_examples')
        cur.unregister("new_examples")


def add_run(ws: Any, task: str = "nli", steps: int = 40, status: str = "finished") -> Any:
    """A training run of ``task`` (created by the engine) whose events file holds ``steps`` steps with a
    falling loss, an evaluation every 10 steps and its end, as a worker writes them; return its folder."""
    from engine.student import runs
    from engine.student.events import EvalMetrics, RunEnded, RunStarted, StepMetrics, append_event
    from engine.student.run_config import RunSettings
    from engine.tasks import get_task

    rows = [{"input": f"Premise {i}. Hypothesis {i}.", "output": "neutral"} for i in range(12)]
    path = runs.create_run(ws, rows, RunSettings(student="/models/tiny-student", epochs=1.0),
                           task=get_task(ws, task))
    append_event(path, RunStarted(path.name, 0, steps, "full", "cpu", "float32", "base", 1_000_000, 1_000_000,
                                  10, 2))
    for i in range(1, steps + 1):
        append_event(path, StepMetrics(i, steps, i / steps, 3.0 / i ** 0.5, 2e-4 * (1 - i / steps), 1.0,
                                       64 * i, 500.0 + i, 8.0, (steps - i) * 0.5, float(i)))
        if i % 10 == 0:
            append_event(path, EvalMetrics(i, 3.2 / i ** 0.5))
    append_event(path, RunEnded(status, steps, train_loss=3.0 / steps ** 0.5, eval_loss=3.2 / steps ** 0.5,
                                elapsed_s=float(steps)))
    return path
