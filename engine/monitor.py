"""Which epoch is best, and when training stops early (no torch here).

The trainer hands :class:`Monitor` each epoch's metric row; the monitor keeps the best
value of ``training.monitor`` and decides whether training ends (``target_metric``
reached, or ``patience`` epochs without improvement once ``min_steps`` optimiser steps
are done). Its state travels in every checkpoint under the keys checkpoints have always
used (``best``, ``best_epoch``, ``since_best``, ``best_tie``), so a resumed run, or one
resumed from an older checkpoint, decides exactly as an uninterrupted one would.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from engine.config import ConfigError
from engine.schema import lower_is_better

log = logging.getLogger("engine")


def resolve_mode(metric: str, mode: str = "auto") -> str:
    """``min`` or ``max``; ``auto`` means min for a ``*loss`` or ``*wer`` metric, max
    otherwise."""
    if mode != "auto":
        return mode
    return "min" if lower_is_better(metric) else "max"


@dataclass
class Monitor:
    """Best value, best epoch and the early-stopping count of one monitored metric.

    ``tie_break`` names a second metric that decides when the monitored one equals its
    best (on a small validation split accuracy moves in steps of 1/n, so ties are
    common); its direction follows the same ``*loss`` rule. Without it a tie is no
    improvement."""

    metric: str
    mode: str = "max"
    tie_break: str | None = None
    patience: int | None = None
    min_steps: int = 0
    target: float | None = None
    best: float | None = None
    best_epoch: int = 0
    since_best: int = 0
    best_tie: float | None = None  # the tie-break metric at the best epoch
    last: float | None = None  # the value of the latest observed epoch

    @classmethod
    def from_config(cls, training: Any) -> Monitor:
        """The monitor a ``TrainingConfig`` asks for, with no epoch seen yet."""
        return cls(
            metric=training.monitor,
            mode=resolve_mode(training.monitor, training.monitor_mode),
            tie_break=training.monitor_tie_break or None,
            patience=training.patience,
            min_steps=training.min_steps,
            target=training.target_metric,
        )

    def improved(self, value: float, tie: float | None = None) -> bool:
        """Is ``value`` (with tie-break value ``tie``) better than the best so far?"""
        if self.best is None:
            return True
        if value != self.best:
            return value > self.best if self.mode == "max" else value < self.best
        if tie is None or self.best_tie is None or not self.tie_break:
            return False
        return tie < self.best_tie if resolve_mode(self.tie_break) == "min" else tie > self.best_tie

    def observe(self, row: dict[str, Any], epoch: int) -> bool:
        """Take the metric row of completed epoch ``epoch``; True when it is the new best.
        A monitor that is not in the row is a :class:`ConfigError` naming the valid ones."""
        value = row.get(self.metric)
        if value is None:
            valid = ", ".join(k for k in row if k.startswith(("val_", "train_")))
            raise ConfigError(
                f"training.monitor '{self.metric}' is not an epoch metric; valid: {valid}"
            )
        tie = row.get(self.tie_break) if self.tie_break else None
        self.last = float(value)
        better = self.improved(value, tie)
        if better:
            self.best, self.best_epoch, self.since_best = float(value), epoch, 0
            self.best_tie = None if tie is None else float(tie)
        else:
            self.since_best += 1
        return better

    def stop_reason(self, global_step: int) -> str | None:
        """``target_metric`` or ``early_stopping`` when training should end after the
        latest observed epoch (logged), else None."""
        last = self.last
        if self.target is not None and last is not None:
            if last >= self.target if self.mode == "max" else last <= self.target:
                log.info("%s reached the target %s: stopping", self.metric, self.target)
                return "target_metric"
        if (
            self.patience is not None
            and self.since_best >= self.patience
            and global_step >= self.min_steps
        ):
            log.info("no improvement in %d epochs: early stopping", self.patience)
            return "early_stopping"
        return None

    def state_dict(self) -> dict[str, Any]:
        """Plain values for a checkpoint (loadable with ``weights_only=True``)."""
        return {
            "best": None if self.best is None else float(self.best),
            "best_epoch": int(self.best_epoch),
            "since_best": int(self.since_best),
            "best_tie": None if self.best_tie is None else float(self.best_tie),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s values; ``best_tie`` may be absent (checkpoints
        written before the tie-break existed)."""
        best, tie = state["best"], state.get("best_tie")
        self.best = None if best is None else float(best)
        self.best_epoch = int(state["best_epoch"])
        self.since_best = int(state["since_best"])
        self.best_tie = None if tie is None else float(tie)
