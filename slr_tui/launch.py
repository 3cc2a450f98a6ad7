"""Starting and stopping engine processes; shared by the CLI and the TUI (no torch here).

This is the only module that starts an engine process: a training run
(:func:`start_run`, :func:`resume_run`) or a job (:func:`start_check`,
:func:`start_extract`, :func:`start_predict`, :func:`start_export`, :func:`start_eval`).
A job reports only
through the files of its job folder (see :mod:`engine.jobs`): :func:`follow` tails its
progress rows, and :meth:`Job.outcome` reads its result or its one-line error.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import catalog, runs, threads
from engine.errors import ConfigError
from engine.schema import STOP_REASONS, STOP_REQUEST

if TYPE_CHECKING:  # the config models cost ~60 ms to build; `slr --help` needs none
    from engine.config import RunConfig
    from slr_tui.slurm import SlurmOptions

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

# a job folder's files
JOB_CONFIG = "config.json"  # the resolved RunConfig the job reads
PROGRESS = "progress.jsonl"  # the job's progress rows, ending with an "end" row
RESULT = "result.json"  # its result, or {"error": "one line"}
JOB_LOG = "log.txt"  # what the engine printed (a traceback only for a bug)
EXTRACT_JOB_SUFFIX = ".extract-job"
LOG_TAIL_BYTES = 4096  # how much of a job's log is read for the line a dead job left


def check_data_root(cfg: RunConfig) -> None:
    """Raise ConfigError (one line) when the config's data source needs a dataset root that
    is not given or not there, before any run folder is made. (A validated config names a
    source and a model of the catalog.) Imports no torch."""
    src = cfg.data.source
    if catalog.SOURCES[src].root_hint is None:
        return
    what = catalog.root_hint(src)
    if not cfg.data.root:
        raise ConfigError(
            f"'{cfg.name}' needs a dataset root: pass --data-root PATH ({what}), or set data.root"
        )
    if not Path(cfg.data.root).expanduser().exists():
        raise ConfigError(f"data root {cfg.data.root} does not exist ({what})")


def _write_error(exc: OSError, path: Path, what: str) -> runs.WriteError:
    """One line for a failed write: ``no space left on MOUNT (PATH)`` for a full disk."""
    line = runs.no_space_line(exc, path)
    if line is None:
        line = f"cannot {what}: {exc.strerror or exc} ({exc.filename or path})"
    return runs.WriteError(line, exc.errno, str(exc.filename or path))


def prepare_run(cfg: RunConfig, runs_root: str | Path, tags: dict | None = None) -> Path:
    """Create the run folder with config.json and a ``starting`` run.json.

    On a full disk (less than :data:`engine.runs.LOW_SPACE_BYTES` free) or any failed write
    this raises :class:`engine.runs.WriteError` (an OSError; one line, ``no space left on
    MOUNT (PATH)``) and leaves no run folder behind."""
    root = Path(runs_root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _write_error(exc, root, f"create the runs folder {root}") from None
    runs.check_free_space(root)
    try:
        run_dir = runs.create_run_dir(root, cfg.name)
    except OSError as exc:
        raise _write_error(exc, root, f"create a run folder under {root}") from None
    try:
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
        runs.write_run_json(run_dir / runs.RUN_JSON, meta)
    except OSError as exc:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise _write_error(exc, run_dir, "write the run folder") from None
    return run_dir


def check_resumable(info: runs.RunInfo) -> None:
    """Raise RunError (one line) unless ``info`` is a run that ``--resume`` may continue:
    ``stopped``, ``failed`` or ``lost``, with a last.pt. A finished run (early-stopped
    ones too) is never trained on and rewritten."""
    st = info.status
    if st in runs.ACTIVE:
        raise runs.RunError(f"run {info.id} is still {st}")
    again = f"slr run --config {info.path / runs.CONFIG_JSON}"
    if st == "finished":
        epochs = f"{info.epoch}/{info.max_epochs}" if info.max_epochs else str(info.epoch)
        why = info.meta.get("stop_reason")
        raise runs.RunError(
            f"run {info.id} has finished ({epochs} epochs{', ' + why if why else ''}): "
            f"nothing to resume; to train it again: {again}"
        )
    if st == "unreadable":
        raise runs.RunError(f"run {info.id} cannot be resumed: {info.problem}")
    if st not in runs.RESUMABLE:
        raise runs.RunError(
            f"run {info.id} is {st}: only stopped, pruned, failed and lost runs can be resumed"
        )
    if not (info.path / "last.pt").is_file():
        raise runs.RunError(
            f"run {info.id} has no last.pt to resume from (it ended before its first "
            f"checkpoint); to start it again: {again}"
        )


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


def job_command(
    run_dir: Path,
    *,
    resume: bool = False,
    procs: int = 1,
    nodes: int = 1,
    node_rank: int = 0,
    master_addr: str | None = None,
    master_port: int = 29500,
) -> list[str]:
    """The engine command a scheduler job (SLURM through submitit) runs on each node of its
    allocation: :func:`engine_command` on one node; across ``nodes`` nodes, torchrun with a
    c10d rendezvous at ``master_addr`` (the allocation's first node), ``procs`` processes
    per node, this node's ``node_rank``."""
    if nodes <= 1:
        return engine_command(run_dir, resume=resume, procs=procs)
    if not master_addr:
        raise ConfigError("a multi-node job needs the address of its first node")
    single = engine_command(run_dir, resume=resume)
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nnodes={nodes}",
        f"--nproc_per_node={procs}",
        f"--node_rank={node_rank}",
        "--rdzv_backend=c10d",
        f"--rdzv_endpoint={master_addr}:{master_port}",
        f"--rdzv_id={run_dir.name}",
        *single[1:],
    ]


def run_engine_job(run_dir: str, procs: int = 1, nodes: int = 1) -> int:
    """A scheduler job's body (:func:`slr_tui.slurm.submit`, on each node of the
    allocation): :func:`job_command` for ``run_dir`` run through :func:`run_in_job`, its
    output in RUN/log.txt (other nodes: log.nodeK.txt). The engine's exit code, returned
    and written to RUN/slurm/exit.json (read back without unpickling)."""
    from slr_tui import slurm

    path = Path(run_dir)
    node_rank, master = 0, None
    if nodes > 1:
        env = slurm.require_submitit().JobEnvironment()
        node_rank, master = env.node, env.hostnames[0]
    cmd = job_command(path, procs=procs, nodes=nodes, node_rank=node_rank, master_addr=master)
    log = path / (runs.LOG if node_rank == 0 else f"log.node{node_rank}.txt")
    code = run_in_job(cmd, log)
    if node_rank == 0:
        with contextlib.suppress(OSError):
            runs.atomic_write_json(path / slurm.SLURM_DIR / slurm.EXIT_FILE, {"code": code})
    return code


def run_in_job(cmd: list[str], log_path: Path) -> int:
    """Inside a scheduler job (:func:`slr_tui.slurm.run_engine_job`): run the engine
    command ``cmd`` with its output appended to ``log_path`` and wait for it; its exit
    code. A stop that reaches the job (SIGTERM or SIGINT: ``scancel --signal=TERM``, the
    local controller) or SLURM's time-limit warning (SIGUSR2) is passed on to the engine
    as SIGTERM, so it finishes its step and writes last.pt. As in :func:`spawn`, a single
    engine starts with the stop signals blocked until it has its handler."""
    single = cmd[1:3] == ["-m", "engine"]
    with open(log_path, "ab") as logf:
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS) if single else None
        try:
            proc = _popen(cmd, logf)
        finally:
            if old_mask is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)

    def forward(_signum, _frame):
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)

    caught = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)
    old = {sig: signal.signal(sig, forward) for sig in caught}
    try:
        return proc.wait()
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def write_stop_request(run_dir: Path, reason: str) -> None:
    """Say why the next stop is asked for (RUN/stop_request.json, read by the engine when
    it stops: ``pruned`` makes it end ``pruned`` instead of ``stopped``)."""
    runs.atomic_write_json(run_dir / STOP_REQUEST, {"reason": reason, "at": time.time()})


def stop_request_reason(run_dir: Path) -> str | None:
    reason = (runs.read_json(run_dir / STOP_REQUEST) or {}).get("reason")
    return reason if reason in STOP_REASONS else None


def _popen(cmd: list[str], logf, env: dict[str, str] | None = None) -> subprocess.Popen:
    """An engine process: its own session (a Ctrl-C in the terminal is ours to forward),
    output into ``logf``, unbuffered."""
    return subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=logf,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=dict(env if env is not None else os.environ, PYTHONUNBUFFERED="1"),
        cwd=os.getcwd(),
    )


def spawn(
    run_dir: Path,
    *,
    resume: bool = False,
    init_checkpoint: str | None = None,
    procs: int = 1,
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """Start the engine in its own session and process group, output to log.txt, so it
    survives the viewer closing or the SSH connection dropping.

    A single engine process starts with SIGTERM and SIGINT blocked: a stop sent before it
    has installed its handler waits (pending) instead of killing it, and the engine takes
    it as soon as it can (it ends ``stopped``). ``resume`` refuses (RunError) a run that
    :func:`check_resumable` refuses, before anything is touched."""
    if resume:
        check_resumable(runs.load_run(run_dir))
    cmd = engine_command(run_dir, resume=resume, init_checkpoint=init_checkpoint, procs=procs)
    # a new session: written before the engine starts, so nothing here can overwrite what
    # the engine records itself. A torn run.json is rebuilt first; the time of earlier
    # sessions is kept in active_s (a resumed run's duration leaves out the idle gap).
    before = runs.read_meta(run_dir)
    with contextlib.suppress(OSError):  # an earlier session's stop reason is not this one's
        (run_dir / STOP_REQUEST).unlink(missing_ok=True)
    _update_quietly(
        run_dir,
        {
            "status": "starting",
            "ended_at": None,
            "error": None,
            "stop_reason": None,
            "active_s": runs.active_seconds(before, status="closed") or 0.0,
            "session_started_at": None,  # the engine opens its session when it starts
        },
        before,
    )
    logf = open(run_dir / runs.LOG, "ab")  # noqa: SIM115 - handed to the child
    block = procs == 1  # torchrun must keep its own signals: it forwards them to the ranks
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS) if block else None
    try:
        proc = _popen(cmd, logf, env)
    except BaseException:
        if before:  # nothing started: the run is as it was (restored byte for byte)
            with contextlib.suppress(OSError):
                runs.atomic_write_json(run_dir / runs.RUN_JSON, before)
        raise
    finally:
        if old_mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        logf.close()
    # the engine records its own pid and process group once it starts; until then these
    # let viewers see the run as alive and let `slr stop` reach it
    _update_quietly(run_dir, {"pid": proc.pid, "pgid": proc.pid})
    return proc


@dataclass
class RunHandle:
    """A training run just started: its folder and the engine process (its own session)."""

    run_dir: Path
    proc: subprocess.Popen

    @property
    def id(self) -> str:
        return self.run_dir.name


def start_run(
    cfg: RunConfig,
    runs_root: str | Path,
    *,
    tags: dict | None = None,
    init_checkpoint: str | None = None,
    procs: int = 1,
    env: dict[str, str] | None = None,
) -> RunHandle:
    """Start a new training run, the one way the CLI (``slr run``), the TUI's new-run
    screen and sweeps do it: check that the config can run here (:func:`check_data_root`,
    ConfigError), make its run folder (:func:`prepare_run`, WriteError on a full disk),
    start the engine (:func:`spawn`)."""
    check_data_root(cfg)
    if env is None:
        env = shared_cpu_env(runs_root)
    run_dir = prepare_run(cfg, runs_root, tags)
    return RunHandle(run_dir, spawn(run_dir, init_checkpoint=init_checkpoint, procs=procs, env=env))


def start_slurm_run(
    cfg: RunConfig,
    runs_root: str | Path,
    options: SlurmOptions,
    *,
    tags: dict | None = None,
    procs: int = 1,
    nodes: int = 1,
) -> RunHandle:
    """Start a new training run as a scheduler job (SLURM through submitit, or submitit's
    local executor, a test aid): the run folder is made here (it must be on a filesystem the
    compute nodes share), the job runs :func:`job_command` in it and records its job id in
    run.json (``slurm_job_id``, what `slr stop` cancels). The handle's ``proc`` polls the
    job like a process. Without submitit: ConfigError (one line)."""
    from slr_tui import slurm

    slurm.require_submitit()
    check_data_root(cfg)
    run_dir = prepare_run(cfg, runs_root, {**(tags or {}), "launcher": options.launcher})
    try:
        job = slurm.submit(run_dir, options, run_engine_job, procs=procs, nodes=nodes)
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)  # no job: no run
        raise
    _update_quietly(run_dir, {"slurm_job_id": str(job.job_id)})
    return RunHandle(run_dir, slurm.JobProc(job, run_dir))  # type: ignore[arg-type]


def active_local_runs(runs_root: str | Path) -> int:
    """Runs of ``runs_root`` training on this machine now (running or starting, with a
    live process here)."""
    root = Path(runs_root)
    if not root.is_dir():
        return 0
    here = runs.hostname()
    return sum(
        1
        for r in runs.list_runs(root)
        if r.status in runs.ACTIVE and r.meta.get("host") in (None, here)
    )


def shared_cpu_env(runs_root: str | Path) -> dict[str, str] | None:
    """The environment of a run started beside others on this machine (a second `slr run`,
    a launch from the TUI): ``SLR_CONCURRENT_RUNS`` counts them all, so the new engine takes
    its share of the cores (engine/threads.py) instead of all of them. None when it runs
    alone (or the caller set ``SLR_CONCURRENT_RUNS`` itself). Sweeps pass their own."""
    if threads.ENV_RUNS in os.environ:
        return None
    others = active_local_runs(runs_root)
    if not others:
        return None
    return {**os.environ, threads.ENV_RUNS: str(others + 1)}


def resume_run(run_dir: Path, *, init_checkpoint: str | None = None, procs: int = 1) -> RunHandle:
    """Continue a stopped, failed or lost run from its last.pt with its own config.json
    (:func:`check_resumable` refuses the others, RunError)."""
    proc = spawn(run_dir, resume=True, init_checkpoint=init_checkpoint, procs=procs)
    return RunHandle(run_dir, proc)


def _update_quietly(run_dir: Path, fields: dict, base: dict | None = None) -> None:
    try:
        runs.update_run_json(run_dir, fields, base=base)
    except OSError:
        pass  # a full disk: the engine records its own status (and the failure) itself


def settle(run_dir: Path, returncode: int | None) -> str | None:
    """After the engine process has exited: when run.json still says it is active (the
    engine was killed before it could record anything), record the truth: ``stopped``
    for a stop signal, else ``failed`` with the exit code. Returns the status recorded,
    or None when run.json already had an end."""
    if returncode is None:
        return None
    info = runs.load_run(run_dir)
    if info.raw_status == "stopped" and stop_request_reason(run_dir):
        # stopped before the engine could read why (before torch was imported)
        reason = stop_request_reason(run_dir)
        try:
            runs.update_run_json(run_dir, {"status": reason, "stop_reason": reason})
        except OSError:
            return None
        return reason
    if info.raw_status not in runs.ACTIVE:
        return None
    if returncode in (-signal.SIGTERM, -signal.SIGINT, 128 + signal.SIGTERM, 130):
        fields: dict = {"status": stop_request_reason(run_dir) or "stopped", "error": None}
    elif returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else ""
        fields = {"status": "failed", "error": f"engine killed by {name or -returncode}"}
    else:
        fields = {"status": "failed", "error": f"engine exited with code {returncode}"}
    meta = info.meta
    now = time.time()
    fields.update(ended_at=now, pid=None)
    if meta.get("session_started_at") is not None:
        fields.update(runs.close_session(meta, now))
    try:
        runs.update_run_json(run_dir, fields, base=meta)
    except OSError:
        return None
    return fields["status"]


def stop_run(run: runs.RunInfo, *, force: bool = False, reason: str | None = None) -> str:
    """Ask a live run to stop: SIGTERM (the engine finishes its step and writes last.pt);
    ``force`` sends SIGKILL to its process group and to every other process of this run
    (the torchrun launcher and its workers). Returns what was done. ``reason``
    (``pruned``: a search's pruner) is written first (:func:`write_stop_request`): the run
    then ends with it as its status. A run started as a SLURM job (``slurm_job_id`` in
    run.json) is stopped through its scheduler (:func:`slr_tui.slurm.cancel`: SIGTERM to
    the job's processes, a queued job cancelled), wherever it runs.

    Only a process verified as this run's engine (its command line is ``-m engine train
    ... --run-dir <this folder>``, see :mod:`engine.procs`) is signalled: a stale run.json
    whose pid now belongs to another program is refused and the run marked ``lost``."""
    from engine import procs

    meta = run.refresh().meta
    raw = run.raw_status
    if raw == "finished":
        return f"run {run.id} is not running: it already finished"
    if raw not in runs.ACTIVE:
        return f"run {run.id} is not running (status: {run.status})"
    if reason is not None:
        try:
            write_stop_request(run.path, reason)
        except OSError as exc:
            raise _write_error(exc, run.path, "write the stop request") from None
    if meta.get("slurm_job_id"):
        from slr_tui import slurm

        return slurm.cancel(run, force=force)
    if meta.get("host") not in (None, runs.hostname()):
        raise runs.RunError(f"run {run.id} runs on {meta.get('host')}, not on this machine")
    found = procs.engine_pids(meta, run.path)
    if not found:
        pid = meta.get("pid")
        alive = runs.pid_alive(pid) if isinstance(pid, int) else False
        _mark_lost(run, f"pid {pid} is another program" if alive else f"pid {pid} is gone")
        if alive:
            raise runs.RunError(
                f"run {run.id}: pid {pid} is not this run's engine (a stale run.json?): "
                "nothing signalled; marked lost"
            )
        return f"run {run.id} is not running: its process is gone (marked lost)"
    if force:
        # the recorded group, and every process of this run: with --gpus N the launcher
        # and each worker run in sessions of their own
        groups = {found["pgid"]} if "pgid" in found else set()
        singles = {found["pid"]} if "pid" in found and "pgid" not in found else set()
        for p in procs.run_processes(run.path):
            with contextlib.suppress(OSError):
                (groups if os.getpgid(p) == p else singles).add(p)
        killed = 0
        try:
            for g in sorted(groups):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(g, signal.SIGKILL)
                    killed += 1
            for p in sorted(singles):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGKILL)
                    killed += 1
        except PermissionError as exc:
            raise runs.RunError(
                f"run {run.id}: not allowed to signal it ({exc.strerror})"
            ) from None
        if not killed:
            return f"run {run.id}: process already gone"
        return f"run {run.id}: killed (last.pt holds the last finished epoch)"
    try:
        os.kill(found.get("pid") or found["pgid"], signal.SIGTERM)
    except ProcessLookupError:
        return f"run {run.id}: process already gone"
    except PermissionError as exc:
        raise runs.RunError(f"run {run.id}: not allowed to signal it ({exc.strerror})") from None
    return f"run {run.id}: stop requested (finishing the current step, then writing last.pt)"


def _mark_lost(run: runs.RunInfo, why: str) -> None:
    """Record in run.json that the run's process is gone (or never was this run's)."""
    meta = runs.read_json(run.path / runs.RUN_JSON)
    if meta is None or meta.get("status") not in runs.ACTIVE:
        return
    try:
        meta = runs.update_run_json(
            run.path, {"status": "lost", "lost_reason": why, "lost_at": time.time()}, base=meta
        )
    except OSError:
        return
    run.meta = meta


def wait_status(run: runs.RunInfo, timeout: float, poll: float = 0.2) -> str:
    """Wait until the run leaves the active states or the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run.refresh().status not in runs.ACTIVE:
            break
        time.sleep(poll)
    return run.status


# --------------------------------------------------------------------------- jobs


@dataclass
class Job:
    """An engine job (``check``, ``extract``, ``predict``) and the folder it reports into.

    The engine runs in a session of its own (a Ctrl-C at the terminal reaches only the
    CLI, which forwards it: see :func:`follow`). A temporary folder is removed by
    :meth:`close`; use the job as a context manager to close it (a job still running then
    is killed)."""

    kind: str
    dir: Path
    proc: subprocess.Popen
    temporary: bool = False
    end: dict[str, Any] | None = None  # the job's "end" row, once read
    tail: runs.JsonlTail = field(init=False)

    def __post_init__(self) -> None:
        self.tail = runs.JsonlTail(self.dir / PROGRESS)

    @property
    def log_path(self) -> Path:
        return self.dir / JOB_LOG

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def poll(self) -> int | None:
        return self.proc.poll()

    def read_new(self) -> list[dict[str, Any]]:
        """The progress rows written since the last call."""
        rows = self.tail.read_new()
        for row in rows:
            if row.get("kind") == "end":
                self.end = row
        return rows

    def outcome(self) -> tuple[dict[str, Any] | None, str | None]:
        """After the process ended: ``(result, error)``. ``error`` is the job's one line
        (set, with a result, when extract ran but extracted nothing); a job that died
        without one gets its exit status and the last line of its log."""
        self.read_new()
        result = runs.read_json(self.dir / RESULT)
        if result is not None and set(result) == {"error"}:
            result = None
        if self.end is not None:
            return result, self.end.get("error")
        if result is not None and self.returncode == 0:
            return result, None
        last = runs.last_lines(self.log_path, LOG_TAIL_BYTES)
        detail = f": {last[-1].strip()}" if last else ""
        return (
            None,
            f"engine {self.kind} {_exit_text(self.returncode)}{detail} (log: {self.log_path})",
        )

    def close(self) -> None:
        """Kill the job if it still runs; remove a temporary folder, unless the job died on
        its own without saying why (its log is then all there is to read)."""
        killed = self.proc.poll() is None
        if killed:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.read_new()
        if self.temporary and (killed or self.end is not None or self.returncode == 0):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Job:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0 and -code in signal.valid_signals():
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def _job_folder(kind: str, job_dir: str | Path | None) -> tuple[Path, bool]:
    """``(folder, temporary)``: ``job_dir`` emptied of an earlier job's files, or a new
    temporary folder."""
    if job_dir is None:
        return Path(tempfile.mkdtemp(prefix=f"slr-{kind}-")), True
    d = Path(job_dir)
    d.mkdir(parents=True, exist_ok=True)
    for name in (JOB_CONFIG, PROGRESS, RESULT):
        with contextlib.suppress(FileNotFoundError):
            (d / name).unlink()
    return d, False


def _start_job(
    kind: str,
    args: list[str],
    job_dir: str | Path | None,
    cfg: RunConfig | None = None,
    result_flag: str = "--out",
) -> Job:
    """Write the config (when the job reads one) and start ``python -m engine KIND`` with
    its result (``result_flag``) and progress in the job folder, in a session of its own,
    with stop signals blocked until the engine has its handler (as :func:`spawn` does),
    output to the folder's log.txt."""
    d, temporary = _job_folder(kind, job_dir)
    cmd = [sys.executable, "-m", "engine", kind]
    try:
        if cfg is not None:
            runs.atomic_write_json(d / JOB_CONFIG, cfg.to_dict())
            cmd += ["--config", str(d / JOB_CONFIG)]
        cmd += [*args, result_flag, str(d / RESULT), "--progress", str(d / PROGRESS)]
        logf = open(d / JOB_LOG, "ab")  # noqa: SIM115 - handed to the child
    except OSError as exc:
        if temporary:
            shutil.rmtree(d, ignore_errors=True)
        raise _write_error(exc, d, f"write the {kind} job folder") from None
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        proc = _popen(cmd, logf)
    except BaseException:
        if temporary:
            shutil.rmtree(d, ignore_errors=True)
        raise
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        logf.close()
    return Job(kind, d, proc, temporary)


def start_check(cfg: RunConfig, job_dir: str | Path | None = None) -> Job:
    """``python -m engine check``: the report of what ``cfg``'s dataset holds."""
    return _start_job("check", [], job_dir, cfg)


def start_extract(
    cfg: RunConfig, out: str | Path, job_dir: str | Path | None = None, **options: Any
) -> Job:
    """``python -m engine extract`` into the landmark (or ROI) cache ``out``. ``options`` are that
    command's flags by their Python names (``workers=2``, ``max_glosses=100``, ...); None
    leaves one at its default; a bool is a switch (``rois=True`` -> ``--rois``)."""
    args = ["--out", str(out)]
    for key, value in options.items():
        if value is True:
            args.append(f"--{key.replace('_', '-')}")
        elif value is not None and value is not False:
            args += [f"--{key.replace('_', '-')}", str(value)]
    return _start_job("extract", args, job_dir, cfg, result_flag="--summary")


def start_predict(
    run_dir: str | Path,
    files: list[str | Path],
    job_dir: str | Path | None = None,
    top: int | None = None,
) -> Job:
    """``python -m engine predict``: classify ``files`` with the trained run ``run_dir``
    (``top``: the most likely classes to list, default 5)."""
    args = ["--run-dir", str(run_dir)] + (["--top", str(top)] if top is not None else [])
    return _start_job("predict", [*args, *map(str, files)], job_dir)


def start_eval(
    run_dir: str | Path,
    cfg: RunConfig,
    name: str,
    job_dir: str | Path | None = None,
    *,
    checkpoint: str = "best",
    splits: list[str] | None = None,
    skip_unknown: bool = False,
    overwrite: bool = False,
    aggregate: str | None = None,
    device: str | None = None,
) -> Job:
    """``python -m engine eval``: score the trained run ``run_dir`` (its ``checkpoint``,
    best or last) on the data section of ``cfg``, into ``RUN/eval-<name>/``."""
    args = ["--run-dir", str(run_dir), "--name", name, "--checkpoint", checkpoint]
    if splits:
        args += ["--splits", ",".join(splits)]
    if skip_unknown:
        args.append("--skip-unknown")
    if overwrite:
        args.append("--overwrite")
    if aggregate:
        args += ["--aggregate", aggregate]
    if device:
        args += ["--device", device]
    return _start_job("eval", args, job_dir, cfg)


def start_export(
    run_dir: str | Path,
    onnx: str | Path | None = None,
    job_dir: str | Path | None = None,
    **options: Any,
) -> Job:
    """``python -m engine export``: the trained run ``run_dir`` as ONNX at ``onnx`` (None:
    RUN/export/NAME.onnx), checked against PyTorch. ``options`` are that command's flags
    by their Python names (``atol=1e-4``, ``batches=3``, ``exporter="dynamo"``); None
    leaves one at its default."""
    args = ["--run-dir", str(run_dir)]
    if onnx is not None:
        args += ["--onnx", str(onnx)]
    for key, value in options.items():
        if value is not None:
            args += [f"--{key.replace('_', '-')}", str(value)]
    return _start_job("export", args, job_dir)


def extract_job_dir(out: str | Path) -> Path:
    """The job folder of an extraction the TUI starts into ``out``: beside it, since
    ``extract`` refuses a non-empty folder that is no cache yet."""
    out = Path(out)
    return out.with_name(out.name + EXTRACT_JOB_SUFFIX)


def follow(
    job: Job,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    poll_s: float = 0.1,
) -> int | None:
    """Wait for ``job`` to end, handing each progress row to ``on_row``; its exit code.
    When ``cancelled()`` turns true the job is killed and None comes back. A Ctrl-C here
    is forwarded to the job as SIGINT (extract then ends with a valid cache); a second
    one kills it."""
    interrupts = 0
    while True:
        try:
            code = job.poll()  # first: the rows read below are then at least this new
            for row in job.read_new():
                if on_row is not None:
                    on_row(row)
            if code is not None:
                return code
            if cancelled is not None and cancelled():
                job.close()
                return None
            time.sleep(poll_s)
        except KeyboardInterrupt:
            interrupts += 1
            with contextlib.suppress(ProcessLookupError):
                job.proc.send_signal(signal.SIGINT if interrupts == 1 else signal.SIGKILL)
