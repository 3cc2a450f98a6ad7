"""The new-run screen's data-check panel (``slr data check --json`` in a subprocess) and the
landmark extraction screen (``slr extract`` detached), through Textual's Pilot."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from engine import config as cfgmod
from engine import runs
from slr_tui import launch
from slr_tui.screens.extract import ExtractScreen, progress_line
from slr_tui.screens.new_run import NewRunScreen
from slr_tui.settings import Settings, save_settings
from slr_tui.widgets.data_check import DataCheckPanel, report_view
from tests.fixtures_runs import make_app, until

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty run store in ``tmp_path/runs``, settings in ``tmp_path/config.yaml``."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLR_CONFIG", str(tmp_path / "config.yaml"))
    (tmp_path / "runs").mkdir()
    return tmp_path


def name_roots(workdir: Path, **roots: Path) -> None:
    save_settings(
        Settings(dataset_roots={k: str(v) for k, v in roots.items()}), workdir / "config.yaml"
    )


def plain(renderable) -> str:
    console = Console(width=48, record=True, file=io.StringIO())  # the panel's width
    console.print(renderable)
    return console.export_text()


async def pick(pilot, nr: NewRunScreen, label: str) -> None:
    await until(pilot, lambda: any(d["label"] == label for d in nr.datasets))
    ds = next(d for d in nr.datasets if d["label"] == label)
    nr.query_one("#dataset-list").highlighted = nr.datasets.index(ds)
    await until(pilot, lambda: nr.dataset is ds and nr.preset is not None)


async def test_new_run_shows_the_data_check_of_a_wlasl_root(workdir):
    from tests.wlasl_fixture import make_wlasl_root

    fx = make_wlasl_root(workdir / "WLASL", glosses=4, missing=1, corrupt=1)
    name_roots(workdir, wlasl=fx.root)
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n")
        nr = app.screen
        assert isinstance(nr, NewRunScreen)
        panel = nr.query_one("#data-check", DataCheckPanel)
        await until(pilot, lambda: nr.preset is not None)
        assert not nr.query_one("#nr-data").display  # the demo: no panel

        await pick(pilot, nr, "wlasl")
        await until(pilot, lambda: nr.query_one("#nr-data").display)  # after the debounce
        # the wlasl100 presets ask for 100 glosses: the check's one-line error
        await until(pilot, lambda: panel.state == "error", timeout=15, what="the first check")
        assert "holds 4 glosses" in panel.error and "\n" not in panel.error
        assert "holds 4 glosses" in str(panel.render())

        nr.query_one("#ov-sets").value = "data.subset=4"  # --set data.* goes along
        await until(pilot, lambda: panel.state == "checking")
        await until(pilot, lambda: panel.state == "ok", timeout=15, what="the second check")
        r = panel.report
        assert {k: r["train"][k] for k in ("listed", "present", "missing", "unreadable")} == {
            "listed": 12,
            "present": 11,
            "missing": 1,
            "unreadable": 1,
        }
        assert (r["val"]["listed"], r["val"]["missing"], r["test"]["unreadable"]) == (4, 0, 0)
        shown = plain(report_view(r))
        assert "unreadable" in shown and "classes 4" in shown and "imbalance 1.5:1" in shown
        assert "min 2, mean 2.5, max 3" in shown and "every class has training videos" in shown

        # results are kept per (preset, root, data overrides): back and forth is instant
        checks = dict(nr.data_checks)
        await pick(pilot, nr, "demo")
        await until(pilot, lambda: not nr.query_one("#nr-data").display)
        await pick(pilot, nr, "wlasl")
        await until(pilot, lambda: nr.query_one("#nr-data").display)
        await pilot.pause(0.3)
        assert panel.state == "ok" and panel.report == r and nr.data_checks == checks


async def test_extract_screen_runs_an_extraction_to_the_end(workdir, monkeypatch):
    pytest.importorskip("mediapipe")
    pytest.importorskip("skimage")
    from tests.pose_fixture import make_astronaut_folder

    videos = workdir / "clips"
    make_astronaut_folder(videos, {"train": {"nod": 1, "wave": 1}}, frames=6, width=160, height=160)
    name_roots(workdir, video_folder=videos)
    monkeypatch.setattr(ExtractScreen, "POLL_S", 0.3)
    out = workdir / "cache"
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n")
        nr = app.screen
        await pick(pilot, nr, "video_folder")
        names = [p["name"] for p in nr.fitting_presets(nr.dataset)]
        nr.query_one("#preset-list").highlighted = names.index("wlasl100-conservative")
        await until(pilot, lambda: nr.preset["name"] == "wlasl100-conservative")
        nr.query_one("#ov-sets").value = "data.source=video_folder"
        await until(
            pilot, lambda: nr.data_key is not None and "data.source=video_folder" in nr.data_key[2]
        )
        nr.query_one("#dataset-list").focus()
        await pilot.press("x")
        ex = app.screen
        assert isinstance(ex, ExtractScreen)
        assert ex.query_one("#ex-out").value == str(videos) + "-landmarks"
        assert ex.sets == ["data.source=video_folder"]
        ex.query_one("#ex-out").value = str(out)
        ex.query_one("#ex-workers").value = "1"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: ex.proc is not None, what="the extraction to start")
        await until(pilot, lambda: ex.returncode is not None, timeout=25, what="it to end")
        assert ex.returncode == 0, ex.last_line
        assert ex.npz == 2 and ex.total == 2
        status = str(ex.query_one("#ex-status").render())
        assert "finished: 2 of 2 videos" in status
        assert f"data.root={out}" in str(ex.query_one("#ex-log").render())
        assert len(list((out / "landmarks").rglob("*.npz"))) == 2
        assert (out / "manifest.csv").is_file()
        await pilot.press("escape")
        assert app.screen is nr and nr.extracts[str(out)] is ex.proc


def test_the_extract_screen_follows_only_the_latest_run(tmp_path):
    """A new extraction into the same folder starts its job folder afresh, so the screen
    reads that run's progress rows only; each row becomes one line for people."""
    out = tmp_path / "cache"
    old = launch.extract_job_dir(out)
    old.mkdir()
    (old / launch.PROGRESS).write_text('{"kind": "plan", "selected": 5, "skipped": 0, "todo": 5}\n')
    job = launch.start_extract(cfgmod.resolve(preset="demo"), out, old)  # no videos: fails
    with job:
        assert launch.follow(job) == 2
        rows = runs.read_jsonl(old / launch.PROGRESS)
        assert [r["kind"] for r in rows] == ["end"]
        assert job.outcome()[1] and "\n" not in job.outcome()[1]
    assert not out.exists()
    assert progress_line({"kind": "video", "done": 1, "total": 2, "frames": 8, "fps": 4.0}) == (
        "videos 1/2: 8 frames, 4.0 frames/s"
    )
    assert progress_line({"kind": "probe", "done": 3, "total": 9}) == "probing videos 3/9"
    assert progress_line({"kind": "end", "code": 0, "error": None}) is None
