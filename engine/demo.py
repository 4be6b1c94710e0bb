"""The demo workspace: a small corpus shipped inside the package, ingested through the real ingest path.

``engine/demo_data/datasets/`` holds eight small datasets written for rebase-tui (300 rows; Parquet with
ClassLabel metadata, JSONL with nested fields, JSON with a ``data`` wrapper, CSV, TSV; a README.md card
each) and ``engine/demo_data/tasks/`` two task specs (a review-sentiment task and a word-problem task with
chain-of-thought outputs). :func:`build_demo` ingests the corpus (all rows) and adds the tasks; running it
again adds nothing, so ``rebase-tui demo`` is safe to repeat.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.datastore.ingest import IngestDone, IngestSummary, ingest
from engine.events import Event, Log

if TYPE_CHECKING:
    from engine.datastore.embed import Embedder
    from engine.workspace import Workspace

DEMO_TASKS = ("demo-review-sentiment", "demo-word-problems")
"""Names of the demo tasks (the first is the one the app opens on)."""


def demo_data_dir() -> Path:
    """The folder of the shipped demo data (``engine/demo_data``)."""
    return Path(str(resources.files("engine").joinpath("demo_data")))


def demo_corpus_dir() -> Path:
    """The demo collection folder (eight dataset folders)."""
    return demo_data_dir() / "datasets"


def demo_task_files() -> list[Path]:
    """The demo task JSON files, in :data:`DEMO_TASKS` order."""
    return [demo_data_dir() / "tasks" / f"{name}.json" for name in DEMO_TASKS]


def default_demo_dir() -> Path:
    """``<user data dir>/rebase-tui/demo``: where ``rebase-tui demo`` builds its workspace by default."""
    import platformdirs

    return Path(platformdirs.user_data_dir("rebase-tui", appauthor=False)) / "demo"


@dataclass(frozen=True, slots=True)
class DemoDone(Event):
    """The last event of :func:`build_demo`: the ingest's summary and the demo tasks now stored."""

    summary: IngestSummary
    tasks: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """The ingest summary's document with the demo task names added under ``"tasks"``."""
        return {**self.summary.to_json(), "tasks": list(self.tasks)}


def build_demo(ws: Workspace, *, embedder: Embedder | None = None) -> Iterator[Event]:
    """Ingest the demo corpus into ``ws`` and add the demo tasks (idempotent); ends with :class:`DemoDone`."""
    from engine import tasks

    summary: IngestSummary | None = None
    for event in ingest(ws, [demo_corpus_dir()], max_rows_per_config=0, embedder=embedder):
        if isinstance(event, IngestDone):
            summary = event.summary
        else:
            yield event
    assert summary is not None, "ingest always ends with IngestDone"
    added = []
    for path in demo_task_files():
        task = tasks.read_task_file(path)
        if tasks.get_task(ws, task.name) is None:
            tasks.add_task(ws, task)
            added.append(task.name)
    if added:
        yield Log(f"added task(s) {', '.join(added)}")
    yield DemoDone(summary, tuple(t.name for t in tasks.list_tasks(ws) if t.name in DEMO_TASKS))
