"""Extract landmarks: the engine's ``extract`` job for the new-run screen's dataset.

The start button runs ``python -m engine extract ...`` (:func:`slr_tui.launch.start_extract`)
in its own session, so it survives the app closing. Its job folder is
``OUT.extract-job/`` beside the output folder (``extract`` refuses a non-empty folder that
is no cache yet, so it cannot go inside): the resolved config, the progress rows, the
summary and the log. While the job lives, a worker polls once a second (it reschedules
itself after each poll, so polls never overlap): the finished ``OUT/landmarks/**/*.npz``
files and the new progress rows (the plan's video count, the videos done); then the exit
status and the job's one-line error. ``esc`` goes back and leaves the extraction running;
opening the screen again for the same output folder follows it again.

The "ROI crops" toggle runs ``extract --rois --roi-size N`` instead: face and hand crops
and the pose per frame into an ROI cache (``OUT/rois/**/*.npz``) for the translation
source; switching it moves an untouched default output folder between ``ROOT-landmarks``
and ``ROOT-rois``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Footer, Input, Label, Static

from engine import config as cfgmod
from engine.config import ConfigError
from slr_tui import launch

NEXT_PRESET = "phase1-ctc20"
ROI_SIZE = 112  # engine.data.roi_cache.DEFAULT_ROI_SIZE


def default_out(root: str, rois: bool = False) -> str:
    return str(Path(root).expanduser()).rstrip("/") + ("-rois" if rois else "-landmarks")


def count_npz(out: Path) -> int:
    """Finished videos in the cache, landmarks or ROIs (temp files end in .tmp, so they
    do not count)."""
    folders = [out / "landmarks", out / "rois"]
    return sum(sum(1 for _ in f.rglob("*.npz")) for f in folders if f.is_dir())


def progress_line(row: dict[str, Any]) -> str | None:
    """What one progress row of the job says, for the screen's log line (None: nothing)."""
    kind = row.get("kind")
    if kind == "probe":
        return f"probing videos {row.get('done')}/{row.get('total')}"
    if kind == "plan":
        return (
            f"{row.get('selected')} videos selected ({row.get('skipped')} already in the "
            f"cache, {row.get('todo')} to extract)"
        )
    if kind == "video":
        return (
            f"videos {row.get('done')}/{row.get('total')}: {row.get('frames')} frames, "
            f"{row.get('fps') or 0:.1f} frames/s"
        )
    return None


def _opt_int(text: str, what: str, required: bool = False) -> int | None:
    text = text.strip()
    if not text:
        if required:
            raise ValueError(f"{what}: give a number")
        return None
    try:
        v = int(text)
    except ValueError:
        raise ValueError(f"{what}: '{text}' is not a whole number") from None
    if v < 1:
        raise ValueError(f"{what}: give 1 or more")
    return v


class ExtractScreen(ModalScreen):
    """Output folder, workers, max glosses, samples per gloss, ROI crops and their size;
    start; progress."""

    BINDINGS = [
        Binding("ctrl+s", "start", "start", priority=True),
        Binding("escape", "back", "back (it keeps running)"),
    ]
    POLL_S = 1.0

    class Started(Message):
        def __init__(self, out: str, job: launch.Job | None, error: str | None) -> None:
            super().__init__()
            self.out, self.job, self.error = out, job, error

    class Polled(Message):
        def __init__(
            self, npz: int, last: str, total: int | None, code: int | None, error: str | None
        ) -> None:
            super().__init__()
            self.npz, self.last, self.total, self.code = npz, last, total, code
            self.error = error

    def __init__(self, preset: str, root: str, sets: list[str], owner: Any = None) -> None:
        super().__init__()
        self.preset, self.root, self.sets = preset, root, list(sets)
        # the new-run screen keeps the processes, so reopening follows a running one
        self.procs: dict[str, Any] = owner.extracts if owner is not None else {}
        self.job: launch.Job | None = None
        self.out: str = default_out(root)
        self.npz = 0
        self.total: int | None = None
        self.last_line = ""
        self.returncode: int | None = None
        self.polls = 0

    @property
    def proc(self) -> subprocess.Popen | None:
        """The engine process of the extraction followed here."""
        return self.job.proc if self.job is not None else None

    def compose(self) -> ComposeResult:
        with Vertical(id="ex-dialog", classes="panel"):
            what = Text("dataset ", style="dim")
            what.append(self.root)
            what.append("  preset ", style="dim")
            what.append(self.preset)
            if self.sets:
                what.append("  " + " ".join(self.sets), style="dim")
            yield Static(what, id="ex-what")
            for input_id, label, value, hint in (
                ("ex-out", "output", self.out, ""),
                ("ex-workers", "workers", "2", ""),
                ("ex-max-glosses", "max glosses", "", "all"),
                ("ex-per-gloss", "per gloss", "", "all (samples per gloss)"),
            ):
                with Horizontal(classes="field"):
                    yield Label(label, classes="field-label")
                    yield Input(
                        value, placeholder=hint, id=input_id, classes="field-input", compact=True
                    )
            with Horizontal(classes="field"):
                yield Label("ROI crops", classes="field-label")
                yield Checkbox(
                    "face and hand crops + pose (ROI cache, for translation)",
                    id="ex-rois",
                    compact=True,
                )
            with Horizontal(classes="field"):
                yield Label("ROI size", classes="field-label")
                yield Input(
                    str(ROI_SIZE),
                    placeholder="pixels (16-1024)",
                    id="ex-roi-size",
                    classes="field-input",
                    compact=True,
                )
            with Horizontal(id="ex-actions"):
                yield Button("Start (ctrl+s)", id="ex-start", variant="success", compact=True)
                yield Static("", id="ex-status")
            yield Static("", id="ex-log")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(
            "#ex-dialog"
        ).border_title = "extract landmarks or ROI crops (MediaPipe Holistic)"
        proc = self.procs.get(self.out)
        if proc is not None:  # started here before: follow it
            self._follow_running(proc)
        else:
            self.query_one("#ex-start", Button).focus()

    # ------------------------------------------------------------------ start

    def action_start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.notify("the extraction is still running", severity="warning")
            return
        try:
            out = self.query_one("#ex-out", Input).value.strip()
            if not out:
                raise ValueError("output: give a folder")
            workers = _opt_int(self.query_one("#ex-workers", Input).value, "workers", True)
            glosses = _opt_int(self.query_one("#ex-max-glosses", Input).value, "max glosses")
            per = _opt_int(self.query_one("#ex-per-gloss", Input).value, "per gloss")
            rois = self.query_one("#ex-rois", Checkbox).value
            size = _opt_int(self.query_one("#ex-roi-size", Input).value, "ROI size", rois)
            if rois and size is not None and not 16 <= size <= 1024:
                raise ValueError(f"ROI size: give 16 to 1024 pixels, not {size}")
        except ValueError as exc:
            self._status(Text(str(exc), style="bold red"))
            return
        out = str(Path(out).expanduser())
        running = self.procs.get(out)
        if running is not None and running.poll() is None:
            self.out = out
            self._follow_running(running)
            return
        self.query_one("#ex-start", Button).disabled = True
        self._status(Text("starting...", style="cyan"))
        self.query_one("#ex-log", Static).update("")
        self.start(out, workers or 1, glosses, per, size if rois else None)

    @on(Button.Pressed, "#ex-start")
    def _start_pressed(self) -> None:
        self.action_start()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.focus_next()

    @on(Checkbox.Changed, "#ex-rois")
    def _rois_toggled(self, event: Checkbox.Changed) -> None:
        """An output folder still at its default follows the kind of cache."""
        field = self.query_one("#ex-out", Input)
        if field.value.strip() == default_out(self.root, not event.value):
            field.value = default_out(self.root, event.value)

    @work(thread=True, exclusive=True, exit_on_error=False, group="ex-start")
    def start(
        self,
        out: str,
        workers: int,
        glosses: int | None,
        per: int | None,
        roi_size: int | None = None,
    ) -> None:
        """Start the job; ``roi_size`` given: an ROI cache of crops that size."""
        try:
            cfg = cfgmod.resolve(
                preset=self.preset, sets=self.sets, extra={"data": {"root": self.root}}
            )
            job = launch.start_extract(
                cfg,
                out,
                launch.extract_job_dir(out),
                workers=workers,
                max_glosses=glosses,
                samples_per_gloss=per,
                rois=roi_size is not None,
                roi_size=roi_size,
            )
        except ConfigError as exc:
            self.post_message(self.Started(out, None, str(exc)))
            return
        except OSError as exc:
            self.post_message(self.Started(out, None, f"cannot start the extraction: {exc}"))
            return
        self.post_message(self.Started(out, job, None))

    def on_extract_screen_started(self, msg: Started) -> None:
        if msg.error or msg.job is None:
            self.query_one("#ex-start", Button).disabled = False
            self._status(Text(msg.error or "start failed", style="bold red"))
            return
        self.app.track(msg.job.proc)  # reaped when it ends; it has its own session
        self.procs[msg.out] = msg.job.proc
        self.out = msg.out
        self._follow(msg.job)

    # ------------------------------------------------------------------ progress

    def _follow(self, job: launch.Job) -> None:
        self.job = job
        self.returncode = None
        self.query_one("#ex-start", Button).disabled = True
        self._status(Text("running...", style="cyan"))
        self.poll()

    def _follow_running(self, proc: subprocess.Popen) -> None:
        """An extraction started here before (its process kept by the owner): follow it
        through its job folder, from the first progress row."""
        self._follow(launch.Job("extract", launch.extract_job_dir(self.out), proc))

    @work(thread=True, exclusive=True, exit_on_error=False, group="ex-poll")
    def poll(self) -> None:
        job = self.job
        if job is None:
            return
        code = job.poll()  # read first: the files below are then at least this new
        last, total = self.last_line, self.total
        for row in job.read_new():
            last = progress_line(row) or last
            if row.get("kind") == "plan":
                total = row.get("selected")
        error = job.outcome()[1] if code is not None else None
        self.post_message(self.Polled(count_npz(Path(self.out)), last, total, code, error))

    def on_extract_screen_polled(self, msg: Polled) -> None:
        self.polls += 1
        self.npz, self.last_line, self.returncode = msg.npz, msg.last, msg.code
        if msg.total is not None:
            self.total = msg.total
        done = f"{self.npz}" + (f" of {self.total}" if self.total is not None else "")
        if msg.code is None:
            self._status(Text(f"running: {done} videos extracted", style="cyan"))
            self.query_one("#ex-log", Static).update(Text(msg.last, style="dim"))
            self.set_timer(self.POLL_S, self.poll)  # only while the process lives
            return
        self.query_one("#ex-start", Button).disabled = False
        log = str(self.job.log_path) if self.job is not None else "-"
        if msg.code == 0:
            self._status(Text(f"finished: {done} videos in the cache", style="bold green"))
            what = (
                "slt-multistream (add meta.csv id;texto, train.csv, val.csv)"
                if (Path(self.out) / "rois").is_dir()
                else NEXT_PRESET
            )
            hint = Text(f"use it as a dataset root for {what}: ", style="")
            hint.append(f"data.root={self.out}", style="bold")
            hint.append(f"\n(log: {log})", style="dim")
            self.query_one("#ex-log", Static).update(hint)
        else:
            self._status(
                Text(f"failed (exit {msg.code}): {self.npz} videos in the cache", style="bold red")
            )
            err = Text(msg.error or msg.last or "no output", style="red")
            err.append(f"\n(log: {log})", style="dim")
            self.query_one("#ex-log", Static).update(err)

    def _status(self, text: Text) -> None:
        self.query_one("#ex-status", Static).update(text)

    def action_back(self) -> None:
        self.app.pop_screen()
