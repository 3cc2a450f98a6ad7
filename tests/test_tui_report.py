"""Issue 12, items 3 and 4 in the TUI: the live screen's confusion heatmap and per-class
bars (``g`` on the per-class and confused tabs), and the report key (``R``) on the live and
compare screens, which writes `slr report` in a worker thread. Fake run folders from
tests/fixtures_runs.py; snapshots at 80x24 and 200x60."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine import evaluate, runs
from slr_tui.screens.compare import CompareScreen
from slr_tui.widgets.class_bars import bar, bars_text, sorted_rows
from slr_tui.widgets.heatmap import ConfusionHeatmap, classes_that_fit, heatmap_text
from tests.fixtures_runs import (
    fixed_runs,
    make_app,
    open_live,
    predictions,
    settle,
    until,
    write_run,
)

pytestmark = pytest.mark.anyio
BIG = "20250106-090000-wlasl300"


@pytest.fixture
def fx(tmp_path, monkeypatch):
    with fixed_runs(tmp_path, monkeypatch) as paths:
        yield paths


def big_run() -> Path:
    """A finished 300-class run with 900 test samples (relative path: ./runs)."""
    run = write_run(Path("runs"), BIG, with_eval=False, num_classes=300, t0=1736154000.0)
    names = [f"gloss{i:03d}" for i in range(300)]
    splits = {"test": predictions(300, 900, 7, skill=2.0)}
    evaluate.write_eval(run / runs.EVAL_DIR, splits, names, evaluate.default_thresholds())
    return run


# --------------------------------------------------------------------------- widgets

# off-diagonal counts: (0,1)=5, (2,3)=4, (1,0)=3, (4,5)=2
CM = np.array(
    [
        [10, 5, 0, 0, 0, 0],
        [3, 10, 0, 0, 0, 0],
        [0, 0, 10, 4, 0, 0],
        [0, 0, 0, 10, 0, 0],
        [0, 0, 0, 0, 10, 2],
        [0, 0, 0, 0, 0, 10],
    ]
)
NAMES = ["c0", "c1", "c2", "c3", "c4", "c5"]


def test_heatmap_shows_the_most_confused_classes_that_fit():
    # labels 2 wide: 4 + 2 + 1 = 7 columns of labels, then 3 per class
    assert classes_that_fit(7 + 3 * 3, 2) == 3 and classes_that_fit(200, 2) == 30
    text = heatmap_text(CM, NAMES, "test", 7 + 3 * 3).plain
    lines = text.splitlines()
    assert lines[0].startswith("test: the 3 most confused of 6 classes (8 of 14 mistakes)")
    rows = [ln.split()[1] for ln in lines[2:5]]  # 8 = (0,1) + (1,0); (2,3) leaves it
    assert rows == ["c0", "c1", "c2"]  # (0,1)=5 brings c0, c1; (2,3)=4 brings c2: full
    # row-normalised percent: c0 is 10/15 right, 5/15 taken for c1
    assert lines[2].split()[2:] == ["67", "33", "·"]
    full = heatmap_text(CM, NAMES, "val", 80).plain.splitlines()
    assert full[0].startswith("val: confusion matrix, 6 classes")
    assert [ln.split()[1] for ln in full[2:8]] == NAMES


def test_class_bars_are_sorted_worst_first_with_support():
    rows = [
        {"class": "a", "support": 4, "accuracy": 1.0},
        {"class": "b", "support": 2, "accuracy": 0.5},
        {"class": "c", "support": 0, "accuracy": None},  # absent from the split
        {"class": "d", "support": 8, "accuracy": 0.5},
    ]
    assert [r["class"] for r in sorted_rows(rows)] == ["d", "b", "a"]
    assert bar(1.0, 10) == "█" * 10 and bar(0.5, 10) == "█" * 5 and bar(0.0625, 2) == "▏"
    lines = bars_text(rows, "test", 40).plain.splitlines()
    assert lines[0].startswith("test: per-class accuracy, worst first · 3 classes")
    assert lines[1].startswith("d ") and lines[1].endswith("0.500  n=8")
    assert all(len(ln) <= 40 for ln in lines[1:])


# --------------------------------------------------------------------------- screens


async def test_g_switches_the_tabs_to_the_heatmap_and_bars(fx):
    async with make_app().run_test(size=(120, 40)) as pilot:
        screen = await open_live(pilot, fx["a"])
        await pilot.press("4")
        await until(pilot, lambda: screen.query("#confused-table") and screen._heat is not None)
        assert screen.query_one("#confused-table").display
        await pilot.press("g")
        await pilot.pause(0.1)
        assert not screen.query_one("#confused-table").display
        assert screen.query_one("#heatmap-scroll").display
        heat = screen.query_one("#heatmap", ConfusionHeatmap)
        assert heat.shown == list(range(10))  # ten classes fit 120 columns
        assert heat.cm.sum() == 60 and heat.cm[2, 3] >= 1  # the planted confusion
        await pilot.press("3")
        await until(pilot, lambda: screen._bars is not None and screen._bars.rows)
        assert screen.query_one("#class-bars-scroll").display
        assert not screen.query_one("#per-class-table").display
        accs = [r["accuracy"] for r in sorted_rows(screen._bars.rows)]
        assert accs == sorted(accs)
        await pilot.press("g")
        assert screen.query_one("#per-class-table").display


async def test_heatmap_of_300_classes_shows_the_most_confused_that_fit(fx):
    run = big_run()
    async with make_app().run_test(size=(80, 24)) as pilot:
        screen = await open_live(pilot, run)
        await pilot.press("4", "g")
        await until(pilot, lambda: screen._heat is not None and screen._heat.shown)
        heat = screen._heat
        _, y, probs, _ = evaluate.load_predictions(run / "eval", "test")
        from slr_tui.report.confusion import confusion_counts, most_confused_classes

        cm = confusion_counts(y, probs.argmax(1), 300)
        n = classes_that_fit(heat.content_region.width, 8)
        assert 10 <= n < 30 and heat.shown == most_confused_classes(cm, n)


async def test_report_key_on_the_live_screen_writes_run_report(fx):
    async with make_app().run_test(size=(120, 40)) as pilot:
        screen = await open_live(pilot, fx["b"])
        await pilot.press("R")
        await until(pilot, lambda: screen.report_line is not None, timeout=60, what="report")
        out = fx["b"] / "report"
        assert screen.report_line == f"report written to {out / 'index.html'}"
        assert (out / fx["b"].name / "confusion.png").is_file()
        assert (out / fx["b"].name / "summary.tex").is_file()
        # a run that failed early: curves only, the rest skipped, no error
        failed = await open_live(pilot, fx["failed"])
        await pilot.press("R")
        await until(pilot, lambda: failed.report_line is not None, timeout=60, what="report")
        assert failed.report_line.startswith("report written to")


async def test_report_key_on_the_compare_screen_writes_a_comparison(fx):
    async with make_app().run_test(size=(120, 40)) as pilot:
        screen = CompareScreen([fx["a"], fx["b"]])
        await pilot.app.push_screen(screen)
        await until(pilot, lambda: screen.loads >= 1)
        await pilot.press("R")
        await until(pilot, lambda: screen.report_line is not None, timeout=60, what="report")
        out = Path("runs") / "reports" / "compare-20250104-091500"  # the frozen clock, UTC
        assert screen.report_line == f"report written to {out / 'index.html'}"
        assert (out / "compare" / "metrics.tex").is_file()
        assert (out / fx["a"].name / "loss.pdf").is_file()
        # the reports folder is not a run
        assert "reports" not in [r.path.name for r in runs.list_runs("runs")]


async def test_report_key_is_off_in_read_only_mode(fx):
    async with make_app(read_only=True).run_test(size=(120, 40)) as pilot:
        screen = await open_live(pilot, fx["a"])
        await pilot.press("R")
        await pilot.pause(0.3)
        assert screen.report_line is None and not (fx["a"] / "report").exists()


# --------------------------------------------------------------------------- snapshots


def _snapshot(snap_compare, path: Path, size: tuple[int, int], keys: tuple[str, ...]) -> bool:
    async def before(pilot):
        await open_live(pilot, path)
        await pilot.press(*keys)
        await settle(pilot)

    return snap_compare(make_app(), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
def test_snapshot_confusion_heatmap(fx, snap_compare, size):
    assert _snapshot(snap_compare, fx["a"], size, ("4", "g"))


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
def test_snapshot_per_class_bars(fx, snap_compare, size):
    assert _snapshot(snap_compare, fx["a"], size, ("3", "g"))


def test_snapshot_heatmap_of_300_classes_wide(fx, snap_compare):
    assert _snapshot(snap_compare, big_run(), (200, 60), ("4", "g"))
