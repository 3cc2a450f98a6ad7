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


def _tags(v: object) -> Text:
    return v if isinstance(v, Text) else Text(str(v or ""))


def _lr(v: object) -> str:
    """A learning rate, short: ``3e-4``, ``1.5e-4``, ``0.01``."""
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return "-"
    if v == 0 or abs(v) >= 1e-2:
        return f"{v:g}"
    mant, exp = f"{v:.2e}".split("e")
    return f"{mant.rstrip('0').rstrip('.')}e{int(exp)}"


def _batch(v: object) -> str:
    return str(v) if isinstance(v, int) and not isinstance(v, bool) else "-"


def tags_cell(tags: list[str], note: str, archived: bool) -> Text:
    """The tags column: ``archived`` (dim) for an archived run, the tags, ``✎`` when the
    run has a note."""
    t = Text(no_wrap=True, overflow="ellipsis")
    if archived:
        t.append("archived", style="dim")
    if tags:
        t.append((" " if archived else "") + " ".join(tags), style="cyan")
    if note:
        t.append(" ✎" if len(t) else "✎", style="yellow")
    return t


@functools.cache
def _columns(
    wide: bool,
    labelled: bool = False,
    best_label: str = "best acc",
    tagged: bool = False,
    extra: bool = False,
) -> list[Col]:
    """The columns (built once per layout: the table caches formatted rows by column
    format). ``labelled``: the best cells say what each value is; else the header does.
    ``tagged``: a run has tags, a note or is archived (a tags column after the id);
    ``extra`` (160 columns and more): test accuracy, learning rate and batch size too."""
    cols = [
        Col("mark", " ", _mark, sortable=False, width=1),
        Col("id", "id", _id),  # its width: what the other columns leave (RunsTable._widths)
    ]
    if tagged:
        cols.append(Col("tags_s", "tags", _tags, sort_value=_tags_value))
    cols.append(Col("status", "status", status_text))
    if wide:
        cols.append(Col("preset", "preset"))
    cols += [
        Col("dataset", "dataset"),
        Col("epoch_s", "epoch", right=True, sort_value=_epoch),
        Col("best", best_label, _best, right=True)
        if not labelled
        else Col("best_s", "best", right=True, sort_value=_best_value),
    ]
    if extra:
        cols += [
            Col("test_acc", "test acc", _best, right=True),
            Col("lr", "lr", _lr, right=True),
            Col("batch", "batch", _batch, right=True),
        ]
    if wide:
        cols.append(Col("started", "started", _started))
    cols.append(Col("duration", "duration", format_duration, right=True))
    return cols


def _tags_value(r: dict[str, Any]) -> Any:
    return " ".join(r.get("tags") or ()) or None


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
        self.extra = False  # 160 columns or more: test acc, lr, batch
        self.tagged = False  # a listed run has tags, a note or is archived
        self.labelled = False  # the runs monitor different figures: best cells say which
        self.best_label = "best acc"

    def set_wide(self, wide: bool, extra: bool = False) -> None:
        if (wide, extra) != (self.wide, self.extra):
            self.wide, self.extra = wide, extra
            self.fit_columns()

    def on_resize(self) -> None:
        self._rebuild()  # the id column takes what the others leave of the new width

    def fit_columns(self) -> None:
        self.set_columns(
            _columns(self.wide, self.labelled, self.best_label, self.tagged, self.extra)
        )

    def _widths(self, widths: list[list[int]]) -> list[int]:
        """Give the id column what the other columns leave (ids are long: the start time and
        the preset; the preset and start time have their own columns when there is room)."""
        out = super()._widths(widths)
        i = next((j for j, c in enumerate(self.cols) if c.key == "id"), None)
        if i is None:
            return out
        least = 16
        t = next((j for j, c in enumerate(self.cols) if c.key == "tags_s"), None)
        if t is not None and not self.wide:  # 80 columns: tags and the id share the room
            out[t] = min(out[t], 8)
            least = 14
        used = 1  # the vertical scrollbar, when it shows, takes most of the slack
        used += sum(w + 2 for j, w in enumerate(out) if j != i)
        avail = self.size.width or 120
        longest = max((w[i] for w in widths), default=2)
        out[i] = max(least, min(longest, avail - used - 2))  # 2: the id column's own padding
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
            if "tags_s" not in r:
                r["tags_s"] = tags_cell(r.get("tags") or [], r.get("note") or "", r.get("archived"))
        tagged = any(r.get("tags") or r.get("note") or r.get("archived") for r in rows)
        self.rows_data = list(rows)
        if (labelled, best_label, tagged) != (self.labelled, self.best_label, self.tagged):
            self.labelled, self.best_label, self.tagged = labelled, best_label, tagged
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
