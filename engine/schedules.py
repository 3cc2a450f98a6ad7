"""Learning-rate schedules (no torch import at module level, so the maths is testable)."""

from __future__ import annotations

import math


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, min_ratio: float = 0.0) -> float:
    """LR multiplier: linear warm-up from ~0 to 1 over ``warmup_steps``, then cosine decay to
    ``min_ratio`` at ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = max(total_steps - warmup_steps, 1)
    progress = min(max(step - warmup_steps, 0) / decay_steps, 1.0)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(optimizer, optim_cfg, *, steps_per_epoch: int, max_epochs: int, mode: str):
    """Returns (scheduler or None, when) with when in {"step", "epoch", "metric", None}."""
    import torch

    name = optim_cfg.scheduler
    if name == "cosine":
        total = steps_per_epoch * max_epochs
        warmup = int(round(optim_cfg.warmup_ratio * total))
        sched = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda s: warmup_cosine(s, warmup, total, optim_cfg.min_lr_ratio),
        )
        return sched, "step"
    if name == "steplr":
        sched = torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=optim_cfg.step_size, gamma=optim_cfg.gamma
        )
        return sched, "epoch"
    if name == "plateau":
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode=mode,
            factor=optim_cfg.plateau_factor,
            patience=optim_cfg.plateau_patience,
        )
        return sched, "metric"
    return None, None
