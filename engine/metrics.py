"""The classification figures :mod:`engine.evaluate` reports, in numpy.

They are the definitions of :mod:`sklearn.metrics` (``zero_division=0``, ties as sklearn
breaks them) and ``tests/test_metrics.py`` checks every function against it on random and
degenerate inputs. They live here because importing ``sklearn.metrics`` (it pulls in scipy
and pandas) took 0.85 s: 8 % of a 10 s demo run, paid by every run, `slr eval`, `slr predict`
and the TUI's threshold screen before their first figure.

``y`` holds class indices ``0..C-1``; ``pred`` predicted indices; ``score`` a score per
sample (higher: more positive); ``probs`` an ``(N, C)`` array of probabilities.
"""

from __future__ import annotations

import numpy as np


def confusion(y: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``(C, C)`` counts: row = true class, column = predicted class."""
    c = int(num_classes)
    flat = np.asarray(y, np.int64) * c + np.asarray(pred, np.int64)
    return np.bincount(flat, minlength=c * c).reshape(c, c)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den``, 0 where ``den`` is 0 (sklearn's ``zero_division=0``)."""
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den != 0)


def per_class(
    y: np.ndarray, pred: np.ndarray, num_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall, F1 and support of every class (``labels=range(C)``)."""
    cm = confusion(y, pred, num_classes)
    tp = np.diag(cm).astype(np.float64)
    predicted, support = cm.sum(axis=0), cm.sum(axis=1)
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, support)
    f1 = _ratio(2 * tp, predicted + support)  # 2TP / (2TP + FP + FN)
    return precision, recall, f1, support


def accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(np.asarray(y) == np.asarray(pred)))


def top_k_accuracy(y: np.ndarray, probs: np.ndarray, k: int) -> float:
    """Share of samples whose class is among the ``k`` highest probabilities (k capped at
    C); among equal probabilities the higher class index ranks first, as in sklearn."""
    p = np.asarray(probs)
    k = min(int(k), p.shape[1])
    if k >= p.shape[1]:
        return 1.0
    if p.shape[1] == 2:  # binary, k = 1: positive when its probability is above 0.5
        return float(np.mean((p[:, 1] > 0.5) == (np.asarray(y) == 1)))
    ranked = np.argsort(p, axis=1, kind="mergesort")[:, ::-1][:, :k]
    return float(np.mean((ranked == np.asarray(y)[:, None]).any(axis=1)))


def mean_nll(y: np.ndarray, probs: np.ndarray) -> float:
    """Mean negative log probability of the true class (probabilities already clipped
    away from 0)."""
    p = np.asarray(probs, np.float64)
    return float(-np.mean(np.log(p[np.arange(len(p)), np.asarray(y, np.int64)])))


def binary_prf(y: np.ndarray, pred: np.ndarray) -> tuple[float, float, float]:
    """Precision, recall and F1 of the positive class (index 1)."""
    prec, rec, f1, _ = per_class(y, pred, 2)
    return float(prec[1]), float(rec[1]), float(f1[1])


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given the mean of the ranks they span."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(values)]  # exclusive
    ranks = np.empty(len(values), np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (both classes must be present): the probability that a
    positive scores above a negative, ties counting half."""
    y = np.asarray(y) == 1
    pos, neg = int(y.sum()), int((~y).sum())
    ranks = _average_ranks(np.asarray(score, np.float64))
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """Average precision: the precision at each distinct score threshold, weighted by the
    recall it adds (no interpolation), as ``sklearn.metrics.average_precision_score``."""
    y = np.asarray(y) == 1
    s = np.asarray(score, np.float64)
    order = np.argsort(-s, kind="mergesort")
    s, hits = s[order], y[order]
    last = np.r_[np.flatnonzero(s[1:] != s[:-1]), len(s) - 1]  # the end of each threshold
    tps = np.cumsum(hits)[last]
    precision = tps / (last + 1)
    recall = tps / max(int(y.sum()), 1)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
