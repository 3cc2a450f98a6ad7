"""Small real-shaped data: the defaults give enough optimisation and keep the signal.

The dataset below is shaped like a UCR archive problem: 32 whole recordings of one channel,
two classes that differ in rhythm (frequency) but not in mean or variance, so a linear
model on the mean cannot tell them apart, with a 20/6/6 split (two steps a pass at batch 16, a val split of 6).
Before the fix the engine stayed at chance on such data: LayerNorm across the
features of a one-channel frame turned every input into a constant, one pass made an
epoch of one optimiser step, and early stopping ended runs after a few dozen steps.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import config as cfgmod
from engine import runs
from engine.data.base import EpochSampler
from engine.train import EXIT_OK, Trainer, run_training


def make_rhythm_csvs(root: Path, *, per_class: int = 16, seed: int = 0) -> Path:
    """Two classes of one-channel recordings: sinusoids of 0.05 vs 0.11 cycles per frame
    with random phase, amplitude and length (60-80 frames), zero mean, plus noise."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    splits = []
    for k, (label, freq) in enumerate((("slow", 0.05), ("fast", 0.11))):
        for i in range(per_class):
            n = int(rng.integers(60, 81))
            t = np.arange(n)
            x = rng.uniform(0.8, 1.2) * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
            x = x + rng.normal(0, 0.15, n)
            x = x - x.mean()
            name = f"{label}{i:02d}"
            with open(root / f"{name}.csv", "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["c0", "label"])
                w.writerows([f"{v:.5f}", label] for v in x)
            split = "train" if i < per_class - 6 else ("val" if i < per_class - 3 else "test")
            splits.append((name, split))
        del k
    with open(root / "splits.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["recording", "split"])
        w.writerows(splits)
    return root


@pytest.fixture(scope="module")
def rhythm(tmp_path_factory) -> Path:
    return make_rhythm_csvs(tmp_path_factory.mktemp("rhythm") / "data")


def _cfg(root: Path, *sets: str) -> cfgmod.RunConfig:
    return cfgmod.resolve(
        preset="activity-lstm",
        sets=[
            f"data.root={root}",
            "data.window_size=null",
            "model.name=bigru",
            "model.hidden_size=32",
            "model.num_layers=1",
            "model.dropout=0.1",
            "optim.scheduler=none",
            "optim.lr=3e-3",
            "training.max_epochs=25",
            "training.device=cpu",
            "training.monitor=val_acc",
            "training.log_every_steps=50",
            *sets,
        ],
    )


def _accuracy(run_dir: Path) -> float:
    report = runs.read_json(run_dir / "eval" / "report.json")
    n = report["val"]["num_samples"] + report["test"]["num_samples"]
    right = (
        report["val"]["accuracy"] * report["val"]["num_samples"]
        + report["test"]["accuracy"] * report["test"]["num_samples"]
    )
    return right / n


def test_the_mean_does_not_separate_the_classes(rhythm):
    means = {"slow": [], "fast": []}
    for p in rhythm.glob("*.csv"):
        if p.name != "splits.csv":
            x = np.loadtxt(p, delimiter=",", skiprows=1, usecols=0)
            means["slow" if p.stem.startswith("slow") else "fast"].append(x.mean())
    # every recording's mean is ~0: no threshold on it tells the classes apart
    assert max(abs(m) for ms in means.values() for m in ms) < 1e-3


def test_default_recipe_learns_where_the_old_one_stayed_at_chance(rhythm, tmp_path):
    torch.set_num_threads(1)
    new = tmp_path / "new"
    assert run_training(_cfg(rhythm, "training.max_epochs=6"), new) == EXIT_OK
    assert _accuracy(new) >= 0.9
    meta = runs.read_json(new / "run.json")
    # 20 training recordings, batch 16: 16 passes make an epoch of 20 full batches
    assert meta["passes_per_epoch"] == 16 and meta["steps_per_epoch"] == 20

    # the old behaviour: LayerNorm over the one feature, one pass per epoch, epoch patience
    old = tmp_path / "old"
    old_sets = (
        "model.input_norm=layer",
        "training.min_epoch_steps=0",
        "training.min_steps=0",
        "training.monitor_tie_break=null",
    )
    # (a constant input gives every recording the same prediction, however long it trains)
    assert run_training(_cfg(rhythm, "training.max_epochs=10", *old_sets), old) == EXIT_OK
    assert _accuracy(old) == pytest.approx(0.5)  # every input is the same constant


def test_early_stopping_waits_for_the_minimum_number_of_steps(rhythm, tmp_path):
    # lr so small nothing changes: without min_steps, patience 2 would stop at epoch 3
    cfg = _cfg(
        rhythm,
        "optim.lr=1e-12",
        "model.hidden_size=8",
        "training.patience=2",
        "training.min_epoch_steps=4",
        "training.min_steps=40",
        "training.monitor_tie_break=null",
        "training.max_epochs=30",
    )
    run_dir = tmp_path / "es"
    assert run_training(cfg, run_dir) == EXIT_OK
    meta = runs.read_json(run_dir / "run.json")
    assert meta["stop_reason"] == "early_stopping"
    # 20 recordings x 4 passes = 80 samples, 5 batches of 16: at least the 4 steps asked for
    assert meta["passes_per_epoch"] == 4 and meta["steps_per_epoch"] == 5
    # patience 2 alone would stop at epoch 3; it stops at the first epoch end >= 40 steps
    assert meta["step"] == 40 and meta["epoch"] == 8


def test_a_tie_with_a_lower_val_loss_is_an_improvement(rhythm, tmp_path):
    cfg = _cfg(rhythm)
    monitor = Trainer(cfg, tmp_path / "t").monitor
    monitor.mode = "max"
    monitor.best, monitor.best_tie = 0.5, 0.7
    assert monitor.improved(0.75, 0.9)  # better accuracy, whatever the loss
    assert monitor.improved(0.5, 0.6)  # a tie with a lower loss
    assert not monitor.improved(0.5, 0.7)
    assert not monitor.improved(0.25, 0.1)
    monitor.tie_break = None
    assert not monitor.improved(0.5, 0.6)


def test_epoch_passes_cover_the_split_each_pass_and_augment_differently():
    s = EpochSampler(5, shuffle=True, seed=3)
    one = list(s)
    s.passes = 3
    items = list(s)
    assert len(items) == 15 and len(s) == 15
    assert items[:5] == one  # pass 0 is the single-pass order
    for p in range(3):
        chunk = items[5 * p : 5 * (p + 1)]
        assert sorted(i for i, _ in chunk) == list(range(5))
        assert {e for _, e in chunk} == {p}  # augmentation epoch = epoch * passes + pass
    s.set_epoch(2, skip=7)
    rest = list(s)
    assert len(rest) == 8 and {e for _, e in rest} <= {7, 8}


def test_old_checkpoints_with_an_input_layernorm_keep_predicting_the_same():
    from engine.models.recurrent import RecurrentClassifier

    torch.manual_seed(0)
    old = RecurrentClassifier(3, 2, hidden_size=8, num_layers=1, input_norm="layer")
    with torch.no_grad():
        old.proj[0].weight.uniform_(0.5, 1.5)
    new = RecurrentClassifier(3, 2, hidden_size=8, num_layers=1)  # the default: none
    new.load_state_dict(old.state_dict())
    old.eval(), new.eval()
    batch = {"x": torch.randn(2, 7, 3)}
    assert torch.allclose(old(batch), new(batch))
