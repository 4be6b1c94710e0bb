"""Shared test environment and fixtures.

Tests run offline (HF_HUB_OFFLINE=1) with one torch/OMP thread (on 2 cores, two busy processes with
2 threads each were measured 30x slower on small work). Data from ../shared/data is used where present,
and those tests skip cleanly where it is absent.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ["OMP_NUM_THREADS"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.pop("REBASE_WORKSPACE", None)
os.environ.pop("OLLAMA_HOST", None)

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

pytest_plugins = [
    "tests.tui.snapshot",
    "tests.fixtures.standin",
    "tests.fixtures.student",
    "tests.fixtures.datastore",
]

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test when that folder is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not present (the shared data folder sits beside the repository)")
    return path


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory, monkeypatch):
    """Keep the user's real data/config directories out of every test."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.delenv("REBASE_WORKSPACE", raising=False)
    for name in ("REBASE_EMBEDDER", "REBASE_TEACHER_MODEL", "REBASE_THEME", "REBASE_OLLAMA_HOST",
                 "REBASE_STUDENT", "REBASE_DEVICE", "OLLAMA_HOST"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def workspace(tmp_path):
    """A fresh, open workspace in a temp dir (closed after the test)."""
    from engine.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    yield ws
    try:
        ws.close()
    except Exception:
        pass
