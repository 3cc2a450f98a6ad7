"""Data sources: ``data.source`` picks, through :data:`engine.catalog.SOURCES`, a module with
``build(cfg) -> DataBundle`` (and optionally ``check(cfg, progress)``).

A new source is one module (with its options model) plus one catalog line.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import TYPE_CHECKING, Any

from engine import catalog
from engine.errors import DataError

if TYPE_CHECKING:
    from engine.config import RunConfig
    from engine.data.base import DataBundle


def _module(cfg: RunConfig):
    entry = catalog.find_source(cfg.data.source)
    if entry is None:
        raise DataError(catalog.unknown_source(cfg.data.source))
    return import_module(entry.module)


def build_data(cfg: RunConfig) -> DataBundle:
    return _module(cfg).build(cfg)


def check_data(
    cfg: RunConfig, progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """What a dataset holds, per split (``slr data check``). Sources with a ``check`` of
    their own report listed/present/missing/unreadable; others report the built splits."""
    module = _module(cfg)
    if hasattr(module, "check"):
        return module.check(cfg, progress=progress)
    bundle = module.build(cfg)
    import numpy as np

    report: dict[str, Any] = {"source": cfg.data.source, "num_classes": bundle.num_classes}
    for split in ("train", "val", "test"):
        ds = getattr(bundle, split)
        n = len(ds) if ds is not None else 0
        report[split] = {"listed": n, "present": n, "missing": 0, "unreadable": 0}
    counts = np.bincount(bundle.train.labels, minlength=bundle.num_classes)
    report["classes"] = class_stats(counts, bundle.class_names)
    return report


def class_stats(train_counts, class_names: list[str]) -> dict[str, Any]:
    """Videos per class over the usable training samples."""
    import numpy as np

    counts = np.asarray(train_counts)
    present = counts[counts > 0]
    return {
        "per_class_min": int(present.min()) if present.size else 0,
        "per_class_mean": float(present.mean()) if present.size else 0.0,
        "per_class_max": int(present.max()) if present.size else 0,
        "imbalance_ratio": float(present.max() / present.min()) if present.size else None,
        "without_train": [class_names[i] for i in np.flatnonzero(counts == 0)],
    }


__all__ = ["DataError", "build_data", "check_data"]
