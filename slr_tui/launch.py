"""Starting and stopping engine processes; shared by the CLI and the TUI (no torch here)."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from engine import runs
from engine.config import ConfigError, RunConfig

ROOT_HINTS = {
    "wlasl": "the folder with the WLASL metadata JSON and videos/",
    "video_folder": "root/{train,val,test}/<class>/*.mp4, or a folder with a manifest CSV",
    "landmarks": "a landmark cache made by `slr extract`",
    "sequences_csv": "a folder of per-recording CSV files",
    "features": "a folder with labels.csv and one .npy/.npz per sample",
}


def check_available(cfg: RunConfig) -> None:
    """Raise ConfigError (one line) when the config needs a data source or model that this
    version does not have yet, before any run folder is made. Imports no torch."""
    from engine.data import SOURCES
    from engine.models import REGISTRY

    src = cfg.data.source
    if src not in SOURCES:
        raise ConfigError(f"unknown data source '{src}'; available: {', '.join(SOURCES)}")
    if importlib.util.find_spec(SOURCES[src]) is None:
        raise ConfigError(
            f"preset '{cfg.name}': the '{src}' data source is not available yet in this version "
            "of slr-tui (it lands with WLASL/VideoMAE support)"
        )
    if src != "synthetic":
        what = ROOT_HINTS.get(src, "the dataset folder")
        if not cfg.data.root:
            raise ConfigError(
                f"'{cfg.name}' needs a dataset root: pass --data-root PATH ({what}), "
                "or set data.root"
            )
        if not Path(cfg.data.root).expanduser().exists():
            raise ConfigError(f"data root {cfg.data.root} does not exist ({what})")
    name = cfg.model.name.lower()
    if name not in REGISTRY:
        raise ConfigError(f"unknown model '{cfg.model.name}'; available: {', '.join(REGISTRY)}")
    if importlib.util.find_spec(REGISTRY[name]) is None:
        raise ConfigError(
            f"preset '{cfg.name}': the '{name}' model is not available yet in this version of slr-tui"
        )


def prepare_run(cfg: RunConfig, runs_root: str | Path, tags: dict | None = None) -> Path:
    """Create the run folder with config.json and a ``starting`` run.json."""
    run_dir = runs.create_run_dir(runs_root, cfg.name)
    runs.atomic_write_json(run_dir / runs.CONFIG_JSON, cfg.to_dict())
    meta = {
        "id": run_dir.name,
        "preset": cfg.name,
        "dataset": cfg.dataset_label(),
        "status": "starting",
        "host": runs.hostname(),
        "started_at": time.time(),
        "max_epochs": cfg.training.max_epochs,
        "epoch": 0,
    }
    meta.update(tags or {})
    runs.atomic_write_json(run_dir / runs.RUN_JSON, meta)
    return run_dir


def engine_command(
    run_dir: Path, *, resume: bool = False, init_checkpoint: str | None = None, procs: int = 1
) -> list[str]:
    args = ["-m", "engine", "train", "--config", str(run_dir / runs.CONFIG_JSON)]
    args += ["--run-dir", str(run_dir)]
    if resume:
        args.append("--resume")
    if init_checkpoint:
        args += ["--init-checkpoint", str(init_checkpoint)]
    if procs > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        return launcher + [f"--nproc_per_node={procs}"] + args
    return [sys.executable, *args]


def spawn(
    run_dir: Path,
    *,
    resume: bool = False,
    init_checkpoint: str | None = None,
    procs: int = 1,
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """Start the engine in its own session and process group, output to log.txt, so it
    survives the viewer closing or the SSH connection dropping."""
    cmd = engine_command(run_dir, resume=resume, init_checkpoint=init_checkpoint, procs=procs)
    logf = open(run_dir / runs.LOG, "ab")  # noqa: SIM115 - handed to the child
    try:
        env = dict(env if env is not None else os.environ, PYTHONUNBUFFERED="1")
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            cwd=os.getcwd(),
        )
    finally:
        logf.close()
    # the engine records its own pid and process group once it starts; until then these
    # let viewers see the run as alive and let `slr stop` reach it
    meta = runs.read_json(run_dir / runs.RUN_JSON) or {}
    meta.update(pid=proc.pid, pgid=proc.pid, status="starting", ended_at=None, error=None)
    runs.atomic_write_json(run_dir / runs.RUN_JSON, meta)
    return proc


def stop_run(run: runs.RunInfo, *, force: bool = False) -> str:
    """Ask a live run to stop: SIGTERM (the engine finishes its step and writes last.pt);
    ``force`` sends SIGKILL to its whole process group. Returns what was done."""
    meta = run.refresh().meta
    if run.status not in runs.ACTIVE:
        return f"run {run.id} is not running (status: {run.status})"
    if meta.get("host") not in (None, runs.hostname()):
        raise runs.RunError(f"run {run.id} runs on {meta.get('host')}, not on this machine")
    pid, pgid = meta.get("pid"), meta.get("pgid")
    if force:
        target = pgid or pid
        try:
            os.killpg(int(target), signal.SIGKILL)
        except (ProcessLookupError, PermissionError, TypeError, ValueError):
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, TypeError, ValueError):
                return f"run {run.id}: process already gone"
        return f"run {run.id}: killed (last.pt holds the last finished epoch)"
    try:
        os.kill(int(pid), signal.SIGTERM)
    except (ProcessLookupError, TypeError, ValueError):
        return f"run {run.id}: process already gone"
    return f"run {run.id}: stop requested (finishing the current step, then writing last.pt)"


def wait_status(run: runs.RunInfo, timeout: float, poll: float = 0.2) -> str:
    """Wait until the run leaves the active states or the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run.refresh().status not in runs.ACTIVE:
            break
        time.sleep(poll)
    return run.status
