"""Model registry: ``model.name`` picks a builder ``build(cfg, bundle) -> nn.Module``.

Every model takes the batch dict from the data source and returns logits (B, C). A new
family is one module plus one line here.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from engine.errors import ModelError

if TYPE_CHECKING:
    from torch import nn

    from engine.config import RunConfig
    from engine.data.base import DataBundle

REGISTRY: dict[str, str] = {
    "lstm": "engine.models.recurrent",
    "bilstm": "engine.models.recurrent",
    "gru": "engine.models.recurrent",
    "bigru": "engine.models.recurrent",
    "lstm_stack": "engine.models.recurrent",
    "transformer": "engine.models.transformer",
    "mlp": "engine.models.mlp",
    "videomae": "engine.models.videomae",
    "ctc": "engine.models.ctc",
    "temporal_cnn": "engine.models.temporal_cnn",
    "tcn_attention": "engine.models.tcn_attention",
    "minirocket": "engine.models.minirocket",
}


def build_model(cfg: RunConfig, bundle: DataBundle) -> nn.Module:
    name = cfg.model.name.lower()
    if name not in REGISTRY:
        raise ModelError(f"unknown model '{cfg.model.name}'; available: {', '.join(REGISTRY)}")
    try:
        module = import_module(REGISTRY[name])
    except ModuleNotFoundError as exc:
        if exc.name == REGISTRY[name]:
            raise ModelError(
                f"model '{name}' is not available yet in this version of slr-tui"
            ) from None
        raise
    return module.build(cfg, bundle)
