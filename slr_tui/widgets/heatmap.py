"""The confusion matrix as a coloured character heatmap: one row per true class, one
3-character cell per predicted class holding the row-normalised share in percent, the
diagonal shaded green and the mistakes red (brighter: a larger share). Rows are labelled
by number and (abbreviated) class name; columns by the same numbers. When the classes do
not fit the width, the most confused block alone is shown
(:func:`slr_tui.report.confusion.most_confused_classes`), and the title says so."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rich.style import Style
from rich.text import Text

from slr_tui.report.confusion import BLOCK, block_mass, most_confused_classes, row_normalised
from slr_tui.widgets._width import WidthDrawn

CELL = 3
MAX_LABEL = 12


def abbreviate(name: str, width: int) -> str:
    """``name`` cut to ``width`` characters (the last one an ellipsis when cut)."""
    name = str(name)
    return name if len(name) <= width else name[: max(width - 1, 0)] + "…"


def _shade(v: float, diagonal: bool) -> Style:
    """A cell's colours: green for the diagonal, red for mistakes, brighter with ``v``."""
    lo = (28, 32, 36)
    hi = (46, 204, 64) if diagonal else (255, 65, 54)
    t = 0.25 + 0.75 * min(max(v, 0.0), 1.0)
    r, g, b = (int(lo[k] + (hi[k] - lo[k]) * t) for k in range(3))
    fg = "black" if t > 0.6 else "white"
    return Style(bgcolor=f"rgb({r},{g},{b})", color=fg, bold=diagonal)


def classes_that_fit(width: int, label_width: int) -> int:
    """How many class columns ``width`` characters hold beside the row labels."""
    return max(1, min(BLOCK, (width - (4 + label_width + 1)) // CELL))


def heatmap_text(cm: np.ndarray, names: Sequence[str], split: str, width: int) -> Text:
    """The heatmap for ``width`` columns (see the module docstring)."""
    cm = np.asarray(cm)
    c = len(names)
    if c == 0 or cm.shape != (c, c):
        return Text("no confusion matrix", style="dim")
    label_w = min(MAX_LABEL, max(len(str(n)) for n in names))
    fit = classes_that_fit(width, label_w)
    idx = list(range(c)) if c <= fit else most_confused_classes(cm, fit)
    norm = row_normalised(cm)
    out = Text()
    if len(idx) < c:
        inside, total = block_mass(cm, idx)
        out.append(f"{split}: the {len(idx)} most confused of {c} classes", style="bold")
        out.append(f" ({inside} of {total} mistakes) · % of the true class\n", style="dim")
    else:
        out.append(f"{split}: confusion matrix, {c} classes", style="bold")
        out.append(" · % of the true class\n", style="dim")
    pad = " " * (4 + label_w + 1)
    out.append(pad + "".join(f"{k + 1:>{CELL}}" for k in range(len(idx))) + "\n", style="dim")
    for k, i in enumerate(idx):
        out.append(f"{k + 1:>3} ", style="dim")
        out.append(f"{abbreviate(names[i], label_w):<{label_w}} ")
        for j in idx:
            v = float(norm[i, j])
            pct = int(round(v * 100))
            if pct == 0 and cm[i, j] == 0:
                out.append(f"{'·':>{CELL}}", style="dim")
            else:
                out.append(f"{pct:>{CELL}}", style=_shade(v, i == j))
        out.append("\n")
    out.append("rows: true class · columns: predicted (numbered as the rows)", style="dim")
    return out


class ConfusionHeatmap(WidthDrawn):
    """The heatmap of one split; redrawn for the width it is given."""

    DEFAULT_CSS = """
    ConfusionHeatmap {
        height: auto;
        padding: 0 1;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.cm: np.ndarray | None = None
        self.names: list[str] = []
        self.split = ""
        self.shown: list[int] = []  # the class indices on screen

    def set_matrix(self, cm: np.ndarray | None, names: Sequence[str], split: str) -> None:
        self.cm = None if cm is None else np.asarray(cm)
        self.names = [str(n) for n in names]
        self.split = split
        self.redraw()

    def _draw(self) -> None:
        width = self._drawn_for
        if self.cm is None:
            self.shown = []
            self.update(Text(f"{self.split}: no predictions to tabulate", style="dim"))
            return
        label_w = min(MAX_LABEL, max((len(n) for n in self.names), default=1))
        fit = classes_that_fit(width, label_w)
        c = len(self.names)
        self.shown = list(range(c)) if c <= fit else most_confused_classes(self.cm, fit)
        self.update(heatmap_text(self.cm, self.names, self.split, width))
