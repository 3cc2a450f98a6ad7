"""Dilated temporal convolutions + attention pooling (``model.name: tcn_attention``).

A 1x1 input projection, then residual blocks of two 'same'-padded convolutions of kernel
``model.kernel_size`` whose dilation doubles from block to block (1, 2, 4, ...: the
receptive field grows exponentially, non-causal since whole recordings are classified),
each conv followed by a normalisation, a ReLU and dropout. Frames are pooled by additive
attention (a learned query scores ``v . tanh(W h_t)``; padded frames get weight zero) and
a linear head classifies the pooled vector.

The mask guarantee is the same as :mod:`engine.models.temporal_cnn`: padded frames are
zeroed before every convolution, the normalisations use real frames only and the
attention softmax excludes padding, so padding never changes a prediction.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from engine.models.base import SLRModel
from engine.models.common import Head, batch_mask, require_input_dim
from engine.models.ensemble import maybe_ensemble
from engine.models.recording_stats import RankChoice, RecordingStats, WithRecordingStats
from engine.models.temporal_cnn import (
    LEVEL_NORMS,
    InstanceFloor,
    augment,
    block_channels,
    check_input_norm,
    input_channels,
    input_transform,
    make_norm,
    zero_pad,
)


class DilatedBlock(nn.Module):
    def __init__(
        self, c_in: int, c_out: int, kernel_size: int, dilation: int, norm: str, dropout: float
    ):
        super().__init__()
        bias = norm == "none"
        self.conv1 = nn.Conv1d(
            c_in, c_out, kernel_size, padding="same", dilation=dilation, bias=bias
        )
        self.conv2 = nn.Conv1d(
            c_out, c_out, kernel_size, padding="same", dilation=dilation, bias=bias
        )
        self.norm1 = make_norm(norm, c_out)
        self.norm2 = make_norm(norm, c_out)
        self.shortcut = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else None
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.drop(F.relu(self.norm1(self.conv1(zero_pad(x, mask)), mask)))
        h = self.drop(F.relu(self.norm2(self.conv2(zero_pad(h, mask)), mask)))
        s = x if self.shortcut is None else self.shortcut(x)
        return F.relu(h + s)


class AttentionPool(nn.Module):
    """Additive attention over frames: weights softmax_t(v . tanh(W h_t)), padding excluded."""

    def __init__(self, dim: int, attn_dim: int | None = None):
        super().__init__()
        attn_dim = attn_dim or dim
        self.proj = nn.Linear(dim, attn_dim)
        self.query = nn.Linear(attn_dim, 1, bias=False)

    def weights(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T) attention weights for (B, T, D) frames; zero on padded frames."""
        score = self.query(torch.tanh(self.proj(h))).squeeze(-1).float()
        score = score.masked_fill(~mask, float("-inf"))
        w = torch.softmax(score, dim=1)
        return torch.nan_to_num(w, nan=0.0).to(h.dtype)  # a batch row with no real frame

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (self.weights(h, mask).unsqueeze(-1) * h).sum(1)


class TCNAttention(WithRecordingStats, SLRModel):
    def __init__(
        self,
        input_dim: int,
        num_classes: int,
        *,
        channels: list[int],
        kernel_size: int = 3,
        norm: str = "batch",
        input_norm: str = "none",
        dropout: float = 0.1,
        head_dropout: float = 0.0,
        augment_scale: float = 0.0,
        augment_shift: float = 0.0,
        recording_stats: int = 0,
        recording_stats_diff: bool = False,
    ):
        super().__init__()
        self.input_norm = input_norm
        self.augment_scale = augment_scale
        self.augment_shift = augment_shift
        self.proj = nn.Conv1d(input_channels(input_dim, input_norm), channels[0], 1)
        dims = [channels[0], *channels]
        self.blocks = nn.ModuleList(
            DilatedBlock(a, b, kernel_size, 2**i, norm, dropout)
            for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True))
        )
        self.pool = AttentionPool(dims[-1])
        width = dims[-1] + (2 * input_dim if input_norm in LEVEL_NORMS else 0)
        self.stats = (
            RecordingStats(input_dim, recording_stats, recording_stats_diff)
            if recording_stats
            else None
        )
        self.rank_choice = RankChoice(input_dim) if input_norm == "instance_auto" else None
        self.floor = InstanceFloor()
        width += self.stats.out_features if self.stats is not None else 0
        self.head = Head(width, num_classes, head_dropout)

    def forward(self, batch: dict) -> torch.Tensor:
        x = batch["x"]
        mask = batch_mask(batch)
        h = zero_pad(x.float().transpose(1, 2), mask)
        if self.training and (self.augment_scale > 0 or self.augment_shift > 0):
            h = augment(h, mask, self.augment_scale, self.augment_shift)
        stats = self.stats(h, mask) if self.stats is not None else None
        ranked = self.rank_choice.ranked if self.rank_choice is not None else None
        h, levels = input_transform(h, mask, self.input_norm, ranked, self.floor)
        h = self.proj(h)
        for block in self.blocks:
            h = block(h, mask)
        pooled = self.pool(h.transpose(1, 2), mask)
        extra = [t for t in (levels, stats) if t is not None]
        return self.head(torch.cat([pooled, *extra], 1) if extra else pooled)


def build(cfg, bundle) -> SLRModel:
    m = cfg.model
    check_input_norm(m, "tcn_attention")
    input_dim = require_input_dim(bundle, "tcn_attention")
    return maybe_ensemble(
        m.ensemble,
        lambda: TCNAttention(
            input_dim,
            bundle.num_classes,
            channels=block_channels(m),
            kernel_size=m.kernel_size,
            norm=m.norm,
            input_norm=m.input_norm,
            dropout=m.block_dropout,
            head_dropout=m.dropout,
            augment_scale=m.augment_scale,
            augment_shift=m.augment_shift,
            recording_stats=m.recording_stats,
            recording_stats_diff=m.recording_stats_diff,
        ),
    )
