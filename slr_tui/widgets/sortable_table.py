"""A DataTable of dict rows with named columns, sorting (click a header, or ``o``) and
cheap updates: unchanged cells are left alone, so a table refreshed every few seconds
does not flicker and keeps its cursor on the same row."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable


def _default_fmt(v: Any) -> str | Text:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}"
    return v if isinstance(v, Text) else str(v)


@dataclass
class Col:
    """One column: ``key`` in the row dicts, header ``label``, how to show and sort it."""

    key: str
    label: str
    fmt: Callable[[Any], str | Text] = _default_fmt
    right: bool = False
    sortable: bool = True
    sort_value: Callable[[dict[str, Any]], Any] | None = None
    width: int | None = None


def _sort_key(v: Any) -> tuple:
    """None last, numbers before text, text case-insensitively."""
    if v is None:
        return (2, 0)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (0, v)
    return (1, str(v).lower())


class SortableTable(DataTable):
    """Rows are dicts; ``row_key`` names the field that identifies a row."""

    BINDINGS = [
        Binding("o", "cycle_sort", "sort", show=False),
        Binding("O", "reverse_sort", "reverse", show=False),
    ]

    DEFAULT_CSS = """
    SortableTable { height: 1fr; }
    """

    def __init__(
        self,
        columns: list[Col],
        *,
        row_key: str = "key",
        sort_by: str | None = None,
        reverse: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", True)
        super().__init__(**kwargs)
        self.cols = columns
        self.row_key = row_key
        self.sort_col = sort_by
        self.sort_reverse = reverse
        self.rows_data: list[dict[str, Any]] = []
        self.row_filter: Callable[[dict[str, Any]], bool] | None = None
        self._shown_keys: list[str] = []
        self._shown_cells: dict[str, list[Any]] = {}
        self._col_sig: tuple = ()

    # ------------------------------------------------------------------ public

    def set_columns(self, columns: list[Col]) -> None:
        self.cols = columns
        self._rebuild()

    def set_rows(self, rows: list[dict[str, Any]]) -> None:
        self.rows_data = list(rows)
        self._rebuild()

    def set_filter(self, fn: Callable[[dict[str, Any]], bool] | None) -> None:
        self.row_filter = fn
        self._rebuild()

    def sort_by(self, key: str | None, reverse: bool | None = None) -> None:
        if reverse is None:
            reverse = (not self.sort_reverse) if key == self.sort_col else False
        self.sort_col, self.sort_reverse = key, reverse
        self._rebuild(force=True)

    @property
    def shown_keys(self) -> list[str]:
        return list(self._shown_keys)

    def current_key(self) -> str | None:
        if not self._shown_keys or self.cursor_row < 0:
            return None
        return self._shown_keys[min(self.cursor_row, len(self._shown_keys) - 1)]

    def current_row(self) -> dict[str, Any] | None:
        key = self.current_key()
        for r in self.rows_data:
            if str(r.get(self.row_key)) == key:
                return r
        return None

    def select_key(self, key: str) -> None:
        if key in self._shown_keys:
            self.move_cursor(row=self._shown_keys.index(key), animate=False)

    # ------------------------------------------------------------------ actions

    def action_cycle_sort(self) -> None:
        keys = [c.key for c in self.cols if c.sortable]
        if not keys:
            return
        i = keys.index(self.sort_col) + 1 if self.sort_col in keys else 0
        self.sort_by(keys[i % len(keys)], reverse=False)

    def action_reverse_sort(self) -> None:
        self.sort_by(self.sort_col, reverse=not self.sort_reverse)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        key = str(event.column_key.value)
        col = next((c for c in self.cols if c.key == key), None)
        if col is not None and col.sortable:
            self.sort_by(key)

    # ------------------------------------------------------------------ internals

    def _header(self, c: Col) -> Text:
        label = c.label
        if c.key == self.sort_col:
            label += " ▼" if self.sort_reverse else " ▲"
        return Text(label, justify="right" if c.right else "left")

    def _ordered(self) -> list[dict[str, Any]]:
        rows = [r for r in self.rows_data if self.row_filter is None or self.row_filter(r)]
        if self.sort_col is not None:  # a key that is not shown (narrow layout) sorts too
            col = next((c for c in self.cols if c.key == self.sort_col), None)
            getter = (col.sort_value if col is not None else None) or (
                lambda r, k=self.sort_col: r.get(k)
            )
            rows.sort(key=lambda r: _sort_key(getter(r)), reverse=self.sort_reverse)
            if self.sort_reverse:  # keep None last either way
                rows.sort(key=lambda r: getter(r) is None)
        return rows

    def _cells(self, row: dict[str, Any]) -> list[Any]:
        out = []
        for c in self.cols:
            v = c.fmt(row.get(c.key))
            if c.right and isinstance(v, str):
                v = Text(v, justify="right")
            out.append(v)
        return out

    def _widths(self, cells: list[list[Any]]) -> list[int]:
        """Column widths from the header (and its sort arrow) and the cells: set
        explicitly rather than left to DataTable's auto width, so they never lag behind."""
        out = []
        for i, c in enumerate(self.cols):
            if c.width is not None:
                out.append(c.width)
                continue
            w = cell_len(c.label) + (2 if c.key == self.sort_col else 0)  # the sort arrow
            for row in cells:
                v = row[i]
                w = max(w, v.cell_len if isinstance(v, Text) else cell_len(str(v)))
            out.append(w)
        return out

    def _rebuild(self, force: bool = False) -> None:
        rows = self._ordered()
        keys = [str(r.get(self.row_key)) for r in rows]
        cells = [self._cells(r) for r in rows]
        widths = self._widths(cells)
        sig = tuple(
            (c.key, c.label, w, c.key == self.sort_col, self.sort_reverse)
            for c, w in zip(self.cols, widths, strict=True)
        )
        if sig != self._col_sig:
            current = self.current_key()
            self.clear(columns=True)
            for c, w in zip(self.cols, widths, strict=True):
                self.add_column(self._header(c), key=c.key, width=w)
            self._col_sig = sig
            self._shown_keys, self._shown_cells = [], {}
            self._fill(keys, cells, current)
            return
        if keys != self._shown_keys or force:
            self._fill(keys, cells, self.current_key())
            return
        for k, row in zip(keys, cells, strict=True):  # same rows, same order: update cells
            old = self._shown_cells.get(k)
            if old == row:
                continue
            for c, v, o in zip(self.cols, row, old or [None] * len(row), strict=True):
                if v != o:
                    self.update_cell(k, c.key, v)
            self._shown_cells[k] = row

    def _fill(self, keys: list[str], cells: list[list[Any]], keep: str | None) -> None:
        self.clear()
        self._shown_keys, self._shown_cells = [], {}
        for k, row in zip(keys, cells, strict=True):
            self.add_row(*row, key=k)
            self._shown_keys.append(k)
            self._shown_cells[k] = row
        if keep is not None and keep in self._shown_keys:
            self.move_cursor(row=self._shown_keys.index(keep), animate=False)
