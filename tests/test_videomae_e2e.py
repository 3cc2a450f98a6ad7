"""A WLASL preset end to end on a synthetic WLASL-layout dataset: metadata in the real
schema, tiny generated videos with class-dependent motion, some listed videos missing or
corrupt; a tiny VideoMAE built from its config must learn it above chance."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from engine import runs
from slr_tui.cli import app

pytest.importorskip("decord")
pytest.importorskip("transformers")

from tests.wlasl_fixture import make_wlasl_root  # noqa: E402

TINY_VIDEOMAE = [
    "data.subset=4",
    "model.pretrained=null",
    "model.config_overrides={hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 2, "
    "intermediate_size: 64, patch_size: 8, tubelet_size: 2}",
    "data.image_size=32",
    "data.num_frames=4",
    "data.num_workers=0",
    "data.batch_size=8",
    "data.augment=false",
    "training.device=cpu",
    "training.max_epochs=40",
    "training.patience=null",
    "training.min_epoch_steps=0",
    "training.class_weighted=false",
    "training.label_smoothing=0.0",
    "optim.lr=3e-3",
    "optim.warmup_ratio=0.05",
]


def _sets(items):
    out = []
    for s in items:
        out += ["--set", s]
    return out


def test_wlasl_preset_trains_tiny_videomae_above_chance(tmp_path):
    fx = make_wlasl_root(tmp_path / "wlasl", glosses=4, per_split=(8, 3, 3), missing=2, corrupt=1)
    root = fx.root if hasattr(fx, "root") else tmp_path / "wlasl"
    runner = CliRunner()

    res = runner.invoke(
        app,
        [
            "data",
            "check",
            "--preset",
            "wlasl100-conservative",
            "--data-root",
            str(root),
            "--set",
            "data.subset=4",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["num_classes"] == 4
    assert report["train"]["listed"] == 32
    assert report["train"]["missing"] == 2 and report["train"]["unreadable"] == 1
    assert report["train"]["present"] == 30

    res = runner.invoke(
        app,
        [
            "run",
            "--preset",
            "wlasl100-conservative",
            "--data-root",
            str(root),
            "--runs-dir",
            str(tmp_path / "runs"),
            *_sets(TINY_VIDEOMAE),
        ],
    )
    assert res.exit_code == 0, res.output
    (run,) = runs.list_runs(tmp_path / "runs")
    assert run.status == "finished" and run.dataset == "wlasl4"
    info = run.meta["data_info"]
    assert info["missing"]["train"] == 2 and info["unreadable"]["train"] == 1
    rep = run.report()
    assert rep["num_classes"] == 4
    assert rep["val"]["accuracy"] > 0.5  # chance is 0.25
    for key in ("top5_accuracy", "per_class_accuracy", "macro_f1", "weighted_f1"):
        assert key in rep["test"]
    assert (run.path / "eval" / "confusion.csv").is_file()
