"""Group commit for concurrent teacher calls: the writes that arrive while one transaction runs share the next.

Each caller awaits its own write (so a call counts as finished only once it is stored), but the concurrent
callers' writes cost one commit instead of one each: at a few examples a second, a commit per example would
cost more than the calls' bookkeeping. A cancelled caller does not abort its write; :meth:`GroupWriter.close`
waits for every submitted write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.workspace import Workspace

_Write = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], "asyncio.Future[Any]"]


class GroupWriter:
    """Runs ``fn(cur, *args, **kwargs)`` writes in shared transactions, on a thread, in submission order."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.pending: list[_Write] = []
        self.wake = asyncio.Event()
        self.closing = False
        self.task = asyncio.ensure_future(self._run())

    async def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Write ``fn(cur, *args, **kwargs)`` in the next transaction; return its result once committed."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending.append((fn, args, kwargs, fut))
        self.wake.set()
        return await asyncio.shield(fut)

    def _write(self, batch: list[_Write]) -> list[tuple[bool, Any]]:
        try:
            with self.ws.store.transaction() as cur:
                return [(True, fn(cur, *args, **kwargs)) for fn, args, kwargs, _ in batch]
        except Exception:  # noqa: BLE001 - one bad write must not sink the others: retry one by one
            out: list[tuple[bool, Any]] = []
            for fn, args, kwargs, _ in batch:
                try:
                    with self.ws.store.transaction() as cur:
                        out.append((True, fn(cur, *args, **kwargs)))
                except Exception as exc:  # noqa: BLE001 - handed to the waiting caller
                    out.append((False, exc))
            return out

    async def _run(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            batch, self.pending = self.pending, []
            if batch:
                results = await asyncio.to_thread(self._write, batch)
                for (_, _, _, fut), (ok, value) in zip(batch, results, strict=True):
                    if not fut.done():
                        fut.set_result(value) if ok else fut.set_exception(value)
            elif self.closing:
                return

    async def close(self) -> None:
        """Wait for every submitted write to be committed."""
        self.closing = True
        self.wake.set()
        await asyncio.shield(self.task)
