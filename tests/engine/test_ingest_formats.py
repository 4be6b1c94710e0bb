"""Every input format and layout, written as real files, read through the real ingest path."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from engine.datastore.cells import flatten_row
from engine.datastore.ingest import run_ingest
from engine.datastore.readers import read_split, stride_indices
from engine.datastore.sources import discover, id_from_folder, split_of


def _rows(ws, dataset):
    with ws.store.cursor() as cur:
        return [(r[0], json.loads(r[1])) for r in cur.execute(
            "select r.row_id, r.data from rows r join datasets d on d.id = r.dataset where d.name = ? "
            "order by r.id", [dataset]).fetchall()]


def _hf_meta(features):
    return {b"huggingface": json.dumps({"info": {"features": features}}).encode()}


def test_split_names_and_ids():
    assert split_of("train-00000-of-00002.parquet") == "train"
    assert split_of("validation.jsonl") == "validation"
    assert split_of("dev.tsv") == "validation"
    assert split_of("imdb-test.arrow") == "test"
    assert split_of("contest_results.csv") is None
    assert id_from_folder("nyu-mll__glue") == "nyu-mll/glue"
    assert id_from_folder("datasets--nyu-mll--glue") == "nyu-mll/glue"
    assert id_from_folder("boolq") == "boolq"
    assert stride_indices(10, 4) == [0, 2, 5, 7] and stride_indices(3, 5) == [0, 1, 2]
    assert stride_indices(7, 0) == list(range(7))


def test_flattening_labels_media_and_empties():
    row = {"a": {"b": 1, "c": {"d": "x"}}, "label": 2, "tags": [0, 1], "img": {"bytes": b"\x89PNG", "path": None},
           "blob": b"\x00\x01", "empty": "", "none": None, "flag": True, "score": 0.5, "items": [{"k": "v"}]}
    flat = flatten_row(row, {"label": ["neg", "neu", "pos"], "tags": ["O", "B-PER"]})
    assert flat == {"a_b": 1, "a_c_d": "x", "label": "pos", "tags": ["O", "B-PER"], "empty": "", "none": None,
                    "flag": True, "score": 0.5, "items": [{"k": "v"}]}


def test_jsonl_json_csv_tsv_and_gzip(workspace, embedder, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a.jsonl").write_text('{"q": "what is two plus two", "meta": {"src": "web"}}\n\n'
                                    '{"q": "name a colour", "meta": {"src": "book"}}\n', encoding="utf-8")
    (folder / "b.json").write_text(json.dumps({"version": 1, "data": [{"q": "wrapped", "n": 3}]}))
    (folder / "c.csv").write_text("q,answer\n\"quoted, with comma\",yes\nplain,\n", encoding="utf-8-sig")
    (folder / "d.tsv").write_text("q\tanswer\nrow, with comma\tno\n")
    with gzip.open(folder / "e.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write('{"q": "compressed"}\n')
    (folder / "f.json").write_text(json.dumps({"q": ["col one", "col two"], "a": ["1", "2"]}))
    summary = run_ingest(workspace, sorted(folder.iterdir()), embedder=embedder)
    assert summary.skipped == (), summary.skipped
    assert summary.totals.datasets == 6
    assert _rows(workspace, "a") == [(0, {"q": "what is two plus two", "meta_src": "web"}),
                                     (1, {"q": "name a colour", "meta_src": "book"})]
    assert _rows(workspace, "b") == [(0, {"q": "wrapped", "n": "3"})]
    assert _rows(workspace, "c") == [(0, {"q": "quoted, with comma", "answer": "yes"}),
                                     (1, {"q": "plain", "answer": None})]
    assert _rows(workspace, "d") == [(0, {"q": "row, with comma", "answer": "no"})]
    assert _rows(workspace, "e") == [(0, {"q": "compressed"})]
    assert _rows(workspace, "f") == [(0, {"q": "col one", "a": "1"}), (1, {"q": "col two", "a": "2"})]
    with workspace.store.cursor() as cur:
        gen = cur.execute("select description_generated, description from datasets where name = 'a'").fetchall()
    assert gen[0][0] is True and "q" in gen[0][1] and "what is two plus two" in gen[0][1]


def test_dataset_folder_layout_card_and_class_labels(workspace, embedder, tmp_path):
    root = tmp_path / "acme__reviews"
    (root / "data").mkdir(parents=True)
    (root / "fr").mkdir()
    (root / "README.md").write_text(
        "---\nlicense: mit\ndataset_info:\n  features:\n  - name: label\n    dtype:\n      class_label:\n"
        "        names:\n          '0': negative\n          '1': positive\n---\n# acme/reviews\n\n"
        "## Dataset Description\n\n- **Homepage:** https://example.org\n\nShort product reviews with a "
        "sentiment label.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```python\nload()\n```\n", encoding="utf-8")
    schema = pa.schema([("text", pa.string()), ("label", pa.int64())],
                       metadata=_hf_meta({"text": {"dtype": "string", "_type": "Value"},
                                          "label": {"names": ["negative", "positive"], "_type": "ClassLabel"}}))
    for i, split in enumerate(("train-00000-of-00002", "train-00001-of-00002", "test-00000-of-00001")):
        pq.write_table(pa.table({"text": [f"{split} review {j}" for j in range(3)], "label": [0, 1, i % 2]},
                                schema=schema), root / "data" / f"{split}.parquet")
    pq.write_table(pa.table({"text": ["très bien"], "label": [1]}), root / "fr" / "train.parquet")
    summary = run_ingest(workspace, [root], embedder=embedder)
    assert (summary.totals.datasets, summary.totals.configs, summary.totals.rows) == (1, 2, 7)
    rows = _rows(workspace, "acme/reviews")
    assert [r[0] for r in rows] == [0, 1, 2, 3, 4, 5, 0]  # positions across both train shards
    assert rows[0][1] == {"text": "train-00000-of-00002 review 0", "label": "negative"}
    assert rows[-1][1] == {"text": "très bien", "label": "positive"}  # label names from the card
    with workspace.store.cursor() as cur:
        desc, gen = cur.execute("select description, description_generated from datasets").fetchall()[0]
        configs = cur.execute("select name, split, rows_total from configs order by name").fetchall()
    assert desc == "Short product reviews with a sentiment label." and gen is False
    assert configs == [("default", "train", 6), ("fr", "train", 1)]


def test_card_configs_data_files_are_followed(workspace, embedder, tmp_path):
    root = tmp_path / "cardcfg"
    (root / "raw").mkdir(parents=True)
    (root / "README.md").write_text(
        "---\npretty_name: org/cardcfg\nconfigs:\n- config_name: easy\n  data_files:\n  - split: train\n"
        "    path: raw/easy_*.jsonl\n  - split: test\n    path: raw/test_easy.jsonl\n"
        "- config_name: hard\n  data_files: raw/hard.csv\n---\nA dataset with two configs.\n")
    (root / "raw" / "easy_1.jsonl").write_text('{"x": "e1"}\n')
    (root / "raw" / "easy_2.jsonl").write_text('{"x": "e2"}\n')
    (root / "raw" / "test_easy.jsonl").write_text('{"x": "never"}\n')
    (root / "raw" / "hard.csv").write_text("x\nh1\nh2\n")
    summary = run_ingest(workspace, [root], embedder=embedder)
    assert summary.skipped == ()
    with workspace.store.cursor() as cur:
        got = cur.execute("select c.name, r.row_id, r.data->>'x' from rows r join configs c on c.id = r.config "
                          "order by r.id").fetchall()
        name = cur.execute("select name from datasets").fetchall()[0][0]
    assert name == "org/cardcfg"
    assert got == [("easy", 0, "e1"), ("easy", 1, "e2"), ("hard", 0, "h1"), ("hard", 1, "h2")]


def _write_arrow_stream(path, table):
    with ipc.new_stream(str(path), table.schema) as w:
        w.write_table(table)


def test_save_to_disk_folder_and_dictionary_columns(workspace, embedder, tmp_path):
    root = tmp_path / "saved_nli"
    features = {"premise": {"dtype": "string", "_type": "Value"},
                "label": {"names": ["entailment", "neutral", "contradiction"], "_type": "ClassLabel"}}
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    (root / "dataset_dict.json").write_text(json.dumps({"splits": ["train", "test"]}))
    for split in ("train", "test"):
        table = pa.table({"premise": [f"{split} p{i}" for i in range(4)], "label": [0, 1, 2, 1],
                          "genre": pa.array(["fiction", "news", "fiction", "news"]).dictionary_encode()},
                         ).replace_schema_metadata(_hf_meta(features))
        _write_arrow_stream(root / split / "data-00000-of-00001.arrow", table)
        (root / split / "state.json").write_text(json.dumps({"_data_files": [{"filename": "data-00000-of-00001.arrow"}]}))
        (root / split / "dataset_info.json").write_text(json.dumps({"description": "", "features": features}))
    summary = run_ingest(workspace, [root], embedder=embedder)
    assert summary.totals.datasets == 1 and summary.totals.rows == 4
    rows = _rows(workspace, "saved_nli")
    assert rows[2] == (2, {"premise": "train p2", "label": "contradiction", "genre": "fiction"})


def test_hub_cache_folder_uses_the_main_snapshot(workspace, embedder, tmp_path):
    hub = tmp_path / "hub"
    repo = hub / "datasets--someorg--tiny"
    old = repo / "snapshots" / "aaa111"
    new = repo / "snapshots" / "bbb222"
    for snap, text in ((old, "old"), (new, "new")):
        (snap / "data").mkdir(parents=True)
        pq.write_table(pa.table({"t": [f"{text} row"]}), snap / "data" / "train-00000-of-00001.parquet")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("bbb222")
    (hub / "models--someorg--model").mkdir()
    summary = run_ingest(workspace, [hub], embedder=embedder)
    assert summary.totals.datasets == 1
    assert _rows(workspace, "someorg/tiny") == [(0, {"t": "new row"})]


def test_collection_ignores_loose_files(tmp_path):
    coll = tmp_path / "coll"
    for name in ("one", "two"):
        (coll / name).mkdir(parents=True)
        (coll / name / "README.md").write_text(f"# {name}\n\nThe {name} dataset.\n")
        (coll / name / "train.jsonl").write_text('{"a": "b"}\n')
    (coll / "catalog.jsonl").write_text('{"dataset_id": "one"}\n')
    found = discover([coll])
    assert [d.name for d in found.datasets] == ["one", "two"]
    assert found.skipped == [] and "catalog.jsonl" in found.notes[0]
    result, failed = read_split(found.datasets[0].configs[0].files, 0)
    assert failed == [] and result.rows == [(0, {"a": "b"})]


def test_single_saved_dataset_and_arrow_file_format(workspace, embedder, tmp_path):
    root = tmp_path / "one_split"
    root.mkdir()
    table = pa.table({"q": ["first", "second", "third"], "n": [1, 2, 3]})
    with ipc.new_file(str(root / "data-00000-of-00001.arrow"), table.schema) as w:  # Arrow IPC *file* format
        w.write_table(table)
    (root / "state.json").write_text(json.dumps({"_data_files": [{"filename": "data-00000-of-00001.arrow"}]}))
    (root / "dataset_info.json").write_text(json.dumps({"description": "Three saved rows.", "features": {}}))
    summary = run_ingest(workspace, [root], max_rows_per_config=2, embedder=embedder)
    assert summary.skipped == () and summary.totals.rows == 2
    assert _rows(workspace, "one_split") == [(0, {"q": "first", "n": "1"}), (1, {"q": "second", "n": "2"})]
    with workspace.store.cursor() as cur:
        assert cur.execute("select description, description_generated from datasets").fetchall() == [
            ("Three saved rows.", False)]
