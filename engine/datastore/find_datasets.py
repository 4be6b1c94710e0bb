"""Looking for datasets under the paths an ingest was given, as a job that shows progress and stops.

A folder with many files (a home directory, a mount) can take minutes to walk. The walk runs in a thread
of its own while the ingest's generator says every so often how many folders it has entered; closing the
generator (a cancel, a quit) ends the walk at the next folder instead of after it.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from engine.datastore.sources import Discovery, discover
from engine.events import Event, Progress

EVERY_S = 0.5
"""How often a walk still going says where it is."""


class _Stopped(Exception):
    """Raised inside the walk once its generator was closed."""


def find_datasets(paths: Sequence[str | Path], split: str, dataset_id: str | None, *,
                  every_s: float = EVERY_S) -> Generator[Event, None, Discovery]:
    """:func:`~engine.datastore.sources.discover` ``paths``; a ``find`` Progress (folders looked at — the
    walk looks at some twice: is it a collection, then its files — and the current one) every ``every_s``
    seconds while it runs; returns its Discovery."""
    stop = threading.Event()
    entered = 0
    current = ""

    def on_folder(folder: Path) -> None:
        nonlocal entered, current
        if stop.is_set():
            raise _Stopped
        entered += 1
        current = str(folder)

    with ThreadPoolExecutor(1, thread_name_prefix="find-datasets") as pool:
        future = pool.submit(discover, paths, split, dataset_id, on_folder=on_folder)
        try:
            while True:
                try:
                    return future.result(timeout=every_s)
                except TimeoutError:
                    yield Progress("find", entered, None, "folders", current)
        finally:
            stop.set()  # on close: the walk raises at its next folder, and the pool's exit waits for that
