"""``slr export``: a trained run as ONNX, checked against PyTorch, as an engine job
(``python -m engine export``, started by :mod:`slr_tui.launch`; the logic is in
:mod:`engine.export`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from slr_tui import launch, tables
from slr_tui.cli.options import JsonOpt, RunsDirOpt, run_ref
from slr_tui.cli.render import console, err_console, fail, run_job

DEFAULT_ATOL = 1e-4  # engine.export.DEFAULT_ATOL (not imported: it imports torch)


def export(
    ref: Annotated[str, typer.Argument(metavar="RUN", help="A trained run (id, prefix or path).")],
    out: Annotated[
        Path | None,
        typer.Argument(
            metavar="[OUT]",
            help="The ONNX file to write (default: RUN/export/model.onnx, encoder.onnx for "
            "a translation run).",
            show_default=False,
        ),
    ] = None,
    onnx: Annotated[bool, typer.Option("--onnx", help="Export to ONNX (the format).")] = False,
    atol: Annotated[
        float,
        typer.Option(
            "--atol",
            help="Tolerance: the largest |onnxruntime - PyTorch| over every output value "
            "may be at most ATOL x max(1, largest |PyTorch output|).",
        ),
    ] = DEFAULT_ATOL,
    batches: Annotated[
        int,
        typer.Option("--batches", help="Real val/test batches to compare on (sizes B, B/2, 1)."),
    ] = 3,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size", help="Samples in the traced example batch (default: data.batch_size)."
        ),
    ] = None,
    opset: Annotated[int, typer.Option("--opset", help="ONNX opset version.")] = 18,
    exporter: Annotated[
        str,
        typer.Option(
            "--exporter",
            help="auto (TorchScript tracer, then torch.export/dynamo if that graph fails the "
            "check), torchscript or dynamo.",
        ),
    ] = "auto",
    runs_dir: RunsDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a trained run's model as ONNX (dynamic batch and length axes) and check it.

    The model of best.pt (for a translation run: its encoder) is exported, then run with
    onnxruntime and with PyTorch on real batches of the run's own val/test data, of other
    batch sizes and lengths than the traced one. The largest absolute difference is
    printed; above the tolerance the command exits 1. A model that cannot be exported
    (minirocket, fitted outside torch) is one line and exit 2.
    """
    if not onnx:
        raise fail("choose the format: --onnx (slr export RUN --onnx [OUT])")
    if exporter not in ("auto", "torchscript", "dynamo"):
        raise fail(f"--exporter must be auto, torchscript or dynamo, not '{exporter}'")
    if not atol > 0:
        raise fail(f"--atol must be a positive number, not {atol}")
    if batches < 1:
        raise fail(f"--batches must be at least 1, not {batches}")
    if batch_size is not None and batch_size < 1:
        raise fail(f"--batch-size must be at least 1, not {batch_size}")
    r = run_ref(ref, runs_dir)

    def on_row(row: dict[str, Any]) -> None:
        if row.get("kind") == "stage" and not as_json:
            err_console.print(f"{row.get('stage')}...", highlight=False, soft_wrap=True)

    job = launch.start_export(
        r.path,
        out.resolve() if out is not None else None,
        atol=atol,
        batches=batches,
        batch_size=batch_size,
        opset=opset,
        exporter=exporter,
    )
    result, error, code = run_job(job, on_row)
    if result is None:
        raise fail(error or "the export wrote no result", code or 1)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        console.print(tables.export_table(result))
        for line in tables.export_lines(result):
            console.print(line, highlight=False, soft_wrap=True)
    if code:
        raise fail(error or f"the export failed (exit {code})", code)
