"""The runs list: one row per run folder, status in colour, marks, sort, filter. "best" is
the chosen checkpoint's monitored figure (run.json ``best_metric``, by ``monitor``): when
every run monitors the same figure the header names it (``best acc``, ``best F1``); when
they differ, or a translation run is listed, each value says what it is (``12.34
BLEU-4``, ``5.6497 loss``, ``0.9500 acc``)."""

from __future__ import annotations

import functools
from typing import Any

from rich.text import Text
from textual.binding import Binding

from engine.runs import format_duration
from slr_tui.screens._common import epoch_text, fmt, short_when, status_text
from slr_tui.tables import figure_digits, figure_label
from slr_tui.widgets.sortable_table import Col, SortableTable


def _mark(v: object) -> str:
    return "●" if v else " "


def _id(v: object) -> Text:
    return Text(str(v), no_wrap=True, overflow="ellipsis")


def _best(v: object) -> str:
    return fmt(v)


def _started(v: float | None) -> str:
    return short_when(v, wide=False)


@functools.cache
def _columns(wide: bool, labelled: bool = False, best_label: str = "best acc") -> list[Col]:
    """The columns (built once per layout: the table caches formatted rows by column
    format). ``labelled``: the best cells say what each value is; else the header does."""
    cols = [
        Col("mark", " ", _mark, sortable=False, width=1),
        Col("id", "id", _id),  # its width: what the other columns leave (RunsTable._widths)
        Col("status", "status", status_text),
    ]
    if wide:
        cols.append(Col("preset", "preset"))
    cols += [
        Col("dataset", "dataset"),
        Col("epoch_s", "epoch", right=True, sort_value=_epoch),
        Col("best", best_label, _best, right=True)
        if not labelled
        else Col("best_s", "best", right=True, sort_value=_best_value),
    ]
    if wide:
        cols.append(Col("started", "started", _started))
    cols.append(Col("duration", "duration", format_duration, right=True))
    return cols


def _epoch(r: dict[str, Any]) -> Any:
    return r.get("epoch")


def _best_value(r: dict[str, Any]) -> Any:
    return r.get("best")


def best_cell(value: float | None, figure: str | None) -> str:
    """A labelled best cell: the number and what it is (``12.34 BLEU-4``, ``0.8100 F1``)."""
    if value is None:
        return "-"
    figure = figure or "val_acc"
    return f"{fmt(value, figure_digits(figure))} {figure_label(figure)}"


class RunsTable(SortableTable):
    """Marks (``space``) live in ``marked``; ``enter`` opens (RowSelected)."""

    BINDINGS = [
        Binding("enter", "select_cursor", "open"),
        Binding("space", "toggle_mark", "mark"),
        Binding("o", "cycle_sort", "sort"),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(_columns(True), row_key="key", sort_by="started", reverse=True, **kwargs)
        self.marked: set[str] = set()
        self.wide = True
        self.labelled = False  # the runs monitor different figures: best cells say which
        self.best_label = "best acc"

    def set_wide(self, wide: bool) -> None:
        if wide != self.wide:
            self.wide = wide
            self.fit_columns()

    def on_resize(self) -> None:
        self._rebuild()  # the id column takes what the others leave of the new width

    def fit_columns(self) -> None:
        self.set_columns(_columns(self.wide, self.labelled, self.best_label))

    def _widths(self, widths: list[list[int]]) -> list[int]:
        """Give the id column what the other columns leave (ids are long: the start time and
        the preset; the preset and start time have their own columns when there is room)."""
        out = super()._widths(widths)
        i = next((j for j, c in enumerate(self.cols) if c.key == "id"), None)
        if i is None:
            return out
        used = 1  # the vertical scrollbar, when it shows, takes most of the slack
        used += sum(w + 2 for j, w in enumerate(out) if j != i)
        avail = self.size.width or 120
        longest = max((w[i] for w in widths), default=2)
        out[i] = max(16, min(longest, avail - used - 2))  # 2: the id column's own padding
        return out

    def set_runs(self, rows: list[dict[str, Any]]) -> None:
        """The runs now (plain dicts: a row equal to the one shown before is not formatted
        or drawn again; the cursor stays on its run wherever the sort moves it)."""
        same = len(rows) == len(self.rows_data) and all(
            a is b for a, b in zip(rows, self.rows_data, strict=True)
        )
        if same and self._col_sig:  # the very rows of the scan before: nothing to do
            return
        keys = {r["key"] for r in rows}
        self.marked &= keys
        figures = {r.get("best_figure") or "val_acc" for r in rows}
        labelled = len(figures) > 1 or any(r.get("translation") for r in rows)
        only = next(iter(figures)) if len(figures) == 1 else "val_acc"
        best_label = "best " + figure_label(only)
        marked = self.marked
        for r in rows:
            r["mark"] = r["key"] in marked
            if "epoch_s" not in r:
                r["epoch_s"] = epoch_text(r.get("epoch"), r.get("max_epochs"))
            if labelled:
                r["best_s"] = best_cell(r.get("best"), r.get("best_figure"))
        self.rows_data = list(rows)
        if (labelled, best_label) != (self.labelled, self.best_label):
            self.labelled, self.best_label = labelled, best_label
            self.fit_columns()  # rebuilds
        else:
            self._rebuild()

    def action_toggle_mark(self) -> None:
        key = self.current_key()
        if key is None:
            return
        self.marked ^= {key}
        for r in self.rows_data:
            if r["key"] == key:
                r["mark"] = key in self.marked
        self._rebuild()
        i = self._shown_keys.index(key) if key in self._shown_keys else self.cursor_row
        if i < self.row_count - 1:
            self.move_cursor(row=i + 1, animate=False)

    def marked_in_order(self) -> list[dict[str, Any]]:
        """Marked rows in the order shown."""
        by_key = {r["key"]: r for r in self.rows_data}
        return [by_key[k] for k in self._shown_keys if k in self.marked and k in by_key]
