"""Messages the app's workers post to its widgets: workers compute, handlers change the UI.

Workers compute; message handlers mutate the UI. Engine generators yield :class:`engine.events.Event`s;
:mod:`rebase_tui.jobs` wraps each one in an :class:`EngineEvent` and posts it (``post_message`` is
thread-safe) to the node that started the job. Handlers match on the event type::

    @on(EngineEvent)
    def _job_event(self, message: EngineEvent) -> None:
        if message.job != "ingest":
            return
        match message.event:
            case Progress(done=done, total=total): ...
            case Log(message=text): ...

When the job ends, :class:`JobFinished` arrives with how it ended (``"done"``, ``"cancelled"`` or
``"error"``) and the error's text (``EngineError`` message + fix) when it failed.

Coalescing (``can_replace``): only *state snapshots* of the same job may replace a queued one — a newer
``Progress`` of the same job replaces an older queued ``Progress``. Logs, summaries, domain results and
``JobFinished`` are never dropped (pitfall 9).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

from engine.events import Event, Progress


@dataclass
class EngineEvent(Message):
    """One engine event from the job named ``job`` (e.g. ``"ingest"``, ``"transform"``)."""

    job: str
    event: Event

    def can_replace(self, message: Message) -> bool:
        """A queued Progress of the same job and stage is superseded by this newer one."""
        return (isinstance(message, EngineEvent) and message.job == self.job
                and isinstance(self.event, Progress) and isinstance(message.event, Progress)
                and message.event.stage == self.event.stage)


@dataclass
class JobFinished(Message):
    """The job named ``job`` ended: ``outcome`` is ``"done"``, ``"cancelled"`` or ``"error"``.

    ``result`` is the job's return value (the generator's ``return`` value for engine generators) and
    ``error`` a one-line description (for :class:`engine.errors.EngineError`: ``message — fix``).
    """

    job: str
    outcome: str
    result: Any = None
    error: str = ""

    @property
    def ok(self) -> bool:
        """True when the job ran to completion."""
        return self.outcome == "done"


@dataclass
class WarmupDone(Message):
    """The warm-up worker has loaded what ``what`` names (``"retriever"``); ``error`` when it failed."""

    what: str
    error: str = ""


@dataclass
class DraftChanged(Message):
    """The task draft was edited; ``origin`` names the screen that edited it (``"task"``, ``"retrieve"``)."""

    origin: str
