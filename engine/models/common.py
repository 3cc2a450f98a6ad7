"""Pieces shared by the sequence models."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def masked_pool(h: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """Pool (B, T, H) over real frames only. ``mask`` is (B, T), True on real frames."""
    m = mask.unsqueeze(-1).to(h.dtype)
    if how == "mean":
        return (h * m).sum(1) / m.sum(1).clamp_min(1.0)
    if how == "max":
        return h.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1)
    if how == "last":
        idx = (mask.long().sum(1) - 1).clamp_min(0)
        return h[torch.arange(h.shape[0], device=h.device), idx]
    raise ValueError(f"unknown pooling '{how}'")


class Head(nn.Module):
    """Dropout + linear classifier."""

    def __init__(self, in_dim: int, num_classes: int, dropout: float):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(in_dim, num_classes)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(h))


def run_packed(rnn: nn.Module, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Run an RNN over the real frames only (packed), padded back to (B, T, H)."""
    lengths = mask.long().sum(1).clamp_min(1).cpu()
    packed = pack_padded_sequence(h, lengths, batch_first=True, enforce_sorted=False)
    out, _ = rnn(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=h.shape[1])
    return out


def batch_mask(batch: dict) -> torch.Tensor:
    x = batch["x"]
    mask = batch.get("mask")
    if mask is None:
        mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    return mask


def require_input_dim(bundle, name: str) -> int:
    from engine.models import ModelError

    if not bundle.input_dim:
        raise ModelError(
            f"model '{name}' needs per-frame feature vectors; this data source has none"
        )
    return int(bundle.input_dim)
