"""The runs list at scale: the index re-reads only the run.json files that changed, the
runs screen redraws only the rows that changed, keeps its cursor (and marks) on the same
run while the list re-sorts, and its "best" is the chosen checkpoint's monitored figure."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine import runs
from tests.fixtures_runs import T0, make_app, until

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


def _meta(i: int, **kw: Any) -> dict[str, Any]:
    meta = {
        "id": f"run{i:04d}",
        "preset": "demo",
        "dataset": "synthetic10",
        "status": "finished",
        "host": runs.hostname(),
        "started_at": T0 + 60.0 * i,
        "ended_at": T0 + 60.0 * i + 30,
        "epoch": 1 + i % 7,
        "max_epochs": 10,
        "monitor": "val_acc",
        "monitor_mode": "max",
        "best_metric": round(0.5 + 0.01 * (i % 40), 4),
        "best_val_acc": 0.99,  # the best of any epoch: never what the list shows
    }
    meta.update(kw)
    return meta


def _write(root: Path, i: int, **kw: Any) -> Path:
    d = root / f"run{i:04d}"
    d.mkdir(parents=True, exist_ok=True)
    runs.write_run_json(d / runs.RUN_JSON, _meta(i, **kw))
    return d


def _bump(path: Path, **kw: Any) -> None:
    """Rewrite run.json with ``kw`` and a new mtime (a coarse clock must not hide it)."""
    meta = runs.read_json(path / runs.RUN_JSON) or {}
    meta.update(kw)
    runs.write_run_json(path / runs.RUN_JSON, meta)
    st = os.stat(path / runs.RUN_JSON)
    os.utime(path / runs.RUN_JSON, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))


# --------------------------------------------------------------------------- RunIndex


def test_index_rereads_only_what_changed(tmp_path):
    root = tmp_path / "runs"
    for i in range(1000):
        _write(root, i)
    (root / "not-a-run").mkdir()  # no run.json: not listed
    index = runs.RunIndex(root)
    first = index.scan()
    assert len(first) == 1000 and index.reads == 1000
    assert [r.id for r in first] == [r.id for r in runs.list_runs(root)]  # newest first

    again = index.scan()
    assert index.reads == 1000 and index.changed == set() and index.removed == set()
    assert all(a is b for a, b in zip(first, again, strict=True))  # the same RunInfo objects

    _bump(root / "run0500", status="failed", epoch=9)
    _write(root, 2000)  # new
    shutil.rmtree(root / "run0007")  # deleted
    third = index.scan()
    assert index.reads == 1002
    assert index.changed == {"run0500", "run2000"} and index.removed == {"run0007"}
    by_id = {r.id: r for r in third}
    assert "run0007" not in by_id and "run2000" in by_id and len(third) == 1000
    assert by_id["run0500"].meta["status"] == "failed" and by_id["run0500"].epoch == 9
    assert third[0].id == "run2000"  # newest first


def test_index_of_a_missing_root_is_empty(tmp_path):
    index = runs.RunIndex(tmp_path / "nowhere")
    assert index.scan() == [] and runs.list_runs(tmp_path / "nowhere") == []


# --------------------------------------------------------------------------- the screen


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLR_CONFIG", str(tmp_path / "config.yaml"))
    root = tmp_path / "runs"
    for i in range(40):
        _write(root, i)
    return root


async def _rescan(pilot: Any) -> None:
    screen = pilot.app.screen
    n = screen.scans
    screen.poll()
    await until(pilot, lambda: screen.scans > n, what="a scan")
    await pilot.pause()


def _count(table: Any, monkeypatch: Any) -> dict[str, list]:
    calls: dict[str, list] = {"update_cell": [], "add_row": [], "clear": []}
    for name in calls:
        orig = getattr(table, name)

        def spy(*a: Any, _orig: Any = orig, _name: str = name, **kw: Any) -> Any:
            calls[_name].append(a)
            return _orig(*a, **kw)

        monkeypatch.setattr(table, name, spy)
    return calls


async def test_screen_redraws_only_changed_rows(store, monkeypatch):
    app = make_app(runs_poll_s=3600)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.screen.table
        await until(pilot, lambda: table.row_count == 40, what="40 rows")
        builds, fills = table.cell_builds, table.full_fills
        calls = _count(table, monkeypatch)
        await _rescan(pilot)  # nothing changed: nothing formatted, nothing touched
        assert table.cell_builds == builds and table.full_fills == fills
        assert calls == {"update_cell": [], "add_row": [], "clear": []}

        _bump(store / "run0003", epoch=5)  # one row's epoch cell
        await _rescan(pilot)
        assert table.cell_builds == builds + 1 and table.full_fills == fills
        assert [str(a[0]) for a in calls["update_cell"]] == ["run0003"]
        assert calls["add_row"] == [] and calls["clear"] == []

        _write(store, 100)  # a new run is added in place, not by a refill
        shutil.rmtree(store / "run0010")
        await _rescan(pilot)
        assert table.full_fills == fills and calls["clear"] == []
        assert table.row_count == 40
        assert table.shown_keys[0] == "run0100" and "run0010" not in table.shown_keys
        assert table.shown_keys == [r["key"] for r in table._ordered()]


async def test_cursor_and_marks_stay_on_the_run_when_the_list_resorts(store):
    app = make_app(runs_poll_s=3600)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.screen.table
        await until(pilot, lambda: table.row_count == 40, what="40 rows")
        table.sort_by("epoch_s", reverse=True)
        await pilot.pause()
        target = table.shown_keys[10]
        table.select_key(target)
        await pilot.pause()
        above = table.shown_keys[2]
        # a run above the cursor drops to the bottom (its epoch falls), another rises
        _bump(store / above, epoch=0, status="failed")
        _bump(store / table.shown_keys[30], epoch=9)
        fills = table.full_fills
        await _rescan(pilot)
        assert table.shown_keys.index(above) > 30  # it did move
        assert table.full_fills == fills  # re-ordered in place
        assert table.current_key() == target
        assert table.cursor_row == table.shown_keys.index(target)
        await pilot.press("space")
        assert table.marked == {target}

        # a run gets more epochs each scan while the cursor sits below it: marks still hit
        for e in (2, 4, 6, 8):
            key = table.current_key()
            _bump(store / table.shown_keys[-1], epoch=e + 1)
            await _rescan(pilot)
            assert table.current_key() == key
            await pilot.press("space")
            assert key in table.marked


async def test_best_is_the_checkpoints_monitored_figure(store):
    app = make_app(runs_poll_s=3600)
    async with app.run_test(size=(160, 40)) as pilot:
        table = app.screen.table
        await until(pilot, lambda: table.row_count == 40, what="40 rows")
        rows = {r["key"]: r for r in table.rows_data}
        # best_val_acc (0.99, the best of any epoch) is not what the list shows
        assert rows["run0005"]["best"] == _meta(5)["best_metric"]
        assert not table.labelled
        assert [c.label for c in table.cols if c.key == "best"] == ["best acc"]

        # every run monitors F1: the header says so
        for i in range(40):
            _bump(store / f"run{i:04d}", monitor="val_macro_f1")
        await _rescan(pilot)
        assert [c.label for c in table.cols if c.key == "best"] == ["best F1"]

        # mixed monitors: each value says what it is
        _bump(store / "run0001", monitor="val_loss", monitor_mode="min", best_metric=0.4321)
        await _rescan(pilot)
        assert table.labelled
        rows = {r["key"]: r for r in table.rows_data}
        assert rows["run0001"]["best_s"] == "0.4321 loss"
        assert rows["run0002"]["best_s"] == f"{_meta(2)['best_metric']:.4f} F1"


async def test_a_running_runs_duration_ticks_in_steps(store, monkeypatch):
    """A running run's duration cell moves in steps of ACTIVE_TICK_S: a scan between steps
    touches no cell (every changed cell repaints the whole visible table)."""
    from slr_tui.screens.runs import ACTIVE_TICK_S

    start = T0 + 60.0 * 50
    _write(store, 50, status="running", pid=os.getpid(), ended_at=None, started_at=start)
    clock = {"now": start + 100.0}
    app = make_app(runs_poll_s=3600, clock=lambda: clock["now"])
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.screen.table
        await until(pilot, lambda: table.row_count == 41, what="41 rows")
        calls = _count(table, monkeypatch)
        row = next(r for r in table._ordered() if r["key"] == "run0050")
        assert row["duration"] == 100.0
        clock["now"] += ACTIVE_TICK_S - 3  # 102 s: the same step
        await _rescan(pilot)
        assert calls["update_cell"] == []
        clock["now"] += 3  # 105 s: the next step
        await _rescan(pilot)
        assert {str(a[0]) for a in calls["update_cell"]} == {"run0050"}
        row = next(r for r in table._ordered() if r["key"] == "run0050")
        assert row["duration"] == 100.0 + ACTIVE_TICK_S
