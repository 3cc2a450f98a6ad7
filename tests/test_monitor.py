"""engine.monitor: best epoch, tie-break, patience, min_steps, target and the checkpoint
state of early stopping (torch-free)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from engine import config as cfgmod
from engine.config import ConfigError
from engine.monitor import Monitor, resolve_mode


def _row(**figures: float) -> dict[str, float]:
    return {"epoch": 1, "step": 10, "train_loss": 1.0, **figures}


def test_mode_auto_is_min_for_a_loss_and_max_otherwise():
    assert resolve_mode("val_loss") == "min"
    assert resolve_mode("train_loss", "auto") == "min"
    assert resolve_mode("val_acc") == "max"
    assert resolve_mode("val_macro_f1") == "max"
    assert resolve_mode("val_loss", "max") == "max"  # an explicit mode wins


def test_from_config_reads_the_training_section():
    cfg = cfgmod.resolve(
        preset="demo",
        sets=[
            "training.monitor=val_loss",
            "training.patience=3",
            "training.min_steps=7",
            "training.target_metric=0.1",
            "training.monitor_tie_break=val_acc",
        ],
    )
    m = Monitor.from_config(cfg.training)
    assert (m.metric, m.mode, m.tie_break) == ("val_loss", "min", "val_acc")
    assert (m.patience, m.min_steps, m.target) == (3, 7, 0.1)
    assert m.best is None and m.best_epoch == 0 and m.since_best == 0


def test_the_first_epoch_is_best_and_a_min_monitor_wants_lower():
    m = Monitor("val_loss", "min")
    assert m.observe(_row(val_loss=0.9), epoch=1)
    assert (m.best, m.best_epoch, m.since_best) == (0.9, 1, 0)
    assert not m.observe(_row(val_loss=1.2), epoch=2)
    assert (m.best, m.best_epoch, m.since_best) == (0.9, 1, 1)
    assert m.observe(_row(val_loss=0.5), epoch=3)
    assert (m.best, m.best_epoch, m.since_best) == (0.5, 3, 0)


def test_a_tie_is_no_improvement_without_a_tie_break():
    m = Monitor("val_acc", "max")
    assert m.observe(_row(val_acc=0.5, val_loss=0.7), epoch=1)
    assert not m.observe(_row(val_acc=0.5, val_loss=0.1), epoch=2)
    assert m.best_epoch == 1 and m.since_best == 1 and m.best_tie is None


def test_a_tie_is_broken_by_the_tie_break_metric_in_its_own_direction():
    m = Monitor("val_acc", "max", tie_break="val_loss")
    assert m.observe(_row(val_acc=0.5, val_loss=0.7), epoch=1)
    assert m.best_tie == 0.7
    assert not m.observe(_row(val_acc=0.5, val_loss=0.7), epoch=2)  # an exact tie
    assert not m.observe(_row(val_acc=0.5, val_loss=0.9), epoch=3)  # a worse loss
    assert m.observe(_row(val_acc=0.5, val_loss=0.6), epoch=4)  # a lower loss
    assert (m.best_epoch, m.best_tie, m.since_best) == (4, 0.6, 0)
    assert not m.observe(_row(val_acc=0.25, val_loss=0.1), epoch=5)  # the monitor decides
    # a tie-break that is not a loss is maximised
    f1 = Monitor("val_acc", "max", tie_break="val_macro_f1", best=0.5, best_tie=0.4)
    assert f1.improved(0.5, 0.6) and not f1.improved(0.5, 0.3)


def test_a_monitor_missing_from_the_row_names_the_valid_ones():
    m = Monitor("val_nope", "max")
    with pytest.raises(ConfigError, match="val_nope") as err:
        m.observe(_row(val_acc=0.5), epoch=1)
    assert "val_acc" in str(err.value) and "train_loss" in str(err.value)
    assert m.best is None and m.since_best == 0  # nothing counted


def test_patience_stops_only_after_min_steps():
    m = Monitor("val_acc", "max", patience=2, min_steps=40)
    m.observe(_row(val_acc=0.5), epoch=1)
    m.observe(_row(val_acc=0.4), epoch=2)
    assert m.stop_reason(global_step=20) is None  # one epoch without improvement
    m.observe(_row(val_acc=0.4), epoch=3)
    assert m.since_best == 2
    assert m.stop_reason(global_step=30) is None  # patience is out, steps are not
    assert m.stop_reason(global_step=40) == "early_stopping"
    assert Monitor("val_acc", patience=None, since_best=99).stop_reason(10**6) is None


def test_target_metric_in_the_monitor_direction():
    up = Monitor("val_acc", "max", target=0.9)
    up.observe(_row(val_acc=0.85), epoch=1)
    assert up.stop_reason(0) is None
    up.observe(_row(val_acc=0.9), epoch=2)
    assert up.stop_reason(0) == "target_metric"  # reached counts, min_steps or not
    down = Monitor("val_loss", "min", target=0.2, min_steps=10**6)
    down.observe(_row(val_loss=0.3), epoch=1)
    assert down.stop_reason(0) is None
    down.observe(_row(val_loss=0.2), epoch=2)
    assert down.stop_reason(0) == "target_metric"


def test_state_dict_round_trip_and_old_checkpoints():
    m = Monitor("val_acc", "max", tie_break="val_loss")
    m.observe(_row(val_acc=0.5, val_loss=0.7), epoch=1)
    m.observe(_row(val_acc=0.25, val_loss=0.9), epoch=2)
    state = m.state_dict()
    assert state == {"best": 0.5, "best_epoch": 1, "since_best": 1, "best_tie": 0.7}
    assert all(v is None or type(v) in (int, float) for v in state.values())
    back = Monitor("val_acc", "max", tie_break="val_loss")
    back.load_state_dict({**state, "epoch": 2, "model": {}})  # a whole checkpoint dict
    assert back.state_dict() == state
    # the next epoch decides as it would have without the round trip
    assert back.observe(_row(val_acc=0.5, val_loss=0.6), epoch=3) == m.observe(
        _row(val_acc=0.5, val_loss=0.6), epoch=3
    )
    # written before the tie-break existed: no best_tie; and a run with no epoch done yet
    old = Monitor("val_acc", "max")
    old.load_state_dict({"best": 0.5, "best_epoch": 3, "since_best": 2})
    assert (old.best, old.best_epoch, old.since_best, old.best_tie) == (0.5, 3, 2, None)
    fresh = Monitor("val_acc", "max")
    fresh.load_state_dict(Monitor("val_acc").state_dict())
    assert fresh.best is None and fresh.improved(0.0)


def test_monitor_imports_no_torch():
    code = "import sys, engine.monitor; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_wer_is_lower_is_better_in_auto_mode():
    from engine.monitor import resolve_mode

    assert resolve_mode("val_wer") == "min" and resolve_mode("val_loss") == "min"
    assert resolve_mode("val_bleu4") == "max" and resolve_mode("val_wer", "max") == "max"
