"""The CPU budget: threads per run from the cores and the runs sharing them."""

from __future__ import annotations

import os

import pytest

from engine import threads


def test_thread_budget_divides_the_cores_between_runs_and_workers():
    assert threads.thread_budget(1, 1) == 1
    assert threads.thread_budget(2, 1) == 1  # one core is left to the rest of the machine
    assert threads.thread_budget(2, 2) == 1
    assert threads.thread_budget(16, 1) == 15
    assert threads.thread_budget(17, 4) == 4
    assert threads.thread_budget(17, 4, loader_workers=2) == 2
    assert threads.thread_budget(2, 8) == 1  # never below one thread
    assert threads.thread_budget(16, 1, loader_workers=20) == 1


def test_split_cores_gives_disjoint_groups():
    assert threads.split_cores([0, 1], 2) == [[0], [1]]
    assert threads.split_cores(list(range(16)), 3) == [
        list(range(0, 6)),
        list(range(6, 11)),
        list(range(11, 16)),
    ]
    assert threads.split_cores([0, 1], 4) == [[0], [1], [0], [1]]  # shared round-robin
    groups = threads.split_cores(list(range(7)), 7)
    assert sorted(c for g in groups for c in g) == list(range(7))


def test_parse_affinity():
    assert threads.parse_affinity("0,2-3") == [0, 2, 3]
    assert threads.parse_affinity("") is None and threads.parse_affinity("x") is None


def test_apply_budget_reads_the_sharing_runs(monkeypatch):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv(threads.ENV_RUNS, "64")
        got = threads.apply_budget(None, 0)
        assert got["num_threads"] == 1 and torch.get_num_threads() == 1
        assert got["concurrent_runs"] == 64
        got = threads.apply_budget(3, 0)
        assert got["num_threads"] == 3 and got["source"] == "training.num_threads"
    finally:
        torch.set_num_threads(before)


def test_default_workers_leave_small_shares_alone_and_grow_with_the_cores():
    assert [threads.default_workers(c) for c in (1, 2, 3, 4, 8, 16, 64)] == [0, 0, 0, 1, 2, 4, 4]
    assert threads.default_workers(16, concurrent_runs=4) == 1  # 4 cores each
    assert threads.default_workers(16, concurrent_runs=8) == 0  # 2 cores each


def test_apply_budget_resolves_null_workers_and_counts_them(monkeypatch):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    monkeypatch.delenv(threads.ENV_AFFINITY, raising=False)
    monkeypatch.setenv(threads.ENV_RUNS, "1")
    monkeypatch.setattr(threads, "available_cores", lambda: list(range(16)))
    try:
        got = threads.apply_budget(None, None)
        assert got["loader_workers"] == 4 and got["num_threads"] == 11  # 16 - 1 spare - 4
        got = threads.apply_budget(None, 0)  # set by the user: kept
        assert got["loader_workers"] == 0 and got["num_threads"] == 15
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity here")
def test_sweep_pins_each_run_and_records_its_threads(tmp_path):
    from typer.testing import CliRunner

    from engine import runs
    from slr_tui.cli import app
    from tests.conftest import TINY_SETS

    sets = []
    for s in [*TINY_SETS, "training.max_epochs=1"]:
        sets += ["--set", s]
    res = CliRunner().invoke(
        app,
        [
            "sweep",
            "--preset",
            "demo",
            "--runs-dir",
            str(tmp_path),
            "--grid",
            "optim.lr=1e-3,3e-3",
            "--parallel",
            "2",
            *sets,
        ],
    )
    assert res.exit_code == 0, res.output
    cores = threads.available_cores()
    groups = threads.split_cores(cores, 2)
    seen = []
    for r in runs.list_runs(tmp_path):
        t = r.meta["threads"]
        assert t["num_threads"] == threads.thread_budget(len(t["affinity"]), 1)
        seen.append(t["affinity"])
        assert "threads:" in (r.path / "log.txt").read_text()
    assert sorted(seen) == sorted(groups)


def test_a_run_started_beside_live_runs_takes_its_share_of_the_cores(tmp_path, monkeypatch):
    """`slr run` or a TUI launch while other runs train here: SLR_CONCURRENT_RUNS counts
    them all (a lost or finished run does not count); alone, the environment is untouched."""
    from slr_tui import launch
    from tests.fixtures_runs import write_run

    monkeypatch.delenv(threads.ENV_RUNS, raising=False)
    assert launch.shared_cpu_env(tmp_path) is None  # nothing here
    write_run(tmp_path, "20250101-090000-demo", status="finished")
    write_run(tmp_path, "20250101-091000-demo", status="lost")
    assert launch.shared_cpu_env(tmp_path) is None
    write_run(tmp_path, "20250101-092000-demo", status="running")  # this process: alive
    env = launch.shared_cpu_env(tmp_path)
    assert env is not None and env[threads.ENV_RUNS] == "2"
    assert threads.thread_budget(16, int(env[threads.ENV_RUNS])) == 7  # not all 15
    monkeypatch.setenv(threads.ENV_RUNS, "4")  # a caller that set it knows better
    assert launch.shared_cpu_env(tmp_path) is None
