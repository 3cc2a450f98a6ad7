"""An Optuna study's trials, live (``w`` on a run that is a trial of a study): ranked by
value, with params, state, duration and run, and Optuna's parameter importances. The
storage is read in a worker thread every ``poll_s`` seconds (never on the UI thread); the
storage object is kept between reads, so a journal is read on from where it was."""

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

from engine.errors import ConfigError
from slr_tui import tables
from slr_tui.screens._common import on_top

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
