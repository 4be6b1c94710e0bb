"""Looking for datasets in a large folder shows progress and stops when its ingest is cancelled."""

from __future__ import annotations

import json
import threading
import time

from engine.datastore.find_datasets import find_datasets
from engine.events import Progress


def _big_tree(root, folders: int = 3000):  # type: ignore[no-untyped-def]
    """A folder with a dataset (train.jsonl) and ``folders`` more folders below it, a few files each."""
    root.mkdir()
    (root / "train.jsonl").write_text(json.dumps({"q": "a row"}) + "\n", encoding="utf-8")
    for i in range(folders):
        d = root / f"part{i // 100}" / f"f{i}"
        d.mkdir(parents=True)
        (d / "notes.txt").write_text("not data", encoding="utf-8")
    return root


def _walkers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("find-datasets")]


def test_a_walk_reports_progress_and_returns_what_it_found(tmp_path):
    root = _big_tree(tmp_path / "big", 600)
    gen = find_datasets([root], "train", None, every_s=0.0)
    seen: list[Progress] = []
    while True:
        try:
            seen.append(next(gen))  # type: ignore[arg-type]
        except StopIteration as stop:
            found = stop.value
            break
    assert seen and all(p.stage == "find" and p.unit == "folders" for p in seen)
    assert [p.done for p in seen] == sorted(p.done for p in seen)  # folders entered only grow
    assert [ds.name for ds in found.datasets] == ["big"]
    assert [f.name for c in found.datasets[0].configs for f in c.files] == ["train.jsonl"]
    assert not _walkers()


def test_closing_the_generator_stops_the_walk_at_the_next_folder(tmp_path):
    root = _big_tree(tmp_path / "big", 5000)
    t0 = time.perf_counter()
    for _ in find_datasets([root], "train", None):  # the whole walk, for its time
        pass
    whole = time.perf_counter() - t0

    gen = find_datasets([root], "train", None, every_s=0.0)
    first = next(gen)
    assert isinstance(first, Progress) and first.stage == "find" and first.done < 5000
    t0 = time.perf_counter()
    gen.close()  # what a cancel or a quit does between events
    stopped = time.perf_counter() - t0
    assert not _walkers(), "the walk's thread ended with the generator"
    assert stopped < whole / 4, f"closing took {stopped:.3f} s, the whole walk {whole:.3f} s: it walked on"
