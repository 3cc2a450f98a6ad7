"""`slr sweep`: grid expansion, tagging, ranking."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from engine import runs
from engine.config import ConfigError
from slr_tui import sweep as sw
from slr_tui.cli import app
from tests.conftest import TINY_SETS


def test_parse_grid_and_combinations():
    grid = sw.parse_grid(["optim.lr=5e-5,1e-4,2e-4", "data.batch_size=12,16"])
    assert grid == [("optim.lr", ["5e-5", "1e-4", "2e-4"]), ("data.batch_size", ["12", "16"])]
    combos = sw.combinations(grid)
    assert len(combos) == 6
    assert combos[0] == ["optim.lr=5e-5", "data.batch_size=12"]
    assert combos[-1] == ["optim.lr=2e-4", "data.batch_size=16"]
    for bad in (["optim.lr"], ["lr=1,2"], ["optim.lr="], ["optim.lr=1", "optim.lr=2"]):
        with pytest.raises(ConfigError):
            sw.parse_grid(bad)


def test_plan_validates_every_combination(tmp_path):
    with pytest.raises(ConfigError, match="data.batch_size"):
        sw.plan("demo", None, [], ["data.batch_size=8,lots"], {}, tmp_path)
    assert not any(tmp_path.iterdir())  # nothing starts when one combination is bad


def test_sweep_runs_each_combination_tagged_and_ranked(tmp_path):
    sets = []
    for s in [*TINY_SETS, "training.max_epochs=2"]:
        sets += ["--set", s]
    res = CliRunner().invoke(
        app,
        [
            "sweep",
            "--preset",
            "demo",
            "--runs-dir",
            str(tmp_path),
            "--grid",
            "optim.lr=1e-12,3e-3",
            "--parallel",
            "2",
            *sets,
        ],
    )
    assert res.exit_code == 0, res.output
    items = runs.list_runs(tmp_path)
    assert len(items) == 2
    sweep_ids = {r.meta["sweep"] for r in items}
    assert len(sweep_ids) == 1
    (sid,) = sweep_ids
    assert sid in res.output and "ranked" in res.output
    assert {r.meta["sweep_params"]["optim.lr"] for r in items} == {"1e-12", "3e-3"}
    assert {r.config()["optim"]["lr"] for r in items} == {1e-12, 3e-3}
    assert all(r.status == "finished" for r in items)
    assert len(sw.sweep_runs(tmp_path, sid)) == 2
