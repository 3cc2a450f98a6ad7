"""Training runs as SLURM jobs, through submitit (``slr run --launcher slurm``, ``slr sweep
--launcher slurm``). No torch here, and submitit only inside functions: it is optional
(``pip install 'slr-tui[search]'``).

The run folder is made by the submitting machine (:func:`slr_tui.launch.start_slurm_run`)
and must lie on a filesystem the compute nodes share; submitit's own files (the job script,
its logs, the pickled call) go to ``RUN/slurm/``. The job calls
:func:`slr_tui.launch.run_engine_job`, which runs the same ``python -m engine train`` the
local launcher runs (:func:`slr_tui.launch.job_command`; torchrun inside the allocation for
several GPUs or nodes) with its output in ``RUN/log.txt``,
so ``slr runs`` and the TUI read the run like any other. run.json records the job id
(``slurm_job_id``); :func:`cancel` is how ``slr stop`` reaches it: ``scancel --signal=TERM``
(the engine finishes its step, writes last.pt and ends ``stopped``), or ``scancel`` for a job
still queued or with ``--force``. SLURM's time-limit warning (USR2, ``signal_delay_s`` before
the end) is turned into the same stop, so a job that runs out of time leaves a resumable run.

Test aid: ``--launcher local-submitit`` (hidden) runs the same job through submitit's
``LocalExecutor`` on this machine; its job id is the local controller's pid, which
:func:`cancel` signals directly (SIGTERM: forwarded to the job, then to the engine).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import runs
from engine.errors import ConfigError
from engine.schema import STOP_REASONS, STOP_REQUEST

INSTALL_HINT = "pip install 'slr-tui[search]'"
SLURM_DIR = "slurm"  # RUN/slurm: submitit's folder for the run's job
EXIT_FILE = "exit.json"  # RUN/slurm/exit.json: the engine's exit code, written by the job
LAUNCHERS = ("local", "slurm")
TEST_LAUNCHER = "local-submitit"  # submitit's LocalExecutor: tests, no cluster
SIGNAL_DELAY_S = 120  # SLURM warns (USR2) this long before the time limit
LOCAL_CONTROLLER = "submitit.local._local"


def require_submitit() -> Any:
    """The submitit module, or ConfigError (one line) saying how to install it."""
    try:
        import submitit
    except ImportError:
        raise ConfigError(f"--launcher slurm needs submitit: {INSTALL_HINT}") from None
    return submitit


def parse_time(text: str) -> int:
    """A SLURM time limit (``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM``,
    ``D-HH:MM:SS``) in whole minutes (rounded up, at least 1). ConfigError when unreadable."""
    raw = text.strip()
    bad = ConfigError(f"--slurm-time '{text}': expected HH:MM:SS, MM, or D-HH:MM:SS")
    days = 0
    rest = raw
    if "-" in raw:
        d, _, rest = raw.partition("-")
        if not d.isdigit():
            raise bad
        days = int(d)
    parts = rest.split(":")
    if not rest or len(parts) > 3 or not all(p.isdigit() for p in parts):
        raise bad
    nums = [int(p) for p in parts]
    if "-" in raw:  # D-HH, D-HH:MM, D-HH:MM:SS
        h, m, s = (nums + [0, 0])[:3]
    elif len(nums) == 1:
        h, m, s = 0, nums[0], 0
    elif len(nums) == 2:
        h, m, s = 0, nums[0], nums[1]
    else:
        h, m, s = nums
    seconds = ((days * 24 + h) * 60 + m) * 60 + s
    if seconds <= 0:
        raise bad
    return max(1, math.ceil(seconds / 60))


def parse_extra(items: list[str]) -> dict[str, str]:
    """``--slurm-extra key=value`` items (sbatch options: ``qos=high``, ``constraint=a100``,
    ``mem=64G``) as submitit's ``additional_parameters``."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lstrip("-").replace("-", "_")
        if not sep or not key or not value.strip():
            raise ConfigError(f"--slurm-extra '{item}': expected key=value (an sbatch option)")
        out[key] = value.strip()
    return out


@dataclass(frozen=True)
class SlurmOptions:
    """Where and how long a job runs. ``gpus_per_node`` GPUs on each of the run's nodes
    (``slr run --gpus`` / ``--slurm-gpus-per-trial``)."""

    launcher: str = "slurm"  # or TEST_LAUNCHER
    partition: str | None = None
    account: str | None = None
    time_min: int = 12 * 60
    gpus_per_node: int = 1
    cpus_per_task: int | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def local(self) -> bool:
        return self.launcher == TEST_LAUNCHER


def make_options(
    launcher: str,
    *,
    partition: str | None = None,
    account: str | None = None,
    time: str = "12:00:00",
    gpus: int = 1,
    cpus: int | None = None,
    extra: list[str] | None = None,
) -> SlurmOptions:
    """Validated options (ConfigError, one line), submitit checked to be installed."""
    if launcher not in ("slurm", TEST_LAUNCHER):
        raise ConfigError(f"--launcher must be {' or '.join(LAUNCHERS)}, not '{launcher}'")
    require_submitit()
    if launcher == "slurm" and shutil.which("sbatch") is None:
        raise ConfigError(
            "--launcher slurm: sbatch is not on PATH (run this on a machine of the SLURM cluster)"
        )
    if gpus < 0:
        raise ConfigError("--slurm-gpus-per-trial must be 0 or more")
    return SlurmOptions(
        launcher=launcher,
        partition=partition,
        account=account,
        time_min=parse_time(time),
        gpus_per_node=gpus,
        cpus_per_task=cpus,
        extra=parse_extra(extra or []),
    )


def _local_gpus() -> int:
    from engine.telemetry import read_gpus_now

    gpus = read_gpus_now()
    return len(gpus) if isinstance(gpus, list) else 0


def executor(folder: Path, options: SlurmOptions, *, nodes: int, name: str) -> Any:
    """The submitit executor of one run's job: ``SlurmExecutor`` (one task per node, each
    node's GPUs for torchrun), or ``LocalExecutor`` for the test launcher."""
    submitit = require_submitit()
    if options.local:
        if nodes > 1:
            raise ConfigError("--launcher local-submitit runs on one node: drop --nodes")
        ex = submitit.LocalExecutor(folder=str(folder))
        gpus = min(options.gpus_per_node, _local_gpus())
        ex.update_parameters(
            timeout_min=options.time_min, gpus_per_node=gpus, signal_delay_s=SIGNAL_DELAY_S
        )
        return ex
    try:
        ex = submitit.SlurmExecutor(folder=str(folder))
    except RuntimeError as exc:  # no srun: this is not a machine of a SLURM cluster
        raise ConfigError(f"--launcher slurm: {str(exc).splitlines()[0]}") from None
    params: dict[str, Any] = {
        "job_name": name,
        "time": options.time_min,
        "nodes": nodes,
        "ntasks_per_node": 1,  # one task per node: torchrun starts the node's processes
        "signal_delay_s": SIGNAL_DELAY_S,
        "stderr_to_stdout": True,
    }
    if options.gpus_per_node:
        params["gpus_per_node"] = options.gpus_per_node
    for key, value in (
        ("partition", options.partition),
        ("account", options.account),
        ("cpus_per_task", options.cpus_per_task),
    ):
        if value is not None:
            params[key] = value
    if options.extra:
        params["additional_parameters"] = dict(options.extra)
    ex.update_parameters(**params)
    return ex


def submit(
    run_dir: Path,
    options: SlurmOptions,
    job: Callable[[str, int, int], int],
    *,
    procs: int = 1,
    nodes: int = 1,
) -> Any:
    """Submit ``job(run_dir, procs, nodes)`` (:func:`slr_tui.launch.run_engine_job`, which
    trains ``run_dir``) with its submitit files in ``RUN/slurm/``; the submitit job. A
    missing ``sbatch`` or a refused submission is ConfigError (one line)."""
    ex = executor(run_dir / SLURM_DIR, options, nodes=nodes, name=run_dir.name)
    try:
        return ex.submit(job, str(run_dir), procs, nodes)
    except FileNotFoundError as exc:
        raise ConfigError(
            f"cannot submit a SLURM job: {exc.strerror or exc} (is sbatch here?)"
        ) from None
    except Exception as exc:  # noqa: BLE001 - submitit's FailedJobError, sbatch's refusal
        line = str(exc).strip().splitlines()
        raise ConfigError(
            f"cannot submit a SLURM job: {line[-1] if line else type(exc).__name__}"
        ) from None


class JobProc:
    """A submitted job seen as a process (``poll``, ``returncode``, ``send_signal``,
    ``terminate``, ``wait``), so the loops that follow local engines follow jobs too. The
    exit code is the engine's (RUN/slurm/exit.json); a job cancelled before it could say
    reads as killed by SIGTERM, any other end without one as 1."""

    def __init__(self, job: Any, run_dir: Path) -> None:
        self.job = job
        self.run_dir = run_dir
        self.pid = None
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is not None:
            return self.returncode
        try:
            done = self.job.done()
        except Exception:  # noqa: BLE001 - sacct unreachable for a moment: still running
            return None
        if not done:
            return None
        self.returncode = job_exit_code(self.run_dir, str(self.job.state))
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.job.job_id), timeout or 0)
            time.sleep(0.2)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        """Any stop signal: the job's engine is asked to stop (``scancel --signal=TERM``);
        a scheduler that refuses is ignored here (the caller keeps polling the job)."""
        info = runs.load_run(self.run_dir)
        if info.raw_status in runs.ACTIVE and info.meta.get("slurm_job_id"):
            with contextlib.suppress(runs.RunError, OSError):
                cancel(info)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        cancel_job(self.run_dir, str(self.job.job_id), self._launcher(), force=True)

    def _launcher(self) -> str:
        return runs.read_meta(self.run_dir).get("launcher") or "slurm"


def job_exit_code(run_dir: Path, state: str) -> int:
    """The engine's exit code for a job that has ended in ``state`` (submitit's)."""
    written = runs.read_json(run_dir / SLURM_DIR / EXIT_FILE) or {}
    code = written.get("code")
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    if state.upper().startswith(("CANCELLED", "INTERRUPTED", "PREEMPTED")):
        return -signal.SIGTERM
    return 1


def _local_controller(run_dir: Path, job_id: str) -> int | None:
    """The pid of this run's local submitit controller, when ``job_id`` still is one."""
    if not job_id.isdigit():
        return None
    try:
        raw = Path(f"/proc/{job_id}/cmdline").read_bytes()
    except OSError:
        return None
    args = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
    folder = str(run_dir / SLURM_DIR)
    if LOCAL_CONTROLLER in args and any(a.rstrip("/") == folder for a in args):
        return int(job_id)
    return None


def cancel_job(
    run_dir: Path, job_id: str, launcher: str, *, force: bool, queued: bool = False
) -> str:
    """Stop the job of ``run_dir``: SIGTERM to its processes (the engine stops cleanly), a
    plain cancel when it is still queued or with ``force``. What was done; RunError when
    the scheduler refused."""
    if launcher == TEST_LAUNCHER:
        pid = _local_controller(run_dir, job_id)
        if pid is None:
            return "job already gone"
        # SIGTERM is forwarded job -> engine; SIGINT (a queued job) makes the controller
        # end its task at once
        sig = signal.SIGKILL if force else signal.SIGINT if queued else signal.SIGTERM
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        return "job cancelled" if force or queued else "job signalled (SIGTERM)"
    scancel = shutil.which("scancel")
    if scancel is None:
        raise runs.RunError(
            f"job {job_id}: scancel is not on PATH here; run `slr stop` where SLURM is, "
            f"or `scancel {job_id}`"
        )
    cmd = [scancel, job_id] if force or queued else [scancel, "--signal=TERM", job_id]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise runs.RunError(f"job {job_id}: scancel failed ({exc})") from None
    if res.returncode != 0:
        lines = (res.stderr or res.stdout).strip().splitlines()
        raise runs.RunError(
            f"job {job_id}: scancel failed: {lines[-1] if lines else res.returncode}"
        )
    return "job cancelled" if force or queued else "job signalled (scancel --signal=TERM)"


def cancel(run: runs.RunInfo, *, force: bool = False) -> str:
    """``slr stop`` for a run whose engine is a scheduler job (``slurm_job_id`` in run.json),
    from any machine: a running engine is sent SIGTERM through the scheduler (it finishes
    the step, writes last.pt, ends ``stopped`` or ``pruned``); a job still queued is
    cancelled and the run recorded ``stopped`` here."""
    meta = run.meta
    job_id = str(meta["slurm_job_id"])
    launcher = meta.get("launcher") or "slurm"
    queued = meta.get("pid") is None and meta.get("status") == "starting"
    done = cancel_job(run.path, job_id, launcher, force=force, queued=queued)
    if queued:
        now = time.time()
        reason = (runs.read_json(run.path / STOP_REQUEST) or {}).get("reason")
        status = reason if reason in STOP_REASONS else "stopped"
        with contextlib.suppress(OSError):
            runs.update_run_json(
                run.path, {"status": status, "ended_at": now, "error": None}, base=meta
            )
        return f"run {run.id}: {done} before it started (job {job_id}); marked {status}"
    if force:
        return f"run {run.id}: {done} (job {job_id}; last.pt holds the last finished epoch)"
    return (
        f"run {run.id}: stop requested, {done} (job {job_id}: finishing the current step, "
        "then writing last.pt)"
    )
