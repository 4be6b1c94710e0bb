"""Hardening of the datastore, tasks and retrieval against bad or unusual input, on real components.

Each test feeds one kind of input that used to end in a traceback or a silent loss: a task with thousands
of demonstrations, an unreadable folder, a damaged usearch file, a task file or JSONL line nested
thousands deep, a second file claiming a dataset id already taken, CSV headers that repeat and rows that
run past the header, and numeric options out of range.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
from pathlib import Path

import pytest

from engine.errors import EngineError
from engine.workspace import Workspace
from rebase_tui.cli import main


def _jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _cli(capsys, *argv) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="session")
def tiny_template(tmp_path_factory, embedder) -> Path:
    """A workspace holding two small real datasets (60 rows, 120 values), ingested once per session."""
    from engine.datastore.ingest import run_ingest

    root = tmp_path_factory.mktemp("tiny")
    animals = _jsonl(root / "data" / "animals.jsonl",
                     [{"q": f"what sound does animal {i} make", "a": f"sound {i}"} for i in range(30)])
    sums = _jsonl(root / "data" / "sums.jsonl",
                  [{"question": f"{i} plus {i}", "answer": str(2 * i)} for i in range(30)])
    with Workspace(root / "ws") as ws:
        summary = run_ingest(ws, [animals, sums], embedder=embedder)
    assert summary.added.datasets == 2, summary
    return root / "ws"


@pytest.fixture
def tiny(tiny_template, tmp_path) -> Path:
    """A private copy of the tiny workspace (its directory)."""
    dst = tmp_path / "tiny"
    shutil.copytree(tiny_template, dst)
    return dst


TASK = {"name": "sums", "instruction": "Add the two numbers.",
        "examples": [{"input": "3 plus 3", "output": "6"}, {"input": "7 plus 7", "output": "14"}]}


# -- retrieval: thousands of demonstrations --------------------------------------------------------
def test_a_task_with_thousands_of_demonstrations_retrieves(tiny, embedder, tmp_path, capsys):
    """2,100 demonstrations are 4,201 query texts, more than the in-memory query cache holds: every one
    must still reach the scores (the cache used to be trimmed before the answer was read back)."""
    from engine.retrieval import retriever as r

    n = 2100
    assert 2 * n + 1 > r.QUERY_CACHE_SIZE
    big = {"name": "big", "instruction": "Add the two numbers.",
           "examples": [{"input": f"{i} plus {i}", "output": str(2 * i)} for i in range(n)]}
    task_file = tmp_path / "big.json"
    task_file.write_text(json.dumps(big))
    with Workspace(tiny) as ws:
        retriever = r.Retriever(ws)
        retriever._embedder = embedder  # the session's model (loading another copy only costs time)
        result = retriever.search(str(task_file), top=5)
        assert len(result) == 5 and all(h.dataset_id == "sums" for h in result)
        # the query vectors are the mean over all 2,100 demonstrations: recompute them from the model
        import numpy as np

        ins = embedder.encode([e["input"] for e in big["examples"]])
        q = retriever.queries(r.as_task(ws, "big"))
        assert np.allclose(q.inputs, ins, atol=1e-5)
        assert len(retriever._qcache) <= r.QUERY_CACHE_SIZE
        # a new retriever finds every vector in the workspace's table: the model is never loaded
        again = r.Retriever(ws)
        assert [h.key for h in again.search("big", top=5)] == [h.key for h in result]
        assert again._embedder is None
    rc, out, err = _cli(capsys, "-w", tiny, "retrieve", "big", "--top", "3", "--json")
    assert rc == 0, err
    assert [(h["dataset_id"], h["row_id"]) for h in json.loads(out)["results"]] == \
        [(h.dataset_id, h.row_id) for h in result][:3]


# -- retrieval: a damaged approximate index ---------------------------------------------------------
@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "header"])
def test_a_damaged_usearch_file_says_run_check_repair(tiny, tmp_path, capsys, monkeypatch, damage):
    """usearch raises ``ValueError`` on a damaged file; retrieve says which file and to run
    ``check --repair``, which rebuilds it, after which the same search works and agrees with exact."""
    from engine.datastore import vindex
    from engine.retrieval import retriever as r

    monkeypatch.setattr(r, "APPROX_MIN_CANDIDATES", 4)  # the tiny store has 120 values: use the index
    monkeypatch.setattr(r, "APPROX_FACTOR", 1)
    task_file = tmp_path / "sums.json"
    task_file.write_text(json.dumps(TASK))
    with Workspace(tiny) as ws:
        path = vindex.usearch_path(ws, vindex.VALUES)
    raw = path.read_bytes()
    path.write_bytes({"truncated": raw[: len(raw) // 2], "garbage": b"not a usearch index at all",
                      "empty": b"", "header": b"\xff" * 64 + raw[64:]}[damage])
    rc, out, err = _cli(capsys, "-w", tiny, "retrieve", task_file, "--top", "2", "--approximate")
    assert rc == 1 and not out
    assert err.count("\n") == 1 and "values.usearch" in err and "rebase-tui check --repair" in err
    assert "Traceback" not in err
    rc, out, err = _cli(capsys, "-w", tiny, "check", "--repair")
    assert rc == 0, out + err
    rc, out, err = _cli(capsys, "-w", tiny, "retrieve", task_file, "--top", "2", "--approximate", "--json")
    assert rc == 0, err
    approx = [(h["dataset_id"], h["row_id"]) for h in json.loads(out)["results"]]
    rc, out, err = _cli(capsys, "-w", tiny, "retrieve", task_file, "--top", "2", "--json")
    assert approx == [(h["dataset_id"], h["row_id"]) for h in json.loads(out)["results"]]


def test_an_index_that_lacks_values_is_refused(tiny, tmp_path, monkeypatch):
    """An index missing some of the datastore's values would make the exactness proof lie."""
    from usearch.index import Index

    from engine.datastore import vindex
    from engine.retrieval import retriever as r

    monkeypatch.setattr(r, "APPROX_MIN_CANDIDATES", 4)
    monkeypatch.setattr(r, "APPROX_FACTOR", 1)
    with Workspace(tiny) as ws:
        path = vindex.usearch_path(ws, vindex.VALUES)
        index = Index.restore(str(path))
        index.remove(index.keys[:3])
        index.save(str(path))
        with pytest.raises(EngineError, match="lacks 3 of the datastore's 120 values") as info:
            r.Retriever(ws).search(TASK, top=2, approximate=True)
        assert "check --repair" in str(info.value)


# -- an unreadable folder is one more bad input ------------------------------------------------------
_CAP_VERSION_3 = 0x20080522
_DAC_BITS = (1 << 1) | (1 << 2)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH


@contextlib.contextmanager
def permission_bits_bind(locked: Path):
    """Make file permission bits bind in this thread (and threads it starts) while the block runs.

    Tests run as root here, and root reads anything: the capabilities that let it (DAC override and read
    search) are dropped from this thread's effective set and restored after, so ``chmod 000`` denies with
    a real ``PermissionError`` from the OS. As another user, permission bits bind already. Skips where
    neither holds (``locked``, a ``chmod 000`` folder, is probed first).
    """
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    libc = ctypes.CDLL(None, use_errno=True)
    header, data = Header(_CAP_VERSION_3, 0), (Data * 2)()
    dropped = False
    if os.geteuid() == 0:
        if libc.capget(ctypes.byref(header), data) != 0:
            pytest.skip("cannot read this thread's capabilities")
        saved = data[0].effective
        data[0].effective = saved & ~_DAC_BITS
        dropped = libc.capset(ctypes.byref(header), data) == 0
    try:
        try:
            os.listdir(locked)
        except PermissionError:
            pass
        else:
            pytest.skip("a chmod 000 folder stays readable here (root keeps its capabilities)")
        yield
    finally:
        if dropped:
            data[0].effective = saved
            libc.capset(ctypes.byref(header), data)


@pytest.fixture
def collection_with_locked_parts(tmp_path):
    """Dataset folders: ``good``; ``locked`` (chmod 000); ``partial`` whose ``data/more`` subfolder is
    locked; and ``unsearchable`` (chmod 644: listed but never entered)."""
    root = tmp_path / "collection"
    for name in ("good", "locked", "partial", "unsearchable"):
        (root / name).mkdir(parents=True)
        (root / name / "README.md").write_text(f"# {name}\n\nThe {name} dataset of short questions.\n")
    _jsonl(root / "good" / "train.jsonl", [{"q": "what is two plus two", "a": "four"}])
    _jsonl(root / "locked" / "train.jsonl", [{"q": "hidden", "a": "row"}])
    _jsonl(root / "partial" / "data" / "train.jsonl", [{"q": "a readable row", "a": "kept"}])
    _jsonl(root / "partial" / "data" / "more" / "train-2.jsonl", [{"q": "behind a lock", "a": "lost"}])
    _jsonl(root / "unsearchable" / "train.jsonl", [{"q": "x", "a": "y"}])
    locked = [root / "locked", root / "partial" / "data" / "more"]
    for d in locked:
        d.chmod(0)
    (root / "unsearchable").chmod(0o644)
    yield root
    for d in [*locked, root / "unsearchable"]:
        d.chmod(0o755)  # so the temporary folder can be removed


def test_an_unreadable_folder_is_reported_and_the_rest_ingested(collection_with_locked_parts, tmp_path, capsys):
    root = collection_with_locked_parts
    inside_locked = root / "locked" / "train.jsonl"
    with permission_bits_bind(root / "locked"):
        rc, out, err = _cli(capsys, "-w", tmp_path / "ws", "ingest", root, inside_locked, "--no-embed", "--json")
    assert rc == 0, err
    assert "Traceback" not in err
    doc = json.loads(out)
    reasons = {s["path"]: s["reason"] for s in doc["skipped"]}
    for path in (root / "locked", root / "partial" / "data" / "more", root / "unsearchable", inside_locked):
        assert reasons.get(str(path)) == "permission denied — make it readable", (path, reasons)
    assert doc["staged"] == {"datasets": 2, "rows": 2}
    with Workspace(tmp_path / "ws") as ws, ws.store.cursor() as cur:
        stored = cur.execute("select d.name, r.data->>'q' from rows r join datasets d on d.id = r.dataset "
                             "order by d.name").fetchall()
    assert stored == [("good", "what is two plus two"), ("partial", "a readable row")]


def test_the_file_system_root_is_skipped_at_once_with_the_fix(tmp_path, capsys):
    """``/`` typed by mistake would walk every file on the machine (``/proc`` included) for hours."""
    good = tmp_path / "good"
    good.mkdir()
    (good / "train.jsonl").write_text('{"q": "a row"}\n', encoding="utf-8")
    rc, out, err = _cli(capsys, "-w", tmp_path / "ws", "ingest", "/", good, "--no-embed", "--json")
    assert rc == 0, err
    doc = json.loads(out)
    assert {s["path"]: s["reason"] for s in doc["skipped"]} == {
        "/": "the root of the file system — pass the folder that holds your datasets"}
    assert doc["staged"] == {"datasets": 1, "rows": 1}


async def test_the_data_screen_ingests_around_an_unreadable_folder(collection_with_locked_parts, tmp_path,
                                                                    embedder, monkeypatch):
    from textual.widgets import DataTable, Input, Log

    import engine.datastore.embed as embed
    from rebase_tui.app import RebaseApp
    from tests.tui.helpers import until

    monkeypatch.setattr(embed, "load_embedder", lambda *a, **k: embedder)  # the session's model, not a copy
    root = collection_with_locked_parts
    ws = Workspace(tmp_path / "ws")
    with permission_bits_bind(root / "locked"):
        app = RebaseApp(ws, stage="data")
        async with app.run_test(size=(130, 40)) as pilot:
            await pilot.pause()
            screen = app.screen
            screen.query_one("#ingest-path", Input).value = str(root)
            await pilot.press("ctrl+j")
            await until(pilot, lambda: not screen.ingesting, timeout=120, what="the ingest")
            log = "\n".join(screen.query_one("#ingest-log", Log).lines)
            assert "ingest finished" in log, log
            assert f"{root / 'locked'}: permission denied — make it readable" in log
            table = screen.query_one("#ds-table", DataTable)
            assert [table.get_row_at(i)[0].plain for i in range(table.row_count)] == ["good", "partial"]
    ws.close()


# -- tasks: files no parser should choke on ----------------------------------------------------------
def test_task_files_nested_deep_or_not_regular_or_unstorable_get_one_line(tmp_path, capsys):
    ws = tmp_path / "ws"
    deep = tmp_path / "deep.json"
    deep.write_text('{"name": "deep", "instruction": "x", "examples": ' + "[" * 5000 + "]" * 5000 + "}")
    rc, out, err = _cli(capsys, "-w", ws, "task", "add", deep)
    assert rc == 1 and err.count("\n") == 1 and "nested too deeply" in err and "Traceback" not in err

    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)  # reading it would wait forever for a writer
    rc, out, err = _cli(capsys, "-w", ws, "task", "add", fifo)
    assert rc == 1 and err.count("\n") == 1 and "not a regular file" in err

    lone = tmp_path / "lone.json"
    lone.write_text(json.dumps({**TASK, "instruction": "Add \ud800 the numbers."}))
    rc, out, err = _cli(capsys, "-w", ws, "task", "add", lone)
    assert rc == 1 and err.count("\n") == 1 and "instruction holds a lone surrogate" in err

    many = tmp_path / "many.json"
    many.write_text(json.dumps({**TASK, "examples": [{"input": "", "output": ""}] * 500}))
    rc, out, err = _cli(capsys, "-w", ws, "task", "add", many)
    assert rc == 1 and err.count("\n") == 1
    assert "example 4 has no input" in err and "and 992 more problem(s)" in err and len(err) < 600


# -- JSONL lines: one bad line never costs the file ---------------------------------------------------
def test_an_over_deep_jsonl_line_is_skipped_like_a_malformed_one(tmp_path):
    from engine.datastore.readers import read_split

    path = tmp_path / "deep.jsonl"
    deep_line = '{"q": ' + "[" * 5000 + "]" * 5000 + "}"
    # U+2028 is legal raw inside a JSON string; splitting lines on it would break a good line in two
    path.write_text('{"q": "first"}\n' + deep_line + '\n{"q": "second\u2028line"}\n{"q": broken\n',
                    encoding="utf-8")
    result, failed = read_split([path], 0)
    assert failed == []
    assert [row for _, row in result.rows] == [{"q": "first"}, {"q": "second\u2028line"}]
    assert [r for _, r in result.notes] == ["1 malformed line(s) skipped (line 4); 2 rows read",
                                            "1 too deeply nested line(s) skipped (line 2); 2 rows read"]


def test_lone_surrogates_and_non_utf8_file_names_are_stored(tmp_path, capsys):
    folder = tmp_path / "odd"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9.jsonl")  # a Latin-1 file name: not UTF-8
    (folder / name).write_text('{"text": "lone \\ud800 half", "\\udc00key": "v"}\n', encoding="utf-8")
    rc, out, err = _cli(capsys, "-w", tmp_path / "ws", "ingest", folder / name, "--no-embed", "--json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["staged"] == {"datasets": 1, "rows": 1}
    assert doc["skipped"] == [{"path": str(folder / "caf\ufffd.jsonl"),
                               "reason": "lone surrogate(s) (unpaired \\ud800-\\udfff escapes, which UTF-8 "
                                         "cannot store) replaced by U+FFFD"}]
    with Workspace(tmp_path / "ws") as ws, ws.store.cursor() as cur:
        assert cur.execute("select name from datasets").fetchall() == [("caf\ufffd",)]
        assert json.loads(cur.execute("select data from rows").fetchall()[0][0]) == \
            {"text": "lone \ufffd half", "\ufffdkey": "v"}
    # the same file again: the same source, so it is left as it is
    rc, out, err = _cli(capsys, "-w", tmp_path / "ws", "ingest", folder / name, "--no-embed", "--json")
    assert rc == 0 and json.loads(out)["unchanged"] == 1


# -- a dataset id taken by another source -------------------------------------------------------------
def test_a_taken_id_from_another_source_is_reported_and_ingest_id_renames(tmp_path, capsys):
    ws = tmp_path / "ws"
    first = _jsonl(tmp_path / "a" / "reviews.jsonl", [{"text": "great film"}])
    other = _jsonl(tmp_path / "b" / "reviews.jsonl", [{"text": "terrible food"}])
    assert _cli(capsys, "-w", ws, "ingest", first, "--no-embed")[0] == 0
    rc, out, err = _cli(capsys, "-w", ws, "ingest", other, "--no-embed", "--json")
    doc = json.loads(out)
    assert rc == 1 and doc["unchanged"] == 0 and doc["staged"]["datasets"] == 0
    reason = doc["skipped"][0]["reason"]
    assert doc["skipped"][0]["path"] == str(other)
    assert f"dataset id reviews is already in the workspace, from {first}" in reason
    assert f"rebase-tui ingest {other} --id NEW_ID" in reason
    rc, out, err = _cli(capsys, "-w", ws, "ingest", other, "--id", "reviews-food", "--no-embed", "--json")
    assert rc == 0 and json.loads(out)["staged"]["datasets"] == 1, err
    rc, out, err = _cli(capsys, "-w", ws, "ingest", first, "--no-embed", "--json")
    assert rc == 0 and json.loads(out)["unchanged"] == 1  # the same source: left as it is
    with Workspace(ws) as w, w.store.cursor() as cur:
        stored = cur.execute("select d.name, r.data->>'text' from rows r join datasets d on d.id = r.dataset "
                             "order by d.name").fetchall()
    assert stored == [("reviews", "great film"), ("reviews-food", "terrible food")]
    # one id cannot name two datasets; an id must look like one
    rc, out, err = _cli(capsys, "-w", ws, "ingest", first, other, "--id", "both", "--no-embed")
    assert rc == 1 and err.count("\n") == 1 and "--id both names one dataset, but the path(s) hold 2" in err
    rc, out, err = _cli(capsys, "-w", ws, "ingest", other, "--id", "two words", "--no-embed")
    assert rc == 1 and err.count("\n") == 1 and "is not a dataset id" in err


# -- CSV: repeated header names and rows longer than the header ---------------------------------------
def test_repeated_columns_and_extra_fields_are_kept(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    d = tmp_path / "tables"
    d.mkdir()
    (d / "scores.csv").write_text("name,score,score,_extra_1\nada,1,2,x\nbob,3,4,y,late,later\ncy,5\n")
    (d / "pairs.tsv").write_text("q\tq\nwho\twhat\n")
    pq.write_table(pa.Table.from_arrays([pa.array(["left"]), pa.array(["right"])], names=["side", "side"]),
                   d / "sides.parquet")
    rc, out, err = _cli(capsys, "-w", tmp_path / "ws", "ingest", *sorted(d.iterdir()), "--no-embed", "--json")
    assert rc == 0, err
    notes = {Path(s["path"]).name: [] for s in json.loads(out)["skipped"]}
    for s in json.loads(out)["skipped"]:
        notes[Path(s["path"]).name].append(s["reason"])
    assert notes["scores.csv"] == [
        "repeated column name(s) kept apart: 'score' as 'score_2'",
        "1 row(s) have more fields than the header's 4 (first: line 3); the extra fields are kept as "
        "_extra_1_2, _extra_2"]
    assert notes["pairs.tsv"] == ["repeated column name(s) kept apart: 'q' as 'q_2'"]
    assert notes["sides.parquet"] == ["repeated column name(s) kept apart: 'side' as 'side_2'"]
    with Workspace(tmp_path / "ws") as ws, ws.store.cursor() as cur:
        rows = {name: [json.loads(r) for (r,) in cur.execute(
            "select r.data from rows r join datasets d on d.id = r.dataset where d.name = ? order by r.id",
            [name]).fetchall()] for name in ("scores", "pairs", "sides")}
        columns = json.loads(cur.execute("select c.columns from configs c join datasets d on d.id = c.dataset "
                                         "where d.name = 'scores'").fetchall()[0][0])
    assert rows["scores"] == [
        {"name": "ada", "score": "1", "score_2": "2", "_extra_1": "x"},
        {"name": "bob", "score": "3", "score_2": "4", "_extra_1": "y", "_extra_1_2": "late", "_extra_2": "later"},
        {"name": "cy", "score": "5", "score_2": None, "_extra_1": None}]
    assert columns == ["name", "score", "score_2", "_extra_1", "_extra_1_2", "_extra_2"]
    assert rows["pairs"] == [{"q": "who", "q_2": "what"}]
    assert rows["sides"] == [{"side": "left", "side_2": "right"}]


# -- numeric options ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("weights", "says"), [
    ("1e308,1e308,1", "too large: their sum overflows"),
    ("nan,1,1", "nan is not a finite number"),
    ("inf,0,0", "inf is not a finite number"),
    ("-1,1,1", "-1 is negative"),
    ("0,0,0", "are all zero"),
    ("1,2", "must be three numbers IN,OUT,DS, not 2"),
])
def test_out_of_range_weights_get_one_line(tiny, tmp_path, capsys, weights, says):
    task_file = tmp_path / "sums.json"
    task_file.write_text(json.dumps(TASK))
    rc, out, err = _cli(capsys, "-w", tiny, "retrieve", task_file, f"--weights={weights}")
    assert rc == 1 and not out and err.count("\n") == 1 and says in err, err


@pytest.mark.parametrize("argv", [
    ["ingest", "PATH", "--threads", "-1"], ["ingest", "PATH", "--batch-size", "0"],
    ["ingest", "PATH", "--max-rows-per-config", "-5"], ["check", "--threads", "-2"],
    ["retrieve", "sums", "--per-dataset-cap", "-1"], ["retrieve", "sums", "--top", "many"],
])
def test_out_of_range_counts_are_refused_before_anything_runs(tmp_path, capsys, argv):
    argv = [str(tmp_path / "data.jsonl") if a == "PATH" else a for a in argv]
    with pytest.raises(SystemExit) as info:
        main(["-w", str(tmp_path / "ws"), *argv])
    err = capsys.readouterr().err
    assert info.value.code == 2 and ("must be at least" in err or "is not a whole number" in err), err
    assert not (tmp_path / "ws").exists()
