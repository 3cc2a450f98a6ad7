"""An MLP over a pooled sequence (or a single feature vector of shape (1, D))."""

from __future__ import annotations

import torch
from torch import nn

from engine.models.base import SLRModel
from engine.models.common import NormFirst, batch_mask, masked_pool, require_input_dim


class MLPClassifier(SLRModel):
    def __init__(
        self,
        input_dim: int,
        num_classes: int,
        *,
        hidden_size: int = 128,
        num_layers: int = 2,
        dropout: float = 0.3,
        pooling: str = "mean",
        input_norm: str = "none",
    ):
        super().__init__()
        layers: list[nn.Module] = []
        d = input_dim
        for _ in range(max(num_layers - 1, 0)):
            layers += [nn.Linear(d, hidden_size), nn.GELU(), nn.Dropout(dropout)]
            d = hidden_size
        layers.append(nn.Linear(d, num_classes))
        self.net = NormFirst(input_dim, input_norm, *layers)
        self.pooling = pooling

    def forward(self, batch: dict) -> torch.Tensor:
        x = batch["x"]
        if x.dim() == 3:
            x = masked_pool(x, batch_mask(batch), self.pooling)
        return self.net(x)


def build(cfg, bundle) -> SLRModel:
    m = cfg.model
    return MLPClassifier(
        require_input_dim(bundle, "mlp"),
        bundle.num_classes,
        hidden_size=m.hidden_size,
        num_layers=m.num_layers,
        dropout=m.dropout,
        pooling=m.pooling,
        input_norm=m.input_norm,
    )
