"""Evaluation: summaries, per-class tables, confusion pairs, threshold sweeps, ``eval/`` files.

numpy only (no torch, no scikit-learn), so viewers (CLI tables, the TUI's threshold screen)
can import it at once. The figures are :mod:`sklearn.metrics`' definitions, computed by
:mod:`engine.metrics` (checked against sklearn in ``tests/test_metrics.py``).

Conventions:

- ``y_true`` is an int array of class indices ``0..C-1``; ``probs`` is an ``(N, C)`` array of
  class probabilities (rows sum to 1, e.g. a softmax). Predictions are ``probs.argmax(1)``.
- A task is *binary* when ``C == 2``; the positive class is index 1.
- Figures that are undefined (an empty split, AUC with one class present, accuracy of a
  class with no samples, accuracy over zero accepted samples) are ``None``; files write them
  as JSON ``null`` / an empty CSV cell, never ``NaN``.

Threshold sweeps (``thresholds.csv``, ``slr thresholds``, the TUI's threshold screen):

- binary: positive when ``probs[:, 1] >= t``; precision, recall and F1 of the positive
  class, accuracy over all samples; ``coverage`` is 1.0 and ``accepted`` is N.
- multi-class (reject option): a sample is *accepted* when its max probability ``>= t``;
  ``coverage`` = accepted / N; ``accuracy`` = accuracy over accepted samples (``None`` when
  none are accepted); ``precision`` = that same accuracy; ``recall`` = correct-and-accepted /
  N; ``f1`` = harmonic mean of precision and recall (0.0 when recall is 0).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine import metrics
from engine.runs import atomic_write_bytes, atomic_write_json, to_jsonable
from engine.schema import BINARY_SCORES, SPLIT_SCORES

REPORT_FILE = "report.json"
PREDICTIONS_FILE = "predictions.npz"
PER_CLASS_FILE = "per_class.csv"
CONFUSION_FILE = "confusion.csv"
THRESHOLDS_FILE = "thresholds.csv"

PER_CLASS_COLUMNS = ["class_index", "class", "support", "accuracy", "precision", "recall", "f1"]
CONFUSION_COLUMNS = ["true_index", "true", "pred_index", "pred", "count"]
SWEEP_COLUMNS = ["threshold", "precision", "recall", "f1", "accuracy", "coverage", "accepted"]

#: ``slr eval``'s result folders: ``RUN/eval-<name>/``, the name as :data:`EVAL_NAME` allows
EVAL_PREFIX = "eval-"
EVAL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

TOP_KS = (5, 10)
_PROB_EPS = 1e-15


# --------------------------------------------------------------------------- inputs


def _as_inputs(
    y_true: Any, probs: Any, class_names: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray, int]:
    """Validated ``(y_true int64 (N,), probs float (N, C), C)``; ValueError says what is wrong."""
    y = np.asarray(y_true).reshape(-1).astype(np.int64, copy=False)
    p = np.asarray(probs)
    if p.ndim != 2:
        raise ValueError(f"probs must be 2-D (samples, classes); got shape {p.shape}")
    if not np.issubdtype(p.dtype, np.floating):
        p = p.astype(np.float64)
    n, c = p.shape
    if class_names is not None and len(class_names) != c:
        raise ValueError(f"probs has {c} columns but there are {len(class_names)} class names")
    if c < 2:
        raise ValueError(f"need at least 2 classes; probs has {c} column(s)")
    if len(y) != n:
        raise ValueError(f"y_true has {len(y)} labels but probs has {n} rows")
    if n and (y.min() < 0 or y.max() >= c):
        raise ValueError(f"y_true has labels outside 0..{c - 1}")
    return y, p, c


def task_of(num_classes: int) -> str:
    """``"binary"`` for two classes (positive = index 1), else ``"multiclass"``."""
    return "binary" if num_classes == 2 else "multiclass"


def _f(x: Any) -> float | None:
    """A plain float, or None for None/NaN/inf."""
    if x is None:
        return None
    v = float(x)
    return v if math.isfinite(v) else None


# --------------------------------------------------------------------------- summary


def _top_k(y: np.ndarray, p: np.ndarray, k: int) -> float:
    return metrics.top_k_accuracy(y, p, k)  # k >= C: a (meaningless but correct) 1.0


def _nll(y: np.ndarray, p: np.ndarray) -> float:
    """Mean cross-entropy of the probabilities, clipped away from 0 and renormalised."""
    q = np.clip(p.astype(np.float64), _PROB_EPS, 1.0)
    q = q / q.sum(axis=1, keepdims=True)
    return metrics.mean_nll(y, q)


def summarize(y_true: np.ndarray, probs: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """The per-split summary.

    Keys: ``num_samples``, ``num_classes``, ``num_classes_present``, ``accuracy``,
    ``top5_accuracy``, ``top10_accuracy`` (k capped at C), ``per_class_accuracy`` (mean recall
    over the classes present in ``y_true``: WLASL's per-class figure), ``macro_precision``,
    ``macro_recall``, ``macro_f1``, ``weighted_f1`` (over ``labels=range(C)``,
    ``zero_division=0``: a class absent from the split counts as 0 in the macro figures),
    ``nll`` (mean log loss); binary tasks add ``roc_auc`` and ``pr_auc`` (on ``probs[:, 1]``,
    None when only one class is present). An empty split gives None figures.
    """
    y, p, c = _as_inputs(y_true, probs, class_names)
    n = len(y)
    out: dict[str, Any] = {
        "num_samples": int(n),
        "num_classes": int(c),
        "num_classes_present": int(len(np.unique(y))),
    }
    keys = [*SPLIT_SCORES, *(BINARY_SCORES if c == 2 else ())]  # engine.schema.SplitFigures
    if n == 0:
        out.update(dict.fromkeys(keys))
        return out

    pred = p.argmax(axis=1)
    present = np.unique(y)
    prec, rec, f1, support = metrics.per_class(y, pred, c)
    out["accuracy"] = metrics.accuracy(y, pred)
    out["top5_accuracy"] = _top_k(y, p, TOP_KS[0])
    out["top10_accuracy"] = _top_k(y, p, TOP_KS[1])
    out["per_class_accuracy"] = float(rec[present].mean())  # macro recall, classes present
    out["macro_precision"] = float(prec.mean())
    out["macro_recall"] = float(rec.mean())
    out["macro_f1"] = float(f1.mean())
    out["weighted_f1"] = float(np.sum(f1 * support) / support.sum())
    out["nll"] = _nll(y, p)
    if c == 2:
        if len(present) == 2:
            out["roc_auc"] = metrics.roc_auc(y, p[:, 1])
            out["pr_auc"] = metrics.average_precision(y, p[:, 1])
        else:
            out["roc_auc"] = None
            out["pr_auc"] = None
    return {k: (_f(v) if isinstance(v, float) else v) for k, v in out.items()}


def per_class_table(
    y_true: np.ndarray, probs: np.ndarray, class_names: list[str]
) -> list[dict[str, Any]]:
    """One row per class (all C, in index order): ``class_index``, ``class``, ``support``,
    ``accuracy`` (that class's recall; None when the class has no samples), ``precision``,
    ``recall``, ``f1`` (``zero_division=0``)."""
    y, p, c = _as_inputs(y_true, probs, class_names)
    pred = p.argmax(axis=1) if len(y) else np.zeros(0, dtype=np.int64)
    if len(y):
        prec, rec, f1, sup = metrics.per_class(y, pred, c)
    else:
        prec = rec = f1 = np.zeros(c)
        sup = np.zeros(c, dtype=np.int64)
    rows = []
    for i in range(c):
        support = int(sup[i])
        rows.append(
            {
                "class_index": i,
                "class": str(class_names[i]),
                "support": support,
                "accuracy": float(rec[i]) if support else None,
                "precision": float(prec[i]),
                "recall": float(rec[i]),
                "f1": float(f1[i]),
            }
        )
    return rows


# --------------------------------------------------------------------------- confusion


def confusion_pairs(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str], top: int | None = None
) -> list[dict[str, Any]]:
    """The confusion matrix in long form: one row per non-zero cell with ``true_index``,
    ``true``, ``pred_index``, ``pred``, ``count``. Row-major order (by true, then predicted
    index); with ``top``, only the ``top`` largest cells, by count descending (ties: row-major)."""
    c = len(class_names)
    y = np.asarray(y_true).reshape(-1).astype(np.int64)
    yp = np.asarray(y_pred).reshape(-1).astype(np.int64)
    if len(y) != len(yp):
        raise ValueError(f"y_true has {len(y)} labels but y_pred has {len(yp)}")
    if len(y) == 0:
        return []
    cm = metrics.confusion(y, yp, c)
    rows = [
        {
            "true_index": int(i),
            "true": str(class_names[i]),
            "pred_index": int(j),
            "pred": str(class_names[j]),
            "count": int(cm[i, j]),
        }
        for i, j in zip(*np.nonzero(cm), strict=True)
    ]
    if top is not None:
        rows = sorted(rows, key=lambda r: -r["count"])[: max(top, 0)]
    return rows


def most_confused(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str], top: int | None = 10
) -> list[dict[str, Any]]:
    """Off-diagonal confusion cells (true != predicted), count descending; ties keep
    row-major order. ``top=None`` returns all of them."""
    rows = [
        r
        for r in confusion_pairs(y_true, y_pred, class_names)
        if r["true_index"] != r["pred_index"]
    ]
    rows.sort(key=lambda r: -r["count"])
    return rows if top is None else rows[: max(top, 0)]


# --------------------------------------------------------------------------- thresholds


MAX_THRESHOLDS = 1001  # a step of 0.001 over [0, 1]


def default_thresholds(start: float = 0.05, stop: float = 0.95, step: float = 0.05) -> list[float]:
    """``start, start+step, ..., stop`` inclusive of ``stop`` (within float tolerance),
    rounded to 10 decimals: ``(0.05, 0.95, 0.05)`` gives 19 values. At most
    :data:`MAX_THRESHOLDS` values: a tiny step is refused rather than swept for ever."""
    if not all(math.isfinite(x) for x in (start, stop, step)):
        raise ValueError(f"thresholds need finite numbers (got {start}, {stop}, {step})")
    if step <= 0:
        raise ValueError(f"threshold step must be > 0 (got {step})")
    if stop < start:
        raise ValueError(f"threshold stop ({stop}) is below start ({start})")
    n = int(math.floor((stop - start) / step + 1e-9)) + 1
    if n > MAX_THRESHOLDS:
        raise ValueError(
            f"threshold step {step:g} gives {n} thresholds from {start:g} to {stop:g}; "
            f"at most {MAX_THRESHOLDS} (use a step of at least {(stop - start) / (MAX_THRESHOLDS - 1):.3g})"
        )
    return [round(start + i * step, 10) for i in range(n)]


def _sweep_row(
    t: float,
    precision: float | None,
    recall: float | None,
    f1: float | None,
    accuracy: float | None,
    coverage: float | None,
    accepted: int,
) -> dict[str, Any]:
    return {
        "threshold": float(t),
        "precision": _f(precision),
        "recall": _f(recall),
        "f1": _f(f1),
        "accuracy": _f(accuracy),
        "coverage": _f(coverage),
        "accepted": int(accepted),
    }


def threshold_sweep(
    y_true: np.ndarray, probs: np.ndarray, thresholds: Iterable[float]
) -> list[dict[str, Any]]:
    """One row per threshold: ``threshold``, ``precision``, ``recall``, ``f1``, ``accuracy``,
    ``coverage``, ``accepted`` (see the module docstring for binary vs multi-class)."""
    y, p, c = _as_inputs(y_true, probs)
    n = len(y)
    rows: list[dict[str, Any]] = []
    if c == 2:
        score = p[:, 1]
        for t in thresholds:
            if n == 0:
                rows.append(_sweep_row(t, None, None, None, None, None, 0))
                continue
            pred = (score >= t).astype(np.int64)
            prec, rec, f1 = metrics.binary_prf(y, pred)
            rows.append(_sweep_row(t, prec, rec, f1, metrics.accuracy(y, pred), 1.0, n))
        return rows

    pred = p.argmax(axis=1)
    top = p.max(axis=1) if n else np.zeros(0)
    correct = pred == y
    for t in thresholds:
        acc_mask = top >= t
        accepted = int(acc_mask.sum())
        if n == 0:
            rows.append(_sweep_row(t, None, None, None, None, None, 0))
            continue
        accuracy = metrics.accuracy(y[acc_mask], pred[acc_mask]) if accepted else None
        recall = float(np.count_nonzero(correct & acc_mask)) / n
        if accuracy is not None and accuracy + recall > 0:
            f1 = 2 * accuracy * recall / (accuracy + recall)
        else:
            f1 = 0.0
        rows.append(_sweep_row(t, accuracy, recall, f1, accuracy, accepted / n, accepted))
    return rows


def pick_threshold(y_true: np.ndarray, probs: np.ndarray, value: float) -> dict[str, Any]:
    """The sweep row (same fields) at one threshold."""
    return threshold_sweep(y_true, probs, [value])[0]


def best_threshold(rows: list[dict[str, Any]], metric: str = "f1") -> dict[str, Any] | None:
    """The row with the highest ``metric`` (None/NaN values skipped). Ties (within 1e-12) go to
    the *lowest* threshold: it accepts the most samples (higher recall/coverage) for the same
    score. None when no row has a value for ``metric``."""
    best: dict[str, Any] | None = None
    for row in sorted(rows, key=lambda r: r["threshold"]):
        v = _f(row.get(metric))
        if v is None:
            continue
        if best is None or v > best[metric] + 1e-12:
            best = row
    return dict(best) if best is not None else None


# --------------------------------------------------------------------------- groups


GROUP_AGGREGATES = ("mean", "max", "vote")


def aggregate_groups(
    y_true: np.ndarray, probs: np.ndarray, groups: Sequence[str], how: str = "mean"
) -> tuple[list[str], np.ndarray, np.ndarray, int]:
    """One row per group, groups in order of first appearance: ``(names, y (G,), probs
    (G, C), mixed)``.

    - ``mean``: the mean of the samples' probabilities;
    - ``max``: the largest probability of each class over the samples, rows renormalised
      to sum to 1;
    - ``vote``: the majority of the samples' predicted classes, a tie going to the class
      with the higher mean probability; the row is ``(votes + mean) / (n + 1)``, whose
      argmax is that winner (a class with more votes always outscores one with fewer, as
      a mean probability is below 1 unless every sample votes for that class).

    A group's label is the most frequent label of its samples (a tie: the higher class
    index, so a binary step with as many error as correct sub-steps counts as an error);
    ``mixed`` counts the groups whose samples do not all share one label."""
    if how not in GROUP_AGGREGATES:
        raise ValueError(f"group aggregate '{how}' is not one of {', '.join(GROUP_AGGREGATES)}")
    y, p, c = _as_inputs(y_true, probs)
    if len(groups) != len(y):
        raise ValueError(f"{len(groups)} groups but {len(y)} labels")
    order: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        order.setdefault(str(g), []).append(i)
    names = list(order)
    y_g = np.zeros(len(names), dtype=np.int64)
    p_g = np.zeros((len(names), c), dtype=np.float64)
    mixed = 0
    for k, g in enumerate(names):
        idx = np.asarray(order[g])
        counts = np.bincount(y[idx], minlength=c)
        y_g[k] = int(np.flatnonzero(counts == counts.max())[-1])
        mixed += int(np.count_nonzero(counts) > 1)
        rows = p[idx].astype(np.float64)
        mean = rows.mean(axis=0)
        if how == "mean":
            p_g[k] = mean
        elif how == "max":
            top = rows.max(axis=0)
            p_g[k] = top / top.sum() if top.sum() > 0 else np.full(c, 1.0 / c)
        else:
            votes = np.bincount(rows.argmax(axis=1), minlength=c).astype(np.float64)
            p_g[k] = (votes + mean) / (len(idx) + mean.sum())
    return names, y_g, p_g, mixed


def grouped_summary(
    y_true: np.ndarray,
    probs: np.ndarray,
    groups: Sequence[str],
    class_names: list[str],
    how: str = "mean",
) -> dict[str, Any] | None:
    """``{"aggregate", "num_groups", "mixed_label_groups", "summary"}`` of one split's
    groups (:func:`aggregate_groups`, then :func:`summarize`); None when no group holds
    more than one sample (the figures would be the per-sample ones)."""
    names, y_g, p_g, mixed = aggregate_groups(y_true, probs, groups, how)
    if len(names) == len(groups):
        return None
    return {
        "aggregate": how,
        "num_groups": len(names),
        "mixed_label_groups": mixed,
        "summary": summarize(y_g, p_g, class_names),
    }


# --------------------------------------------------------------------------- files


def _csv_bytes(columns: list[str], rows: Iterable[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow(["" if r.get(k) is None else r.get(k) for k in columns])
    return buf.getvalue().encode()


def write_eval(
    eval_dir: Path,
    splits: dict[str, dict[str, Any]],
    class_names: list[str],
    thresholds: Sequence[float],
    meta: dict[str, Any] | None = None,
    group_aggregate: str = "mean",
) -> dict[str, Any]:
    """Write ``report.json``, ``predictions.npz``, ``per_class.csv``, ``confusion.csv`` and
    ``thresholds.csv`` under ``eval_dir`` (each atomically; ``report.json`` last, so its
    presence means the set is complete) and return the report.

    ``splits`` maps a split name (``"val"``, ``"test"``) to ``{"ids": [...], "y_true": (N,)
    ints, "probs": (N, C) floats}`` and optionally ``"groups": [...]`` (N group names: the
    recording of a window, the ``group`` of a features sample). Probabilities are stored as
    float32 and every figure is computed from the stored values, so ``load_predictions`` +
    ``threshold_sweep`` reproduce ``thresholds.csv`` exactly.

    Grouped metrics: for a split with ``groups``, ``predictions.npz`` also holds
    ``{split}_groups`` and, when some group holds more than one sample, the report gets
    ``report["grouped"][split] = {"aggregate": group_aggregate, "num_groups": G,
    "mixed_label_groups": M, "summary": summarize(...)}``: the same summary computed on
    one row per group (:func:`aggregate_groups`: the samples' probabilities aggregated by
    ``mean``, ``max`` or ``vote``; a group's label is its most frequent sample label).
    """
    eval_dir = Path(eval_dir)
    names = [str(n) for n in class_names]
    c = len(names)
    thresholds = [float(t) for t in thresholds]
    meta = dict(meta or {})

    arrays: dict[str, np.ndarray] = {"class_names": np.asarray(names, dtype=np.str_)}
    report: dict[str, Any] = {
        "task": task_of(c),
        "num_classes": c,
        "class_names": names,
        **meta,
        "splits": list(splits),
    }
    per_class_rows: list[dict[str, Any]] = []
    confusion_rows: list[dict[str, Any]] = []
    sweep_rows: list[dict[str, Any]] = []
    best: dict[str, Any] = {}
    grouped: dict[str, Any] = {}

    for split, data in splits.items():
        ids = [str(i) for i in data.get("ids", [])]
        y, p, _ = _as_inputs(data["y_true"], data["probs"], names)
        p = p.astype(np.float32)
        if len(ids) != len(y):
            raise ValueError(f"split '{split}': {len(ids)} ids but {len(y)} labels")
        arrays[f"{split}_ids"] = np.asarray(ids, dtype=np.str_)
        arrays[f"{split}_labels"] = y
        arrays[f"{split}_probs"] = p

        report[split] = summarize(y, p, names)
        per_class_rows += [{"split": split, **r} for r in per_class_table(y, p, names)]
        pred = p.argmax(axis=1) if len(y) else np.zeros(0, dtype=np.int64)
        confusion_rows += [{"split": split, **r} for r in confusion_pairs(y, pred, names)]
        sweep = threshold_sweep(y, p, thresholds)
        sweep_rows += [{"split": split, **r} for r in sweep]
        best[split] = best_threshold(sweep)
        if data.get("groups") is not None:
            groups = [str(g) for g in data["groups"]]
            if len(groups) != len(y):
                raise ValueError(f"split '{split}': {len(groups)} groups but {len(y)} labels")
            arrays[f"{split}_groups"] = np.asarray(groups, dtype=np.str_)
            entry = grouped_summary(y, p, groups, names, group_aggregate)
            if entry is not None:
                grouped[split] = entry

    report["best_threshold"] = best
    if grouped:
        report["grouped"] = grouped
    report = to_jsonable(report)

    npz = io.BytesIO()
    np.savez_compressed(npz, **arrays)
    atomic_write_bytes(eval_dir / PREDICTIONS_FILE, npz.getvalue())
    atomic_write_bytes(
        eval_dir / PER_CLASS_FILE, _csv_bytes(["split", *PER_CLASS_COLUMNS], per_class_rows)
    )
    atomic_write_bytes(
        eval_dir / CONFUSION_FILE, _csv_bytes(["split", *CONFUSION_COLUMNS], confusion_rows)
    )
    atomic_write_bytes(
        eval_dir / THRESHOLDS_FILE, _csv_bytes(["split", *SWEEP_COLUMNS], sweep_rows)
    )
    text = json.dumps(report, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    atomic_write_bytes(eval_dir / REPORT_FILE, text.encode())
    return report


def _open_npz(path: Path) -> Any:
    """``np.load`` with a damaged file reported as ValueError (missing: FileNotFoundError)."""
    data = Path(path).read_bytes()  # np.load(path) leaks its handle on a damaged file
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None


def prediction_splits(eval_dir: Path) -> list[str]:
    """The split names stored in ``eval_dir/predictions.npz``."""
    with _open_npz(Path(eval_dir) / PREDICTIONS_FILE) as z:
        return [k[: -len("_labels")] for k in z.files if k.endswith("_labels")]


def load_predictions(
    eval_dir: Path, split: str = "val"
) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """``(ids, y_true, probs, class_names)`` for ``split`` from ``eval_dir/predictions.npz``.
    FileNotFoundError when the file is missing; ValueError (naming the stored splits) when
    the split is not there."""
    path = Path(eval_dir) / PREDICTIONS_FILE
    with _open_npz(path) as z:
        if f"{split}_labels" not in z.files:
            have = [k[: -len("_labels")] for k in z.files if k.endswith("_labels")]
            raise ValueError(
                f"no split '{split}' in {path}; stored splits: {', '.join(have) or 'none'}"
            )
        ids = [str(i) for i in z[f"{split}_ids"].tolist()]
        y = z[f"{split}_labels"].astype(np.int64)
        probs = z[f"{split}_probs"]
        names = [str(n) for n in z["class_names"].tolist()]
    return ids, y, probs, names


def load_groups(eval_dir: Path, split: str = "val") -> list[str] | None:
    """The group of each sample of ``split`` (``{split}_groups`` of predictions.npz), in
    the order of :func:`load_predictions`; None when the run's data has no groups."""
    with _open_npz(Path(eval_dir) / PREDICTIONS_FILE) as z:
        key = f"{split}_groups"
        return [str(g) for g in z[key].tolist()] if key in z.files else None


def _cell(text: str | None, kind: type) -> Any:
    if text is None or text == "":
        return None
    try:
        return kind(text) if kind is not float else _f(float(text))
    except ValueError:
        return None


def read_per_class(
    eval_dir: Path, split: str, include_absent: bool = False
) -> list[dict[str, Any]]:
    """``per_class.csv`` rows of one split, typed as :func:`per_class_table` returns them
    (ints, floats, None for empty cells), in class-index order. Classes with no samples in
    the split (``support == 0``, accuracy None) are left out unless ``include_absent``.
    ``[]`` when the file or the split is missing."""
    path = Path(eval_dir) / PER_CLASS_FILE
    try:
        with open(path, newline="", encoding="utf-8") as f:
            raw = [r for r in csv.DictReader(f) if r.get("split") == split]
    except OSError:
        return []
    kinds = {"class_index": int, "support": int, "class": str}
    rows = []
    for r in raw:
        row = {k: _cell(r.get(k), kinds.get(k, float)) for k in PER_CLASS_COLUMNS}
        row["class"] = r.get("class", "")
        row["support"] = row["support"] or 0
        if row["support"] or include_absent:
            rows.append(row)
    return rows


def write_threshold(run_dir: Path, value: float, rule: str) -> dict[str, Any]:
    """Write ``threshold.json``: the picked value and its figures on val and test (the CLI's
    ``slr thresholds --pick`` and the TUI's threshold screen write the same file)."""
    import time

    out: dict[str, Any] = {
        "threshold": round(float(value), 6),
        "rule": rule,
        "picked_at": time.time(),
    }
    for split in ("val", "test"):
        try:
            _, y, p, _ = load_predictions(Path(run_dir) / "eval", split)
        except (OSError, KeyError, ValueError):
            continue
        out[split] = to_jsonable(pick_threshold(y, p, value))
    atomic_write_json(Path(run_dir) / "threshold.json", out)
    return out


def calibrate(
    splits: dict[str, dict[str, Any]],
    rule: str = "best_f1",
    default: float = 0.5,
    step: float = 0.01,
) -> dict[str, Any] | None:
    """Binary tasks: choose the decision threshold on val by ``rule`` (best_f1,
    best_accuracy, or default) and report the default-threshold and the calibrated figures
    side by side on every split. None for multi-class tasks or without val."""
    val = splits.get("val")
    if val is None or np.asarray(val["probs"]).shape[1] != 2:
        return None
    y, p = np.asarray(val["y_true"]), np.asarray(val["probs"])
    if rule == "default":
        chosen = float(default)
    else:
        metric = {"best_f1": "f1", "best_accuracy": "accuracy"}[rule]
        best = best_threshold(
            threshold_sweep(y, p, default_thresholds(step, 1 - step, step)), metric
        )
        chosen = float(best["threshold"]) if best else float(default)
    out: dict[str, Any] = {"rule": rule, "default_threshold": float(default), "threshold": chosen}
    for name, s in splits.items():
        ys, ps = np.asarray(s["y_true"]), np.asarray(s["probs"])
        out[name] = {
            "default": to_jsonable(pick_threshold(ys, ps, default)),
            "calibrated": to_jsonable(pick_threshold(ys, ps, chosen)),
        }
    return out


def fixed_calibration(
    splits: dict[str, dict[str, Any]], threshold: float, default: float, rule: str
) -> dict[str, Any] | None:
    """:func:`calibrate`'s shape for a threshold chosen elsewhere (``slr eval`` scores new
    data at the threshold its run calibrated on its own val split, never re-chosen on the
    data it scores). None for multi-class tasks."""
    first = next(iter(splits.values()), None)
    if first is None or np.asarray(first["probs"]).shape[1] != 2:
        return None
    out: dict[str, Any] = {
        "rule": rule,
        "default_threshold": float(default),
        "threshold": float(threshold),
    }
    for name, s in splits.items():
        ys, ps = np.asarray(s["y_true"]), np.asarray(s["probs"])
        out[name] = {
            "default": to_jsonable(pick_threshold(ys, ps, default)),
            "calibrated": to_jsonable(pick_threshold(ys, ps, threshold)),
        }
    return out
