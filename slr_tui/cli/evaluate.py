"""``slr eval``: score a trained run on its own splits or on other data, as an engine job
(``python -m engine eval``, started by :mod:`slr_tui.launch`; the logic is in
:func:`engine.predict.evaluate_run`). Results go to ``RUN/eval-<name>/``, never ``eval/``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

from engine import runs
from engine.errors import ConfigError
from slr_tui import launch, tables
from slr_tui.cli.options import (
    DataRootOpt,
    DeviceOpt,
    JsonOpt,
    RunArg,
    RunsDirOpt,
    run_ref,
)
from slr_tui.cli.render import Bars, console, err_console, fail, run_job

if TYPE_CHECKING:
    from engine.config import RunConfig

SPLIT_CHOICES = ("val", "test", "train", "all")
CHECKPOINT_CHOICES = ("best", "last")
AGGREGATES = ("mean", "max", "vote")


def data_config(
    run: runs.RunInfo,
    preset: str | None,
    config: Path | None,
    sets: list[str] | None,
    data_root: Path | None,
) -> tuple[RunConfig, RunConfig]:
    """(the run's own config, the config whose data section is scored): the run's
    config.json with the data section of ``preset`` < ``config`` < ``--data-root`` <
    ``--set data.*`` merged in; a --set outside ``data.`` is refused."""
    from engine import config as cfgmod  # lazily: `slr --help` builds no config models

    path = run.path / runs.CONFIG_JSON
    try:
        base = cfgmod.validate(cfgmod.load_file(path), str(path), saved=True)
    except ConfigError as exc:
        raise fail(f"run {run.id}: {exc}") from None
    raw = base.to_dict()
    source = f"run {run.id}"
    try:
        if preset:
            layer = cfgmod.load_preset_raw(preset).get("data")
            if isinstance(layer, dict):
                raw = cfgmod.merge_layer(raw, {"data": layer})
            source = f"preset {preset}"
        if config:
            layer = cfgmod.upgrade(cfgmod.load_file(config), base=raw).get("data")
            if isinstance(layer, dict):
                raw = cfgmod.merge_layer(raw, {"data": layer})
            source = str(config)
        if data_root is not None:
            raw = cfgmod.merge_layer(raw, {"data": {"root": str(data_root.expanduser())}})
        for item in sets or []:
            parsed = cfgmod.parse_set(item)
            if set(parsed) != {"data"}:
                raise fail(
                    f"--set {item}: slr eval changes only the data section (--set data.KEY=VALUE)"
                )
            raw = cfgmod.merge_layer(raw, parsed)
            source = "--set"
        return base, cfgmod.validate(raw, source)
    except ConfigError as exc:
        raise fail(str(exc)) from None


def default_name(base: RunConfig, cfg: RunConfig) -> str:
    """``rescore`` for the run's own data, else the data root's folder name (or the
    dataset label), made safe for a folder name."""
    if base.data.model_dump(mode="json") == cfg.data.model_dump(mode="json"):
        return "rescore"
    text = Path(str(cfg.data.root)).name if cfg.data.root else cfg.dataset_label()
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")[:64]
    return name or "data"


def eval_splits(split: str | None) -> list[str] | None:
    if split is None:
        return None
    if split not in SPLIT_CHOICES:
        raise fail(f"--split must be val, test, train or all, not '{split}'")
    return [split]


def evaluate(
    ref: RunArg,
    checkpoint: Annotated[
        str,
        typer.Option("--checkpoint", help="Which weights: best (best.pt) or last (last.pt)."),
    ] = "best",
    data_root: DataRootOpt = None,
    preset: Annotated[
        str | None,
        typer.Option("--preset", "-p", help="Take the data section of this preset."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Take the data section of this config file."),
    ] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option(
            "--set", "-s", help="Override data.KEY=VALUE, value parsed as YAML (repeatable)."
        ),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(
            "--split",
            help="val, test, train or all (default: the splits the data has of val and test).",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="Results go to RUN/eval-NAME/ (default: the data root's folder name, or "
            "'rescore' for the run's own data).",
            show_default=False,
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing RUN/eval-NAME/.")
    ] = False,
    skip_unknown: Annotated[
        bool,
        typer.Option(
            "--skip-unknown",
            help="Leave out samples whose label the run does not know (default: an error).",
        ),
    ] = False,
    aggregate: Annotated[
        str | None,
        typer.Option(
            "--aggregate",
            help="Grouped metrics: mean, max or vote (default: the run's "
            "training.group_aggregate).",
            show_default=False,
        ),
    ] = None,
    device: DeviceOpt = None,
    runs_dir: RunsDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate a trained run's weights on its own splits or on other data.

    The run's best.pt (or last.pt) is scored with the trainer's own evaluation on the data
    its config names, changed only in the data section (--data-root, the data section of
    --preset / --config, --set data.KEY=VALUE): a model trained on one split or dataset
    scored zero-shot on another, or an old run re-scored. Features are standardised with
    the run's training statistics and labels matched to the run's classes by name.
    Results go to RUN/eval-NAME/ with the files of eval/ (report.json with what data and
    checkpoint were used, predictions.npz, per_class.csv, confusion.csv, thresholds.csv);
    the run's own eval/ is never touched. Ctrl-C stops cleanly and leaves no eval-NAME/.
    """
    from engine.evaluate import EVAL_NAME, EVAL_PREFIX  # numpy only

    if checkpoint not in CHECKPOINT_CHOICES:
        raise fail(f"--checkpoint must be best or last, not '{checkpoint}'")
    if aggregate is not None and aggregate not in AGGREGATES:
        raise fail(f"--aggregate must be mean, max or vote, not '{aggregate}'")
    if device is not None and device not in ("auto", "cpu", "cuda"):
        raise fail(f"--device must be auto, cpu or cuda, not '{device}'")
    splits = eval_splits(split)
    r = run_ref(ref, runs_dir)
    if r.task() == "translation":
        raise fail(
            f"run {r.id} is a translation run: slr eval scores classifiers (its BLEU/chrF/WER "
            "are in eval/, see `slr show`)"
        )
    ckpt_file = r.path / f"{checkpoint}.pt"
    if not ckpt_file.is_file():
        raise fail(f"run {r.id} has no {ckpt_file.name} (is it trained?)")
    base, cfg = data_config(r, preset, config, sets, data_root)
    name = name or default_name(base, cfg)
    if not EVAL_NAME.match(name):
        raise fail(
            f"--name '{name}': use letters, digits, '.', '_' and '-' (at most 64, starting "
            "with a letter or digit)"
        )
    out = r.path / f"{EVAL_PREFIX}{name}"
    if out.exists() and not overwrite:
        raise fail(f"{out} exists; pass --overwrite to replace it or --name another")

    bars = Bars(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        out=err_console,
        transient=True,
    )

    def on_row(row: dict[str, Any]) -> None:
        if row.get("kind") == "batch":
            bars.update("batch", "evaluating", int(row["done"]), int(row["total"]))
        elif row.get("kind") == "stage" and not as_json and not bars.tasks:
            err_console.print(f"{row.get('stage')}...", highlight=False, soft_wrap=True)

    job = launch.start_eval(
        r.path,
        cfg,
        name,
        checkpoint=checkpoint,
        splits=splits,
        skip_unknown=skip_unknown,
        overwrite=overwrite,
        aggregate=aggregate,
        device=device,
    )
    with bars:
        result, error, code = run_job(job, on_row)
    if code == 130:
        raise fail(f"interrupted: no {out.name}/ written", 130)
    if result is None:
        raise fail(error or "the evaluation wrote no result", code or 1)
    if code:
        raise fail(error or f"the evaluation failed (exit {code})", code)
    report = result["report"]
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    show_eval(out, report, result.get("skipped_unknown") or 0)


def show_eval(out: Path, report: dict[str, Any], skipped: int = 0) -> None:
    """The summary of one eval-NAME/ folder: headline figures and grouped metrics."""
    from engine import evaluate  # numpy only

    report = runs.clean_report(report) or {}
    per_class = {
        s: evaluate.read_per_class(out, s, include_absent=True)
        for s in tables.report_splits(report)
    }
    epoch = report.get("checkpoint_epoch")
    title = f"{out.name}: {report.get('checkpoint', '?')}" + (
        f" (epoch {epoch})" if type(epoch) is int else ""
    )
    console.print(tables.eval_summary_table(report, per_class, title))
    grouped = tables.grouped_table(report)
    if grouped is not None:
        console.print(grouped)
    if report.get("calibration"):
        console.print(tables.calibration_table(report["calibration"]))
    if skipped:
        console.print(f"[yellow]left out {skipped} samples of classes the run does not know[/]")
    console.print(f"wrote {out}", highlight=False, soft_wrap=True)
