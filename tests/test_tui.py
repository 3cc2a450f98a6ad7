"""The TUI's screens, keys and flows through Textual's Pilot: on fixed run folders
(tests/fixtures_runs.py) and on a demo run the engine trains from the new-run screen."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import runs
from slr_tui.screens.compare import CompareScreen
from slr_tui.screens.confirm import ConfirmScreen
from slr_tui.screens.live import LiveRunScreen
from slr_tui.screens.new_run import NewRunScreen
from slr_tui.screens.runs import RunsScreen
from slr_tui.screens.settings import SettingsScreen
from slr_tui.screens.thresholds import ThresholdsScreen, figures_line
from slr_tui.settings import load_settings
from slr_tui.widgets.log_tail import LogTail
from slr_tui.widgets.metric_plot import MetricPlot
from slr_tui.widgets.sortable_table import SortableTable
from tests.conftest import TINY_SETS
from tests.fixtures_runs import (
    build_runs,
    fixed_runs,
    make_app,
    metric_rows,
    to_row,
    until,
    write_run,
)

pytestmark = pytest.mark.anyio

A, B = "20250101-090000-demo", "20250102-090000-demo"
FAILED, RUNNING, LOST = (
    "20250103-090000-wlasl100-conservative",
    "20250104-090000-demo",
    "20250105-090000-demo",
)


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="module")
def runs_template(tmp_path_factory):
    return build_runs(tmp_path_factory.mktemp("template") / "runs")["a"].parent


@pytest.fixture
def fx(tmp_path, monkeypatch, runs_template):
    with fixed_runs(tmp_path, monkeypatch, runs_template) as paths:
        yield paths


# --------------------------------------------------------------------------- runs


async def test_runs_screen_lists_filters_sorts_and_marks(fx):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        await until(pilot, lambda: screen.scans >= 1)
        table = screen.table
        assert table.shown_keys == [LOST, RUNNING, FAILED, B, A]  # newest first
        status = {r["key"]: r["status"] for r in table.rows_data}
        # run.json says running for both; only the live pid counts as running
        assert status == {
            LOST: "lost",
            RUNNING: "running",
            FAILED: "failed",
            B: "finished",
            A: "finished",
        }
        row = {r["key"]: r for r in table.rows_data}[RUNNING]
        assert row["duration"] == 900.0  # to the (frozen) clock while running

        # typing on the table starts a filter ('w' is not a key binding)
        await pilot.press("w", "l", "a")
        assert app.focused.id == "filter"
        assert table.shown_keys == [FAILED]
        await pilot.press("escape")  # back to the table, filter kept
        assert app.focused is table and table.shown_keys == [FAILED]
        await pilot.press("escape")  # clears it
        assert len(table.shown_keys) == 5
        # every typed character lands, a bound one ('n': new run) too once a filter started
        await pilot.press("f", "i", "n")
        assert app.screen.query_one("#filter").value == "fin"
        assert isinstance(app.screen, RunsScreen) and set(table.shown_keys) == {A, B}
        await pilot.press("escape", "escape")
        assert len(table.shown_keys) == 5 and app.focused is table

        # o: sort by the next column (started -> duration), O reverses
        await pilot.press("o")
        assert table.sort_col == "duration"
        assert table.shown_keys == [FAILED, LOST, B, A, RUNNING]
        await pilot.press("O")
        assert table.shown_keys == [RUNNING, A, B, LOST, FAILED]

        # space marks and moves down
        await to_row(pilot, A)
        await pilot.press("space")
        assert table.marked == {A}
        await pilot.press("c")  # one mark is not enough
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)


async def test_runs_screen_notices_new_and_changed_runs(fx):
    app = make_app(runs_poll_s=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await until(pilot, lambda: screen.scans >= 1)
        write_run(Path("runs"), "20250106-090000-demo", seed=3)
        await until(pilot, lambda: "20250106-090000-demo" in screen.table.shown_keys)
        assert not screen.table.wide  # 80 columns: no preset/started columns
        assert [c.key for c in screen.table.cols] == [
            "mark",
            "id",
            "status",
            "dataset",
            "epoch_s",
            "best",
            "duration",
        ]


# --------------------------------------------------------------------------- live


async def test_live_screen_of_a_run_that_failed_before_any_metric(fx):
    run = fx["failed"]
    (run / runs.METRICS).write_text("")
    meta = runs.read_json(run / runs.RUN_JSON)
    meta.update(status="failed", error="DataError: no CSV recordings found", epoch=0)
    runs.atomic_write_json(run / runs.RUN_JSON, meta)
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await to_row(pilot, FAILED)
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, LiveRunScreen)
        await until(pilot, lambda: screen.loaded)
        await pilot.pause(0.2)
        loss = str(screen.query_one("#loss-plot", MetricPlot).render())
        acc = str(screen.query_one("#acc-plot", MetricPlot).render())
        assert "waiting" not in loss and "waiting" not in acc
        assert "failed before its first step: DataError: no CSV recordings found" in loss
        assert "failed before an epoch ended" in acc


async def test_live_screen_of_a_finished_run(fx):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await to_row(pilot, A)
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, LiveRunScreen)
        await until(pilot, lambda: screen.loaded and screen.eval_loaded)
        assert screen.status == "finished"
        assert screen.query_one("#epoch-table", SortableTable).row_count == 12
        for plot in screen.query(MetricPlot):
            assert plot.has_data
        await until(pilot, lambda: all(p.draws for p in screen.query(MetricPlot)))
        await pilot.pause(0.3)
        assert screen._timer is None and screen.polls == 0  # finished: no polling

        await pilot.press("3")
        await until(pilot, lambda: screen.query("#per-class-table"))
        pc = screen.query_one("#per-class-table", SortableTable)
        await until(pilot, lambda: pc.row_count == 10)
        acc = [pc.rows_data[i]["accuracy"] for i in range(10)]
        shown = [r for k in pc.shown_keys for r in pc.rows_data if r["class"] == k]
        assert [r["accuracy"] for r in shown] == sorted(acc)  # worst first
        assert screen.split == "test"
        await pilot.press("v")
        assert screen.split == "val"

        await pilot.press("4")
        await until(pilot, lambda: screen.query("#confused-table"))
        cf = screen.query_one("#confused-table", SortableTable)
        await until(pilot, lambda: cf.row_count > 0)
        top = next(r for r in cf.rows_data if r["pair"] == cf.shown_keys[0])
        assert (top["true"], top["pred"]) == ("book", "drink")  # the planted confusion

        await pilot.press("2")
        await until(pilot, lambda: screen.query(LogTail))
        assert screen.query_one(LogTail).lines_seen == 3 + 12

        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


async def test_live_screen_follows_a_growing_run(fx):
    app = make_app()
    run = fx["running"]
    async with app.run_test(size=(120, 40)) as pilot:
        await to_row(pilot, RUNNING)
        await pilot.press("enter")
        screen = app.screen
        await until(pilot, lambda: screen.loaded)
        assert screen.status == "running"
        table = screen.query_one("#epoch-table", SortableTable)
        assert table.row_count == 5
        assert "GPU 0" in str(screen.query_one("#gpu").render())  # from system.jsonl

        rows = [r for r in metric_rows(6) if r["epoch"] == 6]
        start = time.monotonic()
        with open(run / runs.METRICS, "a") as f:
            f.write("".join(json.dumps(r) + "\n" for r in rows))
        with open(run / runs.LOG, "a") as f:
            f.write("epoch 6/12 done\n")
        await until(pilot, lambda: table.row_count == 6, timeout=5)
        assert time.monotonic() - start < 1.0  # 0.5 s target; the benchmark measures it

        await pilot.press("2")
        await until(pilot, lambda: screen.query(LogTail))
        await until(pilot, lambda: "epoch 6/12 done" in screen.query_one(LogTail).lines)

        meta = runs.read_json(run / runs.RUN_JSON)
        meta.update(status="finished", ended_at=meta["started_at"] + 200, pid=None)
        runs.atomic_write_json(run / runs.RUN_JSON, meta)
        await until(pilot, lambda: screen.status == "finished", timeout=5)
        await pilot.pause(0.5)  # one last read after the end, then nothing
        polls = screen.polls
        await pilot.pause(0.5)
        assert screen.polls == polls and screen._timer is None  # stopped polling


# --------------------------------------------------------------------------- compare


async def test_compare_two_marked_runs(fx):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await to_row(pilot, B)
        await pilot.press("space")  # marks B, moves to A
        await pilot.press("space")
        await pilot.press("c")
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        await until(pilot, lambda: screen.loads >= 1)
        plot = screen.query_one("#compare-plot", MetricPlot)
        assert [c.label for c in plot.curves] == [B, A]
        assert [len(c.xs) for c in plot.curves] == [10, 12]
        summary = screen.query_one("#summary-table")
        labels = [str(summary.get_row_at(i)[0]) for i in range(summary.row_count)]
        assert "val accuracy" in labels and "test macro F1" in labels
        diff = screen.query_one("#diff-table")
        keys = [str(diff.get_row_at(i)[0]) for i in range(diff.row_count)]
        assert keys == ["optim.lr"]  # only the keys that differ
        row = diff.get_row_at(0)
        assert [str(x) for x in row[1:]] == ["0.0010", "0.0030"]
        # the best of a row is marked
        i = labels.index("val accuracy")
        cells = [str(c) for c in summary.get_row_at(i)[1:]]
        assert cells[1].endswith("*") and not cells[0].endswith("*")

        await pilot.press("m")
        await until(pilot, lambda: screen.metric == "val_loss")
        assert plot.plot_title == "val loss"
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


async def test_c_on_a_sweep_member_compares_the_whole_sweep(fx):
    for i, lr in enumerate(("0.001", "0.002", "0.003")):
        write_run(
            Path("runs"),
            f"2025010{6 + i}-090000-demo",
            t0=1736150400.0 + i * 3600,
            sets=[f"optim.lr={lr}"],
            seed=i,
            extra_meta={"sweep": "sweep-x", "sweep_params": {"optim.lr": lr}},
        )
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await to_row(pilot, "20250107-090000-demo")
        await pilot.press("c")
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        assert [p.name for p in screen.paths] == [f"2025010{6 + i}-090000-demo" for i in range(3)]
        await until(pilot, lambda: screen.loads >= 1)
        diff = screen.query_one("#diff-table")
        assert [str(diff.get_row_at(i)[0]) for i in range(diff.row_count)] == ["optim.lr"]
        assert "sweep-x" in str(screen.query_one("#compare-title").render())


# --------------------------------------------------------------------------- thresholds


async def test_thresholds_move_save_and_switch(fx):
    app = make_app()
    run = fx["a"]
    async with app.run_test(size=(120, 40)) as pilot:
        await to_row(pilot, A)
        await pilot.press("t")
        screen = app.screen
        assert isinstance(screen, ThresholdsScreen)
        await until(pilot, lambda: screen.loaded)
        assert screen.split == "val" and screen.index == screen.best_index
        start = screen.value
        await pilot.press("right", "right", "right")
        assert screen.value == pytest.approx(start + 0.03)
        assert screen.table.cursor_row == screen.index
        shown = screen.figures_shown()
        assert set(shown) == {"val", "test"}
        assert f"threshold {screen.value:.2f}" in str(screen.query_one("#thr-figures").render())

        await pilot.press("enter")
        path = run / runs.THRESHOLD_JSON
        await until(pilot, lambda: path.is_file() and screen.saved is not None)
        saved = json.loads(path.read_text())
        assert saved["threshold"] == pytest.approx(start + 0.03)
        assert saved["rule"] == "manual"
        for split in ("val", "test"):  # the file holds the figures the screen showed
            assert figures_line(saved[split], screen.kind) == shown[split]
            row = screen.sweeps[split][screen.index]
            for k in ("precision", "recall", "f1", "coverage"):
                assert saved[split][k] == pytest.approx(row[k])

        await pilot.press("left")
        assert screen.value == pytest.approx(start + 0.02)
        await pilot.press("b")
        assert screen.index == screen.best_index
        await pilot.press("tab")
        assert screen.split == "test"
        assert screen.table.rows_data[5]["f1"] == screen.sweeps["test"][5]["f1"]
        await pilot.press("enter")
        await until(pilot, lambda: json.loads(path.read_text())["rule"] == "best-f1 on val")
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


async def test_thresholds_of_a_binary_run(fx):
    run = write_run(Path("runs"), "20250107-090000-demo", num_classes=2, seed=7)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await to_row(pilot, run.name)
        await pilot.press("t")
        screen = app.screen
        await until(pilot, lambda: screen.loaded)
        assert screen.kind == "binary"
        assert [c.key for c in screen.table.cols] == [
            "threshold",
            "precision",
            "recall",
            "f1",
            "accuracy",
        ]
        assert (
            "acc " in screen.figures_shown()["val"] and "cov" not in screen.figures_shown()["val"]
        )
        await pilot.press("b", "enter")
        path = run / runs.THRESHOLD_JSON
        await until(pilot, lambda: path.is_file())
        saved = json.loads(path.read_text())
        assert saved["rule"] == "best-f1 on val"
        assert saved["val"]["f1"] == pytest.approx(max(r["f1"] for r in screen.sweeps["val"]))


# --------------------------------------------------------------------------- stop


async def test_stop_asks_first_then_stops(fx):
    rid = "20250106-090000-demo"
    # only a process whose command line is this run's engine is signalled (engine.procs)
    fake_engine = ["-m", "engine", "train", "--run-dir", f"runs/{rid}"]
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", *fake_engine],
        start_new_session=True,
    )
    try:
        run = write_run(Path("runs"), rid, status="running", epochs=2, with_eval=False)
        meta = runs.read_json(run / runs.RUN_JSON)
        meta.update(pid=proc.pid, pgid=proc.pid)
        runs.atomic_write_json(run / runs.RUN_JSON, meta)
        app = make_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await to_row(pilot, rid)
            await pilot.press("s")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("n")
            await pilot.pause(0.2)
            assert proc.poll() is None and isinstance(app.screen, RunsScreen)
            await pilot.press("s")
            await pilot.press("y")
            await until(pilot, lambda: proc.poll() is not None, timeout=5, what="SIGTERM")
            await to_row(pilot, FAILED)
            await pilot.press("s")  # not running: nothing to ask
            await pilot.pause()
            assert isinstance(app.screen, RunsScreen)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


async def test_read_only_turns_destructive_keys_off(fx):
    app = make_app(read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await to_row(pilot, RUNNING)
        bound = {b.binding.action for b in app.screen.active_bindings.values()}
        assert "new_run" not in bound and "stop" not in bound  # nor offered in the footer
        await pilot.press("n")
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)
        assert runs.read_json(fx["running"] / runs.RUN_JSON)["status"] == "running"

        # thresholds: enter writes nothing
        await pilot.press("escape", "escape")
        await to_row(pilot, A)
        await pilot.press("t")
        screen = app.screen
        assert isinstance(screen, ThresholdsScreen)
        await until(pilot, lambda: screen.loaded)
        await pilot.press("right", "enter")
        await pilot.pause(0.3)
        assert not (fx["a"] / runs.THRESHOLD_JSON).exists()
        screen.action_save()  # however it is reached
        await pilot.pause(0.3)
        assert not (fx["a"] / runs.THRESHOLD_JSON).exists()

        # settings: ctrl+s (or the Save button) writes nothing
        await pilot.press("escape")
        await pilot.press("comma")
        assert isinstance(app.screen, SettingsScreen)
        app.screen.query_one("#set-temp").value = "85"
        await pilot.press("ctrl+s")
        app.screen.action_save()
        await pilot.pause(0.3)
        assert not Path("config.yaml").exists()


# --------------------------------------------------------------------------- settings


async def test_settings_screen_names_a_dataset_root(fx, tmp_path):
    root = tmp_path / "WLASL2000"
    root.mkdir()
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("comma")
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        screen.query_one("#root-name").value = "wlasl"
        screen.query_one("#root-path").value = str(root)
        await pilot.click("#root-add")
        screen.query_one("#set-temp").value = "85"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        saved = load_settings(tmp_path / "config.yaml")
        assert saved.dataset_roots == {"wlasl": str(root)} and saved.gpu_temp_warn_c == 85
        assert app.settings == saved

        # the new-run screen offers it, with the presets that fit it
        await pilot.press("n")
        nr = app.screen
        assert isinstance(nr, NewRunScreen)
        await until(pilot, lambda: len(nr.datasets) >= 2)
        ds = next(d for d in nr.datasets if d["label"] == "wlasl")
        assert ds["source"] == "wlasl"
        fit = [p["name"] for p in nr.fitting_presets(ds)]
        assert "wlasl100-conservative" in fit and "demo" not in fit
        nr.query_one("#dataset-list").highlighted = nr.datasets.index(ds)
        await until(pilot, lambda: nr.preset is not None and nr.preset["name"] in fit)
        sets, extra = nr.overrides()
        assert extra == {"data": {"root": str(root)}} and sets == []


# --------------------------------------------------------------------------- launch


async def test_new_run_launches_the_demo_and_watches_it_finish(fx):
    app = make_app(clock=time.time)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n")
        nr = app.screen
        assert isinstance(nr, NewRunScreen)
        await until(pilot, lambda: nr.preset is not None and nr.preset["name"] == "demo")
        nr.query_one("#ov-epochs").value = "2"
        nr.query_one("#ov-sets").value = " ".join(
            s for s in TINY_SETS if not s.startswith("training.max_epochs")
        )
        await until(pilot, lambda: "max_epochs: 2" in str(nr.query_one("#preview").render()))
        await pilot.press("ctrl+l")
        await until(pilot, lambda: isinstance(app.screen, LiveRunScreen), timeout=20)
        live = app.screen
        assert live.path.parent.resolve() == Path("runs").resolve()
        cfg = json.loads((live.path / runs.CONFIG_JSON).read_text())
        assert cfg["training"]["max_epochs"] == 2 and cfg["data"]["synthetic"]["num_classes"] == 4
        await until(pilot, lambda: live.series.epochs, timeout=90, what="the first epoch")
        await until(pilot, lambda: live.status == "finished", timeout=90, what="the run to end")
        await until(pilot, lambda: live.eval_loaded, timeout=20)
        assert len(live.series.epochs) == 2
        assert live.query_one("#epoch-table", SortableTable).row_count == 2
        await pilot.press("escape")
        runs_screen = app.screen
        assert isinstance(runs_screen, RunsScreen)
        key = live.path.name
        await until(
            pilot,
            lambda: any(
                r["key"] == key and r["status"] == "finished" for r in runs_screen.table.rows_data
            ),
        )
    for proc in app.engines:  # the engine ends on its own once it has written the results
        assert proc.wait(timeout=60) == 0


async def test_new_run_shows_config_errors_and_does_not_launch(fx):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("n")
        nr = app.screen
        await until(pilot, lambda: nr.preset is not None)
        nr.query_one("#ov-sets").value = "optim.lrr=1"
        await until(pilot, lambda: nr.preview_error is not None)
        assert "optim.lrr" in nr.preview_error
        await pilot.press("ctrl+l")
        await until(pilot, lambda: not nr.launching)
        assert isinstance(app.screen, NewRunScreen)
        assert sorted(p.name for p in Path("runs").iterdir()) == sorted(
            [A, B, FAILED, RUNNING, LOST]
        )


# --------------------------------------------------------------------------- process


def test_app_never_imports_torch(tmp_path):
    code = (
        "import asyncio, sys\n"
        "from slr_tui.app import SlrApp\n"
        "async def main():\n"
        "    app = SlrApp(sys.argv[1], settings_path=sys.argv[2])\n"
        "    async with app.run_test() as pilot:\n"
        "        await pilot.press('n')\n"
        "        await pilot.pause(0.3)\n"
        "        await app.workers.wait_for_complete()\n"
        "asyncio.run(main())\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('ok')\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "runs"), str(tmp_path / "c.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().endswith("ok")


def test_entry_points_take_runs_dir():
    from typer.testing import CliRunner

    from slr_tui.app import main
    from slr_tui.cli import app as cli

    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    res = CliRunner().invoke(cli, ["tui", "--help"])
    assert res.exit_code == 0 and "--runs-dir" in res.output
