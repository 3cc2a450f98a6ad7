"""End to end through the real engine on data the tests make: the activity-LSTM, error
recognition (binary, calibrated threshold) and CTC paths."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from engine import config as cfgmod
from engine import evaluate, runs
from engine.train import EXIT_OK, run_training
from slr_tui.cli import app
from tests.seq_fixtures import make_activity_csvs, make_feature_set


def test_activity_lstm_trains_and_predicts_a_new_recording(tmp_path):
    manifest = make_activity_csvs(tmp_path / "data", recordings_per_activity=6, seed=1)
    cfg = cfgmod.resolve(
        preset="activity-lstm",
        sets=[
            f"data.root={tmp_path / 'data'}",
            "model.hidden_sizes=[32, 16]",
            "model.dense_size=16",
            "training.max_epochs=12",
            "training.device=cpu",
            "optim.lr=3e-3",
        ],
    )
    run_dir = tmp_path / "runs" / "act"
    assert run_training(cfg, run_dir) == EXIT_OK
    report = runs.read_json(run_dir / "eval" / "report.json")
    chance = 1 / len(manifest["activities"])
    assert report["val"]["accuracy"] > chance + 0.3
    data = runs.read_json(run_dir / "data.json")
    assert data["class_names"] == sorted(manifest["activities"])

    # a fresh recording of a known activity, without a label column
    new = make_activity_csvs(tmp_path / "new", recordings_per_activity=1, seed=7, nested=False)
    name, rec = next((n, r) for n, r in new["recordings"].items() if r["label"])
    import pandas as pd

    df = pd.read_csv(rec["path"]).drop(columns=["label"])
    unlabeled = tmp_path / "unlabeled.csv"
    df.to_csv(unlabeled, index=False)
    res = CliRunner().invoke(app, ["predict", str(run_dir), str(unlabeled), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)[0]
    assert out["windows"] and all(w["end"] - w["start"] == 30 for w in out["windows"])
    assert out["overall"]["label"] == rec["label"]
    res = CliRunner().invoke(app, ["predict", str(run_dir), str(unlabeled)])
    assert res.exit_code == 0 and "per window" in res.output


def test_error_recognition_calibrates_the_threshold_on_val(tmp_path):
    make_feature_set(
        tmp_path / "feat", binary=True, samples_per_class=30, dim=8, separation=1.0, seed=3
    )
    cfg = cfgmod.resolve(
        preset="error-recognition-mlp",
        sets=[
            f"data.root={tmp_path / 'feat'}",
            "data.batch_size=4",
            "training.max_epochs=6",
            "training.device=cpu",
            "optim.lr=1e-3",
        ],
    )
    run_dir = tmp_path / "runs" / "err"
    assert run_training(cfg, run_dir) == EXIT_OK
    report = runs.read_json(run_dir / "eval" / "report.json")
    assert report["task"] == "binary"
    assert report["test"]["roc_auc"] is not None and report["test"]["pr_auc"] is not None
    cal = report["calibration"]
    assert cal["rule"] == "best_f1" and cal["default_threshold"] == 0.6
    # the calibrated threshold is the best-F1 threshold of the val predictions
    _, y, p, _ = evaluate.load_predictions(run_dir / "eval", "val")
    sweep = evaluate.threshold_sweep(y, p, evaluate.default_thresholds(0.01, 0.99, 0.01))
    best = evaluate.best_threshold(sweep, "f1")
    assert cal["threshold"] == best["threshold"]
    assert cal["val"]["calibrated"]["f1"] >= cal["val"]["default"]["f1"]
    assert {"default", "calibrated"} <= set(cal["test"])
    res = CliRunner().invoke(app, ["show", str(run_dir)])
    assert res.exit_code == 0 and "calibrated" in res.output


def _ctc_run(tmp_path, penalty: float):
    cfg = cfgmod.resolve(
        preset="demo",
        sets=[
            "data.synthetic.num_classes=4",
            "data.synthetic.samples_per_class=30",
            "model.name=ctc",
            "model.hidden_size=32",
            "model.num_layers=1",
            "model.dropout=0.3",
            f"model.blank_penalty={penalty}",
            "data.batch_size=8",
            "optim.scheduler=none",
            "optim.lr=3e-3",
            "training.max_epochs=10",
            "training.patience=null",
            "training.min_epoch_steps=0",
        ],
    )
    run_dir = tmp_path / f"ctc-{penalty}"
    assert run_training(cfg, run_dir) == EXIT_OK
    return list(runs.iter_epochs(runs.read_jsonl(run_dir / "metrics.jsonl")))


def test_ctc_with_blank_penalty_does_not_collapse(tmp_path):
    """Without the penalty this tiny CTC model collapses to blank on every frame (the
    blank share, recorded each epoch, shows it); with it, the greedy path emits labels."""
    plain = _ctc_run(tmp_path, 0.0)
    assert all(0.0 <= r["val_blank_share"] <= 1.0 for r in plain)
    assert plain[-1]["val_blank_share"] == 1.0

    penalised = _ctc_run(tmp_path, 1.0)
    assert penalised[-1]["val_blank_share"] < 0.99
    assert max(r["val_acc"] for r in penalised) > 0.6  # chance is 0.25
    assert np.isfinite(penalised[-1]["train_loss"])
