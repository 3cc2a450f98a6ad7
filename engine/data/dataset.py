"""The per-sample dataset base of every source, torch-free (numpy only), so that a source
module, which holds its options model, imports without torch (``engine.data.base``
re-exports it).

A :class:`SampleDataset` is a map-style dataset as ``torch.utils.data.DataLoader`` takes it
(``__len__`` and ``__getitem__``). Training datasets are indexed with ``(index, epoch)``
tuples by ``engine.data.base.EpochSampler``, so augmentation draws from a generator seeded
by ``(seed, epoch, index)``: the same sample gets the same augmentation whatever the worker
count or a resume point. Evaluation datasets are indexed with plain ints and never augment.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class SampleDataset:
    """Base for per-sample datasets. Subclasses implement :meth:`load`."""

    def __init__(self, ids: Sequence[str], labels: Sequence[int], *, augment: bool, seed: int):
        self.ids = list(ids)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.augment = augment
        self.seed = int(seed)

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, index: int, rng: np.random.Generator | None) -> dict[str, Any]:
        """Return the model inputs for one sample, e.g. ``{"x": (T, D) float32 array}``.

        ``rng`` is None for evaluation (no augmentation)."""
        raise NotImplementedError

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, epoch = key if isinstance(key, tuple) else (int(key), 0)
        rng = np.random.default_rng([self.seed, epoch, index]) if self.augment else None
        item = self.load(index, rng)
        item["label"] = int(self.labels[index])
        item["id"] = self.ids[index]
        item["index"] = index
        return item
