"""The new-run screen's data-check panel: the report of the engine's ``check`` job for the
chosen dataset (the screen runs the job through :mod:`slr_tui.launch`: the data sources
import torch, the TUI does not)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from slr_tui.tables import fmt

SPLITS = ("train", "val", "test")
COLS = ("listed", "present", "missing", "unreadable")
SHOWN_CLASSES = 6


# what one sample of a source is, when the screen does not say (the report names its source)
SOURCE_NOUNS = {
    "wlasl": "videos",
    "video_folder": "videos",
    "features": "arrays",
    "sequences_csv": "recordings",
    "landmarks": "recordings",
    "synthetic": "recordings",
}


def report_view(report: dict[str, Any], noun: str | None = None) -> Group:
    """Counts per split, then classes, training samples per class, imbalance. ``noun``:
    what a sample is (``videos``, ``arrays``, ``recordings``, ``windows``); default from
    the report's ``source``, else ``samples``."""
    noun = noun or SOURCE_NOUNS.get(str(report.get("source")), "samples")
    one = {"videos": "video", "arrays": "array", "windows": "window"}.get(
        noun, noun.removesuffix("s")
    )
    t = Table(box=None, padding=(0, 1), pad_edge=False, header_style="bold")
    t.add_column("split")
    for col in COLS:
        t.add_column(col, justify="right")
    for split in SPLITS:
        row = report.get(split) or {}
        cells = [Text(fmt(row.get(k))) for k in COLS]
        for cell, k in zip(cells[2:], COLS[2:], strict=True):
            if row.get(k):
                cell.stylize("yellow")
        t.add_row(split, *cells)
    lines: list[Text] = []
    if isinstance(report.get("streams"), list):  # translation: sentences and streams
        return Group(t, *_translation_lines(report))
    c = report.get("classes") or {}
    line = Text(f"classes {fmt(report.get('num_classes'))}")
    if c:
        ratio = c.get("imbalance_ratio")
        line.append(f" · imbalance {'-' if ratio is None else f'{ratio:.1f}:1'} (max/min)")
    lines.append(line)
    if c:
        lines.append(
            Text(
                f"train {noun} per class: min {fmt(c.get('per_class_min'))}, "
                f"mean {fmt(c.get('per_class_mean'), 1)}, max {fmt(c.get('per_class_max'))}"
            )
        )
        empty = c.get("without_train") or []
        if empty:
            shown = ", ".join(empty[:SHOWN_CLASSES]) + (
                " ..." if len(empty) > SHOWN_CLASSES else ""
            )
            lines.append(Text(f"no training {one} ({len(empty)}): {shown}", style="yellow"))
        else:
            lines.append(Text(f"every class has training {noun}", style="green"))
    return Group(t, *lines)


def _translation_lines(report: dict[str, Any]) -> list[Text]:
    """A translation root: the sentence count, and per split what samples lack (a sentence,
    a stream), in yellow when anything does."""
    lines = [
        Text(f"sentences {fmt(report.get('sentences'))} · streams {', '.join(report['streams'])}")
    ]
    for split in SPLITS:
        row = report.get(split) or {}
        lacking = row.get("missing_streams") if isinstance(row.get("missing_streams"), dict) else {}
        parts = [f"{n} without {s}" for s, n in lacking.items() if n]
        if row.get("no_text"):
            parts.insert(0, f"{row['no_text']} without a sentence")
        if parts:
            lines.append(Text(f"{split}: {', '.join(parts)}", style="yellow"))
    if len(lines) == 1:
        lines.append(Text("every sample has its sentence and streams", style="green"))
    return lines


class DataCheckPanel(Static):
    """Shows "checking...", a report, or the one-line error of the check."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("", **kwargs)
        self.state = "idle"  # idle, checking, ok, error
        self.report: dict[str, Any] | None = None
        self.error: str | None = None
        self.noun: str | None = None

    def show_checking(self, root: str) -> None:
        self.state, self.report, self.error = "checking", None, None
        self.update(Text(f"checking {root}...", style="cyan"))

    def show_result(
        self, report: dict[str, Any] | None, error: str | None, noun: str | None = None
    ) -> None:
        """``noun``: what one training sample is (``videos`` only for video sources)."""
        self.report, self.error, self.noun = report, error, noun
        if error or report is None:
            self.state = "error"
            self.update(Text(error or "no report", style="bold red"))
        else:
            self.state = "ok"
            self.update(report_view(report, noun))
