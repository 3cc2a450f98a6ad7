"""Reading the run store: ``slr runs``, ``slr show``, ``slr compare`` and ``slr thresholds``
(which may also write a run's threshold.json). numpy/scikit-learn at most, no torch."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.panel import Panel

from engine import runs
from slr_tui import tables
from slr_tui.cli.options import JsonOpt, RunArg, RunsDirOpt, run_ref, runs_root
from slr_tui.cli.render import console, fail

MIN_THRESHOLD_STEP = 0.001  # 1001 thresholds at most


def list_runs(
    runs_dir: RunsDirOpt = None,
    as_json: JsonOpt = False,
    filter_text: Annotated[
        str | None,
        typer.Option(
            "--filter",
            "-f",
            metavar="EXPR",
            help="Keep runs that match every term: text, tag:T, preset:wlasl*, status:S, "
            "model:M, val_acc>0.5, test_acc>=0.8, epoch<10, !TERM, archived "
            "(as `/` on the runs screen).",
        ),
    ] = None,
    archived: Annotated[
        bool, typer.Option("--archived", help="Also list archived runs (RUNS/archive/).")
    ] = False,
) -> None:
    """List runs, newest first (archived and deleted runs left out).

    --filter takes the runs screen's filter: plain words match the id, status, preset,
    dataset or tags; KEY:PATTERN matches with wildcards; NAME>NUMBER compares a figure."""
    from slr_tui import filters

    try:
        flt = filters.parse(filter_text or "")
    except filters.FilterError as exc:
        raise fail(f"--filter: {exc}") from None
    root = runs_root(runs_dir)
    items = runs.list_runs(root, archived=archived or bool(flt and flt.wants_archived))
    if flt is not None:
        items = [r for r in items if flt(_filter_fields(r, filters))]
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {**r.meta, "status": r.status, "path": str(r.path), "tags": r.tags}
                    for r in items
                ],
                indent=2,
                default=str,
            )
        )
        return
    if not items:
        if flt is not None:
            console.print(f"no run under {root} matches '{filter_text}'", highlight=False)
            return
        console.print(f"no runs under {root} (start one with `slr run --preset demo`)")
        return
    console.print(tables.runs_table(items))


def _filter_fields(r: runs.RunInfo, filters) -> dict:
    """What the filter reads of a run (its config.json only for lr, batch and model)."""
    notes = r.notes if r.notes is not None else runs.read_notes(r.path)
    row = filters.run_fields(
        r.meta,
        status=r.status,
        config=r.config(),
        tags=notes["tags"],
        note=notes["note"],
        duration=r.duration_s,
    )
    row["archived"] = r.archived
    return row


def show(
    ref: RunArg,
    runs_dir: RunsDirOpt = None,
    all_classes: Annotated[
        bool,
        typer.Option("--all", help="Every class (or translation), not just the first 15 (10)."),
    ] = False,
    split: Annotated[
        str, typer.Option("--split", help="Split for the per-class (or translations) table.")
    ] = "test",
) -> None:
    """A run's summary, epochs, results and per-class table (worst first).

    Also: grouped metrics (per sample vs per group, where the data has groups), the best
    thresholds, its `slr eval` folders (eval-NAME/), and for a translation run BLEU/chrF/WER
    (greedy and beam) with some of its translations."""
    from engine import evaluate  # numpy only

    if split not in ("val", "test"):
        raise fail(f"--split must be val or test, not '{split}'")
    r = run_ref(ref, runs_dir)
    m = r.meta
    monitor = str(m.get("monitor", "val_acc"))
    lines = [
        f"status      {r.status}" + (f"  ({m.get('stop_reason')})" if m.get("stop_reason") else ""),
        f"preset      {r.preset}    dataset {r.dataset}    model {r.config().get('model', {}).get('name', '-')}",
        f"epoch       {r.epoch}/{r.max_epochs}    best {monitor} {tables.fmt(r.best_metric, tables.figure_digits(monitor))} (epoch {m.get('best_epoch', '-')})",
        f"started     {tables.when(r.started)}    duration {runs.format_duration(r.duration_s)}    device {m.get('device', '-')} x{m.get('world_size', 1)}",
        f"folder      {r.path}",
        f"again       {_rerun(r)}",
    ]
    notes = runs.read_notes(r.path)
    if notes["tags"]:
        lines.append(f"tags        {' '.join(notes['tags'])}")
    if notes["note"]:
        lines.append(f"note        {escape(notes['note'])}")
    if m.get("error"):
        lines.append(f"[red]error       {m['error']}[/]")
    console.print(Panel("\n".join(lines), title=r.id, expand=False))
    rows = r.metrics()
    if any(x.get("kind") == "epoch" for x in rows):
        console.print(tables.epochs_table(rows))
    report = r.report()
    if not report:
        console.print("no evaluation yet (eval/ is written when the run finishes)")
        _show_eval_folders(r)
        return
    console.print(tables.results_table(report))
    if report.get("task") == "translation":
        _show_translations(r, split, all_classes)
        return
    grouped = tables.grouped_table(report, "grouped metrics (per sample vs per group)")
    if grouped is not None:
        console.print(grouped)
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
    _show_eval_folders(r)


def _rerun(r: runs.RunInfo) -> str:
    """The command line that trains the run's config again (--runs-dir when not default)."""
    from slr_tui.filters import rerun_command

    root = r.path.parent  # where the run is (an explicit path may be outside the store)
    if root.name in (runs.ARCHIVE_DIR, runs.TRASH_DIR):
        root = root.parent
    return escape(rerun_command(r.path, root, runs_root(None)))


def _show_eval_folders(r: runs.RunInfo) -> None:
    """The run's `slr eval` results (eval-NAME/ folders), each with its headline figure."""
    from engine.evaluate import EVAL_PREFIX, REPORT_FILE

    try:
        folders = sorted(
            p for p in r.path.iterdir() if p.is_dir() and p.name.startswith(EVAL_PREFIX)
        )
    except OSError:
        return
    if not folders:
        return
    console.print(f"other evaluations ({len(folders)}, `slr eval`):")
    for p in folders:
        report = runs.clean_report(runs.read_json(p / REPORT_FILE))
        console.print(
            tables.eval_folder_line(p.name[len(EVAL_PREFIX) :], report),
            highlight=False,
            soft_wrap=True,
        )


SHOWN_TRANSLATIONS = 10


def _show_translations(r: runs.RunInfo, split: str, everything: bool) -> None:
    """Some of eval/translations.csv (test, else val): reference beside hypothesis."""
    eval_dir = r.path / runs.EVAL_DIR
    rows, why = runs.read_translations(eval_dir, split)
    if not rows and why is None and split == "test":
        split = "val"
        rows, why = runs.read_translations(eval_dir, split)
    if why is not None and why != "missing":
        console.print(f"[yellow]translations: {why}[/]")
    if rows:
        shown = rows if everything else rows[:SHOWN_TRANSLATIONS]
        console.print(tables.translations_table(shown, len(rows), split))


def _study_top(name: str, runs_dir, top: int) -> list[runs.RunInfo] | None:
    """The best ``top`` runs tagged with study (or sweep) ``name``, by their best monitored
    figure; None when no run is."""
    members = [
        r
        for r in runs.list_runs(runs_root(runs_dir))
        if name in (r.meta.get("study"), r.meta.get("sweep"))
    ]
    if not members:
        return None
    scored = [r for r in members if isinstance(r.best_metric, (int, float))]

    def key(r: runs.RunInfo) -> float:
        v = float(r.best_metric)  # type: ignore[arg-type]
        return v if r.meta.get("monitor_mode") == "min" else -v

    return sorted(scored, key=key)[:top]


def compare(
    refs: Annotated[
        list[str],
        typer.Argument(
            metavar="RUN... | STUDY",
            help="Two or more runs, or a study (or sweep) name: its top --top trials.",
        ),
    ],
    runs_dir: RunsDirOpt = None,
    top: Annotated[
        int, typer.Option("--top", min=2, help="With a study: how many of its best trials.")
    ] = 5,
) -> None:
    """Runs side by side: summary metrics (best marked) and only the config keys that differ.

    Given one name that is a study (`slr sweep --search optuna --study NAME`) or a sweep
    id, compares its --top best trials (by their best monitored figure)."""
    study_runs = _study_top(refs[0], runs_dir, top) if len(refs) == 1 else None
    if study_runs is not None:
        if len(study_runs) < 2:
            raise fail(f"study {refs[0]} has fewer than 2 runs with a figure to compare")
        items = study_runs
        console.print(f"study {refs[0]}: top {len(items)} trials", highlight=False)
    elif len(refs) < 2:
        raise fail("give two or more runs to compare, or a study name")
    else:
        items = [run_ref(x, runs_dir) for x in refs]
    console.print(tables.compare_table(items))
    diff = tables.config_diff(items)
    if diff:
        console.print(tables.config_diff_table(items))
    else:
        console.print("the runs' configs are identical")


def thresholds(
    ref: RunArg,
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
    r = run_ref(ref, runs_dir)
    if r.task() == "translation":
        raise fail(
            f"run {r.id} is a translation run: thresholds are for classification runs "
            "(see its BLEU/chrF/WER with `slr show`)"
        )
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
            raise fail(runs.os_error_line(exc, r.path / runs.THRESHOLD_JSON)) from None
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
