"""CPU budget: how many intra-op threads a run gets, and which cores (torch-free).

torch's default (one thread per core) oversubscribes a machine as soon as anything else
runs: on 2 cores with a second process busy, an epoch was measured up to 40x slower than
with one thread. The engine therefore takes the cores it is given (its CPU affinity),
divides them by the runs that share them (``SLR_CONCURRENT_RUNS``, set by ``slr sweep
--parallel N``) after leaving one core to the rest of the machine, subtracts its
DataLoader workers, and uses that many threads
(``training.num_threads`` overrides). A launcher that pins a run to some cores passes them
in ``SLR_CPU_AFFINITY`` (``0,1``), applied before any thread pool exists.
"""

from __future__ import annotations

import os

ENV_RUNS = "SLR_CONCURRENT_RUNS"
ENV_AFFINITY = "SLR_CPU_AFFINITY"


def available_cores() -> list[int]:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def thread_budget(cores: int, concurrent_runs: int = 1, loader_workers: int = 0) -> int:
    """Intra-op threads for one of ``concurrent_runs`` runs on ``cores`` cores: one core is
    left to the rest of the machine (the OS, a viewer, the main process's data loading),
    the others are shared between the runs, less a core for each DataLoader worker where
    there are cores to spare; never below 1.

    The reserve is what keeps a run fast when anything else wakes up: on 2 cores with a
    second process busy, the demo took 226 s with 2 threads and 16 s with 1."""
    usable = max(int(cores) - 1, 1)
    share = usable // max(int(concurrent_runs), 1)
    return max(share - max(int(loader_workers), 0), 1)


def split_cores(cores: list[int], n: int) -> list[list[int]]:
    """``n`` disjoint, contiguous groups of ``cores`` (as even as possible); with fewer cores
    than runs, runs share single cores round-robin."""
    n = max(int(n), 1)
    if not cores:
        return [[] for _ in range(n)]
    if len(cores) < n:
        return [[cores[i % len(cores)]] for i in range(n)]
    size, extra = divmod(len(cores), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append(list(cores[start:end]))
        start = end
    return out


def parse_affinity(text: str | None) -> list[int] | None:
    """``"0,2-3"`` -> ``[0, 2, 3]``; None or junk -> None."""
    if not text:
        return None
    out: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                a, b = part.split("-", 1)
                out.extend(range(int(a), int(b) + 1))
            elif part:
                out.append(int(part))
    except ValueError:
        return None
    return sorted(set(out)) or None


def concurrent_runs_env() -> int:
    try:
        return max(int(os.environ.get(ENV_RUNS, "1")), 1)
    except ValueError:
        return 1


def default_workers(cores: int, concurrent_runs: int = 1) -> int:
    """DataLoader workers when ``data.num_workers`` is null: none on a share of fewer than
    4 cores (the main process keeps up there, and a worker would take a core from torch),
    else a quarter of the share, at most 4 (16 cores, one run: 4; 8 cores: 2)."""
    share = max(cores // max(concurrent_runs, 1), 1)
    return 0 if share < 4 else min(4, share // 4)


def apply_budget(num_threads: int | None, loader_workers: int | None) -> dict[str, object]:
    """Pin to ``SLR_CPU_AFFINITY`` when given, then choose the DataLoader workers (``None``:
    :func:`default_workers`) and set torch's intra-op threads. Returns what was chosen (for
    log.txt and run.json; ``loader_workers`` is what the loaders must use)."""
    import torch

    pinned = parse_affinity(os.environ.get(ENV_AFFINITY))
    if pinned and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, pinned)
        except OSError:
            pinned = None
    cores = available_cores()
    runs = 1 if pinned else concurrent_runs_env()
    workers = default_workers(len(cores), runs) if loader_workers is None else loader_workers
    n = num_threads or thread_budget(len(cores), runs, workers)
    torch.set_num_threads(n)
    return {
        "num_threads": n,
        "loader_workers": workers,
        "cores": len(cores),
        "concurrent_runs": runs,
        "affinity": pinned,
        "source": "training.num_threads" if num_threads else "budget",
    }
