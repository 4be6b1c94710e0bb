"""A line chart of training and evaluation loss against the step, with a log-scale toggle.

The history is a plain bounded list of (step, value) per series (not a reactive list); the chart
downsamples it to its width when drawn. Training loss is a braille line (each terminal cell holds a 2×4 dot
grid, so a 60×10 chart plots 120 points at 40 levels); evaluation loss, a few points per run, is drawn as
``●`` markers in its own colour, so the two never look alike. The y-axis has its extremes, the x-axis its
first, middle and last step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

#: Dot bits of a braille cell, indexed [row 0..3][column 0..1].
_DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
_AXIS = 8  # columns of the y-axis labels
_X_AXIS = 2  # rows of the x-axis: the rule and the step labels
EVAL_MARK = "●"


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000 or abs(v) < 0.01:
        return f"{v:.1e}"
    return f"{v:.3g}"


def resample(points: Sequence[tuple[float, float]], n: int) -> list[tuple[float, float]]:
    """At most ``n`` points: consecutive points are averaged in equal-count buckets."""
    if len(points) <= n or n <= 0:
        return list(points)
    out = []
    for i in range(n):
        lo, hi = i * len(points) // n, (i + 1) * len(points) // n
        chunk = points[lo:max(hi, lo + 1)]
        out.append((sum(p[0] for p in chunk) / len(chunk), sum(p[1] for p in chunk) / len(chunk)))
    return out


class LossChart(Widget, can_focus=True):
    """Train loss and eval loss against step; ``log_scale`` plots log10(loss)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"loss-chart--train", "loss-chart--eval", "loss-chart--axis"}
    DEFAULT_CSS = """
    LossChart { height: 12; border: round $primary-muted; }
    LossChart > .loss-chart--train { color: $loss-train; }
    LossChart > .loss-chart--eval { color: $loss-eval; }
    LossChart > .loss-chart--axis { color: $foreground-muted; }
    """
    SERIES = ("train", "eval")

    def __init__(self, max_points: int = 5000, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.max_points = max_points
        self.series: dict[str, list[tuple[float, float]]] = {name: [] for name in self.SERIES}
        self.log_scale = False
        self._update_title()

    # -- data ------------------------------------------------------------------------------
    def add(self, series: str, step: float, value: float) -> None:
        """Append one point (non-finite values are skipped); the history stays bounded."""
        if value is None or not math.isfinite(value):
            return
        points = self.series[series]
        points.append((float(step), float(value)))
        if len(points) > self.max_points:
            # Keep the shape: halve the resolution of the older half.
            half = len(points) // 2
            points[:half] = resample(points[:half], half // 2)
        self.refresh()

    def clear(self) -> None:
        """Forget every point."""
        for points in self.series.values():
            points.clear()
        self.refresh()

    def toggle_log(self) -> bool:
        """Switch between linear and log scale; return the new state."""
        self.log_scale = not self.log_scale
        self._update_title()
        self.refresh()
        return self.log_scale

    def _update_title(self) -> None:
        from textual.content import Content

        self.border_title = Content.assemble(
            "loss  ", ("⣿ train", "$loss-train"), "  ", (f"{EVAL_MARK} eval", "$loss-eval"),
            " (log scale)" if self.log_scale else "", "  by step")

    # -- drawing ---------------------------------------------------------------------------
    def _y(self, v: float) -> float:
        return math.log10(max(v, 1e-12)) if self.log_scale else v

    def steps(self) -> tuple[float, float]:
        """The first and last step plotted."""
        xs = [p[0] for pts in self.series.values() for p in pts]
        return (min(xs), max(xs)) if xs else (0.0, 0.0)

    def grid(self, width: int, height: int) -> tuple[list[list[int]], list[list[str | None]], float, float]:
        """Braille bits and the series owning each cell for a ``width``×``height`` plot area."""
        bits = [[0] * width for _ in range(height)]
        owner: list[list[str | None]] = [[None] * width for _ in range(height)]
        drawn = {k: resample(v, width * 2) for k, v in self.series.items() if v}
        if not drawn or width <= 0 or height <= 0:
            return bits, owner, 0.0, 0.0
        xs = [p[0] for pts in drawn.values() for p in pts]
        ys = [self._y(p[1]) for pts in drawn.values() for p in pts]
        x0, x1 = min(xs), max(xs)
        y0, y1 = min(ys), max(ys)
        if y1 - y0 < 1e-12:
            y0, y1 = y0 - 0.5, y1 + 0.5
        dots_w, dots_h = width * 2, height * 4

        def to_dot(p: tuple[float, float]) -> tuple[int, int]:
            dx = 0 if x1 == x0 else round((p[0] - x0) / (x1 - x0) * (dots_w - 1))
            dy = round((y1 - self._y(p[1])) / (y1 - y0) * (dots_h - 1))
            return dx, dy

        def plot(name: str, dx: int, dy: int) -> None:
            cx, cy = dx // 2, dy // 4
            bits[cy][cx] |= _DOTS[dy % 4][dx % 2]
            owner[cy][cx] = name

        train = [to_dot(p) for p in drawn.get("train", [])]
        for i, (dx, dy) in enumerate(train):
            plot("train", dx, dy)
            if i:  # join to the previous point: a line through the dots between them
                px, py = train[i - 1]
                n = max(abs(dx - px), abs(dy - py))
                for k in range(1, n):
                    plot("train", px + round((dx - px) * k / n), py + round((dy - py) * k / n))
        for dx, dy in (to_dot(p) for p in drawn.get("eval", [])):
            owner[dy // 4][dx // 2] = "eval"  # a marker cell: drawn as EVAL_MARK over the line
        lo, hi = y0, y1
        if self.log_scale:
            lo, hi = 10 ** y0, 10 ** y1
        return bits, owner, lo, hi

    def render_line(self, y: int) -> Strip:
        width, height = self.size.width, self.size.height
        base = self.rich_style
        axis = base + self.get_component_rich_style("loss-chart--axis", partial=True)
        plot_w, plot_h = max(0, width - _AXIS), max(1, height - _X_AXIS)
        if not any(self.series.values()):
            text = "waiting for the first step…" if y == height // 2 else ""
            return Strip([Segment(text.center(width), axis)]).crop_extend(0, width, base)
        if y >= plot_h:
            return self._x_axis(y - plot_h, plot_w, axis).crop_extend(0, width, base)
        bits, owner, lo, hi = self._cached_grid(plot_w, plot_h)
        label = _fmt(hi) if y == 0 else _fmt(lo) if y == plot_h - 1 else ""
        segments = [Segment(f"{label:>{_AXIS - 1}}│", axis)]
        styles: dict[str | None, Style] = {
            None: base,
            "train": base + self.get_component_rich_style("loss-chart--train", partial=True),
            "eval": base + self.get_component_rich_style("loss-chart--eval", partial=True),
        }
        row_bits, row_owner = bits[y], owner[y]
        for x in range(plot_w):
            if row_owner[x] == "eval":
                segments.append(Segment(EVAL_MARK, styles["eval"]))
            else:
                segments.append(Segment(chr(0x2800 + row_bits[x]) if row_bits[x] else " ", styles[row_owner[x]]))
        return Strip(segments).crop_extend(0, width, base)

    def _x_axis(self, row: int, plot_w: int, style: Style) -> Strip:
        """Row 0: the axis rule; row 1: the first, middle and last step under it."""
        if row == 0:
            return Strip([Segment(" " * (_AXIS - 1) + "└" + "─" * plot_w, style)])
        first, last = self.steps()
        labels = [f"{first:g}", f"{(first + last) / 2:.0f}", f"{last:g}"]
        line = [" "] * plot_w
        for text, at in zip(labels, (0, (plot_w - len(labels[1])) // 2, plot_w - len(labels[2])), strict=True):
            for i, ch in enumerate(text):
                if 0 <= at + i < plot_w:
                    line[at + i] = ch
        return Strip([Segment(" " * (_AXIS - 6) + "step  " + "".join(line), style)])

    _cache_key: tuple[int, int, int, int, bool] | None = None
    _cache: tuple[list[list[int]], list[list[str | None]], float, float] | None = None

    def _cached_grid(self, width: int, height: int) -> tuple[list[list[int]], list[list[str | None]], float, float]:
        key = (width, height, len(self.series["train"]), len(self.series["eval"]), self.log_scale)
        if key != self._cache_key or self._cache is None:
            self._cache_key, self._cache = key, self.grid(width, height)
        return self._cache
