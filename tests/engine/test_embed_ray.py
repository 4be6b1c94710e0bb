"""Embedding on Ray (a local Ray with 2 CPUs): at the same precision the vectors equal the in-process ones,
the counts are the same, and an ingest whose driver is SIGKILLed mid-way resumes, sending only the values
without a vector. One small corpus (the committed demo datasets) keeps this module short."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from engine.datastore import health, vindex
from engine.datastore.datasets import totals
from engine.datastore.ingest import run_ingest
from engine.demo import demo_corpus_dir
from engine.errors import EngineError
from engine.workspace import Workspace
from rebase_tui.cli import main
from tests.conftest import REPO

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.filterwarnings("ignore:.*deprecated:DeprecationWarning:ray")  # Ray's own settings

CHUNK = 128
"""Values per chunk in both paths: several Ray blocks for 631 values, and the same batches in both."""
RAY = {"embedder.executor": "ray", "embedder.precision": "fp32", "embedder.ray_workers": 2}


@pytest.fixture(scope="module")
def local_ray():
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}})
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def reference(tmp_path_factory, embedder):
    """The demo corpus ingested in this process (fp32, the same chunks): its totals and vectors."""
    path = tmp_path_factory.mktemp("ray") / "reference"
    with Workspace(path) as ws:
        run_ingest(ws, [demo_corpus_dir()], embedder=embedder, chunk_values=CHUNK)
        return totals(ws), _by_text(ws)


def _by_text(ws: Workspace) -> dict[str, np.ndarray]:
    with ws.store.cursor() as cur:
        texts = dict(cur.execute("select id, text from cell_values").fetchall())
        texts |= {-i: d for i, d in cur.execute("select id, description from datasets").fetchall()}
    out = {}
    for kind, sign in ((vindex.VALUES, 1), (vindex.DESCRIPTIONS, -1)):
        keys, vecs = vindex.vector_log(ws, kind, recover=False).read()
        out |= {texts[sign * int(k)]: v for k, v in zip(keys, vecs, strict=True)}
    return out


def _assert_same(ws: Workspace, reference) -> None:
    ref_totals, ref_vectors = reference
    assert totals(ws) == ref_totals and health.check(ws).ok
    got = _by_text(ws)
    assert got.keys() == ref_vectors.keys()
    worst = max(float(np.abs(got[t] - ref_vectors[t]).max()) for t in got)
    assert worst <= 1e-6, worst


def test_ray_vectors_equal_in_process_ones(local_ray, reference, tmp_path, capsys):
    ws_dir = tmp_path / "ws"
    # --ray joins the Ray this process already runs (a fresh process would start its own)
    assert main(["-w", str(ws_dir), "ingest", str(demo_corpus_dir()), "--ray", "--ray-workers", "2",
                 "--precision", "fp32", "--threads", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["embedding"]["executor"] == "ray" and doc["embedding"]["precision"] == "fp32"
    assert doc["added"]["datasets"] == 8 and doc["embedding"]["descriptions"] == 8
    with Workspace(ws_dir) as ws:
        _assert_same(ws, reference)


def _raylets() -> set[int]:
    out = subprocess.run(["pgrep", "-f", "raylet"], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}


KILLED_DRIVER = """
import sys, time
from engine.datastore.ingest import ingest
from engine.events import Progress
from engine.workspace import Workspace

with Workspace(sys.argv[1], {ray!r}) as ws:
    for ev in ingest(ws, [sys.argv[2]], chunk_values={chunk}):
        if isinstance(ev, Progress) and ev.stage == "embed" and 100 <= ev.done < ev.total:
            print("HALF", flush=True)  # the test SIGKILLs this process now
            time.sleep(600)
"""


def test_a_killed_ray_driver_resumes_with_only_the_missing_values(local_ray, reference, tmp_path):
    ws_dir = tmp_path / "killed"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(REPO)}
    script = KILLED_DRIVER.format(ray=RAY, chunk=CHUNK)
    raylets_before = _raylets()
    proc = subprocess.Popen([sys.executable, "-c", script, str(ws_dir), str(demo_corpus_dir())], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert line.strip() == "HALF"
    with Workspace(ws_dir) as ws:
        embedded = vindex.vector_log(ws, vindex.VALUES).count
        n_values = ws.store.table_counts()["cell_values"]
    assert 0 < embedded < n_values, (embedded, n_values)

    deadline = time.monotonic() + 30  # the killed driver's private Ray goes with it
    while _raylets() - raylets_before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _raylets() - raylets_before

    with Workspace(ws_dir, RAY) as ws:
        summary = run_ingest(ws, [demo_corpus_dir()], chunk_values=CHUNK)
        assert summary.added.values == n_values - embedded  # only the values without a vector were sent
        _assert_same(ws, reference)


def test_without_ray_the_flag_says_how_to_install_it(monkeypatch):
    from engine.datastore.ray_embed import RayEmbedder

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(EngineError) as err:
        RayEmbedder("all-MiniLM-L6-v2")
    assert "Ray" in err.value.message and 'pip install "rebase-tui[ray]"' in err.value.fix
