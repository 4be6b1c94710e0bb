"""Group commit for concurrent teacher calls: the writes that arrive while one transaction runs share the next.

Each caller awaits its own write (so a call counts as finished only once it is stored), but the concurrent
callers' writes cost one commit instead of one each: at a few examples a second, a commit per example would
cost more than the calls' bookkeeping. Writes submitted with :meth:`GroupWriter.submit_row` go further: the
consecutive ones of one function are written by a single call of it (one statement for many rows). A
cancelled caller does not abort its write; :meth:`GroupWriter.close` waits for every submitted write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.workspace import Workspace

_Write = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], "asyncio.Future[Any]", bool]


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
        return await self._enqueue(fn, args, kwargs, False)

    async def submit_row(self, fn: Callable[[Any, list[Any]], list[Any]], item: Any) -> Any:
        """Write ``item`` in the next transaction through ``fn(cur, items)``, which writes the consecutive
        items submitted for the same ``fn`` together and returns one result per item; return ``item``'s."""
        return await self._enqueue(fn, (item,), {}, True)

    async def _enqueue(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                       rows: bool) -> Any:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending.append((fn, args, kwargs, fut, rows))
        self.wake.set()
        return await asyncio.shield(fut)

    @staticmethod
    def _apply(cur: Any, group: list[_Write]) -> list[Any]:
        """Run one write, or one call for a run of row writes of the same function."""
        fn, args, kwargs, _, rows = group[0]
        if rows:
            return list(fn(cur, [w[1][0] for w in group]))
        return [fn(cur, *args, **kwargs)]

    @staticmethod
    def _groups(batch: list[_Write]) -> list[list[_Write]]:
        """Consecutive row writes of one function together; every other write alone."""
        groups: list[list[_Write]] = []
        for w in batch:
            if groups and w[4] and groups[-1][0][4] and groups[-1][0][0] is w[0]:
                groups[-1].append(w)
            else:
                groups.append([w])
        return groups

    def _write(self, batch: list[_Write]) -> list[tuple[bool, Any]]:
        try:
            with self.ws.store.transaction() as cur:
                return [(True, r) for group in self._groups(batch) for r in self._apply(cur, group)]
        except Exception:  # noqa: BLE001 - one bad write must not sink the others: retry one by one
            out: list[tuple[bool, Any]] = []
            for w in batch:
                try:
                    with self.ws.store.transaction() as cur:
                        out.append((True, self._apply(cur, [w])[0]))
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
                for (_, _, _, fut, _), (ok, value) in zip(batch, results, strict=True):
                    if not fut.done():
                        fut.set_result(value) if ok else fut.set_exception(value)
            elif self.closing:
                return

    async def close(self) -> None:
        """Wait for every submitted write to be committed."""
        self.closing = True
        self.wake.set()
        await asyncio.shield(self.task)
