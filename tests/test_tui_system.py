"""Issue 13, the live screen's system panel (host CPU/RAM/disk, the engine process, GPU
history from system.jsonl) and item 10b (the e key evaluates a stopped run into
eval-rescore/, which the per-class views then show)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine import runs
from slr_tui.widgets.gpu_panel import GpuPanel
from slr_tui.widgets.sortable_table import SortableTable
from slr_tui.widgets.system_panel import (
    MAX_POINTS,
    SystemHistory,
    SystemPanel,
    initial_rows,
    sparkline,
)
from tests.fixtures_runs import (
    T0,
    fixed_runs,
    make_app,
    open_live,
    settle,
    until,
    write_gpus8_system,
    write_run,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def fx(tmp_path, monkeypatch):
    with fixed_runs(tmp_path, monkeypatch) as paths:
        yield paths


def host_rows(n: int = 60, gpus: int = 8, t0: float = T0) -> list[dict]:
    """``n`` samples of an 8-GPU box with the host fields (GPUs 6 and 7 warm up to 80+)."""
    rows = []
    for i in range(n):
        g = [
            {
                "index": k,
                "name": "NVIDIA H100 80GB HBM3",
                "temp_c": 55 + k + (i * 25 // n if k in (6, 7) else i // 10),
                "mem_used_mb": 20000.0 + 300 * i + 1000 * k,
                "mem_total_mb": 81559.0,
                "util_pct": 90 + k,
                "power_w": 400.0 + 10 * k,
            }
            for k in range(gpus)
        ]
        rows.append(
            {
                "t": t0 + 5 * i,
                "gpus": g,
                "proc_peak_mem_mb": 30000.0,
                "cpu_percent": 20.0 + (i % 10) * 5,
                "ram_used_mb": 20480.0 + 100 * i,
                "ram_total_mb": 65536.0,
                "proc_cpu_percent": 180.0 + i,
                "proc_rss_mb": 3000.0 + 10 * i,
                "disk_free_gb": 120.5,
            }
        )
    return rows


def host_run(root: Path, status: str = "finished", n: int = 60) -> Path:
    run = write_run(root, "20250113-090000-demo", status=status, epochs=8, with_eval=False)
    (run / runs.SYSTEM).unlink(missing_ok=True)
    runs.append_rows(run / runs.SYSTEM, host_rows(n))  # the schema-checked writer
    return run


def panel_lines(widget) -> list[str]:
    return widget.render().plain.splitlines()


# --------------------------------------------------------------------------- parts


def test_sparkline_and_history_halving():
    assert sparkline([0, 50, 100], 3, 0, 100) == "▁▅█"
    assert sparkline([None, None], 5) == ""
    assert len(sparkline(list(range(1000)), 20)) == 20
    h = SystemHistory()
    h.add_rows(host_rows(3 * MAX_POINTS, gpus=2))
    assert len(h.t) <= 2 * MAX_POINTS and h.t[0] == T0 and h.host
    assert len(h.series(h.temp, 1)) == len(h.t)
    old = SystemHistory()
    old.add_rows([{"t": T0, "gpus": [], "error": "no NVIDIA GPU/driver: x"}])
    assert not old.host and old.rows == 1


def test_initial_rows_spreads_over_a_long_file(tmp_path):
    path = tmp_path / "system.jsonl"
    runs.append_rows(path, host_rows(5000, gpus=1))
    rows = initial_rows(runs.Tail(path).read_chunk())
    assert MAX_POINTS <= len(rows) <= MAX_POINTS + 1
    assert rows[0]["t"] == T0 and rows[-1]["t"] == T0 + 5 * 4999  # the whole run, to the end


# --------------------------------------------------------------------------- the panel


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
async def test_system_panel_with_8_gpus_fits(fx, size):
    run = host_run(Path("runs"))
    app = make_app()
    async with app.run_test(size=size) as pilot:
        screen = await open_live(pilot, run)
        assert screen.has_class("-sys")  # on by itself: the run has host figures
        sysp = screen.query_one(SystemPanel)
        gpu = screen.query_one(GpuPanel)
        await until(pilot, lambda: len(gpu.gpus) == 8 and sysp.history.rows == 60)
        await pilot.pause(0.1)
        lines = panel_lines(sysp)
        assert len(lines) <= sysp.size.height and all(len(x) <= sysp.size.width for x in lines)
        text = "\n".join(lines)
        assert lines[0].startswith("CPU 65%") and "RAM 26/64G" in text
        assert "eng 239% 3.5G" in text  # the engine process: CPU % and RSS
        glines = panel_lines(gpu)
        assert len(glines) <= gpu.size.height
        assert glines[0].startswith("2 HOT")
        for i in range(8):  # every GPU, under the system lines
            assert any(ln.startswith(f"{i} ") or f"│{i} " in ln for ln in glines[1:]), glines
        assert gpu.region.y > sysp.region.y
        if size == (80, 24):
            assert sysp.size.height == 2 and "d120G" in lines[1]
            assert screen.query_one("#gpu-box").border_title == "GPU · system"
        else:
            assert "disk 120.5G free" in text
            hist = [ln for ln in lines if ln[:2] in {f"{k} " for k in range(8)}]
            assert len(hist) == 8  # a history line per GPU
            six = next(ln for ln in hist if ln.startswith("6 "))
            assert "85°" in six and "44G" not in six and "43G" in six
            assert "▁" in six and "█" in six  # it warmed up over the run


async def test_system_panel_without_rows_says_so_and_y_toggles(fx):
    run = write_run(Path("runs"), "20250114-090000-demo", epochs=3, with_eval=False)
    (run / runs.SYSTEM).unlink()
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_live(pilot, run)
        assert not screen.has_class("-sys")  # nothing to show: the classic screen
        await pilot.press("y")
        await pilot.pause(0.1)
        sysp = screen.query_one(SystemPanel)
        assert screen.has_class("-sys") and sysp.display
        assert panel_lines(sysp) == ["no system samples (system.jsonl is empty)"]
        await pilot.press("y")
        await pilot.pause(0.1)
        assert not screen.has_class("-sys")


async def test_old_system_rows_show_gpu_history_without_host_figures(fx):
    run = write_run(Path("runs"), "20250112-090000-demo", epochs=5, with_eval=False)
    write_gpus8_system(run)
    app = make_app()
    async with app.run_test(size=(200, 60)) as pilot:
        screen = await open_live(pilot, run)
        assert not screen.has_class("-sys")  # as the screen always was (its snapshots)
        await pilot.press("y")
        await pilot.pause(0.2)
        lines = panel_lines(screen.query_one(SystemPanel))
        assert lines[0] == "host: not recorded by this run"
        assert any(ln.startswith("7 ") and "80°" in ln for ln in lines)


async def test_system_rows_are_read_incrementally(fx):
    run = host_run(Path("runs"), status="running", n=10)
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_live(pilot, run)
        sysp = screen.query_one(SystemPanel)
        await until(pilot, lambda: sysp.history.rows == 10)
        offset = screen._system_tail.offset  # noqa: SLF001
        more = host_rows(15)[10:]
        more[-1]["cpu_percent"] = 99.0
        runs.append_rows(run / runs.SYSTEM, more)
        await until(pilot, lambda: sysp.history.rows == 15, what="5 new samples")
        assert screen._system_tail.offset > offset  # noqa: SLF001 - read on from there
        await pilot.pause(0.1)
        assert "CPU 99%" in panel_lines(sysp)[0]


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
def test_snapshot_live_system_panel(fx, snap_compare, size):
    run = host_run(Path("runs"))

    async def before(pilot):
        await open_live(pilot, run)
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=before)


# --------------------------------------------------------------------------- 10b: e


def _train_and_stop(root: Path) -> Path:
    """A tiny demo run trained in the background until best.pt exists, then stopped."""
    from typer.testing import CliRunner

    from slr_tui.cli import app as cli
    from tests.conftest import TINY_SETS

    sets = []
    for s in [*TINY_SETS, "training.max_epochs=10000"]:
        sets += ["--set", s]
    res = CliRunner().invoke(
        cli, ["run", "--preset", "demo", "--runs-dir", str(root), "--detach", *sets]
    )
    assert res.exit_code == 0, res.output
    run_dir = root / res.output.strip()
    deadline = time.time() + 120
    while time.time() < deadline and not (run_dir / "best.pt").exists():
        time.sleep(0.2)
    assert (run_dir / "best.pt").exists()
    res = CliRunner().invoke(cli, ["stop", run_dir.name, "--runs-dir", str(root), "--wait", "60"])
    assert res.exit_code == 0, res.output
    assert runs.load_run(run_dir).status == "stopped"
    assert not (run_dir / runs.EVAL_DIR).exists()
    return run_dir


async def test_e_evaluates_a_stopped_run_into_eval_rescore(tmp_path, monkeypatch):
    monkeypatch.setenv("SLR_CACHE_DIR", str(tmp_path / "cache"))
    run_dir = _train_and_stop(tmp_path / "runs")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLR_CONFIG", str(tmp_path / "config.yaml"))
    app = make_app(clock=time.time)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_live(pilot, Path("runs") / run_dir.name)
        status = screen.query_one("#live-status").render().plain
        assert "press e to evaluate" in status and f"slr eval {run_dir.name}" in status
        await pilot.press("3")
        await pilot.pause(0.2)
        note = screen.query_one("#per-class-note").render().plain
        assert "press e" in note
        await pilot.press("e")
        await until(pilot, lambda: screen.evaluating is not None, what="evaluating")
        await until(pilot, lambda: screen.eval_loaded and screen.evaluating is None, 90, "eval")
        assert (run_dir / "eval-rescore" / "report.json").is_file()
        assert not (run_dir / runs.EVAL_DIR).exists()  # eval/ is never written
        await pilot.pause(0.2)
        assert screen.eval_dir is not None and screen.eval_dir.name == "eval-rescore"
        table = screen.query_one("#per-class-table", SortableTable)
        assert table.row_count == len(screen.eval["per_class"][screen.split]) > 0
        label = str(screen.query_one("#live-tabs").get_tab("per-class").label)
        assert "rescore" in label
        assert "eval-rescore/" in screen.query_one("#per-class-note").render().plain
        assert "press e" not in screen.query_one("#live-status").render().plain
        await pilot.press("e")  # a second time: it is there already, nothing is redone
        await pilot.pause(0.2)
        assert screen.evaluating is None


def test_host_keys_are_the_telemetry_ones():
    from engine.telemetry import HOST_KEYS as written
    from slr_tui.widgets.system_panel import HOST_KEYS as read

    assert read == written


async def test_e_refuses_what_it_cannot_evaluate(fx):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_live(pilot, fx["running"])  # still training
        await pilot.press("e")
        await pilot.pause(0.1)
        assert screen.evaluating is None and screen.eval_hint() is None
        assert any("still training" in n.message for n in app._notifications)  # noqa: SLF001
        await pilot.press("escape")
        screen = await open_live(pilot, fx["failed"])  # failed before training: no best.pt
        await pilot.press("e")
        await pilot.pause(0.1)
        assert screen.evaluating is None and screen.eval_hint() is None
        assert any("no best.pt" in n.message for n in app._notifications)  # noqa: SLF001
    app = make_app(read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_live(pilot, fx["failed"])
        assert screen.check_action("evaluate", ()) is False
