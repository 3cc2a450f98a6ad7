"""Hostile input: stale pids, crafted checkpoints, run references that leave the runs dir."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from engine import procs, runs
from engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from engine.train import EXIT_OK, EXIT_STOPPED, StopFlag, run_training
from slr_tui.cli import app
from tests.conftest import tiny_cfg
from tests.fixtures_runs import DEAD_PID, write_run

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def lines_of(res) -> list[str]:
    return [x for x in res.output.splitlines() if x.strip()]


def one_line(res) -> str:
    lines = lines_of(res)
    assert len(lines) == 1, res.output
    assert "Traceback" not in res.output
    return lines[0]


# --------------------------------------------------------------------------- slr stop


def _sleeper() -> subprocess.Popen:
    """An unrelated process in its own process group (what a recycled pid points at)."""
    return subprocess.Popen(["sleep", "60"], start_new_session=True)


def _running_run(root: Path, rid: str, pid: int, pgid: int | None) -> Path:
    run = write_run(root, rid, status="running", epochs=2, with_eval=False)
    meta = runs.read_json(run / runs.RUN_JSON)
    meta.update(pid=pid, pgid=pgid)
    runs.atomic_write_json(run / runs.RUN_JSON, meta)
    return run


@pytest.mark.parametrize("force", [False, True])
def test_stop_refuses_a_stale_pid_and_marks_the_run_lost(tmp_path, force):
    sleeper = _sleeper()
    try:
        run = _running_run(tmp_path, "20250101-090000-demo", sleeper.pid, sleeper.pid)
        args = ["stop", run.name, "--runs-dir", tmp_path, "--wait", "0"]
        res = invoke(*args, *(["--force"] if force else []))
        line = one_line(res)
        assert res.exit_code != 0
        assert "not this run's engine" in line and "lost" in line
        time.sleep(0.2)
        assert sleeper.poll() is None  # the foreign process (and its group) lives
        meta = runs.read_json(run / runs.RUN_JSON)
        assert meta["status"] == "lost"
        assert runs.load_run(run).status == "lost"
        # a second stop: not running any more
        res = invoke(*args)
        assert res.exit_code == 0 and "not running" in one_line(res)
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_force_stop_never_kills_a_foreign_process_group(tmp_path):
    # the pid is gone, the process group it names now belongs to someone else
    sleeper = _sleeper()
    try:
        run = _running_run(tmp_path, "20250101-090000-demo", DEAD_PID, sleeper.pid)
        res = invoke("stop", run.name, "--runs-dir", tmp_path, "--force")
        assert "not running" in one_line(res) and "lost" in res.output
        time.sleep(0.2)
        assert sleeper.poll() is None
        assert runs.read_json(run / runs.RUN_JSON)["status"] == "lost"
    finally:
        sleeper.kill()
        sleeper.wait()


def _fake_engine(run_dir_arg: str, cwd: Path) -> subprocess.Popen:
    """A process whose command line is the engine's for a run folder (``-m engine train
    ... --run-dir D``) but which only sleeps."""
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; time.sleep(60)",
            "-m",
            "engine",
            "train",
            "--config",
            "x/config.json",
            "--run-dir",
            run_dir_arg,
        ],
        cwd=cwd,
        start_new_session=True,
    )


@pytest.mark.parametrize("relative", [False, True])
def test_stop_signals_the_verified_engine(tmp_path, relative):
    root = tmp_path / "runs"
    run = write_run(root, "20250101-090000-demo", status="running", epochs=2, with_eval=False)
    proc = _fake_engine("runs/20250101-090000-demo" if relative else str(run), tmp_path)
    try:
        meta = runs.read_json(run / runs.RUN_JSON)
        meta.update(pid=proc.pid, pgid=proc.pid)
        runs.atomic_write_json(run / runs.RUN_JSON, meta)
        assert procs.pid_is_engine(meta, run)
        assert not procs.pid_is_engine(meta, write_run(root, "other", status="running"))
        res = invoke("stop", run.name, "--runs-dir", root, "--wait", "0")
        assert res.exit_code == 0 and "stop requested" in res.output
        assert proc.wait(timeout=10) != 0  # SIGTERM reached it
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_force_stop_kills_the_verified_engine_group(tmp_path):
    run = write_run(tmp_path, "20250101-090000-demo", status="running", with_eval=False)
    proc = _fake_engine(str(run), tmp_path)
    try:
        meta = runs.read_json(run / runs.RUN_JSON)
        meta.update(pid=proc.pid, pgid=proc.pid)
        runs.atomic_write_json(run / runs.RUN_JSON, meta)
        res = invoke("stop", run.name, "--runs-dir", tmp_path, "--force")
        assert res.exit_code == 0 and "killed" in res.output
        assert proc.wait(timeout=10) == -9
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_force_stop_reaches_every_process_of_a_multi_process_run(tmp_path):
    # --gpus N: the launcher and each worker run in sessions of their own
    run = write_run(tmp_path, "20250101-090000-demo", status="running", with_eval=False)
    other = write_run(tmp_path, "20250102-090000-demo", status="running", with_eval=False)
    mine = [_fake_engine(str(run), tmp_path) for _ in range(3)]
    theirs = _fake_engine(str(other), tmp_path)
    try:
        meta = runs.read_json(run / runs.RUN_JSON)
        meta.update(pid=mine[1].pid, pgid=mine[1].pid)  # rank 0 records itself
        runs.atomic_write_json(run / runs.RUN_JSON, meta)
        assert procs.run_processes(run) == sorted(p.pid for p in mine)
        res = invoke("stop", run.name, "--runs-dir", tmp_path, "--force")
        assert res.exit_code == 0 and "killed" in res.output
        assert [p.wait(timeout=10) for p in mine] == [-9, -9, -9]
        assert theirs.poll() is None  # another run's engine is left alone
    finally:
        for p in [*mine, theirs]:
            if p.poll() is None:
                p.kill()
            p.wait()


def test_engine_command_lines_are_recognised(tmp_path):
    d = str(tmp_path)
    plain = [sys.executable, "-m", "engine", "train", "--config", "c", "--run-dir", d]
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "engine",
        "train",
        "--config",
        "c",
        "--run-dir",
        d,
    ]
    worker = [sys.executable, "-u", "-m", "engine", "train", f"--run-dir={d}"]
    for argv in (plain, torchrun, worker):
        assert procs.engine_run_dir_arg(argv) == d
    assert procs.engine_run_dir_arg(["sleep", "60"]) is None
    assert procs.engine_run_dir_arg([sys.executable, "-m", "engine", "train"]) is None
    assert not procs.is_engine(os.getpid(), tmp_path)  # pytest is no engine
    assert not procs.is_engine(DEAD_PID, tmp_path)
    assert not procs.is_engine("x", tmp_path) and not procs.is_engine(None, tmp_path)


# --------------------------------------------------------------------------- checkpoints


class Evil:
    """Unpickling this creates a file: what a crafted checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _evil_checkpoint(path: Path, marker: Path, base: dict | None = None) -> Path:
    obj = dict(base or {})
    obj["payload"] = Evil(marker)
    torch.save(obj, path)
    return path


def test_load_checkpoint_refuses_code_in_one_line(tmp_path):
    marker = tmp_path / "pwned"
    p = _evil_checkpoint(tmp_path / "evil.pt", marker)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(p)
    msg = str(err.value)
    assert "\n" not in msg and "refused" in msg and "open" in msg
    assert not marker.exists()
    (tmp_path / "garbage.pt").write_bytes(os.urandom(2000))
    (tmp_path / "empty.pt").write_bytes(b"")
    for name in ("garbage.pt", "empty.pt", "missing.pt"):
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(tmp_path / name)
        assert "\n" not in str(err.value)
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="not a dict"):
        load_checkpoint(tmp_path / "list.pt")


def _resumable_copy(finished_run: Path, tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    run = root / finished_run.name
    shutil.copytree(finished_run, run)
    meta = runs.read_json(run / runs.RUN_JSON)
    meta.update(status="stopped", pid=None)
    runs.atomic_write_json(run / runs.RUN_JSON, meta)
    return run


def test_malicious_last_pt_on_resume(finished_run, tmp_path):
    run = _resumable_copy(finished_run, tmp_path)
    marker = tmp_path / "pwned-resume"
    _evil_checkpoint(run / "last.pt", marker, load_checkpoint(finished_run / "last.pt"))
    res = invoke("run", "--resume", run.name, "--runs-dir", run.parent, "--quiet")
    assert res.exit_code != 0
    assert not marker.exists()
    line = one_line(res)
    assert "refused" in line and "last.pt" in line
    meta = runs.read_json(run / runs.RUN_JSON)
    assert meta["status"] == "failed" and "refused" in meta["error"]
    assert "\n" not in meta["error"]


def test_malicious_best_pt_on_predict(finished_run, tmp_path):
    run = _resumable_copy(finished_run, tmp_path)
    marker = tmp_path / "pwned-predict"
    _evil_checkpoint(run / "best.pt", marker, load_checkpoint(finished_run / "best.pt"))
    csv = tmp_path / "rec.csv"
    csv.write_text("a,b\n1,2\n")
    res = invoke("predict", run.name, csv, "--runs-dir", run.parent)
    assert res.exit_code != 0 and not marker.exists()
    assert "refused" in one_line(res)


def test_malicious_best_pt_in_the_final_evaluation(tmp_path, monkeypatch):
    import engine.checkpoint as checkpoint_mod

    marker = tmp_path / "pwned-eval"
    real = checkpoint_mod.save_checkpoint

    def save(obj, path):  # someone swaps best.pt while the run trains
        if path.name == "best.pt":
            _evil_checkpoint(path, marker, obj)
        else:
            real(obj, path)

    monkeypatch.setattr(checkpoint_mod, "save_checkpoint", save)
    run_dir = tmp_path / "evalrun"
    assert run_training(tiny_cfg("training.max_epochs=1"), run_dir) == 2
    assert not marker.exists()
    meta = runs.read_json(run_dir / runs.RUN_JSON)
    assert meta["status"] == "failed" and "refused" in meta["error"] and "best.pt" in meta["error"]


def test_malicious_init_checkpoint(finished_run, tmp_path):
    marker = tmp_path / "pwned-init"
    evil = _evil_checkpoint(
        tmp_path / "init.pt", marker, {"model": load_checkpoint(finished_run / "best.pt")["model"]}
    )
    run_dir = tmp_path / "initrun"
    code = run_training(tiny_cfg("training.max_epochs=1"), run_dir, init_checkpoint=str(evil))
    assert code == 2 and not marker.exists()
    meta = runs.read_json(run_dir / runs.RUN_JSON)
    assert meta["status"] == "failed" and "--init-checkpoint" in meta["error"]
    assert "refused" in meta["error"] and "\n" not in meta["error"]
    # a plain state dict still initialises
    plain = tmp_path / "plain.pt"
    torch.save(load_checkpoint(finished_run / "best.pt")["model"], plain)
    code = run_training(
        tiny_cfg("training.max_epochs=1"), tmp_path / "ok", init_checkpoint=str(plain)
    )
    assert code == EXIT_OK


def test_checkpoints_written_now_load_weights_only(finished_run):
    for name in ("last.pt", "best.pt"):
        ck = torch.load(finished_run / name, map_location="cpu", weights_only=True)
        assert {"model", "optimizer", "rng", "config", "epoch"} <= set(ck)


def _as_old_format(path: Path) -> None:
    """Rewrite a checkpoint the way this project wrote them before weights_only loading:
    python's RNG state as tuples, numpy's as the tuple holding an np.ndarray."""
    ck = load_checkpoint(path)
    version, internal, gauss = ck["rng"]["python"]
    name, keys, pos, has_gauss, cached = ck["rng"]["numpy"]
    ck["rng"]["python"] = (version, tuple(internal), gauss)
    ck["rng"]["numpy"] = (name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached)
    ck["best"] = np.float64(ck["best"])  # numpy scalars, as older code could leave them
    torch.save(ck, path)
    assert "numpy.ndarray" in torch.serialization.get_unsafe_globals_in_checkpoint(path)


def test_old_format_checkpoint_loads_and_restores_rng(tmp_path):
    random.seed(3)
    np.random.seed(4)
    old = {
        "rng": {
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
        },
        "epoch": 1,
    }
    torch.save(old, tmp_path / "old.pt")
    want = (random.random(), float(np.random.rand()))
    ck = load_checkpoint(tmp_path / "old.pt")
    assert isinstance(ck["rng"]["numpy"][1], np.ndarray)
    from engine.checkpoint import set_rng_state

    random.seed(0)
    np.random.seed(0)
    set_rng_state(ck["rng"])
    assert (random.random(), float(np.random.rand())) == want


def test_resume_from_an_old_format_last_pt_is_exact(tmp_path):
    cfg = tiny_cfg("training.max_epochs=2", "data.augment=true", "model.dropout=0.3")
    a, b = tmp_path / "a", tmp_path / "b"
    assert run_training(cfg, a) == EXIT_OK
    stop = StopFlag()

    def stop_mid_epoch_two(trainer):
        if trainer.epoch == 1 and trainer.step_in_epoch == 2:
            stop.set("test")

    assert run_training(cfg, b, stop=stop, on_step=stop_mid_epoch_two) == EXIT_STOPPED
    _as_old_format(b / "last.pt")
    assert run_training(cfg, b, resume=True) == EXIT_OK
    rows = {d: list(runs.iter_epochs(runs.read_jsonl(d / runs.METRICS))) for d in (a, b)}
    key = ("epoch", "train_loss", "val_loss", "val_acc", "lr")
    assert [[r[k] for k in key] for r in rows[a]] == [[r[k] for k in key] for r in rows[b]]


def test_save_checkpoint_is_atomic(tmp_path, monkeypatch):
    p = tmp_path / "last.pt"
    save_checkpoint({"a": torch.ones(2)}, p)

    def boom(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        save_checkpoint({"a": torch.zeros(2)}, p)
    assert torch.equal(load_checkpoint(p)["a"], torch.ones(2))  # the old file stays
    assert [x.name for x in tmp_path.iterdir()] == ["last.pt"]  # no temp file left


# --------------------------------------------------------------------------- RUN references


def test_relative_run_reference_cannot_leave_the_runs_dir(tmp_path, monkeypatch):
    root = tmp_path / "runs"
    write_run(root, "20250101-090000-demo")
    outside = write_run(tmp_path / "other", "X")  # runs/../other/X is a run folder
    cwd = tmp_path / "work" / "here"  # ... but ../other/X from here is not
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    for ref in ("../other/X", "..", "./X", "X/../../other/X", "20250101-090000-demo/../../other/X"):
        res = invoke("thresholds", ref, "--runs-dir", root, "--pick", "0.5")
        assert res.exit_code != 0, (ref, res.output)
        one_line(res)
    assert not (outside / "threshold.json").exists()
    assert not (tmp_path / "threshold.json").exists()
    # an explicit path that exists as given is fine: the write goes into that folder only
    res = invoke("thresholds", str(outside), "--runs-dir", root, "--pick", "0.5")
    assert res.exit_code == 0, res.output
    assert json.loads((outside / "threshold.json").read_text())["threshold"] == 0.5
    # ids and prefixes are looked up in the runs dir
    res = invoke("thresholds", "20250101", "--runs-dir", root, "--pick", "0.4")
    assert res.exit_code == 0, res.output
    assert (root / "20250101-090000-demo" / "threshold.json").is_file()
    # a folder that is no run folder is refused even as an explicit path
    (tmp_path / "plain").mkdir()
    res = invoke("thresholds", str(tmp_path / "plain"), "--runs-dir", root, "--pick", "0.5")
    assert res.exit_code != 0 and "not a run folder" in one_line(res)
