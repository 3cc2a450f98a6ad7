"""Rich tables for runs, results, grouped metrics, `slr eval` summaries, per-class figures,
comparisons, threshold sweeps, sweeps, dataset checks, predictions, landmark extractions,
ONNX exports and metric checks.

Pure functions of what ``engine.runs`` reads and of the JSON the engine's jobs write; the
CLI prints them (the TUI has its own widgets). No torch here.
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from engine import runs

if TYPE_CHECKING:
    from slr_tui.sweep import Sweep

SHOWN_FAILURES = 10

STATUS_STYLE = {
    "running": "bold cyan",
    "starting": "cyan",
    "finished": "green",
    "failed": "bold red",
    "stopped": "yellow",
    "pruned": "dark_orange",  # stopped early by a search's pruner (last.pt kept)
    "lost": "magenta",
    "unreadable": "bold magenta",
}

RESULT_ROWS = [
    ("accuracy", "top-1 accuracy"),
    ("top5_accuracy", "top-5 accuracy"),
    ("top10_accuracy", "top-10 accuracy"),
    ("per_class_accuracy", "per-class accuracy (mean)"),
    ("macro_precision", "macro precision"),
    ("macro_recall", "macro recall"),
    ("macro_f1", "macro F1"),
    ("weighted_f1", "weighted F1"),
    ("roc_auc", "ROC-AUC"),
    ("pr_auc", "PR-AUC"),
    ("nll", "loss (NLL)"),
    ("num_samples", "samples"),
]


# translation runs: the figures of a split (report.json's val/test and beam), headline first
TRANSLATION_RESULT_ROWS = [
    ("bleu4", "BLEU-4"),
    ("bleu1", "BLEU-1"),
    ("bleu2", "BLEU-2"),
    ("bleu3", "BLEU-3"),
    ("chrf", "chrF"),
    ("wer", "WER (lower is better)"),
    ("token_accuracy", "token accuracy"),
    ("nll", "loss (NLL)"),
    ("num_samples", "samples"),
]
# digits a translation figure is shown with: BLEU and chrF are on sacrebleu's 0..100 scale
FIGURE_DIGITS = {
    "bleu1": 2,
    "bleu2": 2,
    "bleu3": 2,
    "bleu4": 2,
    "chrf": 2,
    "wer": 3,
    "token_accuracy": 3,
}
# a monitored epoch-row figure, as the runs list labels its best value
MONITOR_LABELS = {
    "val_acc": "acc",
    "val_loss": "loss",
    "val_bleu1": "BLEU-1",
    "val_bleu2": "BLEU-2",
    "val_bleu3": "BLEU-3",
    "val_bleu4": "BLEU-4",
    "val_chrf": "chrF",
    "val_wer": "WER",
    "val_token_acc": "tok acc",
    "val_macro_f1": "F1",
    "val_per_class_acc": "class acc",
    "val_top5": "top-5",
}


def figure_label(figure: str) -> str:
    """A monitored figure's short name (``acc``, ``F1``, ``BLEU-4``, ``loss``)."""
    return MONITOR_LABELS.get(figure) or figure.removeprefix("val_")


def figure_digits(key: str) -> int:
    """Digits for a split figure or an epoch-row key (``val_bleu4`` as ``bleu4``)."""
    return FIGURE_DIGITS.get(key.removeprefix("val_").removeprefix("train_"), 4)


def best_of(info: runs.RunInfo) -> tuple[float | None, str]:
    """The runs list's "best" value: the chosen checkpoint's (best.pt) figure, run.json's
    ``best_metric``, and the figure it is (``monitor``). Not the best val accuracy of any
    epoch: a run that monitors F1 or BLEU picks its checkpoint by that."""
    mon = info.meta.get("monitor")
    if not isinstance(mon, str):
        mon = "val_loss" if info.translation else "val_acc"
    best = info.best_metric
    return (best if isinstance(best, (int, float)) and not isinstance(best, bool) else None), mon


def best_text(value: float | None, figure: str | None, labelled: bool) -> str:
    """A "best" cell: the bare number, or (``labelled``: in a list that holds translation
    runs) the number and what it is (``12.34 BLEU-4``, ``5.6497 loss``, ``0.9500 acc``)."""
    if not labelled:
        return fmt(value)
    if value is None:
        return "-"
    figure = figure or "val_acc"
    return f"{fmt(value, figure_digits(figure))} {figure_label(figure)}"


def fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def when(ts: float | None) -> str:
    if not ts:
        return "-"
    return _dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def runs_table(items: list[runs.RunInfo]) -> Table:
    t = Table(title=None, header_style="bold")
    # with a translation run in the list, each best value says what it is
    figures = {best_of(r)[1] for r in items}
    labelled = len(figures) > 1 or any(r.translation for r in items)
    only = next(iter(figures)) if len(figures) == 1 else "val_acc"
    best_col = "best" if labelled else f"best val {figure_label(only).removeprefix('val ')}"
    for col in (
        "id",
        "status",
        "preset",
        "dataset",
        "epoch",
        best_col,
        "started",
        "duration",
    ):
        t.add_column(
            col,
            justify="right" if col in ("epoch", best_col, "duration") else "left",
            no_wrap=col in ("id", "status"),
        )
    tagged = any(r.tags for r in items)  # notes.json (slr tag): a column only when used
    if tagged:
        t.add_column("tags")
    unreadable = []
    for r in items:
        epoch = f"{r.epoch}/{r.max_epochs}" if r.max_epochs else str(r.epoch)
        best, figure = best_of(r)
        if r.problem:
            unreadable.append(f"{r.id}: {r.problem}")
        t.add_row(
            r.id,
            status_text(r.status),
            r.preset,
            r.dataset,
            epoch,
            best_text(best, figure, labelled),
            when(r.started),
            runs.format_duration(r.duration_s),
            *([" ".join(r.tags)] if tagged else []),
        )
    if unreadable:  # each bad run is its own row; why it is unreadable goes underneath
        t.caption = "\n".join(f"unreadable: {u}" for u in unreadable)
        t.caption_justify = "left"
    return t


def results_table(report: dict[str, Any], title: str = "results (best checkpoint)") -> Table:
    if report.get("task") == "translation":
        return translation_results_table(report, title)
    splits = [s for s in ("val", "test") if isinstance(report.get(s), dict)]
    t = Table(title=title, header_style="bold")
    t.add_column("metric")
    for s in splits:
        t.add_column(s, justify="right")
    n_classes = report.get("num_classes")
    n_classes = n_classes if type(n_classes) is int else 0
    for key, label in RESULT_ROWS:
        k = {"top5_accuracy": 5, "top10_accuracy": 10}.get(key)
        if k is not None and n_classes and k >= n_classes:
            continue  # always 1.0: says nothing
        values = [report[s].get(key) for s in splits]
        if all(v is None for v in values):
            continue
        t.add_row(label, *(fmt(v) for v in values))
    return t


def translation_columns(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(header, figures) per split and decoding of a translation report: greedy, then
    beam search where the run did it (``val greedy``, ``val beam 4``, ``test greedy``...)."""
    beam = report.get("beam") if isinstance(report.get("beam"), dict) else {}
    width = report.get("num_beams")
    cols: list[tuple[str, dict[str, Any]]] = []
    for s in ("val", "test"):
        if isinstance(report.get(s), dict):
            cols.append((f"{s} greedy", report[s]))
        if isinstance(beam.get(s), dict):
            n = beam[s].get("num_beams") or width
            cols.append((f"{s} beam {n}" if isinstance(n, int) else f"{s} beam", beam[s]))
    return cols


def translation_results_table(
    report: dict[str, Any], title: str = "results (best checkpoint)"
) -> Table:
    """A translation run's eval/report.json: BLEU-4 first, BLEU-1..3, chrF, WER, token
    accuracy and loss, per split, greedy beside beam search."""
    cols = translation_columns(report)
    t = Table(title=title, header_style="bold")
    t.add_column("metric")
    for header, _ in cols:
        t.add_column(header, justify="right")
    for key, label in TRANSLATION_RESULT_ROWS:
        values = [figs.get(key) for _, figs in cols]
        if all(v is None for v in values):
            continue
        t.add_row(label, *(fmt(v, figure_digits(key)) for v in values))
    return t


def translations_table(rows: list[dict[str, str]], total: int, split: str) -> Table:
    """A few of eval/translations.csv: reference beside what the model wrote (greedy, and
    beam search when the run did it)."""
    beam = any(r.get("hypothesis_beam") for r in rows)
    title = f"translations ({split})" + (f", {len(rows)} of {total}" if len(rows) < total else "")
    t = Table(title=title, header_style="bold")
    t.add_column("id", no_wrap=True)
    t.add_column("reference")
    t.add_column("hypothesis (greedy)")
    if beam:
        t.add_column("hypothesis (beam)")
    for r in rows:
        cells = [r.get("id") or "", r.get("reference") or "", r.get("hypothesis") or ""]
        if beam:
            cells.append(r.get("hypothesis_beam") or "")
        t.add_row(*(Text(c) for c in cells))
    return t


def per_class_table(rows: list[dict[str, Any]], limit: int | None = 15) -> Table:
    """Rows sorted worst first (lowest accuracy, then lowest F1, then most support)."""
    rows = sorted(rows, key=lambda r: (r["accuracy"], r["f1"], -r["support"]))
    shown = rows if limit is None else rows[:limit]
    title = "per-class (worst first)" + (
        f", {len(shown)} of {len(rows)}" if len(shown) < len(rows) else ""
    )
    t = Table(title=title, header_style="bold")
    for col in ("class", "support", "accuracy", "precision", "recall", "F1"):
        t.add_column(col, justify="left" if col == "class" else "right")
    for r in shown:
        t.add_row(
            str(r["class"]),
            str(int(r["support"])),
            fmt(r["accuracy"], 3),
            fmt(r["precision"], 3),
            fmt(r["recall"], 3),
            fmt(r["f1"], 3),
        )
    return t


# a translation run's epoch rows: no accuracy, BLEU/chrF/WER and token accuracy instead
TRANSLATION_EPOCH_COLS = [
    ("epoch", "epoch", 0),
    ("train_loss", "train loss", 4),
    ("val_loss", "val loss", 4),
    ("val_token_acc", "tok acc", 3),
    ("val_bleu4", "BLEU-4", 2),
    ("val_chrf", "chrF", 2),
    ("val_wer", "WER", 3),
    ("lr", "lr", 0),
    ("epoch_time_s", "time s", 1),
]


def epochs_table(rows: list[dict[str, Any]], limit: int = 10) -> Table:
    rows = list(runs.iter_epochs(rows))
    shown = rows[-limit:]
    t = Table(title=f"epochs (last {len(shown)} of {len(rows)})", header_style="bold")
    cols = [
        ("epoch", "epoch", 0),
        ("train_loss", "train loss", 4),
        ("val_loss", "val loss", 4),
        ("val_acc", "val acc", 4),
        ("val_top5", "val top-5", 4),
        ("lr", "lr", 0),
        ("epoch_time_s", "time s", 1),
    ]
    if any("val_blank_share" in r for r in shown):  # CTC runs: a collapse shows here
        cols.insert(5, ("val_blank_share", "blank share", 3))
    if any(r.get(k) is not None for r in shown for k in runs.TRANSLATION_ROW_KEYS):
        cols = TRANSLATION_EPOCH_COLS
    for _, label, _ in cols:
        t.add_column(label, justify="right")
    for r in shown:
        cells = []
        for key, _, digits in cols:
            v = r.get(key)
            if key == "lr" and isinstance(v, (int, float)):
                cells.append(f"{v:.2e}")
            elif key == "epoch":
                cells.append(str(v) + (" *" if r.get("best") else ""))
            else:
                cells.append(fmt(v, digits) if isinstance(v, float) else fmt(v))
        t.add_row(*cells)
    return t


def threshold_table(rows: list[dict[str, Any]], task: str, mark: float | None = None) -> Table:
    t = Table(header_style="bold")
    cols = ["threshold", "precision", "recall", "F1", "accuracy"]
    if task != "binary":
        cols += ["coverage", "accepted"]
    for c in cols:
        t.add_column(c, justify="right")
    for r in rows:
        style = "bold green" if mark is not None and abs(r["threshold"] - mark) < 1e-9 else None
        cells = [
            f"{r['threshold']:.2f}",
            fmt(r.get("precision"), 3),
            fmt(r.get("recall"), 3),
            fmt(r.get("f1"), 3),
            fmt(r.get("accuracy"), 3),
        ]
        if task != "binary":
            cells += [fmt(r.get("coverage"), 3), fmt(r.get("accepted"))]
        t.add_row(*cells, style=style)
    return t


COMPARE_ROWS = [
    ("val", "accuracy", "val accuracy", "max"),
    ("val", "top5_accuracy", "val top-5", "max"),
    ("val", "per_class_accuracy", "val per-class acc", "max"),
    ("val", "macro_f1", "val macro F1", "max"),
    ("test", "accuracy", "test accuracy", "max"),
    ("test", "top5_accuracy", "test top-5", "max"),
    ("test", "per_class_accuracy", "test per-class acc", "max"),
    ("test", "macro_f1", "test macro F1", "max"),
    ("test", "roc_auc", "test ROC-AUC", "max"),
    ("val", "nll", "val loss", "min"),
]


# translation runs' figures (report.json: val/test greedy, beam -> val/test), before the
# val loss row; a split "beam.val" is report["beam"]["val"]
TRANSLATION_COMPARE_ROWS = [
    ("val", "bleu4", "val BLEU-4", "max"),
    ("val", "bleu1", "val BLEU-1", "max"),
    ("val", "chrf", "val chrF", "max"),
    ("val", "wer", "val WER", "min"),
    ("val", "token_accuracy", "val token acc", "max"),
    ("beam.val", "bleu4", "val BLEU-4 (beam)", "max"),
    ("test", "bleu4", "test BLEU-4", "max"),
    ("test", "chrf", "test chrF", "max"),
    ("test", "wer", "test WER", "min"),
    ("beam.test", "bleu4", "test BLEU-4 (beam)", "max"),
    ("beam.test", "chrf", "test chrF (beam)", "max"),
    ("beam.test", "wer", "test WER (beam)", "min"),
]


def _split_of(rep: dict[str, Any], split: str) -> dict[str, Any]:
    where: Any = rep
    for part in split.split("."):
        where = where.get(part) if isinstance(where, dict) else None
    return where if isinstance(where, dict) else {}


def compare_rows(items: list[runs.RunInfo]) -> list[tuple[str, list[Any], str]]:
    """(label, values per run, best direction) for the summary metrics (a translation
    run's BLEU/chrF/WER rows only when one of the runs has them)."""
    reports = [r.report() or {} for r in items]
    out: list[tuple[str, list[Any], str]] = []
    specs = [*COMPARE_ROWS[:-1], *TRANSLATION_COMPARE_ROWS, COMPARE_ROWS[-1]]
    for split, key, label, mode in specs:
        vals = [_split_of(rep, split).get(key) for rep in reports]
        classes = [_split_of(rep, split).get("num_classes") for rep in reports]
        if key == "top5_accuracy" and all(isinstance(c, int) and c <= 5 for c in classes):
            continue  # with 5 classes or fewer top-5 is 1.0 for every run: it tells nothing
        if any(v is not None for v in vals):
            out.append((label, vals, mode))
    out.append(("best epoch", [r.meta.get("best_epoch") for r in items], ""))
    out.append(("epochs run", [r.epoch for r in items], ""))
    out.append(("duration", [r.duration_s for r in items], "min"))
    return out


def config_diff(items: list[runs.RunInfo]) -> list[tuple[str, list[Any]]]:
    """Only the config keys whose values differ between the runs."""
    from engine.config import flatten  # lazily: building the config models costs ~60 ms

    flats = [flatten(r.config()) for r in items]
    keys = sorted(set().union(*flats)) if flats else []
    out = []
    for k in keys:
        vals = [f.get(k) for f in flats]
        if any(v != vals[0] for v in vals[1:]):
            out.append((k, vals))
    return out


def compare_table(items: list[runs.RunInfo]) -> Table:
    t = Table(title="comparison (best of each row in green)", header_style="bold")
    t.add_column("metric")
    for r in items:
        t.add_column(r.id, justify="right")
    for label, vals, mode in compare_rows(items):
        numeric = [v for v in vals if isinstance(v, (int, float))]
        best = (max(numeric) if mode == "max" else min(numeric)) if numeric and mode else None
        cells = []
        digits = 2 if ("BLEU" in label or "chrF" in label) else 4
        for v in vals:
            s = runs.format_duration(v) if label == "duration" else fmt(v, digits)
            if best is not None and v == best and len(numeric) > 1:
                cells.append(Text(s + " *", style="bold green"))
            else:
                cells.append(Text(s))
        t.add_row(label, *cells)
    return t


def config_diff_table(items: list[runs.RunInfo]) -> Table:
    t = Table(title="config keys that differ", header_style="bold")
    t.add_column("key")
    for r in items:
        t.add_column(r.id)
    for key, vals in config_diff(items):
        t.add_row(key, *(fmt(v) for v in vals))
    return t


def data_check_tables(report: dict[str, Any]):
    """`slr data check`: counts per split, then the class statistics."""
    from rich.console import Group

    t = Table(
        title=f"{report.get('source', 'data')}: {report.get('root', '')}".rstrip(": "),
        header_style="bold",
    )
    cols = ["listed", "present", "missing", "unreadable"]
    streams = report.get("streams")
    if isinstance(streams, list):  # translation: a sample may lack a stream or a sentence
        cols += ["no_text", *(f"no {s}" for s in streams)]
    for col in ("split", *cols):
        t.add_column(col.replace("_", " "), justify="left" if col == "split" else "right")
    for split in ("train", "val", "test"):
        row = report.get(split) or {}
        lacking = row.get("missing_streams") if isinstance(row.get("missing_streams"), dict) else {}
        t.add_row(
            split,
            *(fmt(lacking.get(k[3:], 0) if k.startswith("no ") else row.get(k)) for k in cols),
        )
    if isinstance(streams, list):
        sources = report.get("stream_sources") or {}
        where = ", ".join(f"{s} ({sources.get(s, '?')})" for s in streams)
        lines = [f"sentences: {report.get('sentences')}; streams: {where}"]
        return Group(t, *lines)
    c = report.get("classes") or {}
    lines = [f"classes: {report.get('num_classes')}"]
    if c:
        lines.append(
            f"training videos per class: min {fmt(c.get('per_class_min'))}, "
            f"mean {fmt(c.get('per_class_mean'), 1)}, max {fmt(c.get('per_class_max'))}; "
            f"imbalance ratio (max/min) {fmt(c.get('imbalance_ratio'), 1)}:1"
        )
        missing = c.get("without_train") or []
        if missing:
            shown = ", ".join(missing[:20]) + (" ..." if len(missing) > 20 else "")
            lines.append(f"[yellow]classes with no training video ({len(missing)}): {shown}[/]")
        else:
            lines.append("every class has training videos")
    return Group(t, *lines)


def calibration_table(cal: dict[str, Any]) -> Table:
    """Binary tasks: figures at the default threshold beside the calibrated one."""
    t = Table(
        title=f"decision threshold, calibrated on val ({cal.get('rule', '?')})", header_style="bold"
    )
    for col in ("split", "threshold", "precision", "recall", "F1", "accuracy"):
        t.add_column(col, justify="left" if col in ("split", "threshold") else "right")
    for split in ("val", "test"):
        row = cal.get(split)
        if not isinstance(row, dict):
            continue
        for kind, value in (
            ("default", cal.get("default_threshold")),
            ("calibrated", cal.get("threshold")),
        ):
            r = row.get(kind)
            if not isinstance(r, dict) or not isinstance(value, (int, float)):
                continue
            t.add_row(
                split,
                f"{value:.2f} ({kind})",
                *(fmt(r.get(k), 3) for k in ("precision", "recall", "f1", "accuracy")),
                style="bold" if kind == "calibrated" else None,
            )
    return t


def sweep_table(s: Sweep) -> Table:
    """A sweep while it runs: each member's parameters, run, status, epoch and best."""
    t = Table(header_style="bold")
    for col in ("#", "params", "run", "status", "epoch", "best"):
        t.add_column(col)
    for i, m in enumerate(s.members, 1):
        info = runs.load_run(m.run_dir) if m.run_dir else None
        t.add_row(
            str(i),
            "  ".join(m.sets),
            info.id if info else "-",
            status_text(info.status) if info else "pending",
            f"{info.epoch}/{info.max_epochs}" if info else "-",
            fmt(info.best_metric) if info else "-",
        )
    return t


def sweep_ranked_table(sweep_id: str, ranked: list[runs.RunInfo]) -> Table:
    """A finished sweep's runs, best monitored metric first."""
    monitor = ranked[0].meta.get("monitor", "val_acc") if ranked else "val_acc"
    t = Table(title=f"sweep {sweep_id}: ranked by best {monitor}", header_style="bold")
    for col in ("rank", "run", "params", "status", "best", "test acc"):
        t.add_column(col)
    for i, r in enumerate(ranked, 1):
        params = "  ".join(f"{k}={v}" for k, v in (r.meta.get("sweep_params") or {}).items())
        test_acc = ((r.meta.get("results") or {}).get("test") or {}).get("accuracy")
        t.add_row(str(i), r.id, params, status_text(r.status), fmt(r.best_metric), fmt(test_acc))
    return t


def prediction_table(res: dict[str, Any]) -> Table:
    """`slr predict`: one recording's label and confidence per window."""
    t = Table(title=f"{res['file']}: per window", header_style="bold")
    for col in ("frames", "label", "confidence"):
        t.add_column(col, justify="right" if col != "label" else "left")
    for w in res["windows"]:
        t.add_row(f"{w['start']}-{w['end']}", w["label"], f"{w['confidence']:.3f}")
    return t


def prediction_line(res: dict[str, Any]) -> str:
    """`slr predict`: one recording's overall label, its mean probability and the votes."""
    o = res["overall"]
    votes = ", ".join(f"{k} {v}" for k, v in o["votes"].items())
    return (
        f"[bold]{res['file']}: {o['label']}[/] (mean probability {o['confidence']:.3f}; "
        f"{votes} windows)"
    )


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 video``, ``2 videos``; ``many`` for an irregular plural."""
    return f"{count} {noun if count == 1 else many or noun + 's'}"


def extract_plan_line(plan: dict[str, Any]) -> str:
    """`slr extract`: what this extraction will do, before it starts."""
    return (
        f"{plural(plan['selected'], 'video')} of {plural(plan['classes'], 'class', 'classes')} "
        f"selected ({plan['skipped']} already in the cache, {plan['todo']} to extract "
        f"with {plural(plan['workers'], 'worker')}); "
        f"{plan['missing']} missing, {plan['unreadable']} unreadable"
    )


def extract_summary_table(s: dict[str, Any]) -> Table:
    """`slr extract`: the figures of one extraction run."""
    kind = "ROI cache" if s.get("cache") == "rois" else "landmark cache"
    size = f" ({s['roi_size']} px crops)" if s.get("roi_size") else ""
    t = Table(title=f"{kind} {s['out']}{size}", header_style="bold", show_header=False)
    t.add_column("what", style="bold")
    t.add_column("value")
    t.add_row(
        "videos",
        f"{s['selected']} selected of {s['listed']} listed, "
        f"{plural(s['classes'], 'class', 'classes')}",
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
        f"({plural(s['workers'], 'worker')})",
    )
    rates = "  ".join(
        f"{part} {'-' if r is None else f'{100 * r:.0f}%'}" for part, r in s["detection"].items()
    )
    t.add_row("found" if s.get("cache") == "rois" else "detected", rates)
    t.add_row("in the cache", f"{s['manifest_rows']} videos (manifest.csv)")
    return t


def extract_failures_table(failures: list[dict[str, Any]]) -> Table:
    """`slr extract`: the videos that failed and why (the first :data:`SHOWN_FAILURES`)."""
    t = Table(title=f"failures ({len(failures)})", header_style="bold")
    t.add_column("id")
    t.add_column("reason")
    for f in failures[:SHOWN_FAILURES]:
        t.add_row(f["id"], f["reason"] or "")
    if len(failures) > SHOWN_FAILURES:
        t.add_row("...", f"{len(failures) - SHOWN_FAILURES} more")
    return t


def export_table(res: dict[str, Any]) -> Table:
    """`slr export`: onnxruntime against PyTorch, one row per batch compared."""
    t = Table(title=f"{res['run']}: ONNX ({res['exporter']}) vs PyTorch", header_style="bold")
    for col in ("samples from", "dynamic axes", "max abs diff", "output scale"):
        t.add_column(col, justify="left" if col in ("samples from", "dynamic axes") else "right")
    for c in res.get("checks", []):
        sizes = "  ".join(f"{axis} {n}" for axis, n in (c.get("sizes") or {}).items())
        t.add_row(c["split"], sizes, f"{c['max_abs_diff']:.3g}", f"{c['scale']:.3g}")
    return t


def export_lines(res: dict[str, Any]) -> list[str]:
    """`slr export`: what was written (its axes) and the verdict, the max abs difference."""
    graph = res.get("graph") or {}

    def sig(items: list[list[Any]]) -> str:
        return escape(", ".join(f"{name}[{', '.join(map(str, dims))}]" for name, dims in items))

    size = res.get("size_bytes")
    kb = f"{size / 1024:.0f} KB, " if isinstance(size, int) else ""
    lines = [
        f"wrote {res['onnx']} ({res['exported']} of {res['model']}, {kb}opset {res['opset']})",
        f"  {sig(graph.get('inputs', []))} -> {sig(graph.get('outputs', []))}",
    ]
    for t in res.get("tried", []):
        if t["exporter"] != res["exporter"] and t.get("error"):
            lines.append(escape(f"  {t['exporter']} exporter: {t['error']}"))
    diff = res.get("max_abs_diff")
    if diff is None:
        lines.append(f"[bold red]the ONNX graph does not run:[/] {escape(str(res.get('error')))}")
    else:
        verdict = "[green]ok[/]" if res["ok"] else "[bold red]OUT of tolerance[/]"
        lines.append(
            f"max abs difference {diff:.3g} (tolerance {res['limit']:.3g} = atol "
            f"{res['atol']:g} x max(1, output scale {res['scale']:.3g})): {verdict}"
        )
    return lines


def metrics_check_table(run_id: str, rows: list[dict[str, Any]]) -> Table:
    """`slr check-metrics`: each reference metric, its bounds, the run's value, ok/OUT."""
    t = Table(title=f"{run_id}: metrics against the reference", header_style="bold")
    for col in ("metric", "reference", "tolerance", "actual", "result"):
        t.add_column(col, justify="left" if col in ("metric", "result") else "right")
    for r in rows:
        bounds = []
        if r.get("value") is not None:
            bounds.append(fmt(float(r["value"])))
        if r.get("min") is not None:
            bounds.append(f">= {fmt(float(r['min']))}")
        if r.get("max") is not None:
            bounds.append(f"<= {fmt(float(r['max']))}")
        tol = r.get("tolerance")
        tol_text = f"± {fmt(float(tol))}" if r.get("value") is not None else "-"
        actual = r.get("actual")
        if r["ok"]:
            result = Text("ok", style="green")
        else:
            result = Text("OUT" if actual is not None else "missing", style="bold red")
            if r.get("why"):
                result.append(f"  {r['why']}", style="red")
        t.add_row(
            r["metric"],
            ", ".join(bounds),
            tol_text,
            "-" if actual is None else fmt(float(actual)),
            result,
        )
    return t


# --------------------------------------------------------------------------- slr eval, groups

#: the headline figures of `slr eval`'s summary and of the grouped table
EVAL_SUMMARY_ROWS = [
    ("accuracy", "accuracy"),
    ("top5_accuracy", "top-5 accuracy"),
    ("macro_precision", "macro precision"),
    ("macro_recall", "macro recall"),
    ("macro_f1", "macro F1"),
    ("weighted_precision", "weighted precision"),
    ("weighted_recall", "weighted recall"),
    ("weighted_f1", "weighted F1"),
    ("roc_auc", "ROC-AUC"),
    ("num_samples", "samples"),
]
GROUPED_COLS = [
    ("accuracy", "acc"),
    ("top5_accuracy", "top-5"),
    ("macro_precision", "P"),
    ("macro_recall", "R"),
    ("macro_f1", "F1"),
    ("weighted_f1", "wF1"),
    ("roc_auc", "AUC"),
]


def weighted_pr(per_class: list[dict[str, Any]]) -> tuple[float | None, float | None]:
    """Support-weighted precision and recall from per_class.csv rows (as scikit-learn's
    ``average="weighted"``); None without samples."""
    total = sum(int(r.get("support") or 0) for r in per_class)
    if not total:
        return None, None
    p = sum((r.get("precision") or 0.0) * int(r.get("support") or 0) for r in per_class)
    r_ = sum((r.get("recall") or 0.0) * int(r.get("support") or 0) for r in per_class)
    return p / total, r_ / total


def report_splits(report: dict[str, Any]) -> list[str]:
    """The splits a report holds figures for, in train, val, test order."""
    return [s for s in ("train", "val", "test") if isinstance(report.get(s), dict)]


def eval_summary_table(
    report: dict[str, Any], per_class: dict[str, list[dict[str, Any]]], title: str
) -> Table:
    """`slr eval`: accuracy, top-5, macro and weighted precision/recall/F1 per split
    (weighted precision and recall from ``per_class``: split -> per_class.csv rows)."""
    splits = report_splits(report)
    t = Table(title=title, header_style="bold")
    t.add_column("metric")
    for s in splits:
        t.add_column(s, justify="right")
    n_classes = report.get("num_classes") if type(report.get("num_classes")) is int else 0
    figures = {}
    for s in splits:
        wp, wr = weighted_pr(per_class.get(s, []))
        figures[s] = {**report[s], "weighted_precision": wp, "weighted_recall": wr}
    for key, label in EVAL_SUMMARY_ROWS:
        if key == "top5_accuracy" and n_classes and n_classes <= 5:
            continue  # always 1.0: says nothing
        values = [figures[s].get(key) for s in splits]
        if all(v is None for v in values):
            continue
        t.add_row(label, *(fmt(v) for v in values))
    return t


def grouped_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Per split with grouped metrics, two rows: per sample (report[split]) and per group
    (report["grouped"][split]["summary"]); each ``{"split", "level", "count", figures...}``."""
    grouped = report.get("grouped") if isinstance(report.get("grouped"), dict) else {}
    rows = []
    for s in ("train", "val", "test"):
        g = grouped.get(s)
        if not isinstance(g, dict) or not isinstance(g.get("summary"), dict):
            continue
        sample = report.get(s) if isinstance(report.get(s), dict) else {}
        rows.append(
            {"split": s, "level": "per sample", "count": sample.get("num_samples"), **sample}
        )
        level = f"per group ({g.get('aggregate') or '?'})"
        rows.append({"split": s, "level": level, "count": g.get("num_groups"), **g["summary"]})
    return rows


def grouped_table(report: dict[str, Any], title: str = "grouped metrics") -> Table | None:
    """The notes' "sub-step level" and "step level" figures side by side: per split, the
    per-sample row and the per-group row (``training.group_aggregate``). None without
    grouped metrics."""
    rows = grouped_rows(report)
    if not rows:
        return None
    n_classes = report.get("num_classes") if type(report.get("num_classes")) is int else 0
    cols = [
        (k, label)
        for k, label in GROUPED_COLS
        if not (k == "top5_accuracy" and n_classes and n_classes <= 5)
        and any(r.get(k) is not None for r in rows)
    ]
    t = Table(
        title=title,
        header_style="bold",
        caption="P, R, F1: macro; wF1: weighted F1; n: samples or groups",
    )
    t.add_column("split", no_wrap=True)
    t.add_column("level", no_wrap=True)
    t.add_column("n", justify="right")
    for _, label in cols:
        t.add_column(label, justify="right", no_wrap=True)
    for r in rows:
        t.add_row(r["split"], r["level"], fmt(r["count"]), *(fmt(r.get(k), 3) for k, _ in cols))
    return t


def eval_folder_line(name: str, report: dict[str, Any] | None) -> str:
    """`slr show`: one eval-<name>/ folder and its headline figure."""
    if not report:
        return f"  {name:<24} (incomplete: no report.json)"
    splits = report_splits(report)
    head = next((s for s in ("test", "val", "train") if s in splits), None)
    figure = ""
    if head is not None:
        figure = f"{head} accuracy {fmt(report[head].get('accuracy'))}"
    data = report.get("data_root") or report.get("dataset") or "-"
    ckpt = report.get("checkpoint") or "-"
    epoch = report.get("checkpoint_epoch")
    at = f" (epoch {epoch})" if type(epoch) is int else ""
    return f"  {escape(name):<24} {figure:<24} {ckpt}{at} on {escape(str(data))}"


def prediction_top_table(res: dict[str, Any]) -> Table:
    """`slr predict`: one file's most likely classes and their probabilities."""
    t = Table(title=f"{escape(res['file'])}: top {len(res['overall']['top'])}", header_style="bold")
    t.add_column("#", justify="right")
    t.add_column("label")
    t.add_column("probability", justify="right")
    for i, row in enumerate(res["overall"]["top"], 1):
        t.add_row(str(i), escape(str(row["label"])), f"{row['probability']:.3f}")
    return t
