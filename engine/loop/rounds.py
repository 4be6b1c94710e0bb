"""The record of refinement rounds: the ``rounds`` and ``round_rows`` tables (this module owns their SQL).

A round is driven by one run: which of its validation items it got wrong (the failures), the validation items
themselves (so the run trained after the round is scored on the same ones), its scores before, the rows the
round added to the task's pool with the failure each is closest to, how they were found, and, once the next
run is trained and scored, that run and its scores after. ``status`` moves ``transform`` (rows added, the
teacher at work) → ``review`` (the examples wait for the reviewer) → ``training`` (the next run is training)
→ ``done``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.errors import EngineError
from engine.retrieval.pool import append_pool
from engine.student.evaluate import EvalResult

if TYPE_CHECKING:
    from engine.retrieval.refine import RoundHit, RoundRetrieval
    from engine.workspace import Workspace

STATUSES = ("transform", "review", "training", "done")


@dataclass(frozen=True)
class RoundFailure:
    """A validation item the run got wrong: its input, its references and what the run answered."""

    input: str
    references: tuple[str, ...]
    prediction: str

    def to_json(self) -> dict[str, Any]:
        return {"input": self.input, "references": list(self.references), "prediction": self.prediction}


@dataclass(frozen=True)
class Round:
    """One refinement round of a task (see the module docstring). ``validation`` holds the items as
    ``{"input", "output"}`` rows; ``before`` / ``after`` the scores on them of ``run`` / ``next_run``."""

    id: int
    task: str
    number: int
    run: str
    validation_kind: str
    validation: tuple[dict[str, str], ...]
    failures: tuple[RoundFailure, ...]
    before: EvalResult
    rows_added: int
    retrieval: dict[str, Any]
    status: str
    fresh: bool | None
    next_run: str | None
    after: EvalResult | None
    created_at: str | None

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "round": self.number, "run": self.run, "status": self.status,
                "validation": {"kind": self.validation_kind, "items": len(self.validation)},
                "failures": [f.to_json() for f in self.failures], "rows_added": self.rows_added,
                "retrieval": self.retrieval, "before": self.before.to_json(),
                "after": self.after.to_json() if self.after else None, "next_run": self.next_run,
                "fresh": self.fresh, "created_at": self.created_at}

    def describe(self) -> str:
        """``round 2 of mnli (from run R): 14 of 60 validation items wrong, 40 rows added; exact 0.767 → 0.800``."""
        name, value = self.before.headline
        scores = f"{name} {value:.3f}" + (f" → {self.after.value(name):.3f}" if self.after and
                                          name in self.after.metrics else "")
        return (f"round {self.number} of {self.task} (from run {self.run}): {len(self.failures)} of "
                f"{len(self.validation)} validation items wrong, {self.rows_added} rows added; {scores}")


@dataclass(frozen=True)
class RoundRow:
    """A row a round added: its pool rank in the round, scores, the failure it is closest to (its position in
    the round's failures and its input) and how close, and where the row comes from with its data."""

    rank: int
    row: int
    score: float
    input_score: float
    output_score: float
    dataset_score: float
    failure: int
    failure_input: str
    closeness: float
    dataset: str
    config: str
    split: str
    row_id: int
    data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"rank": self.rank, "row": self.row, "score": self.score, "failure": self.failure,
                "failure_input": self.failure_input, "closeness": self.closeness, "dataset": self.dataset,
                "config": self.config, "row_id": self.row_id, "data": self.data}


_COLUMNS = ("id, task, number, run, validation_kind, validation, failures, metrics_before, rows_added, retrieval, "
            "status, fresh, next_run, metrics_after, created_at")


def _round(r: tuple[Any, ...]) -> Round:
    fails = tuple(RoundFailure(f["input"], tuple(f["references"]), f["prediction"]) for f in json.loads(r[6]))
    after = EvalResult.from_json(json.loads(r[13])) if r[13] else None
    return Round(int(r[0]), r[1], int(r[2]), r[3], r[4], tuple(json.loads(r[5])), fails,
                 EvalResult.from_json(json.loads(r[7])), int(r[8]), json.loads(r[9]) if r[9] else {}, r[10],
                 r[11], r[12], after, str(r[14]) if r[14] is not None else None)


def list_rounds(ws: Workspace, task: str) -> list[Round]:
    """The task's rounds, first first."""
    with ws.store.cursor() as cur:
        return [_round(r) for r in cur.execute(f"select {_COLUMNS} from rounds where task = ? order by number",
                                               [task]).fetchall()]


def get_round(ws: Workspace, task: str, number: int) -> Round:
    """Round ``number`` of ``task``; EngineError naming the task's rounds when there is none."""
    with ws.store.cursor() as cur:
        got = cur.execute(f"select {_COLUMNS} from rounds where task = ? and number = ?", [task, int(number)]).fetchall()
    if not got:
        known = [str(r.number) for r in list_rounds(ws, task)]
        raise EngineError(f"task {task} has no round {number} ({'rounds: ' + ', '.join(known) if known else 'no rounds yet'})",
                          fix=f"list them with `rebase-tui refine --rounds {task}`")
    return _round(got[0])


def round_for_run(ws: Workspace, run: str) -> Round | None:
    """The round run ``run``'s mistakes drove, if there is one."""
    with ws.store.cursor() as cur:
        got = cur.execute(f"select {_COLUMNS} from rounds where run = ?", [run]).fetchall()
    return _round(got[0]) if got else None


def round_rows(ws: Workspace, task: str, number: int) -> list[RoundRow]:
    """The rows round ``number`` of ``task`` added, by their rank in the round, each with its closest failure."""
    found = get_round(ws, task, number)
    with ws.store.cursor() as cur:
        got = cur.execute(
            "select q.rank, q.\"row\", q.score, q.input_score, q.output_score, q.dataset_score, q.failure, "
            "q.closeness, d.name, c.name, c.split, w.row_id, w.data from round_rows q "
            "join rows w on w.id = q.\"row\" join datasets d on d.id = w.dataset join configs c on c.id = w.config "
            "where q.round = ? order by q.rank", [found.id]).fetchall()
    out = []
    for rank, row, score, s_in, s_out, s_ds, fail, close, dataset, config, split, row_id, data in got:
        value = json.loads(data) if isinstance(data, str) else data
        out.append(RoundRow(int(rank), int(row), score, s_in, s_out, s_ds, int(fail), found.failures[int(fail)].input,
                            close, dataset, config, split, int(row_id),
                            value if isinstance(value, dict) else {"value": value}))
    return out


def create_round(ws: Workspace, task: str, run: str, validation_kind: str, validation: list[dict[str, str]],
                 failures: list[RoundFailure], before: EvalResult, found: RoundRetrieval) -> Round:
    """Record a new round with its rows, and add the rows to the task's pool, in one transaction."""
    hits: tuple[RoundHit, ...] = found.hits
    with ws.store.transaction() as cur:
        number = cur.execute("select coalesce(max(number), 0) + 1 from rounds where task = ?", [task]).fetchall()[0][0]
        rid = cur.execute(
            "insert into rounds (task, number, run, validation_kind, validation, failures, metrics_before, "
            "rows_added, retrieval, status) values (?, ?, ?, ?, ?, ?, ?, ?, ?, 'transform') returning id",
            [task, number, run, validation_kind, json.dumps(validation, ensure_ascii=False),
             json.dumps([f.to_json() for f in failures], ensure_ascii=False), json.dumps(before.to_json()),
             len(hits), json.dumps(found.to_json())]).fetchall()[0][0]
        for at in range(0, len(hits), 256):
            chunk = hits[at:at + 256]
            cur.execute("insert into round_rows values " + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk)),
                        [v for h in chunk for v in (rid, h.key, h.rank, h.score, h.input_score, h.output_score,
                                                    h.dataset_score, h.failure, h.closeness)])
        append_pool(cur, task, hits)
    return get_round(ws, task, int(number))


def set_status(ws: Workspace, round_id: int, status: str, *, next_run: str | None = None, fresh: bool | None = None,
               after: EvalResult | None = None) -> None:
    """Move a round on (and record its next run, whether it started afresh, its scores after)."""
    if status not in STATUSES:
        raise EngineError(f"unknown round status {status!r}", fix=f"use one of {', '.join(STATUSES)}")
    with ws.store.cursor() as cur:
        cur.execute("update rounds set status = ?, next_run = coalesce(?, next_run), fresh = coalesce(?, fresh), "
                    "metrics_after = coalesce(?, metrics_after), updated_at = current_timestamp where id = ?",
                    [status, next_run, fresh, json.dumps(after.to_json()) if after else None, int(round_id)])


def round_row_keys(ws: Workspace, round_id: int) -> list[int]:
    """The ``rows.id`` of the rows a round added."""
    with ws.store.cursor() as cur:
        return [int(r[0]) for r in cur.execute('select "row" from round_rows where round = ? order by rank',
                                               [int(round_id)]).fetchall()]


def round_examples(ws: Workspace, task: str, round_id: int) -> dict[str, list[int]]:
    """The ids of the examples made from a round's rows, by status."""
    with ws.store.cursor() as cur:
        got = cur.execute("select e.status, list(e.id order by e.id) from examples e join round_rows q "
                          "on q.\"row\" = e.\"row\" where q.round = ? and e.task = ? and e.method = 'rebase' "
                          "group by e.status", [int(round_id), task]).fetchall()
    return {status: [int(i) for i in ids] for status, ids in got}
