"""Runs (home): every run under the runs dir, refreshed live; sort, filter (text, tags,
fields and figures: slr_tui/filters.py), mark, open; tag and note a run, move it to the trash
or the archive, resume it, copy the command line that trains it again. ``?`` lists the
keys."""

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
from slr_tui import filters, tables
from slr_tui.screens._common import on_top, run_row
from slr_tui.widgets.runs_table import RunsTable

#: a running run's duration on the runs screen moves in steps of this many seconds
ACTIVE_TICK_S = 5


class RunsScreen(Screen):
    """Home. Polls the runs dir every ``app.runs_poll_s`` seconds while it is on top."""

    BINDINGS = [
        Binding("n", "new_run", "new run"),
        Binding("c", "compare", "compare"),
        Binding("t", "thresholds", "thresholds"),
        # the sweep (slr sweep --grid) or Optuna study the cursor run belongs to, live
        Binding("w", "study", "sweep/study view", show=False),
        Binding("s", "stop", "stop"),
        Binding("slash", "filter", "filter"),
        Binding("comma", "settings", "settings"),
        Binding("q", "quit", "quit"),
        Binding("escape", "clear_filter", "clear filter", show=False),
        # run management (hidden: the footer stays as it was; `?` lists them)
        Binding("e", "edit_tags", "tags and note", show=False),
        Binding("d", "delete", "move to trash", show=False),
        Binding("a", "archive", "archive / unarchive", show=False),
        Binding("A", "toggle_archived", "show archived runs", show=False),
        Binding("r", "resume", "resume run", show=False),
        Binding("y", "copy_command", "copy command line", show=False),
    ]
    WRITES = ("new_run", "stop", "edit_tags", "delete", "archive", "resume")  # off read-only

    DEFAULT_CSS = """
    #filter-error { height: 1; margin: 0 1; color: $warning; display: none; }
    """

    class Scanned(Message):
        def __init__(self, root: Path, rows: list[dict[str, Any]], error: str | None) -> None:
            super().__init__()
            self.root, self.rows, self.error = root, rows, error

    class Stopped(Message):
        def __init__(self, text: str, ok: bool) -> None:
            super().__init__()
            self.text, self.ok = text, ok

    class Resumed(Message):
        def __init__(self, path: Path, proc: Any, error: str | None) -> None:
            super().__init__()
            self.path, self.proc, self.error = path, proc, error

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """--read-only: the keys that would start, stop or write something are off (and
        left out of the footer)."""
        if action in self.WRITES and getattr(self.app, "read_only", False):
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
        self._configs: dict[str, tuple[int, dict[str, Any]]] = {}  # worker only: by mtime
        self.show_archived = False  # A: archived runs listed too
        self.filter: filters.Filter | None = None  # the filter applied (the last good one)

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
        yield Static("", id="filter-error")
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
        self.table.set_wide(event.size.width >= 110, extra=event.size.width >= 160)

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
            self._index.archived = self.wants_archived
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

    @property
    def wants_archived(self) -> bool:
        return self.show_archived or bool(self.filter and self.filter.wants_archived)

    def _config(self, info: runs.RunInfo) -> dict[str, Any]:
        """config.json (lr, batch size, model), read again only when it changes."""
        p = info.path / runs.CONFIG_JSON
        try:
            mtime = p.stat().st_mtime_ns
        except OSError:
            return {}
        hit = self._configs.get(str(p))
        if hit is None or hit[0] != mtime:
            hit = (mtime, info.config())
            self._configs[str(p)] = hit
        return hit[1]

    def _row(self, info: runs.RunInfo, now: float) -> dict[str, Any]:
        """One run's row; a run that cannot be read is a row marked ``unreadable`` whose
        dataset cell says why (never a scan that fails for the whole folder). Besides what
        the table shows, it holds what the filter reads (filters.run_fields)."""
        archived = info.archived
        try:
            row = run_row(info, now)
            # the time it was active (a resumed run does not count the gap it sat stopped)
            row["duration"] = runs.active_seconds(info.meta, now, row["status"])
            if row["duration"] is not None and row["status"] in runs.ACTIVE:
                # ticks in steps of ACTIVE_TICK_S: a changed cell repaints every visible row
                # of the table (Textual's DataTable), which, every 2 s scan, was 1.6-2 % of a
                # core on a 1000-run list with one run going; the live screen has the second
                row["duration"] -= row["duration"] % ACTIVE_TICK_S
            # the chosen checkpoint's figure (best.pt), by the monitor that chose it: not
            # the best val accuracy of any epoch (a run that monitors F1 picks another one)
            row["best"], row["best_figure"] = tables.best_of(info)
            if info.translation:
                row["translation"] = True
            notes = info.notes if info.notes is not None else runs.read_notes(info.path)
            more = filters.run_fields(
                info.meta,
                status=row["status"],
                config=self._config(info),
                tags=notes["tags"],
                note=notes["note"],
                duration=row["duration"],
            )
            row.update((k, more[k]) for k in filters.EXTRA_KEYS)
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
                "tags": [],
                "metrics": {},
            }
        if archived:
            row["archived"] = True
            row["key"] = f"{runs.ARCHIVE_DIR}/{info.path.name}"  # never a listed run's key
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
        if self.show_archived:
            parts.append("archived shown (A)")
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
        """Plain words match as they always did; ``tag:``, ``preset:wlasl*``,
        ``val_acc>0.5``... (slr_tui/filters.py). A term that cannot be read is one line
        under the box, and the last filter that could be read stays applied."""
        try:
            flt = filters.parse(event.value)
        except filters.FilterError as exc:
            self._filter_line(str(exc))
            return
        archived_before = self.wants_archived
        self.filter = flt
        missing = flt.missing_figures(self.table.rows_data) if flt else []
        self._filter_line(f"no listed run has the figure {', '.join(missing)}" if missing else "")
        self.table.set_filter(flt)
        if self.wants_archived != archived_before:
            self.poll()

    def _filter_line(self, text: str) -> None:
        line = self.query_one("#filter-error", Static)
        if self._texts.get("#filter-error") != text:
            self._texts["#filter-error"] = text
            line.update(text)
        if line.display != bool(text):
            line.display = bool(text)

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
        """The cursor run's Optuna study (it is a trial of one): its trials, live; or its
        grid sweep (slr sweep --grid): every member ranked, live."""
        from slr_tui.screens.sweep import GridSweepScreen, SweepScreen

        row = self._current()
        if row is None:
            return
        meta = runs.read_meta(Path(row["path"]))
        if not meta.get("study") and meta.get("sweep"):
            self.app.push_screen(GridSweepScreen(meta["sweep"], Path(self.app.runs_root)))
            return
        if not meta.get("study"):
            self.notify(
                f"run {row['id']} is not part of a sweep or a study (slr sweep)",
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

    # ------------------------------------------------------------------ run management

    def _writable(self, what: str) -> bool:
        if self.app.read_only:
            self.notify(f"read-only mode: {what} is off", severity="warning")
            return False
        return True

    def action_edit_tags(self) -> None:
        """e: the cursor run's tags and note (RUN/notes.json), in a small box."""
        if not self._writable("editing tags"):
            return
        row = self._current()
        if row is None:
            return
        from slr_tui.screens.tags import TagsScreen

        path = Path(row["path"])

        def answered(result: tuple[list[str], str] | None) -> None:
            if result is None:
                return
            tags, note = result
            try:
                runs.update_notes(path, tags=tags, note=note)
            except (runs.RunError, OSError) as exc:
                text = runs.os_error_line(exc) if isinstance(exc, OSError) else str(exc)
                self.notify(text, severity="error")
                return
            self.notify(f"{row['id']}: " + (" ".join(tags) if tags else "no tags"))
            self.poll()

        notes = runs.read_notes(path)
        self.app.push_screen(TagsScreen(row["id"], notes["tags"], notes["note"]), answered)

    def _refuse_active(self, row: dict[str, Any], what: str) -> bool:
        if row.get("active"):
            self.notify(
                f"{row['id']} is {row['status']}: stop it first (s) to {what} it",
                severity="warning",
            )
            return True
        return False

    def action_delete(self) -> None:
        """d: move the cursor run to RUNS/.trash/ (after a yes); `slr restore` undoes it."""
        if not self._writable("deleting"):
            return
        row = self._current()
        if row is None or self._refuse_active(row, "delete"):
            return
        from slr_tui.screens.confirm import ConfirmScreen

        root = Path(self.app.runs_root)

        def answered(yes: bool | None) -> None:
            if yes:
                self._move(row, runs.TRASH_DIR)

        self.app.push_screen(
            ConfirmScreen(
                f"Move run {row['id']} to the trash?",
                f"It goes to {root / runs.TRASH_DIR / Path(row['path']).name}; nothing is "
                f"deleted (bring it back with: slr restore {Path(row['path']).name}).",
                yes="Move to trash",
                no="Keep",
            ),
            answered,
        )

    def action_archive(self) -> None:
        """a: archive the cursor run (RUNS/archive/, out of the list), or bring an archived
        one back."""
        if not self._writable("archiving"):
            return
        row = self._current()
        if row is None:
            return
        if row.get("archived"):
            self._move(row, None)
            return
        if self._refuse_active(row, "archive"):
            return
        from slr_tui.screens.confirm import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                self._move(row, runs.ARCHIVE_DIR)

        self.app.push_screen(
            ConfirmScreen(
                f"Archive run {row['id']}?",
                f"It moves to {Path(self.app.runs_root) / runs.ARCHIVE_DIR} and leaves the "
                "list (A shows archived runs; a on one brings it back).",
                yes="Archive",
                no="Keep",
            ),
            answered,
        )

    def _move(self, row: dict[str, Any], to: str | None) -> None:
        """Move a run to the trash or the archive (``to``), or back (None)."""
        root = Path(self.app.runs_root)
        try:
            info = runs.load_run(Path(row["path"]))
            if to is None:
                runs.restore_run(info, root)
                text = f"{row['id']} is back in {root}"
            else:
                text = f"moved {row['id']} to {runs.move_run(info, root, to).parent}"
        except runs.RunError as exc:
            self.notify(str(exc), severity="error")
            return
        except OSError as exc:
            self.notify(runs.os_error_line(exc), severity="error")
            return
        self.table.marked.discard(row["key"])
        self.notify(text)
        self.poll()

    def action_toggle_archived(self) -> None:
        """A: list archived runs too (marked ``archived``), or not."""
        self.show_archived = not self.show_archived
        self.notify("archived runs shown" if self.show_archived else "archived runs hidden")
        self.poll()

    def action_resume(self) -> None:
        """r: continue a stopped, pruned, failed or lost run from its last.pt (the checks of
        `slr run --resume`), then watch it."""
        if not self._writable("resuming"):
            return
        row = self._current()
        if row is None:
            return
        self.resume(Path(row["path"]))

    @work(thread=True, exclusive=True, exit_on_error=False, group="resume")
    def resume(self, path: Path) -> None:
        from slr_tui import launch

        try:
            launch.check_resumable(runs.load_run(path))
            handle = launch.resume_run(path)
        except (runs.RunError, OSError) as exc:
            text = runs.os_error_line(exc) if isinstance(exc, OSError) else str(exc)
            self.post_message(self.Resumed(path, None, text))
            return
        self.post_message(self.Resumed(path, handle.proc, None))

    def on_runs_screen_resumed(self, msg: Resumed) -> None:
        if msg.error:
            self.notify(msg.error, severity="warning")
            return
        self.app.track(msg.proc)
        self.notify(f"resumed {msg.path.name}")
        self.poll()
        from slr_tui.screens.live import LiveRunScreen

        self.app.push_screen(LiveRunScreen(msg.path))

    def command_line(self, row: dict[str, Any]) -> str:
        """The command line that trains the run's config again (`slr run --config ...`)."""
        from slr_tui import settings as settings_mod

        default = settings_mod.resolve_runs_dir(None, self.app.settings)
        return filters.rerun_command(Path(row["path"]), self.app.runs_root, default)

    def action_copy_command(self) -> None:
        """y: show the cursor run's command line and copy it (the terminal's clipboard)."""
        row = self._current()
        if row is None:
            return
        cmd = self.command_line(row)
        self.app.copy_to_clipboard(cmd)
        self.notify(cmd, title="copied to the clipboard", timeout=8)

    def action_settings(self) -> None:
        from slr_tui.screens.settings import SettingsScreen

        self.app.push_screen(SettingsScreen())

    def action_quit(self) -> None:
        self.app.exit()
