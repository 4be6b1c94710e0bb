"""Live retrieval: the task draft both the Task and Retrieve screens edit, and the search that follows it.

* :class:`TaskDraft` is the task being edited (a plain object, no Textual). The Task screen and the
  Retrieve screen both edit the app's one draft, so an edit on either re-ranks the results.
* :class:`LiveRetrieval` owns the :class:`engine.retrieval.retriever.Retriever` (built by a warm-up job off the UI
  thread: torch and the embedder load there, never before the first paint) and runs searches:

  - every edit calls :meth:`LiveRetrieval.request`; a search starts after ``DEBOUNCE_S`` of quiet;
  - searches are async workers in the group ``"search"`` with ``exclusive=True``: a newer request cancels
    the older one's debounce sleep or its wait for the engine;
  - the engine call runs on one dedicated thread (searches never overlap, the retriever is used by one
    thread at a time), and every request carries a generation number: a result whose generation is not
    the newest is dropped, so a stale result never overwrites a fresher one.
  - results are published on :attr:`LiveRetrieval.results_signal` (a Textual Signal) and kept in
    :attr:`LiveRetrieval.latest` for screens that were not listening.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from textual.signal import Signal

from engine.errors import EngineError
from engine.retrieval.results import RetrievalResult, RowHit
from engine.tasks import Demonstration, Task, TaskError, validate
from rebase_tui.widgets.results import format_weights

if TYPE_CHECKING:
    from engine.config import Config
    from engine.retrieval.retriever import Retriever
    from engine.workspace import Workspace
    from rebase_tui.app import RebaseApp

log = logging.getLogger(__name__)

#: Seconds of quiet after an edit before a search starts. Short enough that the keystroke-to-results
#: latency stays well under 300 ms on the whole shared datastore (the engine takes ~50-70 ms there), long
#: enough that quick keystrokes (a few ms apart, or key repeat at ~30 ms) still lead to one search.
DEBOUNCE_S = 0.08


@dataclass
class TaskDraft:
    """The task being edited. ``examples`` holds ``[input, output]`` pairs; ``stored`` is the name of the
    stored task it was loaded from (None for a new one) and ``saved_spec`` that task's spec."""

    name: str = ""
    instruction: str = ""
    examples: list[list[str]] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    stored: str | None = None
    saved_spec: dict[str, Any] | None = None

    @classmethod
    def from_task(cls, task: Task) -> TaskDraft:
        """A draft holding a stored task."""
        draft = cls(task.name, task.instruction, [[e.input, e.output] for e in task.examples],
                    list(task.exclude), stored=task.name)
        draft.saved_spec = draft.to_spec()
        return draft

    def to_spec(self) -> dict[str, Any]:
        """The task-file form of the draft (as typed, not validated)."""
        return {"name": self.name, "instruction": self.instruction,
                "examples": [{"input": i, "output": o} for i, o in self.examples],
                "source_datasets_to_exclude": list(self.exclude)}

    @property
    def dirty(self) -> bool:
        """True when the draft differs from what is stored."""
        return self.to_spec() != self.saved_spec

    def problems(self) -> list[str]:
        """What :func:`engine.tasks.validate` says is wrong with the draft (empty when it is valid)."""
        try:
            validate(self.to_spec())
        except TaskError as exc:
            return list(exc.problems)
        return []

    def query(self) -> Task | None:
        """The task to retrieve for, from whatever is usable so far (the draft need not be valid to
        browse): the instruction and the examples that have an input. None when nothing is usable."""
        examples = tuple(Demonstration(i.strip(), o.strip()) for i, o in self.examples if i.strip())
        if not self.instruction.strip() or not examples:
            return None
        return Task(self.name.strip() or "draft", self.instruction.strip(), examples,
                    tuple(x.strip() for x in self.exclude if x.strip()))


@dataclass(frozen=True)
class SearchParams:
    """The Retrieve screen's controls (replaced as a whole when one changes)."""

    top: int = 100
    per_dataset_cap: int | None = None
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    dedupe: bool = False

    @classmethod
    def from_config(cls, cfg: Config) -> SearchParams:
        """The controls the workspace's config holds (``retrieval.*``, as ``rebase-tui retrieve`` reads them);
        ``top`` stays the screen's own short list, which re-ranks fastest. Weights the config holds wrongly
        fall back to the paper's (``rebase-tui retrieve`` names the problem)."""
        from engine.retrieval.scoring import parse_weights

        try:
            weights = parse_weights(cfg["retrieval.weights"])
        except ValueError:
            weights = (1.0, 1.0, 1.0)
        return cls(per_dataset_cap=int(cfg["retrieval.per_dataset_cap"]) or None, weights=weights,
                   dedupe=bool(cfg["retrieval.dedupe"]))

    def settings(self) -> dict[str, object]:
        """The config keys these controls are saved under, with their values."""
        return {"retrieval.per_dataset_cap": self.per_dataset_cap or 0,
                "retrieval.weights": format_weights(self.weights), "retrieval.dedupe": self.dedupe}


@dataclass
class SearchOutcome:
    """One finished search: the query it answered, its result (None on error) and timings."""

    generation: int
    query: Task
    params: SearchParams
    result: RetrievalResult | None
    error: str = ""
    requested_at: float = 0.0
    finished_at: float = 0.0

    @property
    def rows(self) -> list[RowHit]:
        """The ranked rows (none after an error)."""
        return list(self.result.results) if self.result is not None else []


def make_retriever(ws: Workspace) -> Retriever:
    """Build the workspace's retriever and load its embedder (slow: torch + model). Runs off the UI thread."""
    from engine.datastore.embed import set_torch_threads
    from engine.retrieval.retriever import Retriever

    # one thread: the UI process shares the cores with ingest and training, and two busy processes with
    # several torch threads each slow each other down many times over
    set_torch_threads(1)

    retriever = Retriever(ws)
    # live typing embeds one new instruction per keystroke: keep those vectors in memory only (writing
    # each to the workspace's query_vectors table costs ~10 ms per search and now and then a checkpoint)
    retriever.persist_queries = False
    retriever.warm()
    # torch, transformers and the retriever leave ~millions of long-lived objects: a full (generation 2)
    # collection over them took 100-300 ms and, while typing, now and then froze the UI for that long
    # (the p95 of the latency). Collect once here (the screen shows "loading…") and move what is left out
    # of the cyclic collector's reach; reference counting still frees everything as usual.
    gc.collect()
    gc.freeze()
    return retriever


class LiveRetrieval:
    """The app's retriever and its debounced, newest-wins live search (see the module docstring)."""

    def __init__(self, app: RebaseApp) -> None:
        self.app = app
        self.draft = TaskDraft()
        self._opened = False
        self.params = SearchParams.from_config(app.workspace.config)
        self.retriever: Retriever | None = None
        self.warm_error: str = ""
        self.warming = False
        self.latest: SearchOutcome | None = None
        self.generation = 0
        self.engine_calls = 0
        """How many searches reached the engine (tests check that N quick edits make one call)."""
        self.debounce_s = DEBOUNCE_S
        """Seconds of quiet after an edit before a search starts."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="retrieval")
        self.results_signal: Signal[SearchOutcome] = Signal(app, "retrieval-results")
        self.ready_signal: Signal[str] = Signal(app, "retriever-ready")
        self.draft_signal: Signal[str] = Signal(app, "task-draft")

    # -- warm-up -------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """True once the retriever (and its embedder) is loaded."""
        return self.retriever is not None

    def start_warmup(self) -> None:
        """Load the retriever in the background (called after the first paint)."""
        if self.ready or self.warming or self.app.closing:
            return
        if not self.app.count("datasets"):
            self.warm_error = "the datastore is empty: ingest datasets first (F2)"
            return
        self.warming = True
        self.app.run_worker(self._warmup(), name="warmup", group="warmup", exit_on_error=False,
                            description="load the embedder")

    async def _warmup(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            self.retriever = await loop.run_in_executor(self._executor, make_retriever, self.app.workspace)
            self.warm_error = ""
        except Exception as exc:
            from rebase_tui.jobs import describe_error

            if not _is_expected(exc):
                log.exception("warm-up failed")
            self.warm_error = describe_error(exc)
        finally:
            self.warming = False
        self.ready_signal.publish(self.warm_error)
        if self.ready and self.draft.query() is not None:
            self.request(delay=0)

    def datastore_changed(self) -> None:
        """The datastore changed (ingest, removal): load a retriever if there was none, and re-rank (a
        stale retriever is rebuilt on the retrieval thread before the next search)."""
        self.warm_error = ""
        if self.retriever is None:
            self.start_warmup()
        else:
            self.request(delay=0)

    # -- editing -------------------------------------------------------------------------
    def open_initial_task(self) -> None:
        """Once per app: load the selected task (``--task``), else the first stored one, into the draft."""
        if self._opened:
            return
        self._opened = True
        from engine.tasks import get_task, list_tasks

        ws = self.app.workspace
        task = get_task(ws, self.app.task_name) if self.app.task_name else None
        if task is None:
            tasks = list_tasks(ws)
            task = tasks[0] if tasks else None
        if task is not None:
            self.load(TaskDraft.from_task(task), "app")

    def draft_changed(self, origin: str) -> None:
        """Tell listeners that ``origin`` edited the draft, and re-rank."""
        self.draft_signal.publish(origin)
        self.request()

    def load(self, draft: TaskDraft, origin: str) -> None:
        """Replace the draft (another task selected) and re-rank."""
        self.draft = draft
        self.app.task_name = draft.stored
        self.draft_changed(origin)

    # -- searching -----------------------------------------------------------------------
    def request(self, delay: float | None = None) -> None:
        """Ask for a search of the current draft; it starts after ``delay`` seconds (default: the
        debounce) unless a newer request comes first."""
        if self.app.closing:
            return
        delay = self.debounce_s if delay is None else delay
        self.generation += 1
        # a partial, not a coroutine: a request superseded before it starts never creates one left unawaited
        self.app.run_worker(partial(self._search, self.generation, time.perf_counter(), delay), name="search",
                            group="search", exclusive=True, exit_on_error=False,
                            description="live retrieval")

    async def _search(self, generation: int, requested_at: float, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        query = self.draft.query()
        if query is None or not self.ready:
            return
        params = self.params
        loop = asyncio.get_running_loop()
        self.engine_calls += 1
        try:
            result = await loop.run_in_executor(self._executor, self._run_search, query, params)
            error = ""
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            from rebase_tui.jobs import describe_error

            if not _is_expected(exc):
                log.exception("search failed")
            result, error = None, describe_error(exc)
        if generation != self.generation:
            return  # a newer request exists: never show a stale result
        self.latest = SearchOutcome(generation, query, params, result, error, requested_at,
                                    time.perf_counter())
        self.results_signal.publish(self.latest)

    def _run_search(self, query: Task, params: SearchParams) -> RetrievalResult:
        """The engine call (runs on the retrieval thread). A retriever built before the datastore
        changed (an ingest or a removal since) is rebuilt first."""
        if self.retriever is None or self.retriever.is_stale():
            self.retriever = make_retriever(self.app.workspace)
        return self.retriever.search(query, top=params.top, weights=params.weights,
                                     per_dataset_cap=params.per_dataset_cap, dedupe=params.dedupe)

    def store_pool(self, outcome: SearchOutcome, task: Task) -> int:
        """Store ``outcome`` as ``task``'s pool (what ``rebase-tui retrieve`` stores); return its size."""
        from engine.retrieval.pool import store_pool

        if outcome.result is None:
            raise EngineError("the search failed, so there is no ranking to store",
                              fix="fix what the status line names, then store the pool")
        return store_pool(self.app.workspace, task, outcome.result)

    def shutdown(self) -> None:
        """Stop the retrieval thread without waiting (pending work is dropped)."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def stop(self, timeout: float) -> bool:
        """Drop pending work and wait for the search or warm-up in progress to end (it reads the workspace,
        which must not close under it). Blocks; call off the event loop. True once the thread has ended."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        return True


def _is_expected(exc: BaseException) -> bool:
    return isinstance(exc, EngineError)
