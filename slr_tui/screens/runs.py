"""Runs (home): every run under the runs dir, refreshed live; sort, filter, mark, open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static
from textual.worker import Worker, WorkerState

from engine import runs
from slr_tui import tables
from slr_tui.screens._common import on_top, run_row
from slr_tui.widgets.runs_table import RunsTable


class RunsScreen(Screen):
    """Home. Polls the runs dir every ``app.runs_poll_s`` seconds while it is on top."""

    BINDINGS = [
        Binding("n", "new_run", "new run"),
        Binding("c", "compare", "compare"),
        Binding("t", "thresholds", "thresholds"),
        Binding("w", "study", "study", show=False),  # a trial's study, live (screens/sweep.py)
        Binding("s", "stop", "stop"),
        Binding("slash", "filter", "filter"),
        Binding("comma", "settings", "settings"),
        Binding("q", "quit", "quit"),
        Binding("escape", "clear_filter", "clear filter", show=False),
    ]

    class Scanned(Message):
        def __init__(self, root: Path, rows: list[dict[str, Any]], error: str | None) -> None:
            super().__init__()
            self.root, self.rows, self.error = root, rows, error

    class Stopped(Message):
        def __init__(self, text: str, ok: bool) -> None:
            super().__init__()
            self.text, self.ok = text, ok

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """--read-only: the keys that would start, stop or write something are off (and
        left out of the footer)."""
        if action in ("new_run", "stop") and getattr(self.app, "read_only", False):
            return False
        return True

    def __init__(self) -> None:
        super().__init__()
        self.scans = 0
        self._typing = False  # a filter typed on the table is on its way to the input
        self._timer = None
        self._polling = False
        self._index: runs.RunIndex | None = None  # used by the scan worker only
        self._rows: dict[str, tuple[runs.RunInfo, dict[str, Any]]] = {}  # worker only
        self._texts: dict[str, str] = {}  # what the title and the empty line show

    def compose(self) -> ComposeResult:
        yield Static("", id="runs-title", classes="title-bar")
        yield Input(
            placeholder="filter: type (or press /) to match id, status, preset, dataset",
            id="filter",
            compact=True,
            # selecting on focus would make the next typed key replace what was typed on
            # the table ("fin" became "in")
            select_on_focus=False,
        )
        yield RunsTable(id="runs-table")
        yield Static("", id="runs-empty")
        yield Footer(compact=True)

    @property
    def table(self) -> RunsTable:
        return self.query_one(RunsTable)

    def on_mount(self) -> None:
        self.table.focus()
        self._update_title(None, [])
        self.poll()

    def on_resize(self, event: events.Resize) -> None:
        self.table.set_wide(event.size.width >= 110)

    # ------------------------------------------------------------------ polling

    def on_screen_resume(self) -> None:
        if self.scans:  # back on top: refresh now, then on the usual beat
            self.poll()

    def on_screen_suspend(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def poll(self) -> None:
        """Scan the runs dir now, unless a scan is under way (scans never overlap)."""
        if self._polling:
            return
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self._polling = True
        self._scan()

    @work(thread=True, exclusive=True, exit_on_error=False, group="runs-poll")
    def _scan(self) -> None:
        """Off the UI thread: re-read only the run.json files that changed (RunIndex) and
        rebuild only their rows (and those of active runs: status and duration move)."""
        root = self.app.runs_root
        self.app.reap()
        now = self.app.clock()
        try:
            if self._index is None or self._index.root != Path(root):
                self._index, self._rows = runs.RunIndex(root), {}
            rows = self._rows_of(self._index.scan(), now)
            err = None
        except OSError as exc:
            rows, err = [], f"cannot read {root}: {exc.strerror or exc}"
        self.post_message(self.Scanned(root, rows, err))

    def _rows_of(self, infos: list[runs.RunInfo], now: float) -> list[dict[str, Any]]:
        """A row per run: the one of the scan before (the same dict) while its run.json is
        unchanged and it is not active; eval/ is looked for again until it is there."""
        old, new, out = self._rows, {}, []
        for info in infos:
            key = info.path.name
            hit = old.get(key)
            if hit is not None and hit[0] is info and info.raw_status not in runs.ACTIVE:
                row = hit[1]
                if not row.get("has_eval") and not row.get("problem"):
                    if (info.path / runs.EVAL_DIR / "predictions.npz").is_file():
                        row = dict(row, has_eval=True)
            else:
                row = self._row(info, now)
            new[key] = (info, row)
            out.append(row)
        self._rows = new
        return out

    @staticmethod
    def _row(info: runs.RunInfo, now: float) -> dict[str, Any]:
        """One run's row; a run that cannot be read is a row marked ``unreadable`` whose
        dataset cell says why (never a scan that fails for the whole folder)."""
        try:
            row = run_row(info, now)
            # the time it was active (a resumed run does not count the gap it sat stopped)
            row["duration"] = runs.active_seconds(info.meta, now, row["status"])
            # the chosen checkpoint's figure (best.pt), by the monitor that chose it: not
            # the best val accuracy of any epoch (a run that monitors F1 picks another one)
            row["best"], row["best_figure"] = tables.best_of(info)
            if info.translation:
                row["translation"] = True
        except Exception as exc:  # noqa: BLE001 - one bad run is one bad row
            info = runs.RunInfo(path=info.path, meta={}, problem=f"cannot read: {exc}")
            row = {
                "key": info.path.name,
                "id": info.path.name,
                "path": str(info.path),
                "status": "unreadable",
                "preset": "",
                "dataset": "",
                "epoch": 0,
                "max_epochs": None,
                "best": None,
                "started": None,
                "duration": None,
                "active": False,
                "sweep": None,
                "has_eval": False,
            }
        if info.problem:
            row["problem"] = info.problem
            why = info.problem
            row["dataset"] = why if len(why) <= 48 else why[:47] + "…"
        return row

    def on_runs_screen_scanned(self, msg: Scanned) -> None:
        self._polling = False
        self.scans += 1
        if msg.root != self.app.runs_root:  # settings changed the runs dir meanwhile
            self.poll()
            return
        self.table.set_runs(msg.rows)
        self._update_title(msg.error, msg.rows)
        if self._timer is not None:
            self._timer.stop()
        if on_top(self):
            self._timer = self.set_timer(self.app.runs_poll_s, self._tick)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A scan that failed (the app notifies) must not stop the polling."""
        if event.worker.group == "runs-poll" and event.state == WorkerState.ERROR:
            self._polling = False
            if on_top(self):
                self._timer = self.set_timer(self.app.runs_poll_s, self._tick)

    def _tick(self) -> None:
        self._timer = None
        if on_top(self):
            self.poll()

    def _update_title(self, error: str | None, rows: list[dict[str, Any]]) -> None:
        active = sum(1 for r in rows if r["active"])
        root = self.app.runs_root
        parts = [f"[b]slr-tui[/b]  runs in {root}", f"{len(rows)} runs"]
        if active:
            parts.append(f"[cyan]{active} running[/]")
        bad = sum(1 for r in rows if r.get("problem"))
        if bad:
            parts.append(f"[magenta]{bad} unreadable[/]")
        if self.table.marked:
            parts.append(f"{len(self.table.marked)} marked")
        # a Static's update lays the screen out again (and repaints the table): only
        # when the text changes
        self._set_text("#runs-title", "  ·  ".join(parts))
        if error:
            self._set_text("#runs-empty", f"[red]{error}[/]")
        elif not rows and self.scans:
            self._set_text("#runs-empty", f"no runs under {root}: press [b]n[/b] to start one")
        else:
            self._set_text("#runs-empty", "")
        show = bool(error or (not rows and self.scans))
        empty = self.query_one("#runs-empty", Static)
        if empty.display != show:
            empty.display = show

    def _set_text(self, selector: str, text: str) -> None:
        if self._texts.get(selector) != text:
            self._texts[selector] = text
            self.query_one(selector, Static).update(text)

    # ------------------------------------------------------------------ filter

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        words = event.value.lower().split()
        if not words:
            self.table.set_filter(None)
            return

        def keep(r: dict[str, Any]) -> bool:
            hay = " ".join(str(r.get(k) or "") for k in ("id", "status", "preset", "dataset"))
            hay = hay.lower()
            return all(w in hay for w in words)

        self.table.set_filter(keep)

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.table.focus()

    def on_key(self, event: events.Key) -> None:
        flt = self.query_one("#filter", Input)
        if self.focused is flt and event.key in ("escape", "down", "tab"):
            event.stop()
            event.prevent_default()
            self.table.focus()
            return
        # typing on the table starts a filter (keys bound to actions keep their meaning).
        # Focus moves to the input only once this event is handled, so keys typed quickly
        # after the first can still reach the table: while a typed filter is starting,
        # every printable key goes into it, bound or not (else "fin" became "fi").
        if self.focused is self.table and event.is_printable and event.character:
            if self._typing or event.key not in self.active_bindings:
                event.stop()
                event.prevent_default()
                self._typing = True
                flt.focus()
                flt.insert_text_at_cursor(event.character)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        if event.widget is not self.table:  # the typed filter has reached its input
            self._typing = False

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_clear_filter(self) -> None:
        flt = self.query_one("#filter", Input)
        if flt.value:
            flt.value = ""
        self.table.focus()

    # ------------------------------------------------------------------ actions

    def _current(self) -> dict[str, Any] | None:
        row = self.table.current_row()
        if row is None:
            self.notify("no run selected", severity="warning")
        return row

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        row = self.table.current_row()
        if row is not None:
            from slr_tui.screens.live import LiveRunScreen

            self.app.push_screen(LiveRunScreen(Path(row["path"])))

    def action_new_run(self) -> None:
        if self.app.read_only:
            self.notify("read-only mode: no new runs", severity="warning")
            return
        from slr_tui.screens.new_run import NewRunScreen

        self.app.push_screen(NewRunScreen())

    def action_compare(self) -> None:
        from slr_tui.screens.compare import CompareScreen

        marked = self.table.marked_in_order()
        if len(marked) >= 2:
            self.app.push_screen(CompareScreen([Path(r["path"]) for r in marked]))
            return
        row = self.table.current_row()
        if row is not None and row.get("sweep"):
            members = [r for r in self.table.rows_data if r.get("sweep") == row["sweep"]]
            if len(members) >= 2:
                members.sort(key=lambda r: r["key"])
                self.app.push_screen(
                    CompareScreen([Path(r["path"]) for r in members], title=row["sweep"])
                )
                return
        self.notify("mark two or more runs with space, then press c", severity="warning")

    def action_study(self) -> None:
        """The cursor run's Optuna study (it is a trial of one): its trials, live."""
        from slr_tui.screens.sweep import SweepScreen

        row = self._current()
        if row is None:
            return
        meta = runs.read_meta(Path(row["path"]))
        if not meta.get("study"):
            self.notify(
                f"run {row['id']} is not a trial of a study (slr sweep --search optuna)",
                severity="warning",
            )
            return
        self.app.push_screen(
            SweepScreen(meta["study"], meta.get("study_storage"), Path(self.app.runs_root))
        )

    def action_thresholds(self) -> None:
        row = self._current()
        if row is None:
            return
        if row.get("translation"):
            from slr_tui.screens.thresholds import NOT_FOR_TRANSLATION

            self.notify(NOT_FOR_TRANSLATION.format(row["id"]), severity="warning")
            return
        if not row.get("has_eval"):
            self.notify(
                f"{row['id']} has no predictions yet (eval/ is written when a run finishes)",
                severity="warning",
            )
            return
        from slr_tui.screens.thresholds import ThresholdsScreen

        self.app.push_screen(ThresholdsScreen(Path(row["path"])))

    def action_stop(self) -> None:
        if self.app.read_only:
            self.notify("read-only mode: stopping is off", severity="warning")
            return
        row = self._current()
        if row is None:
            return
        if not row.get("active"):
            self.notify(f"{row['id']} is not running ({row['status']})", severity="warning")
            return
        from slr_tui.screens.confirm import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                self.stop_run(Path(row["path"]))

        self.app.push_screen(
            ConfirmScreen(
                f"Stop run {row['id']}?",
                "It finishes the current step, writes last.pt and marks itself stopped "
                f"(resume later with: slr run --resume {row['id']}).",
                yes="Stop",
                no="Keep running",
            ),
            answered,
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="stop")
    def stop_run(self, path: Path) -> None:
        from slr_tui import launch

        try:
            text = launch.stop_run(runs.load_run(path))
            ok = True
        except runs.RunError as exc:
            text, ok = str(exc), False
        self.post_message(self.Stopped(text, ok))

    def on_runs_screen_stopped(self, msg: Stopped) -> None:
        self.notify(msg.text, severity="information" if msg.ok else "error")
        self.poll()

    def action_settings(self) -> None:
        from slr_tui.screens.settings import SettingsScreen

        self.app.push_screen(SettingsScreen())

    def action_quit(self) -> None:
        self.app.exit()
