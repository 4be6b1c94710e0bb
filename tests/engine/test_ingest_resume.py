"""SIGKILL an ingest subprocess twice at random points, resume, and get exactly the uninterrupted result."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time

import numpy as np

from engine.datastore import health, vindex
from engine.datastore.datasets import totals
from engine.datastore.ingest import run_ingest
from engine.workspace import Workspace
from tests.conftest import REPO, corpus

SUBSET = ("question_types", "commonsense_explanations", "multiple_choice_qa", "corpus__medical-question-pairs",
          "science_questions", "yes_no_questions", "reading_comprehension", "python_problems")
"""Eight corpus folders, about 500 values: embedding them takes a few seconds on one thread, so that the
second kill (at most 1.5 s into embedding) lands in the middle of it."""
MAX_ROWS = 25


def _snapshot(path):
    """Everything that must match between runs, independent of ids: texts, rows, cells, vectors by text."""
    with Workspace(path) as ws:
        with ws.store.cursor() as cur:
            datasets = cur.execute("select name, status, description from datasets order by name").fetchall()
            rows = cur.execute("select d.name, c.name, r.row_id, r.data::varchar from rows r join datasets d "
                               "on d.id = r.dataset join configs c on c.id = r.config order by all").fetchall()
            cells = cur.execute('select d.name, r.row_id, c."column", v.text from cells c join rows r on '
                                'r.id = c."row" join datasets d on d.id = r.dataset join cell_values v on '
                                "v.id = c.value order by all").fetchall()
            texts = dict(cur.execute("select id, text from cell_values").fetchall())
        keys, vecs = vindex.load_value_vectors(ws)
        by_text = {texts[int(k)]: v for k, v in zip(keys, vecs, strict=True)}
        report = health.check(ws)
        counts = totals(ws)
    return datasets, rows, cells, by_text, report, counts


def _run_and_kill(cmd, env, wait_for, delay, log):
    """Start the CLI, SIGKILL it ``delay`` seconds after a stderr line containing ``wait_for``."""
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = threading.Event()

    def reader():
        for line in proc.stderr:
            log.append(line.rstrip())
            if wait_for in line:
                seen.set()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    deadline = time.monotonic() + 120
    while not seen.is_set() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(delay)
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    t.join(5)
    return killed


def test_sigkill_twice_then_resume_equals_uninterrupted(tmp_path, embedder):
    root = corpus("datastore")
    paths = [str(root / name) for name in SUBSET]
    reference = tmp_path / "reference"
    with Workspace(reference) as ws:
        run_ingest(ws, paths, max_rows_per_config=MAX_ROWS, embedder=embedder, batch_size=16)

    ws_dir = tmp_path / "killed"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "rebase_tui", "-w", str(ws_dir), "ingest", *paths,
           "--max-rows-per-config", str(MAX_ROWS), "--batch-size", "16", "--threads", "1", "--precision", "fp32"]
    seed = int(os.environ.get("REBASE_KILL_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    log: list[str] = []
    # first kill: while datasets are being read and staged (or just after)
    first = _run_and_kill(cmd, env, "reading datasets", rng.uniform(0.0, 0.6), log)
    # second kill: in the middle of embedding
    second = _run_and_kill(cmd, env, "embedding values", rng.uniform(0.0, 1.5), log)
    assert first or second, f"seed {seed}: no run was killed\n" + "\n".join(log)
    with Workspace(ws_dir) as ws:  # the kills left unfinished work behind (then the resume must finish it)
        interrupted = health.check(ws)
    assert not interrupted.ok, f"seed {seed}: the kills landed after the work was done\n" + "\n".join(log)
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr

    want, got = _snapshot(reference), _snapshot(ws_dir)
    assert got[0] == want[0], f"seed {seed}"
    assert got[1] == want[1], f"seed {seed}"
    assert got[2] == want[2], f"seed {seed}"
    assert got[4].ok, (seed, got[4].problems)
    assert got[5] == want[5], f"seed {seed}"
    assert set(got[3]) == set(want[3])
    a = np.stack([got[3][t] for t in want[3]])
    b = np.stack([want[3][t] for t in want[3]])
    assert np.allclose((a * b).sum(axis=1), 1.0, atol=1e-3), f"seed {seed}: a vector belongs to another text"
