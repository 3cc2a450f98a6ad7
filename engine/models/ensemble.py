"""A deep ensemble of one family's networks trained together (``model.ensemble: K``).

On small datasets the spread between two random initialisations of the same network is
often larger than the gap between two architectures (a 3-class series set with 33 training
recordings moves several points of test accuracy with the seed). Averaging the class
probabilities of K independently initialised members removes most of that variance, which
is why InceptionTime is an ensemble of five.

The members see the same batches but share nothing else: each has its own weights and
normalisation statistics, and each is trained on its own cross-entropy (the loss is the
mean of the K losses, so one optimiser step moves every member as if it trained alone at
the same learning rate under Adam's per-parameter scaling).

The contract with the trainer (:class:`engine.models.base.SLRModel`):

- in training mode ``forward`` returns the members' logits ``(B, K, C)``;
  :meth:`Ensemble.compute_loss` scores each member, :meth:`Ensemble.class_scores` averages
  their softmaxes (the training accuracy is the ensemble's);
- in eval mode it returns ``log(mean_k softmax(logits_k))`` ``(B, C)``, so the default
  softmax of those "logits" is exactly the ensemble's mean probability: evaluation,
  ``predict`` and the ONNX export need nothing special.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.base import SLRModel


class Ensemble(SLRModel):
    def __init__(self, members: list[SLRModel]):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    @property
    def fits_input_stats(self) -> bool:
        return any(m.fits_input_stats for m in self.members)

    def input_stats(self, batch: dict[str, Any]) -> torch.Tensor:
        # the members are copies of one network: one set of statistics serves them all
        return next(m for m in self.members if m.fits_input_stats).input_stats(batch)

    def fit_input_stats(self, stats: torch.Tensor) -> None:
        for m in self.members:
            if m.fits_input_stats:
                m.fit_input_stats(stats)

    def member_logits(self, batch: dict[str, Any]) -> torch.Tensor:
        """(B, K, C) logits of every member."""
        return torch.stack([m(batch).float() for m in self.members], 1)

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        logits = self.member_logits(batch)
        if self.training:
            return logits
        return torch.logsumexp(F.log_softmax(logits, -1), 1) - math.log(logits.shape[1])

    def compute_loss(
        self,
        out: torch.Tensor,
        batch: dict[str, Any],
        class_weight: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> torch.Tensor:
        if out.dim() != 3:  # eval-mode output: the ensemble's log mean probability
            return F.nll_loss(out.float(), batch["label"], weight=class_weight)
        b, k, c = out.shape
        return F.cross_entropy(
            out.float().reshape(b * k, c),
            batch["label"].repeat_interleave(k),
            weight=class_weight,
            label_smoothing=label_smoothing,
        )

    def class_scores(self, out: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        if out.dim() == 3:
            return torch.softmax(out.float(), -1).mean(1)
        return torch.softmax(out.float(), -1)


def maybe_ensemble(size: int, build_one: Callable[[], SLRModel]) -> SLRModel:
    """``build_one()`` itself for ``size`` 1, else an :class:`Ensemble` of ``size`` of them
    (each drawn from the global RNG in turn: the run's seed fixes them all)."""
    if size <= 1:
        return build_one()
    return Ensemble([build_one() for _ in range(size)])
