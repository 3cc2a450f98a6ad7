"""The one contract every data source fulfils.

A source module exposes ``build(cfg: RunConfig) -> DataBundle``. Items are dicts; the
collate function pads variable-length sequences and returns a batch dict that the models
take as is (``model(batch) -> logits``).

Training datasets are indexed with ``(index, epoch)`` tuples by :class:`EpochSampler`, so
augmentation draws from a generator seeded by ``(seed, epoch, index)``: the same sample
gets the same augmentation whatever the worker count or a resume point, which keeps
training repeatable. Evaluation datasets are indexed with plain ints and never augment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler

from engine.data.dataset import SampleDataset  # noqa: F401 - re-exported for sources
from engine.errors import DataError  # noqa: F401 - re-exported for sources


def pad_collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Pad ``x`` of shape (T, D) to the longest T in the batch; ``mask`` is True on real frames.

    Other array-valued keys of equal shape are stacked; ``id`` stays a list of strings."""
    lengths = [int(np.asarray(it["x"]).shape[0]) for it in items]
    t_max = max(lengths)
    first = np.asarray(items[0]["x"])
    x = torch.zeros((len(items), t_max, *first.shape[1:]), dtype=torch.float32)
    mask = torch.zeros((len(items), t_max), dtype=torch.bool)
    for i, (it, n) in enumerate(zip(items, lengths, strict=True)):
        x[i, :n] = torch.as_tensor(np.asarray(it["x"]), dtype=torch.float32)
        mask[i, :n] = True
    batch: dict[str, Any] = {
        "x": x,
        "mask": mask,
        "label": torch.tensor([it["label"] for it in items], dtype=torch.long),
        "index": torch.tensor([it["index"] for it in items], dtype=torch.long),
        "id": [it["id"] for it in items],
    }
    for key in items[0]:
        if key in batch or key == "x":
            continue
        batch[key] = torch.stack([torch.as_tensor(np.asarray(it[key])) for it in items])
    return batch


class EpochSampler(Sampler):
    """Deterministic, shardable sampler.

    Yields ``(index, epoch)`` for training (shuffled by ``seed + epoch``) or plain ints for
    evaluation. With ``world_size > 1`` each rank takes every ``world_size``-th item of the
    same order (training pads by wrapping so every rank gets the same count; evaluation
    does not pad, the trainer gathers and de-duplicates by index). ``skip`` drops the first
    items of this rank's share, which is how a resumed run continues mid-epoch.

    ``passes`` > 1 makes one epoch several shuffled passes over the data (a small training
    split still gives an epoch enough optimiser steps; see ``training.min_epoch_steps``);
    pass ``p`` of epoch ``e`` hands the dataset the augmentation epoch ``e * passes + p``,
    so every pass augments differently. With ``passes == 1`` nothing changes.
    """

    def __init__(
        self,
        n: int,
        *,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        with_epoch: bool | None = None,
    ):
        self.n = n
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.with_epoch = shuffle if with_epoch is None else with_epoch
        self.epoch = 0
        self.skip = 0
        self.passes = 1

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch = epoch
        self.skip = skip

    def _pass_order(self, p: int) -> list[int]:
        if not self.shuffle:
            return list(range(self.n))
        seed = self.seed * 1_000_003 + self.epoch
        if p:  # pass 0 keeps the single-pass order, so passes=1 runs are unchanged
            seed = seed * 1009 + p
        g = torch.Generator().manual_seed(seed)
        return torch.randperm(self.n, generator=g).tolist()

    def _order(self) -> list[tuple[int, int]]:
        """(index, pass) pairs of this rank's share, in order."""
        order = [(i, p) for p in range(self.passes) for i in self._pass_order(p)]
        if self.world_size > 1:
            if self.shuffle:  # equal shares so ranks stay in step
                per_rank = -(-len(order) // self.world_size)
                total = per_rank * self.world_size
                order = (order * (total // max(len(order), 1) + 1))[:total]
            order = order[self.rank :: self.world_size]
        return order

    def __len__(self) -> int:
        return max(len(self._order()) - self.skip, 0)

    def __iter__(self) -> Iterator[Any]:
        for i, p in self._order()[self.skip :]:
            yield (i, self.epoch * self.passes + p) if self.with_epoch else i


@dataclass
class DataBundle:
    """What a source hands the trainer."""

    train: SampleDataset
    val: SampleDataset
    test: SampleDataset | None
    class_names: list[str]
    input_dim: int | None = None
    collate_fn: Callable[[list[dict[str, Any]]], dict[str, Any]] = pad_collate
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def task(self) -> str:
        return "binary" if self.num_classes == 2 else "multiclass"

    def class_weights(self) -> torch.Tensor:
        """w[c] = (1/count[c]) / mean_k(1/count[k]) over the training split.

        A class absent from training gets weight 0 (it cannot be learned from this split),
        and the mean runs over the present classes."""
        return class_weights(self.train.labels, self.num_classes)


def class_weights(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes).astype(
        np.float64
    )
    inv = np.zeros(num_classes, dtype=np.float64)
    present = counts > 0
    inv[present] = 1.0 / counts[present]
    if present.any():
        inv[present] /= inv[present].mean()
    return torch.tensor(inv, dtype=torch.float32)
