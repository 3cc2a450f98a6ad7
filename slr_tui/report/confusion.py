"""The confusion matrix as the report's heatmap and the TUI's character heatmap show it:
counts, row-normalised shares, and the most confused block of a large matrix. numpy only."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# above this many classes a heatmap shows the most confused block alone
BLOCK = 30


def confusion_counts(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> np.ndarray:
    """``(C, C)`` int counts: row = true class, column = predicted class."""
    y = np.asarray(y_true, dtype=np.int64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    if len(y) != len(p):
        raise ValueError(f"{len(y)} labels but {len(p)} predictions")
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    if len(y):
        np.add.at(cm, (y, p), 1)
    return cm


def row_normalised(cm: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (the share of the true class's samples predicted as
    each class); a class with no samples is a row of zeros."""
    cm = np.asarray(cm, dtype=np.float64)
    sums = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, sums, out=np.zeros_like(cm), where=sums > 0)


def most_confused_classes(cm: np.ndarray, n: int) -> list[int]:
    """The ``n`` classes of the most confused block, in class order.

    All classes when there are ``n`` or fewer. Otherwise the off-diagonal cells are taken
    by count, largest first (ties: lower true index, then lower predicted index), and both
    classes of each join the block until it holds ``n``; when the mistakes run out first,
    the classes with the most mistakes (row plus column, off the diagonal; ties: lower
    index) fill it up.
    """
    cm = np.asarray(cm)
    c = cm.shape[0]
    if n >= c:
        return list(range(c))
    n = max(n, 0)
    off = cm.astype(np.int64).copy()
    np.fill_diagonal(off, 0)
    rows, cols = np.nonzero(off)
    order = sorted(zip(rows.tolist(), cols.tolist(), strict=True), key=lambda ij: (-off[ij], *ij))
    chosen: list[int] = []
    for i, j in order:
        for k in (i, j):
            if len(chosen) < n and k not in chosen:
                chosen.append(k)
        if len(chosen) >= n:
            break
    if len(chosen) < n:
        mass = off.sum(axis=0) + off.sum(axis=1)
        for k in sorted(range(c), key=lambda k: (-mass[k], k)):
            if len(chosen) >= n:
                break
            if k not in chosen:
                chosen.append(k)
    return sorted(chosen)


def block_mass(cm: np.ndarray, classes: Sequence[int]) -> tuple[int, int]:
    """(mistakes inside the block, all mistakes): how much of the confusion a block shows."""
    off = np.asarray(cm, dtype=np.int64).copy()
    np.fill_diagonal(off, 0)
    idx = np.asarray(list(classes), dtype=np.int64)
    inside = int(off[np.ix_(idx, idx)].sum()) if len(idx) else 0
    return inside, int(off.sum())
