"""``slr extract``: MediaPipe Holistic landmarks of a dataset's videos, into a landmark cache
that the ``landmarks`` source reads (see :mod:`engine.extract`).

Registered in :mod:`slr_tui.cli` with ``app.command()(extract)``. The engine is imported
when the command runs, so ``slr --help`` stays fast.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

if TYPE_CHECKING:
    from rich.console import Console

NEXT_PRESET = "phase1-ctc20"
SHOWN_FAILURES = 10


def parse_face_indices(text: str | None) -> tuple[int, ...] | None:
    """``"all"``/None -> None (all 468 points); ``"1,33,61"`` -> (1, 33, 61)."""
    if text is None or text.strip().lower() in ("", "all"):
        return None
    try:
        return tuple(int(t) for t in text.replace(" ", "").split(",") if t)
    except ValueError:
        raise typer.BadParameter(
            f"'{text}': give comma-separated face mesh indices (0-467) or 'all'",
            param_hint="--face-indices",
        ) from None


def extract(
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Landmark cache folder to write (a rerun resumes it)."),
    ],
    preset: Annotated[
        str | None,
        typer.Option("--preset", "-p", help="Preset naming the dataset (a WLASL preset)."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Config file (YAML/JSON).")
    ] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option(
            "--set", "-s", help="Override section.key=value, e.g. data.source=video_folder."
        ),
    ] = None,
    data_root: Annotated[
        Path | None, typer.Option("--data-root", help="Dataset root (sets data.root).")
    ] = None,
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
            "--face-indices", help="Face mesh points to keep, e.g. 0,13,14,61 (default: all 468)."
        ),
    ] = None,
) -> None:
    """Extract MediaPipe Holistic landmarks (pose, hands, face) from every video of a dataset
    into a landmark cache for the `landmarks` source. Resumable and parallel."""
    from engine import config as cfgmod
    from engine.config import ConfigError
    from engine.errors import DataError
    from engine.extract import ExtractError, ExtractSettings
    from engine.extract import extract as run_extract
    from slr_tui.cli import console, err_console, fail

    faces = parse_face_indices(face_indices)
    extra: dict[str, Any] = {}
    if data_root is not None:
        extra["data"] = {"root": str(data_root)}
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
    )
    tasks: dict[str, TaskID] = {}

    def add_task(name: str, description: str, total: int, info: str) -> None:
        if not tasks:
            progress.start()  # started with the first bar: early errors print alone
        tasks[name] = progress.add_task(description, total=total, info=info)

    def on_probe(done: int, total: int) -> None:
        if "probe" not in tasks:
            add_task("probe", "probing videos", total, "")
        progress.update(tasks["probe"], completed=done, total=total)

    def on_plan(plan: dict[str, int]) -> None:
        if "probe" in tasks:
            progress.remove_task(tasks["probe"])
        progress.console.print(
            f"{_n(plan['selected'], 'video')} of {_n(plan['classes'], 'class', 'classes')} selected "
            f"({plan['skipped']} already in the cache, {plan['todo']} to extract "
            f"with {_n(plan['workers'], 'worker')}); "
            f"{plan['missing']} missing, {plan['unreadable']} unreadable",
            highlight=False,
            soft_wrap=True,
        )

    def on_progress(done: int, total: int, frames: int, fps: float) -> None:
        info = f"{frames} frames, {fps:.1f} frames/s"
        if "work" not in tasks:
            add_task("work", "videos", total, info)
        progress.update(tasks["work"], completed=done, total=total, info=info)

    try:
        cfg = cfgmod.resolve(preset=preset, config_file=config, sets=sets, extra=extra)
        settings = ExtractSettings(
            model_complexity=model_complexity,
            stride=stride,
            max_size=max_size,
            crop_bbox=cfg.data.crop_bbox,
            face_indices=faces,
        )
        try:
            summary = run_extract(
                cfg,
                out,
                settings,
                workers=workers,
                max_glosses=max_glosses,
                samples_per_gloss=samples_per_gloss,
                limit=limit,
                model_file=model_file,
                on_probe=on_probe,
                on_plan=on_plan,
                on_progress=on_progress,
            )
        finally:
            if tasks:
                progress.stop()
    except (ConfigError, DataError, ExtractError) as exc:
        raise fail(str(exc)) from None
    print_summary(summary, console)
    if summary["interrupted"]:
        err_console.print(
            f"[yellow]interrupted:[/] {summary['manifest_rows']} videos are in the cache; "
            "run the same command again to resume",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(130)
    if summary["selected"] and not summary["manifest_rows"]:
        raise fail("no video could be extracted (see the failures above)", 1)
    if summary["remaining"]:
        console.print(
            f"{_n(summary['remaining'], 'video')} still to extract: run the same command again"
            + (" without --limit" if limit else ""),
            highlight=False,
            soft_wrap=True,
        )
    console.print(
        f"next: slr run --preset {NEXT_PRESET} --set data.root={shlex.quote(summary['out'])}",
        highlight=False,
        soft_wrap=True,
    )


def _n(count: int, noun: str, plural: str | None = None) -> str:
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def summary_table(s: dict[str, Any]) -> Table:
    """The figures of one extraction run."""
    t = Table(title=f"landmark cache {s['out']}", header_style="bold", show_header=False)
    t.add_column("what", style="bold")
    t.add_column("value")
    t.add_row(
        "videos",
        f"{s['selected']} selected of {s['listed']} listed, {_n(s['classes'], 'class', 'classes')}",
    )
    t.add_row(
        "this run",
        f"{s['extracted']} extracted, {s['failed']} failed, {s['skipped']} already done, "
        f"{s['remaining']} still to do",
    )
    t.add_row("not usable", f"{s['missing']} missing, {s['unreadable']} unreadable")
    t.add_row(
        "frames",
        f"{s['frames']} in {s['seconds']:.1f} s: {s['frames_per_s']:.1f} frames/s "
        f"({_n(s['workers'], 'worker')})",
    )
    rates = "  ".join(
        f"{part} {'-' if r is None else f'{100 * r:.0f}%'}" for part, r in s["detection"].items()
    )
    t.add_row("detected", rates)
    t.add_row("in the cache", f"{s['manifest_rows']} videos (manifest.csv)")
    return t


def print_summary(s: dict[str, Any], console: Console) -> None:
    console.print(summary_table(s))
    failures = s["failures"]
    if failures:
        t = Table(title=f"failures ({len(failures)})", header_style="bold")
        t.add_column("id")
        t.add_column("reason")
        for f in failures[:SHOWN_FAILURES]:
            t.add_row(f["id"], f["reason"] or "")
        if len(failures) > SHOWN_FAILURES:
            t.add_row("...", f"{len(failures) - SHOWN_FAILURES} more")
        console.print(t)
