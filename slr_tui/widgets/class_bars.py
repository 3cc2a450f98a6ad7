"""Per-class accuracy as horizontal bars: one line per class, worst first, the bar as
long as the class's accuracy (eighth-block characters), red below 50%, yellow below 80%,
green above, then the accuracy and the class's support. Sits in a scrolling container
(hundreds of classes); redrawn for the width it is given."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text

from slr_tui.widgets._width import WidthDrawn
from slr_tui.widgets.heatmap import abbreviate

MAX_LABEL = 16
MAX_BAR = 80
EIGHTHS = " ▏▎▍▌▋▊▉█"


def bar(value: float, width: int) -> str:
    """``value`` (0..1) as a bar ``width`` characters long at most, to an eighth."""
    eighths = int(round(min(max(value, 0.0), 1.0) * width * 8))
    full, rest = divmod(eighths, 8)
    return "█" * full + (EIGHTHS[rest] if rest else "")


def _color(a: float) -> str:
    return "red" if a < 0.5 else "yellow" if a < 0.8 else "green"


def sorted_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The classes with samples, worst accuracy first (ties: more support, then name)."""
    have = [r for r in rows if r.get("support") and r.get("accuracy") is not None]
    return sorted(have, key=lambda r: (r["accuracy"], -r["support"], str(r["class"])))


def bars_text(rows: Sequence[dict[str, Any]], split: str, width: int) -> Text:
    shown = sorted_rows(rows)
    if not shown:
        return Text(f"{split}: no per-class figures", style="dim")
    label_w = min(MAX_LABEL, max(len(str(r["class"])) for r in shown))
    sup_w = len(str(max(int(r["support"]) for r in shown)))
    tail = 1 + 5 + 4 + sup_w  # " 0.667  n=12"
    bar_w = min(MAX_BAR, max(4, width - label_w - 1 - tail - 1))  # long bars read badly
    out = Text()
    out.append(f"{split}: per-class accuracy, worst first", style="bold")
    out.append(f" · {len(shown)} classes · n: support\n", style="dim")
    for r in shown:
        a = float(r["accuracy"])
        out.append(f"{abbreviate(r['class'], label_w):<{label_w}} ")
        b = bar(a, bar_w)
        out.append(b, style=_color(a))
        out.append(" " * (bar_w - len(b)), style="on grey15")
        out.append(f" {a:5.3f}")
        out.append(f"  n={int(r['support']):<{sup_w}}\n", style="dim")
    out.rstrip()
    return out


class ClassBars(WidthDrawn):
    """The bar chart of one split's per-class rows (``engine.evaluate.read_per_class``)."""

    DEFAULT_CSS = """
    ClassBars {
        height: auto;
        padding: 0 1;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.rows: list[dict[str, Any]] = []
        self.split = ""

    def set_rows(self, rows: Sequence[dict[str, Any]], split: str) -> None:
        self.rows = list(rows)
        self.split = split
        self.redraw()

    def _draw(self) -> None:
        self.update(bars_text(self.rows, self.split, self._drawn_for))
