"""Everything a training run writes into its run folder, in one place (no torch here).

:class:`Recorder` writes ``config.json``, ``run.json`` (the opening of a session, the
running facts, each epoch's summary, the end status), ``metrics.jsonl`` rows (fanned out
to TensorBoard / W&B when asked for), ``data.json``, ``eval/``, and starts and stops the
GPU telemetry sampler (``system.jsonl``). :func:`setup_logging` points the ``engine``
logger at ``log.txt``. Only the main process writes: on the others every method is a
no-op, so the trainer calls them unconditionally. The writes themselves are the
torch-free, atomic writers of :mod:`engine.runs`.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine import evaluate, runs

log = logging.getLogger("engine")

#: a translation run's generated sentences, per split (eval/)

#: the data facts run.json keeps (the rest of the bundle's info is in data.json)
DATA_INFO_KEYS = ("root", "per_split", "missing", "unreadable")


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


class Recorder:
    """The run folder's writer for one process; a no-op unless ``enabled`` (the main
    process). ``meta`` is run.json as this process last wrote or read it."""

    def __init__(self, run_dir: Path, enabled: bool, meta: dict[str, Any] | None = None):
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.meta: dict[str, Any] = dict(meta or {})
        self.trackers: Any = None  # engine.trackers.Trackers, when asked for
        self.telemetry: Any = None  # engine.telemetry.GpuSampler, while training

    @classmethod
    def reading(cls, run_dir: Path, enabled: bool) -> Recorder:
        """A recorder that starts from run.json as it is on disk."""
        return cls(run_dir, enabled, runs.read_json(Path(run_dir) / runs.RUN_JSON))

    # ---- run.json ---------------------------------------------------------------------

    def update(self, **fields: Any) -> None:
        """Merge ``fields`` into run.json as it is on disk; atomic, and in place as a last
        resort on a full disk (:func:`engine.runs.write_run_json`)."""
        if not self.enabled:
            return
        self.meta = runs.update_run_json(self.run_dir, fields, base=self.meta)

    def read_prior(self) -> dict[str, Any]:
        """run.json before this session (rebuilt from the folder when torn); {} off main."""
        self.meta = runs.read_meta(self.run_dir) if self.enabled else {}
        return self.meta

    def write_config(self, cfg: Any) -> None:
        """config.json, unless the folder has one (a resumed or prepared run keeps its own)."""
        if self.enabled and not (self.run_dir / runs.CONFIG_JSON).is_file():
            runs.atomic_write_json(self.run_dir / runs.CONFIG_JSON, cfg.to_dict())

    def open_session(self, cfg: Any) -> None:
        """Record that a session of this run began: names and limits the folder lacks,
        this host, the session's start; ``starting`` unless a launcher already marked it
        active, and this process's pid unless the recorded one is alive (the launcher's)."""
        if not self.enabled:
            return
        prior, now = self.meta, time.time()
        opening: dict[str, Any] = {
            "id": prior.get("id") or self.run_dir.name,
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
        self.update(**opening)

    def running(self, dataset: str, bundle: Any, accelerator: Any, **facts: Any) -> None:
        """Mark the run ``running`` in this process, with the facts of its set-up: the
        processes and device of ``accelerator``, the classes and data of ``bundle``, and
        ``facts`` (model size, steps, monitor, ...). A dataset label already recorded is
        kept."""
        acc = accelerator
        self.update(
            status="running",
            pid=os.getpid(),
            pgid=os.getpgrp(),
            host=runs.hostname(),
            started_at=self.meta.get("started_at") or time.time(),
            ended_at=None,
            error=None,
            world_size=acc.num_processes,
            device=str(acc.device),
            mixed_precision=acc.mixed_precision,
            num_classes=bundle.num_classes,
            data_info={k: v for k, v in bundle.info.items() if k in DATA_INFO_KEYS},
            **facts,
            dataset=self.meta.get("dataset") or dataset,
        )

    def epoch_done(
        self, row: dict[str, Any], *, best_metric: float | None, best_epoch: int
    ) -> None:
        """run.json after an epoch: progress, best so far and the epoch's metrics."""
        self.update(
            epoch=row["epoch"],
            step=row["step"],
            best_metric=best_metric,
            best_val_acc=_best_acc(self.meta.get("best_val_acc"), row.get("val_acc")),
            best_epoch=best_epoch,
            last_metrics=runs.to_jsonable(row),
        )

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

    def finished(self, report: dict[str, Any] | None) -> bool:
        """End the session ``finished``, with the headline figures of the final
        evaluation's ``report`` (per split) in ``results``."""
        keys: tuple[str, ...] = ("accuracy", "top5_accuracy", "per_class_accuracy", "macro_f1")
        report = report or {}
        if report.get("task") == "translation":
            keys = ("bleu4", "chrf", "wer", "nll")
        results = {s: {k: report[s].get(k) for k in keys} for s in ("val", "test") if s in report}
        return self.end("finished", results=results)

    def failed(self, exc: BaseException, *, bad_input: bool) -> bool:
        """End the session ``failed`` with ``exc`` as one line, also logged. Bad input is
        its message; anything else is ``Type: message`` with the traceback appended to
        log.txt, except a full disk, which is the one line ``no space left on ...``."""
        if bad_input:
            text = str(exc).strip()
            line = text.splitlines()[0] if text else type(exc).__name__
            log.error("error: %s", line)
        else:
            line = runs.no_space_line(exc, self.run_dir)
            if line is None:
                line = f"{type(exc).__name__}: {exc}".splitlines()[0]
                self.log_traceback()
            log.error("failed: %s", line)
        return self.end("failed", error=line)

    # ---- metrics, data, evaluation, log -------------------------------------------------

    def metric(self, kind: str, **fields: Any) -> None:
        """One metrics.jsonl row (``t``, ``kind``, then ``fields``), also to the trackers."""
        if not self.enabled:
            return
        row = {"t": time.time(), "kind": kind}
        row.update(runs.to_jsonable(fields))
        runs.append_jsonl(self.run_dir / runs.METRICS, row)
        if self.trackers is not None:
            self.trackers.log(row)

    def eval_row(self, split: str, summary: dict[str, Any], **fields: Any) -> None:
        """The metrics row of a split's final evaluation: the summary's numbers."""
        figures = {k: v for k, v in summary.items() if isinstance(v, (int, float)) or v is None}
        self.metric("eval", split=split, **fields, **figures)

    def write_data(self, source: str, bundle: Any) -> None:
        """data.json: the label encoder and feature settings ``slr predict`` needs."""
        if self.enabled:
            runs.atomic_write_json(
                self.run_dir / runs.DATA_JSON,
                {
                    "source": source,
                    "class_names": bundle.class_names,
                    "input_dim": bundle.input_dim,
                    "info": bundle.info,
                },
            )

    def write_eval(
        self, splits: dict[str, Any], class_names: list[str], training: Any, best_epoch: int
    ) -> dict[str, Any] | None:
        """eval/ for best.pt (:func:`engine.evaluate.write_eval`), with the decision
        threshold calibrated on val when ``training.threshold_rule`` asks for it. Returns
        the report; None off main."""
        if not self.enabled:
            return None
        t = training
        meta: dict[str, Any] = {
            "checkpoint": "best.pt",
            "best_epoch": best_epoch,
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
        thresholds = evaluate.default_thresholds(
            t.threshold_start, t.threshold_stop, t.threshold_step
        )
        return evaluate.write_eval(
            self.run_dir / runs.EVAL_DIR,
            splits,
            class_names,
            thresholds,
            meta=meta,
            group_aggregate=t.group_aggregate,
        )

    def write_translation_eval(
        self, report: dict[str, Any], rows: dict[str, dict[str, list[dict[str, str]]]]
    ) -> dict[str, Any] | None:
        """eval/ of a translation run: ``translations.csv`` (split, id, reference,
        hypothesis (greedy), hypothesis_beam), then ``report.json`` (last: its presence
        means the set is complete). ``rows``: split -> decoding -> rows in dataset order.
        Returns the report; None off main."""
        if not self.enabled:
            return None
        import csv
        import io

        eval_dir = self.run_dir / runs.EVAL_DIR
        eval_dir.mkdir(parents=True, exist_ok=True)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(("split", "id", "reference", "hypothesis", "hypothesis_beam"))
        for split, by_decoding in rows.items():
            greedy = by_decoding.get("greedy") or []
            beam = {r["id"]: r["hypothesis"] for r in by_decoding.get("beam") or []}
            for r in greedy:
                w.writerow((split, r["id"], r["reference"], r["hypothesis"], beam.get(r["id"], "")))
        runs.atomic_write_bytes(eval_dir / runs.TRANSLATIONS_CSV, buf.getvalue().encode("utf-8"))
        runs.atomic_write_json(eval_dir / "report.json", report)
        return report

    def log_traceback(self) -> None:
        """Append the exception being handled, in full, to log.txt (best effort)."""
        if not self.enabled:
            return
        try:
            with open(self.run_dir / runs.LOG, "a") as f:
                f.write(traceback.format_exc())
        except OSError:
            pass

    # ---- telemetry and trackers ---------------------------------------------------------

    def start_monitoring(self, cfg: Any, peak_mem_fn: Callable[[], float] | None) -> None:
        """Start the telemetry sampler (system.jsonl) and the trackers the config asks for."""
        if not self.enabled:
            return
        from engine.telemetry import GpuSampler

        t = cfg.training
        self.telemetry = GpuSampler(
            self.run_dir / runs.SYSTEM, interval_s=t.telemetry_interval_s, peak_mem_fn=peak_mem_fn
        )
        self.telemetry.start()
        if t.tensorboard or t.wandb:
            from engine.trackers import Trackers

            self.trackers = Trackers(self.run_dir, cfg, self.run_dir.name)

    def close(self) -> None:
        """Stop the telemetry sampler and close the trackers; never raises (it runs on the
        way out, after the status is recorded)."""
        if self.telemetry is not None:
            try:
                self.telemetry.stop()
            except Exception as exc:  # noqa: BLE001
                log.warning("telemetry did not stop cleanly: %s", exc)
        if self.trackers is not None:
            try:
                self.trackers.close()
            except Exception as exc:  # noqa: BLE001
                log.warning("trackers did not close cleanly: %s", exc)


# --------------------------------------------------------------------------- log lines


def log_threads(threads: dict[str, Any], num_workers: int, prefetch: int = 0) -> None:
    ahead = f", {prefetch} batches made ahead in a thread" if prefetch and not num_workers else ""
    log.info(
        "threads: %d (%s; %d cores, %d run%s sharing them, %d loader workers%s)",
        threads["num_threads"],
        threads["source"],
        threads["cores"],
        threads["concurrent_runs"],
        "" if threads["concurrent_runs"] == 1 else "s",
        num_workers,
        ahead,
    )


def log_data(label: str, bundle: Any) -> None:
    b = bundle
    log.info(
        "data: %s, %d classes, train/val/test = %d/%d/%d",
        label,
        b.num_classes,
        len(b.train),
        len(b.val),
        len(b.test) if b.test is not None else 0,
    )


def log_small_splits(one_pass: int, passes: int, steps: int, training: Any, n_val: int) -> None:
    """Why an epoch is several passes, and how a small validation split is monitored."""
    t = training
    if passes > 1:
        log.info(
            "small training split: one pass is %d optimiser step%s, so an epoch is %d "
            "passes (%d steps; training.min_epoch_steps=%d)",
            one_pass,
            "" if one_pass == 1 else "s",
            passes,
            steps,
            t.min_epoch_steps,
        )
    if n_val < 50 and t.patience is not None:
        log.info(
            "small validation split (%d samples): %s moves in steps of 1/%d; ties are "
            "broken by %s and early stopping waits for %d optimiser steps at least",
            n_val,
            t.monitor,
            n_val,
            t.monitor_tie_break or "nothing",
            t.min_steps,
        )


def log_resumed(epoch: int, step_in_epoch: int, steps_per_epoch: int, cfg: Any) -> None:
    if epoch >= cfg.training.max_epochs:
        log.info("resumed from last.pt: all %d epochs were done; evaluating", epoch)
    else:
        log.info(
            "resumed from last.pt at epoch %d, step %d of %d",
            epoch + 1,
            step_in_epoch,
            steps_per_epoch,
        )


def log_start(model_name: str, num_params: int, accelerator: Any, steps: int) -> None:
    acc = accelerator
    log.info(
        "training %s (%d parameters) on %s x%d, precision %s, %d steps/epoch",
        model_name,
        num_params,
        acc.device,
        acc.num_processes,
        acc.mixed_precision,
        steps,
    )


def _best_acc(prior: float | None, value: float | None) -> float | None:
    """The best validation accuracy so far (a translation run has none: it stays null)."""
    if value is None:
        return prior
    return max(prior or 0.0, value)


def _num(v: Any) -> float:
    return float("nan") if v is None else float(v)


def log_epoch(row: dict[str, Any], max_epochs: int, improved: bool) -> None:
    if "val_bleu4" in row:  # a translation run
        log.info(
            "epoch %d/%d  train_loss %.4f  val_loss %.4f  BLEU-4 %.2f  chrF %.2f  WER %.3f  "
            "lr %.2e  %.1fs%s",
            row["epoch"],
            max_epochs,
            row["train_loss"],
            _num(row.get("val_loss")),
            _num(row.get("val_bleu4")),
            _num(row.get("val_chrf")),
            _num(row.get("val_wer")),
            row["lr"],
            row["epoch_time_s"],
            "  *" if improved else "",
        )
        return
    log.info(
        "epoch %d/%d  train_loss %.4f  val_loss %.4f  val_acc %.4f  top5 %.4f  lr %.2e  %.1fs%s",
        row["epoch"],
        max_epochs,
        row["train_loss"],
        row["val_loss"] if row["val_loss"] is not None else float("nan"),
        row["val_acc"],
        row["val_top5"],
        row["lr"],
        row["epoch_time_s"],
        "  *" if improved else "",
    )
