"""The runs list: one row per run folder, status in colour, marks, sort, filter. With a
translation run in the list, the "best" column says what each value is (``12.34 BLEU-4``,
``5.6497 loss``, ``0.9500 acc``)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.binding import Binding

from engine.runs import format_duration
from slr_tui.screens._common import epoch_text, fmt, short_when, status_text
from slr_tui.tables import best_text
from slr_tui.widgets.sortable_table import Col, SortableTable


def _columns(wide: bool, id_width: int | None = None, labelled: bool = False) -> list[Col]:
    cols = [
        Col("mark", " ", lambda v: "●" if v else " ", sortable=False, width=1),
        Col("id", "id", lambda v: Text(str(v), no_wrap=True, overflow="ellipsis"), width=id_width),
        Col("status", "status", status_text),
    ]
    if wide:
        cols.append(Col("preset", "preset"))
    cols += [
        Col("dataset", "dataset"),
        Col("epoch_s", "epoch", right=True, sort_value=lambda r: r.get("epoch")),
        Col("best", "best acc", lambda v: fmt(v), right=True)
        if not labelled
        else Col("best_s", "best", right=True, sort_value=lambda r: r.get("best")),
    ]
    if wide:
        cols.append(Col("started", "started", lambda v: short_when(v, wide=False)))
    cols.append(Col("duration", "duration", format_duration, right=True))
    return cols


def _plain(v: object) -> str:
    return v.plain if isinstance(v, Text) else str(v)


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
        self.labelled = False  # a translation run is listed: best values carry their figure

    def set_wide(self, wide: bool) -> None:
        if wide != self.wide:
            self.wide = wide
            self.fit_columns()

    def on_resize(self) -> None:
        self.fit_columns()

    def fit_columns(self) -> None:
        """Give the id column what the other columns leave (ids are long: the start time and
        the preset; the preset and start time have their own columns when there is room)."""
        cols = _columns(self.wide, labelled=self.labelled)
        longest = max([len(str(r.get("id", ""))) for r in self.rows_data] or [2])
        used = 1  # the vertical scrollbar, when it shows, takes most of the slack
        for c in cols:
            if c.key == "id":
                continue
            if c.width is not None:
                used += c.width + 2
                continue
            w = len(c.label) + (2 if c.key == self.sort_col else 0)  # as SortableTable does
            for r in self.rows_data:
                w = max(w, len(_plain(c.fmt(r.get(c.key)))))
            used += w + 2
        avail = self.size.width or 120
        id_w = max(16, min(longest, avail - used - 2))  # 2: the id column's own padding
        self.set_columns(_columns(self.wide, id_w, self.labelled))

    def set_runs(self, rows: list[dict[str, Any]]) -> None:
        keys = {r["key"] for r in rows}
        self.marked &= keys
        self.labelled = any(r.get("translation") for r in rows)
        for r in rows:
            r["mark"] = r["key"] in self.marked
            r["epoch_s"] = epoch_text(r.get("epoch"), r.get("max_epochs"))
            if self.labelled:
                r["best_s"] = best_text(r.get("best"), r.get("best_figure"), True)
        self.rows_data = list(rows)
        self.fit_columns()
        self.set_rows(rows)

    def action_toggle_mark(self) -> None:
        key = self.current_key()
        if key is None:
            return
        self.marked ^= {key}
        for r in self.rows_data:
            r["mark"] = r["key"] in self.marked
        self._rebuild()
        if self.cursor_row < self.row_count - 1:
            self.move_cursor(row=self.cursor_row + 1, animate=False)

    def marked_in_order(self) -> list[dict[str, Any]]:
        """Marked rows in the order shown."""
        by_key = {r["key"]: r for r in self.rows_data}
        return [by_key[k] for k in self._shown_keys if k in self.marked and k in by_key]
