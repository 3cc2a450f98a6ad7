"""``slr``: the headless command line. It launches the engine as a subprocess and reads run
folders; it never imports torch itself."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from engine import config as cfgmod
from engine import runs
from engine.config import ConfigError
from slr_tui import launch, tables
from slr_tui.extract_cmd import extract

app = typer.Typer(
    name="slr",
    help="Train and compare sign-language-recognition experiments (headless).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
presets_app = typer.Typer(help="List presets, or show one's effective config.")
app.add_typer(presets_app, name="presets")
app.command()(extract)

console = Console()
err_console = Console(stderr=True)

RunsDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--runs-dir",
        help="Run store (default: $SLR_RUNS_DIR, else the settings file's runs_dir, else ./runs).",
        show_default=False,
    ),
]


def fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _root(runs_dir: Path | None) -> Path:
    """--runs-dir, else $SLR_RUNS_DIR, else the settings file's runs_dir, else ./runs."""
    from slr_tui import settings as settings_mod

    if runs_dir or os.environ.get("SLR_RUNS_DIR"):
        root = runs.runs_dir(runs_dir)
    else:
        try:
            root = settings_mod.resolve_runs_dir(None, settings_mod.load_settings())
        except settings_mod.SettingsError as exc:
            raise fail(str(exc)) from None
    if "\0" in str(root):
        raise fail("the runs folder path cannot contain a NUL character")
    try:
        if root.exists() and not root.is_dir():
            raise fail(f"runs folder {root} is a file, not a folder (--runs-dir / $SLR_RUNS_DIR)")
    except OSError as exc:
        raise fail(f"cannot use runs folder {root}: {exc.strerror or exc}") from None
    return root


def _flag_overrides(data_root: Path | None, device: str | None) -> dict[str, Any]:
    """--data-root and --device as config overrides (they rank below --set)."""
    extra: dict[str, Any] = {}
    if data_root is not None:
        extra["data"] = {"root": str(data_root)}
    if device is not None:
        if device not in ("auto", "cpu", "cuda"):
            raise fail(f"--device must be auto, cpu or cuda, not '{device}'")
        extra["training"] = {"device": device}
    return extra


def resolve_ref(ref: str, root: Path) -> runs.RunInfo:
    """RUN: an id, a unique prefix of one, or an explicit path (engine.runs.resolve_run)."""
    return runs.resolve_run(ref, root)


def _run_ref(ref: str, runs_dir: Path | None) -> runs.RunInfo:
    try:
        return resolve_ref(ref, _root(runs_dir))
    except runs.RunError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot read run '{ref}': {exc.strerror or exc}") from None


# --------------------------------------------------------------------------- presets


@presets_app.callback(invoke_without_command=True)
def presets_list(ctx: typer.Context) -> None:
    """List the presets with their one-line descriptions."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table

    t = Table(header_style="bold", show_lines=True)
    t.add_column("preset", no_wrap=True, style="bold")
    t.add_column("data, model, key hyperparameters / description")
    for p in cfgmod.presets():
        t.add_row(
            p.name,
            f"{p.dataset_label()} · {p.model.name} · batch {p.data.batch_size} · "
            f"{p.training.max_epochs} epochs · lr {p.optim.lr:g}\n[dim]{p.description}[/]",
        )
    console.print(t)
    console.print("show one: slr presets show NAME")


@presets_app.command("show")
def presets_show(
    name: Annotated[str, typer.Argument(help="Preset name (see `slr presets`).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of YAML.")] = False,
    sets: Annotated[
        list[str] | None,
        typer.Option("--set", "-s", help="Override section.key=value (YAML value)."),
    ] = None,
) -> None:
    """Print a preset's effective config (every key, defaults filled in)."""
    if not name.strip():
        raise fail("give a preset name (see `slr presets`)")
    try:
        cfg = cfgmod.resolve(preset=name, sets=sets)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    d = cfg.to_dict()
    if as_json:
        typer.echo(json.dumps(d, indent=2))
    else:
        typer.echo(yaml.safe_dump(d, sort_keys=False).rstrip())


# --------------------------------------------------------------------------- run


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
                        progress.update(
                            ep_task,
                            completed=row["epoch"],
                            info=f"val acc {tables.fmt(row.get('val_acc'))}  val loss {tables.fmt(row.get('val_loss'))}{best}",
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


@app.command()
def run(
    preset: Annotated[
        str | None, typer.Option("--preset", "-p", help="Preset name (see `slr presets`).")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="Config file (YAML/JSON); a run's config.json re-runs it."
        ),
    ] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option(
            "--set", "-s", help="Override section.key=value, value parsed as YAML (repeatable)."
        ),
    ] = None,
    data_root: Annotated[
        Path | None, typer.Option("--data-root", help="Dataset root (sets data.root).")
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            help="A dataset root named in the settings file (sets data.root). Without it or "
            "--data-root, a root named like the preset's data source or dataset is used.",
        ),
    ] = None,
    runs_dir: RunsDirOpt = None,
    device: Annotated[
        str | None, typer.Option("--device", help="auto | cpu | cuda (sets training.device).")
    ] = None,
    resume: Annotated[
        str | None, typer.Option("--resume", help="Continue a stopped run from its last.pt.")
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
    root = _root(runs_dir)
    if resume:
        if preset or config or sets:
            raise fail(
                "--resume continues a run with its own config.json; drop --preset/--config/--set"
            )
        info = _run_ref(resume, runs_dir)
        try:  # only stopped, failed and lost runs, with a last.pt
            launch.check_resumable(info)
        except runs.RunError as exc:
            raise fail(str(exc)) from None
        run_dir = info.path
    else:
        if not preset and not config:
            raise fail("give --preset NAME or --config FILE (see `slr presets`)")
        extra = _flag_overrides(data_root, device)
        try:
            cfg = cfgmod.resolve(preset=preset, config_file=config, sets=sets, extra=extra)
            if data_root is None:  # a dataset root named once in the settings file
                named = _settings_root(cfg, dataset)
                if named is not None:
                    extra.setdefault("data", {})["root"] = named
                    cfg = cfgmod.resolve(preset=preset, config_file=config, sets=sets, extra=extra)
            launch.check_available(cfg)
        except ConfigError as exc:
            raise fail(str(exc)) from None
        try:
            run_dir = launch.prepare_run(cfg, root)
        except OSError as exc:  # a full disk: one line, no run folder left behind
            raise fail(str(exc)) from None
    proc = launch.spawn(
        run_dir,
        resume=bool(resume),
        init_checkpoint=str(init_checkpoint) if init_checkpoint else None,
        procs=gpus,
    )
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


@app.command()
def sweep(
    preset: Annotated[str | None, typer.Option("--preset", "-p", help="Preset name.")] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Config file (YAML/JSON).")
    ] = None,
    grid: Annotated[
        list[str] | None,
        typer.Option(
            "--grid", "-g", help="section.key=v1,v2,... (repeatable; every combination runs)."
        ),
    ] = None,
    sets: Annotated[
        list[str] | None, typer.Option("--set", "-s", help="Override for every run (repeatable).")
    ] = None,
    data_root: Annotated[
        Path | None, typer.Option("--data-root", help="Dataset root (sets data.root).")
    ] = None,
    runs_dir: RunsDirOpt = None,
    device: Annotated[str | None, typer.Option("--device", help="auto | cpu | cuda.")] = None,
    parallel: Annotated[
        int,
        typer.Option(
            "--parallel", min=1, help="Runs at a time (one per GPU when there are several)."
        ),
    ] = 1,
) -> None:
    """Grid search: every combination of --grid values as its own run, ranked at the end."""
    from rich.live import Live
    from rich.table import Table

    from slr_tui import sweep as sw

    if not preset and not config:
        raise fail("give --preset NAME or --config FILE")
    extra = _flag_overrides(data_root, device)
    root = _root(runs_dir)
    try:
        plan = sw.plan(preset, config, sets or [], grid or [], extra, root)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"sweep [bold]{plan.id}[/]: {len(plan.members)} runs, {parallel} at a time", highlight=False
    )

    def live_table(s: sw.Sweep) -> Table:
        t = Table(header_style="bold")
        for col in ("#", "params", "run", "status", "epoch", "best"):
            t.add_column(col)
        for i, m in enumerate(s.members, 1):
            info = runs.load_run(m.run_dir) if m.run_dir else None
            t.add_row(
                str(i),
                "  ".join(m.sets),
                info.id if info else "-",
                tables.status_text(info.status) if info else "pending",
                f"{info.epoch}/{info.max_epochs}" if info else "-",
                tables.fmt(info.best_metric) if info else "-",
            )
        return t

    try:
        with Live(live_table(plan), console=console, refresh_per_second=2) as live:
            sw.execute(plan, parallel=parallel, on_update=lambda s: live.update(live_table(s)))
    except KeyboardInterrupt:
        sw.stop_all(plan)
        raise fail(
            f"sweep {plan.id} interrupted: running members were asked to stop", 130
        ) from None
    ranked = sw.ranked(plan)
    t = Table(
        title=f"sweep {plan.id}: ranked by best {ranked[0].meta.get('monitor', 'val_acc') if ranked else 'val_acc'}",
        header_style="bold",
    )
    for col in ("rank", "run", "params", "status", "best", "test acc"):
        t.add_column(col)
    for i, r in enumerate(ranked, 1):
        params = "  ".join(f"{k}={v}" for k, v in (r.meta.get("sweep_params") or {}).items())
        test_acc = ((r.meta.get("results") or {}).get("test") or {}).get("accuracy")
        t.add_row(
            str(i),
            r.id,
            params,
            tables.status_text(r.status),
            tables.fmt(r.best_metric),
            tables.fmt(test_acc),
        )
    console.print(t)
    console.print(f"compare them: slr compare {' '.join(r.id for r in ranked)}")
    if any(r.raw_status != "finished" for r in ranked):
        raise typer.Exit(1)


data_app = typer.Typer(help="Look at a dataset before training on it.")
app.add_typer(data_app, name="data")


@data_app.command("check")
def data_check(
    preset: Annotated[str | None, typer.Option("--preset", "-p", help="Preset name.")] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Config file (YAML/JSON).")
    ] = None,
    data_root: Annotated[
        Path | None, typer.Option("--data-root", help="Dataset root (sets data.root).")
    ] = None,
    sets: Annotated[
        list[str] | None, typer.Option("--set", "-s", help="Override section.key=value.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Per split: instances listed, videos present, missing, unreadable; classes, videos per
    class (min/mean/max), imbalance ratio, classes with no training video."""
    from engine.data import check_data
    from engine.errors import DataError

    if not preset and not config:
        raise fail("give --preset NAME or --config FILE")
    extra = _flag_overrides(data_root, None)
    try:
        cfg = cfgmod.resolve(preset=preset, config_file=config, sets=sets, extra=extra)
        launch.check_available(cfg)
        if as_json:
            report = check_data(cfg)
        else:
            with Progress(
                TextColumn("probing videos"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err_console,
                transient=True,
            ) as progress:
                task = progress.add_task("probe", total=None)
                report = check_data(
                    cfg,
                    progress=lambda done, total: progress.update(task, completed=done, total=total),
                )
    except (ConfigError, DataError) as exc:
        raise fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    console.print(tables.data_check_tables(report))


@app.command()
def predict(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="A finished sequences_csv run.")],
    files: Annotated[
        list[Path], typer.Argument(metavar="FILE.csv...", help="Recordings to classify.")
    ],
    runs_dir: RunsDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Classify new recordings (CSV, one row per frame) with a trained run: per window and overall."""
    from rich.table import Table

    from engine.errors import DataError, ModelError
    from engine.predict import predict_recording

    r = _run_ref(run_ref, runs_dir)
    results = []
    for f in files:
        try:
            results.append(predict_recording(r.path, f))
        except (DataError, ModelError, ConfigError) as exc:
            raise fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(results, indent=2))
        return
    for res in results:
        t = Table(title=f"{res['file']}: per window", header_style="bold")
        for col in ("frames", "label", "confidence"):
            t.add_column(col, justify="right" if col != "label" else "left")
        for w in res["windows"]:
            t.add_row(f"{w['start']}-{w['end']}", w["label"], f"{w['confidence']:.3f}")
        console.print(t)
        o = res["overall"]
        console.print(
            f"[bold]{res['file']}: {o['label']}[/] (mean probability {o['confidence']:.3f}; "
            + ", ".join(f"{k} {v}" for k, v in o["votes"].items())
            + " windows)"
        )


# --------------------------------------------------------------------------- reading runs


@app.command("runs")
def list_runs_cmd(
    runs_dir: RunsDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List runs, newest first."""
    root = _root(runs_dir)
    items = runs.list_runs(root)
    if as_json:
        typer.echo(
            json.dumps(
                [{**r.meta, "status": r.status, "path": str(r.path)} for r in items],
                indent=2,
                default=str,
            )
        )
        return
    if not items:
        console.print(f"no runs under {root} (start one with `slr run --preset demo`)")
        return
    console.print(tables.runs_table(items))


@app.command()
def show(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="Run id, unique prefix, or path.")],
    runs_dir: RunsDirOpt = None,
    all_classes: Annotated[
        bool, typer.Option("--all", help="Every class, not just the worst 15.")
    ] = False,
    split: Annotated[str, typer.Option("--split", help="Split for the per-class table.")] = "test",
) -> None:
    """A run's summary, epochs, results, per-class table (worst first) and best thresholds."""
    from engine import evaluate  # numpy/sklearn only

    if split not in ("val", "test"):
        raise fail(f"--split must be val or test, not '{split}'")
    r = _run_ref(run_ref, runs_dir)
    m = r.meta
    lines = [
        f"status      {r.status}" + (f"  ({m.get('stop_reason')})" if m.get("stop_reason") else ""),
        f"preset      {r.preset}    dataset {r.dataset}    model {r.config().get('model', {}).get('name', '-')}",
        f"epoch       {r.epoch}/{r.max_epochs}    best {m.get('monitor', 'val_acc')} {tables.fmt(r.best_metric)} (epoch {m.get('best_epoch', '-')})",
        f"started     {tables.when(r.started)}    duration {runs.format_duration(r.duration_s)}    device {m.get('device', '-')} x{m.get('world_size', 1)}",
        f"folder      {r.path}",
    ]
    if m.get("error"):
        lines.append(f"[red]error       {m['error']}[/]")
    console.print(Panel("\n".join(lines), title=r.id, expand=False))
    rows = r.metrics()
    if any(x.get("kind") == "epoch" for x in rows):
        console.print(tables.epochs_table(rows))
    report = r.report()
    if not report:
        console.print("no evaluation yet (eval/ is written when the run finishes)")
        return
    console.print(tables.results_table(report))
    per_class = evaluate.read_per_class(r.path / runs.EVAL_DIR, split)
    if not per_class and split == "test":
        split = "val"
        per_class = evaluate.read_per_class(r.path / runs.EVAL_DIR, split)
    if per_class:
        t = tables.per_class_table(per_class, None if all_classes else 15)
        t.title = f"{t.title} [{split}]"
        console.print(t)
    if report.get("calibration"):
        console.print(tables.calibration_table(report["calibration"]))
    best = report.get("best_threshold") or {}
    if best:
        for s, row in best.items():
            if row:
                note = "" if s == "val" else "  (for reference: choose on val)"
                console.print(
                    f"best threshold on {s}{note}: {row['threshold']:.2f}  F1 {tables.fmt(row.get('f1'), 3)}  "
                    f"precision {tables.fmt(row.get('precision'), 3)}  recall {tables.fmt(row.get('recall'), 3)}"
                )
    picked = runs.read_json(r.path / runs.THRESHOLD_JSON)
    if picked:
        console.print(
            f"picked threshold: {picked['threshold']:.2f} ({picked.get('rule', 'manual')})"
        )


@app.command()
def compare(
    run_refs: Annotated[list[str], typer.Argument(metavar="RUN...", help="Two or more runs.")],
    runs_dir: RunsDirOpt = None,
) -> None:
    """Runs side by side: summary metrics (best marked) and only the config keys that differ."""
    if len(run_refs) < 2:
        raise fail("give two or more runs to compare")
    items = [_run_ref(x, runs_dir) for x in run_refs]
    console.print(tables.compare_table(items))
    diff = tables.config_diff(items)
    if diff:
        console.print(tables.config_diff_table(items))
    else:
        console.print("the runs' configs are identical")


@app.command()
def stop(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="Run id, unique prefix, or path.")],
    runs_dir: RunsDirOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="SIGKILL the run's process group.")
    ] = False,
    wait: Annotated[
        float, typer.Option("--wait", help="Seconds to wait for the run to stop.")
    ] = 30.0,
) -> None:
    """Stop a running run: it finishes the current step, writes last.pt and marks itself stopped."""
    r = _run_ref(run_ref, runs_dir)
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


MIN_THRESHOLD_STEP = 0.001  # 1001 thresholds at most


@app.command()
def thresholds(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="Run id, unique prefix, or path.")],
    runs_dir: RunsDirOpt = None,
    split: Annotated[
        str, typer.Option("--split", help="val or test: which sweep to print.")
    ] = "val",
    pick: Annotated[
        str | None,
        typer.Option(
            "--pick", help="best-f1 (chosen on val) or a value in [0, 1]; writes threshold.json."
        ),
    ] = None,
    step: Annotated[float, typer.Option("--step", help="Sweep step.")] = 0.05,
) -> None:
    """Print the threshold sweep of a run's predictions; --pick writes threshold.json."""
    from engine import evaluate

    if split not in ("val", "test"):
        raise fail("--split must be val or test")
    if not MIN_THRESHOLD_STEP <= step <= 1:  # also NaN; a tiny step would sweep for ever
        raise fail(f"--step must be between {MIN_THRESHOLD_STEP:g} and 1, not {step:g}")
    r = _run_ref(run_ref, runs_dir)
    eval_dir = r.path / runs.EVAL_DIR
    try:
        ids, y, probs, names = evaluate.load_predictions(eval_dir, split)
    except (OSError, KeyError, ValueError):
        raise fail(f"run {r.id} has no {split} predictions yet (eval/predictions.npz)") from None
    if probs.ndim != 2 or probs.shape[1] < 2 or len(probs) != len(y):
        raise fail(f"run {r.id}: {eval_dir / 'predictions.npz'} is damaged ({split} probabilities)")
    task = "binary" if probs.shape[1] == 2 else "multiclass"
    grid = evaluate.default_thresholds(step, max(step, 1.0 - step), step)
    rows = evaluate.threshold_sweep(y, probs, grid)
    picked = None
    if pick is not None:
        try:
            _, yv, pv, _ = evaluate.load_predictions(eval_dir, "val")
        except (OSError, KeyError, ValueError):
            raise fail(f"run {r.id} has no val predictions to pick a threshold on") from None
        if pick == "best-f1":
            best = evaluate.best_threshold(evaluate.threshold_sweep(yv, pv, grid), "f1")
            if best is None:
                raise fail(f"run {r.id}: no threshold gives an F1 on val (is the val split empty?)")
            value, rule = best["threshold"], "best-f1 on val"
        else:
            try:
                value = float(pick)
            except ValueError:
                raise fail(f"--pick takes best-f1 or a number in [0, 1], not '{pick}'") from None
            if not 0.0 <= value <= 1.0:
                raise fail(f"--pick {value}: a threshold must be in [0, 1]")
            rule = "manual"
        try:
            picked = evaluate.write_threshold(r.path, value, rule)
        except OSError as exc:
            raise fail(_os_error_line(exc, r.path / runs.THRESHOLD_JSON)) from None
    title = f"{r.id}: {split} threshold sweep ({task}" + (
        ", by max probability)" if task != "binary" else ", positive = class 1)"
    )
    console.print(title)
    console.print(tables.threshold_table(rows, task, mark=picked["threshold"] if picked else None))
    if picked:
        figs = "  ".join(
            f"{s}: F1 {tables.fmt(picked[s].get('f1'), 3)} acc {tables.fmt(picked[s].get('accuracy'), 3)}"
            for s in ("val", "test")
            if picked.get(s)
        )
        console.print(f"[green]threshold {picked['threshold']:.2f}[/] ({picked['rule']})  {figs}")
        console.print(f"wrote {r.path / runs.THRESHOLD_JSON}")


def _settings_root(cfg: cfgmod.RunConfig, name: str | None) -> str | None:
    """data.root from the settings file: the root named ``name`` (--dataset), else, when the
    config sets no root, one named like its dataset label or data source."""
    from slr_tui import settings as settings_mod

    if name is None and (cfg.data.root is not None or cfg.data.source == "synthetic"):
        return None
    try:
        st = settings_mod.load_settings()
    except settings_mod.SettingsError as exc:
        raise ConfigError(str(exc)) from None
    if name is not None:
        if name not in st.dataset_roots:
            named = ", ".join(st.dataset_roots) or "none"
            raise ConfigError(
                f"no dataset root named '{name}' in {settings_mod.settings_path()} (named: {named})"
            )
        return str(Path(st.dataset_roots[name]).expanduser())
    hit = settings_mod.root_for(cfg.data.source, cfg.dataset_label(), st)
    if hit is None:
        return None
    err_console.print(f"data root '{hit[0]}' from {settings_mod.settings_path()}: {hit[1]}")
    return str(Path(hit[1]).expanduser())


@app.command()
def tui(
    runs_dir: RunsDirOpt = None,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Viewing only: no new runs, no stopping.")
    ] = False,
) -> None:
    """Open the terminal UI (the same as `slr-tui`)."""
    from slr_tui.app import run_app

    raise typer.Exit(run_app(runs_dir, read_only=read_only))


def _os_error_line(exc: OSError, path: str | os.PathLike | None = None) -> str:
    """One line for an OSError that reached the CLI (a full disk above all)."""
    if isinstance(exc, runs.WriteError):  # already one line for people
        return str(exc)
    where = exc.filename or path
    full = runs.no_space_line(exc, where or ".")  # "no space left on MOUNT (PATH)"
    if full is not None:
        return full
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{reason} ({where})" if where else reason


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as exc:  # the disk filled up, a folder vanished, ...: one line, no traceback
        err_console.print(
            f"[bold red]error:[/] {_os_error_line(exc)}", highlight=False, soft_wrap=True
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
