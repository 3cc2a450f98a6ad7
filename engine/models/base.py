"""What the trainer, evaluation and ``predict`` ask of a model: :class:`SLRModel`.

Every model family subclasses :class:`SLRModel` (an ``nn.Module``) and implements
``forward(batch) -> output``. The other methods are the trainer's hooks; their defaults
here fit a plain classifier that returns logits ``(B, C)``, and a family overrides only
what differs (CTC returns per-frame logits and has its own loss and class scores;
VideoMAE names its backbone so it can be frozen; MiniRocket is fitted in closed form).
The trainer calls these methods directly: there is no ``hasattr`` probing.

``batch`` is the dict a data source's collate builds: at least ``label`` (B,) and
``index`` (B,), plus the inputs (``x`` (B, T, F) with ``lengths``/``mask`` for
sequences, ``pixel_values`` for video clips).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class SLRModel(nn.Module):
    """The base of every model family (see the module docstring for the contract)."""

    #: True for a model fitted in closed form by :meth:`fit_batches` (no optimiser, one
    #: "epoch"); the trainer then skips gradient steps.
    is_classical: bool = False

    def compute_loss(
        self,
        out: torch.Tensor,
        batch: dict[str, Any],
        class_weight: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> torch.Tensor:
        """The training loss of one batch (default: cross-entropy on logits (B, C))."""
        return F.cross_entropy(
            out.float(), batch["label"], weight=class_weight, label_smoothing=label_smoothing
        )

    def class_scores(self, out: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        """(B, C) class probabilities from the model's output (default: softmax)."""
        return torch.softmax(out.float(), dim=-1)

    def frame_stats(self, out: torch.Tensor, batch: dict[str, Any]) -> dict[str, float]:
        """Sums over the batch that evaluation reports next to accuracy (CTC: blank
        frames). The default reports nothing."""
        return {}

    def backbone_parameters(self) -> Iterator[nn.Parameter]:
        """The parameters ``model.freeze_backbone_epochs`` keeps fixed (default: none)."""
        return iter(())

    def fit_batches(self, batches: Iterable[dict[str, Any]]) -> None:
        """Fit a classical model (``is_classical``) on the training split, in closed form."""
        raise NotImplementedError(f"{type(self).__name__} is trained by gradient steps")
