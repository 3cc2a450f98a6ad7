"""``slr tui``: the terminal UI, the same as ``slr-tui``."""

from __future__ import annotations

from typing import Annotated

import typer

from slr_tui.cli.options import RunsDirOpt


def tui(
    runs_dir: RunsDirOpt = None,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Viewing only: no new runs, no stopping.")
    ] = False,
) -> None:
    """Open the terminal UI (the same as `slr-tui`)."""
    from slr_tui.app import run_app

    raise typer.Exit(run_app(runs_dir, read_only=read_only))
