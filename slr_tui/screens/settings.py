"""Settings: named dataset roots, the runs dir and the GPU temperature warning limit, saved
to the YAML file the CLI reads too (``$SLR_CONFIG``, else ``~/.config/slr/config.yaml``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Static

from slr_tui import settings as settings_mod
from slr_tui.widgets.sortable_table import Col, SortableTable

ROOT_COLS = [
    Col("name", "name"),
    Col("path", "path"),
    Col("source", "data source", lambda v: v or "?"),
    Col("exists", "exists", lambda v: Text("yes", style="green") if v else Text("no", style="red")),
]


class SettingsScreen(Screen):
    BINDINGS = [
        Binding("ctrl+s", "save", "save", priority=True),
        Binding("escape", "back", "back (discard)"),
        Binding("delete", "remove_root", "remove root"),
    ]

    class Saved(Message):
        def __init__(self, settings: Any, path: Path | None, error: str | None) -> None:
            super().__init__()
            self.settings, self.path, self.error = settings, path, error

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """--read-only: the keys that would start, stop or write something are off (and
        left out of the footer)."""
        if action in ("save", "remove_root") and getattr(self.app, "read_only", False):
            return False
        return True

    def __init__(self) -> None:
        super().__init__()
        self.roots: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        s = self.app.settings
        self.roots = dict(s.dataset_roots)
        yield Static(f"[b]settings[/b]  {self.app.settings_path}", classes="title-bar")
        with VerticalScroll(id="set-body"):
            with Vertical(id="set-general", classes="panel"):
                with Horizontal(classes="field"):
                    yield Label("runs dir", classes="field-label")
                    yield Input(
                        s.runs_dir or "",
                        placeholder="./runs",
                        id="set-runs-dir",
                        classes="field-input",
                        compact=True,
                    )
                with Horizontal(classes="field"):
                    yield Label("GPU warn °C", classes="field-label")
                    yield Input(
                        str(s.gpu_temp_warn_c),
                        id="set-temp",
                        type="integer",
                        classes="field-input",
                        compact=True,
                    )
                yield Static(
                    "--runs-dir and $SLR_RUNS_DIR win over the runs dir set here.", classes="note"
                )
            with Vertical(id="set-roots", classes="panel"):
                yield SortableTable(ROOT_COLS, row_key="name", sort_by="name", id="roots-table")
                with Horizontal(classes="field"):
                    yield Input(placeholder="name (e.g. wlasl)", id="root-name", compact=True)
                    yield Input(
                        placeholder="folder (e.g. /data/WLASL2000)", id="root-path", compact=True
                    )
                with Horizontal(classes="buttons"):
                    yield Button("add / update", id="root-add", variant="primary", compact=True)
                    yield Button(
                        "remove selected", id="root-remove", variant="warning", compact=True
                    )
                yield Static(
                    "A root named like a preset's data source (wlasl) or dataset (wlasl100) is "
                    "used by that preset: slr run --preset wlasl100-conservative finds it.",
                    classes="note",
                )
            with Horizontal(classes="buttons"):
                yield Button("Save (ctrl+s)", id="save", variant="success", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)
            yield Static("", id="set-error")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#set-general").border_title = "general"
        self.query_one("#set-roots").border_title = "dataset roots"
        self._show_roots()
        self.query_one("#set-runs-dir", Input).focus()

    def _show_roots(self) -> None:
        rows = []
        for name, path in self.roots.items():
            rows.append(
                {
                    "name": name,
                    "path": path,
                    "source": settings_mod.source_of(name, path),
                    "exists": Path(path).expanduser().is_dir(),
                }
            )
        self.query_one("#roots-table", SortableTable).set_rows(rows)

    @on(Button.Pressed, "#root-add")
    def _add_root(self) -> None:
        name = self.query_one("#root-name", Input).value.strip()
        path = self.query_one("#root-path", Input).value.strip()
        if not name or not path:
            self._error("give a name and a folder")
            return
        self.roots[name] = path
        self.query_one("#root-name", Input).value = ""
        self.query_one("#root-path", Input).value = ""
        self._error("")
        self._show_roots()

    @on(SortableTable.RowSelected, "#roots-table")
    def _root_selected(self) -> None:
        row = self.query_one("#roots-table", SortableTable).current_row()
        if row:
            self.query_one("#root-name", Input).value = row["name"]
            self.query_one("#root-path", Input).value = row["path"]

    @on(Button.Pressed, "#root-remove")
    def action_remove_root(self) -> None:
        row = self.query_one("#roots-table", SortableTable).current_row()
        if row and row["name"] in self.roots:
            del self.roots[row["name"]]
            self._show_roots()

    def _error(self, text: str) -> None:
        self.query_one("#set-error", Static).update(Text(text, style="bold red"))

    def current(self) -> settings_mod.Settings:
        """The settings as the form shows them (raises ValueError with a line for people)."""
        temp = self.query_one("#set-temp", Input).value.strip()
        runs_dir = self.query_one("#set-runs-dir", Input).value.strip() or None
        try:
            return settings_mod.Settings(
                runs_dir=runs_dir,
                dataset_roots=dict(self.roots),
                gpu_temp_warn_c=int(temp) if temp else 80,
            )
        except (ValidationError, ValueError) as exc:
            if isinstance(exc, ValidationError):
                e = exc.errors()[0]
                raise ValueError(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}") from None
            raise ValueError(f"GPU temp warn: {exc}") from None

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        if getattr(self.app, "read_only", False):
            self.notify("read-only mode: settings are not saved", severity="warning")
            return
        try:
            new = self.current()
        except ValueError as exc:
            self._error(str(exc))
            return
        self.save(new)

    @work(thread=True, exclusive=True, exit_on_error=False, group="settings-save")
    def save(self, new: settings_mod.Settings) -> None:
        try:
            path = settings_mod.save_settings(new, self.app.settings_path)
            self.post_message(self.Saved(new, path, None))
        except OSError as exc:
            self.post_message(self.Saved(None, None, f"cannot write settings: {exc}"))

    def on_settings_screen_saved(self, msg: Saved) -> None:
        if msg.error:
            self._error(msg.error)
            return
        self.app.apply_settings(msg.settings)
        self.notify(f"settings saved to {msg.path}")
        self.app.pop_screen()

    @on(Button.Pressed, "#cancel")
    def action_back(self) -> None:
        self.app.pop_screen()
