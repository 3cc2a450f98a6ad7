"""Issue 13, plots of the live screen: the metric picker, the grid, EMA smoothing, log scale,
the x axis (epoch, step, wall time), zoom to the last N epochs, legends and marks; through
Textual's Pilot on fake run folders (tests/fixtures_runs.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import SelectionList

from slr_tui.screens.live import SMOOTHING
from slr_tui.screens.metric_picker import MetricPickerScreen
from slr_tui.widgets._series import RunSeries, ema
from slr_tui.widgets.metric_plot import MARKERS, MetricPlot
from tests.fixtures_runs import (
    fixed_runs,
    make_app,
    metric_rows,
    open_live,
    settle,
    until,
    write_ctc_run,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def fx(tmp_path, monkeypatch):
    with fixed_runs(tmp_path, monkeypatch) as paths:
        yield paths


def plots(screen) -> tuple[MetricPlot, MetricPlot]:
    return screen.query_one("#loss-plot", MetricPlot), screen.query_one("#acc-plot", MetricPlot)


async def press(pilot, *keys: str) -> None:
    for k in keys:
        await pilot.press(k)
    await pilot.pause(0.05)


# --------------------------------------------------------------------------- the store


def test_series_keeps_every_numeric_key_and_places_points():
    s = RunSeries()
    rows = metric_rows(6, steps_per_epoch=20, log_every=5)
    for r in rows:
        if r["kind"] == "step":
            r["grad_norm"] = r["step"] / 10  # a key the screens never named
    s.add_rows(rows)
    keys = s.numeric_keys()
    assert {"grad_norm", "samples_per_s", "val_acc", "epoch_time_s", "lr"} <= set(keys)
    assert not {"epoch", "step", "t", "step_in_epoch", "best"} & set(keys)
    xs, ys, scale, off = s.points("grad_norm", "step")
    assert list(xs) == s.step_x and list(ys) == [x / 10 for x in s.step_x] and scale == 1.0
    xs, ys, scale, off = s.points("val_acc", "step")
    assert xs == [20.0 * e for e in range(1, 7)]
    xs, ys, scale, off = s.points("val_acc", "time")
    assert off == s.t0 and scale == 1 / 60 and s.time_unit()[0] == "minutes"
    assert [(x - off) * scale for x in xs] == pytest.approx([0.5 * e - 0.125 for e in range(1, 7)])
    # zoom: the last 2 epochs only, a suffix of the whole
    xs, ys, *_ = s.points("train_loss", "epoch", 20, last_n=2)
    assert xs[0] == 85 and xs == s.step_x[-len(xs) :]
    xs, *_ = s.points("val_loss", "epoch", 20, last_n=2)
    assert xs == [5.0, 6.0]


def test_ema_by_hand_and_incremental():
    ys = [4.0, 2.0, 3.0, 1.0]
    assert ema(ys, 0.5) == [4.0, 3.0, 3.0, 2.0]
    assert ema(ys, 0.0) == ys
    assert ema([*ys, 5.0], 0.5, ema(ys, 0.5)) == [4.0, 3.0, 3.0, 2.0, 3.5]


# --------------------------------------------------------------------------- keys


async def test_picker_puts_any_numeric_key_on_the_selected_plot(fx):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_live(pilot, fx["a"])
        loss, acc = plots(screen)
        assert not loss.legend_outside  # the classic look until something changes
        await press(pilot, "m")
        picker = app.screen
        assert isinstance(picker, MetricPickerScreen)
        assert "samples_per_s" in picker.keys and "epoch_time_s" in picker.keys
        assert picker.chosen == ["train_loss", "val_loss"]
        sel = picker.query_one(SelectionList)
        sel.highlighted = picker.keys.index("samples_per_s")
        await press(pilot, "enter")
        assert app.screen is screen
        assert [c.label for c in loss.curves] == ["samples_per_s"]
        assert list(loss.curves[0].ys) == [30.0] * len(screen.series.step_x)  # step rows
        assert loss.legend_outside and loss.plot_title.startswith("▸ loss")
        assert [c.label for c in acc.curves] == ["val acc", "val top-5"]  # the other kept
        # the next plot, two keys checked with space
        await press(pilot, "right_square_bracket", "m")
        picker = app.screen
        sel = picker.query_one(SelectionList)
        assert picker.chosen == ["val_acc", "val_top5"]
        for key in ("val_top5", "val_macro_f1"):  # uncheck one, check another
            sel.highlighted = picker.keys.index(key)
            await press(pilot, "space")
        await press(pilot, "enter")
        assert [c.label for c in acc.curves] == ["val accuracy", "val macro F1"]
        want = [r["val_macro_f1"] for r in screen.series.epoch_rows()]
        assert list(acc.curves[1].ys) == want
        # escape leaves the plot as it was
        await press(pilot, "m", "escape")
        assert [c.label for c in acc.curves] == ["val accuracy", "val macro F1"]


async def test_ema_keys_smooth_the_plotted_values(fx):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_live(pilot, fx["a"])
        loss, acc = plots(screen)
        raw = list(screen.series.step_loss)
        await press(pilot, "plus", "plus")
        alpha = SMOOTHING[2]
        assert "EMA 0.6" in loss.plot_title and "EMA 0.6" in acc.plot_title
        got = list(loss.curves[0].ys)
        want = [raw[0]]
        for y in raw[1:]:
            want.append(alpha * want[-1] + (1 - alpha) * y)
        assert got == pytest.approx(want)
        assert got != pytest.approx(raw)
        val = [r["val_acc"] for r in screen.series.epoch_rows()]
        assert list(acc.curves[0].ys) == pytest.approx(ema(val, alpha))
        await press(pilot, "equals_sign")  # = is + without shift
        assert f"EMA {SMOOTHING[3]:g}" in loss.plot_title
        await press(pilot, "minus", "minus", "minus", "minus")  # floors at off
        assert screen.smooth_i == 0 and loss.plot_title == "loss"
        assert list(loss.curves[0].ys) == raw and not loss.legend_outside


async def test_log_scale_toggles_on_the_selected_plot(fx):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_live(pilot, fx["a"])
        loss, acc = plots(screen)
        await press(pilot, "l")
        assert loss.ylog and "log" in loss.plot_title and not acc.ylog
        await until(pilot, lambda: loss._cache_key is not None and loss.draws > 0)
        await press(pilot, "l")
        assert not loss.ylog and not loss.legend_outside and loss.plot_title == "▸ loss"
        # the grid: loss and lr plots are log by default where every value is > 0
        await press(pilot, "p")
        screen.grid_specs[2] = {"keys": ["samples_per_s"], "log": None}
        screen._draw_plots()
        grid = {int(p.id.rsplit("-", 1)[1]): p for p in screen.query("#plot-grid MetricPlot")}
        assert grid[0].ylog and "log" in grid[0].plot_title
        assert not grid[1].ylog and not grid[2].ylog
        screen.grid_specs[2] = {"keys": ["lr"], "log": None}  # its last value is 0
        screen._draw_plots()
        assert not grid[2].ylog and "log" not in grid[2].plot_title
        await press(pilot, "l")  # the selected grid plot (the loss): off
        assert not grid[0].ylog


async def test_x_axis_cycles_epoch_step_time(fx):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_live(pilot, fx["a"])
        loss, _ = plots(screen)
        s = screen.series
        assert loss.curves[0].xscale == pytest.approx(1 / 20)  # epochs (20 steps each)
        await press(pilot, "x")
        assert screen.axis == "step" and loss.xlabel == "step"
        train, val = loss.curves
        assert list(train.xs) == s.step_x and train.xscale == 1.0
        assert list(val.xs) == [20.0 * e for e in range(1, 13)]
        await press(pilot, "x")
        assert loss.xlabel == "time (minutes)"
        train, val = loss.curves
        assert train.xoffset == s.t0 and train.xscale == pytest.approx(1 / 60)
        assert [(x - val.xoffset) * val.xscale for x in val.xs][-1] == pytest.approx(
            12 * 0.5 - 5 / 20 * 0.5
        )
        await press(pilot, "x")
        assert screen.axis == "epoch" and not loss.legend_outside


async def test_zoom_shows_the_last_n_epochs(fx):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_live(pilot, fx["a"])  # 12 epochs
        loss, acc = plots(screen)
        await press(pilot, "z")
        assert "last 20 ep" in loss.plot_title and len(acc.curves[0].xs) == 12
        await press(pilot, "z")
        assert "last 10 ep" in acc.plot_title
        assert list(acc.curves[0].xs) == [float(e) for e in range(3, 13)]
        train = loss.curves[0]
        assert min(train.xs) > 2 * 20 and max(train.xs) == 240  # steps of epochs 3-12
        await press(pilot, "z")
        assert list(acc.curves[0].xs) == [8.0, 9.0, 10.0, 11.0, 12.0]
        # with smoothing, the zoomed values are the tail of the whole run's EMA
        await press(pilot, "plus")
        full = ema([r["val_acc"] for r in screen.series.epoch_rows()], SMOOTHING[1])
        assert list(acc.curves[0].ys) == pytest.approx(full[-5:])
        await press(pilot, "minus", "z")
        assert screen.zoom_i == 0 and not acc.legend_outside


async def test_markers_are_distinct_and_the_legend_is_above_the_plot(fx):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_live(pilot, fx["a"])
        _, acc = plots(screen)
        await press(pilot, "x")
        await until(pilot, lambda: acc._cache_key is not None and acc._cache_key[0] == acc._version)
        legend = acc.legend().plain
        assert legend.startswith("accuracy") and MARKERS[0] in legend and MARKERS[1] in legend
        lines = [ln.text for ln in app.screen._compositor.render_strips()]  # noqa: SLF001
        region = acc.region
        top = "".join(s for s in lines[region.y][region.x : region.right])
        assert "● val acc" in top and "■ val top-5" in top  # a line of its own
        body = "".join(ln[region.x : region.right] for ln in lines[region.y + 1 : region.bottom])
        assert "●" in body and "■" in body  # the marks on the curves
        assert "val acc" not in body  # no legend over the data


async def test_grid_is_one_plot_at_80x24_and_2x2_when_big(fx):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_live(pilot, fx["a"])
        await press(pilot, "p")
        assert screen.grid_shape() == (1, 1)
        shown = [p for p in screen.query("#plot-grid MetricPlot") if p.display]
        assert len(shown) == 1 and shown[0].plot_title.startswith("1/4 loss")
        assert (
            not screen.query_one("#live-tabs").display
            or not screen.query_one("#live-tabs").region.height
        )
        await press(pilot, "right_square_bracket")  # the grid's selection is shown: it moves
        shown = [p for p in screen.query("#plot-grid MetricPlot") if p.display]
        assert [p.id for p in shown] == ["grid-plot-1"]
        assert shown[0].plot_title.startswith("2/4 val accuracy")
        await pilot.pause(0.2)
        assert shown[0].region.height >= 15 and shown[0].region.width >= 50  # usable
        await press(pilot, "p")
        assert screen.query_one("#loss-plot").display
    app = make_app()
    async with app.run_test(size=(200, 60)) as pilot:
        screen = await open_live(pilot, fx["a"])
        await press(pilot, "p")
        await pilot.pause(0.2)
        shown = [p for p in screen.query("#plot-grid MetricPlot") if p.display]
        assert screen.grid_shape() == (2, 2) and len(shown) == 4
        assert [c.label for c in shown[2].curves] == ["learning rate"]
        ys = {p.region.y for p in shown}
        xs = {p.region.x for p in shown}
        assert len(ys) == 2 and len(xs) == 2


async def test_ctc_losses_keep_two_axes_when_restyled(fx):
    run = write_ctc_run(Path("runs"))
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_live(pilot, run)
        loss, _ = plots(screen)
        await press(pilot, "x")
        assert [c.yside for c in loss.curves] == ["left", "right"]
        await press(pilot, "l")  # a log axis holds both
        assert loss.ylog and [c.yside for c in loss.curves] == ["left", "left"]


# --------------------------------------------------------------------------- snapshots


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
def test_snapshot_plot_grid(fx, snap_compare, size):
    async def before(pilot):
        await open_live(pilot, fx["a"])
        await press(pilot, "p", "plus", "plus")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=before)
