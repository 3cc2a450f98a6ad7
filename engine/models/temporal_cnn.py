"""A ResNet-style 1-D convolutional classifier over frames (``model.name: temporal_cnn``).

The time-series ResNet of Wang et al. (2017), as in Fawaz et al.'s benchmark: residual
blocks of three 'same'-padded convolutions (kernels ``model.kernel_sizes``, default
7, 5, 3: the paper's 8, 5, 3 made odd so 'same' padding is symmetric), each followed by a normalisation and a ReLU, a 1x1 shortcut where the width
changes, then global average pooling over frames and a linear head.

Padding never changes a prediction: padded frames are zeroed before every convolution
(so a conv near the end of a real sequence sees the same zeros that 'same' padding of the
unpadded sequence gives it), the normalisations never use padded frames (``batch`` is a
BatchNorm whose statistics run over real frames only; ``layer`` normalises each frame over
channels) and the pooling is a masked mean. Optional per-recording standardisation
(``model.input_norm: instance``) z-scores each channel over the recording's real frames.

Training-mode augmentation (``model.augment_scale``, ``model.augment_shift``): a random
gain per recording and a random circular shift of the real frames. Both are off in eval.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from engine.models.base import SLRModel
from engine.models.common import Head, batch_mask, masked_pool, require_input_dim
from engine.models.ensemble import maybe_ensemble
from engine.models.recording_stats import RankChoice, RecordingStats, WithRecordingStats


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm over (B, C, T) whose batch statistics use real frames only."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if not self.training:
            mean, var = self.running_mean, self.running_var
        else:
            m = mask.unsqueeze(1).to(x.dtype)
            n = m.sum().clamp_min(1.0) * 1.0
            mean = (x * m).sum((0, 2)) / n
            var = (((x - mean[None, :, None]) ** 2) * m).sum((0, 2)) / n
            with torch.no_grad():
                mom = self.momentum if self.momentum is not None else 0.1
                unbiased = var * (n / (n - 1).clamp_min(1.0))
                self.running_mean.mul_(1 - mom).add_(mom * mean.detach())
                self.running_var.mul_(1 - mom).add_(mom * unbiased.detach())
                self.num_batches_tracked += 1
        y = (x - mean[None, :, None]) * torch.rsqrt(var[None, :, None] + self.eps)
        return y * self.weight[None, :, None] + self.bias[None, :, None]


class FrameLayerNorm(nn.LayerNorm):
    """LayerNorm of each frame over channels, on (B, C, T)."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class NoNorm(nn.Module):
    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return x


def make_norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return MaskedBatchNorm1d(channels)
    if kind == "layer":
        return FrameLayerNorm(channels)
    if kind == "none":
        return NoNorm()
    raise ValueError(f"unknown norm '{kind}'")


def zero_pad(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, C, T) with the padded frames set to zero."""
    return x * mask.unsqueeze(1).to(x.dtype)


#: the variance floor of the per-recording z-score: an absolute one, and one relative to
#: the recording's largest |value| (a constant recording's rounding noise stays noise)
FLOOR_ABSOLUTE, FLOOR_RELATIVE = 1e-12, 1e-5
#: the floor before it was relative: 1e-5 in the data source's standardised units, which
#: damped every quiet recording (PLAID: a phone charger's current, std ~1e-3 after the
#: global standardisation, came out of the z-score at a tenth of its shape)
LEGACY_FLOOR = 1e-5


def variance_floor(
    x: torch.Tensor, mask: torch.Tensor, absolute=FLOOR_ABSOLUTE, relative=FLOOR_RELATIVE
) -> torch.Tensor:
    """(B, C, 1) floor added to each channel's variance: ``absolute`` plus ``relative``
    times the recording's largest |value| over its real frames, squared."""
    scale = (x.abs() * mask.unsqueeze(1).to(x.dtype)).amax(2, keepdim=True)
    return absolute + (relative * scale) ** 2


class InstanceFloor(nn.Module):
    """The variance floor of :func:`instance_stats` as buffers, so a run keeps the one it
    was trained with: a checkpoint written before the relative floor has none of these
    buffers, and loading it restores :data:`LEGACY_FLOOR` (it predicts exactly as it did)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("absolute", torch.tensor(FLOOR_ABSOLUTE))
        self.register_buffer("relative", torch.tensor(FLOOR_RELATIVE))

    def variance(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, C, 1) :func:`variance_floor` with this run's two floors."""
        return variance_floor(x, mask, self.absolute.to(x.dtype), self.relative.to(x.dtype))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if f"{prefix}absolute" not in state_dict and f"{prefix}relative" not in state_dict:
            state_dict[f"{prefix}absolute"] = torch.tensor(LEGACY_FLOOR)
            state_dict[f"{prefix}relative"] = torch.tensor(0.0)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def instance_stats(x: torch.Tensor, mask: torch.Tensor, floor: InstanceFloor | None = None):
    """Each channel's mean and std (B, C, 1) over each recording's real frames, the
    variance floored by ``floor`` (default: :class:`InstanceFloor`'s)."""
    m = mask.unsqueeze(1).to(x.dtype)
    n = m.sum(2, keepdim=True).clamp_min(1.0)
    mean = (x * m).sum(2, keepdim=True) / n
    var = (((x - mean) ** 2) * m).sum(2, keepdim=True) / n
    var_floor = variance_floor(x, mask) if floor is None else floor.variance(x, mask)
    return mean, torch.sqrt(var + var_floor)


def instance_standardize(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Z-score each channel of (B, C, T) over each recording's real frames."""
    mean, std = instance_stats(x, mask)
    return (x - mean) / std


def instance_ranks(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each channel's values of (B, C, T) replaced by their mid-rank among the recording's
    real frames, scaled to [-1, 1] (ties share their mean rank; padding gives 0): a
    per-recording quantile transform, blind to spikes and to the scale of the values.

    Ranks come from one sort: runs of equal sorted values are numbered with a cumulative
    sum, their sizes counted with a scatter-add, and each value's count of smaller ones is
    where its run starts (no ``searchsorted``, which the ONNX exporters do not take)."""
    pad = ~mask.unsqueeze(1).expand_as(x)
    key = x.float().masked_fill(pad, float("inf"))
    ordered, order = torch.sort(key, dim=2)
    starts = torch.ones_like(ordered, dtype=torch.long)  # 1 where a run of equal values starts
    starts[:, :, 1:] = (ordered[:, :, 1:] != ordered[:, :, :-1]).long()
    run = torch.cumsum(starts, 2) - 1  # each sorted value's run
    size = torch.zeros_like(run).scatter_add(2, run, torch.ones_like(run))  # per run
    first = torch.cumsum(size, 2) - size  # values before each run
    lo_sorted = first.gather(2, run)  # values smaller than each sorted value
    hi_sorted = lo_sorted + size.gather(2, run)  # values smaller or equal
    lo = torch.empty_like(lo_sorted).scatter(2, order, lo_sorted).to(x.dtype)
    hi = torch.empty_like(hi_sorted).scatter(2, order, hi_sorted).to(x.dtype)
    n = mask.sum(1).to(x.dtype).view(-1, 1, 1)
    r = (lo + hi - 1) / (n - 1).clamp_min(1.0) - 1.0
    return r.masked_fill(pad, 0.0)


def input_channels(input_dim: int, how: str) -> int:
    """Channels :func:`input_transform` hands the first convolution."""
    return {"instance_stats": 3, "instance_rank": 4, "instance_auto": 4}.get(how, 1) * input_dim


#: the input norms that hand the head each channel's level (mean and log std)
LEVEL_NORMS = ("instance_stats", "instance_rank", "instance_auto")


def input_transform(
    x: torch.Tensor,
    mask: torch.Tensor,
    how: str,
    ranked: torch.Tensor | None = None,
    floor: InstanceFloor | None = None,
):
    """(B, C', T) input after ``model.input_norm`` and the (B, 2C) level features (each
    channel's mean and log std over the real frames) with ``instance_stats``, else None.
    ``instance_auto`` is ``instance_rank`` with the ranks of the channels whose ``ranked``
    (C,) is 0 set to zero (:class:`engine.models.recording_stats.RankChoice`).

    ``instance_stats`` z-scores each channel and appends the level features as 2C
    channels constant over the real frames (zero on padding), so the convolutions can use
    level and scale non-linearly (on data like PLAID the classes are intervals of level and
    scale: no linear read-out of them separates the classes)."""
    if how == "none":
        return x, None
    mean, std = instance_stats(x, mask, floor)
    h = zero_pad((x - mean) / std, mask)
    if how == "instance":
        return h, None
    levels = torch.cat([mean, torch.log(std)], 1)  # (B, 2C, 1)
    parts = [h, zero_pad(levels.expand(-1, -1, x.shape[2]), mask)]
    if how == "instance_rank":
        parts.insert(1, instance_ranks(x, mask))
    elif how == "instance_auto":
        parts.insert(1, instance_ranks(x, mask) * ranked[None, :, None].to(x.dtype))
    return torch.cat(parts, 1), levels.squeeze(2)


def augment(x: torch.Tensor, mask: torch.Tensor, scale: float, shift: float) -> torch.Tensor:
    """Training augmentation on (B, C, T): gain in [1-scale, 1+scale] per recording and a
    circular shift of each recording's real frames by up to ``shift`` of its length."""
    if scale > 0:
        g = 1.0 + (torch.rand(x.shape[0], 1, 1, device=x.device) * 2 - 1) * scale
        x = x * g
    if shift > 0:
        lengths = mask.long().sum(1).clamp_min(1)
        t = torch.arange(x.shape[2], device=x.device)[None, :]
        max_off = (lengths.float() * shift).long()
        off = (torch.rand(x.shape[0], device=x.device) * (2 * max_off + 1).float()).long() - max_off
        src = (t - off[:, None]) % lengths[:, None]
        src = torch.where(mask, src, t)
        x = torch.gather(x, 2, src.unsqueeze(1).expand_as(x))
    return x


def pool_frames(x: torch.Tensor, mask: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Average-pool (B, C, T) frames by ``k`` (stride ``k``), with the mask to match.

    Padded frames are zeroed and T is zero-padded to a multiple of ``k`` first, so a
    recording's last, partial window averages over the same zeros whether it is padded
    inside a batch or not; pooled frame i is real iff i * k < length. (Always k - 1 zeros
    then floor-mode windows: the same windows, and no length frozen into an ONNX graph.)"""
    x = F.pad(zero_pad(x, mask), (0, k - 1))
    return F.avg_pool1d(x, k, k), mask[:, ::k]


class ResidualBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel_sizes: list[int], norm: str, dropout: float):
        super().__init__()
        dims = [c_in] + [c_out] * len(kernel_sizes)
        self.convs = nn.ModuleList(
            nn.Conv1d(a, b, k, padding="same", bias=norm == "none")
            for a, b, k in zip(dims[:-1], dims[1:], kernel_sizes, strict=True)
        )
        self.norms = nn.ModuleList(make_norm(norm, c_out) for _ in kernel_sizes)
        self.shortcut = nn.Conv1d(c_in, c_out, 1, bias=norm == "none") if c_in != c_out else None
        self.short_norm = make_norm(norm, c_out) if c_in != c_out else None
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = x
        last = len(self.convs) - 1
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            h = norm(conv(zero_pad(h, mask)), mask)
            if i < last:
                h = F.relu(h)
        s = x
        if self.shortcut is not None:
            s = self.short_norm(self.shortcut(s), mask)
        return self.drop(F.relu(h + s))


class TemporalCNN(WithRecordingStats, SLRModel):
    def __init__(
        self,
        input_dim: int,
        num_classes: int,
        *,
        channels: list[int],
        kernel_sizes: list[int],
        norm: str = "batch",
        input_norm: str = "none",
        dropout: float = 0.0,
        head_dropout: float = 0.0,
        augment_scale: float = 0.0,
        augment_shift: float = 0.0,
        pool: int = 1,
        pooling: str = "mean",
        recording_stats: int = 0,
        recording_stats_diff: bool = False,
    ):
        super().__init__()
        self.pooling = pooling
        self.input_norm = input_norm
        self.augment_scale = augment_scale
        self.augment_shift = augment_shift
        self.pool = pool
        dims = [input_channels(input_dim, input_norm), *channels]
        self.blocks = nn.ModuleList(
            ResidualBlock(a, b, kernel_sizes, norm, dropout)
            for a, b in zip(dims[:-1], dims[1:], strict=True)
        )
        width = dims[-1] * (2 if pooling == "meanmax" else 1)
        width += 2 * input_dim if input_norm in LEVEL_NORMS else 0
        self.stats = (
            RecordingStats(input_dim, recording_stats, recording_stats_diff)
            if recording_stats
            else None
        )
        self.rank_choice = RankChoice(input_dim) if input_norm == "instance_auto" else None
        self.floor = InstanceFloor()
        width += self.stats.out_features if self.stats is not None else 0
        self.head = Head(width, num_classes, head_dropout)
        self._levels: torch.Tensor | None = None
        self._stats: torch.Tensor | None = None

    def features(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, T) features of the last block and the (B, T) mask."""
        x = batch["x"]
        mask = batch_mask(batch)
        h = zero_pad(x.float().transpose(1, 2), mask)
        if self.training and (self.augment_scale > 0 or self.augment_shift > 0):
            h = augment(h, mask, self.augment_scale, self.augment_shift)
        self._stats = self.stats(h, mask) if self.stats is not None else None
        ranked = self.rank_choice.ranked if self.rank_choice is not None else None
        h, self._levels = input_transform(h, mask, self.input_norm, ranked, self.floor)
        for i, block in enumerate(self.blocks):
            if i and self.pool > 1:
                h, mask = pool_frames(h, mask, self.pool)
            h = block(h, mask)
        return h, mask

    def forward(self, batch: dict) -> torch.Tensor:
        h, mask = self.features(batch)
        h = h.transpose(1, 2)
        if self.pooling == "meanmax":
            pooled = torch.cat([masked_pool(h, mask, "mean"), masked_pool(h, mask, "max")], 1)
        else:
            pooled = masked_pool(h, mask, self.pooling)
        extra = [t for t in (self._levels, self._stats) if t is not None]
        return self.head(torch.cat([pooled, *extra], 1) if extra else pooled)


def block_channels(m) -> list[int]:
    """``model.channels``, else ``hidden_size`` for each of ``num_layers`` blocks."""
    return list(m.channels) if m.channels else [m.hidden_size] * m.num_layers


def check_input_norm(m, name: str) -> None:
    """The convolutional models take the per-recording input normalisations only (those of
    :data:`engine.models.options.InstanceNorm`)."""
    from typing import get_args

    from engine.models.options import InstanceNorm

    if m.input_norm not in (allowed := get_args(InstanceNorm)):
        from engine.models import ModelError

        raise ModelError(
            f"model '{name}' takes model.input_norm {', '.join(allowed)}, not '{m.input_norm}'"
        )


def build(cfg, bundle) -> SLRModel:
    m = cfg.model
    check_input_norm(m, "temporal_cnn")
    input_dim = require_input_dim(bundle, "temporal_cnn")
    return maybe_ensemble(
        m.ensemble,
        lambda: TemporalCNN(
            input_dim,
            bundle.num_classes,
            channels=block_channels(m),
            kernel_sizes=list(m.kernel_sizes),
            norm=m.norm,
            input_norm=m.input_norm,
            dropout=m.block_dropout,
            head_dropout=m.dropout,
            augment_scale=m.augment_scale,
            augment_shift=m.augment_shift,
            pool=m.pool,
            pooling=m.cnn_pooling,
            recording_stats=m.recording_stats,
            recording_stats_diff=m.recording_stats_diff,
        ),
    )
