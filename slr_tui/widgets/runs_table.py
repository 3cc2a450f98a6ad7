"""The runs list: one row per run folder, status in colour, marks, sort, filter."""

from __future__ import annotations

from typing import Any

from textual.binding import Binding

from engine.runs import format_duration
from slr_tui.screens._common import epoch_text, fmt, short_when, status_text
from slr_tui.widgets.sortable_table import Col, SortableTable


def _columns(wide: bool) -> list[Col]:
    cols = [
        Col("mark", " ", lambda v: "●" if v else " ", sortable=False, width=1),
        Col("id", "id"),
        Col("status", "status", status_text),
    ]
    if wide:
        cols.append(Col("preset", "preset"))
    cols += [
        Col("dataset", "dataset"),
        Col(
            "epoch_s",
            "epoch",
            right=True,
            sort_value=lambda r: r.get("epoch"),
        ),
        Col("best", "best val acc" if wide else "best acc", lambda v: fmt(v), right=True),
    ]
    if wide:
        cols.append(Col("started", "started", lambda v: short_when(v)))
    cols.append(Col("duration", "duration", format_duration, right=True))
    return cols


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

    def set_wide(self, wide: bool) -> None:
        if wide != self.wide:
            self.wide = wide
            self.set_columns(_columns(wide))

    def set_runs(self, rows: list[dict[str, Any]]) -> None:
        keys = {r["key"] for r in rows}
        self.marked &= keys
        for r in rows:
            r["mark"] = r["key"] in self.marked
            r["epoch_s"] = epoch_text(r.get("epoch"), r.get("max_epochs"))
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
