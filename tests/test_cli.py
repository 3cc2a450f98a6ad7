"""Every `slr` command through Typer's CliRunner."""

from __future__ import annotations

import json
import time

import yaml
from typer.testing import CliRunner

from engine import runs
from slr_tui.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_help_for_every_command():
    for cmd in (
        [],
        ["run"],
        ["presets"],
        ["presets", "show"],
        ["runs"],
        ["show"],
        ["compare"],
        ["stop"],
        ["thresholds"],
        ["sweep"],
        ["predict"],
        ["extract"],
        ["data", "check"],
    ):
        res = invoke(*cmd, "--help")
        assert res.exit_code == 0, (cmd, res.output)
        assert "Usage" in res.output


def test_presets_list_and_show():
    res = invoke("presets")
    assert res.exit_code == 0
    for name in (
        "demo",
        "wlasl100-conservative",
        "wlasl100-aggressive",
        "wlasl300-recommended",
        "wlasl300-optimistic",
    ):
        assert name in res.output
    res = invoke("presets", "show", "wlasl300-recommended")
    cfg = yaml.safe_load(res.output)
    assert cfg["data"]["batch_size"] == 12 and cfg["optim"]["lr"] == 5e-5
    res = invoke("presets", "show", "demo", "--json")
    assert json.loads(res.output)["model"]["name"] == "bigru"
    res = invoke("presets", "show", "nope")
    assert res.exit_code == 2 and "available:" in res.output and "demo" in res.output


def test_run_config_errors_are_one_line(tmp_path):
    res = invoke("run", "--preset", "demo", "--set", "optim.lrr=1", "--runs-dir", tmp_path)
    assert res.exit_code == 2
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert len(lines) == 1 and "optim.lrr" in lines[0] and "weight_decay" in lines[0]
    assert not any(tmp_path.iterdir())  # no run folder for a config that cannot run
    res = invoke("run", "--runs-dir", tmp_path)
    assert res.exit_code == 2 and "--preset" in res.output


def test_wlasl_preset_without_data_root_says_what_to_give(tmp_path):
    res = invoke("run", "--preset", "wlasl300-recommended", "--runs-dir", tmp_path)
    assert res.exit_code == 2
    assert "needs a dataset root" in res.output and "--data-root" in res.output
    assert not any(tmp_path.iterdir())
    res = invoke(
        "run",
        "--preset",
        "wlasl300-recommended",
        "--runs-dir",
        tmp_path,
        "--data-root",
        tmp_path / "nope",
    )
    assert res.exit_code == 2 and "does not exist" in res.output
    assert "Traceback" not in res.output


def test_runs_show_compare(run_copy):
    root = run_copy.parent
    res = invoke("runs", "--runs-dir", root)
    assert res.exit_code == 0 and run_copy.name in res.output and "finished" in res.output
    res = invoke("runs", "--runs-dir", root, "--json")
    assert json.loads(res.output)[0]["status"] == "finished"

    res = invoke("show", run_copy.name[:10], "--runs-dir", root)
    assert res.exit_code == 0, res.output
    assert "per-class (worst first)" in res.output and "top-1 accuracy" in res.output

    # a second run with another learning rate: compare shows only the differing keys
    other = root / "20250101-000001-demo"
    import shutil

    shutil.copytree(run_copy, other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["optim"]["lr"] = 0.123
    (other / "config.json").write_text(json.dumps(cfg))
    meta = json.loads((other / "run.json").read_text())
    meta["id"] = other.name
    (other / "run.json").write_text(json.dumps(meta))
    res = invoke("compare", run_copy.name, other.name, "--runs-dir", root)
    assert res.exit_code == 0, res.output
    assert "optim.lr" in res.output and "0.123" in res.output
    assert "model.name" not in res.output  # identical keys are left out
    res = invoke("compare", run_copy.name, "--runs-dir", root)
    assert res.exit_code == 2


def test_unknown_run_is_one_line(tmp_path):
    res = invoke("show", "nope", "--runs-dir", tmp_path)
    assert res.exit_code == 2 and "no run 'nope'" in res.output


def test_thresholds_print_and_pick(run_copy):
    root = run_copy.parent
    res = invoke("thresholds", run_copy.name, "--runs-dir", root)
    assert res.exit_code == 0, res.output
    assert "coverage" in res.output and "0.50" in res.output
    assert not (run_copy / "threshold.json").exists()

    res = invoke("thresholds", run_copy.name, "--runs-dir", root, "--pick", "0.4")
    assert res.exit_code == 0, res.output
    picked = json.loads((run_copy / "threshold.json").read_text())
    assert picked["threshold"] == 0.4 and picked["rule"] == "manual"
    assert {"precision", "recall", "f1", "accuracy", "coverage"} <= set(picked["val"])
    assert "test" in picked

    res = invoke("thresholds", run_copy.name, "--runs-dir", root, "--pick", "best-f1")
    assert res.exit_code == 0
    picked = json.loads((run_copy / "threshold.json").read_text())
    assert picked["rule"] == "best-f1 on val"
    sweep = [r for r in picked.values() if isinstance(r, dict)]
    assert sweep

    for bad in ("2", "lots"):
        res = invoke("thresholds", run_copy.name, "--runs-dir", root, "--pick", bad)
        assert res.exit_code == 2


def test_stop_on_a_finished_run(run_copy):
    res = invoke("stop", run_copy.name, "--runs-dir", run_copy.parent)
    assert res.exit_code == 0 and "not running" in res.output


def test_detach_then_stop_then_resume(tmp_path):
    from tests.conftest import TINY_SETS

    sets = []
    for s in [*TINY_SETS, "training.max_epochs=10000"]:
        sets += ["--set", s]
    res = invoke("run", "--preset", "demo", "--runs-dir", tmp_path, "--detach", *sets)
    assert res.exit_code == 0, res.output
    run_id = res.output.strip()
    run_dir = tmp_path / run_id
    deadline = time.time() + 120
    while time.time() < deadline and not (run_dir / "last.pt").exists():
        time.sleep(0.2)
    assert (run_dir / "last.pt").exists()
    res = invoke("runs", "--runs-dir", tmp_path)
    assert "running" in res.output
    res = invoke("stop", run_id, "--runs-dir", tmp_path, "--wait", "60")
    assert res.exit_code == 0, res.output
    assert runs.read_json(run_dir / "run.json")["status"] == "stopped"
    epoch_before = runs.read_json(run_dir / "run.json")["epoch"]

    # resume in the background, see it run on, then stop it again
    res = invoke("run", "--resume", run_id, "--runs-dir", tmp_path, "--detach")
    assert res.exit_code == 0, res.output
    deadline = time.time() + 120
    while (
        time.time() < deadline
        and (runs.read_json(run_dir / "run.json") or {}).get("epoch", 0) <= epoch_before
    ):
        time.sleep(0.2)
    assert runs.read_json(run_dir / "run.json")["epoch"] > epoch_before
    res = invoke("stop", run_id, "--runs-dir", tmp_path, "--wait", "60")
    assert res.exit_code == 0
    res = invoke("run", "--resume", run_id, "--preset", "demo", "--runs-dir", tmp_path)
    assert res.exit_code == 2


def test_foreground_run_prints_results_and_failed_run_exits_nonzero(tmp_path):
    from tests.conftest import TINY_SETS

    sets = []
    for s in [*TINY_SETS, "training.max_epochs=2"]:
        sets += ["--set", s]
    res = invoke("run", "--preset", "demo", "--runs-dir", tmp_path, *sets)
    assert res.exit_code == 0, res.output
    assert "top-1 accuracy" in res.output and "finished" in res.output

    res = invoke(
        "run",
        "--preset",
        "demo",
        "--runs-dir",
        tmp_path,
        *sets,
        "--set",
        "training.monitor=val_bogus",
    )
    assert res.exit_code != 0
    assert "failed" in res.output and "val_bogus" in res.output


def test_settings_runs_dir_is_used_without_flag_or_env(run_copy, tmp_path, monkeypatch):
    cfg = tmp_path / "settings.yaml"
    cfg.write_text(f"runs_dir: {run_copy.parent}\n")
    monkeypatch.setenv("SLR_CONFIG", str(cfg))
    monkeypatch.delenv("SLR_RUNS_DIR")
    res = invoke("runs")
    assert res.exit_code == 0 and run_copy.name in res.output
    monkeypatch.setenv("SLR_RUNS_DIR", str(tmp_path / "elsewhere"))  # the env var wins
    assert run_copy.name not in invoke("runs").output
    cfg.write_text("runs_dirr: x\n")
    monkeypatch.delenv("SLR_RUNS_DIR")
    res = invoke("runs")
    assert res.exit_code == 2 and "runs_dirr" in res.output
