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


class NormFirst(nn.Sequential):
    """``Sequential(norm, *layers)`` whose first module normalises each frame's features
    (``model.input_norm``: ``layer`` = LayerNorm across features, ``none`` = identity).

    LayerNorm across features erases any shift shared by all features (a class told apart
    by the mean of its features becomes invisible) and, with a single channel, the whole
    signal, so the default is ``none`` (the data sources standardise each feature with
    training statistics). Checkpoints written before the option existed hold the
    LayerNorm's weights at ``0.``: loading one swaps the LayerNorm back in, so such a run
    predicts exactly as it did."""

    def __init__(self, input_dim: int, norm: str, *layers: nn.Module):
        first = nn.LayerNorm(input_dim) if norm == "layer" else nn.Identity()
        super().__init__(first, *layers)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        w = state_dict.get(f"{prefix}0.weight")
        if w is not None and isinstance(self[0], nn.Identity) and w.dim() == 1:
            self[0] = nn.LayerNorm(int(w.shape[0])).to(w.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


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


def keras_init_(rnn: nn.Module) -> nn.Module:
    """Keras' recurrent initialisation: Glorot-uniform input weights, orthogonal recurrent
    weights, zero biases and, for LSTMs, a forget-gate bias of 1 (Jozefowicz et al., 2015).

    PyTorch's default (every weight uniform in +-1/sqrt(hidden), forget bias ~0) makes an
    LSTM forget within a few dozen frames; over whole recordings of hundreds of frames it
    then does not learn at all (measured: a UCR series of 251 frames stayed at chance)."""
    gates = 4 if isinstance(rnn, nn.LSTM) else 3 if isinstance(rnn, nn.GRU) else 1
    for name, p in rnn.named_parameters():
        if name.startswith("weight_ih"):
            for w in p.data.chunk(gates, 0):
                nn.init.xavier_uniform_(w)
        elif name.startswith("weight_hh"):
            for w in p.data.chunk(gates, 0):
                nn.init.orthogonal_(w)
        elif name.startswith("bias"):
            p.data.zero_()
            if gates == 4 and name.startswith("bias_ih"):
                h = p.shape[0] // 4
                p.data[h : 2 * h] = 1.0  # i, f, g, o: the forget gate
    return rnn


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
