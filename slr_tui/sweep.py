"""Grid search: every combination of ``--grid key=v1,v2,...`` as its own run, tagged with
the sweep id, run one after another or N at a time (one GPU each when there are several).
No torch here: runs are engine subprocesses."""

from __future__ import annotations

import itertools
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import runs, threads
from engine.errors import ConfigError
from slr_tui import launch

if TYPE_CHECKING:
    from engine import config as cfgmod


def parse_grid(items: list[str]) -> list[tuple[str, list[str]]]:
    """``["optim.lr=5e-5,1e-4", "data.batch_size=12,16"]`` -> [(key, [raw values])]."""
    out: list[tuple[str, list[str]]] = []
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        vals = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or "." not in key or not vals:
            raise ConfigError(f"--grid '{item}': expected section.key=value1,value2,...")
        if any(k == key for k, _ in out):
            raise ConfigError(f"--grid: '{key}' is given twice")
        out.append((key, vals))
    return out


def combinations(grid: list[tuple[str, list[str]]]) -> list[list[str]]:
    """Each combination as a list of ``key=value`` --set items."""
    keys = [k for k, _ in grid]
    return [
        [f"{k}={v}" for k, v in zip(keys, combo, strict=True)]
        for combo in itertools.product(*(vals for _, vals in grid))
    ]


def new_sweep_id(preset: str) -> str:
    return "sweep-" + runs.new_run_id(preset)


@dataclass
class SweepRun:
    sets: list[str]
    cfg: cfgmod.RunConfig
    run_dir: Path | None = None
    proc: subprocess.Popen | None = None
    gpu: int | None = None
    cores: list[int] | None = None  # CPU cores it is pinned to (parallel sweeps)
    code: int | None = None


@dataclass
class Sweep:
    id: str
    runs_root: Path
    members: list[SweepRun] = field(default_factory=list)

    @property
    def run_dirs(self) -> list[Path]:
        return [m.run_dir for m in self.members if m.run_dir is not None]


def plan(
    preset: str | None,
    config_file: str | Path | None,
    sets: list[str],
    grid_items: list[str],
    extra: dict[str, Any],
    runs_root: Path,
) -> Sweep:
    """Resolve and validate every combination before anything starts."""
    from engine import config as cfgmod  # lazily: `slr --help` builds no config models

    grid = parse_grid(grid_items)
    if not grid:
        raise ConfigError("give at least one --grid section.key=v1,v2,...")
    sweep = Sweep(id=new_sweep_id(preset or "custom"), runs_root=runs_root)
    for combo in combinations(grid):
        cfg = cfgmod.resolve(
            preset=preset, config_file=config_file, sets=[*sets, *combo], extra=extra
        )
        launch.check_data_root(cfg)
        sweep.members.append(SweepRun(sets=combo, cfg=cfg))
    return sweep


def gpu_count() -> int:
    from engine.telemetry import read_gpus_now

    gpus = read_gpus_now()
    return len(gpus) if isinstance(gpus, list) else 0


def claim_slot(
    m: Any, active: list, core_groups: list[list[int]], free_gpus: list[int], parallel: int
) -> dict[str, str]:
    """The environment of run ``m`` started beside the ``active`` ones: with ``parallel`` >
    1 its own group of cores (``m.cores``, none an active run holds) and, while any is free,
    its own GPU (``m.gpu``, taken from ``free_gpus``)."""
    env = dict(os.environ)
    if parallel > 1:
        busy = {c for a in active for c in (a.cores or [])}
        m.cores = next((g for g in core_groups if not busy & set(g)), core_groups[len(active)])
        env[threads.ENV_AFFINITY] = ",".join(map(str, m.cores))
        env[threads.ENV_RUNS] = str(parallel)
    if free_gpus:
        m.gpu = free_gpus.pop(0)
        env["CUDA_VISIBLE_DEVICES"] = str(m.gpu)
    return env


def execute(
    sweep: Sweep,
    parallel: int = 1,
    on_update: Callable[[Sweep], None] | None = None,
    poll_s: float = 0.5,
) -> Sweep:
    """Start the runs (:func:`slr_tui.launch.start_run`), at most ``parallel`` at a time;
    with several GPUs each concurrent run gets its own (CUDA_VISIBLE_DEVICES). Returns when
    every run has ended."""
    n_gpu = gpu_count() if parallel > 1 else 0
    # the cores are split between the runs that share the machine, each pinned to its own
    # (the engine turns that into its thread count: engine/threads.py)
    core_groups = threads.split_cores(threads.available_cores(), parallel)
    pending = list(sweep.members)
    active: list[SweepRun] = []
    free_gpus = list(range(n_gpu))
    while pending or active:
        while pending and len(active) < parallel:
            m = pending.pop(0)
            env = claim_slot(m, active, core_groups, free_gpus, parallel)
            params = dict(s.split("=", 1) for s in m.sets)
            handle = launch.start_run(
                m.cfg, sweep.runs_root, tags={"sweep": sweep.id, "sweep_params": params}, env=env
            )
            m.run_dir, m.proc = handle.run_dir, handle.proc
            active.append(m)
        for m in list(active):
            if m.proc is not None and m.proc.poll() is not None:
                m.code = m.proc.returncode
                launch.settle(m.run_dir, m.code)  # an engine killed early: the true status
                active.remove(m)
                if m.gpu is not None:
                    free_gpus.append(m.gpu)
        if on_update:
            on_update(sweep)
        if active:
            time.sleep(poll_s)
    if on_update:
        on_update(sweep)
    return sweep


def stop_all(sweep: Sweep) -> None:
    for m in sweep.members:
        if m.proc is not None and m.proc.poll() is None:
            m.proc.terminate()


def ranked(sweep: Sweep) -> list[runs.RunInfo]:
    """The sweep's runs, best monitored metric first (failed runs last)."""
    infos = [runs.load_run(d) for d in sweep.run_dirs]

    def key(r: runs.RunInfo) -> tuple[int, float]:
        v = r.best_metric
        if v is None:
            return (1, 0.0)
        return (0, -v if r.meta.get("monitor_mode", "max") == "max" else v)

    return sorted(infos, key=key)


def sweep_runs(root: Path, sweep_id: str) -> list[runs.RunInfo]:
    """Every run under ``root`` tagged with ``sweep_id`` (for the TUI's compare screen)."""
    return [r for r in runs.list_runs(root) if r.meta.get("sweep") == sweep_id]
