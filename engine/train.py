"""The training loop, top to bottom.

``python -m engine train --config C --run-dir D`` lands here. Device placement, mixed
precision and multi-process training go through HF Accelerate; only the main process
writes the run directory. SIGTERM or Ctrl-C finishes the current step, writes last.pt and
marks the run ``stopped``; ``--resume`` continues from last.pt exactly (same epoch, batch
position, optimizer, scheduler, scaler and RNG state).
"""

from __future__ import annotations

import logging
import math
import os
import random
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from engine import evaluate, runs
from engine.config import ConfigError, RunConfig
from engine.data import DataError, build_data
from engine.data.base import DataBundle, EpochSampler
from engine.models import ModelError, build_model
from engine.schedules import build_scheduler

log = logging.getLogger("engine")

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_STOPPED = 0, 1, 2, 130
USER_ERRORS = (ConfigError, DataError, ModelError)


# --------------------------------------------------------------------------- small helpers


class StopFlag:
    """Set by SIGTERM/SIGINT (or a test); checked after every optimizer step."""

    def __init__(self) -> None:
        self.requested = False
        self.signal_name: str | None = None

    def set(self, name: str = "request") -> None:
        self.requested = True
        self.signal_name = name

    def install(self) -> None:
        def handler(signum, _frame):
            self.set(signal.Signals(signum).name)

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


def monitor_mode(cfg: RunConfig) -> str:
    t = cfg.training
    if t.monitor_mode != "auto":
        return t.monitor_mode
    return "min" if t.monitor.endswith("loss") else "max"


def resolve_precision(cfg: RunConfig, use_cuda: bool) -> str:
    p = cfg.training.precision
    if not use_cuda or p == "no":
        return "no"
    if p == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return p


def rng_state() -> dict[str, Any]:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_torch_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on biases and norm weights (1-d tensors)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def _stdout_is(path: Path) -> bool:
    try:
        a, b = os.fstat(sys.stdout.fileno()), os.stat(path)
        return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
    except (OSError, ValueError, AttributeError):
        return False


def setup_logging(run_dir: Path, is_main: bool) -> None:
    """Log to stdout; also to log.txt unless stdout already is log.txt (launched by slr)."""
    log.handlers.clear()
    log.propagate = True  # our handlers below; the root logger has none in the engine process
    log.setLevel(logging.INFO if is_main else logging.WARNING)
    fmt = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")
    out = logging.StreamHandler(sys.stdout)
    out.setFormatter(fmt)
    log.addHandler(out)
    log_path = run_dir / runs.LOG
    if is_main and not _stdout_is(log_path):
        fh = logging.FileHandler(log_path)
        fh.setFormatter(fmt)
        log.addHandler(fh)


# --------------------------------------------------------------------------- the run record


@dataclass
class Recorder:
    """Writes run.json and metrics.jsonl; a no-op on non-main processes."""

    run_dir: Path
    enabled: bool
    meta: dict[str, Any] = field(default_factory=dict)
    trackers: Any = None  # engine.trackers.Trackers, when asked for

    def update(self, **fields: Any) -> None:
        if not self.enabled:
            return
        self.meta = {**self.meta, **(runs.read_json(self.run_dir / runs.RUN_JSON) or {})}
        self.meta.update(fields)
        self.meta["updated_at"] = time.time()
        runs.atomic_write_json(self.run_dir / runs.RUN_JSON, self.meta)

    def metric(self, kind: str, **fields: Any) -> None:
        if not self.enabled:
            return
        row = {"t": time.time(), "kind": kind}
        row.update({k: _plain(v) for k, v in fields.items()})
        runs.append_jsonl(self.run_dir / runs.METRICS, row)
        if self.trackers is not None:
            self.trackers.log(row)


def _plain(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        v = v.item()
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


# --------------------------------------------------------------------------- evaluation


def class_probs(net: nn.Module, out: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
    """(B, C) class probabilities from a model's output: softmax of logits, or the model's
    own ``class_scores`` (CTC models return per-frame logits)."""
    if hasattr(net, "class_scores"):
        return net.class_scores(out, batch)
    return torch.softmax(out.float(), dim=-1)


@torch.no_grad()
def predict(
    model: nn.Module,
    loader: DataLoader,
    accelerator,
    n_total: int,
) -> tuple[np.ndarray, np.ndarray, list[str], dict[str, float]]:
    """Probabilities (N, C) and labels (N,) in dataset order, gathered across processes,
    plus summed ``frame_stats`` for models that report them."""
    model.eval()
    net = accelerator.unwrap_model(model)
    idx_parts, prob_parts = [], []
    stats: dict[str, float] = {}
    for batch in loader:
        batch = _to_device(batch, accelerator.device)
        with accelerator.autocast():
            out = model(batch)
        idx_parts.append(batch["index"])
        prob_parts.append(class_probs(net, out, batch).float())
        if hasattr(net, "frame_stats"):
            for k, v in net.frame_stats(out, batch).items():
                stats[k] = stats.get(k, 0.0) + v
    dev = accelerator.device
    idx = torch.cat(idx_parts) if idx_parts else torch.zeros(0, dtype=torch.long, device=dev)
    probs = torch.cat(prob_parts) if prob_parts else torch.zeros(0, 1, device=dev)
    if accelerator.num_processes > 1:
        idx = accelerator.pad_across_processes(idx, dim=0, pad_index=-1)
        probs = accelerator.pad_across_processes(probs, dim=0)
        idx, probs = accelerator.gather(idx), accelerator.gather(probs)
        if stats:
            keys = sorted(stats)
            summed = accelerator.reduce(
                torch.tensor([stats[k] for k in keys], dtype=torch.float64, device=dev), "sum"
            )
            stats = dict(zip(keys, summed.tolist(), strict=True))
    idx, probs = idx.cpu().numpy(), probs.cpu()
    keep = idx >= 0
    idx, probs = idx[keep], probs[torch.from_numpy(keep)]
    order = np.argsort(idx, kind="stable")
    idx, probs = idx[order], probs[torch.from_numpy(order)]
    _, first = np.unique(idx, return_index=True)
    idx, probs = idx[first], probs[torch.from_numpy(first)]
    if len(idx) != n_total:
        raise RuntimeError(f"evaluation gathered {len(idx)} of {n_total} samples")
    labels = loader.dataset.labels[idx]
    ids = [loader.dataset.ids[i] for i in idx]
    return probs.numpy().astype(np.float64), labels, ids, stats


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {
        k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
        for k, v in batch.items()
    }


# --------------------------------------------------------------------------- the trainer


class Trainer:
    def __init__(
        self,
        cfg: RunConfig,
        run_dir: Path,
        *,
        resume: bool = False,
        init_checkpoint: str | None = None,
        stop: StopFlag | None = None,
        on_step: Callable[[Trainer], None] | None = None,
    ):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.resume = resume
        self.init_checkpoint = init_checkpoint
        self.stop = stop or StopFlag()
        self.on_step = on_step
        self.mode = monitor_mode(cfg)

    # ---- set-up ---------------------------------------------------------------------

    def setup(self) -> None:
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        cfg = self.cfg
        t = cfg.training
        want_cuda = t.device == "cuda" or (t.device == "auto" and torch.cuda.is_available())
        if want_cuda and not torch.cuda.is_available():
            raise ConfigError("training.device is 'cuda' but no CUDA device is available")
        self.accelerator = acc = Accelerator(
            cpu=not want_cuda, mixed_precision=resolve_precision(cfg, want_cuda)
        )
        self.is_main = acc.is_main_process
        setup_logging(self.run_dir, self.is_main)
        prior = runs.read_json(self.run_dir / runs.RUN_JSON) or {}
        self.rec = Recorder(self.run_dir, self.is_main, prior)
        set_seed(t.seed)

        with acc.main_process_first():
            self.bundle: DataBundle = build_data(cfg)
        b = self.bundle
        log.info(
            "data: %s, %d classes, train/val/test = %d/%d/%d",
            cfg.dataset_label(),
            b.num_classes,
            len(b.train),
            len(b.val),
            len(b.test) if b.test is not None else 0,
        )
        if len(b.train) == 0 or len(b.val) == 0:
            raise DataError("the training and validation splits must both hold samples")

        set_seed(t.seed)
        model = build_model(cfg, b)
        self.num_params = sum(p.numel() for p in model.parameters())
        if self.init_checkpoint:
            self._load_weights(model, self.init_checkpoint)

        self.train_sampler = EpochSampler(
            len(b.train),
            shuffle=True,
            seed=t.seed,
            rank=acc.process_index,
            world_size=acc.num_processes,
        )
        self.train_loader = self._loader(b.train, self.train_sampler, cfg.data.batch_size)
        ebs = cfg.data.eval_batch_size or 2 * cfg.data.batch_size
        self.val_loader = self._eval_loader(b.val, ebs)
        self.test_loader = self._eval_loader(b.test, ebs) if b.test is not None else None
        self.steps_per_epoch = math.ceil(len(self.train_sampler) / cfg.data.batch_size)

        optimizer = torch.optim.AdamW(
            _param_groups(model, cfg.optim.weight_decay), lr=cfg.optim.lr, betas=cfg.optim.betas
        )
        self.model, self.optimizer = acc.prepare(model, optimizer)
        # the scheduler is stepped by hand: accelerate's wrapper would step it once per process
        self.scheduler, self.sched_when = build_scheduler(
            self.optimizer,
            cfg.optim,
            steps_per_epoch=self.steps_per_epoch,
            max_epochs=t.max_epochs,
            mode=self.mode,
        )
        self.class_weight = b.class_weights().to(acc.device) if t.class_weighted else None
        self.criterion = nn.CrossEntropyLoss(
            weight=self.class_weight, label_smoothing=t.label_smoothing
        )

        # progress state (restored by resume)
        self.epoch = 0  # completed epochs
        self.step_in_epoch = 0  # optimizer steps done in the current, unfinished epoch
        self.global_step = 0
        self.best: float | None = None
        self.best_epoch = 0
        self.since_best = 0
        self.epoch_acc = {"loss_sum": 0.0, "correct": 0, "seen": 0}
        if self.resume:
            self._load_last()

    def _loader(self, ds, sampler, batch_size: int) -> DataLoader:
        nw = self.cfg.data.num_workers
        return DataLoader(
            ds,
            batch_size=batch_size,
            sampler=sampler,
            collate_fn=self.bundle.collate_fn,
            num_workers=nw,
            pin_memory=self.accelerator.device.type == "cuda",
            persistent_workers=nw > 0,
            prefetch_factor=4 if nw > 0 else None,
            # its own generator, so building an iterator never draws from the global RNG
            generator=torch.Generator().manual_seed(self.cfg.training.seed),
        )

    def _eval_loader(self, ds, batch_size: int) -> DataLoader:
        acc = self.accelerator
        sampler = EpochSampler(
            len(ds), shuffle=False, rank=acc.process_index, world_size=acc.num_processes
        )
        return self._loader(ds, sampler, batch_size)

    # ---- checkpoints ----------------------------------------------------------------

    def checkpoint(self) -> dict[str, Any]:
        acc = self.accelerator
        return {
            "model": acc.unwrap_model(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "scaler": acc.scaler.state_dict() if acc.scaler is not None else None,
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "since_best": self.since_best,
            "epoch_acc": dict(self.epoch_acc),
            "rng": rng_state(),
            "config": self.cfg.to_dict(),
            "class_names": self.bundle.class_names,
            "input_dim": self.bundle.input_dim,
            "world_size": acc.num_processes,
        }

    def save(self, name: str) -> None:
        ckpt = self.checkpoint()  # every rank: optimizer state_dict may be collective
        if self.is_main:
            atomic_torch_save(ckpt, self.run_dir / name)

    def _load_weights(self, model: nn.Module, path: str) -> None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"--init-checkpoint: no file at {p}")
        state = torch.load(p, map_location="cpu", weights_only=False)
        state = state.get("model", state)
        missing, unexpected = model.load_state_dict(state, strict=False)
        log.info(
            "initialised weights from %s (%d missing, %d unexpected keys)",
            p,
            len(missing),
            len(unexpected),
        )

    def _load_last(self) -> None:
        p = self.run_dir / "last.pt"
        if not p.is_file():
            raise ConfigError(f"cannot resume: {p} does not exist")
        ck = torch.load(p, map_location="cpu", weights_only=False)
        if ck.get("world_size", 1) != self.accelerator.num_processes:
            raise ConfigError(
                f"cannot resume: last.pt was written by {ck.get('world_size')} processes, "
                f"this run has {self.accelerator.num_processes}"
            )
        self.accelerator.unwrap_model(self.model).load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        if self.scheduler is not None and ck.get("scheduler") is not None:
            self.scheduler.load_state_dict(ck["scheduler"])
        if self.accelerator.scaler is not None and ck.get("scaler") is not None:
            self.accelerator.scaler.load_state_dict(ck["scaler"])
        self.epoch = ck["epoch"]
        self.step_in_epoch = ck["step_in_epoch"]
        self.global_step = ck["global_step"]
        self.best, self.best_epoch, self.since_best = ck["best"], ck["best_epoch"], ck["since_best"]
        self.epoch_acc = dict(ck["epoch_acc"])
        set_rng_state(ck["rng"])  # last, so nothing above draws from the restored streams
        log.info(
            "resumed from last.pt at epoch %d, step %d of %d",
            self.epoch + 1,
            self.step_in_epoch,
            self.steps_per_epoch,
        )

    # ---- the loop ---------------------------------------------------------------------

    def _stop_requested(self) -> bool:
        flag = self.stop.requested
        if self.accelerator.num_processes > 1:  # every rank stops at the same step
            t = torch.tensor([1.0 if flag else 0.0], device=self.accelerator.device)
            flag = bool(self.accelerator.reduce(t, reduction="sum").item() > 0)
        return flag

    def _frozen_parameters(self) -> list[nn.Parameter]:
        """Backbone parameters to keep fixed this epoch (model.freeze_backbone_epochs)."""
        if self.epoch >= self.cfg.model.freeze_backbone_epochs:
            return []
        net = self.accelerator.unwrap_model(self.model)
        if not hasattr(net, "backbone_parameters"):
            return []
        if self.step_in_epoch == 0:
            log.info("epoch %d: backbone frozen", self.epoch + 1)
        return list(net.backbone_parameters())

    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def train_epoch(self) -> bool:
        """One epoch (or its remainder after a resume). Returns False if stopped midway."""
        acc, t = self.accelerator, self.cfg.training
        self.model.train()
        self.train_sampler.set_epoch(self.epoch, skip=self.step_in_epoch * self.cfg.data.batch_size)
        win_loss, win_n, win_t0 = 0.0, 0, time.perf_counter()
        frozen = self._frozen_parameters()
        net = acc.unwrap_model(self.model)
        custom_loss = hasattr(net, "compute_loss")
        for batch in self.train_loader:
            batch = _to_device(batch, acc.device)
            with acc.autocast():
                out = self.model(batch)
            if custom_loss:
                loss = net.compute_loss(out, batch, self.class_weight)
            else:
                loss = self.criterion(out.float(), batch["label"])
            acc.backward(loss)
            if frozen:  # the backbone stays fixed: AdamW skips parameters without gradients
                for p in frozen:
                    p.grad = None
            if t.grad_clip:
                acc.clip_grad_norm_(self.model.parameters(), t.grad_clip)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            if self.sched_when == "step" and not acc.optimizer_step_was_skipped:
                self.scheduler.step()
            n = int(batch["label"].shape[0])
            lv = float(loss.detach())
            self.epoch_acc["loss_sum"] += lv * n
            self.epoch_acc["seen"] += n
            with torch.no_grad():
                pred = class_probs(net, out.detach(), batch).argmax(-1)
            self.epoch_acc["correct"] += int((pred == batch["label"]).sum())
            win_loss, win_n = win_loss + lv * n, win_n + n
            self.step_in_epoch += 1
            self.global_step += 1
            if (
                self.global_step % t.log_every_steps == 0
                or self.step_in_epoch == self.steps_per_epoch
            ):
                dt = max(time.perf_counter() - win_t0, 1e-9)
                self.rec.metric(
                    "step",
                    epoch=self.epoch + 1,
                    step=self.global_step,
                    step_in_epoch=self.step_in_epoch,
                    train_loss=win_loss / max(win_n, 1),
                    lr=self.lr(),
                    samples_per_s=win_n * acc.num_processes / dt,
                )
                win_loss, win_n, win_t0 = 0.0, 0, time.perf_counter()
            if self.on_step is not None:
                self.on_step(self)
            if self._stop_requested():
                return False
        return True

    def evaluate_split(
        self, loader: DataLoader
    ) -> tuple[dict[str, Any], np.ndarray, np.ndarray, list[str]]:
        probs, labels, ids, stats = predict(
            self.model, loader, self.accelerator, len(loader.dataset)
        )
        summary = evaluate.summarize(labels, probs, self.bundle.class_names)
        if stats.get("frames"):
            summary["blank_share"] = stats["blank_frames"] / stats["frames"]
        return summary, probs, labels, ids

    def _reduced(self, ea: dict[str, float]) -> dict[str, float]:
        """Epoch sums over every process (training loss and accuracy of all shards)."""
        acc = self.accelerator
        if acc.num_processes == 1:
            return dict(ea)
        keys = ("loss_sum", "correct", "seen")
        t = torch.tensor([float(ea[k]) for k in keys], dtype=torch.float64, device=acc.device)
        t = acc.reduce(t, reduction="sum")
        out = dict(zip(keys, t.tolist(), strict=True))
        out["seen_local"] = ea["seen"]
        return out

    def _sync_check(self) -> float:
        """Largest difference between processes of a parameter checksum (0 when in step)."""
        acc = self.accelerator
        if acc.num_processes == 1:
            return 0.0
        with torch.no_grad():
            s = sum(p.detach().double().sum() for p in acc.unwrap_model(self.model).parameters())
        all_s = acc.gather(s.reshape(1).to(acc.device))
        return float(all_s.max() - all_s.min())

    def fit(self) -> str:
        """Train until max epochs, early stop, target or a stop request. Returns the status."""
        cfg, t = self.cfg, self.cfg.training
        acc = self.accelerator
        self.rec.update(
            status="running",
            pid=os.getpid(),
            pgid=os.getpgrp(),
            host=runs.hostname(),
            started_at=self.rec.meta.get("started_at") or time.time(),
            ended_at=None,
            error=None,
            max_epochs=t.max_epochs,
            steps_per_epoch=self.steps_per_epoch,
            world_size=acc.num_processes,
            device=str(acc.device),
            mixed_precision=acc.mixed_precision,
            monitor=t.monitor,
            monitor_mode=self.mode,
            num_classes=self.bundle.num_classes,
            num_params=self.num_params,
            data_info={
                k: v
                for k, v in self.bundle.info.items()
                if k in ("root", "per_split", "missing", "unreadable")
            },
            dataset=self.rec.meta.get("dataset") or cfg.dataset_label(),
        )
        if self.is_main:  # the label encoder and feature settings, for `slr predict`
            runs.atomic_write_json(
                self.run_dir / runs.DATA_JSON,
                {
                    "source": cfg.data.source,
                    "class_names": self.bundle.class_names,
                    "input_dim": self.bundle.input_dim,
                    "info": self.bundle.info,
                },
            )
        log.info(
            "training %s (%d parameters) on %s x%d, precision %s, %d steps/epoch",
            cfg.model.name,
            self.num_params,
            acc.device,
            acc.num_processes,
            acc.mixed_precision,
            self.steps_per_epoch,
        )
        if self.is_main:
            from engine.telemetry import GpuSampler

            peak = None
            if acc.device.type == "cuda":

                def peak() -> float:  # MiB, on this run's device
                    return torch.cuda.max_memory_allocated(acc.device) / 2**20

            self.telemetry = GpuSampler(
                self.run_dir / runs.SYSTEM, interval_s=t.telemetry_interval_s, peak_mem_fn=peak
            )
            self.telemetry.start()
            if t.tensorboard or t.wandb:
                from engine.trackers import Trackers

                self.rec.trackers = Trackers(self.run_dir, cfg, self.run_dir.name)
        reason = "max_epochs"
        while self.epoch < t.max_epochs:
            t0 = time.perf_counter()
            seen0 = self.epoch_acc["seen"]
            if not self.train_epoch():
                self.save("last.pt")
                log.info("stop requested (%s): wrote last.pt", self.stop.signal_name)
                self.rec.update(step=self.global_step)
                return "stopped"
            epoch_time = time.perf_counter() - t0
            val, *_ = self.evaluate_split(self.val_loader)
            ea = self._reduced(self.epoch_acc)
            row = {
                "epoch": self.epoch + 1,
                "step": self.global_step,
                "train_loss": ea["loss_sum"] / max(ea["seen"], 1),
                "train_acc": ea["correct"] / max(ea["seen"], 1),
                "val_loss": val["nll"],
                "val_acc": val["accuracy"],
                "val_top5": val["top5_accuracy"],
                "val_per_class_acc": val["per_class_accuracy"],
                "val_macro_f1": val["macro_f1"],
                "lr": self.lr(),
                "epoch_time_s": epoch_time,
                "samples_per_s": (self.epoch_acc["seen"] - seen0)
                * acc.num_processes
                / max(epoch_time, 1e-9),
            }
            if "blank_share" in val:
                row["val_blank_share"] = val["blank_share"]
            if acc.num_processes > 1:
                row["sync_max_diff"] = self._sync_check()
            value = row.get(t.monitor)
            if value is None:
                raise ConfigError(
                    f"training.monitor '{t.monitor}' is not an epoch metric; "
                    f"valid: {', '.join(k for k in row if k.startswith(('val_', 'train_')))}"
                )
            improved = self.best is None or (
                value > self.best if self.mode == "max" else value < self.best
            )
            self.epoch += 1
            self.step_in_epoch = 0
            self.epoch_acc = {"loss_sum": 0.0, "correct": 0, "seen": 0}
            if improved:
                self.best, self.best_epoch, self.since_best = float(value), self.epoch, 0
            else:
                self.since_best += 1
            if self.sched_when == "epoch":
                self.scheduler.step()
            elif self.sched_when == "metric":
                self.scheduler.step(value)
            row["best"] = improved
            self.rec.metric("epoch", **row)
            if improved:
                self.save("best.pt")
            self.save("last.pt")
            self.rec.update(
                epoch=self.epoch,
                step=self.global_step,
                best_metric=self.best,
                best_val_acc=max(self.rec.meta.get("best_val_acc") or 0.0, row["val_acc"]),
                best_epoch=self.best_epoch,
                last_metrics={k: _plain(v) for k, v in row.items()},
            )
            log.info(
                "epoch %d/%d  train_loss %.4f  val_loss %.4f  val_acc %.4f  top5 %.4f  lr %.2e  %.1fs%s",
                self.epoch,
                t.max_epochs,
                row["train_loss"],
                row["val_loss"] if row["val_loss"] is not None else float("nan"),
                row["val_acc"],
                row["val_top5"],
                row["lr"],
                epoch_time,
                "  *" if improved else "",
            )
            if t.target_metric is not None and (
                value >= t.target_metric if self.mode == "max" else value <= t.target_metric
            ):
                reason = "target_metric"
                log.info("%s reached the target %s: stopping", t.monitor, t.target_metric)
                break
            if t.patience is not None and self.since_best >= t.patience:
                reason = "early_stopping"
                log.info("no improvement in %d epochs: early stopping", t.patience)
                break
            if self._stop_requested():
                log.info("stop requested (%s) after epoch %d", self.stop.signal_name, self.epoch)
                return "stopped"
        self.rec.update(stop_reason=reason)
        return "finished"

    def final_eval(self) -> dict[str, Any] | None:
        """Evaluate best.pt on val and test; write eval/."""
        best = self.run_dir / "best.pt"
        acc = self.accelerator
        acc.wait_for_everyone()
        if best.is_file():
            ck = torch.load(best, map_location="cpu", weights_only=False)
            acc.unwrap_model(self.model).load_state_dict(ck["model"])
        splits: dict[str, dict[str, Any]] = {}
        loaders = [("val", self.val_loader)]
        if self.test_loader is not None and self.cfg.training.eval_test:
            loaders.append(("test", self.test_loader))
        for name, loader in loaders:
            summary, probs, labels, ids = self.evaluate_split(loader)
            splits[name] = {"ids": ids, "y_true": labels, "probs": probs}
            self.rec.metric(
                "eval",
                split=name,
                epoch=self.best_epoch,
                step=self.global_step,
                **{k: v for k, v in summary.items() if isinstance(v, (int, float)) or v is None},
            )
        if not self.is_main:
            return None
        t = self.cfg.training
        meta: dict[str, Any] = {
            "checkpoint": "best.pt",
            "best_epoch": self.best_epoch,
            "monitor": t.monitor,
        }
        calibration = evaluate.calibrate(splits, t.threshold_rule, t.default_threshold)
        if calibration is not None:
            meta["calibration"] = calibration
            log.info(
                "threshold calibrated on val (%s): %.2f (default %.2f)",
                t.threshold_rule,
                calibration["threshold"],
                t.default_threshold,
            )
        return evaluate.write_eval(
            self.run_dir / runs.EVAL_DIR,
            splits,
            self.bundle.class_names,
            evaluate.default_thresholds(t.threshold_start, t.threshold_stop, t.threshold_step),
            meta=meta,
        )


def run_training(
    cfg: RunConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    init_checkpoint: str | None = None,
    stop: StopFlag | None = None,
    on_step: Callable[[Trainer], None] | None = None,
    install_signals: bool = False,
) -> int:
    """Train, evaluate and record one run. Returns the process exit code."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / runs.CONFIG_JSON).is_file():
        runs.atomic_write_json(run_dir / runs.CONFIG_JSON, cfg.to_dict())
    stop = stop or StopFlag()
    if install_signals:
        stop.install()
    trainer = Trainer(
        cfg, run_dir, resume=resume, init_checkpoint=init_checkpoint, stop=stop, on_step=on_step
    )
    rec = Recorder(run_dir, _is_main_env(), runs.read_json(run_dir / runs.RUN_JSON) or {})
    rec.meta.setdefault("id", run_dir.name)
    rec.meta.setdefault("preset", cfg.name)
    rec.meta.setdefault("dataset", cfg.dataset_label())
    try:
        trainer.setup()
        rec = trainer.rec
        status = trainer.fit()
        if status == "stopped":
            rec.update(status="stopped", ended_at=time.time(), pid=None)
            return EXIT_STOPPED
        report = trainer.final_eval()
        results = {}
        if report:
            for split in ("val", "test"):
                if split in report:
                    results[split] = {
                        k: report[split].get(k)
                        for k in ("accuracy", "top5_accuracy", "per_class_accuracy", "macro_f1")
                    }
        rec.update(status="finished", ended_at=time.time(), results=results, pid=None)
        log.info("finished: %s", run_dir)
        return EXIT_OK
    except USER_ERRORS as exc:
        log.error("error: %s", exc)
        rec.update(status="failed", error=str(exc), ended_at=time.time(), pid=None)
        return EXIT_BAD_INPUT
    except Exception as exc:  # noqa: BLE001 - recorded, then the process exits non-zero
        tb = traceback.format_exc()
        if _is_main_env():
            with open(run_dir / runs.LOG, "a") as f:
                f.write(tb)
        line = f"{type(exc).__name__}: {exc}".splitlines()[0]
        rec.update(status="failed", error=line, ended_at=time.time(), pid=None)
        log.error("failed: %s", line)
        return EXIT_FAILED
    finally:
        trainer_close(trainer)


def trainer_close(trainer: Trainer) -> None:
    sampler = getattr(trainer, "telemetry", None)
    if sampler is not None:
        sampler.stop()
    rec = getattr(trainer, "rec", None)
    if rec is not None and rec.trackers is not None:
        rec.trackers.close()


def _is_main_env() -> bool:
    return int(os.environ.get("RANK", "0")) == 0
