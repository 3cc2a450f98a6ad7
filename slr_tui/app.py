"""``slr-tui``: the Textual app. It works only through the run directory and the engine
subprocess (docs/ARCHITECTURE.md): it never imports torch, and blocking work runs in worker
threads whose results come back as messages."""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.worker import Worker, WorkerState

from slr_tui import settings as settings_mod
from slr_tui.screens.runs import RunsScreen

GpuReader = Callable[[], "list[dict[str, Any]] | str"]


def _read_gpus_now() -> list[dict[str, Any]] | str:
    from engine.telemetry import read_gpus_now  # pynvml only, no torch

    return read_gpus_now()


class SlrApp(App):
    """Runs (home), new run, live run, compare, thresholds and settings screens."""

    CSS_PATH = "app.tcss"
    TITLE = "slr-tui"
    ENABLE_COMMAND_PALETTE = False
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (34, "-tall")]
    BINDINGS = [
        Binding("ctrl+q", "quit", "quit", show=False, priority=True),
        # every screen's keys (screens/help.py); hidden: the footers stay as they were
        Binding("question_mark", "help", "keys (help)", show=False),
    ]

    def __init__(
        self,
        runs_dir: str | Path | None = None,
        *,
        settings: settings_mod.Settings | None = None,
        settings_path: str | Path | None = None,
        clock: Callable[[], float] = time.time,
        gpu_reader: GpuReader | None = None,
        runs_poll_s: float = 2.0,
        live_poll_s: float = 0.25,
        read_only: bool = False,
        detect_parents: tuple[str, ...] = settings_mod.DETECT_PARENTS,
    ) -> None:
        super().__init__()
        self.settings_path = Path(settings_path) if settings_path else settings_mod.settings_path()
        self.settings_error: str | None = None
        if settings is None:
            try:
                settings = settings_mod.load_settings(self.settings_path)
            except settings_mod.SettingsError as exc:
                self.settings_error = str(exc)
                settings = settings_mod.Settings()
        self.settings = settings
        self.explicit_runs_dir = runs_dir
        self.runs_root = settings_mod.resolve_runs_dir(runs_dir, settings)
        self.clock = clock
        self.gpu_reader: GpuReader = gpu_reader or _read_gpus_now
        self.runs_poll_s = runs_poll_s
        self.live_poll_s = live_poll_s
        self.read_only = read_only
        self.detect_parents = detect_parents  # where the new-run screen looks for datasets
        self.engines: list[subprocess.Popen] = []  # engines this app started (reaped)

    def on_mount(self) -> None:
        # Garbage-collector pauses were most of the spread in opening a big run (up to
        # ~180 ms a screen, measured with gc.callbacks): collect the young generation less
        # often, and freeze what start-up built (warm_up) so full collections skip it.
        gc.set_threshold(20_000, 50, 100)
        self.push_screen(RunsScreen())
        self.set_timer(1.0, self._warm_up)
        if self.settings_error:
            self.notify(self.settings_error + " (using defaults)", severity="error", timeout=8)

    def action_help(self) -> None:
        """``?``: the keys of the screen on top (``?`` again closes the list)."""
        from slr_tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
            return
        self.push_screen(HelpScreen(self.screen))

    # ------------------------------------------------------------------ shared services

    def _warm_up(self) -> None:
        self.warm_up()

    @work(thread=True, exclusive=True, exit_on_error=False, group="warm-up")
    def warm_up(self) -> None:
        """Import numpy/scikit-learn (engine.evaluate, ~1 s) and build one small plot off the
        UI thread once, so the first live, thresholds and evaluation views open at once."""
        from textual_plotext.plot import Plot

        from slr_tui.widgets._series import downsample

        plot = Plot()
        xs, ys = downsample(list(range(500)), [float(i % 7) for i in range(500)], 50)
        plot.plot(list(xs), list(ys), marker="braille")
        plot.plotsize(40, 10)
        plot.build()
        import engine.evaluate  # noqa: F401

        gc.freeze()

    def track(self, proc: subprocess.Popen) -> None:
        """Remember an engine we started so it is reaped when it ends (it is not our child
        in any other sense: it has its own session and outlives the app)."""
        self.engines.append(proc)

    def reap(self) -> None:
        """Forget engines that ended; one that died without recording its end (killed
        before its handlers ran) gets the true status in run.json (launch.settle)."""
        alive = []
        for p in self.engines:
            if p.poll() is None:
                alive.append(p)
                continue
            run_dir = _run_dir_of(p)
            if run_dir is not None:
                from slr_tui import launch

                try:
                    launch.settle(run_dir, p.returncode)
                except Exception:  # noqa: BLE001 - a viewer never dies of a bad run folder
                    pass
        self.engines = alive

    def apply_settings(self, new: settings_mod.Settings) -> None:
        """Adopt saved settings; the runs dir follows them unless --runs-dir / env set it."""
        self.settings = new
        self.runs_root = settings_mod.resolve_runs_dir(self.explicit_runs_dir, new)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """One place where a failed worker becomes a notification (not a crash)."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            err = event.worker.error
            text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            self.notify(f"{event.worker.group}: {text}", severity="error", timeout=8)


def _run_dir_of(proc: subprocess.Popen) -> Path | None:
    """The ``--run-dir`` of an engine command line (None for other commands)."""
    args = proc.args if isinstance(proc.args, (list, tuple)) else []
    args = [str(a) for a in args]
    if "engine" not in args or "--run-dir" not in args:
        return None
    i = args.index("--run-dir")
    return Path(args[i + 1]) if i + 1 < len(args) else None


def run_app(runs_dir: str | Path | None = None, read_only: bool = False) -> int:
    app = SlrApp(runs_dir, read_only=read_only)
    app.run()
    return app.return_code or 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="slr-tui",
        description="Terminal workbench for sign-language-recognition runs: launch, watch, "
        "compare, pick thresholds.",
    )
    parser.add_argument(
        "--runs-dir",
        help="run store (default: $SLR_RUNS_DIR, else the settings' runs_dir, else ./runs)",
    )
    parser.add_argument(
        "--read-only", action="store_true", help="viewing only: no new runs, no stopping"
    )
    args = parser.parse_args(argv)
    sys.exit(run_app(args.runs_dir, read_only=args.read_only))


if __name__ == "__main__":
    main()
