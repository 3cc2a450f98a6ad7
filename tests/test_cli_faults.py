"""Bad input to `slr` is one clear line, never a traceback, a hang or a silent accept."""

from __future__ import annotations

import errno
import json
import os
import sys
import time

import pytest
from typer.testing import CliRunner

from engine import config as cfgmod
from engine import runs
from slr_tui import cli
from slr_tui.cli import app
from tests.fixtures_runs import write_run

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_error_line(res, *needles: str) -> str:
    """A non-zero exit with exactly one line of output, holding every needle."""
    assert "Traceback" not in res.output, res.output
    assert res.exit_code != 0, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert len(lines) == 1, res.output
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


# --------------------------------------------------------------------------- item 10


def test_binary_config_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(bytes(range(256)) * 4)
    res = invoke("run", "--config", bad, "--runs-dir", tmp_path / "runs")
    one_error_line(res, "not a text file", str(bad))
    res = invoke("data", "check", "--config", bad)
    one_error_line(res, "not a text file")
    bad_json = tmp_path / "bad.json"
    bad_json.write_bytes(b"\xff\xfe\x00{")
    one_error_line(invoke("run", "--config", bad_json, "--runs-dir", tmp_path / "runs"))
    assert not (tmp_path / "runs").exists()


def test_config_file_that_is_a_folder_or_unreadable(tmp_path):
    res = invoke("run", "--config", tmp_path, "--runs-dir", tmp_path / "runs")
    one_error_line(res, "not found")
    if os.geteuid() != 0:  # root reads anything
        p = tmp_path / "secret.yaml"
        p.write_text("optim: {lr: 0.1}\n")
        p.chmod(0)
        one_error_line(invoke("run", "--config", p, "--runs-dir", tmp_path / "runs"), "cannot read")


def test_predict_on_a_garbage_best_pt(finished_run, tmp_path):
    import shutil

    run = tmp_path / "runs" / finished_run.name
    shutil.copytree(finished_run, run)
    (run / "best.pt").write_bytes(os.urandom(4096))
    rec = tmp_path / "rec.csv"
    rec.write_text("a,b,label\n1,2,x\n")
    res = invoke("predict", run.name, rec, "--runs-dir", run.parent)
    one_error_line(res, "best.pt")
    (run / "best.pt").write_bytes(b"")
    one_error_line(invoke("predict", run.name, rec, "--runs-dir", run.parent), "best.pt")
    (run / "data.json").write_text('{"class_names": 3}')
    one_error_line(invoke("predict", run.name, rec, "--runs-dir", run.parent), "data.json")


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES])
def test_os_errors_reaching_the_cli_are_one_line(tmp_path, monkeypatch, capsys, code):
    def full(*_a, **_k):
        raise OSError(code, os.strerror(code), str(tmp_path / "runs" / "x" / "last.pt"))

    monkeypatch.setattr(runs, "list_runs", full)
    monkeypatch.setattr(sys, "argv", ["slr", "runs", "--runs-dir", str(tmp_path)])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 1
    out = capsys.readouterr()
    lines = [x for x in (out.out + out.err).splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in out.err
    if code == errno.ENOSPC:
        assert "no space left on " in lines[0] and "last.pt" in lines[0]
        assert "on device (" not in lines[0]  # the device is named
    else:
        assert "Permission denied" in lines[0]


def test_thresholds_step_is_bounded(tmp_path):
    write_run(tmp_path, "20250101-090000-demo")
    t0 = time.monotonic()
    for step in ("1e-7", "0", "-0.1", "nan", "2"):
        res = invoke("thresholds", "20250101", "--runs-dir", tmp_path, "--step", step)
        one_error_line(res, "--step")
    assert time.monotonic() - t0 < 20
    res = invoke("thresholds", "20250101", "--runs-dir", tmp_path, "--step", "0.001")
    assert res.exit_code == 0, res.output
    with pytest.raises(ValueError, match="at most"):
        from engine import evaluate

        evaluate.default_thresholds(0.0, 1.0, 1e-7)
    with pytest.raises(cfgmod.ConfigError, match="threshold_step"):
        cfgmod.resolve(preset="demo", sets=["training.threshold_step=1e-7"])


# --------------------------------------------------------------------------- item 11


def test_huge_batch_size(tmp_path):
    cfg = tmp_path / "big.json"
    cfg.write_text(json.dumps({"data": {"batch_size": 1e12}}))
    res = invoke("run", "--preset", "demo", "--config", cfg, "--runs-dir", tmp_path / "runs")
    one_error_line(res, "data.batch_size")
    res = invoke("run", "--preset", "demo", "--set", "data.batch_size=1e12", "--runs-dir", tmp_path)
    one_error_line(res, "data.batch_size")
    res = invoke("presets", "show", "demo", "--set", "data.eval_batch_size=10000000")
    one_error_line(res, "data.eval_batch_size")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "sets",
    [
        ["data.synthetic.val_fraction=0.6", "data.synthetic.test_fraction=0.5"],
        # the split fractions are the tabular sources' (sequences_csv, features)
        [
            "data.source=sequences_csv",
            "data.split_val_fraction=0.5",
            "data.split_test_fraction=0.5",
        ],
    ],
)
def test_split_fractions_over_one(tmp_path, sets):
    args = [a for s in sets for a in ("--set", s)]
    res = invoke("run", "--preset", "demo", *args, "--runs-dir", tmp_path)
    one_error_line(res, "leaves no training samples")
    assert not any(tmp_path.iterdir())


def test_empty_config_file(tmp_path):
    for text in ("", "# nothing but a comment\n"):
        p = tmp_path / "empty.yaml"
        p.write_text(text)
        res = invoke("run", "--config", p, "--runs-dir", tmp_path / "runs")
        one_error_line(res, "is empty")
    assert not (tmp_path / "runs").exists()


def test_show_with_a_bogus_split(tmp_path):
    write_run(tmp_path, "20250101-090000-demo")
    res = invoke("show", "20250101", "--runs-dir", tmp_path, "--split", "bogus")
    one_error_line(res, "--split", "bogus")


def test_stop_on_a_finished_run_says_so(tmp_path):
    write_run(tmp_path, "20250101-090000-demo")
    res = invoke("stop", "20250101", "--runs-dir", tmp_path)
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert len(lines) == 1 and "already finished" in lines[0]


def test_runs_dir_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    for cmd in (["runs"], ["show", "x"], ["run", "--preset", "demo"]):
        res = invoke(*cmd, "--runs-dir", f)
        one_error_line(res, "is a file")


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", ".NaN"])
def test_non_finite_numbers_are_refused(tmp_path, value):
    res = invoke("run", "--preset", "demo", "--set", f"optim.lr={value}", "--runs-dir", tmp_path)
    one_error_line(res, "optim.lr", "finite")
    assert not any(tmp_path.iterdir())


def test_non_finite_numbers_in_a_json_config(tmp_path):
    p = tmp_path / "c.json"
    p.write_text('{"optim": {"lr": Infinity}, "training": {"target_metric": NaN}}')
    res = invoke("run", "--preset", "demo", "--config", p, "--runs-dir", tmp_path / "runs")
    one_error_line(res, "finite")
    with pytest.raises(cfgmod.ConfigError, match="data.speed_range"):
        cfgmod.resolve(preset="demo", sets=["data.speed_range=[0.8, .inf]"])
