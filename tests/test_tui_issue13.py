"""Issue 13, "wrong or misleading" items 1-4 and 8 (compare labels, every GPU, the monitored
metric of binary runs, CTC losses and blank share, compare's config diff and running runs),
through Textual's Pilot on fake run folders (tests/fixtures_runs.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from slr_tui.screens.compare import CompareScreen, diff_cells, id_labels, run_labels
from slr_tui.widgets.gpu_panel import GpuPanel
from slr_tui.widgets.metric_plot import MetricPlot
from slr_tui.widgets.sortable_table import SortableTable
from tests.fixtures_runs import (
    fixed_runs,
    make_app,
    open_live,
    settle,
    until,
    write_binary_run,
    write_ctc_run,
    write_gpus8_system,
    write_run,
    write_sweep,
)

pytestmark = pytest.mark.anyio

SWEEP_IDS = [f"20250104-08{i}000-error-recognition-bigru" for i in range(4)]


@pytest.fixture
def fx(tmp_path, monkeypatch):
    with fixed_runs(tmp_path, monkeypatch) as paths:
        yield paths


async def open_compare(pilot, paths: list[Path]) -> CompareScreen:
    screen = CompareScreen(paths)
    await pilot.app.push_screen(screen)
    await until(pilot, lambda: screen.loads >= 1, what="compare loaded")
    await pilot.pause(0.2)
    return screen


def cells(table, row: int) -> list[str]:
    return [str(c) for c in table.get_row_at(row)]


def row_of(table, label: str) -> list[str]:
    for i in range(table.row_count):
        if str(table.get_row_at(i)[0]) == label:
            return cells(table, i)[1:]
    raise AssertionError(f"no row {label!r}")


# --------------------------------------------------------------------------- 1: labels


def test_labels_stay_distinct_and_are_never_cut_from_the_left():
    ids = SWEEP_IDS
    labels = id_labels(ids)
    assert labels == ["080000", "081000", "082000", "083000"]
    # ids that fit stay whole
    assert id_labels(["20250101-090000-demo", "20250102-090000-demo"]) == [
        "20250101-090000-demo",
        "20250102-090000-demo",
    ]
    # swept values win over ids; only the keys that differ; compact keys
    metas = [{"sweep_params": {"optim.lr": v, "data.batch_size": "32"}} for v in ("5e-4", "1e-3")]
    assert run_labels(ids[:2], metas) == ["lr=5e-4", "lr=1e-3"]
    # an id that is another's start, and repeats: still distinct, nothing starts with "…"
    long = SWEEP_IDS[0]
    got = run_labels([long, long + "-2", long], [{}, {}, {}])
    assert len(set(got)) == 3 and not any(x.startswith("…") for x in got)


async def test_compare_of_a_sweep_labels_runs_by_swept_value(fx):
    paths = write_sweep(Path("runs"))
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_compare(pilot, paths)
        want = ["lr=1e-4", "lr=3e-4", "lr=5e-4", "lr=1e-3"]
        plot = screen.query_one("#compare-plot", MetricPlot)
        assert [c.label for c in plot.curves] == want
        for tid in ("#summary-table", "#diff-table"):
            t = screen.query_one(tid)
            assert [str(c.label) for c in t.columns.values()][1:] == want


async def test_compare_without_sweep_values_labels_by_differing_id_part(fx):
    paths = [
        write_run(Path("runs"), rid, seed=i, with_eval=False) for i, rid in enumerate(SWEEP_IDS[:2])
    ]
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_compare(pilot, paths)
        plot = screen.query_one("#compare-plot", MetricPlot)
        assert [c.label for c in plot.curves] == ["080000", "081000"]
        diff = screen.query_one("#diff-table")
        assert [str(c.label) for c in diff.columns.values()][1:] == ["080000", "081000"]


# --------------------------------------------------------------------------- 2: GPUs


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (200, 60)])
async def test_every_gpu_of_an_8_gpu_box_is_shown(fx, size):
    run = write_run(
        Path("runs"), "20250112-090000-demo", status="running", epochs=5, with_eval=False
    )
    write_gpus8_system(run)
    app = make_app()
    async with app.run_test(size=size) as pilot:
        screen = await open_live(pilot, run)
        panel = screen.query_one(GpuPanel)
        await until(pilot, lambda: len(panel.gpus) == 8, what="8 GPUs")
        await pilot.pause(0.1)
        text = panel.render().plain
        lines = text.splitlines()
        assert len(lines) <= panel.size.height  # nothing below the panel's edge
        assert lines[0].startswith("2 HOT 6:83° 7:80°")  # the warning on top
        for i in range(8):  # every GPU, the hot ones too
            assert any(f"{i} {55 + i}°" in ln or f"{i} 8" in ln for ln in lines[1:]), (i, text)
        assert "6 83°" in text and "7 80°" in text
        assert "cooler" not in text


def test_gpu_panel_keeps_hot_gpus_when_even_columns_do_not_fit():
    from textual.geometry import Size

    gpus = [{"index": i, "temp_c": 50 + i, "util_pct": 50} for i in range(16)]
    gpus[3]["temp_c"] = 90
    panel = GpuPanel(warn_c=80)
    panel.gpus, panel.source = gpus, "x"
    panel._size = Size(10, 5)  # noqa: SLF001 - a panel too small for 16 GPUs
    out = panel._compact(10, 5).plain  # noqa: SLF001
    assert out.splitlines()[0].startswith("1 HOT 3:90")
    assert "3 90°" in out and "+" in out and "cooler" in out


# --------------------------------------------------------------------------- 3: binary


async def test_binary_live_screen_shows_the_monitored_f1(fx):
    run = write_binary_run(Path("runs"))
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_live(pilot, run)
        acc = screen.query_one("#acc-plot", MetricPlot)
        assert [c.label for c in acc.curves] == ["val acc", "val F1"]
        assert acc.plot_title == "accuracy / F1"
        assert "top-5" not in acc.plot_title
        table = screen.query_one("#epoch-table", SortableTable)
        heads = [str(c.label) for c in table.columns.values()]
        assert "F1" in heads and "top-5" not in heads
        # the star follows F1 (best at epoch 4) while accuracy keeps rising
        stars = [str(table.get_row_at(i)[0]).strip() for i in range(table.row_count)]
        assert stars[3] == "4 *" and not any(s.endswith("*") for s in stars[4:])
        f1 = [float(str(table.get_row_at(i)[heads.index("F1")])) for i in range(table.row_count)]
        assert max(f1) == f1[3]


async def test_multiclass_live_screen_keeps_top5(fx):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_live(pilot, fx["a"])
        acc = screen.query_one("#acc-plot", MetricPlot)
        assert [c.label for c in acc.curves] == ["val acc", "val top-5"]
        table = screen.query_one("#epoch-table", SortableTable)
        heads = [str(c.label) for c in table.columns.values()]
        assert "top-5" in heads and "F1" not in heads and "blank" not in heads


async def test_compare_opens_on_the_monitored_metric(fx):
    paths = write_sweep(Path("runs"))
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_compare(pilot, paths)
        assert screen.metric == "val_macro_f1"
        assert screen.query_one("#compare-plot", MetricPlot).plot_title == "val macro F1"
        await pilot.press("escape")
        screen = await open_compare(pilot, [fx["a"], fx["b"]])  # monitored on val_acc
        assert screen.metric == "val_acc"


# --------------------------------------------------------------------------- 4: CTC


async def test_ctc_losses_on_two_axes_and_blank_share_column(fx):
    run = write_ctc_run(Path("runs"))
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_live(pilot, run)
        loss = screen.query_one("#loss-plot", MetricPlot)
        assert [(c.label, c.yside) for c in loss.curves] == [
            ("train CTC", "left"),
            ("val NLL", "right"),
        ]
        assert "CTC" in loss.plot_title and "NLL" in loss.plot_title
        table = screen.query_one("#epoch-table", SortableTable)
        heads = [str(c.label) for c in table.columns.values()]
        assert "blank" in heads
        col = heads.index("blank")
        assert str(table.get_row_at(0)[col]) == "0.970"
        assert str(table.get_row_at(table.row_count - 1)[col]) == "0.614"


# --------------------------------------------------------------------------- 8: compare


def test_diff_cells_wrap_and_leave_out_a_shared_start():
    texts = [f"sweep member {i}: " + "a long description " * 6 for i in range(4)]
    got = diff_cells(texts, 20)
    assert all(len(c) == 2 and all(len(line) <= 20 for line in c) for c in got)
    assert [c[0][:3] for c in got] == ["…0:", "…1:", "…2:", "…3:"]
    assert got[0][1].endswith("…")
    assert diff_cells(["0.0010", "0.0030"], 20) == [["0.0010"], ["0.0030"]]


async def test_compare_four_runs_diff_fits_and_running_run_shows_latest(fx):
    paths = write_sweep(Path("runs"))
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_compare(pilot, paths)
        diff = screen.query_one("#diff-table")
        widths = [c.get_render_width(diff) for c in diff.columns.values()]
        assert len(widths) == 5 and sum(widths) <= 120 - 4  # every run's column on screen
        desc = row_of(diff, "description")
        assert len(set(desc)) == 4 and all(len(x.splitlines()[0]) < 30 for x in desc)
        summary = screen.query_one("#summary-table")
        assert row_of(summary, "status")[3] == "running"
        val_acc = row_of(summary, "val accuracy")
        assert val_acc[3] != "-" and val_acc[3].endswith("~")  # the latest epoch
        assert float(val_acc[3].split()[0]) == pytest.approx(
            screen.series[3].last_epoch()["val_acc"], abs=1e-4
        )
        dur = row_of(summary, "duration")
        assert not dur[3].endswith("*")  # a run still training is not the quickest
        assert dur[0].endswith("*")


# --------------------------------------------------------------------------- snapshots


def _live_snapshot(snap_compare, path: Path, size: tuple[int, int]) -> bool:
    async def before(pilot):
        await open_live(pilot, path)
        await settle(pilot)

    return snap_compare(make_app(), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
def test_snapshot_live_binary(fx, snap_compare, size):
    assert _live_snapshot(snap_compare, write_binary_run(Path("runs")), size)


def test_snapshot_live_ctc_narrow(fx, snap_compare):
    assert _live_snapshot(snap_compare, write_ctc_run(Path("runs")), (80, 24))


def test_snapshot_live_ctc_wide(fx, snap_compare):
    assert _live_snapshot(snap_compare, write_ctc_run(Path("runs")), (200, 60))


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
def test_snapshot_live_8_gpus(fx, snap_compare, size):
    run = write_run(
        Path("runs"), "20250112-090000-demo", status="running", epochs=5, with_eval=False
    )
    write_gpus8_system(run)
    assert _live_snapshot(snap_compare, run, size)


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
def test_snapshot_compare_sweep(fx, snap_compare, size):
    paths = write_sweep(Path("runs"))

    async def before(pilot):
        await open_compare(pilot, paths)
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=before)


def test_compare_rows_leave_out_top5_when_it_cannot_differ(tmp_path):
    """With 5 classes or fewer top-5 accuracy is 1.0 for every run: no row for it."""
    from engine import runs as runs_mod
    from slr_tui.tables import compare_rows
    from tests.fixtures_runs import build_runs, write_binary_run

    a = write_binary_run(tmp_path / "bin", "20250110-090000-a")
    b = write_binary_run(tmp_path / "bin", "20250110-091000-b")
    labels = [label for label, _, _ in compare_rows([runs_mod.load_run(a), runs_mod.load_run(b)])]
    assert "val top-5" not in labels and "val accuracy" in labels
    multi = build_runs(tmp_path / "multi")
    items = [runs_mod.load_run(multi["a"]), runs_mod.load_run(multi["b"])]
    assert "val top-5" in [label for label, _, _ in compare_rows(items)]
