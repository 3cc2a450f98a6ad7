"""``slr predict``: classify new files with a trained run, as an engine job (``python -m
engine predict``, started by :mod:`slr_tui.launch`; the logic is in
:func:`engine.predict.predict_files`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from slr_tui import launch, tables
from slr_tui.cli.options import JsonOpt, RunsDirOpt, run_ref
from slr_tui.cli.render import console, fail, run_job


def predict(
    ref: Annotated[str, typer.Argument(metavar="RUN", help="A trained run (id, prefix or path).")],
    files: Annotated[
        list[Path],
        typer.Argument(
            metavar="INPUT...",
            help="Files to classify, of the kind the run reads: a CSV recording "
            "(sequences_csv), a features .npy/.npz (features), a landmark .npz (landmarks, "
            "synthetic) or a video (wlasl, video_folder).",
        ),
    ],
    top: Annotated[
        int, typer.Option("--top", "-k", help="How many of the most likely classes to list.")
    ] = 5,
    runs_dir: RunsDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Classify new inputs with a trained run's best.pt: the top classes with probabilities.

    Each file is read the way the run's data source reads a sample in evaluation: a CSV
    recording is cut into the run's windows (a label per window, and overall the mean of
    the window probabilities and the votes); a features array is standardised with the
    run's training statistics; a landmark .npz goes through the run's landmark features; a
    video is decoded and transformed as in evaluation (frames spread over the whole
    video, centre crop). A file of another kind is one line saying what the run takes.
    --json prints the results for scripts.
    """
    if top < 1:
        raise fail(f"--top must be at least 1, not {top}")
    r = run_ref(ref, runs_dir)
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise fail(f"{missing[0]}: no such file")
    result, error, code = run_job(
        launch.start_predict(r.path, [f.resolve() for f in files], top=top)
    )
    if result is None:
        raise fail(error or "the prediction wrote no result", code or 1)
    results = result["predictions"]
    if as_json:
        typer.echo(json.dumps(results, indent=2))
        return
    for res in results:
        if res.get("windows") is not None:
            console.print(tables.prediction_table(res))
        console.print(tables.prediction_top_table(res))
        if res.get("windows") is not None:
            console.print(tables.prediction_line(res))
        else:
            o = res["overall"]
            console.print(
                f"[bold]{escape(res['file'])}: {escape(str(o['label']))}[/] "
                f"(probability {o['confidence']:.3f})",
                highlight=False,
                soft_wrap=True,
            )
