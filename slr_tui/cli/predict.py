"""``slr predict``: classify new recordings with a trained run, as an engine job
(``python -m engine predict``, started by :mod:`slr_tui.launch`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from slr_tui import launch, tables
from slr_tui.cli.options import JsonOpt, RunsDirOpt, run_ref
from slr_tui.cli.render import console, fail, run_job


def predict(
    ref: Annotated[str, typer.Argument(metavar="RUN", help="A finished sequences_csv run.")],
    files: Annotated[
        list[Path], typer.Argument(metavar="FILE.csv...", help="Recordings to classify.")
    ],
    runs_dir: RunsDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Classify new recordings (CSV, one row per frame) with a trained run: per window and overall."""
    r = run_ref(ref, runs_dir)
    result, error, code = run_job(launch.start_predict(r.path, files))
    if result is None:
        raise fail(error or "the prediction wrote no result", code or 1)
    results = result["predictions"]
    if as_json:
        typer.echo(json.dumps(results, indent=2))
        return
    for res in results:
        console.print(tables.prediction_table(res))
        console.print(tables.prediction_line(res))
