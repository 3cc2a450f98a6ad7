"""``slr report``: figures and tables of one or more runs for a thesis or a paper, and one
self-contained ``index.html`` that shows them all.

The layout of ``OUT`` (every name fixed, so a LaTeX document can include them):

- ``OUT/<run>/`` per run: figures ``loss``, ``accuracy``, ``lr`` (translation runs:
  ``bleu``, ``wer``; CTC runs: ``blank_share``), ``confusion``, ``per_class``, and for
  two-class runs ``threshold``, ``roc``, ``pr``, each as ``.png`` and ``.pdf``; tables
  ``summary``, ``grouped`` (when the evaluation has grouped metrics), ``per_class`` and
  (two-class runs) ``thresholds``, each as ``.md``, ``.csv`` and ``.tex`` (booktabs).
- ``OUT/compare/`` with two or more runs: ``curves-<metric>`` figures (the runs
  overlaid) and the ``metrics`` table.
- ``OUT/index.html``: all of it, PNGs embedded as data URIs, no external links.

Every file is written atomically. matplotlib is imported only while figures are drawn
(headless Agg); no torch.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine import runs
from slr_tui.report.inputs import ReportError, RunInputs, load_inputs
from slr_tui.report.tables import Table

__all__ = [
    "FIGURE_FORMATS",
    "ReportError",
    "ReportResult",
    "write_report",
]

FIGURE_FORMATS = ("png", "pdf")
COMPARE_DIR = "compare"
INDEX = "index.html"
DEFAULT_DPI = 150
HTML_DPI = 100  # the PNGs index.html embeds when no PNG files are asked for

# (key, label) of a split's figures in the summary, grouped and metrics tables
SUMMARY_COLS = [
    ("accuracy", "accuracy"),
    ("top5_accuracy", "top-5"),
    ("macro_precision", "macro P"),
    ("macro_recall", "macro R"),
    ("macro_f1", "macro F1"),
    ("weighted_precision", "weighted P"),
    ("weighted_recall", "weighted R"),
    ("weighted_f1", "weighted F1"),
    ("roc_auc", "ROC-AUC"),
    ("pr_auc", "PR-AUC"),
    ("num_samples", "samples"),
]
TRANSLATION_COLS = [
    ("bleu4", "BLEU-4", 2),
    ("bleu1", "BLEU-1", 2),
    ("chrf", "chrF", 2),
    ("wer", "WER", 3),
    ("token_accuracy", "token acc", 3),
    ("nll", "NLL", 4),
    ("num_samples", "samples", 0),
]
LOWER_BETTER = ("wer", "nll", "val_loss", "train_loss")
COMPARE_CURVES = [
    ("val_loss", "val loss", False),
    ("train_loss", "train loss", True),
    ("val_acc", "val accuracy", False),
    ("val_top5", "val top-5", False),
    ("val_macro_f1", "val macro F1", False),
    ("val_bleu4", "val BLEU-4", False),
    ("val_wer", "val WER", False),
]


@dataclass
class Figure:
    name: str  # file stem
    title: str
    png: bytes  # for index.html


@dataclass
class Section:
    """What one folder of the report holds, for index.html."""

    title: str
    folder: str
    lines: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class ReportResult:
    out: Path
    files: list[Path] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)

    @property
    def index(self) -> Path:
        return self.out / INDEX


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def folder_name(run_id: str, taken: set[str]) -> str:
    """A run's folder in OUT: its id with anything but letters, digits, ``.-_`` made
    ``_``; ``-2``, ``-3`` ... for a repeat (and for a run named like ``compare``)."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id).strip(".") or "run"
    name, i = base, 1
    while name in taken or name in (COMPARE_DIR, INDEX):
        i += 1
        name = f"{base}-{i}"
    taken.add(name)
    return name


# what a figure that cannot be drawn from damaged inputs raises (it is skipped, with why)
DRAW_ERRORS = (ValueError, TypeError, IndexError, KeyError, ZeroDivisionError, FloatingPointError)


class _Writer:
    def __init__(self, out: Path, formats: Sequence[str], dpi: int) -> None:
        self.out, self.formats, self.dpi = out, tuple(formats), dpi
        self.files: list[Path] = []

    def figure(
        self,
        section: Section,
        name: str,
        title: str,
        make: Callable[[], Any],
        none_why: str | None = None,
    ) -> bool:
        """Draw ``make()`` and write it in every format; a figure it cannot draw (None,
        or an error from damaged inputs) goes to the section's skipped list instead."""
        from slr_tui.report.figures import save

        try:
            fig = make()
        except DRAW_ERRORS as exc:
            section.skipped.append((name, f"cannot draw it: {exc}"))
            return False
        if fig is None:
            if none_why:
                section.skipped.append((name, none_why))
            return False
        folder = self.out / section.folder
        png = None
        for fmt in self.formats:
            data = save(fig, fmt, self.dpi)
            if fmt == "png":
                png = data
            path = folder / f"{name}.{fmt}"
            runs.atomic_write_bytes(path, data)
            self.files.append(path)
        if png is None:
            png = save(fig, "png", min(self.dpi, HTML_DPI))
        section.figures.append(Figure(f"{section.folder}/{name}", title, png))
        fig.clear()
        return True

    def table(self, section: Section, make: Callable[[], Table | None]) -> None:
        """Write ``make()``'s table as Markdown, CSV and LaTeX (nothing for None; one that
        cannot be built from damaged inputs is skipped, with why)."""
        try:
            table = make()
        except DRAW_ERRORS as exc:
            section.skipped.append(("a table", f"cannot build it: {exc}"))
            return
        if table is None:
            return
        folder = self.out / section.folder
        table.label = table.label or f"{section.folder}:{table.name}"  # unique per document
        for ext, text in (
            ("md", table.to_markdown()),
            ("csv", table.to_csv()),
            ("tex", table.to_latex()),
        ):
            path = folder / f"{table.name}.{ext}"
            runs.atomic_write_bytes(path, text.encode())
            self.files.append(path)
        section.tables.append(table)


# --------------------------------------------------------------------------- tables


def _weighted(rows: list[dict[str, Any]], key: str) -> float | None:
    rows = [r for r in rows if r.get("support") and _num(r.get(key))]
    total = sum(r["support"] for r in rows)
    return sum(r["support"] * r[key] for r in rows) / total if total else None


def _split_figures(inp: RunInputs, split: str) -> dict[str, Any]:
    figs = dict((inp.report or {}).get(split) or {})
    rows = inp.per_class.get(split) or []
    if rows:
        figs.setdefault("weighted_precision", _weighted(rows, "precision"))
        figs.setdefault("weighted_recall", _weighted(rows, "recall"))
    return figs


def _columns(inp: RunInputs, figs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    n = inp.num_classes
    out = []
    for key, label in SUMMARY_COLS:
        if key == "top5_accuracy" and n is not None and n <= 5:
            continue  # always 1.0
        if any(f.get(key) is not None for f in figs):
            out.append((key, label))
    return out


def summary_table(inp: RunInputs) -> Table | None:
    """One row per evaluated split: accuracy, top-5, macro and weighted P/R/F1 (and AUCs
    for a two-class run; no bold: val and test do not compete); a translation run's
    BLEU/chrF/WER, greedy beside beam search (the better decoding bold)."""
    rep = inp.report or {}
    if inp.task == "translation":
        cols: list[tuple[str, dict[str, Any]]] = []
        beam = rep.get("beam") if isinstance(rep.get("beam"), dict) else {}
        for s in ("val", "test"):
            if isinstance(rep.get(s), dict):
                cols.append((f"{s} greedy", rep[s]))
            if isinstance(beam.get(s), dict):
                cols.append((f"{s} beam", beam[s]))
        keys = [c for c in TRANSLATION_COLS if any(f.get(c[0]) is not None for _, f in cols)]
        if not cols or not keys:
            return None
        return Table(
            "summary",
            f"{inp.id}: results (best checkpoint)",
            ["split", *(label for _, label, _ in keys)],
            [[name, *(f.get(k) for k, _, _ in keys)] for name, f in cols],
            best={
                i + 1: ("min" if k in LOWER_BETTER else "max")
                for i, (k, _, _) in enumerate(keys)
                if k != "num_samples"
            },
            digits={i + 1: d for i, (_, _, d) in enumerate(keys)},
        )
    splits = [s for s in ("val", "test") if s in inp.splits and isinstance(rep.get(s), dict)]
    if not splits:
        return None
    figs = [_split_figures(inp, s) for s in splits]
    cols2 = _columns(inp, figs)
    return Table(
        "summary",
        f"{inp.id}: results per split (best checkpoint)",
        ["split", *(label for _, label in cols2)],
        [[s, *(f.get(k) for k, _ in cols2)] for s, f in zip(splits, figs, strict=True)],
    )


def grouped_table(inp: RunInputs, split: str) -> Table | None:
    """The notes' "Sub step level" (every sample) vs "Step level" (a group's samples
    aggregated) table, when the evaluation holds grouped metrics for ``split``."""
    rep = inp.report or {}
    grouped = rep.get("grouped")
    g = grouped.get(split) if isinstance(grouped, dict) else None
    if not isinstance(g, dict) or not isinstance(g.get("summary"), dict):
        return None
    per_sample = _split_figures(inp, split)
    step = dict(g["summary"])
    cols = _columns(inp, [per_sample, step])
    agg = g.get("aggregate") if isinstance(g.get("aggregate"), str) else "?"
    groups = g.get("num_groups")
    note = f"Step level: the samples of a group aggregated by {agg}" + (
        f" ({groups} groups)" if type(groups) is int else ""
    )
    return Table(
        "grouped",
        f"{inp.id}: sub step level vs step level ({split})",
        ["level", *(label for _, label in cols)],
        [
            ["Sub step level", *(per_sample.get(k) for k, _ in cols)],
            ["Step level", *(step.get(k) for k, _ in cols)],
        ],
        best={i + 1: "max" for i, (k, _) in enumerate(cols) if k != "num_samples"},
        note=note,
    )


def per_class_rows(inp: RunInputs, split: str) -> list[dict[str, Any]]:
    """The split's per-class rows: from the predictions when loaded, else per_class.csv."""
    if inp.y is not None and inp.probs is not None and split == inp.split:
        from engine import evaluate

        try:
            return evaluate.per_class_table(inp.y, inp.probs, inp.class_names)
        except ValueError:
            pass
    return list(inp.per_class.get(split) or [])


def per_class_table(inp: RunInputs, split: str, rows: list[dict[str, Any]]) -> Table | None:
    if not rows:
        return None
    rows = sorted(
        rows,
        key=lambda r: (r.get("accuracy") is None, r.get("accuracy") or 0.0, r["class_index"] or 0),
    )
    return Table(
        "per_class",
        f"{inp.id}: per-class figures ({split}), worst first",
        ["class", "support", "accuracy", "precision", "recall", "F1"],
        [
            [
                r["class"],
                r["support"],
                r.get("accuracy"),
                r.get("precision"),
                r.get("recall"),
                r.get("f1"),
            ]
            for r in rows
        ],
        best={2: "max", 3: "max", 4: "max", 5: "max"},
        default_digits=3,
        note="accuracy: the class's recall; '-' for a class without samples in the split",
    )


def threshold_table(inp: RunInputs, split: str) -> Table | None:
    """Two-class runs: the sweep on ``split`` (0.05 ... 0.95), with the calibrated
    threshold's own row when it is not on the grid."""
    from engine import evaluate

    if inp.y is None or inp.probs is None or inp.probs.shape[1] != 2:
        return None
    grid = evaluate.default_thresholds()
    if inp.threshold is not None and all(abs(t - inp.threshold) > 1e-9 for t in grid):
        grid = sorted([*grid, inp.threshold])
    rows = evaluate.threshold_sweep(inp.y, inp.probs, grid)

    def mark(t: float) -> str:
        out = []
        if abs(t - 0.5) < 1e-9:
            out.append("default")
        if inp.threshold is not None and abs(t - inp.threshold) < 1e-9:
            out.append("calibrated")
        return ", ".join(out)

    return Table(
        "thresholds",
        f"{inp.id}: threshold sweep ({split}, positive class)",
        ["threshold", "precision", "recall", "F1", "accuracy", "marks"],
        [
            [
                f"{r['threshold']:.2f}",
                r["precision"],
                r["recall"],
                r["f1"],
                r["accuracy"],
                mark(r["threshold"]),
            ]
            for r in rows
        ],
        best={1: "max", 2: "max", 3: "max", 4: "max"},
        default_digits=3,
        note="calibrated: threshold.json (else the run's calibration); default: 0.5",
    )


def metrics_table(items: list[RunInputs]) -> Table:
    """The runs side by side (one row each), on each run's report split."""
    figs = [_split_figures(i, i.split) if i.split else {} for i in items]
    for inp, f in zip(items, figs, strict=True):
        if inp.num_classes is not None and inp.num_classes <= 5:
            f["top5_accuracy"] = None  # always 1.0: not a figure to rank runs by
    cols: list[tuple[str, str, int]] = []
    n_max = max((i.num_classes or 0 for i in items), default=0)
    for key, label in SUMMARY_COLS:
        if key == "top5_accuracy" and n_max and n_max <= 5:
            continue
        if any(f.get(key) is not None for f in figs):
            cols.append((key, label, 4 if key != "num_samples" else 0))
    for key, label, digits in TRANSLATION_COLS:
        if key in ("nll", "num_samples") and any(c[0] == key for c in cols):
            continue
        if any(f.get(key) is not None for f in figs):
            cols.append((key, label, digits))
    rows = []
    for inp, f in zip(items, figs, strict=True):
        best = inp.info.meta.get("best_epoch")
        rows.append(
            [inp.id, inp.split or "-", *(f.get(k) for k, _, _ in cols), best, inp.info.epoch]
        )
    return Table(
        "metrics",
        "runs compared (best checkpoint of each)",
        ["run", "split", *(label for _, label, _ in cols), "best epoch", "epochs"],
        rows,
        best={
            i + 2: ("min" if k in LOWER_BETTER else "max")
            for i, (k, _, _) in enumerate(cols)
            if k != "num_samples"
        },
        digits={i + 2: d for i, (_, _, d) in enumerate(cols)},
    )


# --------------------------------------------------------------------------- one run


def _run_section(inp: RunInputs, folder: str, w: _Writer) -> Section:
    from slr_tui.report import figures as F

    sec = Section(title=inp.id, folder=folder, skipped=inp.skipped)
    meta = inp.info.meta
    best = meta.get("best_metric")
    sec.lines.append(
        " · ".join(
            str(x)
            for x in (
                inp.info.status,
                meta.get("preset"),
                meta.get("dataset"),
                f"{inp.info.epoch}/{inp.info.max_epochs or '?'} epochs",
                f"best {meta.get('monitor')} {best:.4f} (epoch {meta.get('best_epoch')})"
                if _num(best)
                else None,
            )
            if x
        )
    )
    if inp.split:
        sec.lines.append(f"figures and tables of the {inp.split} split ({inp.eval_dir.name}/)")
    spe = meta.get("steps_per_epoch")
    spe = spe if type(spe) is int and spe > 0 else None
    s = inp.series
    if not s.epochs and not s.step_x:
        inp.skip("learning curves", "metrics.jsonl holds no step or epoch rows yet")
    else:
        w.figure(sec, "loss", "loss", lambda: F.loss_figure(s, spe, s.ctc))
        if inp.task == "translation":
            w.figure(sec, "bleu", "BLEU / chrF", lambda: F.translation_figure(s), "no BLEU yet")
            w.figure(sec, "wer", "word error rate", lambda: F.wer_figure(s), "no WER yet")
        else:
            w.figure(
                sec,
                "accuracy",
                "accuracy and top-5",
                lambda: F.accuracy_figure(s, inp.num_classes),
                "no epoch has ended yet",
            )
        if s.ctc:
            w.figure(sec, "blank_share", "CTC blank share", lambda: F.blank_figure(s))
        w.figure(sec, "lr", "learning rate", lambda: F.lr_figure(s, spe))

    if inp.report is None or (inp.split is None and inp.task != "translation"):
        why = inp.eval_problem or "no evaluation"
        inp.skip("results, confusion, per-class and threshold figures and tables", why)
        return sec
    w.table(sec, lambda: summary_table(inp))
    if inp.task == "translation":
        inp.skip("confusion, per-class and threshold figures", "a translation run has no classes")
        return sec
    split = inp.split
    assert split is not None
    w.table(sec, lambda: grouped_table(inp, split))
    y, probs, names = inp.y, inp.probs, inp.class_names
    if y is not None and probs is not None and names:

        def confusion() -> Any:
            from slr_tui.report.confusion import confusion_counts

            cm = confusion_counts(y, probs.argmax(axis=1), len(names))
            return F.confusion_figure(cm, names, split)

        if len(y):
            w.figure(sec, "confusion", "confusion matrix", confusion)
        else:
            inp.skip("confusion", f"the {split} split is empty")
    else:
        inp.skip("confusion", f"no predictions for {split} in {inp.eval_dir.name}/")
    rows = per_class_rows(inp, split)
    w.figure(
        sec,
        "per_class",
        "per-class accuracy",
        lambda: F.per_class_figure(rows, split),
        f"no per-class figures for {split}",
    )
    w.table(sec, lambda: per_class_table(inp, split, rows))
    if inp.task == "binary":
        _binary(inp, split, sec, w)
    return sec


def _binary(inp: RunInputs, split: str, sec: Section, w: _Writer) -> None:
    from engine import evaluate
    from slr_tui.report import figures as F

    y, probs = inp.y, inp.probs
    if y is None or probs is None or probs.ndim != 2 or probs.shape[1] != 2 or not len(y):
        inp.skip("threshold, roc, pr", f"no two-class predictions for {split}")
        return

    def threshold() -> Any:
        sweep = evaluate.threshold_sweep(y, probs, evaluate.default_thresholds(0.01, 0.99, 0.01))
        return F.threshold_figure(sweep, inp.threshold, inp.threshold_rule, split)

    w.figure(sec, "threshold", "P/R/F1 against threshold", threshold)
    w.table(sec, lambda: threshold_table(inp, split))
    if len(np.unique(y)) < 2:
        inp.skip("roc, pr", f"the {split} split holds one class only")
        return
    score = np.asarray(probs[:, 1], dtype=np.float64)
    w.figure(sec, "roc", "ROC curve", lambda: F.roc_figure(y, score, split))
    w.figure(sec, "pr", "precision-recall curve", lambda: F.pr_figure(y, score, split))


def _compare_section(items: list[RunInputs], w: _Writer) -> Section:
    from slr_tui.report import figures as F

    sec = Section(title=f"{len(items)} runs compared", folder=COMPARE_DIR)
    sec.lines.append(", ".join(i.id for i in items))
    n_max = max((i.num_classes or 0 for i in items), default=0)
    for key, label, steps in COMPARE_CURVES:
        if key == "val_top5" and n_max and n_max <= 5:
            continue
        w.figure(
            sec,
            f"curves-{key}",
            label,
            lambda k=key, lab=label, st=steps: F.compare_figure(items, k, lab, st),
        )
    w.table(sec, lambda: metrics_table(items))
    return sec


# --------------------------------------------------------------------------- index.html

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
caption{text-align:left;font-weight:bold;padding:.3em 0}
th,td{padding:.2em .6em;border-bottom:1px solid #ddd}th{border-bottom:2px solid #444}
td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption,.note,.meta{color:#555;font-size:.9em}.skipped{color:#8a4b00}
.scroll{max-height:30em;overflow:auto}
"""


def render_index(result: ReportResult) -> str:
    """index.html: every section's lines, tables and figures (PNGs as data URIs); all
    text escaped; no link or source outside the file."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>slr report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>slr report</h1>",
        "<ul>",
    ]
    for i, sec in enumerate(result.sections):
        parts.append(f'<li><a href="#s{i}">{e(sec.title)}</a></li>')
    parts.append("</ul>")
    for i, sec in enumerate(result.sections):
        parts.append(f'<section id="s{i}"><h2>{e(sec.title)}</h2>')
        for line in sec.lines:
            parts.append(f'<p class="meta">{e(line)}</p>')
        parts.append(f'<p class="meta">files: {e(sec.folder)}/</p>')
        for what, why in sec.skipped:
            parts.append(f'<p class="skipped">skipped {e(what)}: {e(why)}</p>')
        for t in sec.tables:
            wrap = ' class="scroll"' if len(t.rows) > 25 else ""
            parts.append(f"<div{wrap}>{t.to_html()}</div>")
            parts.append(f'<p class="note">{e(sec.folder)}/{e(t.name)}.{{md,csv,tex}}</p>')
        for f in sec.figures:
            data = base64.b64encode(f.png).decode("ascii")
            parts.append(
                f'<figure><img alt="{e(f.title)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{e(f.title)} ({e(f.name)}.png / .pdf)</figcaption></figure>"
            )
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------- entry


def parse_formats(text: str) -> tuple[str, ...]:
    """``--format png,pdf`` as a tuple; ValueError names a format that is not one."""
    out = tuple(dict.fromkeys(p.strip().lower() for p in text.split(",") if p.strip()))
    bad = [f for f in out if f not in FIGURE_FORMATS]
    if bad or not out:
        raise ValueError(f"--format takes png, pdf or png,pdf (not '{text}')")
    return out


def write_report(
    paths: Sequence[Path],
    out: Path,
    *,
    split: str | None = None,
    formats: Sequence[str] = FIGURE_FORMATS,
    eval_name: str | None = None,
    dpi: int = DEFAULT_DPI,
    progress: Callable[[str], None] | None = None,
) -> ReportResult:
    """Write the report of the runs at ``paths`` under ``out`` (see the module docstring
    for the layout) and return what was written. ``split``: ``test`` or ``val`` (default:
    test when evaluated, else val); ``eval_name``: read ``eval-<name>/`` instead of
    ``eval/``. :class:`ReportError` for a run or evaluation that is not there; one line
    per run goes to ``progress``."""
    say = progress or (lambda _line: None)
    if split not in (None, "val", "test"):
        raise ReportError(f"--split must be test or val, not '{split}'")
    if not paths:
        raise ReportError("give at least one run")
    if dpi < 10 or dpi > 1200:
        raise ReportError(f"--dpi must be between 10 and 1200 (got {dpi})")
    items = [load_inputs(Path(p), split, eval_name) for p in paths]
    out = Path(out)
    w = _Writer(out, formats, dpi)
    result = ReportResult(out=out)
    taken: set[str] = set()
    for inp in items:
        sec = _run_section(inp, folder_name(inp.id, taken), w)
        result.sections.append(sec)
        line = (
            f"{inp.id}: {len(sec.figures)} figures, {len(sec.tables)} tables -> {out / sec.folder}"
        )
        say(line)
        for what, why in sec.skipped:
            say(f"  skipped {what}: {why}")
    if len(items) > 1:
        sec = _compare_section(items, w)
        result.sections.append(sec)
        say(
            f"comparison: {len(sec.figures)} figures, {len(sec.tables)} tables -> {out / COMPARE_DIR}"
        )
    runs.atomic_write_bytes(out / INDEX, render_index(result).encode())
    w.files.append(out / INDEX)
    result.files = w.files
    return result
