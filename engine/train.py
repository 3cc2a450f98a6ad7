"""The training loop, top to bottom.

``python -m engine train --config C --run-dir D`` lands here. Device placement, mixed
precision and multi-process training go through HF Accelerate. Around the loop: what the
run folder receives is :mod:`engine.recording` (main process only), which epoch is best
and when to stop early is :mod:`engine.monitor`, checkpoints are :mod:`engine.checkpoint`,
the evaluation pass is :mod:`engine.inference`, and the model is asked only what
:class:`engine.models.base.SLRModel` defines. SIGTERM or Ctrl-C finishes the current
step, writes last.pt and marks the run ``stopped``; ``--resume`` continues from last.pt
exactly (same epoch, batch position, optimizer, scheduler, scaler, monitor and RNG state).
"""

from __future__ import annotations

import copy
import logging
import math
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from engine import checkpoint, recording
from engine.config import ConfigError, RunConfig
from engine.data import DataError, build_data
from engine.data.base import DataBundle, EpochSampler
from engine.data.prefetch import Prefetched, batches_ahead
from engine.inference import (
    any_process,
    evaluate_split,
    param_spread,
    predict,
    sample_groups,
    score_sums,
    sum_over_processes,
    to_device,
)
from engine.models import ModelError, build_model
from engine.monitor import Monitor
from engine.recording import Recorder, setup_logging
from engine.schedules import build_scheduler
from engine.schema import SplitFigures, always

log = logging.getLogger("engine")

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_STOPPED = 0, 1, 2, 130
USER_ERRORS = (ConfigError, DataError, ModelError)


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


def stopped_status(run_dir: str | Path) -> str:
    """The status a stopped run ends with: ``pruned`` when the launcher asked for the stop
    on a search's pruner (RUN/stop_request.json, :data:`engine.schema.STOP_REQUEST`), else
    ``stopped``. last.pt is written either way."""
    from engine import runs
    from engine.schema import STOP_REASONS, STOP_REQUEST

    request = runs.read_json(Path(run_dir) / STOP_REQUEST) or {}
    reason = request.get("reason")
    return reason if reason in STOP_REASONS else "stopped"


def resolve_precision(cfg: RunConfig, use_cuda: bool) -> str:
    p = cfg.training.precision
    if not use_cuda or p == "no":
        return "no"
    if p == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return p


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


#: the validation figures of an epoch row: (row key, key in evaluate.summarize)
VAL_FIGURES = (
    ("val_loss", "nll"),
    ("val_acc", "accuracy"),
    ("val_top5", "top5_accuracy"),
    ("val_per_class_acc", "per_class_accuracy"),
    ("val_macro_f1", "macro_f1"),
)


def _zero_sums() -> dict[str, Any]:
    """The running sums of an epoch's training loss and accuracy (a translation model's
    accuracy is over tokens: ``tokens``, ``token_correct``)."""
    return {"loss_sum": 0.0, "correct": 0, "seen": 0, "tokens": 0, "token_correct": 0}


#: classification figures a translation run cannot monitor; the default ``val_acc`` means
#: "the default" there, which for translation is ``val_loss``
_CLASSIFICATION_MONITORS = ("val_acc",)


def is_translation(cfg: RunConfig) -> bool:
    """The run translates (its source is ``translation`` or a subclass of its options)."""
    from engine.data.translation import TranslationData

    return isinstance(cfg.data, TranslationData)


class Trainer:
    """One run: :meth:`setup`, then :meth:`fit` (the epochs), then :meth:`final_eval`."""

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
        self.translation = is_translation(cfg)
        training = cfg.training
        if self.translation and training.monitor in _CLASSIFICATION_MONITORS:
            training = training.model_copy(update={"monitor": "val_loss"})
        self.monitor = Monitor.from_config(training)
        self.monitor_training = training  # cfg.training, with the monitor in effect
        self._examples: list[dict[str, str]] | None = None

    # ---- set-up ---------------------------------------------------------------------

    def setup(self) -> None:
        """Accelerator, data, model, optimiser and loaders; with ``resume``, last.pt."""
        from accelerate.utils import set_seed

        t = self.cfg.training
        self._start_accelerator()
        self.rec = Recorder.reading(self.run_dir, self.is_main)
        set_seed(t.seed)
        self._load_data()
        set_seed(t.seed)
        if self.translation:  # the model saves (or on resume reloads) its tokenizer here
            self.bundle.run_dir = self.run_dir
        model = build_model(self.cfg, self.bundle)
        if self.translation != (model.task == "translation"):
            raise ModelError(
                f"model '{self.cfg.model.name}' does {model.task} but data.source "
                f"'{self.cfg.data.source}' is {'' if self.translation else 'not '}translation"
            )
        self.num_params = sum(p.numel() for p in model.parameters())
        if self.init_checkpoint:
            checkpoint.load_init_weights(model, self.init_checkpoint)
        self._make_loaders()
        if model.fits_input_stats and not self.resume:
            self._fit_input_stats(model)
        # a classical model (MiniRocket + ridge) is fitted once, in closed form: no optimiser
        self.classical = model.is_classical
        self._prepare(model)
        b, acc = self.bundle, self.accelerator
        weighted = t.class_weighted and not self.translation
        self.class_weight = b.class_weights().to(acc.device) if weighted else None
        # progress (restored by resume)
        self.epoch = 0  # completed epochs
        self.step_in_epoch = 0  # optimizer steps done in the current, unfinished epoch
        self.global_step = 0
        self.epoch_acc = _zero_sums()
        self.data_wait_s = 0.0  # this epoch's time blocked on the training loader
        if self.resume:
            self._resume()

    def _start_accelerator(self) -> None:
        """The Accelerator (device, precision, processes), logging and the thread budget."""
        from accelerate import Accelerator

        from engine.threads import apply_budget

        cfg, t = self.cfg, self.cfg.training
        want_cuda = t.device == "cuda" or (t.device == "auto" and torch.cuda.is_available())
        if want_cuda and not torch.cuda.is_available():
            raise ConfigError("training.device is 'cuda' but no CUDA device is available")
        self.accelerator = Accelerator(
            cpu=not want_cuda, mixed_precision=resolve_precision(cfg, want_cuda)
        )
        self.is_main = self.accelerator.is_main_process
        setup_logging(self.run_dir, self.is_main)
        self.threads = apply_budget(t.num_threads, cfg.data.num_workers)
        workers = self.threads["loader_workers"]
        self.threads["prefetch_batches"] = batches_ahead(cfg.data.prefetch_batches, workers)
        recording.log_threads(self.threads, workers, self.threads["prefetch_batches"])

    def _load_data(self) -> None:
        with self.accelerator.main_process_first():
            self.bundle: DataBundle = build_data(self.cfg)
        b = self.bundle
        recording.log_data(self.cfg.dataset_label(), b)
        if len(b.train) == 0 or len(b.val) == 0:
            raise DataError("the training and validation splits must both hold samples")

    def _make_loaders(self) -> None:
        """The sharded loaders; a training split too small for ``min_epoch_steps`` steps
        a pass is passed over several times an epoch (passes concatenated, so batches run
        across their seams)."""
        cfg, t, b, acc = self.cfg, self.cfg.training, self.bundle, self.accelerator
        self.train_sampler = EpochSampler(
            len(b.train),
            shuffle=True,
            seed=t.seed,
            rank=acc.process_index,
            world_size=acc.num_processes,
        )
        self.train_loader = self._loader(b.train, self.train_sampler, cfg.data.batch_size)
        self.eval_batch_size = cfg.data.eval_batch_size or 2 * cfg.data.batch_size
        self.val_loader = self._eval_loader(b.val)
        self.test_loader = self._eval_loader(b.test) if b.test is not None else None
        one_pass = math.ceil(len(self.train_sampler) / cfg.data.batch_size)
        if t.min_epoch_steps and one_pass < t.min_epoch_steps:
            items = max(len(self.train_sampler), 1)
            self.train_sampler.passes = math.ceil(t.min_epoch_steps * cfg.data.batch_size / items)
        self.passes_per_epoch = self.train_sampler.passes
        self.steps_per_epoch = math.ceil(len(self.train_sampler) / cfg.data.batch_size)
        recording.log_small_splits(
            one_pass, self.passes_per_epoch, self.steps_per_epoch, self.monitor_training, len(b.val)
        )

    def _prepare(self, model: nn.Module) -> None:
        """The model (and, trained by gradient steps, AdamW and the scheduler) on the
        accelerator."""
        cfg, acc = self.cfg, self.accelerator
        if self.classical:
            if acc.num_processes > 1:
                raise ModelError(f"model '{cfg.model.name}' is fitted in one process; drop --gpus")
            self.train_sampler.passes = self.passes_per_epoch = 1
            self.steps_per_epoch = 1
            self.model, self.optimizer = acc.prepare(model), None
            self.scheduler, self.sched_when = None, None
            return
        optimizer = torch.optim.AdamW(
            _param_groups(model, cfg.optim.weight_decay), lr=cfg.optim.lr, betas=cfg.optim.betas
        )
        self.model, self.optimizer = acc.prepare(model, optimizer)
        # the scheduler is stepped by hand: accelerate's wrapper would step it per process
        self.scheduler, self.sched_when = build_scheduler(
            self.optimizer,
            cfg.optim,
            steps_per_epoch=self.steps_per_epoch,
            max_epochs=cfg.training.max_epochs,
            mode=self.monitor.mode,
        )

    def _loader(self, ds, sampler, batch_size: int) -> DataLoader:
        nw = self.threads["loader_workers"]  # data.num_workers, or the budget's choice
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

    def _eval_loader(self, ds) -> DataLoader:
        acc = self.accelerator
        sampler = EpochSampler(
            len(ds), shuffle=False, rank=acc.process_index, world_size=acc.num_processes
        )
        return self._loader(ds, sampler, self.eval_batch_size)

    @property
    def max_epochs(self) -> int:
        return 1 if self.classical else self.cfg.training.max_epochs  # closed form: one fit

    # ---- checkpoints ----------------------------------------------------------------

    def _parts(self) -> dict[str, Any]:
        """What a checkpoint holds the state dict of (None: this run has none)."""
        acc = self.accelerator
        return {
            "model": acc.unwrap_model(self.model),
            "optimizer": self.optimizer,
            "scheduler": self.scheduler,
            "scaler": acc.scaler,
        }

    def save(self, name: str) -> None:
        """Write checkpoint ``name`` (last.pt, best.pt): assembled on every rank (the
        optimizer's state dict may be collective), written by the main process."""
        b = self.bundle
        ckpt = checkpoint.training_checkpoint(
            self._parts(),
            {
                "epoch": self.epoch,
                "step_in_epoch": self.step_in_epoch,
                "global_step": self.global_step,
                **self.monitor.state_dict(),
                "epoch_acc": dict(self.epoch_acc),
                "config": self.cfg.to_dict(),
                "class_names": [str(c) for c in b.class_names],
                "input_dim": None if b.input_dim is None else int(b.input_dim),
                "world_size": self.accelerator.num_processes,
            },
        )
        if self.is_main:
            checkpoint.save_checkpoint(ckpt, self.run_dir / name)

    def _resume(self) -> None:
        ckpt = checkpoint.load_resumable(self.run_dir / "last.pt", self.accelerator.num_processes)
        checkpoint.restore(self._parts(), ckpt)
        self.epoch = ckpt["epoch"]
        self.step_in_epoch = ckpt["step_in_epoch"]
        self.global_step = ckpt["global_step"]
        self.epoch_acc = dict(ckpt["epoch_acc"])
        self.monitor.load_state_dict(ckpt)
        checkpoint.set_rng_state(ckpt["rng"])  # last, so nothing above draws from it
        recording.log_resumed(self.epoch, self.step_in_epoch, self.steps_per_epoch, self.cfg)

    # ---- one epoch --------------------------------------------------------------------

    def _stop_requested(self) -> bool:
        return any_process(self.accelerator, self.stop.requested)  # all stop at one step

    def _frozen_parameters(self) -> list[nn.Parameter]:
        """Backbone parameters to keep fixed this epoch (model.freeze_backbone_epochs)."""
        frozen = list(self.accelerator.unwrap_model(self.model).backbone_parameters())
        # only a family with a backbone has the option
        if not frozen or self.epoch >= self.cfg.model.freeze_backbone_epochs:
            return []
        if self.step_in_epoch == 0:
            log.info("epoch %d: backbone frozen", self.epoch + 1)
        return frozen

    def lr(self) -> float:
        if self.optimizer is None:  # a classical model: fitted in closed form
            return 0.0
        return float(self.optimizer.param_groups[0]["lr"])

    def _step_row(self, train_loss: float, samples_per_s: float) -> None:
        self.rec.metric(
            "step",
            epoch=self.epoch + 1,
            step=self.global_step,
            step_in_epoch=self.step_in_epoch,
            train_loss=train_loss,
            lr=self.lr(),
            samples_per_s=samples_per_s,
        )

    @torch.no_grad()
    def _fit_input_stats(self, model) -> None:
        """A model that normalises by statistics of the training inputs fits them here,
        once, on the training split in order and without augmentation."""
        ds = copy.copy(self.bundle.train)
        ds.augment = False
        stats = torch.cat([model.input_stats(b) for b in self._eval_loader(ds)])
        model.fit_input_stats(stats)
        log.info("fitted input statistics on %d training samples", len(stats))

    def _fit_classical(self) -> bool:
        """The one 'epoch' of a classical model: fit on the whole training split (one
        ordered pass, no augmentation), then score the training split for the epoch row."""
        acc = self.accelerator
        ds = copy.copy(self.bundle.train)
        ds.augment = False
        loader = self._eval_loader(ds)
        t0 = time.perf_counter()
        log.info("fitting %s on %d training samples", self.cfg.model.name, len(ds))
        acc.unwrap_model(self.model).fit_batches(to_device(b, acc.device) for b in loader)
        probs, labels, _, _ = predict(self.model, loader, acc, len(ds))
        self.epoch_acc = sums = score_sums(probs, labels)
        self.step_in_epoch, self.global_step = 1, self.global_step + 1
        n, dt = sums["seen"], max(time.perf_counter() - t0, 1e-9)
        self._step_row(sums["loss_sum"] / max(n, 1), n / dt)
        return not self._stop_requested()

    def _step(self, batch: dict[str, Any], frozen: list[nn.Parameter]) -> tuple[int, float]:
        """One optimiser step on ``batch``, added to the epoch's sums: (samples, loss)."""
        acc, t = self.accelerator, self.cfg.training
        net = acc.unwrap_model(self.model)
        with acc.autocast():
            out = self.model(batch)
        loss = net.compute_loss(out, batch, self.class_weight, t.label_smoothing)
        acc.backward(loss)
        for p in frozen:  # the backbone stays fixed: AdamW skips parameters without gradients
            p.grad = None
        if t.grad_clip:
            acc.clip_grad_norm_(self.model.parameters(), t.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.sched_when == "step" and not acc.optimizer_step_was_skipped:
            self.scheduler.step()
        n, value = int(batch["index"].shape[0]), float(loss.detach())
        self.epoch_acc["loss_sum"] += value * n
        self.epoch_acc["seen"] += n
        with torch.no_grad():
            if self.translation:
                _, tokens, correct = net.token_sums(out)
                self.epoch_acc["tokens"] = self.epoch_acc.get("tokens", 0) + tokens
                self.epoch_acc["token_correct"] = self.epoch_acc.get("token_correct", 0) + correct
            else:
                pred = net.class_scores(out.detach(), batch).argmax(-1)
                self.epoch_acc["correct"] += int((pred == batch["label"]).sum())
        return n, value

    def train_epoch(self) -> bool:
        """One epoch (or its remainder after a resume). Returns False if stopped midway."""
        if self.classical:
            return self._fit_classical()
        acc, log_every = self.accelerator, self.cfg.training.log_every_steps
        self.model.train()
        self.train_sampler.set_epoch(self.epoch, skip=self.step_in_epoch * self.cfg.data.batch_size)
        frozen = self._frozen_parameters()
        win_loss, win_n, win_t0 = 0.0, 0, time.perf_counter()  # the window a step row sums
        ready = time.perf_counter()  # since when the loop has been waiting for a batch
        with Prefetched(self.train_loader, self.threads["prefetch_batches"]) as batches:
            for batch in batches:
                self.data_wait_s += time.perf_counter() - ready
                n, loss = self._step(to_device(batch, acc.device), frozen)
                win_loss, win_n = win_loss + loss * n, win_n + n
                self.step_in_epoch += 1
                self.global_step += 1
                if self.global_step % log_every == 0 or self.step_in_epoch == self.steps_per_epoch:
                    dt = max(time.perf_counter() - win_t0, 1e-9)
                    self._step_row(win_loss / max(win_n, 1), win_n * acc.num_processes / dt)
                    win_loss, win_n, win_t0 = 0.0, 0, time.perf_counter()
                if self.on_step is not None:
                    self.on_step(self)
                if self._stop_requested():
                    return False
                ready = time.perf_counter()
        return True

    def evaluate_split(self, loader: DataLoader) -> tuple[dict[str, Any], Any, Any, list[str]]:
        return evaluate_split(self.model, loader, self.accelerator, self.bundle.class_names)

    def _epoch_row(self) -> dict[str, Any] | None:
        """Train one epoch and validate: the epoch's metrics, or None when stopped midway."""
        acc = self.accelerator
        t0, seen0 = time.perf_counter(), self.epoch_acc["seen"]
        self.data_wait_s = 0.0
        if not self.train_epoch():
            return None
        epoch_time = time.perf_counter() - t0
        ea = sum_over_processes(acc, self.epoch_acc)
        if self.translation:
            figures = self._translation_val()
        else:
            val, *_ = self.evaluate_split(self.val_loader)
            figures = {
                "train_acc": ea["correct"] / max(ea["seen"], 1),
                **{key: val[figure] for key, figure in VAL_FIGURES},
            }
            if "blank_share" in val:
                figures["val_blank_share"] = val["blank_share"]
        row = {
            "epoch": self.epoch + 1,
            "step": self.global_step,
            "train_loss": ea["loss_sum"] / max(ea["seen"], 1),
            **figures,
            "lr": self.lr(),
            "epoch_time_s": epoch_time,
            "samples_per_s": (self.epoch_acc["seen"] - seen0)
            * acc.num_processes
            / max(epoch_time, 1e-9),
            "data_wait_share": min(self.data_wait_s / max(epoch_time, 1e-9), 1.0),
        }
        if acc.num_processes > 1:
            row["sync_max_diff"] = param_spread(acc, self.model)
        return row

    def _translation_val(self) -> dict[str, Any]:
        """A translation epoch's figures: teacher-forced token loss and accuracy, greedy
        BLEU-1..4, chrF and WER on val (engine.translation_eval); keeps its examples for
        the examples row. Token accuracy of training is this process's (not summed)."""
        from engine import translation_eval

        t = self.cfg.training
        summary, _ = translation_eval.evaluate(
            self.model, self.val_loader, self.accelerator, num_beams=1, num_examples=t.num_examples
        )
        self._examples = summary["examples"]
        tokens = self.epoch_acc.get("tokens", 0)
        return {
            "train_acc": None,
            **{key: None for key, _ in VAL_FIGURES},  # classification figures: none here
            "train_token_acc": self.epoch_acc.get("token_correct", 0) / tokens if tokens else None,
            **{key: summary[figure] for key, figure in translation_eval.EPOCH_FIGURES},
        }

    def _end_epoch(self, row: dict[str, Any]) -> None:
        """Close a completed epoch: best so far, scheduler, metrics row, checkpoints."""
        improved = self.monitor.observe(row, self.epoch + 1)
        self.epoch += 1
        self.step_in_epoch = 0
        self.epoch_acc = _zero_sums()
        if self.sched_when == "epoch":
            self.scheduler.step()
        elif self.sched_when == "metric":
            self.scheduler.step(self.monitor.last)
        row["best"] = improved
        self.rec.metric("epoch", **row)
        if self._examples:
            self.rec.metric(
                "examples",
                epoch=row["epoch"],
                step=row["step"],
                split="val",
                decoding="greedy",
                examples=self._examples,
            )
            self._examples = None
        if improved:
            self.save("best.pt")
        self.save("last.pt")
        self.rec.epoch_done(row, best_metric=self.monitor.best, best_epoch=self.monitor.best_epoch)
        recording.log_epoch(row, self.max_epochs, improved)

    # ---- the run ----------------------------------------------------------------------

    def _run_facts(self) -> dict[str, Any]:
        """The set-up as run.json records it once training starts."""
        return {
            "max_epochs": self.max_epochs,
            "steps_per_epoch": self.steps_per_epoch,
            "passes_per_epoch": self.passes_per_epoch,
            "threads": self.threads,
            "monitor": self.monitor.metric,
            "monitor_mode": self.monitor.mode,
            "num_params": self.num_params,
        }

    def _peak_mem_fn(self) -> Callable[[], float] | None:
        """This run's peak GPU memory in MiB, for the telemetry sampler (None on CPU)."""
        device = self.accelerator.device
        if device.type != "cuda":
            return None
        return lambda: torch.cuda.max_memory_allocated(device) / 2**20

    def fit(self) -> str:
        """Train until max epochs, early stop, target or a stop request. Returns the status."""
        cfg, acc = self.cfg, self.accelerator
        self.rec.running(cfg.dataset_label(), self.bundle, acc, **self._run_facts())
        self.rec.write_data(cfg.data.source, self.bundle)
        recording.log_start(cfg.model.name, self.num_params, acc, self.steps_per_epoch)
        self.rec.start_monitoring(cfg, self._peak_mem_fn())
        reason = "max_epochs"
        while self.epoch < self.max_epochs:
            row = self._epoch_row()
            if row is None:
                self.save("last.pt")
                log.info("stop requested (%s): wrote last.pt", self.stop.signal_name)
                self.rec.update(step=self.global_step)
                return "stopped"
            self._end_epoch(row)
            early = self.monitor.stop_reason(self.global_step)
            if early is not None:
                reason = early
                break
            if self._stop_requested():
                log.info("stop requested (%s) after epoch %d", self.stop.signal_name, self.epoch)
                return "stopped"
        self.rec.update(stop_reason=reason)
        return "finished"

    def final_eval(self) -> dict[str, Any] | None:
        """Evaluate best.pt on val (and test); write eval/. The report; None off main."""
        best = self.run_dir / "best.pt"
        acc, t = self.accelerator, self.cfg.training
        acc.wait_for_everyone()
        if best.is_file():
            checkpoint.load_weights(acc.unwrap_model(self.model), best)
        if self.translation:
            return self._final_translation_eval()
        splits: dict[str, dict[str, Any]] = {}
        loaders = [("val", self.val_loader)]
        if self.test_loader is not None and t.eval_test:
            loaders.append(("test", self.test_loader))
        for name, loader in loaders:
            summary, probs, labels, ids = self.evaluate_split(loader)
            splits[name] = {"ids": ids, "y_true": labels, "probs": probs}
            groups = sample_groups(self.cfg, self.bundle, loader.dataset)
            if groups is not None:  # grouped metrics (training.group_aggregate)
                splits[name]["groups"] = groups
            self.rec.eval_row(name, summary, epoch=self.monitor.best_epoch, step=self.global_step)
        return self.rec.write_eval(splits, self.bundle.class_names, t, self.monitor.best_epoch)

    def _final_translation_eval(self) -> dict[str, Any] | None:
        """best.pt on val (and test), greedy and beam search (``training.num_beams``): an
        eval row per split and decoding, eval/report.json (greedy figures under the split,
        beam ones under ``beam``) and eval/translations.csv."""
        from engine import translation_eval

        t = self.cfg.training
        loaders = [("val", self.val_loader)]
        if self.test_loader is not None and t.eval_test:
            loaders.append(("test", self.test_loader))
        report: dict[str, Any] = {
            "task": "translation",
            "checkpoint": "best.pt",
            "best_epoch": self.monitor.best_epoch,
            "monitor": self.monitor.metric,
            "num_beams": t.num_beams,
            "splits": [name for name, _ in loaders],
            "beam": {},
        }
        rows: dict[str, dict[str, list[dict[str, str]]]] = {}
        decodings = [("greedy", 1)] + ([("beam", t.num_beams)] if t.num_beams > 1 else [])
        for name, loader in loaders:
            rows[name] = {}
            for decoding, beams in decodings:
                summary, split_rows = translation_eval.evaluate(
                    self.model, loader, self.accelerator, num_beams=beams, num_examples=0
                )
                figures = translation_eval.figures(summary)
                rows[name][decoding] = split_rows
                if decoding == "greedy":
                    report[name] = figures
                else:
                    report["beam"][name] = figures
                self.rec.metric(
                    "eval",
                    split=name,
                    decoding=decoding,
                    epoch=self.monitor.best_epoch,
                    step=self.global_step,
                    # an eval row carries every classification figure; here they are null
                    **{**dict.fromkeys(always(SplitFigures)), **figures},
                )
                log.info(
                    "%s (%s): BLEU-4 %.2f  chrF %.2f  WER %s",
                    name,
                    decoding,
                    figures["bleu4"] or 0.0,
                    figures["chrf"] or 0.0,
                    "n/a" if figures["wer"] is None else f"{figures['wer']:.3f}",
                )
        return self.rec.write_translation_eval(report, rows)


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
    rec = Recorder(run_dir, main)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        setup_logging(run_dir, main)  # early lines (a stop, a failure in set-up) reach log.txt
        rec.write_config(cfg)
        prior = rec.read_prior()  # a torn run.json is rebuilt
        if resume and prior.get("status") == "finished":
            log.error("run %s has finished: nothing to resume", run_dir.name)
            return EXIT_BAD_INPUT  # and run.json stays as it is
        rec.open_session(cfg)
        if stop.requested:
            return _stopped_before_training(rec, stop)
        trainer = Trainer(
            cfg, run_dir, resume=resume, init_checkpoint=init_checkpoint, stop=stop, on_step=on_step
        )
        trainer.setup()
        rec = trainer.rec
        if stop.requested:
            return _stopped_before_training(rec, stop)
        if trainer.fit() == "stopped":
            status = stopped_status(run_dir)  # `pruned` when a search's pruner asked
            rec.end(status, **({"stop_reason": status} if status != "stopped" else {}))
            return EXIT_STOPPED
        rec.finished(trainer.final_eval())
        log.info("finished: %s", run_dir)
        return EXIT_OK
    except USER_ERRORS as exc:
        rec.failed(exc, bad_input=True)
        return EXIT_BAD_INPUT
    except Exception as exc:  # noqa: BLE001 - recorded, then the process exits non-zero
        rec.failed(exc, bad_input=False)
        return EXIT_FAILED
    except BaseException as exc:  # KeyboardInterrupt without our handler, SystemExit
        rec.end("failed", error=f"interrupted ({type(exc).__name__})")
        raise
    finally:
        rec.close()  # telemetry and trackers, after the status is recorded


def _stopped_before_training(rec: Recorder, stop: StopFlag) -> int:
    log.info("stop requested (%s) before training started", stop.signal_name)
    status = stopped_status(rec.run_dir)
    rec.end(status, **({"stop_reason": status} if status != "stopped" else {}))
    return EXIT_STOPPED


def _is_main_env() -> bool:
    return int(os.environ.get("RANK", "0")) == 0
