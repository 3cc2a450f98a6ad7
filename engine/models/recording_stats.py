"""What each channel's values look like over a whole recording (``model.recording_stats``).

Some real series are told apart less by their shape than by the distribution of their
values: on the PLAID appliance-current recordings a random forest on nine numbers per
recording (quantiles, mean, spread) reaches 0.91 test accuracy while a convolutional
network on the z-scored frames stays near 0.85. The levels there span four decades (a
phone charger next to a heater), so after a global standardisation the small appliances
differ in the fourth decimal: invisible to a network, obvious to a tree.

:class:`RecordingStats` gives a network what the tree sees:

1. per channel, over each recording's real frames only (padding never counts): the
   quantiles :data:`QUANTILES`, the mean and the log standard deviation; with
   ``model.recording_stats_diff`` the same of the channel's first difference (frame to
   frame), which sees how sharply a recording moves (a switch-on transient, an edge):
   a random forest on the PLAID statistics went from 0.89-0.90 to 0.90-0.91 with them,
   on ACSF1 from 0.81-0.82 to 0.88-0.89, on ArrowHead from 0.61-0.65 to 0.70-0.71;
2. each statistic mapped through its own empirical distribution over the training
   recordings (a quantile transform fitted once before training, :meth:`fit`; kept as
   buffers, so best.pt carries it and evaluation, ``predict`` and export reuse it): a
   value becomes its training-set quantile, stretched by the logit onto an unbounded,
   well-spread scale, so four decades or four decimals look alike to the network;
3. a hidden layer (linear + ReLU) whose output the model concatenates with its pooled
   features before the classifier head.

Everything is written with comparisons, sorts and gathers that the ONNX exporters take.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from engine.models.common import batch_mask

log = logging.getLogger(__name__)

#: the per-channel quantiles taken of each recording (0 and 1: its minimum and maximum)
QUANTILES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)
#: statistics per channel: the quantiles, the mean and the log std
STATS_PER_CHANNEL = len(QUANTILES) + 2
#: reference points of each fitted quantile transform
REFERENCE_POINTS = 101
_EPS = 1e-5


def recording_stats(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, C * :data:`STATS_PER_CHANNEL`) statistics of (B, C, T) over the real frames of
    ``mask`` (B, T): for each channel its quantiles (linear interpolation, as
    ``numpy.quantile``), mean and log std."""
    b, c, t = x.shape
    x = x.float()
    real = mask.unsqueeze(1).expand(b, c, t)
    n = mask.sum(1).clamp_min(1).to(x.dtype)  # (B,)
    ordered = torch.sort(x.masked_fill(~real, float("inf")), dim=2).values
    q = torch.tensor(QUANTILES, dtype=x.dtype, device=x.device)
    pos = q[None, :] * (n[:, None] - 1)  # (B, Q)
    lo = pos.floor()
    frac = (pos - lo)[:, None, :]
    lo_i = lo.long().clamp(0, t - 1)
    hi_i = (lo_i + 1).clamp_max((n.long() - 1).clamp_min(0)[:, None]).clamp(0, t - 1)
    gather = lambda i: ordered.gather(2, i[:, None, :].expand(b, c, -1))  # noqa: E731
    quant = gather(lo_i) * (1 - frac) + gather(hi_i) * frac  # (B, C, Q)
    m = real.to(x.dtype)
    mean = (x * m).sum(2) / n[:, None]
    var = (((x - mean[:, :, None]) ** 2) * m).sum(2) / n[:, None]
    log_std = 0.5 * torch.log(var + _EPS)
    return torch.cat([quant, mean[:, :, None], log_std[:, :, None]], 2).reshape(b, -1)


def difference_stats(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """:func:`recording_stats` of each channel's first difference over the real frames
    (a recording of one frame has none: zeros)."""
    d = x[:, :, 1:] - x[:, :, :-1]
    real = mask[:, 1:] & mask[:, :-1]
    if d.shape[2] == 0:  # every recording of the batch is one frame long
        return x.new_zeros(x.shape[0], x.shape[1] * STATS_PER_CHANNEL).float()
    stats = recording_stats(d, real)
    return torch.where(real.any(1, keepdim=True), stats, torch.zeros_like(stats))


class RecordingStats(nn.Module):
    """Statistics of each recording (and of its first difference, with ``diff``),
    quantile-transformed and through a hidden layer."""

    def __init__(self, input_dim: int, hidden: int, diff: bool = False):
        super().__init__()
        self.diff = diff
        features = input_dim * STATS_PER_CHANNEL * (2 if diff else 1)
        self.register_buffer("reference", torch.zeros(features, REFERENCE_POINTS))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self.hidden = nn.Sequential(nn.Linear(features, hidden), nn.ReLU())
        self.out_features = hidden

    @torch.no_grad()
    def fit(self, stats: torch.Tensor) -> None:
        """Fit each feature's quantile transform on (N, F) training statistics."""
        if stats.ndim != 2 or stats.shape[1] != self.reference.shape[0] or len(stats) == 0:
            raise ValueError(f"expected (N, {self.reference.shape[0]}) statistics")
        levels = torch.linspace(0, 1, REFERENCE_POINTS, dtype=torch.float64)
        ref = torch.quantile(stats.double(), levels, dim=0).t()
        self.reference.copy_(ref.to(self.reference.dtype))
        self.fitted.fill_(True)

    def transform(self, stats: torch.Tensor) -> torch.Tensor:
        """Each statistic's quantile among the training recordings, through the logit
        (clipped to the reference range: about +-5.3). Identity before :meth:`fit` (chosen
        in the graph, not in Python: an exported model must not depend on a buffer's value)."""
        ref = self.reference  # (F, R), sorted along R
        r = ref.shape[1]
        v = stats.float()
        below = (ref[None, :, :] <= v[:, :, None]).sum(2)  # (B, F): refs at or below v
        lo_i = (below - 1).clamp(0, r - 2)
        r_lo = ref[None].expand(len(v), -1, -1).gather(2, lo_i[:, :, None]).squeeze(2)
        r_hi = ref[None].expand(len(v), -1, -1).gather(2, (lo_i + 1)[:, :, None]).squeeze(2)
        span = r_hi - r_lo
        t = torch.where(span > 0, (v - r_lo) / span.clamp_min(1e-12), torch.full_like(v, 0.5))
        u = (lo_i.to(v.dtype) + t.clamp(0, 1)) / (r - 1)
        u = u.clamp(0.5 / r, 1 - 0.5 / r)
        return torch.where(self.fitted, torch.log(u) - torch.log1p(-u), v)

    def raw(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, F) statistics of (B, C, T) frames, before the transform."""
        stats = recording_stats(x, mask)
        return torch.cat([stats, difference_stats(x, mask)], 1) if self.diff else stats

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, hidden) from (B, C, T) frames and their (B, T) mask."""
        return self.hidden(self.transform(self.raw(x, mask)))


#: a channel whose recordings' median IQR / (1.349 std) is below this is heavy-tailed
#: (a Gaussian gives 1; a few large values, spikes or a switch-on, inflate the std)
HEAVY_TAIL_RATIO = 0.8
_Q25, _Q75 = QUANTILES.index(0.25), QUANTILES.index(0.75)


def spread_ratios(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, C) each recording's IQR / (1.349 std) per channel over its real frames (1 for
    a constant channel): about 1 for Gaussian values, 1.48 for a sine, well below 1 where
    a few large values (spikes, a switch-on) inflate the std. Exact at any scale: no
    variance floor (a quiet recording's std of 1e-3 is its std)."""
    b, c, _ = x.shape
    q = recording_stats(x, mask).reshape(b, c, STATS_PER_CHANNEL).double()
    iqr = q[:, :, _Q75] - q[:, :, _Q25]
    xd = x.double()
    m = mask.unsqueeze(1).double()
    n = m.sum(2).clamp_min(1.0)
    mean = (xd * m).sum(2) / n
    std = ((((xd - mean[:, :, None]) ** 2) * m).sum(2) / n).sqrt()
    return torch.where(std > 0, iqr / (1.349 * std.clamp_min(1e-300)), torch.ones_like(std))


class RankChoice(nn.Module):
    """Which channels ``model.input_norm: instance_auto`` hands the network as
    per-recording ranks too: those whose recordings are heavy-tailed
    (:func:`spread_ratios` below :data:`HEAVY_TAIL_RATIO`), decided once on the training
    split (:meth:`fit`) and kept as a buffer, so best.pt, ``predict`` and export reuse it.

    Why: ranks are blind to spikes and to how a recording's values are spread, which is
    what the appliance currents of PLAID need (the temporal CNN, seeds 42 and 0: 0.926 /
    0.918 test accuracy with ranks, 0.894 / 0.901 without); on smooth series they give a
    small training set a second, distorted copy of every shape to overfit (three seeds:
    ArrowHead 0.789 with, 0.851 without; OSULeaf 0.956 / 0.981)."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.register_buffer("ranked", torch.zeros(channels))

    @torch.no_grad()
    def fit(self, ratios: torch.Tensor) -> None:
        """Decide from the (N, C) :func:`spread_ratios` of the training recordings: the
        channels whose median is below :data:`HEAVY_TAIL_RATIO` get ranks."""
        ratio = ratios.double().median(0).values
        heavy = ratio < HEAVY_TAIL_RATIO
        self.ranked.copy_(heavy.to(self.ranked.dtype))
        shown = ", ".join(f"{r:.2f}" for r in ratio[:8].tolist())
        more = ", ..." if self.channels > 8 else ""
        log.info(
            "input_norm instance_auto: ranks for %d of %d channels (median IQR / 1.349 std "
            "per channel: %s%s; heavy-tailed below %.2f)",
            int(heavy.sum()),
            self.channels,
            shown,
            more,
            HEAVY_TAIL_RATIO,
        )


class WithRecordingStats:
    """The trainer hooks of a model holding an optional :class:`RecordingStats` as
    ``self.stats`` and an optional :class:`RankChoice` as ``self.rank_choice`` (mixed in
    before :class:`engine.models.base.SLRModel`): both are fitted on the same statistics
    of the training recordings."""

    stats: RecordingStats | None
    rank_choice: RankChoice | None

    @property
    def fits_input_stats(self) -> bool:
        return self.stats is not None or self.rank_choice is not None

    def input_stats(self, batch: dict) -> torch.Tensor:
        """The :class:`RecordingStats` rows, then (with a :class:`RankChoice`) the C
        :func:`spread_ratios`."""
        mask = batch_mask(batch)
        x = batch["x"].float().transpose(1, 2) * mask.unsqueeze(1).float()
        parts = [self.stats.raw(x, mask)] if self.stats is not None else []
        if self.rank_choice is not None:
            parts.append(spread_ratios(x, mask).to(x.dtype))
        return torch.cat(parts, 1)

    def fit_input_stats(self, stats: torch.Tensor) -> None:
        ratios = self.rank_choice.channels if self.rank_choice is not None else 0
        if self.stats is not None:
            self.stats.fit(stats[:, : stats.shape[1] - ratios])
        if self.rank_choice is not None:
            self.rank_choice.fit(stats[:, stats.shape[1] - ratios :])
