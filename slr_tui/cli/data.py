"""Datasets: ``slr data check`` and ``slr extract``. Both run as engine jobs
(``python -m engine check`` / ``extract``, started by :mod:`slr_tui.launch`); this module
renders the progress rows and the result JSON they write."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from engine.errors import ConfigError
from slr_tui import launch, tables
from slr_tui.cli.options import ConfigOpt, DataRootOpt, JsonOpt, PresetOpt, SetOpt, resolve_config
from slr_tui.cli.render import Bars, console, err_console, fail, probe_bars, run_job

NEXT_PRESET = "phase1-ctc20"
NEXT_ROI_PRESET = "slt-multistream"  # a translation preset (data.source: translation)
ROI_MARGIN, ROI_HOLD = 0.2, 4  # engine.rois.RoiOptions' defaults (no engine import here)

app = typer.Typer(help="Look at a dataset before training on it.", no_args_is_help=True)


@app.command("check")
def check(
    preset: PresetOpt = None,
    config: ConfigOpt = None,
    data_root: DataRootOpt = None,
    sets: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Per split: instances listed, videos present, missing, unreadable; classes, videos per
    class (min/mean/max), imbalance ratio, classes with no training video."""
    cfg = resolve_config(preset, config, sets, data_root)
    try:
        launch.check_data_root(cfg)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    job = launch.start_check(cfg)
    if as_json:
        report, error, code = run_job(job)
    else:
        with probe_bars() as bars:

            def on_row(row: dict[str, Any]) -> None:
                if row["kind"] == "probe":
                    bars.update("probe", "probe", row["done"], row["total"])

            report, error, code = run_job(job, on_row)
    if report is None:
        raise fail(error or "the check wrote no report", code or 1)
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    console.print(tables.data_check_tables(report))


def _face_indices(text: str | None) -> str | None:
    """--face-indices as the engine takes it: ``all`` or ``i,j,k`` (0-467)."""
    if text is None or text.strip().lower() in ("", "all"):
        return None
    parts = [t for t in text.replace(" ", "").split(",") if t]
    if not parts or not all(p.isdigit() for p in parts):
        raise typer.BadParameter(
            f"'{text}': give comma-separated face mesh indices (0-467) or 'all'",
            param_hint="--face-indices",
        )
    return ",".join(parts)


def extract(
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Cache folder to write: landmarks, or ROIs (a rerun resumes it)."
        ),
    ],
    preset: PresetOpt = None,
    config: ConfigOpt = None,
    sets: SetOpt = None,
    data_root: DataRootOpt = None,
    workers: Annotated[
        int, typer.Option("--workers", "-w", min=1, help="Processes, one Holistic each.")
    ] = 1,
    max_glosses: Annotated[
        int | None,
        typer.Option("--max-glosses", min=1, help="Keep the N glosses with the most videos."),
    ] = None,
    samples_per_gloss: Annotated[
        int | None,
        typer.Option(
            "--samples-per-gloss",
            min=1,
            help="At most N videos a gloss (splits kept in proportion).",
        ),
    ] = None,
    stride: Annotated[
        int, typer.Option("--stride", min=1, help="Process every Nth frame of a video.")
    ] = 1,
    max_size: Annotated[
        int | None,
        typer.Option("--max-size", min=16, help="Shrink frames so the long side is at most N px."),
    ] = None,
    model_complexity: Annotated[
        int,
        typer.Option(
            "--model-complexity",
            min=0,
            max=2,
            help="Holistic pose model: 1 ships with mediapipe; 0 and 2 need --model-file offline.",
        ),
    ] = 1,
    model_file: Annotated[
        Path | None,
        typer.Option(
            "--model-file",
            help="pose_landmark_lite/heavy.tflite for complexity 0/2 (installed into mediapipe).",
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Extract at most N videos this run.")
    ] = None,
    face_indices: Annotated[
        str | None,
        typer.Option(
            "--face-indices",
            callback=_face_indices,
            help="Face mesh points to keep, e.g. 0,13,14,61 (default: all 468).",
        ),
    ] = None,
    rois: Annotated[
        bool,
        typer.Option(
            "--rois",
            help="Write an ROI cache instead: face and hand crops plus pose per frame, "
            "for the translation source (layout: README, 'ROI cache').",
        ),
    ] = False,
    roi_size: Annotated[
        int,
        typer.Option("--roi-size", min=16, max=1024, help="With --rois: crop side in pixels."),
    ] = 112,
    roi_margin: Annotated[
        float,
        typer.Option(
            "--roi-margin",
            min=0.0,
            max=2.0,
            help="With --rois: room around the landmarks' box, a share of its side per side.",
        ),
    ] = ROI_MARGIN,
    roi_hold: Annotated[
        int,
        typer.Option(
            "--roi-hold",
            min=0,
            help="With --rois: frames a lost hand keeps its last box before it is masked.",
        ),
    ] = ROI_HOLD,
) -> None:
    """Extract MediaPipe Holistic landmarks from a dataset's videos into a landmark cache.

    Pose, hands and face of every video, for the `landmarks` source; resumable and
    parallel. The videos come from a WLASL preset, or from --set
    data.source=video_folder with --data-root. With --rois: per frame a face crop and
    a crop of each hand (boxes around the landmarks, smoothed over time) and the pose,
    into an ROI cache for the `translation` source."""
    cfg = resolve_config(preset, config, sets, data_root, required=False)
    if face_indices is not None and rois:
        raise fail("--face-indices is for the landmark cache; an ROI cache keeps no face points")
    job = launch.start_extract(
        cfg,
        out,
        workers=workers,
        max_glosses=max_glosses,
        samples_per_gloss=samples_per_gloss,
        stride=stride,
        max_size=max_size,
        model_complexity=model_complexity,
        model_file=model_file,
        limit=limit,
        face_indices=face_indices,
        rois=rois,
        roi_size=roi_size if rois else None,
        roi_margin=roi_margin if rois else None,
        roi_hold=roi_hold if rois else None,
    )
    with Bars(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        out=console,
    ) as bars:

        def on_row(row: dict[str, Any]) -> None:
            kind = row["kind"]
            if kind == "probe":
                bars.update("probe", "probing videos", row["done"], row["total"], info="")
            elif kind == "plan":
                bars.remove("probe")
                bars.print(tables.extract_plan_line(row))
            elif kind == "video":
                info = f"{row['frames']} frames, {row['fps']:.1f} frames/s"
                bars.update("work", "videos", row["done"], row["total"], info=info)

        summary, error, code = run_job(job, on_row)
    if summary is None:
        raise fail(error or "the extraction wrote no summary", code or 1)
    _print_summary(summary)
    if summary["interrupted"]:
        err_console.print(
            f"[yellow]interrupted:[/] {summary['manifest_rows']} videos are in the cache; "
            "run the same command again to resume",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(130)
    if error:
        raise fail(error, code or 1)
    if summary["remaining"]:
        console.print(
            f"{tables.plural(summary['remaining'], 'video')} still to extract: run the same "
            "command again" + (" without --limit" if limit else ""),
            highlight=False,
            soft_wrap=True,
        )
    root = shlex.quote(summary["out"])
    nxt = (
        f"next: add your sentences (meta.csv: id;texto) and splits (train.csv, val.csv: an id "
        f"column) to it, then slr run --preset {NEXT_ROI_PRESET} --set data.root={root}"
        if rois
        else f"next: slr run --preset {NEXT_PRESET} --set data.root={root}"
    )
    console.print(nxt, highlight=False, soft_wrap=True)


def _print_summary(s: dict[str, Any]) -> None:
    console.print(tables.extract_summary_table(s))
    if s["failures"]:
        console.print(tables.extract_failures_table(s["failures"]))
