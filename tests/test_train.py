"""The training loop on tiny synthetic data: files, stopping, resuming, failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import torch

from engine import runs
from engine.train import EXIT_FAILED, EXIT_OK, EXIT_STOPPED, StopFlag, run_training
from slr_tui import launch
from tests.conftest import tiny_cfg

DESIGN_FILES = [
    "config.json",
    "run.json",
    "metrics.jsonl",
    "system.jsonl",
    "log.txt",
    "best.pt",
    "last.pt",
]
EVAL_FILES = ["report.json", "predictions.npz", "per_class.csv", "confusion.csv", "thresholds.csv"]


def test_finished_run_holds_every_design_file(finished_run):
    for f in DESIGN_FILES:
        assert (finished_run / f).is_file(), f
    for f in EVAL_FILES:
        assert (finished_run / "eval" / f).is_file(), f
    meta = runs.read_json(finished_run / "run.json")
    assert meta["status"] == "finished" and meta["epoch"] == 4 and meta["pid"] is None
    assert meta["ended_at"] >= meta["started_at"]
    rows = runs.read_jsonl(finished_run / "metrics.jsonl")
    epochs = [r for r in rows if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2, 3, 4]
    for key in (
        "train_loss",
        "val_loss",
        "val_acc",
        "val_top5",
        "lr",
        "samples_per_s",
        "epoch_time_s",
    ):
        assert all(isinstance(r[key], float) for r in epochs), key
    assert all({"t", "kind", "epoch", "step"} <= set(r) for r in rows)
    assert {r["split"] for r in rows if r["kind"] == "eval"} == {"val", "test"}
    report = runs.read_json(finished_run / "eval" / "report.json")
    for split in ("val", "test"):
        for key in (
            "accuracy",
            "top5_accuracy",
            "top10_accuracy",
            "per_class_accuracy",
            "macro_precision",
            "macro_recall",
            "macro_f1",
            "weighted_f1",
            "num_samples",
        ):
            assert key in report[split], key
    ck = torch.load(finished_run / "last.pt", weights_only=False)
    assert {"model", "optimizer", "scheduler", "scaler", "epoch", "rng", "config"} <= set(ck)
    assert ck["config"] == json.loads((finished_run / "config.json").read_text())
    system = runs.read_jsonl(finished_run / "system.jsonl")
    assert system and ("error" in system[0] or system[0]["gpus"])


def test_best_checkpoint_is_the_best_epoch(finished_run):
    rows = list(runs.iter_epochs(runs.read_jsonl(finished_run / "metrics.jsonl")))
    # the highest val_acc; a tie goes to the lower val_loss (training.monitor_tie_break)
    best = rows[0]
    for r in rows[1:]:
        if r["val_acc"] > best["val_acc"] or (
            r["val_acc"] == best["val_acc"] and r["val_loss"] < best["val_loss"]
        ):
            best = r
    meta = runs.read_json(finished_run / "run.json")
    assert meta["best_epoch"] == best["epoch"]
    assert meta["best_metric"] == pytest.approx(best["val_acc"])
    ck = torch.load(finished_run / "best.pt", weights_only=False)
    assert ck["epoch"] == best["epoch"]
    report = runs.read_json(finished_run / "eval" / "report.json")
    assert report["val"]["accuracy"] == pytest.approx(best["val_acc"])


def _epoch_figures(run_dir):
    rows = list(runs.iter_epochs(runs.read_jsonl(run_dir / "metrics.jsonl")))
    return [(r["epoch"], r["train_loss"], r["val_loss"], r["val_acc"], r["lr"]) for r in rows]


def test_resumed_run_matches_uninterrupted_run(tmp_path):
    cfg = tiny_cfg("training.max_epochs=3", "data.augment=true", "model.dropout=0.3")
    a, b = tmp_path / "a", tmp_path / "b"
    assert run_training(cfg, a) == EXIT_OK

    stop = StopFlag()

    def stop_mid_epoch_two(trainer):
        if trainer.epoch == 1 and trainer.step_in_epoch == 2:
            stop.set("test")

    assert run_training(cfg, b, stop=stop, on_step=stop_mid_epoch_two) == EXIT_STOPPED
    meta = runs.read_json(b / "run.json")
    assert meta["status"] == "stopped" and meta["epoch"] == 1
    ck = torch.load(b / "last.pt", weights_only=False)
    assert (ck["epoch"], ck["step_in_epoch"]) == (1, 2)

    assert run_training(cfg, b, resume=True) == EXIT_OK
    assert runs.read_json(b / "run.json")["status"] == "finished"
    assert _epoch_figures(a) == _epoch_figures(b)
    ra = runs.read_json(a / "eval" / "report.json")
    rb = runs.read_json(b / "eval" / "report.json")
    assert ra["test"] == rb["test"] and ra["val"] == rb["val"]


def test_early_stopping_and_target_metric(tmp_path):
    # an lr too small to change anything: val accuracy never improves after epoch 1
    frozen = tiny_cfg(
        "training.max_epochs=10",
        "training.patience=2",
        "training.min_steps=0",
        "training.monitor_tie_break=null",
        "optim.lr=1e-12",
    )
    assert run_training(frozen, tmp_path / "es") == EXIT_OK
    meta = runs.read_json(tmp_path / "es" / "run.json")
    assert meta["epoch"] == 3 and meta["stop_reason"] == "early_stopping"

    target = tiny_cfg("training.max_epochs=10", "training.target_metric=0.0")
    assert run_training(target, tmp_path / "tm") == EXIT_OK
    meta = runs.read_json(tmp_path / "tm" / "run.json")
    assert meta["epoch"] == 1 and meta["stop_reason"] == "target_metric"


def test_crash_marks_failed_and_keeps_what_was_written(tmp_path):
    def boom(trainer):
        if trainer.epoch == 1 and trainer.step_in_epoch == 1:
            raise RuntimeError("simulated crash")

    run_dir = tmp_path / "crash"
    assert run_training(tiny_cfg(), run_dir, on_step=boom) == EXIT_FAILED
    meta = runs.read_json(run_dir / "run.json")
    assert meta["status"] == "failed" and meta["error"] == "RuntimeError: simulated crash"
    assert (run_dir / "last.pt").is_file() and (run_dir / "best.pt").is_file()
    rows = runs.read_jsonl(run_dir / "metrics.jsonl")
    assert [r["epoch"] for r in rows if r["kind"] == "epoch"] == [1]
    assert "Traceback" in (run_dir / "log.txt").read_text()


def test_bad_monitor_fails_with_one_line(tmp_path):
    run_dir = tmp_path / "bad"
    assert run_training(tiny_cfg("training.monitor=val_nope"), run_dir) == 2
    meta = runs.read_json(run_dir / "run.json")
    assert meta["status"] == "failed" and "val_nope" in meta["error"] and "val_acc" in meta["error"]


def test_init_checkpoint_loads_weights_only(finished_run, tmp_path):
    # with a learning rate of ~0, epoch 1 reproduces the source run's best validation loss
    cfg = tiny_cfg("training.max_epochs=1", "optim.lr=1e-12")
    from engine.train import Trainer

    tr = Trainer(cfg, tmp_path / "init", init_checkpoint=str(finished_run / "best.pt"))
    (tmp_path / "init").mkdir()
    tr.setup()
    ref = torch.load(finished_run / "best.pt", weights_only=False)["model"]
    got = tr.accelerator.unwrap_model(tr.model).state_dict()
    assert all(torch.equal(ref[k], got[k]) for k in ref)
    assert tr.epoch == 0 and tr.global_step == 0  # weights only: a fresh schedule


def _wait_for(pred, timeout=120.0, poll=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(poll)
    return False


def test_sigterm_writes_last_checkpoint_and_marks_stopped(tmp_path):
    cfg = tiny_cfg("training.max_epochs=10000")
    run_dir = launch.prepare_run(cfg, tmp_path)
    proc = launch.spawn(run_dir)
    try:
        assert _wait_for(
            lambda: any(r["kind"] == "epoch" for r in runs.read_jsonl(run_dir / "metrics.jsonl"))
        )
        os.kill(proc.pid, 15)
        assert proc.wait(timeout=60) == EXIT_STOPPED
    finally:
        if proc.poll() is None:
            proc.kill()
    meta = runs.read_json(run_dir / "run.json")
    assert meta["status"] == "stopped"
    ck = torch.load(run_dir / "last.pt", weights_only=False)
    assert ck["epoch"] >= 1
    assert runs.load_run(run_dir).status == "stopped"


def test_two_processes_stay_in_step_and_write_once(tmp_path):
    cfg = tiny_cfg("training.max_epochs=2", "training.log_every_steps=100")
    run_dir = launch.prepare_run(cfg, tmp_path)
    proc = launch.spawn(run_dir, procs=2)
    assert proc.wait(timeout=300) == 0, (run_dir / "log.txt").read_text()[-3000:]
    meta = runs.read_json(run_dir / "run.json")
    assert meta["status"] == "finished" and meta["world_size"] == 2
    rows = runs.read_jsonl(run_dir / "metrics.jsonl")
    epochs = [r for r in rows if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2]  # one row per epoch: written once
    assert all(r["sync_max_diff"] == 0.0 for r in epochs)  # identical weights on both ranks
    evals = [r for r in rows if r["kind"] == "eval"]
    assert sorted(r["split"] for r in evals) == ["test", "val"]
    report = runs.read_json(run_dir / "eval" / "report.json")
    # every validation sample evaluated exactly once across the two shards
    assert report["val"]["num_samples"] == meta["data_info"]["per_split"]["val"]
    assert report["test"]["num_samples"] == meta["data_info"]["per_split"]["test"]
    log = (run_dir / "log.txt").read_text()
    assert log.count("epoch 1/2") == 1


def test_engine_entry_point_rejects_bad_config(tmp_path):
    bad = tmp_path / "c.json"
    bad.write_text(json.dumps({"training": {"max_epochs": "many"}}))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine",
            "train",
            "--config",
            str(bad),
            "--run-dir",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert "training.max_epochs" in out.stderr and "Traceback" not in out.stderr


def test_demo_preset_trains_far_above_chance(tmp_path):
    """The full demo preset (as `make demo` runs it): 10 classes, chance is 0.1."""
    from engine import config as cfgmod

    cfg = cfgmod.resolve(preset="demo")
    assert run_training(cfg, tmp_path / "demo") == EXIT_OK
    report = runs.read_json(tmp_path / "demo" / "eval" / "report.json")
    assert report["num_classes"] == 10
    assert report["val"]["accuracy"] > 0.6
    assert report["test"]["accuracy"] > 0.6


def test_trackers_are_optional(tmp_path, monkeypatch):
    """Asked for but not installed: one warning, and the run goes on."""
    import builtins

    real_import = builtins.__import__

    def no_trackers(name, *a, **k):
        if name in ("wandb", "torch.utils.tensorboard"):
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_trackers)
    run_dir = tmp_path / "tr"
    cfg = tiny_cfg("training.max_epochs=1", "training.tensorboard=true", "training.wandb=myproject")
    assert run_training(cfg, run_dir) == EXIT_OK
    log = (run_dir / "log.txt").read_text()
    assert "pip install tensorboard" in log and "pip install wandb" in log


def test_tracker_receives_scalar_metrics(tmp_path, monkeypatch):
    from engine import trackers

    seen = []

    class FakeWriter:
        def __init__(self, log_dir):
            self.log_dir = log_dir

        def add_scalar(self, k, v, step):
            seen.append((k, v, step))

        def close(self):
            seen.append(("closed", 0, 0))

    import types

    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = FakeWriter
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    cfg = tiny_cfg("training.max_epochs=2", "training.tensorboard=true")
    assert run_training(cfg, tmp_path / "tb") == EXIT_OK
    keys = {k for k, _, _ in seen}
    assert {"epoch/val_acc", "epoch/train_loss", "step/lr", "eval_test/accuracy"} <= keys
    assert seen[-1][0] == "closed"
    assert trackers.Trackers  # module importable without tensorboard or wandb


def test_epoch_rows_say_how_long_training_waited_for_data(tmp_path, monkeypatch):
    """data_wait_share: the share of an epoch's training time blocked on the loader. A
    dataset that sleeps in __getitem__ (no workers: the wait is the loop's) shows it."""
    from engine.data.landmarks import LandmarkDataset

    def shares(run_dir):
        rows = runs.iter_epochs(runs.read_jsonl(run_dir / "metrics.jsonl"))
        return [r["data_wait_share"] for r in rows]

    cfg = tiny_cfg("training.max_epochs=2", "data.num_workers=0", "training.eval_test=false")
    assert run_training(cfg, tmp_path / "fast") == EXIT_OK
    fast = shares(tmp_path / "fast")
    assert len(fast) == 2 and all(0.0 <= s <= 1.0 for s in fast)
    one, batch = LandmarkDataset.__getitem__, LandmarkDataset.__getitems__

    def slow_one(self, key):
        time.sleep(0.01)
        return one(self, key)

    def slow_batch(self, keys):
        time.sleep(0.01 * len(keys))
        return batch(self, keys)

    monkeypatch.setattr(LandmarkDataset, "__getitem__", slow_one)
    monkeypatch.setattr(LandmarkDataset, "__getitems__", slow_batch)
    assert run_training(cfg, tmp_path / "slow") == EXIT_OK
    slowed = shares(tmp_path / "slow")
    assert min(slowed) > 0.5 and min(slowed) > max(fast)
