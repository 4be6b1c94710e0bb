"""Bad input, as real files: each problem is reported with its path and reason, the rest is ingested, and
what was stored before is untouched. The CLI exits non-zero only when nothing could be ingested."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.datastore.cells import MAX_CELL_CHARS
from engine.datastore.ingest import run_ingest
from engine.workspace import Workspace
from rebase_tui.cli import main


@pytest.fixture
def bad_folder(tmp_path):
    """A folder of single-file datasets: one good file and one of each kind of bad file."""
    d = tmp_path / "bad"
    d.mkdir()
    pq.write_table(pa.table({"text": ["a good row", "another good row"]}), d / "good.parquet")
    (d / "corrupt.parquet").write_bytes(b"PAR1 this is not really parquet at all PAR1")
    # a valid footer over damaged data pages: found only when the rows are read
    pq.write_table(pa.table({"text": [f"row number {i} of a file damaged later" for i in range(5000)]}),
                   d / "damaged.parquet")
    raw = bytearray((d / "damaged.parquet").read_bytes())
    raw[len(raw) // 3: len(raw) // 3 + 2000] = b"\x55" * 2000
    (d / "damaged.parquet").write_bytes(bytes(raw))
    (d / "notes.xyz").write_text("what is this")
    (d / "partly.jsonl").write_text('{"q": "fine line"}\n{"q": broken\nnot json at all\n{"q": "also fine"}\n')
    (d / "latin1.csv").write_bytes("name,city\nJosé,Málaga\n".encode("latin-1"))
    (d / "empty.jsonl").write_bytes(b"")
    (d / "huge.jsonl").write_text(json.dumps({"big": "x" * (10 * 1024 * 1024), "small": "kept"}) + "\n")
    (d / "archive.zip").write_bytes(b"PK\x03\x04")
    return d


def _reasons(summary):
    return {s.path.rsplit("/", 1)[-1]: s.reason for s in summary.skipped}


def test_each_bad_file_is_reported_and_the_rest_ingested(workspace, embedder, bad_folder):
    summary = run_ingest(workspace, sorted(bad_folder.iterdir()), embedder=embedder)
    reasons = _reasons(summary)
    assert "not a readable Parquet file" in reasons["corrupt.parquet"]
    assert "not a readable Parquet file" in reasons["damaged.parquet"]
    assert "unknown format" in reasons["notes.xyz"]
    assert "2 malformed line(s)" in reasons["partly.jsonl"] and "line 2, 3" in reasons["partly.jsonl"]
    assert "not UTF-8" in reasons["latin1.csv"] and "re-save it as UTF-8" in reasons["latin1.csv"]
    assert reasons["empty.jsonl"] == "empty file"
    assert f"over the {MAX_CELL_CHARS:,}-character limit" in reasons["huge.jsonl"]
    assert "'big'" in reasons["huge.jsonl"]
    assert "unpack it first" in reasons["archive.zip"]
    with workspace.store.cursor() as cur:
        names = sorted(r[0] for r in cur.execute("select name from datasets").fetchall())
        huge = cur.execute("select r.data from rows r join datasets d on d.id = r.dataset "
                           "where d.name = 'huge'").fetchall()
        partly = cur.execute("select r.row_id, r.data->>'q' from rows r join datasets d on d.id = r.dataset "
                             "where d.name = 'partly' order by r.id").fetchall()
        longest = cur.execute("select max(length(text)) from cell_values").fetchall()[0][0]
    assert names == ["good", "huge", "partly"]
    assert json.loads(huge[0][0]) == {"big": None, "small": "kept"}
    assert partly == [(0, "fine line"), (1, "also fine")]
    assert longest < MAX_CELL_CHARS
    assert summary.added.datasets == 3


def test_bad_input_leaves_stored_data_intact(small_datastore, embedder, bad_folder):
    with Workspace(small_datastore) as ws:
        with ws.store.cursor() as cur:
            before = cur.execute("select id, name, status from datasets order by id").fetchall()
            rows_before = cur.execute("select id, data from rows order by id").fetchall()
        index_before = {p.name: p.read_bytes() for p in ws.index_dir.iterdir() if p.suffix == ".vectors"}
        run_ingest(ws, [bad_folder / "corrupt.parquet", bad_folder / "latin1.csv", bad_folder / "empty.jsonl"],
                   embedder=embedder)
        with ws.store.cursor() as cur:
            assert cur.execute("select id, name, status from datasets order by id").fetchall() == before
            assert cur.execute("select id, data from rows order by id").fetchall() == rows_before
        assert {p.name: p.read_bytes() for p in ws.index_dir.iterdir() if p.suffix == ".vectors"} == index_before


def test_cli_exit_codes(tmp_path, embedder, bad_folder, capsys):
    ws = str(tmp_path / "w")
    # nothing ingestible: exit 1, skipped listed in the one JSON document
    rc = main(["-w", ws, "ingest", str(bad_folder / "corrupt.parquet"), str(bad_folder / "notes.xyz"),
               "--json", "--threads", "1"])
    out = capsys.readouterr()
    assert rc == 1
    doc = json.loads(out.out)
    assert doc["datasets"] == 0 and len(doc["skipped"]) == 2
    assert "corrupt.parquet" in out.err and "nothing was ingested" in out.err
    # something ingested despite problems: exit 0
    rc = main(["-w", ws, "ingest", str(bad_folder / "good.parquet"), str(bad_folder / "empty.jsonl"),
               "--json", "--threads", "1"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["added"]["datasets"] == 1 and doc["skipped"][0]["reason"] == "empty file"
    # the same again: nothing new, nothing wrong, exit 0
    rc = main(["-w", ws, "ingest", str(bad_folder / "good.parquet"), "--json", "--threads", "1"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["added"] == {"datasets": 0, "rows": 0, "values": 0} and doc["unchanged"] == 1


def test_wrong_split_and_missing_path_are_explained(workspace, embedder, tmp_path):
    d = tmp_path / "only_test"
    d.mkdir()
    (d / "README.md").write_text("# only_test\n\nA dataset with a test split only.\n")
    (d / "test.jsonl").write_text('{"a": "b"}\n')
    summary = run_ingest(workspace, [d, tmp_path / "missing"], embedder=embedder)
    reasons = _reasons(summary)
    assert reasons["only_test"] == "no 'train' split (found: test) — choose one with --split"
    assert reasons["missing"] == "no such file or directory"
    summary = run_ingest(workspace, [d], split="test", embedder=embedder)
    assert summary.added.datasets == 1
