"""The training loop, top to bottom.

``python -m engine train --config C --run-dir D`` lands here. Device placement, mixed
precision and multi-process training go through HF Accelerate; only the main process
writes the run directory. SIGTERM or Ctrl-C finishes the current step, writes last.pt and
marks the run ``stopped``; ``--resume`` continues from last.pt exactly (same epoch, batch
position, optimizer, scheduler, scaler and RNG state).
"""

from __future__ import annotations

import copy
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
        # the launcher starts the engine with both blocked (a stop before the handler is in
        # waits instead of killing it): deliver any that is pending
        signal.pthread_sigmask(signal.SIG_UNBLOCK, (signal.SIGTERM, signal.SIGINT))


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
    """Every RNG stream in forms ``torch.load(weights_only=True)`` accepts: python's state
    as (version, list of ints, gauss), numpy's as (name, list of ints, pos, has_gauss,
    cached_gaussian), torch's as byte tensors."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": [int(version), [int(x) for x in internal], gauss],
        "numpy": [str(name), [int(x) for x in keys], int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`rng_state`'s streams; also takes the older form (tuples, numpy's key
    as an ndarray) that checkpoints written before it hold."""
    version, internal, gauss = state["python"]
    random.setstate((int(version), tuple(int(x) for x in internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state(
        (str(name), np.asarray(keys, dtype=np.uint32), int(pos), int(has_gauss), float(cached))
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_torch_save(obj: Any, path: Path) -> None:
    from engine.checkpoint import save_checkpoint

    save_checkpoint(obj, path)


def _load_best(path: Path) -> dict[str, Any]:
    """best.pt for the final evaluation, loaded safely (weights_only); one-line error."""
    from engine.checkpoint import CheckpointError, load_checkpoint, model_state

    ck = load_checkpoint(path)
    if "model" not in ck:
        raise CheckpointError(f"checkpoint {path} has no 'model' entry")
    model_state(ck, path)
    return ck


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
        """Merge ``fields`` into run.json as it is on disk; atomic, and in place as a last
        resort on a full disk (:func:`engine.runs.write_run_json`)."""
        if not self.enabled:
            return
        self.meta = runs.update_run_json(self.run_dir, fields, base=self.meta)

    def end(self, status: str, **fields: Any) -> bool:
        """Record how this session ended: ``status``, ``ended_at``, no pid, the session's
        time added to ``active_s``. Never raises (it runs on every way out, when writing
        may be what failed); False, with a log line, when run.json could not be written."""
        if not self.enabled:
            return True
        now = time.time()
        current = {**self.meta, **(runs.read_json(self.run_dir / runs.RUN_JSON) or {})}
        fields = {"status": status, "ended_at": now, "pid": None, **fields}
        if status != "failed":
            fields.setdefault("error", None)
        fields.update(runs.close_session(current, now))
        try:
            self.update(**fields)
            return True
        except Exception as exc:  # noqa: BLE001
            why = runs.no_space_line(exc, self.run_dir) or f"{type(exc).__name__}: {exc}"
            log.error("cannot record status %s in run.json: %s", status, why)
            return False

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
        from engine.threads import apply_budget

        self.threads = apply_budget(t.num_threads, cfg.data.num_workers)
        log.info(
            "threads: %d (%s; %d cores, %d run%s sharing them, %d loader workers)",
            self.threads["num_threads"],
            self.threads["source"],
            self.threads["cores"],
            self.threads["concurrent_runs"],
            "" if self.threads["concurrent_runs"] == 1 else "s",
            cfg.data.num_workers,
        )
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
        one_pass = math.ceil(len(self.train_sampler) / cfg.data.batch_size)
        if t.min_epoch_steps and one_pass < t.min_epoch_steps:
            # passes are concatenated, so batches run across their seams
            items = max(len(self.train_sampler), 1)
            self.train_sampler.passes = math.ceil(t.min_epoch_steps * cfg.data.batch_size / items)
        self.passes_per_epoch = self.train_sampler.passes
        self.steps_per_epoch = math.ceil(len(self.train_sampler) / cfg.data.batch_size)
        if self.passes_per_epoch > 1:
            log.info(
                "small training split: one pass is %d optimiser step%s, so an epoch is %d "
                "passes (%d steps; training.min_epoch_steps=%d)",
                one_pass,
                "" if one_pass == 1 else "s",
                self.passes_per_epoch,
                self.steps_per_epoch,
                t.min_epoch_steps,
            )
        if len(b.val) < 50 and t.patience is not None:
            log.info(
                "small validation split (%d samples): %s moves in steps of 1/%d; ties are "
                "broken by %s and early stopping waits for %d optimiser steps at least",
                len(b.val),
                t.monitor,
                len(b.val),
                t.monitor_tie_break or "nothing",
                t.min_steps,
            )

        # a classical model (MiniRocket + ridge) is fitted once, in closed form: no optimiser
        self.classical = bool(getattr(model, "is_classical", False))
        if self.classical:
            if acc.num_processes > 1:
                raise ModelError(f"model '{cfg.model.name}' is fitted in one process; drop --gpus")
            self.train_sampler.passes = self.passes_per_epoch = 1
            self.steps_per_epoch = 1
            self.model, self.optimizer = acc.prepare(model), None
            self.scheduler, self.sched_when = None, None
        else:
            optimizer = torch.optim.AdamW(
                _param_groups(model, cfg.optim.weight_decay),
                lr=cfg.optim.lr,
                betas=cfg.optim.betas,
            )
            self.model, self.optimizer = acc.prepare(model, optimizer)
            # the scheduler is stepped by hand: accelerate's wrapper would step it per process
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
        self.best_tie: float | None = None  # the tie-break metric at the best epoch
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
            "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "scaler": acc.scaler.state_dict() if acc.scaler is not None else None,
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "best": None if self.best is None else float(self.best),
            "best_epoch": int(self.best_epoch),
            "since_best": int(self.since_best),
            "best_tie": None if self.best_tie is None else float(self.best_tie),
            "epoch_acc": dict(self.epoch_acc),
            "rng": rng_state(),  # plain values: the file loads with weights_only=True
            "config": self.cfg.to_dict(),
            "class_names": [str(c) for c in self.bundle.class_names],
            "input_dim": None if self.bundle.input_dim is None else int(self.bundle.input_dim),
            "world_size": acc.num_processes,
        }

    def save(self, name: str) -> None:
        ckpt = self.checkpoint()  # every rank: optimizer state_dict may be collective
        if self.is_main:
            atomic_torch_save(ckpt, self.run_dir / name)

    def _load_weights(self, model: nn.Module, path: str) -> None:
        from engine.checkpoint import CheckpointError, load_checkpoint, model_state

        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"--init-checkpoint: no file at {p}")
        try:
            state = model_state(load_checkpoint(p), p)
        except CheckpointError as exc:
            raise CheckpointError(f"--init-checkpoint: {exc}") from None
        try:
            missing, unexpected = model.load_state_dict(state, strict=False)
        except RuntimeError as exc:  # same names, other shapes
            first = str(exc).strip().splitlines()
            detail = first[1].strip() if len(first) > 1 else (first[0] if first else "")
            raise CheckpointError(
                f"--init-checkpoint: {p} does not fit this model ({detail[:200]})"
            ) from None
        log.info(
            "initialised weights from %s (%d missing, %d unexpected keys)",
            p,
            len(missing),
            len(unexpected),
        )

    def _load_last(self) -> None:
        from engine.checkpoint import CheckpointError, load_checkpoint

        p = self.run_dir / "last.pt"
        if not p.is_file():
            raise ConfigError(f"cannot resume: {p} does not exist")
        try:
            ck = load_checkpoint(p)
        except CheckpointError as exc:
            raise CheckpointError(f"cannot resume: {exc}") from None
        need = ("model", "optimizer", "epoch", "step_in_epoch", "global_step", "rng")
        lacking = [k for k in need if k not in ck]
        if lacking:
            raise CheckpointError(f"cannot resume: {p} lacks {', '.join(lacking)}")
        if ck.get("world_size", 1) != self.accelerator.num_processes:
            raise ConfigError(
                f"cannot resume: last.pt was written by {ck.get('world_size')} processes, "
                f"this run has {self.accelerator.num_processes}"
            )
        self.accelerator.unwrap_model(self.model).load_state_dict(ck["model"])
        if self.optimizer is not None:
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
        self.best_tie = ck.get("best_tie")
        set_rng_state(ck["rng"])  # last, so nothing above draws from the restored streams
        if self.epoch >= self.cfg.training.max_epochs:
            log.info("resumed from last.pt: all %d epochs were done; evaluating", self.epoch)
        else:
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

    def _improved(self, value: float, tie: float | None) -> bool:
        """Is ``value`` (with tie-break metric ``tie``) better than the best so far?"""
        if self.best is None:
            return True
        if value != self.best:
            return value > self.best if self.mode == "max" else value < self.best
        tie_break = self.cfg.training.monitor_tie_break
        if tie is None or self.best_tie is None or not tie_break:
            return False
        tie_mode = "min" if tie_break.endswith("loss") else "max"
        return tie < self.best_tie if tie_mode == "min" else tie > self.best_tie

    def lr(self) -> float:
        if self.optimizer is None:  # a classical model: fitted in closed form
            return 0.0
        return float(self.optimizer.param_groups[0]["lr"])

    def _fit_classical(self) -> bool:
        """The one 'epoch' of a classical model: fit on the whole training split (one
        ordered pass, no augmentation), then score the training split for the epoch row."""
        acc = self.accelerator
        net = acc.unwrap_model(self.model)
        ds = copy.copy(self.bundle.train)
        ds.augment = False
        loader = self._eval_loader(ds, self.cfg.data.eval_batch_size or 2 * self.cfg.data.batch_size)
        t0 = time.perf_counter()
        log.info("fitting %s on %d training samples", self.cfg.model.name, len(ds))
        net.fit_batches(_to_device(b, acc.device) for b in loader)
        probs, labels, _, _ = predict(self.model, loader, acc, len(ds))
        n = len(labels)
        p_true = np.clip(probs[np.arange(n), labels], 1e-12, 1.0)
        self.epoch_acc = {
            "loss_sum": float(-np.log(p_true).sum()),
            "correct": int((probs.argmax(1) == labels).sum()),
            "seen": n,
        }
        self.step_in_epoch, self.global_step = 1, self.global_step + 1
        self.rec.metric(
            "step",
            epoch=self.epoch + 1,
            step=self.global_step,
            step_in_epoch=1,
            train_loss=self.epoch_acc["loss_sum"] / max(n, 1),
            lr=0.0,
            samples_per_s=n / max(time.perf_counter() - t0, 1e-9),
        )
        return not self._stop_requested()

    def train_epoch(self) -> bool:
        """One epoch (or its remainder after a resume). Returns False if stopped midway."""
        acc, t = self.accelerator, self.cfg.training
        if self.classical:
            return self._fit_classical()
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
            max_epochs=1 if self.classical else t.max_epochs,
            steps_per_epoch=self.steps_per_epoch,
            passes_per_epoch=self.passes_per_epoch,
            threads=self.threads,
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
        max_epochs = 1 if self.classical else t.max_epochs  # closed form: one fit is all
        while self.epoch < max_epochs:
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
            tie = row.get(t.monitor_tie_break) if t.monitor_tie_break else None
            improved = self._improved(value, tie)
            self.epoch += 1
            self.step_in_epoch = 0
            self.epoch_acc = {"loss_sum": 0.0, "correct": 0, "seen": 0}
            if improved:
                self.best, self.best_epoch, self.since_best = float(value), self.epoch, 0
                self.best_tie = None if tie is None else float(tie)
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
                max_epochs,
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
            if (
                t.patience is not None
                and self.since_best >= t.patience
                and self.global_step >= t.min_steps
            ):
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
            ck = _load_best(best)
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
    """Train, evaluate and record one run. Returns the process exit code.

    Every way out records a true status in run.json: ``finished``; ``stopped`` (also for a
    stop before training started); ``failed`` with the error (bad input, an exception in
    set-up or training, a write that failed: a full disk is one line, ``no space left on
    ...``). The time this session was active is added to ``active_s``."""
    run_dir = Path(run_dir)
    main = _is_main_env()
    stop = stop or StopFlag()
    if install_signals:
        stop.install()
    rec = Recorder(run_dir, main, {})
    trainer: Trainer | None = None
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        setup_logging(run_dir, main)  # early lines (a stop, a failure in set-up) reach log.txt
        if main and not (run_dir / runs.CONFIG_JSON).is_file():
            runs.atomic_write_json(run_dir / runs.CONFIG_JSON, cfg.to_dict())
        prior = runs.read_meta(run_dir) if main else {}  # a torn run.json is rebuilt
        if resume and prior.get("status") == "finished":
            log.error("run %s has finished: nothing to resume", run_dir.name)
            return EXIT_BAD_INPUT  # and run.json stays as it is
        rec.meta = prior
        now = time.time()
        opening: dict[str, Any] = {
            "id": prior.get("id") or run_dir.name,
            "preset": prior.get("preset") or cfg.name,
            "dataset": prior.get("dataset") or cfg.dataset_label(),
            "max_epochs": prior.get("max_epochs") or cfg.training.max_epochs,
            "started_at": prior.get("started_at") or now,
            "host": runs.hostname(),
            "ended_at": None,
            **runs.open_session(prior, now),
        }
        if prior.get("status") not in runs.ACTIVE:
            opening["status"] = "starting"
        if not runs.pid_alive(prior.get("pid")):
            opening.update(pid=os.getpid(), pgid=os.getpgrp())
        rec.update(**opening)
        if stop.requested:
            return _stopped_before_training(rec, stop)
        trainer = Trainer(
            cfg, run_dir, resume=resume, init_checkpoint=init_checkpoint, stop=stop, on_step=on_step
        )
        trainer.setup()
        rec = trainer.rec
        if stop.requested:
            return _stopped_before_training(rec, stop)
        status = trainer.fit()
        if status == "stopped":
            rec.end("stopped")
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
        rec.end("finished", results=results)
        log.info("finished: %s", run_dir)
        return EXIT_OK
    except USER_ERRORS as exc:
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.error("error: %s", line)
        rec.end("failed", error=line)
        return EXIT_BAD_INPUT
    except Exception as exc:  # noqa: BLE001 - recorded, then the process exits non-zero
        line = runs.no_space_line(exc, run_dir)
        if line is None:  # a full disk is one line; anything else keeps its traceback
            line = f"{type(exc).__name__}: {exc}".splitlines()[0]
            if main:
                try:
                    with open(run_dir / runs.LOG, "a") as f:
                        f.write(traceback.format_exc())
                except OSError:
                    pass
        log.error("failed: %s", line)
        rec.end("failed", error=line)
        return EXIT_FAILED
    except BaseException as exc:  # KeyboardInterrupt without our handler, SystemExit
        rec.end("failed", error=f"interrupted ({type(exc).__name__})")
        raise
    finally:
        if trainer is not None:
            trainer_close(trainer)


def _stopped_before_training(rec: Recorder, stop: StopFlag) -> int:
    log.info("stop requested (%s) before training started", stop.signal_name)
    rec.end("stopped")
    return EXIT_STOPPED


def trainer_close(trainer: Trainer) -> None:
    """Stop the telemetry sampler and close the trackers; never raises (it runs on the way
    out, after the status is recorded)."""
    sampler = getattr(trainer, "telemetry", None)
    if sampler is not None:
        try:
            sampler.stop()
        except Exception as exc:  # noqa: BLE001
            log.warning("telemetry did not stop cleanly: %s", exc)
    rec = getattr(trainer, "rec", None)
    if rec is not None and rec.trackers is not None:
        try:
            rec.trackers.close()
        except Exception as exc:  # noqa: BLE001
            log.warning("trackers did not close cleanly: %s", exc)


def _is_main_env() -> bool:
    return int(os.environ.get("RANK", "0")) == 0
