"""A plotext line plot of named curves that is cheap to keep live.

- curves are downsampled to about two points per character cell (at most
  :data:`MAX_POINTS`) before plotting: plotext costs microseconds per plotted point;
- redraws are throttled to :data:`MAX_FPS` a second however fast data arrives;
- the built plot is cached, so a repaint for another reason costs nothing.

Two looks: the classic one (plotext's legend in the top-left corner, braille lines) and,
with ``legend_outside``, a legend in a line of its own above the plot (it covers no data)
and a distinct marker per curve (``●``, ``■``, ``▲`` ... at up to :data:`MARKS_PER_CURVE`
points, in the legend too), with an optional log y axis (``ylog``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Group
from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot

from slr_tui.widgets._series import downsample

MAX_POINTS = 2000
MAX_FPS = 10.0
PALETTE = ("cyan+", "orange+", "green+", "magenta+", "yellow+", "red+", "blue+", "gray")
MARKERS = ("●", "■", "▲", "◆", "x", "+", "*", "o")
MARKS_PER_CURVE = 8
# plotext colour names -> Rich styles (the legend line is drawn by Rich)
_RICH = {
    "cyan+": "bright_cyan",
    "orange+": "dark_orange",
    "green+": "bright_green",
    "magenta+": "bright_magenta",
    "yellow+": "bright_yellow",
    "red+": "bright_red",
    "blue+": "bright_blue",
    "gray": "grey62",
}


@dataclass
class Curve:
    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    color: str | None = None
    xscale: float = 1.0  # x values are multiplied by this (e.g. 1 / steps per epoch)
    yside: str = "left"  # "right": its own y axis (a figure on another scale)
    xoffset: float = 0.0  # plotted x = (x - xoffset) * xscale (the time axis' start)
    marker: str | None = None  # legend_outside: the curve's mark (default MARKERS[i])


class MetricPlot(PlotextPlot):
    """Curves against a shared x axis, an optional vertical marker, an empty-state text."""

    DEFAULT_CSS = """
    MetricPlot { height: 1fr; width: 1fr; min-height: 6; }
    """

    def __init__(
        self,
        title: str = "",
        *,
        xlabel: str = "",
        empty: str = "no data yet",
        ylim: tuple[float, float] | None = None,
        name: str | None = None,
        id: str | None = None,  # noqa: A002 - Textual's API
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.plot_title = title
        self.xlabel = xlabel
        self.empty = empty
        self.fixed_ylim = ylim
        self.curves: list[Curve] = []
        self.marker_x: float | None = None
        self.legend_outside = False  # the legend line and distinct marks (see the module)
        self.ylog = False  # a log y axis (every value must be > 0)
        self._version = 0
        self._cache_key: tuple | None = None
        self._cache: RenderResult | None = None
        self._last_draw = 0.0
        self._pending = False
        self.draws = 0  # plots actually built (tests and the benchmark read these)
        self.points_drawn = 0

    # ------------------------------------------------------------------ data

    def set_curves(self, curves: list[Curve], marker_x: float | None = None) -> None:
        """Replace the curves (and the marker) and schedule a redraw."""
        self.curves = curves
        self.marker_x = marker_x
        self.invalidate()

    def set_marker(self, x: float | None) -> None:
        if x != self.marker_x:
            self.marker_x = x
            self.invalidate()

    def invalidate(self) -> None:
        """Mark the data changed; redraw now, or once the throttle interval has passed."""
        self._version += 1
        wait = self._last_draw + 1.0 / MAX_FPS - time.monotonic()
        if wait <= 0:
            self._last_draw = time.monotonic()
            self.refresh()
        elif not self._pending:
            self._pending = True
            self.set_timer(wait, self._flush)

    def _flush(self) -> None:
        self._pending = False
        self._last_draw = time.monotonic()
        self.refresh()

    def set_empty(self, text: str) -> None:
        """Change what the plot says while it has no data."""
        if text != self.empty:
            self.empty = text
            self._version += 1
            self.refresh()

    @property
    def has_data(self) -> bool:
        return any(len(c.xs) for c in self.curves)

    # ------------------------------------------------------------------ render

    def render(self) -> RenderResult:
        key = (self._version, self.size, self.app.theme, self.theme)
        if key == self._cache_key and self._cache is not None:
            return self._cache
        if not self.has_data or self.size.width < 10 or self.size.height < 4:
            out: RenderResult = Text(
                f"{self.plot_title}\n{self.empty}" if self.plot_title else self.empty,
                style="dim",
                justify="center",
            )
        else:
            out = self._build()
        self._cache_key, self._cache = key, out
        return out

    def set_style(self, legend_outside: bool, ylog: bool) -> None:
        """The look (see the module) and the y scale; redraws when either changed."""
        if (legend_outside, ylog) != (self.legend_outside, self.ylog):
            self.legend_outside, self.ylog = legend_outside, ylog
            self.invalidate()

    def _build(self) -> RenderResult:
        if self.legend_outside:
            return self._build_outside()
        plt = self.plt
        plt.clear_figure()
        budget = max(50, min(MAX_POINTS, 2 * self.size.width))
        drawn = 0
        for i, c in enumerate(self.curves):
            if not len(c.xs):
                continue
            xs, ys = downsample(c.xs, c.ys, budget)
            if c.xscale != 1.0:
                xs = [x * c.xscale for x in xs]
            drawn += len(xs)
            color = c.color or PALETTE[i % len(PALETTE)]
            side = c.yside if c.yside in ("left", "right") else "left"
            if len(xs) == 1:
                plt.scatter(
                    list(xs), list(ys), label=c.label, color=color, marker="dot", yside=side
                )
            else:
                plt.plot(
                    list(xs), list(ys), label=c.label, color=color, marker="braille", yside=side
                )
        if self.marker_x is not None:
            plt.vertical_line(self.marker_x, color="white")
        if self.fixed_ylim is not None:
            plt.ylim(*self.fixed_ylim)
        if self.plot_title:
            plt.title(self.plot_title)
        if self.xlabel:
            plt.xlabel(self.xlabel)
        self.draws += 1
        self.points_drawn = drawn
        return super().render()

    def legend(self) -> Text:
        """The title and one entry per curve (its mark in its colour): one line when it
        fits the width, else the title above the entries (each line cut to the width)."""
        entries = Text()
        for i, c in enumerate(self.curves):
            if not len(c.xs):
                continue
            color = c.color or PALETTE[i % len(PALETTE)]
            mark = c.marker or MARKERS[i % len(MARKERS)]
            if entries:
                entries.append("  ")
            entries.append(mark, style=_RICH.get(color, color))
            entries.append(" " + c.label + (" (right)" if c.yside == "right" else ""))
        width = max(self.size.width, 1)
        title = Text(self.plot_title, style="bold")
        if title.cell_len + 2 + entries.cell_len <= width or not entries:
            return title + Text("  ") + entries if entries else title
        title.truncate(width, overflow="ellipsis")
        entries.truncate(width, overflow="ellipsis")
        return title + Text("\n") + entries

    def _build_outside(self) -> RenderResult:
        """The legend on a line above the plot, a mark per curve, optionally log y."""
        plt = self.plt
        plt.clear_figure()
        legend = self.legend()
        w, h = self.size.width, max(self.size.height - len(legend.plain.splitlines()), 2)
        budget = max(50, min(MAX_POINTS, 2 * w))
        drawn = 0
        sides = set()
        for i, c in enumerate(self.curves):
            if not len(c.xs):
                continue
            xs, ys = downsample(c.xs, c.ys, budget)
            if c.xscale != 1.0 or c.xoffset:
                xs = [(x - c.xoffset) * c.xscale for x in xs]
            xs, ys = list(xs), list(ys)
            drawn += len(xs)
            color = c.color or PALETTE[i % len(PALETTE)]
            mark = c.marker or MARKERS[i % len(MARKERS)]
            side = c.yside if c.yside in ("left", "right") else "left"
            sides.add(side)
            if len(xs) > 1:
                plt.plot(xs, ys, color=color, marker="braille", yside=side)
            n = len(xs)
            every = max(1, -(-n // MARKS_PER_CURVE))
            picks = list(range(n - 1, -1, -every))[::-1]  # the last point always marked
            plt.scatter(
                [xs[k] for k in picks], [ys[k] for k in picks], color=color, marker=mark, yside=side
            )
        if self.ylog:
            for side in sides:
                plt.yscale("log", yside=side)
        if self.marker_x is not None:
            plt.vertical_line(self.marker_x, color="white")
        if self.fixed_ylim is not None and not self.ylog:
            plt.ylim(*self.fixed_ylim)
        if self.xlabel:
            plt.xlabel(self.xlabel)
        plt.plotsize(w, h)
        plt._set_size(w, h)  # noqa: SLF001 - as PlotextPlot.render does (its issue 5)
        plt.theme(self._get_plotext_theme_name(self.app.theme))
        self.draws += 1
        self.points_drawn = drawn
        return Group(legend, Text.from_ansi(plt.build()))
