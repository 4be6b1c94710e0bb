"""A teacher that misbehaves past retries, on both backends: a stream that trickles or never ends meets the
per-call deadline, a runaway reply or one huge line meets the size cap (in bounded memory), a host that dies
trips the circuit breaker; each is recorded as a failed call (partial reply kept) and counted apart from
unusable replies, and a later run resumes."""

from __future__ import annotations

import asyncio
import json
import time
import tracemalloc

import pytest

from engine.teacher.transform import ExampleDone, transform
from tests.engine.test_transform import add_corpus_task, finished, q
from tests.fixtures.standin import pool_from_datastore


@pytest.fixture
def mnli_ws(workspace):
    add_corpus_task(workspace, "mnli")
    pool_from_datastore(workspace, "mnli", ["corpus__nli-pairs", "science_entailment"], 12)
    return workspace


def marker(ws, rank: int) -> str:
    """Text of the pool row at ``rank`` that appears in its prompt (to aim a fault at that row)."""
    data = json.loads(q(ws, "select data from rows r join retrievals t on t.row = r.id where t.rank = ?",
                        [rank])[0][0])
    return str(data["premise"])[:40]


async def run(ws, server, limit=3, **kw):
    s = server.settings(**{"concurrency": 1, "seed": 7, **kw})
    return [ev async for ev in transform(ws, "mnli", s, limit=limit, text_interval=0.0)]


def failed_call(ws) -> tuple[str, str, str, str]:
    return q(ws, "select e.reason, e.raw_response, t.status, t.error from examples e join teacher_calls t "
                 "on t.key = e.call_key where e.status = 'failed'")[0]


async def test_a_trickling_stream_meets_the_deadline(mnli_ws, teacher_server):
    server = teacher_server()
    server.srv.inject("trickle", match=marker(mnli_ws, 2), seconds=0.05)
    t0 = time.monotonic()
    f = finished(await run(mnli_ws, server, deadline=1.5, read_timeout=5.0))
    assert time.monotonic() - t0 < 6, "the read timeout never fires on a trickle: the deadline ends it"
    assert (f.done, f.failed, f.call_failures, f.fault_kinds, f.complete) == \
        (2, 1, 1, {"deadline passed": 1}, False)
    reason, raw, status, error = failed_call(mnli_ws)
    assert "no complete reply within the deadline of 1.5 s (teacher.deadline)" in reason
    assert raw, "the text that arrived before the trickle is kept"
    assert status == "failed" and "deadline" in error
    server.srv.clear_faults()
    f = finished(await run(mnli_ws, server))
    assert (f.done, f.cached, f.complete) == (1, 2, True), "the next run asks for that row again"


async def test_an_endless_reply_meets_the_size_cap(mnli_ws, teacher_server):
    server = teacher_server()
    server.srv.inject("endless", match=marker(mnli_ws, 1), seconds=0.0005)
    f = finished(await run(mnli_ws, server, max_reply_chars=1000, deadline=60.0))
    assert (f.done, f.call_failures, f.fault_kinds) == (2, 1, {"reply too large": 1})
    reason, raw, status, _ = failed_call(mnli_ws)
    assert "the reply passed 1,000 characters (teacher.max_reply_chars)" in reason and status == "failed"
    assert 0 < len(raw) <= 1000, "the partial reply is kept, cut at the cap"
    assert server.srv.chat_requests == 3, "a runaway reply is not asked for again in the same run"


async def test_one_huge_line_is_refused_in_bounded_memory(mnli_ws, teacher_server):
    server = teacher_server()
    size = 256 * 1024 * 1024
    server.srv.inject("huge_line", match=marker(mnli_ws, 1), size=size)
    tracemalloc.start()
    try:
        f = finished(await run(mnli_ws, server, limit=2))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (f.done, f.call_failures, f.fault_kinds) == (1, 1, {"reply too large": 1})
    reason = failed_call(mnli_ws)[0]
    assert "a reply line passed 1,265,536 bytes (teacher.max_reply_chars)" in reason
    assert peak < 48 * 1024 * 1024, f"{peak / 2**20:.0f} MB held for a {size >> 20} MB line"
    time.sleep(0.2)
    assert server.srv.bytes_sent < size // 4, "the client hung up instead of reading the whole line"


async def test_calls_that_could_not_be_answered_are_counted_apart(mnli_ws, teacher_server):
    server = teacher_server()
    server.srv.inject("http503", times=100, match=marker(mnli_ws, 2))
    server.srv.inject("bad_json", match=marker(mnli_ws, 3))
    f = finished(await run(mnli_ws, server, retries=1))
    assert (f.done, f.failed, f.call_failures, f.fault_kinds) == (1, 2, 1, {"HTTP 503": 1})
    assert f.faults() == "1 teacher call(s) could not be made or answered (1 × HTTP 503)"
    assert not f.complete and f.to_json()["fault_kinds"] == {"HTTP 503": 1}


async def test_the_breaker_stops_a_run_whose_host_died_and_a_later_run_resumes(mnli_ws, teacher_server):
    server = teacher_server(num_parallel=2, latency=0.05)
    port = server.srv.port
    s = server.settings(concurrency=2, seed=7, retries=3, backoff=0.1, connect_timeout=0.5)
    events, done = [], 0
    t0 = time.monotonic()
    async for ev in transform(mnli_ws, "mnli", s, text_interval=0.0):
        events.append(ev)
        if isinstance(ev, ExampleDone):
            done += 1
            if done == 4:
                await asyncio.to_thread(server.srv.kill)
    f = finished(events)
    assert f.stopped and "stopped answering" in f.stopped and f.skipped >= 12 - 4 - 2 - 2
    calls_after_kill = [e for e in events[events.index(next(e for e in events if isinstance(e, ExampleDone)
                                                            and e.status == "failed")):]
                        if isinstance(e, ExampleDone)]
    assert len(calls_after_kill) <= 2, "only the calls in flight when the host died were tried"
    assert f.call_failures == len(calls_after_kill) and not f.complete
    assert time.monotonic() - t0 < 10
    assert any("stopped early" in getattr(e, "message", "") for e in events)
    ok_before = q(mnli_ws, "select count(*) from examples where status = 'pending'")[0][0]
    # the host comes back on the same port: the next run does the rest, nothing twice
    back = type(server.srv)(port=port, num_parallel=2).start()
    try:
        f = finished([ev async for ev in transform(mnli_ws, "mnli", s, text_interval=0.0)])
        assert f.complete and f.cached == ok_before and back.chat_completed == 12 - ok_before
    finally:
        back.stop()
    assert q(mnli_ws, "select count(*), count(distinct row) from examples where status = 'pending'") == [(12, 12)]
