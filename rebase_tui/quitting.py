"""Quitting in order: ask first when a job would be interrupted, stop the jobs, wait for every thread that
may still use the workspace, and only then close it.

DuckDB refuses to close a connection while another thread runs a query on it (``connection is busy``),
and a cancelled thread job only notices at its next event, so closing the workspace straight after the
last screen goes away raced the jobs' threads. Here:

1. every worker is cancelled (engine generators are closed: their ``finally`` keeps what was finished);
2. the app waits, with a deadline, until the threads of the event loop's default executor are idle
   (:class:`TrackedExecutor`: Textual's thread workers and ``asyncio.to_thread`` all run there) and the
   live retrieval's own thread has stopped;
3. only then does the app exit; its unmount closes the workspace. When a thread overruns the deadline
   the workspace is left for the process exit to release (DuckDB replays its write-ahead log on the next
   open, so nothing committed is lost) and the command ends at once rather than hang on it.

``SIGTERM`` and ``SIGHUP`` (the SSH link dropped) take the same path without asking.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textual.app import App

log = logging.getLogger(__name__)

#: Seconds to wait for the jobs' threads after they were told to stop. Engine generators yield a few
#: times a second, so a thread job normally ends well within this; a blocking call that does not (a model
#: export) is left behind rather than keep the user waiting.
STOP_TIMEOUT_S = 20.0

#: Worker groups whose work a quit interrupts, and how the question names them. A followed training run
#: is not among them: it runs in its own process and goes on after the app quits.
INTERRUPTIBLE: dict[str, str] = {
    "transform": "a transform",
    "ingest": "an ingest",
    "eval": "an evaluation",
    "export-dataset": "a dataset export",
    "export-model": "a model export",
    "regenerate": "a regeneration",
    "train-start": "the start of a training run",
    "refine": "a refinement round",
    "remove": "a dataset removal",
}


class TrackedExecutor(ThreadPoolExecutor):
    """A thread pool that knows when every task it was given has returned (:meth:`wait_idle`).

    Installed as the event loop's default executor, so Textual's thread workers and every
    ``asyncio.to_thread`` call (the teacher's writes, for one) run here.
    """

    def __init__(self) -> None:
        super().__init__(max_workers=min(32, (os.cpu_count() or 1) + 4), thread_name_prefix="rebase-worker")
        self._idle = threading.Condition()
        self._active = 0

    def _done(self) -> None:
        with self._idle:
            self._active -= 1
            self._idle.notify_all()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._idle:
            self._active += 1
        started = threading.Event()

        def run() -> Any:
            started.set()
            try:
                return fn(*args, **kwargs)
            finally:
                self._done()

        try:
            future = super().submit(run)
        except BaseException:
            self._done()
            raise
        # a task cancelled before it started never runs ``run``: count it out here instead
        future.add_done_callback(lambda f: self._done() if f.cancelled() and not started.is_set() else None)
        return future

    @property
    def active(self) -> int:
        """Tasks submitted and not yet returned."""
        return self._active

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Never wait for the threads: the quit already waited for them up to its deadline, and the event
        loop's closing would otherwise block until a thread that overran it (an ingest walking a huge
        folder, say) returns, with the terminal given back and the process still running."""
        super().shutdown(wait=False, cancel_futures=cancel_futures)

    def wait_idle(self, timeout: float) -> bool:
        """Block until no task runs (True), or ``timeout`` seconds pass (False)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout)


def running_jobs(app: App[Any]) -> list[str]:
    """What a quit would interrupt now (``["a transform", ...]``), from the app's running workers."""
    found: list[str] = []
    for worker in app.workers:
        what = INTERRUPTIBLE.get(worker.group)
        if what and not worker.is_finished and what not in found:
            found.append(what)
    return found


def question(jobs: list[str]) -> str:
    """The confirmation asked before a quit that interrupts ``jobs``."""
    what = " and ".join(jobs)
    verb = "are" if len(jobs) > 1 else "is"
    return (f"{what[0].upper()}{what[1:]} {verb} running: quit and resume later?\n\n"
            "Finished work is kept; running the same step again picks up where it stopped.\n"
            "y quits · n or escape stays")


async def stop_jobs(app: App[Any], executor: TrackedExecutor | None, others: list[Callable[[float], bool]],
                    timeout: float = STOP_TIMEOUT_S) -> bool:
    """Cancel every worker but the caller's, then wait until no thread may touch the workspace.

    ``others`` are further threads to stop (each called with the seconds left, off the event loop; True
    once stopped). Returns True when everything stopped within ``timeout`` seconds (the workspace can be
    closed), False when something overran.
    """
    from textual.worker import get_current_worker

    try:
        me = get_current_worker()
    except RuntimeError:
        me = None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    workers = [w for w in app.workers if w is not me and not w.is_finished]
    for worker in workers:
        worker.cancel()
    pending = [asyncio.ensure_future(_settled(w.wait())) for w in workers]
    if pending:
        await asyncio.wait(pending, timeout=max(0.1, deadline - loop.time()))
    stopped = True
    waits: list[Callable[[float], bool]] = list(others)
    if executor is not None:
        waits.insert(0, executor.wait_idle)
    for wait in waits:
        left = max(0.1, deadline - loop.time())
        # a plain thread, not the executor being waited for
        done = await _in_thread(wait, left)
        stopped = stopped and done
    if not stopped:
        log.warning("some jobs did not stop within %.0f s; the workspace is left to the process exit", timeout)
    return stopped


async def _settled(awaitable: Any) -> None:
    try:
        await awaitable
    except BaseException:  # a cancelled or failed worker has settled all the same
        return


async def _in_thread(fn: Callable[[float], bool], timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    result: asyncio.Future[bool] = loop.create_future()

    def run() -> None:
        try:
            value = bool(fn(timeout))
        except Exception:  # noqa: BLE001 - a failing wait counts as "did not stop"
            log.exception("waiting for a job to stop failed")
            value = False
        loop.call_soon_threadsafe(lambda: result.done() or result.set_result(value))

    threading.Thread(target=run, name="rebase-quit-wait", daemon=True).start()
    try:
        return await asyncio.wait_for(result, timeout + 1.0)
    except TimeoutError:
        return False


def terminal_gone(fd: int | None = None) -> bool:
    """True when the terminal on ``fd`` (default: standard output) hung up — its SSH link or its window went
    away: every call on it then fails with EIO. False for a terminal still there, and for no terminal at all."""
    import errno
    import sys
    import termios

    if fd is None:
        if sys.__stdout__ is None:
            return False
        fd = sys.__stdout__.fileno()
    try:
        termios.tcgetattr(fd)
    except termios.error as exc:
        return bool(exc.args) and exc.args[0] == errno.EIO
    except (OSError, ValueError):
        return False
    return False


def install_signal_handlers(on_signal: Callable[[str], None]) -> list[int]:
    """Call ``on_signal(name)`` on SIGTERM and SIGHUP (from the event loop); return the signals handled."""
    loop = asyncio.get_running_loop()
    handled = []
    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            loop.add_signal_handler(sig, on_signal, sig.name)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no such signal
            continue
        handled.append(sig)
    return handled


def remove_signal_handlers(signals: list[int]) -> None:
    """Undo :func:`install_signal_handlers`."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    for sig in signals:
        try:
            loop.remove_signal_handler(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            continue
