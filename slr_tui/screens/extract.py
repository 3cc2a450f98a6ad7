"""Extract landmarks: ``slr extract`` for the new-run screen's dataset, from the TUI.

The start button runs ``python -m slr_tui.cli extract ...`` in its own session, output to
``OUT.extract-tui.log`` beside the output folder (``slr extract`` refuses a non-empty folder
that is no cache yet, so the log cannot go inside it), so it survives the app closing. While it lives, a worker polls
once a second (it reschedules itself after each poll, so polls never overlap): finished
``OUT/landmarks/**/*.npz`` files and the log's last line; then the exit status. ``esc``
goes back and leaves the extraction running; opening the screen again for the same
output folder follows it again.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, Static

LOG_SUFFIX = ".extract-tui.log"
NEXT_PRESET = "phase1-ctc20"
TAIL_BYTES = 8192
RUN_MARK = "$ "  # the log line that starts a run's output
PLAN_RE = re.compile(r"^(\d+) videos? of \d+ class(?:es)? selected")


def default_out(root: str) -> str:
    return str(Path(root).expanduser()).rstrip("/") + "-landmarks"


def log_path(out: str | Path) -> Path:
    """Where the TUI's extraction writes its output: ``OUT.extract-tui.log``."""
    out = Path(out)
    return out.with_name(out.name + LOG_SUFFIX)


def extract_command(
    preset: str,
    root: str,
    out: str,
    sets: list[str],
    workers: int,
    max_glosses: int | None = None,
    samples_per_gloss: int | None = None,
) -> list[str]:
    cmd = [sys.executable, "-m", "slr_tui.cli", "extract", "--preset", preset]
    cmd += ["--data-root", root, "--out", out, "--workers", str(workers)]
    if max_glosses:
        cmd += ["--max-glosses", str(max_glosses)]
    if samples_per_gloss:
        cmd += ["--samples-per-gloss", str(samples_per_gloss)]
    for s in sets:
        cmd += ["--set", s]
    return cmd


def spawn_extract(cmd: list[str], out: Path) -> subprocess.Popen:
    """Start the extraction detached (own session), output to :func:`log_path`."""
    out.mkdir(parents=True, exist_ok=True)
    logf = open(log_path(out), "ab")  # noqa: SIM115 - handed to the child
    try:
        logf.write(f"{RUN_MARK}{shlex.join(cmd)}\n".encode())  # this run's output follows
        logf.flush()
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="200"),
            cwd=os.getcwd(),
        )
    finally:
        logf.close()


def count_npz(out: Path) -> int:
    """Finished videos in the cache (temp files end in .tmp, so they do not count)."""
    folder = out / "landmarks"
    return sum(1 for _ in folder.rglob("*.npz")) if folder.is_dir() else 0


def log_tail(path: Path) -> tuple[str, int | None]:
    """The log's last non-empty line, and the selected-video count its plan line gives."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - TAIL_BYTES))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return "", None
    lines = [x.strip() for x in re.split(r"[\r\n]+", text) if x.strip()]
    starts = [i for i, line in enumerate(lines) if line.startswith(RUN_MARK)]
    if starts:  # only the latest run's lines
        lines = lines[starts[-1] + 1 :]
    total = None
    for line in lines:
        m = PLAN_RE.match(line)
        if m:
            total = int(m.group(1))
    return (lines[-1] if lines else ""), total


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
    """Output folder, workers, max glosses, samples per gloss; start; progress."""

    BINDINGS = [
        Binding("ctrl+s", "start", "start", priority=True),
        Binding("escape", "back", "back (it keeps running)"),
    ]
    POLL_S = 1.0

    class Started(Message):
        def __init__(self, out: str, proc: Any, error: str | None) -> None:
            super().__init__()
            self.out, self.proc, self.error = out, proc, error

    class Polled(Message):
        def __init__(self, npz: int, last: str, total: int | None, code: int | None) -> None:
            super().__init__()
            self.npz, self.last, self.total, self.code = npz, last, total, code

    def __init__(self, preset: str, root: str, sets: list[str], owner: Any = None) -> None:
        super().__init__()
        self.preset, self.root, self.sets = preset, root, list(sets)
        # the new-run screen keeps the processes, so reopening follows a running one
        self.procs: dict[str, Any] = owner.extracts if owner is not None else {}
        self.proc: subprocess.Popen | None = None
        self.out: str = default_out(root)
        self.npz = 0
        self.total: int | None = None
        self.last_line = ""
        self.returncode: int | None = None
        self.polls = 0

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
            with Horizontal(id="ex-actions"):
                yield Button("Start (ctrl+s)", id="ex-start", variant="success", compact=True)
                yield Static("", id="ex-status")
            yield Static("", id="ex-log")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#ex-dialog").border_title = "extract landmarks (MediaPipe Holistic)"
        proc = self.procs.get(self.out)
        if proc is not None:  # started here before: follow it
            self._follow(proc)
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
        except ValueError as exc:
            self._status(Text(str(exc), style="bold red"))
            return
        running = self.procs.get(str(Path(out).expanduser()))
        if running is not None and running.poll() is None:
            self._follow(running)
            return
        out = str(Path(out).expanduser())
        cmd = extract_command(self.preset, self.root, out, self.sets, workers or 1, glosses, per)
        self.query_one("#ex-start", Button).disabled = True
        self._status(Text("starting...", style="cyan"))
        self.query_one("#ex-log", Static).update(Text(shlex.join(cmd[1:]), style="dim"))
        self.start(cmd, out)

    @on(Button.Pressed, "#ex-start")
    def _start_pressed(self) -> None:
        self.action_start()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.focus_next()

    @work(thread=True, exclusive=True, exit_on_error=False, group="ex-start")
    def start(self, cmd: list[str], out: str) -> None:
        try:
            proc = spawn_extract(cmd, Path(out))
        except OSError as exc:
            self.post_message(self.Started(out, None, f"cannot start the extraction: {exc}"))
            return
        self.post_message(self.Started(out, proc, None))

    def on_extract_screen_started(self, msg: Started) -> None:
        if msg.error or msg.proc is None:
            self.query_one("#ex-start", Button).disabled = False
            self._status(Text(msg.error or "start failed", style="bold red"))
            return
        self.app.track(msg.proc)  # reaped when it ends; it has its own session
        self.procs[msg.out] = msg.proc
        self._follow(msg.proc, msg.out)

    # ------------------------------------------------------------------ progress

    def _follow(self, proc: subprocess.Popen, out: str | None = None) -> None:
        self.proc = proc
        if out is not None:
            self.out = out
        self.returncode = None
        self.query_one("#ex-start", Button).disabled = True
        self._status(Text("running...", style="cyan"))
        self.poll()

    @work(thread=True, exclusive=True, exit_on_error=False, group="ex-poll")
    def poll(self) -> None:
        proc = self.proc
        if proc is None:
            return
        out = Path(self.out)
        code = proc.poll()  # read first: the files below are then at least this new
        last, total = log_tail(log_path(out))
        self.post_message(self.Polled(count_npz(out), last, total, code))

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
        log = str(log_path(self.out))
        if msg.code == 0:
            self._status(Text(f"finished: {done} videos in the cache", style="bold green"))
            hint = Text(f"use it as a dataset root for {NEXT_PRESET}: ", style="")
            hint.append(f"data.root={self.out}", style="bold")
            hint.append(f"\n(log: {log})", style="dim")
            self.query_one("#ex-log", Static).update(hint)
        else:
            self._status(
                Text(f"failed (exit {msg.code}): {self.npz} videos in the cache", style="bold red")
            )
            err = Text(msg.last or "no output", style="red")
            err.append(f"\n(log: {log})", style="dim")
            self.query_one("#ex-log", Static).update(err)

    def _status(self, text: Text) -> None:
        self.query_one("#ex-status", Static).update(text)

    def action_back(self) -> None:
        self.app.pop_screen()
