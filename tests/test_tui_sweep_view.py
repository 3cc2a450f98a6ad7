"""The grid-sweep view (issue 13, "a sweep view with every trial ranked live and the swept
values as columns"): `w` on a run of a `slr sweep --grid` opens every member of its sweep,
ranked by the figure each run monitors (best first, as the run says: higher or lower),
one column per swept key, status, epoch and duration; it follows the runs as they change."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import runs
from slr_tui.screens.live import LiveRunScreen
from slr_tui.screens.sweep import (
    GridSweepScreen,
    SweepScreen,
    grid_rows,
    key_labels,
    rank_members,
    swept_keys,
)
from tests.fixtures_runs import (
    NOW,
    T0,
    fixed_runs,
    make_app,
    settle,
    to_row,
    until,
    write_run,
    write_sweep,
)

pytestmark = pytest.mark.anyio

SWEEP = "sweep-20250104-080000-error-recognition-bigru"
IDS = [f"20250104-08{i}000-error-recognition-bigru" for i in range(4)]
GRID2 = "sweep-20250106-090000-demo"


@pytest.fixture
def anyio_backend():
    return "asyncio"


def write_grid2(root: Path) -> list[Path]:
    """A finished 2x2 grid of the demo preset over lr and batch size, monitored on val
    loss (lower is better), each run a different final skill."""
    out = []
    combos = [("1e-3", 8), ("1e-3", 16), ("3e-3", 8), ("3e-3", 16)]
    for i, ((lr, bs), skill) in enumerate(zip(combos, (0.7, 0.9, 0.8, 0.6), strict=True)):
        d = write_run(
            root,
            f"20250106-09{i}000-demo",
            t0=T0 + 5 * 86400 + i * 600,
            sets=[f"optim.lr={lr}", f"data.batch_size={bs}"],
            best_acc=skill,
            with_eval=False,
            seed=i,
            extra_meta={
                "sweep": GRID2,
                "sweep_params": {"optim.lr": lr, "data.batch_size": str(bs)},
                "monitor": "val_loss",
                "monitor_mode": "min",
                "best_metric": 1.0 - skill,  # lower is better: the 0.9 run is first
            },
        )
        out.append(d)
    return out


@pytest.fixture
def fx(tmp_path, monkeypatch):
    with fixed_runs(tmp_path, monkeypatch) as paths:
        root = tmp_path / "runs"
        paths["sweep"] = write_sweep(root)
        paths["grid2"] = write_grid2(root)
        yield paths


def cells(table, row: int) -> list[str]:
    return [str(c) for c in table.get_row_at(row)]


def headers(table) -> list[str]:
    return [str(c.label) for c in table.columns.values()]


# --------------------------------------------------------------------------- ranking


def test_members_rank_by_their_monitor_in_its_direction(fx):
    grid = [runs.load_run(p) for p in fx["grid2"]]
    ranked = rank_members(grid)
    assert [r.meta["best_metric"] for r in ranked] == pytest.approx([0.1, 0.2, 0.3, 0.4])
    sweep = [runs.load_run(p) for p in fx["sweep"]]
    best = [r.meta["best_metric"] for r in rank_members(sweep)]
    assert best == sorted(best, reverse=True)  # F1: higher is better
    assert swept_keys(grid) == ["optim.lr", "data.batch_size"]
    assert key_labels(["optim.lr", "data.batch_size"]) == ["lr", "batch_size"]
    assert key_labels(["model.dropout", "data.dropout"]) == ["model.dropout", "data.dropout"]


def test_a_member_without_a_value_yet_ranks_last(fx):
    infos = [runs.load_run(p) for p in fx["grid2"]]
    infos[0].meta["best_metric"] = None  # the best one, before its first epoch
    rows = grid_rows(infos, NOW)
    assert rows[-1]["key"] == fx["grid2"][0].name and rows[-1]["rank"] is None
    assert [r["rank"] for r in rows[:3]] == [1, 2, 3]
    assert rows[0]["params"] == {"optim.lr": "1e-3", "data.batch_size": "16"}


# --------------------------------------------------------------------------- the screen


async def open_view(pilot, key: str) -> GridSweepScreen:
    await to_row(pilot, key)
    await pilot.press("w")
    screen = pilot.app.screen
    assert isinstance(screen, GridSweepScreen)
    await until(pilot, lambda: screen.loads >= 1, what="the sweep loaded")
    await pilot.pause(0.1)
    return screen


async def test_w_on_a_grid_member_ranks_the_sweep_live(fx):
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await open_view(pilot, IDS[1])
        assert not isinstance(screen, SweepScreen)
        table = screen.query_one("#gsweep-table")
        assert headers(table) == [
            "#",
            "lr",
            "status",
            "epoch",
            "best F1",
            "best ep",
            "duration",
            "run",
        ]
        assert table.row_count == 4
        rows = [cells(table, i) for i in range(4)]
        best = [float(r[4]) for r in rows]
        assert best == sorted(best, reverse=True)
        assert [r[0] for r in rows] == ["1", "2", "3", "4"]
        by_id = {r[7]: r for r in rows}
        for i, lr in enumerate(("1e-4", "3e-4", "5e-4", "1e-3")):
            assert by_id[IDS[i]][1] == lr  # the swept value of each member
        assert by_id[IDS[3]][2] == "running" and by_id[IDS[3]][3] == "4/10"
        assert by_id[IDS[0]][2] == "finished" and by_id[IDS[0]][6] == "5:05"
        title = str(screen.query_one("#gsweep-title").render())
        assert SWEEP in title and "4 runs" in title and "best F1" in title
        assert "3 finished, 1 running" in title

        # live: the running member's next epoch puts it on top; the cursor stays on its run
        table.move_cursor(row=[r[7] for r in rows].index(IDS[0]))
        meta = runs.read_meta(fx["sweep"][3])
        runs.write_run_json(
            fx["sweep"][3] / runs.RUN_JSON, {**meta, "epoch": 5, "best_metric": 0.99}
        )
        await until(pilot, lambda: cells(table, 0)[7] == IDS[3], timeout=10, what="the new ranking")
        assert cells(table, 0)[3] == "5/10" and cells(table, 0)[4] == "0.9900"
        assert screen.current()["key"] == IDS[0]

        # enter: that run's live screen; escape comes back
        await pilot.press("enter")
        assert isinstance(app.screen, LiveRunScreen) and app.screen.path.name == IDS[0]
        await pilot.press("escape")
        assert app.screen is screen
        await pilot.press("escape")
        assert not isinstance(app.screen, GridSweepScreen)


async def test_two_swept_keys_are_two_columns_and_lower_loss_ranks_first(fx):
    async with make_app().run_test(size=(120, 30)) as pilot:
        screen = await open_view(pilot, "20250106-092000-demo")
        table = screen.query_one("#gsweep-table")
        assert headers(table)[:5] == ["#", "lr", "batch_size", "status", "epoch"]
        assert "best loss" in headers(table)
        rows = [cells(table, i) for i in range(table.row_count)]
        assert [(r[1], r[2]) for r in rows] == [
            ("1e-3", "16"),
            ("3e-3", "8"),
            ("1e-3", "8"),
            ("3e-3", "16"),
        ]
        assert [float(r[5]) for r in rows] == pytest.approx([0.1, 0.2, 0.3, 0.4])
        assert all(r[8].startswith("20250106-09") for r in rows)  # only this sweep's runs


async def test_w_on_a_run_of_no_sweep_only_says_so(fx):
    async with make_app().run_test(size=(120, 30)) as pilot:
        await to_row(pilot, "20250101-090000-demo")
        await pilot.press("w")
        await pilot.pause(0.2)
        assert not isinstance(pilot.app.screen, (GridSweepScreen, SweepScreen))


async def test_compare_from_the_sweep_view_opens_every_member(fx):
    from slr_tui.screens.compare import CompareScreen

    async with make_app().run_test(size=(120, 30)) as pilot:
        await open_view(pilot, IDS[0])
        await pilot.press("c")
        compare = pilot.app.screen
        assert isinstance(compare, CompareScreen)
        assert sorted(p.name for p in compare.paths) == IDS


# --------------------------------------------------------------------------- snapshots


@pytest.mark.parametrize("size", [(80, 24), (200, 60)], ids=["80x24", "200x60"])
def test_snapshot_grid_sweep_view(fx, snap_compare, size):
    async def before(pilot):
        await open_view(pilot, IDS[2])
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=before)
