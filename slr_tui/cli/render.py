"""Where ``slr`` prints: the two consoles, the one-line error exit, and the job follower
that turns an engine job's progress rows into progress bars. The tables themselves are in
:mod:`slr_tui.tables`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

if TYPE_CHECKING:  # imported where used: `slr runs` draws no bars and starts no job
    from rich.progress import ProgressColumn, TaskID

    from slr_tui import launch

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: MESSAGE`` (one line, on stderr); the exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


class Bars:
    """Progress bars named by key, started with the first one (so an early error prints
    alone) and stopped when the ``with`` block ends."""

    def __init__(self, *columns: ProgressColumn | str, out: Console, transient: bool = False):
        from rich.progress import Progress

        self.progress = Progress(*columns, console=out, transient=transient)
        self.tasks: dict[str, TaskID] = {}

    def update(self, key: str, description: str, done: int, total: int, **fields: Any) -> None:
        if key not in self.tasks:
            if not self.tasks:
                self.progress.start()
            self.tasks[key] = self.progress.add_task(description, total=total, **fields)
        self.progress.update(self.tasks[key], completed=done, total=total, **fields)

    def remove(self, key: str) -> None:
        if key in self.tasks:
            self.progress.remove_task(self.tasks.pop(key))

    def print(self, text: str) -> None:
        """A line above the bars."""
        self.progress.console.print(text, highlight=False, soft_wrap=True)

    def __enter__(self) -> Bars:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.tasks:
            self.progress.stop()


def probe_bars() -> Bars:
    """The bar of a dataset probe (``slr data check``), on stderr, gone when done."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    return Bars(
        TextColumn("probing videos"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        out=err_console,
        transient=True,
    )


def run_job(
    job: launch.Job, on_row: Callable[[dict[str, Any]], None] | None = None
) -> tuple[dict[str, Any] | None, str | None, int]:
    """Follow a foreground engine job to its end: ``(result, error, exit code)``. Its job
    folder is closed (a temporary one removed) before this returns."""
    from slr_tui import launch

    with job:
        code = launch.follow(job, on_row) or 0
        result, error = job.outcome()
    return result, error, code if code >= 0 else 1  # killed by a signal: failed
