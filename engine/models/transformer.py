"""A small Transformer encoder over frames, with learned positions and a padding mask."""

from __future__ import annotations

import torch
from torch import nn

from engine.models.base import SLRModel
from engine.models.common import Head, NormFirst, batch_mask, masked_pool, require_input_dim

# positions for a source without data.max_frames (sequences_csv, features): what the one
# flat data section gave them, so their checkpoints keep loading
DEFAULT_MAX_FRAMES = 64


class TransformerClassifier(SLRModel):
    def __init__(
        self,
        input_dim: int,
        num_classes: int,
        *,
        hidden_size: int = 128,
        num_layers: int = 2,
        num_heads: int = 4,
        ff_size: int | None = None,
        dropout: float = 0.1,
        max_len: int = 1024,
        pooling: str = "mean",
        input_norm: str = "none",
    ):
        super().__init__()
        self.proj = NormFirst(input_dim, input_norm, nn.Linear(input_dim, hidden_size))
        self.pos = nn.Parameter(torch.zeros(1, max_len, hidden_size))
        nn.init.normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(
            hidden_size,
            num_heads,
            dim_feedforward=ff_size or 4 * hidden_size,
            dropout=dropout,
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden_size)
        self.pooling = pooling
        self.head = Head(hidden_size, num_classes, dropout)

    def forward(self, batch: dict) -> torch.Tensor:
        x = batch["x"]
        mask = batch_mask(batch)
        t = x.shape[1]
        if t > self.pos.shape[1]:
            raise ValueError(f"sequence of {t} frames exceeds the model's {self.pos.shape[1]}")
        h = self.proj(x) + self.pos[:, :t]
        h = self.encoder(h, src_key_padding_mask=~mask)
        return self.head(masked_pool(self.norm(h), mask, self.pooling))


def build(cfg, bundle) -> SLRModel:
    m = cfg.model
    if m.hidden_size % m.num_heads:
        from engine.models import ModelError

        raise ModelError(
            f"model.hidden_size ({m.hidden_size}) must be divisible by model.num_heads ({m.num_heads})"
        )
    return TransformerClassifier(
        require_input_dim(bundle, "transformer"),
        bundle.num_classes,
        hidden_size=m.hidden_size,
        num_layers=m.num_layers,
        num_heads=m.num_heads,
        ff_size=m.ff_size,
        dropout=m.dropout,
        max_len=max(getattr(cfg.data, "max_frames", DEFAULT_MAX_FRAMES), 16),
        pooling=m.pooling,
        input_norm=m.input_norm,
    )
