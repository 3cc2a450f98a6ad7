"""Snapshots (pytest-textual-snapshot) of every screen on the fixed run folders of
tests/fixtures_runs.py, at 120x40 and 80x24. Time is frozen, local time is UTC, paths are
relative, NVML is off. Update with ``pytest tests/test_tui_snapshots.py --snapshot-update``
after looking at the report."""

from __future__ import annotations

import pytest

from slr_tui.screens.live import LiveRunScreen
from tests.fixtures_runs import build_runs, fixed_runs, make_app, settle, to_row, until

A, B = "20250101-090000-demo", "20250102-090000-demo"
RUNNING = "20250104-090000-demo"
WIDE, NARROW = (120, 40), (80, 24)


@pytest.fixture(scope="module")
def runs_template(tmp_path_factory):
    return build_runs(tmp_path_factory.mktemp("template") / "runs")["a"].parent


@pytest.fixture
def fx(tmp_path, monkeypatch, runs_template):
    with fixed_runs(tmp_path, monkeypatch, runs_template) as paths:
        yield paths


async def open_live(pilot, key: str, tab: str | None = None) -> None:
    await to_row(pilot, key)
    await pilot.press("enter")
    screen = pilot.app.screen
    assert isinstance(screen, LiveRunScreen)
    await until(pilot, lambda: screen.loaded)
    if (screen.path / "eval" / "report.json").is_file():
        await until(pilot, lambda: screen.eval_loaded)
    if tab:
        await pilot.press(tab)
        await pilot.pause(0.2)
    await settle(pilot)


def test_runs_wide(fx, snap_compare):
    async def before(pilot):
        await until(pilot, lambda: pilot.app.screen.scans >= 1)
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=WIDE, run_before=before)


def test_runs_narrow_with_marks(fx, snap_compare):
    async def before(pilot):
        await to_row(pilot, B)
        await pilot.press("space", "space")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=NARROW, run_before=before)


def test_live_finished_wide(fx, snap_compare):
    async def before(pilot):
        await open_live(pilot, A)

    assert snap_compare(make_app(), terminal_size=WIDE, run_before=before)


def test_live_finished_per_class(fx, snap_compare):
    async def before(pilot):
        await open_live(pilot, A, tab="3")

    assert snap_compare(make_app(), terminal_size=WIDE, run_before=before)


def test_live_running_hot_gpu_narrow(fx, snap_compare):
    async def before(pilot):
        await open_live(pilot, RUNNING)

    assert snap_compare(make_app(), terminal_size=NARROW, run_before=before)


def test_compare_wide(fx, snap_compare):
    async def before(pilot):
        await to_row(pilot, B)
        await pilot.press("space", "space", "c")
        await until(pilot, lambda: getattr(pilot.app.screen, "loads", 0) >= 1)
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=WIDE, run_before=before)


def test_thresholds_wide(fx, snap_compare):
    async def before(pilot):
        await to_row(pilot, A)
        await pilot.press("t")
        await until(pilot, lambda: getattr(pilot.app.screen, "loaded", False))
        await pilot.press("right", "right")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=WIDE, run_before=before)


def test_thresholds_narrow_test_split(fx, snap_compare):
    async def before(pilot):
        await to_row(pilot, A)
        await pilot.press("t")
        await until(pilot, lambda: getattr(pilot.app.screen, "loaded", False))
        await pilot.press("tab")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=NARROW, run_before=before)


def test_new_run_wide(fx, snap_compare):
    async def before(pilot):
        await pilot.press("n")
        await until(pilot, lambda: getattr(pilot.app.screen, "preset", None) is not None)
        await pilot.pause(0.4)  # the preview is debounced
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=WIDE, run_before=before)


def test_settings_narrow(fx, snap_compare):
    (fx["a"].parent.parent / "config.yaml").write_text(
        "dataset_roots:\n  wlasl: /nonexistent/WLASL2000\ngpu_temp_warn_c: 85\n"
    )

    async def before(pilot):
        await pilot.press("comma")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=NARROW, run_before=before)


def test_stop_confirm_narrow(fx, snap_compare):
    async def before(pilot):
        await to_row(pilot, RUNNING)
        await pilot.press("s")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=NARROW, run_before=before)
