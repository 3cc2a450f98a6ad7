"""Grouped metrics (``training.group_aggregate``): the aggregation against figures worked
out by hand on a fixed table, the report.json / predictions.npz shape, the tolerant reader,
the tables, and a features run with a ``group`` column end to end (eval/ and `slr show`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from engine import config as cfgmod
from engine import evaluate as ev
from engine import runs
from slr_tui import tables
from slr_tui.cli import app

NAMES = ["a", "b", "c"]
# 12 samples in 5 groups (g5 mixes labels b and c)
TABLE = [
    # group, label, probabilities
    ("g1", 0, [0.7, 0.2, 0.1]),
    ("g1", 0, [0.2, 0.5, 0.3]),
    ("g1", 0, [0.6, 0.3, 0.1]),
    ("g2", 1, [0.5, 0.4, 0.1]),
    ("g2", 1, [0.1, 0.8, 0.1]),
    ("g3", 2, [0.1, 0.5, 0.4]),
    ("g3", 2, [0.3, 0.1, 0.6]),
    ("g4", 0, [0.4, 0.35, 0.25]),
    ("g4", 0, [0.4, 0.35, 0.25]),
    ("g4", 0, [0.05, 0.9, 0.05]),
    ("g5", 1, [0.2, 0.7, 0.1]),
    ("g5", 2, [0.2, 0.2, 0.6]),
]
GROUPS = [g for g, _, _ in TABLE]
Y = np.array([y for _, y, _ in TABLE])
P = np.array([p for _, _, p in TABLE])

# By hand. Group labels: g1 a, g2 b, g3 c, g4 a, g5 c (b and c once each: the higher index).
# mean:  g1 (.5, 1/3, 1/6) -> a; g2 (.3, .6, .1) -> b; g3 (.2, .3, .5) -> c;
#        g4 (.85, 1.6, .55)/3 -> b (wrong); g5 (.2, .45, .35) -> b (wrong): 3 of 5 right
# max:   g1 (.7, .5, .3)/1.5 -> a; g2 (.5, .8, .1)/1.4 -> b; g3 (.3, .5, .6)/1.4 -> c;
#        g4 (.4, .9, .25)/1.55 -> b (wrong); g5 (.2, .7, .6)/1.5 -> b (wrong): 3 of 5
# vote:  g1 a,b,a -> a; g2 a,b tie -> b (mean .6 > .3); g3 b,c tie -> c (.5 > .3);
#        g4 a,a,b -> a (right, where mean and max fail); g5 b,c tie -> b (.45 > .35, wrong)
HAND = {
    "mean": {"pred": [0, 1, 2, 1, 1], "accuracy": 3 / 5},
    "max": {"pred": [0, 1, 2, 1, 1], "accuracy": 3 / 5},
    "vote": {"pred": [0, 1, 2, 0, 1], "accuracy": 4 / 5},
}


@pytest.mark.parametrize("how", ["mean", "max", "vote"])
def test_aggregation_equals_the_hand_computation(how):
    names, y, p, mixed = ev.aggregate_groups(Y, P, GROUPS, how)
    assert names == ["g1", "g2", "g3", "g4", "g5"]
    assert y.tolist() == [0, 1, 2, 0, 2]
    assert mixed == 1
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-12)
    assert p.argmax(1).tolist() == HAND[how]["pred"]
    summary = ev.grouped_summary(Y, P, GROUPS, NAMES, how)["summary"]
    assert summary["num_samples"] == 5
    assert summary["accuracy"] == pytest.approx(HAND[how]["accuracy"])


def test_aggregated_probabilities_by_hand():
    _, _, mean, _ = ev.aggregate_groups(Y, P, GROUPS, "mean")
    np.testing.assert_allclose(mean[0], [0.5, 1 / 3, 1 / 6])
    np.testing.assert_allclose(mean[3], [0.85 / 3, 1.6 / 3, 0.55 / 3])
    _, _, mx, _ = ev.aggregate_groups(Y, P, GROUPS, "max")
    np.testing.assert_allclose(mx[0], [0.7 / 1.5, 0.5 / 1.5, 0.3 / 1.5])
    np.testing.assert_allclose(mx[3], [0.4 / 1.55, 0.9 / 1.55, 0.25 / 1.55])
    _, _, vote, _ = ev.aggregate_groups(Y, P, GROUPS, "vote")
    # (votes + mean) / (n + 1): g2 votes (1, 1, 0), mean (.3, .6, .1)
    np.testing.assert_allclose(vote[1], [1.3 / 3, 1.6 / 3, 0.1 / 3])
    np.testing.assert_allclose(vote[3], [(2 + 0.85 / 3) / 4, (1 + 1.6 / 3) / 4, (0.55 / 3) / 4])


def test_grouped_macro_figures_by_hand():
    # mean: true (a, b, c, a, c), predicted (a, b, c, b, b)
    # a: P 1/1, R 1/2, F1 2/3;  b: P 1/3, R 1/1, F1 1/2;  c: P 1/1, R 1/2, F1 2/3
    s = ev.grouped_summary(Y, P, GROUPS, NAMES, "mean")["summary"]
    assert s["macro_precision"] == pytest.approx((1 + 1 / 3 + 1) / 3)
    assert s["macro_recall"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    assert s["macro_f1"] == pytest.approx((2 / 3 + 1 / 2 + 2 / 3) / 3)
    # weighted by group support (a 2, b 1, c 2)
    assert s["weighted_f1"] == pytest.approx((2 * 2 / 3 + 1 / 2 + 2 * 2 / 3) / 5)


def test_one_sample_groups_give_no_grouped_figures():
    assert ev.grouped_summary(Y, P, [str(i) for i in range(len(Y))], NAMES) is None
    with pytest.raises(ValueError, match="not one of"):
        ev.aggregate_groups(Y, P, GROUPS, "median")


def test_write_eval_stores_groups_and_the_grouped_report(tmp_path):
    splits = {
        "val": {"ids": [f"s{i}" for i in range(12)], "y_true": Y, "probs": P, "groups": GROUPS},
        "test": {"ids": [f"t{i}" for i in range(12)], "y_true": Y, "probs": P},
    }
    rep = ev.write_eval(tmp_path, splits, NAMES, [0.5], group_aggregate="vote")
    g = rep["grouped"]
    assert set(g) == {"val"}  # test has no groups
    assert g["val"]["aggregate"] == "vote" and g["val"]["num_groups"] == 5
    assert g["val"]["summary"]["accuracy"] == pytest.approx(0.8)
    assert rep["val"]["accuracy"] == pytest.approx(8 / 12)  # per sample: unchanged
    assert ev.load_groups(tmp_path, "val") == GROUPS
    assert ev.load_groups(tmp_path, "test") is None
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk["grouped"] == g
    # the tolerant reader keeps it, cleans bad figures, drops entries of another shape
    on_disk["grouped"]["val"]["summary"]["accuracy"] = "high"
    on_disk["grouped"]["test"] = {"num_groups": "five"}
    clean = runs.clean_report(on_disk)
    assert set(clean["grouped"]) == {"val"}
    assert clean["grouped"]["val"]["summary"]["accuracy"] is None
    assert clean["grouped"]["val"]["num_groups"] == 5
    assert "grouped" not in runs.clean_report({**on_disk, "grouped": [1, 2]})


def test_grouped_table_rows():
    report = {
        "num_classes": 3,
        "val": ev.summarize(Y, P, NAMES),
        "grouped": {"val": ev.grouped_summary(Y, P, GROUPS, NAMES, "mean")},
    }
    rows = tables.grouped_rows(report)
    assert [(r["level"], r["count"]) for r in rows] == [("per sample", 12), ("per group (mean)", 5)]
    assert rows[1]["accuracy"] == pytest.approx(0.6)
    assert tables.grouped_table({"val": report["val"]}) is None
    assert tables.grouped_table(report).row_count == 2


def test_the_option_is_validated():
    cfg = cfgmod.resolve(preset="demo", sets=["training.group_aggregate=vote"])
    assert cfg.training.group_aggregate == "vote"
    assert cfgmod.resolve(preset="demo").training.group_aggregate == "mean"
    with pytest.raises(cfgmod.ConfigError, match="group_aggregate"):
        cfgmod.resolve(preset="demo", sets=["training.group_aggregate=median"])


def test_features_run_with_groups_writes_grouped_metrics(tmp_path):
    from engine.train import EXIT_OK, run_training
    from tests.seq_fixtures import make_feature_set

    man = make_feature_set(tmp_path / "feat", binary=True, samples_per_class=24, groups=12)
    cfg = cfgmod.resolve(
        preset="error-recognition-mlp",
        sets=[
            f"data.root={tmp_path / 'feat'}",
            "data.batch_size=8",
            "training.max_epochs=2",
            "training.min_epoch_steps=0",
            "training.device=cpu",
            "training.group_aggregate=max",
        ],
    )
    run_dir = tmp_path / "runs" / "grouped"
    assert run_training(cfg, run_dir) == EXIT_OK
    eval_dir = run_dir / "eval"
    report = runs.clean_report(runs.read_json(eval_dir / "report.json"))
    group_of = dict(zip(man["ids"], man["groups"], strict=True))
    for split in ("val", "test"):
        ids, y, probs, _ = ev.load_predictions(eval_dir, split)
        groups = ev.load_groups(eval_dir, split)
        assert groups == [group_of[i] for i in ids]
        g = report["grouped"][split]
        assert g["aggregate"] == "max" and g["num_groups"] == len(set(groups))
        # the report's figures are those of the stored predictions, aggregated
        _, yg, pg, _ = ev.aggregate_groups(y, probs, groups, "max")
        assert g["summary"]["accuracy"] == pytest.approx(float((pg.argmax(1) == yg).mean()))
    res = CliRunner().invoke(app, ["show", str(run_dir)])
    assert res.exit_code == 0, res.output
    assert "grouped metrics" in res.output and "per group (max)" in res.output


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_live_screen_shows_grouped_metrics_with_the_per_class_figures(tmp_path, monkeypatch):
    from rich.console import Console

    from slr_tui.screens.live import LiveRunScreen
    from tests.fixtures_runs import fixed_runs, make_app, until, write_run

    with fixed_runs(tmp_path, monkeypatch):
        run = write_run(Path("runs"), "20250107-090000-grouped", with_eval=False, num_classes=3)
        splits = {"test": {"ids": [f"s{i}" for i in range(12)], "y_true": Y, "probs": P,
                           "groups": GROUPS}}  # fmt: skip
        ev.write_eval(run / runs.EVAL_DIR, splits, NAMES, ev.default_thresholds())
        async with make_app().run_test(size=(120, 40)) as pilot:
            screen = LiveRunScreen(run)
            await pilot.app.push_screen(screen)
            await until(pilot, lambda: screen.loaded and screen.eval_loaded)
            await pilot.press("3")
            await until(pilot, lambda: screen.query("#per-class-note"))
            await pilot.pause(0.1)
            console = Console(width=120, record=True)
            console.print(screen.query_one("#per-class-note").content)
            text = console.export_text()
    assert "per group (mean)" in text and "per sample" in text
    assert "0.600" in text  # the grouped accuracy of the hand computation
