"""Model families: ``model.name`` picks, through :data:`engine.catalog.MODELS`, a module with
``build(cfg, bundle) -> SLRModel``.

Every model subclasses :class:`engine.models.base.SLRModel`: it takes the batch dict from
the data source and returns its output (logits (B, C) for a plain classifier). A new family
is one module, its options model in ``engine/models/options.py`` and one catalog line.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from engine import catalog
from engine.errors import ModelError

if TYPE_CHECKING:
    from engine.config import RunConfig
    from engine.data.base import DataBundle
    from engine.models.base import SLRModel


def build_model(cfg: RunConfig, bundle: DataBundle) -> SLRModel:
    entry = catalog.find_model(cfg.model.name)
    if entry is None:
        raise ModelError(catalog.unknown_model(cfg.model.name))
    return import_module(entry.module).build(cfg, bundle)


__all__ = ["ModelError", "build_model"]
