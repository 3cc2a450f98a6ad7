"""`--launcher slurm`: the job's command and sbatch script, runs started as submitit jobs
(through submitit's local executor: no cluster here) that `slr runs` lists and `slr stop`
cancels, a study whose trials are jobs, `scancel` for a run on the cluster, and the one
error line without submitit."""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine import runs
from engine.config import ConfigError
from slr_tui import launch, slurm
from slr_tui.cli import app
from tests.conftest import TINY_SETS, tiny_cfg

submitit = pytest.importorskip("submitit")


def _sets(*extra: str) -> list[str]:
    out: list[str] = []
    for s in [*TINY_SETS, *extra]:
        out += ["--set", s]
    return out


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_time_and_extra():
    assert slurm.parse_time("12:00:00") == 720
    assert slurm.parse_time("90") == 90
    assert slurm.parse_time("1-02:30:00") == 26 * 60 + 30
    assert slurm.parse_time("0:30") == 1  # 30 s: a whole minute
    for bad in ("", "1:2:3:4", "ab", "0", "x-1"):
        with pytest.raises(ConfigError):
            slurm.parse_time(bad)
    assert slurm.parse_extra(["qos=high", "--mem-per-gpu=40G"]) == {
        "qos": "high",
        "mem_per_gpu": "40G",
    }
    with pytest.raises(ConfigError):
        slurm.parse_extra(["qos"])


def test_job_command_one_node_and_several(tmp_path):
    run_dir = tmp_path / "20250101-000000-demo"
    one = launch.job_command(run_dir)
    assert one == launch.engine_command(run_dir)  # what the local launcher runs
    assert one[1:4] == ["-m", "engine", "train"]
    gpus = launch.job_command(run_dir, procs=4)
    assert gpus[1:4] == ["-m", "torch.distributed.run", "--standalone"]
    assert "--nproc_per_node=4" in gpus
    multi = launch.job_command(run_dir, procs=8, nodes=2, node_rank=1, master_addr="gpu01")
    assert multi[1:3] == ["-m", "torch.distributed.run"]
    for arg in ("--nnodes=2", "--nproc_per_node=8", "--node_rank=1", "--rdzv_backend=c10d"):
        assert arg in multi
    assert "--rdzv_endpoint=gpu01:29500" in multi
    i = multi.index("engine")
    assert multi[i - 1 : i + 2] == ["-m", "engine", "train"]
    assert multi[multi.index("--run-dir") + 1] == str(run_dir)
    with pytest.raises(ConfigError):
        launch.job_command(run_dir, nodes=2)


def _fake_bin(tmp_path: Path, monkeypatch, name: str, body: str) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / name
    tool.write_text(f"#!/bin/sh\n{body}\n")
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return bin_dir


def test_sbatch_script(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch: no cluster here, one line
    with pytest.raises(ConfigError, match="sbatch is not on PATH"):
        slurm.make_options("slurm", time="1:00:00")
    monkeypatch.undo()
    _fake_bin(tmp_path, monkeypatch, "sbatch", "exit 1")
    opts = slurm.make_options("slurm", time="1:00:00")
    with pytest.raises(ConfigError, match="--launcher slurm"):  # no srun either
        slurm.executor(tmp_path / "slurm", opts, nodes=1, name="x")
    _fake_bin(tmp_path, monkeypatch, "srun", "exit 0")
    opts = slurm.make_options(
        "slurm",
        partition="gpu",
        account="lab",
        time="1-00:00:00",
        gpus=2,
        cpus=8,
        extra=["qos=high"],
    )
    ex = slurm.executor(tmp_path / "slurm", opts, nodes=2, name="20250101-000000-demo")
    text = ex._make_submission_file_text("python -u -m submitit.core._submit x", "uid")
    for line in (
        "#SBATCH --partition=gpu",
        "#SBATCH --account=lab",
        "#SBATCH --time=1440",
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --gpus-per-node=2",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --qos=high",
        "#SBATCH --job-name=20250101-000000-demo",
        "#SBATCH --signal=USR2@120",
    ):
        assert line in text, (line, text)


def _wait(pred, timeout: float = 90.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.2)
    return False


def test_a_job_run_is_listed_and_stopped(tmp_path):
    res = _invoke(
        "run", "--preset", "demo", "--runs-dir", str(tmp_path), "--launcher", "local-submitit",
        "--detach", *_sets("training.max_epochs=500"),
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    run_id = res.output.strip().splitlines()[-1]
    run_dir = tmp_path / run_id
    meta = runs.read_meta(run_dir)
    assert meta["launcher"] == "local-submitit" and meta["slurm_job_id"]
    assert _wait(lambda: runs.load_run(run_dir).epoch >= 1), (run_dir / "log.txt").read_text()
    listed = json.loads(_invoke("runs", "--runs-dir", str(tmp_path), "--json").output)
    assert [(r["id"], r["status"]) for r in listed] == [(run_id, "running")]
    stopped = _invoke("stop", run_id, "--runs-dir", str(tmp_path), "--wait", "60")
    assert stopped.exit_code == 0, stopped.output
    assert "stop requested" in stopped.output and f"run {run_id}: stopped" in stopped.output
    info = runs.load_run(run_dir)
    assert info.status == "stopped" and info.epoch < 500
    assert (run_dir / "last.pt").is_file()
    exit_file = run_dir / slurm.SLURM_DIR / slurm.EXIT_FILE
    assert _wait(lambda: exit_file.is_file(), 30)
    assert json.loads(exit_file.read_text())["code"] == 130  # the engine's own stop exit
    pid = int(meta["slurm_job_id"])  # the local controller: gone with its job
    assert _wait(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), 30)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def test_study_trials_as_jobs(tmp_path):
    res = _invoke(
        "sweep", "--search", "optuna", "--preset", "demo", "--runs-dir", str(tmp_path),
        "--launcher", "local-submitit", "--slurm-time", "00:10:00", "--study", "j",
        "--sampler", "random", "--trials", "2", "--parallel", "2", "--pruner", "none",
        "--space", "optim.lr=loguniform:1e-4:1e-2", *_sets("training.max_epochs=1"),
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    items = runs.list_runs(tmp_path)
    assert sorted(r.meta["trial"] for r in items) == [0, 1]
    assert all(r.status == "finished" and r.meta["slurm_job_id"] for r in items)
    assert all((r.path / slurm.SLURM_DIR).is_dir() for r in items)
    shown = json.loads(_invoke("sweep", "show", "j", "--runs-dir", str(tmp_path), "--json").output)
    assert [t["state"] for t in shown["trials"]] == ["complete", "complete"]


def _cluster_run(tmp_path: Path, pid: int | None = 4242) -> runs.RunInfo:
    """A run run.json says a SLURM job trains on a compute node."""
    run_dir = launch.prepare_run(
        tiny_cfg(), tmp_path, {"launcher": "slurm", "slurm_job_id": "123456"}
    )
    runs.update_run_json(run_dir, {"status": "running", "host": "gpu07", "pid": pid})
    return runs.load_run(run_dir)


def test_stop_cancels_a_cluster_job_through_scancel(tmp_path, monkeypatch):
    info = _cluster_run(tmp_path / "runs")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    res = _invoke("stop", info.id, "--runs-dir", str(tmp_path / "runs"), "--wait", "0")
    assert res.exit_code == 2 and "scancel is not on PATH" in res.output
    calls = tmp_path / "calls.txt"
    fake = bin_dir / "scancel"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    res = _invoke("stop", info.id, "--runs-dir", str(tmp_path / "runs"), "--wait", "0")
    assert res.exit_code == 0, res.output
    assert calls.read_text().split() == ["--signal=TERM", "123456"]  # a clean stop
    res = _invoke("stop", info.id, "--runs-dir", str(tmp_path / "runs"), "--force")
    assert calls.read_text().splitlines()[-1].split() == ["123456"]
    # a job still queued: cancelled, and the run recorded stopped here
    queued = launch.prepare_run(
        tiny_cfg(), tmp_path / "runs", {"launcher": "slurm", "slurm_job_id": "777"}
    )
    assert runs.load_run(queued).status == "starting"  # not "lost": it has no pid yet
    res = _invoke("stop", queued.name, "--runs-dir", str(tmp_path / "runs"))
    assert res.exit_code == 0 and "before it started" in res.output
    assert calls.read_text().splitlines()[-1].split() == ["777"]
    assert runs.load_run(queued).status == "stopped"


def test_without_submitit_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)
    res = _invoke("run", "--preset", "demo", "--runs-dir", str(tmp_path), "--launcher", "slurm")
    assert res.exit_code == 2
    assert res.output.strip() == (
        "error: --launcher slurm needs submitit: pip install 'slr-tui[search]'"
    )
    assert not any(tmp_path.iterdir())


def test_a_refused_submission_fails_the_trial_and_stops(tmp_path, monkeypatch):
    _fake_bin(tmp_path, monkeypatch, "srun", "exit 0")
    _fake_bin(
        tmp_path, monkeypatch, "sbatch", "echo 'invalid partition specified: nope' >&2; exit 1"
    )
    res = _invoke(
        "sweep", "--search", "optuna", "--preset", "demo", "--runs-dir", str(tmp_path / "runs"),
        "--launcher", "slurm", "--slurm-partition", "nope", "--study", "r", "--trials", "3",
        "--space", "optim.lr=loguniform:1e-4:1e-2", *_sets(),
    )  # fmt: skip
    assert res.exit_code == 1, res.output
    assert "trial 0: cannot submit a SLURM job" in res.output
    assert runs.list_runs(tmp_path / "runs") == []  # no job, no run folder
    shown = _invoke("sweep", "show", "r", "--runs-dir", str(tmp_path / "runs"), "--json")
    assert [t["state"] for t in json.loads(shown.output)["trials"]] == ["fail"]  # not 3
    grid = _invoke("sweep", "--preset", "demo", "--grid", "optim.lr=1,2", "--launcher", "slurm")
    assert grid.exit_code == 2 and "--search optuna" in grid.output
