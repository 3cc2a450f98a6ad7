"""Sweeps, live (``w`` on the runs screen):

- :class:`SweepScreen`, an Optuna study's trials (a run that is a trial of a study): ranked
  by value, with params, state, duration and run, and Optuna's parameter importances. The
  storage is read in a worker thread every ``poll_s`` seconds (never on the UI thread); the
  storage object is kept between reads, so a journal is read on from where it was.
- :class:`GridSweepScreen`, the members of a grid sweep (``slr sweep --grid``: runs tagged
  with ``sweep`` and ``sweep_params``): ranked by the best value of the figure each run
  monitors (:func:`slr_tui.tables.best_of`, the chosen checkpoint's), one column per swept
  key, status, epoch, duration. The runs folder is scanned in a worker thread through one
  :class:`engine.runs.RunIndex` (only changed run.json files are read again).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from engine import runs
from engine.errors import ConfigError
from engine.schema import lower_is_better
from slr_tui import tables
from slr_tui.screens._common import epoch_text, on_top, status_text

STATE_STYLE = {"complete": "green", "pruned": "dark_orange", "running": "cyan", "fail": "red"}


def _duration(s: float | None) -> str:
    if s is None:
        return "-"
    s = int(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _param(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


class SweepScreen(Screen):
    """A study's trials and importances, refreshed while the screen is on top."""

    BINDINGS = [
        Binding("escape", "back", "back"),
        Binding("r", "refresh", "refresh"),
    ]

    class Loaded(Message):
        def __init__(self, summary: dict[str, Any] | None, error: str | None) -> None:
            super().__init__()
            self.summary, self.error = summary, error

    def __init__(
        self, study: str, storage: str | None, runs_root: Path, poll_s: float = 2.0
    ) -> None:
        super().__init__()
        self.study_name = study
        self.storage = storage
        self.runs_root = Path(runs_root)
        self.poll_s = poll_s
        self.loads = 0
        self.summary: dict[str, Any] | None = None
        self.error: str | None = None
        self._loading = False
        self._study: Any = None  # the worker's

    def compose(self) -> ComposeResult:
        yield Static(f"study {self.study_name}: loading...", id="sweep-title", classes="title-bar")
        yield DataTable(id="sweep-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="sweep-importances")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("#", "trial", "state", "value", "params", "duration", "run")
        table.focus()
        self.poll()
        self.set_interval(self.poll_s, self._tick)

    def _tick(self) -> None:
        if on_top(self):
            self.poll()

    def poll(self) -> None:
        if self._loading:
            return
        self._loading = True
        self._load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="sweep-poll")
    def _load(self) -> None:
        from slr_tui import search as se

        try:
            if self._study is None:
                store = se.open_storage(self.storage, self.runs_root, self.study_name, create=False)
                self._study = se.load_study(self.study_name, store)
            summary, error = se.study_summary(self._study), None
        except ConfigError as exc:
            summary, error = None, str(exc)
        except Exception as exc:  # noqa: BLE001 - a storage that went away: one line
            summary, error = (
                None,
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            )
        self.post_message(self.Loaded(summary, error))

    def on_sweep_screen_loaded(self, msg: Loaded) -> None:
        self._loading = False
        self.loads += 1
        self.summary, self.error = msg.summary, msg.error
        title = self.query_one("#sweep-title", Static)
        if msg.summary is None:
            title.update(f"study {self.study_name}: {msg.error}")
            return
        s = msg.summary
        counts = ", ".join(f"{n} {k}" for k, n in sorted(s["counts"].items())) or "no trials"
        title.update(
            f"study {self.study_name}: {s['direction']} {s['metric'] or 'value'} ({counts})"
        )
        table = self.query_one(DataTable)
        table.clear()
        for i, r in enumerate(s["trials"], 1):
            value = tables.fmt(r["value"]) if r["value"] is not None else "-"
            if r["value"] is None and r.get("last_reported") is not None:
                value = f"({tables.fmt(r['last_reported'])})"
            state = r["state"]
            table.add_row(
                str(i),
                str(r["number"]),
                Text(state, style=STATE_STYLE.get(state, "dim")),
                Text(value),
                Text("  ".join(f"{k}={_param(v)}" for k, v in sorted(r["params"].items()))),
                _duration(r.get("duration_s")),
                Text(r.get("run_id") or "-"),
                key=str(r["number"]),
            )
        imp = s["importances"]
        text = (
            "importances: "
            + "  ".join(f"{k} {v:.3f}" for k, v in sorted(imp.items(), key=lambda kv: -kv[1]))
            if imp
            else s["importances_note"] or ""
        )
        self.query_one("#sweep-importances", Static).update(text)

    def action_refresh(self) -> None:
        self.poll()

    def action_back(self) -> None:
        self.app.pop_screen()


# --------------------------------------------------------------------------- grid sweeps


def _mode(info: runs.RunInfo, figure: str) -> str:
    mode = info.meta.get("monitor_mode")
    if mode in ("min", "max"):
        return mode
    return "min" if lower_is_better(figure) else "max"


def rank_members(members: list[runs.RunInfo]) -> list[runs.RunInfo]:
    """A sweep's runs, best first by the best value of the figure each monitors (higher
    or lower, as the run says); runs without a value yet last, then by id."""

    def key(r: runs.RunInfo) -> tuple[int, float, str]:
        value, figure = tables.best_of(r)
        if value is None:
            return (1, 0.0, r.id)
        return (0, value if _mode(r, figure) == "min" else -value, r.id)

    return sorted(members, key=key)


def swept_keys(members: list[runs.RunInfo]) -> list[str]:
    """The swept keys in the order the sweep lists them (``optim.lr``, ...)."""
    keys: list[str] = []
    for r in members:
        params = r.meta.get("sweep_params")
        for k in params if isinstance(params, dict) else ():
            if k not in keys:
                keys.append(k)
    return keys


def key_labels(keys: list[str]) -> list[str]:
    """Column headers: the last part of each key (``lr``), the whole key where two would
    read alike (``model.dropout``, ``data.dropout``)."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return [k if last.count(s) > 1 else s for k, s in zip(keys, last, strict=True)]


def grid_rows(members: list[runs.RunInfo], now: float) -> list[dict[str, Any]]:
    """One plain row per member, ranked (computed in the worker thread)."""
    keys = swept_keys(members)
    out = []
    for i, r in enumerate(rank_members(members), 1):
        value, figure = tables.best_of(r)
        params = r.meta.get("sweep_params") if isinstance(r.meta.get("sweep_params"), dict) else {}
        status = r.status
        out.append(
            {
                "rank": i if value is not None else None,
                "key": r.path.name,
                "id": r.id,
                "path": str(r.path),
                "params": {k: params.get(k) for k in keys},
                "status": status,
                "epoch": epoch_text(r.epoch, r.max_epochs),
                "best": value,
                "figure": figure,
                "best_epoch": r.meta.get("best_epoch"),
                "duration": runs.active_seconds(r.meta, now, status),
            }
        )
    return out


class GridSweepScreen(Screen):
    """A grid sweep's members, ranked live while the screen is on top."""

    BINDINGS = [
        Binding("escape", "back", "back", tooltip="back to the runs list"),
        # priority: the table's own enter (select the row) would take it otherwise
        Binding("enter", "open", "open run", priority=True, tooltip="the run's live screen"),
        Binding("c", "compare", "compare all", tooltip="compare every member of the sweep"),
        Binding("r", "refresh", "refresh", tooltip="read the runs folder again now"),
    ]

    class Loaded(Message):
        def __init__(self, rows: list[dict[str, Any]], keys: list[str], error: str | None):
            super().__init__()
            self.rows, self.keys, self.error = rows, keys, error

    def __init__(self, sweep_id: str, runs_root: Path, poll_s: float = 2.0) -> None:
        super().__init__()
        self.sweep_id = sweep_id
        self.runs_root = Path(runs_root)
        self.poll_s = poll_s
        self.loads = 0
        self.rows: list[dict[str, Any]] = []
        self.keys: list[str] | None = None  # the swept keys the table's columns are of
        self.error: str | None = None
        self._loading = False
        self._index = runs.RunIndex(self.runs_root)  # the worker's

    def compose(self) -> ComposeResult:
        yield Static(f"sweep {self.sweep_id}: loading...", id="gsweep-title", classes="title-bar")
        yield DataTable(id="gsweep-table", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        self.poll()
        self.set_interval(self.poll_s, self._tick)

    def _tick(self) -> None:
        if on_top(self):
            self.poll()

    def poll(self) -> None:
        if self._loading:
            return
        self._loading = True
        self._load(self.app.clock())

    @work(thread=True, exclusive=True, exit_on_error=False, group="gsweep-poll")
    def _load(self, now: float) -> None:
        try:
            members = [r for r in self._index.scan() if r.meta.get("sweep") == self.sweep_id]
            rows, keys, error = grid_rows(members, now), swept_keys(members), None
        except OSError as exc:
            rows, keys, error = [], [], runs.os_error_line(exc, self.runs_root)
        self.post_message(self.Loaded(rows, keys, error))

    def on_grid_sweep_screen_loaded(self, msg: Loaded) -> None:
        self._loading = False
        self.loads += 1
        self.rows, self.error = msg.rows, msg.error
        title = self.query_one("#gsweep-title", Static)
        if msg.error:
            title.update(Text(f"sweep {self.sweep_id}: {msg.error}", style="red"))
            return
        if not msg.rows:
            title.update(f"sweep {self.sweep_id}: no runs of this sweep under {self.runs_root}")
        else:
            title.update(self._title(msg.rows))
        table = self.query_one(DataTable)
        if msg.keys != self.keys:
            self.keys = msg.keys
            table.clear(columns=True)
            figures = {r["figure"] for r in msg.rows}
            best = (
                f"best {tables.figure_label(next(iter(figures)))}" if len(figures) == 1 else "best"
            )
            table.add_column("#", key="rank")
            for k, label in zip(msg.keys, key_labels(msg.keys), strict=True):
                table.add_column(label, key=f"p:{k}")
            for col in ("status", "epoch", best, "best ep", "duration", "run"):
                table.add_column(col, key=col)
        at = table.cursor_row
        current = self.rows_key_at(table, at)
        table.clear()
        labelled = len({r["figure"] for r in msg.rows}) > 1
        for r in msg.rows:
            best = tables.best_text(r["best"], r["figure"], labelled)
            first = r["rank"] == 1
            table.add_row(
                Text(str(r["rank"] or "-"), style="bold green" if first else ""),
                *(Text("-" if v is None else str(v)) for v in r["params"].values()),
                status_text(r["status"]),
                Text(r["epoch"], justify="right"),
                Text(best, style="bold green" if first else "", justify="right"),
                Text(tables.fmt(r["best_epoch"]), justify="right"),
                Text(runs.format_duration(r["duration"]), justify="right"),
                Text(r["id"]),
                key=r["key"],
            )
        keys = [r["key"] for r in msg.rows]
        if current in keys:  # the cursor stays on its run while the ranking changes
            table.move_cursor(row=keys.index(current), animate=False)

    @staticmethod
    def rows_key_at(table: DataTable, row: int) -> str | None:
        if not table.row_count or row >= table.row_count:
            return None
        return table.coordinate_to_cell_key((row, 0)).row_key.value

    def _title(self, rows: list[dict[str, Any]]) -> Text:
        counts: dict[str, int] = {}
        for r in rows:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        figures = {r["figure"] for r in rows}
        what = (
            f"ranked by best {tables.figure_label(next(iter(figures)))}"
            if len(figures) == 1
            else "ranked by each run's monitored figure"
        )
        text = Text(f"sweep {self.sweep_id}", style="bold")
        text.append(f": {len(rows)} runs, {what} (")
        text.append(", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
        text.append(")")
        return text

    def current(self) -> dict[str, Any] | None:
        table = self.query_one(DataTable)
        key = self.rows_key_at(table, table.cursor_row)
        return next((r for r in self.rows if r["key"] == key), None)

    def action_open(self) -> None:
        row = self.current()
        if row is not None:
            from slr_tui.screens.live import LiveRunScreen

            self.app.push_screen(LiveRunScreen(Path(row["path"])))

    def action_compare(self) -> None:
        if len(self.rows) < 2:
            self.notify("a sweep of one run: nothing to compare", severity="warning")
            return
        from slr_tui.screens.compare import CompareScreen

        paths = [Path(r["path"]) for r in sorted(self.rows, key=lambda r: r["key"])]
        self.app.push_screen(CompareScreen(paths, title=self.sweep_id))

    def action_refresh(self) -> None:
        self.poll()

    def action_back(self) -> None:
        self.app.pop_screen()
