"""The report's figures, drawn with matplotlib's object API on the headless Agg backend
(no pyplot state: safe in a TUI worker thread). matplotlib is imported inside the
functions, never when this module loads. Each function returns a Figure, or None when the
run holds nothing to draw (the caller says why)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from slr_tui.report.confusion import BLOCK, block_mass, most_confused_classes, row_normalised

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from slr_tui.report.inputs import RunInputs
    from slr_tui.widgets._series import RunSeries

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def new_figure(width: float = 6.4, height: float = 4.0) -> Figure:
    import matplotlib

    matplotlib.use("Agg")  # headless, whatever MPLBACKEND says
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def save(fig: Figure, fmt: str, dpi: int) -> bytes:
    """The figure as PNG or PDF bytes (PDF: vector, no creation date so files compare)."""
    import io

    buf = io.BytesIO()
    meta: dict[str, Any] = {"CreationDate": None} if fmt == "pdf" else {"Software": None}
    fig.savefig(buf, format=fmt, dpi=dpi, metadata=meta)
    return buf.getvalue()


def _epoch_axis(ax: Any) -> None:
    """An x axis of epochs: labelled, with whole-number ticks only."""
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _epochs(series: RunSeries, key: str) -> tuple[list[float], list[float]]:
    xs, ys, _ = series.curve(key)
    return xs, ys


def _mark_best(ax: Any, series: RunSeries) -> None:
    best = series.best_epoch()
    if best is not None:
        ax.axvline(best, color="0.6", linestyle=":", linewidth=1, label=f"best epoch {best}")


def loss_figure(series: RunSeries, steps_per_epoch: int | None, ctc: bool) -> Figure | None:
    """Train loss (every logged step when there are step rows) and val loss per epoch; a
    CTC run's CTC train loss and NLL val loss on two y axes."""
    tx, ty, scale = series.curve("train_loss", steps_per_epoch)
    vx, vy = _epochs(series, "val_loss")
    if not ty and not vy:
        return None
    fig = new_figure()
    ax = fig.add_subplot()
    if ty:
        ax.plot(
            [x * scale for x in tx],
            ty,
            color=COLORS[0],
            linewidth=1,
            label="train CTC" if ctc else "train",
        )
    other = ax.twinx() if ctc and vy else ax
    if vy:
        other.plot(
            vx, vy, color=COLORS[1], marker="o", markersize=3, label="val NLL" if ctc else "val"
        )
    _mark_best(ax, series)
    _epoch_axis(ax)
    ax.set_ylabel("CTC loss" if ctc else "loss")
    if other is not ax:
        other.set_ylabel("val NLL")
        lines = ax.get_legend_handles_labels()
        lines2 = other.get_legend_handles_labels()
        ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="best")
    else:
        ax.legend(loc="best")
    ax.set_title("loss")
    ax.grid(alpha=0.3)
    return fig


def _lines_figure(
    series: RunSeries, keys: Sequence[tuple[str, str]], title: str, ylabel: str
) -> Figure | None:
    curves = [(label, *_epochs(series, key)) for key, label in keys]
    curves = [c for c in curves if c[2]]
    if not curves:
        return None
    fig = new_figure()
    ax = fig.add_subplot()
    for i, (label, xs, ys) in enumerate(curves):
        ax.plot(xs, ys, color=COLORS[i % len(COLORS)], marker="o", markersize=3, label=label)
    _mark_best(ax, series)
    _epoch_axis(ax)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return fig


def accuracy_figure(series: RunSeries, num_classes: int | None) -> Figure | None:
    """Train and val accuracy, val top-5 (left out for 5 classes or fewer: always 1.0)
    and, for a two-class run, val macro F1."""
    keys = [("train_acc", "train accuracy"), ("val_acc", "val accuracy")]
    if num_classes is None or num_classes > 5:
        keys.append(("val_top5", "val top-5"))
    if num_classes == 2:
        keys.append(("val_macro_f1", "val macro F1"))
    return _lines_figure(series, keys, "accuracy", "accuracy")


def translation_figure(series: RunSeries) -> Figure | None:
    return _lines_figure(
        series,
        [("val_bleu4", "val BLEU-4"), ("val_bleu1", "val BLEU-1"), ("val_chrf", "val chrF")],
        "BLEU / chrF (greedy)",
        "score (0-100)",
    )


def wer_figure(series: RunSeries) -> Figure | None:
    return _lines_figure(series, [("val_wer", "val WER")], "word error rate", "WER")


def blank_figure(series: RunSeries) -> Figure | None:
    return _lines_figure(
        series, [("val_blank_share", "val blank share")], "CTC: frames predicted blank", "share"
    )


def lr_figure(series: RunSeries, steps_per_epoch: int | None) -> Figure | None:
    xs, ys, scale = series.curve("lr", steps_per_epoch)
    if not ys:
        return None
    fig = new_figure(6.4, 3.2)
    ax = fig.add_subplot()
    ax.plot([x * scale for x in xs], ys, color=COLORS[2], linewidth=1.2)
    pos = [y for y in ys if y > 0]
    if pos and max(pos) / min(pos) > 50 and len(pos) == len(ys):
        ax.set_yscale("log")
    _epoch_axis(ax)
    ax.set_ylabel("learning rate")
    ax.set_title("learning rate")
    ax.grid(alpha=0.3)
    return fig


def confusion_figure(cm: np.ndarray, names: Sequence[str], split: str) -> Figure:
    """The row-normalised confusion matrix in class order; above :data:`BLOCK` classes the
    most confused block alone (its title says how many of the classes and mistakes)."""
    c = len(names)
    idx = most_confused_classes(cm, BLOCK) if c > BLOCK else list(range(c))
    norm = row_normalised(cm)[np.ix_(idx, idx)]
    n = len(idx)
    side = max(4.5, min(11.0, 0.3 * n + 2.5))
    fig = new_figure(side + 1.2, side)
    ax = fig.add_subplot()
    # one vector quad per cell (imshow would put a bitmap in the PDF)
    im = ax.pcolormesh(norm, cmap="Blues", vmin=0.0, vmax=1.0, edgecolors="none")
    ax.set_xlim(0, n)
    ax.set_ylim(n, 0)  # the first class on top
    ax.set_aspect("equal")
    labels = [str(names[i]) for i in idx]
    size = 9 if n <= 12 else 7 if n <= 24 else 6
    centres = [k + 0.5 for k in range(n)]
    ax.set_xticks(centres, labels, rotation=90, fontsize=size)
    ax.set_yticks(centres, labels, fontsize=size)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if n <= 15:
        for i in range(n):
            for j in range(n):
                v = norm[i, j]
                if v > 0:
                    ax.text(
                        j + 0.5,
                        i + 0.5,
                        f"{v:.2f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if v > 0.5 else "black",
                    )
    if n < c:
        inside, total = block_mass(cm, idx)
        title = (
            f"confusion ({split}): the {n} most confused of {c} classes\n"
            f"(rows normalised over all predictions; {inside} of {total} mistakes in this block)"
        )
    else:
        title = f"confusion ({split}), rows normalised"
    ax.set_title(title, fontsize=10)
    bar = fig.colorbar(im, ax=ax, shrink=0.8, label="share of the true class")
    bar.solids.set_rasterized(False)  # matplotlib rasterizes a long colour bar: keep it vector
    return fig


def per_class_figure(rows: list[dict[str, Any]], split: str) -> Figure | None:
    """Per-class accuracy, sorted (worst first), with each class's support. Up to 60
    classes: one labelled bar per class; more: every class as an unlabelled sorted bar
    with support beside it, and the worst 25 labelled underneath."""
    rows = [r for r in rows if r.get("support") and r.get("accuracy") is not None]
    if not rows:
        return None
    rows = sorted(rows, key=lambda r: (r["accuracy"], -r["support"], r["class_index"] or 0))
    acc = [float(r["accuracy"]) for r in rows]
    sup = [int(r["support"]) for r in rows]
    names = [str(r["class"]) for r in rows]
    n = len(rows)
    if n <= 60:
        fig = new_figure(6.4, max(3.0, 0.22 * n + 1.2))
        ax = fig.add_subplot()
        y = np.arange(n)[::-1]
        ax.barh(y, acc, color=[_acc_color(a) for a in acc])
        ax.set_yticks(y, [f"{nm} (n={s})" for nm, s in zip(names, sup, strict=True)], fontsize=7)
        _label_bars(ax, y, acc)
        ax.set_xlim(0, 1.0)
        ax.set_xlabel("accuracy (recall of the class)")
        ax.set_title(f"per-class accuracy ({split}), worst first", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        return fig
    fig = new_figure(7.5, 8.0)
    top, bottom = fig.subplots(2, 1, height_ratios=[1, 1.4])
    x = np.arange(n)
    top.bar(x, acc, width=1.0, color=[_acc_color(a) for a in acc])
    top.set_xlim(-0.5, n - 0.5)
    top.set_ylim(0, 1.0)
    top.set_xlabel(f"{n} classes, sorted by accuracy")
    top.set_ylabel("accuracy")
    twin = top.twinx()
    twin.plot(x, sup, color="0.3", linewidth=0.8, label="support")
    twin.set_ylabel("support")
    twin.legend(loc="lower right", fontsize=7)
    top.set_title(f"per-class accuracy ({split}), sorted, with support", fontsize=10)
    k = min(25, n)
    yy = np.arange(k)[::-1]
    bottom.barh(yy, acc[:k], color=[_acc_color(a) for a in acc[:k]])
    bottom.set_yticks(
        yy, [f"{nm} (n={s})" for nm, s in zip(names[:k], sup[:k], strict=True)], fontsize=6
    )
    _label_bars(bottom, yy, acc[:k])
    bottom.set_xlim(0, 1.0)
    bottom.set_xlabel(f"accuracy of the worst {k} classes")
    bottom.grid(axis="x", alpha=0.3)
    return fig


def _label_bars(ax: Any, ys: Any, acc: Sequence[float]) -> None:
    """Each bar's accuracy written at its end (inside a long bar, after a short one)."""
    for y, a in zip(ys, acc, strict=True):
        inside = a > 0.85
        ax.text(
            a - 0.01 if inside else a + 0.01,
            y,
            f"{a:.2f}",
            va="center",
            ha="right" if inside else "left",
            fontsize=6,
            color="white" if inside else "black",
        )


def _acc_color(a: float) -> str:
    return "#d62728" if a < 0.5 else "#ff7f0e" if a < 0.8 else "#2ca02c"


def threshold_figure(
    sweep: list[dict[str, Any]], calibrated: float | None, rule: str | None, split: str
) -> Figure:
    """Binary runs: precision, recall, F1 and accuracy of the positive class against the
    decision threshold, the default 0.5 and the calibrated threshold marked."""
    fig = new_figure()
    ax = fig.add_subplot()
    t = [r["threshold"] for r in sweep]
    for i, (key, label) in enumerate(
        (("precision", "precision"), ("recall", "recall"), ("f1", "F1"), ("accuracy", "accuracy"))
    ):
        ys = [np.nan if r.get(key) is None else r[key] for r in sweep]
        ax.plot(t, ys, color=COLORS[i], linestyle="--" if key == "accuracy" else "-", label=label)
    ax.axvline(0.5, color="0.4", linestyle=":", label="default 0.5")
    if calibrated is not None:
        what = f"calibrated {calibrated:.2f}" + (f" ({rule})" if rule else "")
        ax.axvline(calibrated, color="black", linestyle="-.", label=what)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("threshold on P(positive)")
    ax.set_ylabel("score")
    ax.set_title(f"precision / recall / F1 against threshold ({split})")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def roc_figure(y: np.ndarray, score: np.ndarray, split: str) -> Figure:
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(y, score)
    auc = roc_auc_score(y, score)
    fig = new_figure(4.8, 4.4)
    ax = fig.add_subplot()
    ax.plot(fpr, tpr, color=COLORS[0], label=f"ROC (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="0.6", linestyle=":", label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"ROC curve ({split})")
    ax.legend(loc="lower right")
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    return fig


def pr_figure(y: np.ndarray, score: np.ndarray, split: str) -> Figure:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    prec, rec, _ = precision_recall_curve(y, score)
    ap = average_precision_score(y, score)
    base = float(np.mean(y == 1))
    fig = new_figure(4.8, 4.4)
    ax = fig.add_subplot()
    ax.plot(rec, prec, color=COLORS[1], drawstyle="steps-post", label=f"PR (AP {ap:.3f})")
    ax.axhline(base, color="0.6", linestyle=":", label=f"positive share {base:.2f}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(f"precision-recall curve ({split})")
    ax.legend(loc="lower left")
    ax.grid(alpha=0.3)
    return fig


def compare_figure(
    items: list[RunInputs], key: str, label: str, steps: bool = False
) -> Figure | None:
    """One epoch-row figure of several runs overlaid (train loss and lr: every step)."""
    fig = None
    ax = None
    for i, inp in enumerate(items):
        spe = inp.info.meta.get("steps_per_epoch") if steps else None
        xs, ys, scale = inp.series.curve(key, spe if isinstance(spe, int) else None)
        if not ys:
            continue
        if fig is None:
            fig = new_figure()
            ax = fig.add_subplot()
        ax.plot(
            [x * scale for x in xs],
            ys,
            color=COLORS[i % len(COLORS)],
            linewidth=1,
            marker=None if scale != 1.0 else "o",
            markersize=3,
            label=inp.id,
        )
    if fig is None:
        return None
    _epoch_axis(ax)
    ax.set_ylabel(label)
    ax.set_title(label)
    ax.legend(loc="best", fontsize=7)
    ax.grid(alpha=0.3)
    return fig
