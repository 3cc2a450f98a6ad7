"""Training: ``slr run``, ``slr sweep`` (a grid, or an Optuna study: ``--search optuna``;
``slr sweep show STUDY``) and ``slr stop``. Runs start through
:func:`slr_tui.launch.start_run` (or, ``--launcher slurm``, as SLURM jobs through
:func:`slr_tui.launch.start_slurm_run`); the foreground ones are followed through their run
folder. optuna and submitit are imported only by the commands that use them."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from engine import runs
from engine.errors import ConfigError
from slr_tui import launch, tables
from slr_tui.cli.options import (
    ConfigOpt,
    DataRootOpt,
    DeviceOpt,
    JsonOpt,
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

# --launcher and the SLURM options `slr run` and `slr sweep` share
LauncherOpt = Annotated[
    str,
    typer.Option(
        "--launcher",
        help="local (an engine process here) or slurm (a SLURM job through submitit; the "
        "runs dir must be on a filesystem the compute nodes share). local-submitit, not "
        "listed, runs the job through submitit's local executor: a test aid.",
    ),
]
PartitionOpt = Annotated[
    str | None, typer.Option("--slurm-partition", help="SLURM partition of the jobs.")
]
AccountOpt = Annotated[str | None, typer.Option("--slurm-account", help="SLURM account to charge.")]
SlurmTimeOpt = Annotated[
    str,
    typer.Option(
        "--slurm-time",
        help="Time limit of each job (HH:MM:SS or D-HH:MM:SS). SLURM's warning before it "
        "stops the run cleanly (last.pt kept, resumable).",
    ),
]
SlurmExtraOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--slurm-extra",
        help="Another sbatch option as key=value (qos=high, constraint=a100, mem=64G); repeatable.",
    ),
]
SlurmCpusOpt = Annotated[
    int | None, typer.Option("--slurm-cpus", min=1, help="CPUs per task (sbatch --cpus-per-task).")
]
LAUNCHER_CHOICES = ("local", "slurm", "local-submitit")


def _slurm_options(
    launcher: str,
    partition: str | None,
    account: str | None,
    time_limit: str,
    gpus: int,
    cpus: int | None,
    extra: list[str] | None,
):
    """The SlurmOptions of ``--launcher slurm`` (None for local); one error line when bad."""
    if launcher not in LAUNCHER_CHOICES:
        raise fail(f"--launcher must be local or slurm, not '{launcher}'")
    if launcher == "local":
        if partition or account or extra:
            raise fail("--slurm-* options need --launcher slurm")
        return None
    from slr_tui import slurm

    try:
        return slurm.make_options(
            launcher,
            partition=partition,
            account=account,
            time=time_limit,
            gpus=gpus,
            cpus=cpus,
            extra=extra,
        )
    except ConfigError as exc:
        raise fail(escape(str(exc))) from None


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
        if quiet:  # a Ctrl-C runs the handler and the wait goes on (PEP 475)
            return proc.wait()
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
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(0.25)  # back at once when the engine ends
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
    elif status in ("stopped", "pruned"):
        err_console.print(
            f"[yellow]{status}[/] {run.id} at epoch {run.epoch}: last.pt kept. "
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
        raise fail(escape(str(exc))) from None
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
    launcher: LauncherOpt = "local",
    nodes: Annotated[
        int,
        typer.Option(
            "--nodes",
            min=1,
            help="--launcher slurm: nodes of the job (torchrun across them, --gpus on each).",
        ),
    ] = 1,
    slurm_partition: PartitionOpt = None,
    slurm_account: AccountOpt = None,
    slurm_time: SlurmTimeOpt = "12:00:00",
    slurm_cpus: SlurmCpusOpt = None,
    slurm_extra: SlurmExtraOpt = None,
) -> None:
    """Train one run: preset < --config < --set. Exits non-zero if the run fails or is stopped.

    --launcher slurm submits it as a SLURM job (submitit) that runs the same engine in the
    run folder; --gpus N uses N GPUs of the node (torchrun), --nodes M spreads it over M
    nodes. `slr runs` lists it like any run and `slr stop` cancels the job."""
    root = runs_root(runs_dir)
    slurm_opts = _slurm_options(
        launcher, slurm_partition, slurm_account, slurm_time, gpus, slurm_cpus, slurm_extra
    )
    if nodes > 1 and slurm_opts is None:
        raise fail("--nodes needs --launcher slurm (one machine: --gpus N)")
    if slurm_opts is not None and (resume or init_checkpoint):
        raise fail("--launcher slurm starts new runs: drop --resume/--init-checkpoint")
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
            if slurm_opts is not None:
                handle = launch.start_slurm_run(cfg, root, slurm_opts, procs=gpus, nodes=nodes)
            else:
                handle = launch.start_run(
                    cfg,
                    root,
                    init_checkpoint=str(init_checkpoint) if init_checkpoint else None,
                    procs=gpus,
                )
        except (ConfigError, runs.WriteError) as exc:  # a full disk: no run folder left
            raise fail(escape(str(exc))) from None
    run_dir, proc = handle.run_dir, handle.proc
    if detach:
        typer.echo(run_dir.name)
        return
    if not quiet:
        job = runs.read_meta(run_dir).get("slurm_job_id")
        where = f"  job {job}" if job else ""
        console.print(
            f"run [bold]{run_dir.name}[/]{where}  (log: {run_dir / runs.LOG})", highlight=False
        )
    code = _progress_loop(run_dir, proc, quiet)
    launch.settle(run_dir, code)  # killed before it could record its end: record it
    info = runs.load_run(run_dir)
    _print_outcome(info, code)
    if code != 0 or info.raw_status != "finished":
        raise typer.Exit(code or 1)


sweep_app = typer.Typer(
    name="sweep",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@sweep_app.callback(invoke_without_command=True)
def sweep(
    ctx: typer.Context,
    preset: PresetOpt = None,
    config: ConfigOpt = None,
    grid: Annotated[
        list[str] | None,
        typer.Option(
            "--grid",
            "-g",
            help="section.key=v1,v2,... (repeatable; every combination runs). With --search "
            "optuna: the grid sampler's points, or choices for tpe/random.",
        ),
    ] = None,
    sets: SetOpt = None,
    data_root: DataRootOpt = None,
    runs_dir: RunsDirOpt = None,
    device: DeviceOpt = None,
    parallel: Annotated[
        int,
        typer.Option(
            "--parallel",
            min=1,
            help="Runs at a time here (one per GPU when there are several); with --launcher "
            "slurm, jobs in flight.",
        ),
    ] = 1,
    search: Annotated[
        str,
        typer.Option(
            "--search", help="grid (every --grid combination) or optuna (an Optuna study)."
        ),
    ] = "grid",
    sampler: Annotated[
        str,
        typer.Option(
            "--sampler",
            help="optuna: tpe, random, or grid (the --grid combinations, each once).",
        ),
    ] = "tpe",
    trials: Annotated[
        int | None,
        typer.Option(
            "--trials",
            min=1,
            help="optuna: trials of the whole study, every worker's counted (default 20; "
            "grid: the number of combinations).",
        ),
    ] = None,
    space: Annotated[
        list[str] | None,
        typer.Option(
            "--space",
            help="optuna: section.key=loguniform:LOW:HIGH, uniform:LOW:HIGH, int:LOW:HIGH or "
            "choice:V1,V2,... (repeatable).",
        ),
    ] = None,
    space_file: Annotated[
        Path | None,
        typer.Option(
            "--space-file",
            help="optuna: a YAML mapping of section.key to a spec (as --space), a list "
            "(choices) or {type, low, high}.",
        ),
    ] = None,
    study: Annotated[
        str | None,
        typer.Option(
            "--study",
            help="optuna: the study's name (default: a new one). The same name and --storage "
            "on several machines share the study.",
        ),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            help="optuna: an RDB URL (postgresql://..., mysql://..., sqlite:///...) or a "
            "journal file (PATH or journal:PATH; on a shared filesystem for several "
            "machines). Default: RUNS/studies/STUDY.journal.",
        ),
    ] = None,
    direction: Annotated[
        str | None,
        typer.Option(
            "--direction",
            help="optuna: maximize or minimize (default: from the config's training.monitor).",
        ),
    ] = None,
    pruner: Annotated[
        str,
        typer.Option(
            "--pruner",
            help="optuna: none, median or hyperband; a pruned run stops early (status "
            "pruned, last.pt kept).",
        ),
    ] = "median",
    pruner_startup: Annotated[
        int,
        typer.Option(
            "--pruner-startup-trials",
            min=0,
            help="median pruner: trials that finish before any is pruned.",
        ),
    ] = 5,
    pruner_warmup: Annotated[
        int,
        typer.Option(
            "--pruner-warmup-epochs",
            min=0,
            help="median pruner: epochs before a trial may be pruned.",
        ),
    ] = 0,
    seed: Annotated[int | None, typer.Option("--seed", help="optuna: the sampler's seed.")] = None,
    launcher: LauncherOpt = "local",
    slurm_partition: PartitionOpt = None,
    slurm_gpus: Annotated[
        int,
        typer.Option(
            "--slurm-gpus-per-trial", min=0, help="GPUs of each trial's job (torchrun when > 1)."
        ),
    ] = 1,
    slurm_time: SlurmTimeOpt = "12:00:00",
    slurm_account: AccountOpt = None,
    slurm_cpus: SlurmCpusOpt = None,
    slurm_extra: SlurmExtraOpt = None,
) -> None:
    """Grid search or an Optuna study; every member is its own run, ranked at the end.

    --set applies to every run. A grid runs every combination of --grid values. With
    --search optuna each trial is a run tagged with the study and its trial number, its value
    the run's best monitored figure; the pruner stops poor trials early. Run the same command
    (same --study, same --storage) on several machines to share one study; --launcher slurm
    submits each trial as a SLURM job. See the results with `slr sweep show STUDY` and
    `slr compare STUDY`."""
    if ctx.invoked_subcommand is not None:
        return
    if not preset and not config:
        raise fail("give --preset NAME or --config FILE (see `slr presets`)")
    extra = flag_overrides(data_root, device)
    root = runs_root(runs_dir)
    if search == "optuna":
        slurm_opts = _slurm_options(
            launcher,
            slurm_partition,
            slurm_account,
            slurm_time,
            slurm_gpus,
            slurm_cpus,
            slurm_extra,
        )
        _optuna_sweep(
            preset=preset,
            config=config,
            sets=sets or [],
            grid=grid or [],
            space=space or [],
            space_file=space_file,
            extra=extra,
            root=root,
            parallel=parallel,
            sampler=sampler,
            trials=trials,
            study=study,
            storage=storage,
            direction=direction,
            pruner=pruner,
            pruner_startup=pruner_startup,
            pruner_warmup=pruner_warmup,
            seed=seed,
            slurm_opts=slurm_opts,
            gpus_per_trial=slurm_gpus,
        )
        return
    if search != "grid":
        raise fail(f"--search must be grid or optuna, not '{search}'")
    if launcher != "local":
        raise fail("--launcher slurm runs Optuna trials: add --search optuna (--sampler grid)")
    if space or space_file or study or storage or trials is not None:
        raise fail("--space/--space-file/--study/--storage/--trials need --search optuna")
    _grid_sweep(preset, config, sets or [], grid or [], extra, root, parallel)


def _grid_sweep(preset, config, sets, grid, extra, root, parallel) -> None:
    from rich.live import Live

    from slr_tui import sweep as sw

    try:
        plan = sw.plan(preset, config, sets, grid, extra, root)
    except ConfigError as exc:
        raise fail(escape(str(exc))) from None
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


def _fmt_param(v: Any) -> str:
    """A parameter value short enough for a column: numbers to 4 significant digits
    (trial params arrive as the --set text, "0.000321456...")."""
    if isinstance(v, str):
        try:
            v = float(v) if any(c in v for c in ".eE") else int(v)
        except ValueError:
            return v
    if isinstance(v, float):
        return f"{v:.2e}" if 0 < abs(v) < 1e-2 else f"{v:.4g}"
    return str(v)


def _param_headers(keys: list[str]) -> dict[str, str]:
    """Each swept key's column header: its last part (``lr``), the whole key where two
    would read the same."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (n if last.count(n) == 1 else k) for k, n in zip(keys, last, strict=True)}


def _fmt_duration(s: float | None) -> str:
    if s is None:
        return "-"
    s = int(s)
    return (
        f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


TRIAL_STYLE = {
    "complete": "green",
    "pruned": "yellow",
    "running": "cyan",
    "fail": "red",
    "waiting": "dim",
}


def _trials_table(title: str, rows: list[dict[str, Any]], metric: str | None):
    from rich import box
    from rich.table import Table

    # no vertical rules and no wrapping: a value and a run id are read (and copied) whole
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("trial", justify="right", no_wrap=True, min_width=5)
    table.add_column("state", no_wrap=True)
    table.add_column(metric or "value", justify="right", no_wrap=True)
    keys = sorted({k for r in rows for k in r["params"]})
    for header in _param_headers(keys).values():
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("run", no_wrap=True)
    for r in rows:
        value = r.get("value")
        if value is None and r.get("last_reported") is not None:
            value_text = f"({tables.fmt(r['last_reported'])})"  # a pruned trial's last report
        else:
            value_text = tables.fmt(value)
        state = r["state"]
        table.add_row(
            str(r["number"]),
            f"[{TRIAL_STYLE.get(state, 'dim')}]{state}[/]",
            value_text,
            *(_fmt_param(r["params"][k]) if k in r["params"] else "-" for k in keys),
            _fmt_duration(r.get("duration_s")),
            r.get("run_id") or "-",
        )
    return table


def _live_rows(s) -> list[dict[str, Any]]:
    now = time.time()
    return [
        {
            "number": m.number,
            "state": m.state,
            "value": m.value,
            "last_reported": None,
            "params": m.params,
            "duration_s": (m.ended or now) - m.started,
            "run_id": m.run_id,
        }
        for m in s.members
    ]


def _optuna_sweep(
    *,
    preset,
    config,
    sets,
    grid,
    space,
    space_file,
    extra,
    root: Path,
    parallel: int,
    sampler: str,
    trials: int | None,
    study: str | None,
    storage: str | None,
    direction: str | None,
    pruner: str,
    pruner_startup: int,
    pruner_warmup: int,
    seed: int | None,
    slurm_opts,
    gpus_per_trial: int,
) -> None:
    from rich.live import Live

    from slr_tui import search as se

    try:
        se.require_optuna()
        if sampler not in se.SAMPLERS:
            raise ConfigError(f"--sampler must be one of {', '.join(se.SAMPLERS)}, not '{sampler}'")
        if pruner not in se.PRUNERS:
            raise ConfigError(f"--pruner must be one of {', '.join(se.PRUNERS)}, not '{pruner}'")
        if direction not in (None, "maximize", "minimize"):
            raise ConfigError(f"--direction must be maximize or minimize, not '{direction}'")
        params = se.grid_space(grid) if grid else []
        params += se.parse_space(space)
        if space_file is not None:
            params += se.load_space_file(space_file)
        keys = [p.key for p in params]
        if len(set(keys)) != len(keys):
            raise ConfigError("a key is given twice across --grid/--space/--space-file")
        if not params:
            raise ConfigError("give a search space: --space section.key=KIND:... or --grid")
        base = se.validate_space(params, preset, config, sets, extra)
        metric, auto_direction = se.monitor_of(base)
        direction = direction or auto_direction
        if sampler == "grid":
            size = se.grid_size(params) if all(p.kind == "choice" for p in params) else 0
            n_trials = min(trials, size) if trials else size
        else:
            n_trials = trials or 20
        name = se.check_study_name(study) if study else se.new_study_name(preset or "custom")
        store = se.open_storage(storage, root, name)
        opened = se.open_study(
            name,
            store,
            direction=direction,
            sampler=se.make_sampler(sampler, params, seed),
            pruner=se.make_pruner(
                pruner,
                startup=pruner_startup,
                warmup=pruner_warmup,
                max_epochs=base.training.max_epochs,
            ),
            attrs={
                "metric": metric,
                "preset": preset or str(config),
                "space": [p.describe() for p in params],
                "trials": n_trials,
            },
        )
    except ConfigError as exc:
        raise fail(escape(str(exc))) from None
    plan = se.Search(
        study=opened,
        name=name,
        space=params,
        preset=preset,
        config_file=config,
        sets=sets,
        extra=extra,
        runs_root=root,
        n_trials=n_trials,
        metric=metric,
        parallel=parallel,
        slurm=slurm_opts,
        procs=max(1, gpus_per_trial) if slurm_opts is not None else 1,
        storage=se.storage_ref(storage, root, name),
    )
    where = se.storage_label(storage, root, name)
    console.print(
        f"study [bold]{name}[/] ({direction} {metric}; {n_trials} trials, {sampler} sampler, "
        f"{pruner} pruner): {parallel} at a time here; storage {where}",
        highlight=False,
        soft_wrap=True,
    )

    def table(s):
        return _trials_table(f"study {name}: this worker's trials", _live_rows(s), metric)

    try:
        with Live(table(plan), console=console, refresh_per_second=2) as live:
            se.execute(plan, prune=pruner != "none", on_update=lambda s: live.update(table(s)))
        if not console.is_terminal:  # Live leaves its last frame without a newline there
            console.print()
    except KeyboardInterrupt:
        raise fail(
            f"study {name} interrupted: the running trials were stopped (marked failed)", 130
        ) from None
    except ConfigError as exc:  # joined a study with another space
        raise fail(escape(str(exc))) from None
    done = {m.state for m in plan.members}
    for m in plan.members:
        if m.state == "fail" and m.error:
            err_console.print(
                f"trial {m.number}: {escape(m.error)}", highlight=False, soft_wrap=True
            )
    if not plan.members:
        console.print(f"study {name} already has its {n_trials} trials")
    console.print(f"results: slr sweep show {name}" + (f" --storage {storage}" if storage else ""))
    console.print(f"compare the best: slr compare {name}")
    if "fail" in done:
        raise typer.Exit(1)


@sweep_app.command("show")
def sweep_show(
    name: Annotated[str, typer.Argument(metavar="STUDY", help="The study's name.")],
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            help="The study's storage (as `slr sweep --storage`); default "
            "RUNS/studies/STUDY.journal.",
        ),
    ] = None,
    runs_dir: RunsDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """An Optuna study's trials ranked (value, params, state, duration, run) and Optuna's
    parameter importances (once 2 or more trials are complete)."""
    from slr_tui import search as se

    root = runs_root(runs_dir)
    try:
        se.check_study_name(name)
        store = se.open_storage(storage, root, name, create=False)
        summary = se.study_summary(se.load_study(name, store))
    except ConfigError as exc:
        raise fail(escape(str(exc))) from None
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    counts = ", ".join(f"{n} {k}" for k, n in sorted(summary["counts"].items())) or "no trials"
    console.print(
        _trials_table(
            f"study {name}: {summary['direction']} {summary['metric'] or 'value'} ({counts})",
            summary["trials"],
            summary["metric"],
        )
    )
    if summary["importances"]:
        from rich.table import Table

        imp = Table(title="parameter importances (optuna)", title_justify="left")
        imp.add_column("param")
        imp.add_column("importance", justify="right")
        for k, v in sorted(summary["importances"].items(), key=lambda kv: -kv[1]):
            imp.add_row(k, f"{v:.3f}")
        console.print(imp)
    else:
        console.print(f"[dim]{summary['importances_note']}[/]")


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
        raise fail(escape(str(exc))) from None
    console.print(msg)
    if "requested" in msg and wait > 0:
        status = launch.wait_status(r, wait)
        if status in runs.ACTIVE:
            raise fail(
                f"run {r.id} is still {status} after {wait:.0f}s; try again or use --force", 1
            )
        console.print(f"run {r.id}: {status}")
