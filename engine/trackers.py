"""Optional experiment trackers: TensorBoard event files in the run folder
(``training.tensorboard: true``) and Weights & Biases (``training.wandb: PROJECT``).

Both are off by default and neither is needed to install or test slr-tui: when one is
asked for but its package is missing (or W&B is not logged in), the run logs one warning
and goes on without it. metrics.jsonl stays the record either way.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("engine")

SKIP = {"t", "kind", "epoch", "step", "best", "split"}


class Trackers:
    def __init__(self, run_dir: Path, cfg, run_id: str):
        self.tb = None
        self.wandb = None
        t = cfg.training
        if t.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
                log.info("TensorBoard: writing events to %s", run_dir / "tensorboard")
            except ImportError:
                log.warning(
                    "training.tensorboard is on but tensorboard is not installed: pip install tensorboard"
                )
        if t.wandb:
            try:
                import wandb

                if not wandb.api.api_key:
                    raise RuntimeError("not logged in (run `wandb login`)")
                self.wandb = wandb.init(
                    project=t.wandb, name=run_id, config=cfg.to_dict(), dir=str(run_dir)
                )
                log.info("Weights & Biases: logging to project %s", t.wandb)
            except ImportError:
                log.warning("training.wandb is set but wandb is not installed: pip install wandb")
            except Exception as exc:  # noqa: BLE001 - a tracker never stops training
                log.warning(
                    "Weights & Biases disabled: %s", str(exc).splitlines()[0] if str(exc) else exc
                )

    def log(self, row: dict[str, Any]) -> None:
        kind = row.get("kind")
        step = int(row.get("step") or 0)
        prefix = f"{kind}/" if kind != "eval" else f"eval_{row.get('split')}/"
        scalars = {
            prefix + k: float(v)
            for k, v in row.items()
            if k not in SKIP and isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        if self.tb is not None:
            for k, v in scalars.items():
                self.tb.add_scalar(k, v, step)
        if self.wandb is not None:
            self.wandb.log(scalars, step=step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()
