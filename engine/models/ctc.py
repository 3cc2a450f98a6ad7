"""A BiLSTM encoder with a CTC head over the classes plus blank (the phase-1 guide).

Each isolated sign is a target sequence of length one. During training a *blank penalty*
is subtracted from the blank's log-probability before the CTC loss (after the softmax, so
the model cannot simply absorb it), which makes every blank frame of an alignment cost
something, so the model does not settle on predicting blank everywhere (the usual collapse
on short, isolated clips). Decoding takes
the greedy path over the real frames, drops blanks, and predicts the most frequent
non-blank label; class scores are that vote histogram plus the mean non-blank posteriors
(which only break ties, or decide when the path is all blank), normalised to sum to one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.base import SLRModel
from engine.models.common import NormFirst, batch_mask, require_input_dim, run_packed


class CTCClassifier(SLRModel):
    def __init__(
        self,
        input_dim: int,
        num_classes: int,
        *,
        hidden_size: int = 64,
        num_layers: int = 1,
        dropout: float = 0.5,
        blank_penalty: float = 0.0,
        input_norm: str = "none",
    ):
        super().__init__()
        self.num_classes = num_classes
        self.blank = num_classes  # the last index
        self.blank_penalty = blank_penalty
        self.proj = NormFirst(input_dim, input_norm, nn.Linear(input_dim, hidden_size))
        self.rnn = nn.LSTM(
            hidden_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(2 * hidden_size, num_classes + 1)

    def forward(self, batch: dict) -> torch.Tensor:
        """Per-frame logits (B, T, C + 1); the last column is blank."""
        x = batch["x"]
        mask = batch_mask(batch)
        h = torch.relu(self.proj(x))
        out = run_packed(self.rnn, h, mask)
        return self.out(self.drop(out))

    # ---- the trainer's hooks ------------------------------------------------------------

    def compute_loss(
        self,
        out: torch.Tensor,
        batch: dict,
        class_weight: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> torch.Tensor:
        """CTC loss with the blank penalty; per-sample class weights when given.
        ``label_smoothing`` does not apply to CTC and is ignored."""
        log_probs = F.log_softmax(out.float(), dim=-1)
        if self.training and self.blank_penalty:
            # after the softmax, so it is not normalised away: every blank frame of an
            # alignment costs `blank_penalty` nats, which favours alignments that emit the
            # label over more frames instead of a lone spike (or none at all)
            penalty = torch.zeros_like(log_probs[:1, :1])
            penalty[..., self.blank] = self.blank_penalty
            log_probs = log_probs - penalty
        log_probs = log_probs.transpose(0, 1)  # (T, B, C+1)
        mask = batch_mask(batch)
        in_len = mask.long().sum(1).clamp_min(1)
        labels = batch["label"]
        targets = labels.unsqueeze(1)
        tgt_len = torch.ones_like(labels)
        loss = F.ctc_loss(
            log_probs,
            targets,
            in_len,
            tgt_len,
            blank=self.blank,
            reduction="none",
            zero_infinity=True,
        )
        if class_weight is not None:
            w = class_weight[labels]
            return (loss * w).sum() / w.sum().clamp_min(1e-12)
        return loss.mean()

    def class_scores(self, out: torch.Tensor, batch: dict) -> torch.Tensor:
        """(B, C) class probabilities from the greedy path's votes (see the module doc)."""
        mask = batch_mask(batch)
        probs = F.softmax(out.float(), dim=-1)
        path = probs.argmax(-1)  # (B, T)
        real = mask & (path != self.blank)
        votes = F.one_hot(path.clamp_max(self.num_classes - 1), self.num_classes).float()
        votes = (votes * real.unsqueeze(-1)).sum(1)  # (B, C)
        m = mask.unsqueeze(-1).float()
        mean_post = (probs[..., : self.num_classes] * m).sum(1) / m.sum(1).clamp_min(1.0)
        mean_post = mean_post / mean_post.sum(-1, keepdim=True).clamp_min(1e-12)
        scores = votes + mean_post  # votes are integers, mean posteriors sum to one
        return scores / scores.sum(-1, keepdim=True)

    def frame_stats(self, out: torch.Tensor, batch: dict) -> dict[str, float]:
        """Blank frames and real frames of the greedy path (the epoch's blank share)."""
        mask = batch_mask(batch)
        path = out.argmax(-1)
        return {
            "blank_frames": float(((path == self.blank) & mask).sum()),
            "frames": float(mask.sum()),
        }


def build(cfg, bundle) -> SLRModel:
    m = cfg.model
    return CTCClassifier(
        require_input_dim(bundle, "ctc"),
        bundle.num_classes,
        hidden_size=m.hidden_size,
        num_layers=m.num_layers,
        dropout=m.dropout,
        blank_penalty=m.blank_penalty,
        input_norm=m.input_norm,
    )
