"""Training: ``slr run``, ``slr sweep`` and ``slr stop``. Runs start through
:func:`slr_tui.launch.start_run`; the foreground ones are followed through their run
folder."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from engine import runs
from engine.errors import ConfigError
from slr_tui import launch, tables
from slr_tui.cli.options import (
    ConfigOpt,
    DataRootOpt,
    DeviceOpt,
    PresetOpt,
    RunArg,
    RunsDirOpt,
    SetOpt,
    flag_overrides,
    resolve_config,
    run_ref,
    runs_root,
    settings_root,
)
from slr_tui.cli.render import console, err_console, fail

STOPPING = "[yellow]stopping: finishing the current step, writing last.pt...[/]"


def _progress_loop(run_dir: Path, proc, quiet: bool) -> int:
    """Follow metrics.jsonl with progress bars until the engine exits; forward Ctrl-C."""
    tail = runs.JsonlTail(run_dir / runs.METRICS)
    stopping = False

    def on_sigint(_s, _f):
        nonlocal stopping
        if not stopping:
            stopping = True
            if quiet:  # with progress bars the loop prints it, above the bars
                err_console.print(STOPPING)
            try:
                proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass

    old = signal.signal(signal.SIGINT, on_sigint)
    try:
        if quiet:
            while proc.poll() is None:
                time.sleep(0.5)
            return proc.returncode
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=console,
            transient=False,
        )
        with progress:
            ep_task = progress.add_task("epochs", total=None, info="starting...")
            st_task = progress.add_task("steps ", total=None, info="")
            meta_done = False
            told = False
            while True:
                running = proc.poll() is None
                if not meta_done:
                    meta = runs.read_json(run_dir / runs.RUN_JSON) or {}
                    if meta.get("steps_per_epoch"):
                        progress.update(
                            ep_task, total=meta["max_epochs"], completed=meta.get("epoch", 0)
                        )
                        progress.update(st_task, total=meta["steps_per_epoch"], info="")
                        meta_done = True
                if stopping and not told:
                    progress.console.print(STOPPING)
                    told = True
                for row in tail.read_new():
                    if row.get("kind") == "step":
                        progress.update(
                            st_task,
                            completed=row.get("step_in_epoch", 0),
                            info=f"loss {row.get('train_loss', 0):.4f}  lr {row.get('lr', 0):.2e}",
                        )
                    elif row.get("kind") == "epoch":
                        best = " *" if row.get("best") else ""
                        first = f"val acc {tables.fmt(row.get('val_acc'))}"
                        if row.get("val_bleu4") is not None:  # a translation run
                            first = f"BLEU-4 {tables.fmt(row['val_bleu4'], 2)}  chrF {tables.fmt(row.get('val_chrf'), 2)}"
                        progress.update(
                            ep_task,
                            completed=row["epoch"],
                            info=f"{first}  val loss {tables.fmt(row.get('val_loss'))}{best}",
                        )
                        progress.update(st_task, completed=progress.tasks[st_task].total or 0)
                if not running:
                    break
                time.sleep(0.25)
        return proc.returncode
    finally:
        signal.signal(signal.SIGINT, old)


def _print_outcome(run: runs.RunInfo, code: int) -> None:
    run.refresh()
    status = run.raw_status
    if status == "finished":
        report = run.report()
        if report:
            console.print(
                tables.results_table(
                    report, title=f"{run.id}: results (best epoch {report.get('best_epoch')})"
                )
            )
        console.print(f"[green]finished[/] {run.id}  ->  {run.path}")
    elif status == "stopped":
        err_console.print(
            f"[yellow]stopped[/] {run.id} at epoch {run.epoch}: last.pt kept. "
            f"Resume with: slr run --resume {run.id}"
        )
    else:
        err_console.print(
            f"[bold red]failed:[/] {run.meta.get('error') or f'engine exited with code {code}'} "
            f"(run {run.id}, log: {run.path / runs.LOG})",
            soft_wrap=True,
        )


def _resume(ref: str, runs_dir: Path | None, init_checkpoint: Path | None, gpus: int):
    """``--resume RUN``: only stopped, failed and lost runs, with a last.pt."""
    info = run_ref(ref, runs_dir)
    try:
        launch.check_resumable(info)
    except runs.RunError as exc:
        raise fail(str(exc)) from None
    return launch.resume_run(
        info.path, init_checkpoint=str(init_checkpoint) if init_checkpoint else None, procs=gpus
    )


def run(
    preset: PresetOpt = None,
    config: ConfigOpt = None,
    sets: SetOpt = None,
    data_root: DataRootOpt = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            help="A dataset root named in the settings file (sets data.root). Without it or "
            "--data-root, a root named like the preset's data source or dataset is used.",
        ),
    ] = None,
    runs_dir: RunsDirOpt = None,
    device: DeviceOpt = None,
    resume: Annotated[
        str | None,
        typer.Option("--resume", metavar="RUN", help="Continue a stopped run from its last.pt."),
    ] = None,
    init_checkpoint: Annotated[
        Path | None,
        typer.Option("--init-checkpoint", help="Load model weights only from this checkpoint."),
    ] = None,
    gpus: Annotated[
        int,
        typer.Option(
            "--gpus", min=1, help="Processes to train with, one per GPU (on CPU: gloo processes)."
        ),
    ] = 1,
    detach: Annotated[
        bool, typer.Option("--detach", help="Start in the background, print the run id, exit.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Train one run: preset < --config < --set. Exits non-zero if the run fails or is stopped."""
    root = runs_root(runs_dir)
    if resume:
        if preset or config or sets:
            raise fail(
                "--resume continues a run with its own config.json; drop --preset/--config/--set"
            )
        handle = _resume(resume, runs_dir, init_checkpoint, gpus)
    else:
        cfg = resolve_config(preset, config, sets, data_root, device)
        try:
            if data_root is None:  # a dataset root named once in the settings file
                named = settings_root(cfg, dataset)
                if named is not None:
                    cfg = resolve_config(preset, config, sets, named, device)
            handle = launch.start_run(
                cfg,
                root,
                init_checkpoint=str(init_checkpoint) if init_checkpoint else None,
                procs=gpus,
            )
        except (ConfigError, runs.WriteError) as exc:  # a full disk: no run folder left
            raise fail(str(exc)) from None
    run_dir, proc = handle.run_dir, handle.proc
    if detach:
        typer.echo(run_dir.name)
        return
    if not quiet:
        console.print(f"run [bold]{run_dir.name}[/]  (log: {run_dir / runs.LOG})", highlight=False)
    code = _progress_loop(run_dir, proc, quiet)
    launch.settle(run_dir, code)  # killed before it could record its end: record it
    info = runs.load_run(run_dir)
    _print_outcome(info, code)
    if code != 0 or info.raw_status != "finished":
        raise typer.Exit(code or 1)


def sweep(
    preset: PresetOpt = None,
    config: ConfigOpt = None,
    grid: Annotated[
        list[str] | None,
        typer.Option(
            "--grid", "-g", help="section.key=v1,v2,... (repeatable; every combination runs)."
        ),
    ] = None,
    sets: SetOpt = None,
    data_root: DataRootOpt = None,
    runs_dir: RunsDirOpt = None,
    device: DeviceOpt = None,
    parallel: Annotated[
        int,
        typer.Option(
            "--parallel", min=1, help="Runs at a time (one per GPU when there are several)."
        ),
    ] = 1,
) -> None:
    """Grid search: every combination of --grid values as its own run, ranked at the end.

    --set applies to every run."""
    from rich.live import Live

    from slr_tui import sweep as sw

    if not preset and not config:
        raise fail("give --preset NAME or --config FILE (see `slr presets`)")
    extra = flag_overrides(data_root, device)
    root = runs_root(runs_dir)
    try:
        plan = sw.plan(preset, config, sets or [], grid or [], extra, root)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"sweep [bold]{plan.id}[/]: {len(plan.members)} runs, {parallel} at a time", highlight=False
    )
    try:
        with Live(tables.sweep_table(plan), console=console, refresh_per_second=2) as live:
            sw.execute(
                plan, parallel=parallel, on_update=lambda s: live.update(tables.sweep_table(s))
            )
    except KeyboardInterrupt:
        sw.stop_all(plan)
        raise fail(
            f"sweep {plan.id} interrupted: running members were asked to stop", 130
        ) from None
    ranked = sw.ranked(plan)
    console.print(tables.sweep_ranked_table(plan.id, ranked))
    console.print(f"compare them: slr compare {' '.join(r.id for r in ranked)}")
    if any(r.raw_status != "finished" for r in ranked):
        raise typer.Exit(1)


def stop(
    ref: RunArg,
    runs_dir: RunsDirOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="SIGKILL the run's process group.")
    ] = False,
    wait: Annotated[
        float, typer.Option("--wait", help="Seconds to wait for the run to stop.")
    ] = 30.0,
) -> None:
    """Stop a running run: it finishes the current step, writes last.pt and marks itself stopped."""
    r = run_ref(ref, runs_dir)
    try:
        msg = launch.stop_run(r, force=force)
    except runs.RunError as exc:
        raise fail(str(exc)) from None
    console.print(msg)
    if "requested" in msg and wait > 0:
        status = launch.wait_status(r, wait)
        if status in runs.ACTIVE:
            raise fail(
                f"run {r.id} is still {status} after {wait:.0f}s; try again or use --force", 1
            )
        console.print(f"run {r.id}: {status}")
