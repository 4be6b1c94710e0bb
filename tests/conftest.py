"""Shared test environment and fixtures.

Tests run offline (HF_HUB_OFFLINE=1) with one torch/OMP thread (on 2 cores, two busy processes with
2 threads each were measured 30x slower on small work). Their data is the corpus committed under
``tests/data`` (:func:`corpus`), so a fresh clone runs the whole suite. Only the ``slow`` tests read the
shared data folder beside the repository (:func:`shared_data`; ``REBASE_SHARED_DATA`` points elsewhere),
and skip where it is absent. The run ends with a count of skipped tests and their reasons.
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
    "tests.fixtures.trained",
]

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "data"
SHARED_DATA = Path(os.environ.get("REBASE_SHARED_DATA") or REPO.parent / "shared" / "data")


def corpus(*parts: str) -> Path:
    """A path in the committed test corpus (tests/data); a missing one fails the test, never skips it."""
    path = CORPUS.joinpath(*parts)
    assert path.exists(), f"{path} is missing from the test corpus (python -m tests.data.build_corpus writes it)"
    return path


def shared_data(*parts: str) -> Path:
    """A path under the shared data folder, for slow tests only; skips the test when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not present (the shared data folder sits beside the repository; "
                    "only slow tests use it)")
    return path


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    """Say how many tests were skipped and why, so that a run missing something never just reads "passed"."""
    skipped = terminalreporter.stats.get("skipped", [])
    reasons: dict[str, int] = {}
    for report in skipped:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    line = f"{len(skipped)} skipped"
    deselected = len(terminalreporter.stats.get("deselected", []))
    if deselected:
        line += f", {deselected} deselected (-m/-k; the slow tests run only with -m slow)"
    terminalreporter.section("skipped tests", sep="-")
    terminalreporter.write_line(line)
    for reason, n in sorted(reasons.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"  {n} x {reason}")


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
