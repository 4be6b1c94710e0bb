"""Adapters from engine jobs to Textual workers.

Every long engine operation is a generator of :class:`engine.events.Event`. These helpers run one in a
worker that belongs to ``node`` (a screen or widget; the worker is cancelled when the node goes away) and
post what happens back to that node as messages from :mod:`rebase_tui.messages`:

* one :class:`~rebase_tui.messages.EngineEvent` per event (Progress is coalescible, nothing else is);
* one :class:`~rebase_tui.messages.JobFinished` at the end: ``done`` (with the generator's return
  value), ``cancelled`` (the worker was cancelled; the generator was closed, so the engine's ``finally``
  kept what was finished) or ``error`` (the text of the exception; an :class:`EngineError` reads
  ``message — fix``). Errors never exit the app (``exit_on_error=False``).

Usage from a screen::

    self._job = run_events(self, "ingest", lambda: ingest(ws, paths))   # thread worker
    ...
    self._job.cancel()          # cancel: takes effect at the next event the generator yields

    run_async_events(self, "transform", lambda: transform(ws, task, rows))   # async generator
    run_call(self, "check", check, ws)        # one blocking call in a thread; result in JobFinished

Thread workers cannot be interrupted: they check ``is_cancelled`` between events, so engine generators
must yield at least a few times per second (they do: progress is time-batched at about 4 Hz).
A job's name is also its worker group; ``exclusive=True`` (the default) cancels a running job of the
same name when a new one starts. Once the app is quitting (``app.closing``) no new job starts: its worker
returns at once, so nothing begins to use the workspace while it is being closed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from textual.dom import DOMNode
from textual.worker import Worker, get_current_worker

from engine.errors import EngineError
from engine.events import Event
from rebase_tui.messages import EngineEvent, JobFinished

log = logging.getLogger(__name__)


def _failed(job: str, exc: BaseException) -> str:
    """The one line a failed job reports; an unexpected exception is also logged with its traceback."""
    if not isinstance(exc, EngineError):
        log.exception("job %s failed", job)
    return describe_error(exc)


def describe_error(exc: BaseException) -> str:
    """One line for the user: ``message — fix`` for EngineError, ``Type: text`` for anything else."""
    if isinstance(exc, EngineError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _closing(node: DOMNode) -> bool:
    """True once the app quits (see :mod:`rebase_tui.quitting`)."""
    return bool(getattr(node.app, "closing", False))


def _nothing() -> None:
    return None


def run_events(node: DOMNode, job: str, make: Callable[[], Iterator[Event]], *,
               exclusive: bool = True, description: str = "") -> Worker[Any]:
    """Run the engine generator ``make()`` in a thread worker named ``job``; post its events to ``node``.

    ``make`` is called inside the worker thread, so opening files or importing torch there never blocks
    the UI. Between events the worker checks ``is_cancelled``; on cancel it closes the generator.
    """

    def work() -> Any:
        worker = get_current_worker()
        outcome, result, error = "done", None, ""
        gen: Iterator[Event] | None = None
        try:
            gen = make()
            while True:
                if worker.is_cancelled:
                    outcome = "cancelled"
                    break
                try:
                    event = next(gen)
                except StopIteration as stop:
                    result = stop.value
                    break
                node.post_message(EngineEvent(job, event))
        except Exception as exc:  # every failure becomes a message, never an app exit
            outcome, error = "error", _failed(job, exc)
        finally:
            close = getattr(gen, "close", None)
            if close is not None:
                try:
                    close()
                except Exception as exc:  # a failing finally must still report
                    outcome, error = "error", describe_error(exc)
        node.post_message(JobFinished(job, outcome, result, error))
        return result

    return node.run_worker(_nothing if _closing(node) else work, name=job, group=job, thread=True, exclusive=exclusive,
                           exit_on_error=False, description=description or job)


def run_async_events(node: DOMNode, job: str, make: Callable[[], AsyncIterator[Event]], *,
                     exclusive: bool = True, description: str = "") -> Worker[Any]:
    """Run the async engine generator ``make()`` in an async worker named ``job`` (network-bound work).

    Cancelling the worker raises ``CancelledError`` at the generator's current ``await``; the generator
    is closed (``aclose``) so the engine keeps what it finished.
    """
    import asyncio

    async def work() -> Any:
        outcome, error = "done", ""
        agen: AsyncIterator[Event] | None = None
        try:
            agen = make()
            async for event in agen:
                node.post_message(EngineEvent(job, event))
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except Exception as exc:
            outcome, error = "error", _failed(job, exc)
        finally:
            aclose = getattr(agen, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:
                    log.exception("closing job %s failed", job)
            node.post_message(JobFinished(job, outcome, None, error))
        return None

    async def nothing() -> None:
        return None

    return node.run_worker(nothing() if _closing(node) else work(), name=job, group=job, exclusive=exclusive,
                           exit_on_error=False,
                           description=description or job)


def run_call(node: DOMNode, job: str, fn: Callable[..., Any], *args: Any, exclusive: bool = True,
             **kwargs: Any) -> Worker[Any]:
    """Run one blocking call ``fn(*args, **kwargs)`` in a thread worker; its return value (or error)
    arrives as :class:`JobFinished` on ``node``. A result that arrives after cancellation is dropped."""

    def work() -> Any:
        worker = get_current_worker()
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            node.post_message(JobFinished(job, "error", None, _failed(job, exc)))
            return None
        if worker.is_cancelled:
            node.post_message(JobFinished(job, "cancelled"))
            return None
        node.post_message(JobFinished(job, "done", result))
        return result

    return node.run_worker(_nothing if _closing(node) else work, name=job, group=job, thread=True, exclusive=exclusive,
                           exit_on_error=False, description=job)
