"""A DataTable of dict rows with named columns, sorting (click a header, or ``o``) and
cheap updates: a row equal to what it was is not formatted again, unchanged cells are left
alone, new rows are added, gone rows removed and a new order is applied in place (no
clear and refill), so a table of a thousand rows refreshed every few seconds costs next
to nothing, does not flicker, and keeps its cursor on the same row (by key) wherever that
row moves."""

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
        # key -> (a copy of the row as last formatted, its cells, their widths)
        self._cache: dict[str, tuple[dict[str, Any], list[Any], list[int]]] = {}
        self._cache_sig: tuple = ()
        self.cell_builds = 0  # rows formatted (tests count them)
        self.full_fills = 0  # clear-and-refill rebuilds (tests count them)

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

    def _formatted(self, key: str, row: dict[str, Any]) -> tuple[list[Any], list[int]]:
        """The row's cells and their widths, from the cache while the row is unchanged."""
        hit = self._cache.get(key)
        if hit is not None and hit[0] == row:
            return hit[1], hit[2]
        cells = self._cells(row)
        widths = [v.cell_len if isinstance(v, Text) else cell_len(str(v)) for v in cells]
        self.cell_builds += 1
        self._cache[key] = (dict(row), cells, widths)
        return cells, widths

    def _widths(self, widths: list[list[int]]) -> list[int]:
        """Column widths from the header (and its sort arrow) and the cells: set
        explicitly rather than left to DataTable's auto width, so they never lag behind."""
        most = [max(col) for col in zip(*widths, strict=True)] if widths else []
        out = []
        for i, c in enumerate(self.cols):
            if c.width is not None:
                out.append(c.width)
                continue
            w = cell_len(c.label) + (2 if c.key == self.sort_col else 0)  # the sort arrow
            out.append(max(w, most[i]) if most else w)
        return out

    def _rebuild(self, force: bool = False) -> None:
        cache_sig = tuple((c.key, c.right, id(c.fmt)) for c in self.cols)
        if cache_sig != self._cache_sig:  # other columns or formats: every row anew
            self._cache, self._cache_sig = {}, cache_sig
        rows = self._ordered()
        keys = [str(r.get(self.row_key)) for r in rows]
        done = [self._formatted(k, r) for k, r in zip(keys, rows, strict=True)]
        cells = [d[0] for d in done]
        widths = self._widths([d[1] for d in done])
        live = set(keys)
        for k in [k for k in self._cache if k not in live]:
            del self._cache[k]
        sig = tuple(
            (c.key, c.label, w, c.key == self.sort_col, self.sort_reverse)
            for c, w in zip(self.cols, widths, strict=True)
        )
        current = self.current_key()
        if sig != self._col_sig or force:
            if sig != self._col_sig:
                self.clear(columns=True)
                for c, w in zip(self.cols, widths, strict=True):
                    self.add_column(self._header(c), key=c.key, width=w)
                self._col_sig = sig
            self._fill(keys, cells, current)
            return
        if keys == self._shown_keys:  # same rows, same order: update the cells that changed
            self._update(keys, cells)
            return
        gone = set(self._shown_keys) - live
        if len(gone) > len(keys) // 2 + 8:  # most rows go (a filter): refilling is cheaper
            self._fill(keys, cells, current)
            return
        for k in gone:
            self.remove_row(k)
            self._shown_cells.pop(k, None)
        shown = set(self._shown_keys) - gone
        for k, row in zip(keys, cells, strict=True):
            if k not in shown:
                self.add_row(*row, key=k)
                self._shown_cells[k] = row
        self._update(keys, cells)
        self._reorder(keys, current)

    def _update(self, keys: list[str], cells: list[list[Any]]) -> None:
        for k, row in zip(keys, cells, strict=True):
            old = self._shown_cells.get(k)
            if old is row:
                continue
            if old is not None:
                merged = []  # the objects the DataTable holds (_reorder goes by identity)
                for c, v, o in zip(self.cols, row, old, strict=True):
                    if v != o:
                        self.update_cell(k, c.key, v)
                        merged.append(v)
                    else:
                        merged.append(o)
                row = merged
                hit = self._cache.get(k)
                if hit is not None:
                    self._cache[k] = (hit[0], merged, hit[2])
            self._shown_cells[k] = row

    def _reorder(self, keys: list[str], keep: str | None) -> None:
        """Put the rows in the order of ``keys`` in place (DataTable.sort by the identity of
        the cells each row holds) and the cursor back on row ``keep``."""
        pos = {tuple(map(id, self._shown_cells[k])): i for i, k in enumerate(keys)}
        if len(pos) != len(keys):  # two rows hold the very same cell objects: refill
            self._fill(keys, [self._shown_cells[k] for k in keys], keep)
            return
        self.sort(key=lambda values: pos[tuple(map(id, values))])
        self._shown_keys = list(keys)
        self._keep_cursor(keep)

    def _keep_cursor(self, keep: str | None) -> None:
        if keep is not None and keep in self._shown_cells:
            i = self._shown_keys.index(keep)
            if i != self.cursor_row:
                self.move_cursor(row=i, animate=False)

    def _fill(self, keys: list[str], cells: list[list[Any]], keep: str | None) -> None:
        self.full_fills += 1
        self.clear()
        self._shown_keys, self._shown_cells = [], {}
        for k, row in zip(keys, cells, strict=True):
            self.add_row(*row, key=k)
            self._shown_keys.append(k)
            self._shown_cells[k] = row
        if keep is not None and keep in self._shown_cells:
            self.move_cursor(row=self._shown_keys.index(keep), animate=False)
