"""Data sources: ``data.source`` picks a module exposing ``build(cfg) -> DataBundle``.

A new source is one module plus one line here.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from engine.errors import DataError

if TYPE_CHECKING:
    from engine.config import RunConfig
    from engine.data.base import DataBundle

SOURCES: dict[str, str] = {
    "synthetic": "engine.data.synthetic",
    "landmarks": "engine.data.landmarks",
    "wlasl": "engine.data.wlasl",
    "video_folder": "engine.data.video_folder",
    "sequences_csv": "engine.data.sequences_csv",
    "features": "engine.data.features",
}


def build_data(cfg: RunConfig) -> DataBundle:
    name = cfg.data.source
    if name not in SOURCES:
        raise DataError(f"unknown data source '{name}'; available: {', '.join(SOURCES)}")
    try:
        module = import_module(SOURCES[name])
    except ModuleNotFoundError as exc:
        if exc.name == SOURCES[name]:
            raise DataError(
                f"data source '{name}' is not available yet in this version of slr-tui"
            ) from None
        raise
    return module.build(cfg)


__all__ = ["DataError", "SOURCES", "build_data"]
