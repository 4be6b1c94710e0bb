"""Key-to-paint latency of the Review screen on 5,000 examples (goal: each key's effect painted < 50 ms).

For each key, the time from the key event entering the app to the first screen update the app hands to
its driver (``App._display``; headless, so the terminal write itself — a few hundred bytes — is not
included) is measured. Decisions are painted at once and written on the screen's writer thread; the
bench waits for each write before the next key, so writes never pile up. Keys: next/previous (j/k), accept (a), reject (r), undo (u), last/first (G/g)
and a filter switch (2 = pending, 1 = all). Accept/reject/undo include their DuckDB write through
engine.review. As a baseline in the same process, the cost of rebuilding a 5,000-row DataTable (what a
naive screen would do per key) is measured too.

    python bench/review.py [--examples 5000] [--rounds 40]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from _common import review_workspace
from textual import events

from engine.workspace import Workspace  # noqa: E402
from rebase_tui.app import RebaseApp  # noqa: E402

KEYS = ("j", "k", "a", "r", "u", "G", "g", "2", "1")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def measure(n: int, rounds: int) -> dict[str, list[float]]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-review-"))
    ws = Workspace(tmp / "ws")
    review_workspace(ws, n)
    app = RebaseApp(ws, stage="review", task="nli")
    painted = asyncio.Event()
    settled = asyncio.Event()
    watch: list = []
    original = app._display

    def display(screen, renderable):  # type: ignore[no-untyped-def]
        if renderable is not None and watch:
            painted.set()
            lst, card = watch
            current = lst.current
            if card.shown_id == (current.id if current else None):
                settled.set()
        return original(screen, renderable)

    app._display = display  # type: ignore[method-assign]
    timings: dict[str, list[float]] = {k: [] for k in KEYS}
    full: dict[str, list[float]] = {k: [] for k in KEYS}
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause(0.5)
        lst = app.screen.query_one("#review-list")
        card = app.screen.query_one("#review-card")
        watch.extend([lst, card])
        assert len(lst.rows) == n
        for _ in range(rounds):
            for key in KEYS:
                await pilot.pause(0.01)
                painted.clear()
                settled.clear()
                t0 = time.perf_counter()
                event = events.Key(key, key if len(key) == 1 else None)
                app._driver.send_message(event)  # as a terminal key press arrives
                await asyncio.wait_for(painted.wait(), 5)
                timings[key].append((time.perf_counter() - t0) * 1000)
                await asyncio.wait_for(settled.wait(), 5)
                full[key].append((time.perf_counter() - t0) * 1000)
                await app.screen.flush_writes()  # the next key starts from a written state
    return timings, full


async def framework_floor(rounds: int) -> list[float]:
    """Key-to-paint of a bare Textual app whose key handler repaints one line: the framework's own floor on
    this machine at this moment (the Review figures are best read against it on a loaded box)."""
    from textual.app import App
    from textual.widgets import Static

    class Bare(App[None]):
        def compose(self):  # type: ignore[no-untyped-def]
            yield Static("0", id="n")

        def on_key(self) -> None:
            w = self.query_one("#n", Static)
            w.update(str(int(str(w.render())) + 1))

    app = Bare()
    painted = asyncio.Event()
    original = app._display

    def display(screen, renderable):  # type: ignore[no-untyped-def]
        if renderable is not None:
            painted.set()
        return original(screen, renderable)

    app._display = display  # type: ignore[method-assign]
    out = []
    async with app.run_test(size=(140, 40)) as pilot:
        for _ in range(rounds):
            await pilot.pause(0.01)
            painted.clear()
            t0 = time.perf_counter()
            app._driver.send_message(events.Key("j", "j"))
            await asyncio.wait_for(painted.wait(), 5)
            out.append((time.perf_counter() - t0) * 1000)
    return out


async def datatable_baseline(n: int) -> float:
    """ms to clear + refill + paint a DataTable of n rows (what rebuilding the list per key would cost)."""
    from textual.app import App
    from textual.widgets import DataTable

    class T(App[None]):
        def compose(self):  # type: ignore[no-untyped-def]
            yield DataTable()

    app = T()
    rows = [(i, "pending", f"Premise {i}: example number {i}") for i in range(n)]
    async with app.run_test(size=(140, 40)) as pilot:
        table = app.query_one(DataTable)
        table.add_columns("id", "status", "input")
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            table.clear()
            table.add_rows(rows)
            await pilot.pause()
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--examples", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=40)
    args = ap.parse_args()
    timings, full = asyncio.run(measure(args.examples, args.rounds))
    all_ms = [t for ts in timings.values() for t in ts]
    all_full = [t for ts in full.values() for t in ts]
    print(f"Review screen, {args.examples:,} examples, {args.rounds} rounds of {len(KEYS)} keys "
          f"({len(all_ms)} key presses): ms from the key to the first paint of its effect (list), and to "
          "the paint that also shows the example card")
    print(f"{'key':<6}{'median':>9}{'p95':>9}{'max':>9}   {'card median':>12}{'card p95':>10}")
    for key, ts in timings.items():
        print(f"{key:<6}{statistics.median(ts):>9.1f}{pct(ts, 95):>9.1f}{max(ts):>9.1f}   "
              f"{statistics.median(full[key]):>12.1f}{pct(full[key], 95):>10.1f}")
    med, p95 = statistics.median(all_ms), pct(all_ms, 95)
    print(f"{'all':<6}{med:>9.1f}{p95:>9.1f}{max(all_ms):>9.1f}   "
          f"{statistics.median(all_full):>12.1f}{pct(all_full, 95):>10.1f}")
    floor = asyncio.run(framework_floor(len(KEYS) * args.rounds))
    print(f"floor: a bare Textual app repainting one line per key: median {statistics.median(floor):.1f} ms, "
          f"p95 {pct(floor, 95):.1f} ms (Review median = {med / statistics.median(floor):.1f}x the floor)")
    base = asyncio.run(datatable_baseline(args.examples))
    print(f"baseline: rebuilding a {args.examples:,}-row DataTable + paint: {base:.0f} ms "
          f"({base / med:.0f}x the median key)")
    print(f"goal p95 < 50 ms: {'met' if p95 < 50 else 'NOT met'}")


if __name__ == "__main__":
    main()
