"""The TUI's pieces that are not screens: the metrics reader and curve store, downsampling,
the log tail, the GPU panel and the sortable table."""

from __future__ import annotations

import json

import pytest
from textual.app import App

from engine.runs import JsonlTail, TextTail
from slr_tui.widgets._series import RunSeries, downsample, read_initial
from slr_tui.widgets.gpu_panel import GpuPanel
from slr_tui.widgets.sortable_table import Col, SortableTable
from tests.fixtures_runs import metric_rows, write_big_metrics

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


def full(path) -> RunSeries:
    s = RunSeries()
    s.add_rows(JsonlTail(path).read_new())
    return s


@pytest.mark.parametrize("lines", [300, 30_000])
def test_read_initial_keeps_every_epoch_and_the_tail(tmp_path, lines):
    path = tmp_path / "metrics.jsonl"
    write_big_metrics(path, lines=lines, epochs=30)
    with open(path, "a") as f:
        f.write('{"t": 1, "kind": "eval", "split": "val", "accuracy": 0.9}\n')
        f.write('{"t": 2, "kind": "step", "epoch": 31, "st')  # torn: being written
    ref = full(path)
    got, offset = read_initial(path, keep_steps=1000)
    assert got.epochs == ref.epochs and got.evals == ref.evals
    assert got.last_step == ref.last_step
    assert got.lines == ref.rows == lines + 1
    assert set(got.step_x) <= set(ref.step_x) and got.step_x == sorted(got.step_x)
    if lines > 2000:
        assert got.sampled_out > 0 and len(got.step_x) < 1500
    else:
        assert got.sampled_out == 0 and got.step_x == ref.step_x
    assert got.rate_s_per_step() == pytest.approx(ref.rate_s_per_step())
    # the tail goes on from there: the torn line, once whole, is read once
    tail = JsonlTail(path)
    tail.offset = offset
    assert tail.read_new() == []
    with open(path, "a") as f:
        f.write('ep": 151, "train_loss": 0.5}\n')
    rows = tail.read_new()
    assert len(rows) == 1 and rows[0]["step"] == 151


def test_curves_are_in_epochs():
    s = RunSeries()
    s.add_rows(metric_rows(3, steps_per_epoch=20, log_every=5))
    xs, ys, scale = s.curve("train_loss", steps_per_epoch=20)
    assert [x * scale for x in xs][:4] == [0.25, 0.5, 0.75, 1.0]
    vx, vy, vscale = s.curve("val_acc")
    assert vx == [1.0, 2.0, 3.0] and vscale == 1.0 and len(vy) == 3
    assert s.curve("train_loss")[0] == [1.0, 2.0, 3.0]  # no steps per epoch: epoch rows
    assert s.best_epoch() in (1, 2, 3)


def test_downsample_keeps_the_shape_and_the_end():
    xs = list(range(10_001))
    ys = [float(x % 10) for x in xs]
    dx, dy = downsample(xs, ys, 200)
    assert len(dx) == 200 and dx[-1] == 10_000 and dy[-1] == 0.0
    assert sum(dy[:-1]) / len(dy[:-1]) == pytest.approx(4.5, abs=0.1)
    assert list(dx) == sorted(dx)
    assert downsample([1, 2], [3, 4], 200) == ([1, 2], [3, 4])


def test_text_tail_reads_whole_lines_from_the_end(tmp_path):
    path = tmp_path / "log.txt"
    path.write_text("".join(f"line {i}\n" for i in range(1000)))
    tail = TextTail(path, initial_bytes=100)
    first = tail.read_new()
    assert first[-1] == "line 999" and all(x.startswith("line ") for x in first)
    assert len(first) < 20  # only the last 100 bytes, from a whole line on
    with open(path, "a") as f:
        f.write("half")
    assert tail.read_new() == []
    with open(path, "a") as f:
        f.write(" done\nnext\n")
    assert tail.read_new() == ["half done", "next"]
    path.write_text("new file\n")  # replaced (shorter): read again from the start
    assert tail.read_new() == ["new file"]


class PanelApp(App):
    def compose(self):
        yield GpuPanel(warn_c=80)


async def test_gpu_panel_warns_when_hot_and_says_when_there_is_none():
    app = PanelApp()
    async with app.run_test(size=(40, 12)) as pilot:
        panel = app.query_one(GpuPanel)
        gpu = {
            "index": 0,
            "name": "NVIDIA H100",
            "temp_c": 86,
            "mem_used_mb": 40960.0,
            "mem_total_mb": 81920.0,
            "util_pct": 97,
            "power_w": 500.0,
        }
        panel.show([gpu], None, "live (NVML)")
        await pilot.pause()
        text = panel.render()
        assert "86°C HOT" in text.plain and "40.0/80G" in text.plain and "97%" in text.plain
        assert any("red" in str(span.style) for span in text.spans)
        assert panel.warning()
        panel.show([{**gpu, "temp_c": 60}], None, "")
        assert not panel.warning() and "HOT" not in panel.render().plain
        panel.show([], "no NVIDIA GPU/driver: NVML Shared Library Not Found", "")
        assert panel.render().plain.startswith("no GPU")


class TableApp(App):
    def compose(self):
        yield SortableTable(
            [Col("name", "name"), Col("acc", "acc", right=True)], row_key="name", sort_by="acc"
        )


async def test_sortable_table_sorts_updates_in_place_and_keeps_the_cursor():
    app = TableApp()
    async with app.run_test() as pilot:
        t = app.query_one(SortableTable)
        t.set_rows(
            [{"name": "a", "acc": 0.5}, {"name": "b", "acc": None}, {"name": "c", "acc": 0.1}]
        )
        assert t.shown_keys == ["c", "a", "b"]  # None last
        t.sort_by("acc")  # again: reversed, None still last
        assert t.shown_keys == ["a", "c", "b"]
        t.select_key("c")
        t.set_rows(
            [{"name": "a", "acc": 0.6}, {"name": "b", "acc": None}, {"name": "c", "acc": 0.1}]
        )
        assert t.current_key() == "c" and str(t.get_cell("a", "acc")) == "0.6000"
        t.set_filter(lambda r: r["name"] != "a")
        assert t.shown_keys == ["c", "b"] and t.current_key() == "c"
        await pilot.pause()


def test_fixture_runs_are_deterministic(tmp_path):
    from tests.fixtures_runs import build_runs

    a = build_runs(tmp_path / "one")
    b = build_runs(tmp_path / "two")
    for key in ("a", "b"):
        for name in ("metrics.jsonl", "eval/report.json", "eval/per_class.csv"):
            assert (a[key] / name).read_bytes() == (b[key] / name).read_bytes(), name
    meta = json.loads((a["running"] / "run.json").read_text())
    assert meta["status"] == "running" and meta["ended_at"] is None
