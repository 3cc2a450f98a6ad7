"""Is a pid really this run's engine? (no torch; cheap enough for a viewer's refresh)

run.json records the engine's pid and process group, but a pid can outlive its run: the
engine dies, the pid is recycled, and a stale run.json then names an unrelated process.
Before anyone signals a recorded pid, or reads it as "still running", the process's
command line must be the engine's for *this* run folder:

    python -m engine train --config ... --run-dir <this run dir> ...

directly, or under ``torch.distributed.run`` (``--gpus N``): the launcher's command line
holds the same ``-m engine train ... --run-dir`` arguments, and so do its workers'.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path
from typing import Any


def _cmdline(pid: int) -> list[str] | None:
    """The argv of a live process, or None (gone, a zombie, or unreadable)."""
    proc = Path(f"/proc/{pid}")
    if Path("/proc/self").exists():
        try:
            stat = (proc / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                return None
            raw = (proc / "cmdline").read_bytes()
        except (OSError, IndexError):
            return None
        if not raw:  # kernel threads, or a process exiting
            return None
        return raw.rstrip(b"\0").decode("utf-8", "surrogateescape").split("\0")
    try:  # no /proc (macOS): ps, without a cwd for relative paths
        out = subprocess.run(
            ["ps", "-p", str(pid), "-o", "args="],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out.split() if out else None


def _cwd(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def engine_run_dir_arg(argv: list[str]) -> str | None:
    """The ``--run-dir`` of an ``-m engine train`` command line, else None."""
    for i in range(len(argv) - 2):
        if argv[i] == "-m" and argv[i + 1] == "engine" and argv[i + 2] == "train":
            rest = argv[i + 3 :]
            for j, a in enumerate(rest):
                if a == "--run-dir" and j + 1 < len(rest):
                    return rest[j + 1]
                if a.startswith("--run-dir="):
                    return a.split("=", 1)[1]
            return None
    return None


def _same_dir(arg: str, cwd: str | None, run_dir: Path) -> bool:
    p = Path(arg).expanduser()
    if not p.is_absolute():
        if cwd is None:  # no cwd to resolve against: the tail of the path must match
            want = Path(os.path.abspath(run_dir)).parts
            got = Path(os.path.normpath(arg)).parts
            return bool(got) and ".." not in got and want[-len(got) :] == got
        p = Path(cwd) / p
    try:
        return os.path.samefile(p, run_dir)
    except OSError:
        return False


def is_engine(pid: Any, run_dir: str | Path) -> bool:
    """True when ``pid`` is alive and its command line is the engine training ``run_dir``."""
    try:
        pid = int(pid)
    except (TypeError, ValueError):
        return False
    if pid <= 0:
        return False
    argv = _cmdline(pid)
    if not argv:
        return False
    arg = engine_run_dir_arg(argv)
    return arg is not None and _same_dir(arg, _cwd(pid), Path(run_dir))


def pid_is_engine(meta: dict[str, Any], run_dir: str | Path) -> bool:
    """run.json's ``pid`` (or, while the torchrun launcher's workers start, its ``pgid``
    leader) is this run's engine: the run is really alive on this host."""
    return bool(engine_pids(meta, run_dir))


def run_processes(run_dir: str | Path) -> list[int]:
    """Every live process on this machine whose command line is the engine for
    ``run_dir``: the torchrun launcher and each worker (each in a session of its own), and
    their forked DataLoader workers. Linux only (``[]`` without /proc)."""
    proc = Path("/proc")
    if not (proc / "self").exists():
        return []
    me = os.getpid()
    out = []
    try:
        entries = list(proc.iterdir())
    except OSError:
        return []
    for entry in entries:
        if entry.name.isdigit() and int(entry.name) != me and is_engine(entry.name, run_dir):
            out.append(int(entry.name))
    return sorted(out)


def engine_pids(meta: dict[str, Any], run_dir: str | Path) -> dict[str, int]:
    """Which of run.json's ``pid`` and ``pgid`` are verified engine processes of this run:
    ``{"pid": N}`` and/or ``{"pgid": M}`` (the latter only when M leads its own process
    group, so signalling the group reaches the engine and nothing else)."""
    out: dict[str, int] = {}
    pid, pgid = meta.get("pid"), meta.get("pgid")
    if is_engine(pid, run_dir):
        out["pid"] = int(pid)
    if pgid is not None and is_engine(pgid, run_dir):
        with contextlib.suppress(OSError, ValueError, TypeError):
            if os.getpgid(int(pgid)) == int(pgid):
                out["pgid"] = int(pgid)
    return out
