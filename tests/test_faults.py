"""Issue 9: every run ends with a true status, and readers survive any file.

Early stops, every failure path (the engine rejecting config.json, an exception in set-up,
a failed write, a full disk), malformed run folders read by `slr runs/show/compare` and
by the TUI, a torn metrics line, resuming a finished run, the active duration of a
resumed run.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine import runs
from slr_tui import cli, launch
from tests.conftest import tiny_cfg
from tests.fixtures_runs import fixed_runs, make_app, to_row, until, write_run

runner = CliRunner()


def invoke(*args):
    return runner.invoke(cli.app, [str(a) for a in args])


def meta_of(run_dir: Path) -> dict:
    return json.loads((run_dir / runs.RUN_JSON).read_text())


def temp_files(run_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if ".tmp" in p.name)


# --------------------------------------------------------------------------- early stops


def _prepared(tmp_path: Path) -> Path:
    return launch.prepare_run(tiny_cfg("training.max_epochs=1"), tmp_path / "runs")


@pytest.mark.parametrize("delay", [0.0, 0.2, 1.0])
def test_an_early_sigterm_ends_stopped(tmp_path, delay):
    """However early the stop comes (even before the engine's handler is in), the run ends
    `stopped`, with a log line, not killed and left `starting` (shown `lost`)."""
    run_dir = _prepared(tmp_path)
    proc = launch.spawn(run_dir)
    time.sleep(delay)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 130
    meta = meta_of(run_dir)
    assert meta["status"] == "stopped" and meta["pid"] is None and meta["ended_at"]
    assert meta["error"] is None
    assert runs.load_run(run_dir).status == "stopped"
    assert "stop requested (SIGTERM)" in (run_dir / runs.LOG).read_text()


def test_an_early_sigterm_to_a_bare_engine_ends_stopped(tmp_path):
    """`python -m engine train` started by hand (no launcher): its handler is installed
    before the heavy imports, so a stop 0.2 s in is a stop."""
    run_dir = _prepared(tmp_path)
    cmd = [sys.executable, "-m", "engine", "train", "--config", str(run_dir / runs.CONFIG_JSON)]
    proc = subprocess.Popen(
        [*cmd, "--run-dir", str(run_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err.decode()
    assert meta_of(run_dir)["status"] == "stopped"
    assert "stop requested (SIGTERM)" in (run_dir / runs.LOG).read_text()


def test_a_stop_before_training_in_process(tmp_path):
    from engine.train import EXIT_STOPPED, StopFlag, run_training

    stop = StopFlag()
    stop.set("SIGTERM")
    run_dir = tmp_path / "r"
    assert run_training(tiny_cfg(), run_dir, stop=stop) == EXIT_STOPPED
    meta = meta_of(run_dir)
    assert meta["status"] == "stopped" and meta["preset"] == "demo" and meta["pid"] is None
    assert "before training started" in (run_dir / runs.LOG).read_text()


def test_the_launcher_settles_an_engine_killed_before_recording(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for code, status, error in (
        (-signal.SIGTERM, "stopped", None),
        (-signal.SIGKILL, "failed", "engine killed by SIGKILL"),
        (3, "failed", "engine exited with code 3"),
    ):
        d = tmp_path / f"r{code}"
        d.mkdir()
        runs.atomic_write_json(
            d / runs.RUN_JSON,
            {"id": d.name, "status": "starting", "pid": dead.pid, "host": runs.hostname()},
        )
        assert launch.settle(d, code) == status
        meta = meta_of(d)
        assert (meta["status"], meta["error"], meta["pid"]) == (status, error, None)
        assert launch.settle(d, code) is None  # already ended: left alone


# --------------------------------------------------------------------------- failures


def test_config_rejected_by_the_engine_on_resume_is_failed(tmp_path):
    """`--resume` resets run.json to `starting`; when the engine then rejects config.json
    the run is `failed` with the reason (it used to stay `starting` forever)."""
    root = tmp_path / "runs"
    run_dir = write_run(root, "20250101-090000-demo", status="stopped", epochs=2, with_eval=False)
    (run_dir / "last.pt").write_bytes(b"never read: the config is rejected first")
    cfg = json.loads((run_dir / runs.CONFIG_JSON).read_text())
    cfg["training"]["max_epochs"] = "many"
    (run_dir / runs.CONFIG_JSON).write_text(json.dumps(cfg))
    res = invoke("run", "--resume", run_dir.name, "--runs-dir", root, "--quiet")
    assert res.exit_code != 0 and "Traceback" not in res.output
    meta = meta_of(run_dir)
    assert meta["status"] == "failed" and "max_epochs" in meta["error"]
    assert meta["pid"] is None and meta["ended_at"]
    assert "max_epochs" in res.output


def test_config_rejected_by_the_engine_main(tmp_path):
    from engine.__main__ import main

    root = tmp_path / "runs"
    run_dir = write_run(root, "20250101-090000-demo", status="stopped", epochs=1, with_eval=False)
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    assert main(["train", "--config", str(bad), "--run-dir", str(run_dir)]) == 2
    meta = meta_of(run_dir)
    assert meta["status"] == "failed" and "expected a mapping" in meta["error"]
    assert "error:" in (run_dir / runs.LOG).read_text()


def test_an_exception_in_setup_is_failed(tmp_path, monkeypatch):
    from engine import train
    from engine.errors import DataError

    def explode(self):
        raise RuntimeError("setup exploded")

    monkeypatch.setattr(train.Trainer, "setup", explode)
    run_dir = tmp_path / "r"
    assert train.run_training(tiny_cfg(), run_dir) == train.EXIT_FAILED
    meta = meta_of(run_dir)
    assert meta["status"] == "failed" and meta["error"] == "RuntimeError: setup exploded"
    assert meta["pid"] is None and meta["ended_at"] and meta["preset"] == "demo"
    assert "Traceback" in (run_dir / runs.LOG).read_text()

    def no_data(self):
        raise DataError("no samples in the data root")

    monkeypatch.setattr(train.Trainer, "setup", no_data)
    assert train.run_training(tiny_cfg(), tmp_path / "r2") == train.EXIT_BAD_INPUT
    meta = meta_of(tmp_path / "r2")
    assert meta["status"] == "failed" and meta["error"] == "no samples in the data root"


def test_a_write_error_while_training_is_failed(tmp_path, monkeypatch):
    from engine import train

    real = runs.append_jsonl

    def flaky(path, obj):
        if obj.get("kind") == "epoch":
            raise OSError(errno.EIO, "Input/output error", str(path))
        real(path, obj)

    monkeypatch.setattr(runs, "append_jsonl", flaky)
    run_dir = tmp_path / "r"
    assert train.run_training(tiny_cfg("training.max_epochs=1"), run_dir) == train.EXIT_FAILED
    meta = meta_of(run_dir)
    assert meta["status"] == "failed" and "Input/output error" in meta["error"]
    assert meta["pid"] is None and temp_files(run_dir) == []


# --------------------------------------------------------------------------- full disk


class Disk:
    """A small file system to fill: a tmpfs when this runs as root and mount works, else
    the real disk with the writers patched to raise ENOSPC once it is "full"."""

    def __init__(self, path: Path, tmpfs: bool, monkeypatch):
        self.path, self.tmpfs, self.mp = path, tmpfs, monkeypatch
        self.filler = path / "filler"

    def fill(self, leave: int = 0) -> None:
        """Leave about ``leave`` bytes free (0: full). Patched: checkpoints fail, and with
        ``leave=0`` every atomic write too (run.json must then be written in place)."""
        if not self.tmpfs:
            self._patch(every_write=leave == 0)
            return
        chunk = b"\0" * (1 << 16)
        with open(self.filler, "wb") as f:
            try:
                while True:
                    f.write(chunk)
                    f.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        if leave:
            with open(self.filler, "r+b") as f:
                f.truncate(max(0, self.filler.stat().st_size - leave))

    def _patch(self, every_write: bool) -> None:
        from engine import checkpoint

        def full(*_a, **_k):
            raise OSError(errno.ENOSPC, "No space left on device")

        self.mp.setattr(checkpoint, "save_checkpoint", full)
        if every_write:
            self.mp.setattr(runs, "atomic_write_bytes", full)
            self.mp.setattr(runs, "check_free_space", lambda *_a, **_k: None)


@pytest.fixture
def disk(tmp_path, monkeypatch):
    path = tmp_path / "disk"
    path.mkdir()
    mounted = False
    if os.geteuid() == 0:
        res = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(path)], capture_output=True
        )
        mounted = res.returncode == 0
    try:
        yield Disk(path, mounted, monkeypatch)
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.mark.parametrize("leave", [0, 48 * 1024], ids=["full", "no-room-for-a-checkpoint"])
def test_a_full_disk_while_training_is_failed_with_one_line(disk, leave):
    from engine.train import EXIT_FAILED, run_training

    run_dir = launch.prepare_run(tiny_cfg("training.max_epochs=1"), disk.path / "runs")
    disk.fill(leave)
    assert run_training(tiny_cfg("training.max_epochs=1"), run_dir) == EXIT_FAILED
    meta = json.loads((run_dir / runs.RUN_JSON).read_text())  # written even on a full disk
    assert meta["status"] == "failed" and meta["pid"] is None, meta
    assert meta["error"].startswith("no space left on ") and "\n" not in meta["error"]
    if disk.tmpfs:
        assert str(disk.path) in meta["error"]
    assert temp_files(run_dir) == []
    assert runs.load_run(run_dir).status == "failed"
    res = invoke("show", run_dir, "--runs-dir", disk.path / "runs")
    assert res.exit_code == 0 and "no space left on" in res.output


def test_starting_on_a_full_disk_is_one_line_and_no_folder(disk):
    root = disk.path / "runs"
    root.mkdir()
    disk.fill(0)
    res = invoke("run", "--preset", "demo", "--runs-dir", root, "--quiet")
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no space left on "), res.output
    assert list(root.iterdir()) == []


def test_atomic_writers_remove_their_temp_file_on_any_failure(tmp_path):
    target = tmp_path / "x.bin"

    def half_then_full(f):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as info:
        runs.atomic_write_file(target, half_then_full)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert list(tmp_path.iterdir()) == []
    assert runs.no_space_line(info.value, tmp_path) == (
        f"no space left on {runs.mount_point(tmp_path)} ({target})"
    )


def test_run_json_is_written_in_place_when_no_temp_file_fits(tmp_path, monkeypatch):
    path = tmp_path / runs.RUN_JSON
    runs.atomic_write_json(path, {"id": "r", "status": "running", "epoch": 3, "pad": "x" * 200})

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runs, "atomic_write_bytes", full)
    runs.update_run_json(tmp_path, {"status": "failed", "error": "no space left on /"})
    meta = json.loads(path.read_text())
    assert meta["status"] == "failed" and meta["epoch"] == 3
    assert [p.name for p in tmp_path.iterdir()] == [runs.RUN_JSON]


# --------------------------------------------------------------------------- malformed files


BAD = {
    "bad-list": "run.json is a list",
    "bad-epoch": 'run.json has "epoch": "three"',
    "bad-config": "config.json is a list",
    "bad-metrics": 'metrics rows with "epoch": "x" and "step": "y"',
    "bad-report": 'report.json is {"val": 5}',
    "torn": "run.json cut short",
}


def _write_bad_runs(root: Path) -> None:
    for i, name in enumerate(BAD):
        write_run(root, name, seed=i, t0=1735722000.0 + 3600 * (i + 10))
    (root / "bad-list" / runs.RUN_JSON).write_text("[1, 2, 3]")
    meta = json.loads((root / "bad-epoch" / runs.RUN_JSON).read_text())
    meta["epoch"] = "three"
    (root / "bad-epoch" / runs.RUN_JSON).write_text(json.dumps(meta))
    (root / "bad-config" / runs.CONFIG_JSON).write_text("[]")
    with open(root / "bad-metrics" / runs.METRICS, "a") as f:
        f.write('{"kind": "epoch", "epoch": "x", "val_acc": 0.5, "t": 1}\n')
        f.write('{"kind": "step", "step": "y", "train_loss": 1.0, "epoch": 13}\n')
        f.write('{"kind": "epoch", "epoch": 13, "val_acc": "high", "lr": "fast", "t": 2}\n')
        f.write("[1, 2]\n")
    (root / "bad-report" / runs.EVAL_DIR / "report.json").write_text('{"val": 5}')
    text = (root / "torn" / runs.RUN_JSON).read_text()
    (root / "torn" / runs.RUN_JSON).write_text(text[: len(text) // 2])


@pytest.fixture
def bad_runs(tmp_path, monkeypatch):
    with fixed_runs(tmp_path, monkeypatch) as paths:
        _write_bad_runs(tmp_path / "runs")
        monkeypatch.setattr(cli.console, "width", 250)
        yield paths


def test_readers_mark_a_bad_run_json_unreadable(tmp_path):
    _write_bad_runs(tmp_path)
    by_id = {r.path.name: r for r in runs.list_runs(tmp_path)}
    assert set(by_id) == set(BAD)
    assert by_id["bad-list"].status == "unreadable"
    assert by_id["bad-list"].problem == "run.json holds a list, not an object"
    assert by_id["bad-epoch"].status == "unreadable"
    assert by_id["bad-epoch"].problem == "run.json: epoch is 'three', not an integer"
    assert by_id["bad-epoch"].preset == "demo"  # what could be read is kept
    for name in ("bad-config", "bad-metrics", "bad-report"):
        assert by_id[name].status == "finished"
    assert by_id["bad-config"].config() == {}
    assert by_id["bad-report"].report() == {}
    epochs = list(runs.iter_epochs(by_id["bad-metrics"].metrics()))
    assert [r["epoch"] for r in epochs] == [*range(1, 13), 13]
    assert epochs[-1]["val_acc"] is None and epochs[-1]["lr"] is None


def test_a_torn_run_json_is_rebuilt(tmp_path):
    _write_bad_runs(tmp_path)
    good = write_run(tmp_path, "good", seed=9)
    want = meta_of(good)
    torn = runs.load_run(tmp_path / "torn")
    assert torn.problem is None and torn.status == "lost"  # no live process: resumable
    m = torn.meta
    assert (m["preset"], m["dataset"], m["max_epochs"], m["epoch"]) == (
        want["preset"],
        want["dataset"],
        want["max_epochs"],
        want["epoch"],
    )
    assert m["best_metric"] == want["best_metric"] and m["best_epoch"] == want["best_epoch"]
    assert m["monitor"] == "val_acc" and m["step"] == want["step"]


def test_slr_runs_show_and_compare_survive_malformed_runs(bad_runs):
    res = invoke("runs", "--runs-dir", "runs")
    assert res.exit_code == 0, res.output
    for name in (*BAD, "20250101-090000-demo", "20250105-090000-demo"):
        assert name in res.output
    assert res.output.count("unreadable") >= 4  # two rows, two reasons
    assert "unreadable: bad-list: run.json holds a list, not an object" in res.output
    assert "epoch is 'three', not an integer" in res.output
    res = invoke("runs", "--runs-dir", "runs", "--json")
    assert res.exit_code == 0
    rows = {r["path"].rsplit("/", 1)[-1]: r for r in json.loads(res.output)}
    assert rows["bad-list"]["status"] == "unreadable"

    for name in BAD:
        res = invoke("show", name, "--runs-dir", "runs")
        assert res.exit_code == 0, (name, res.output)
        assert "Traceback" not in res.output
        res = invoke("compare", name, "20250101-090000-demo", "--runs-dir", "runs")
        assert res.exit_code == 0, (name, res.output)
    res = invoke("show", "bad-list", "--runs-dir", "runs")
    assert "unreadable" in res.output and "holds a list" in res.output
    res = invoke("show", "bad-metrics", "--runs-dir", "runs")
    assert "epochs (last 10 of 13)" in res.output


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_tui_survives_malformed_runs(bad_runs):
    from slr_tui.screens.compare import CompareScreen
    from slr_tui.screens.live import LiveRunScreen
    from slr_tui.screens.runs import RunsScreen

    app = make_app()
    async with app.run_test(size=(140, 40)) as pilot:
        screen = app.screen
        await until(pilot, lambda: screen.scans >= 1)
        status = {r["key"]: r["status"] for r in screen.table.rows_data}
        assert len(status) == 5 + len(BAD)
        assert status["bad-list"] == "unreadable" and status["bad-epoch"] == "unreadable"
        assert status["torn"] == "lost" and status["bad-report"] == "finished"
        row = {r["key"]: r for r in screen.table.rows_data}["bad-list"]
        assert row["problem"] == "run.json holds a list, not an object"

        for name in BAD:
            await to_row(pilot, name)
            await pilot.press("enter")
            live = app.screen
            assert isinstance(live, LiveRunScreen)
            await until(pilot, lambda live=live: live.loaded, what=f"{name} loaded")
            if BAD[name].startswith("run.json is") or "three" in BAD[name]:
                assert live.status == "unreadable"
                assert "unreadable:" in str(live.query_one("#live-status").render())
            await pilot.pause(0.2)
            await pilot.press("escape")
            assert isinstance(app.screen, RunsScreen)

        paths = [Path("runs") / n for n in BAD]
        app.push_screen(CompareScreen(paths))
        await pilot.pause()
        cmp_screen = app.screen
        await until(pilot, lambda: cmp_screen.loads >= 1, what="compare loaded")
        await pilot.press("escape")


# --------------------------------------------------------------------------- torn tail


def test_an_append_after_a_torn_tail_keeps_the_new_row(tmp_path):
    p = tmp_path / runs.METRICS
    runs.append_jsonl(p, {"kind": "step", "step": 1})
    with open(p, "ab") as f:
        f.write(b'{"kind": "step", "st')  # the writer died mid-line
    tail = runs.JsonlTail(p)
    assert [r["step"] for r in tail.read_new()] == [1]
    runs.append_jsonl(p, {"kind": "step", "step": 2})  # the resumed run appends
    runs.append_jsonl(p, {"kind": "step", "step": 3})
    assert [r["step"] for r in runs.read_jsonl(p)] == [1, 2, 3]
    assert [r["step"] for r in tail.read_new()] == [2, 3] and tail.skipped == 1
    runs.append_jsonl(tmp_path / "new.jsonl", {"a": 1})  # an empty file: no blank line
    assert (tmp_path / "new.jsonl").read_bytes() == b'{"a":1}\n'


# --------------------------------------------------------------------------- resume


@pytest.mark.parametrize("reason", ["max_epochs", "early_stopping"])
def test_resuming_a_finished_run_is_refused(tmp_path, reason):
    root = tmp_path / "runs"
    run_dir = write_run(root, "20250101-090000-demo", extra_meta={"stop_reason": reason})
    (run_dir / "last.pt").write_bytes(b"x")
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    res = invoke("run", "--resume", run_dir.name, "--runs-dir", root)
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "has finished (12/12 epochs" in lines[0] and reason in lines[0]
    assert "nothing to resume" in lines[0]
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before
    with pytest.raises(runs.RunError, match="has finished"):
        launch.spawn(run_dir, resume=True)


def test_resume_refusals_say_why(tmp_path):
    root = tmp_path / "runs"
    no_ckpt = write_run(root, "a", status="stopped", epochs=0, with_eval=False)
    with pytest.raises(runs.RunError, match="no last.pt to resume from"):
        launch.check_resumable(runs.load_run(no_ckpt))
    bad = write_run(root, "b", status="failed", epochs=1, with_eval=False)
    (bad / runs.RUN_JSON).write_text('{"status": 5}')
    with pytest.raises(runs.RunError, match="cannot be resumed: run.json: status is 5"):
        launch.check_resumable(runs.load_run(bad))
    for status in ("stopped", "failed", "lost"):
        d = write_run(root, f"ok-{status}", status=status, epochs=1, with_eval=False)
        (d / "last.pt").write_bytes(b"x")
        launch.check_resumable(runs.load_run(d))


def test_the_engine_refuses_to_resume_a_finished_run(finished_run, tmp_path):
    import shutil

    from engine.train import EXIT_BAD_INPUT, run_training

    run_dir = tmp_path / finished_run.name
    shutil.copytree(finished_run, run_dir)
    before = (run_dir / runs.RUN_JSON).read_bytes()
    assert run_training(tiny_cfg("training.max_epochs=4"), run_dir, resume=True) == EXIT_BAD_INPUT
    assert (run_dir / runs.RUN_JSON).read_bytes() == before


# --------------------------------------------------------------------------- duration


def test_active_seconds_leave_out_the_gap_between_sessions():
    meta = {"started_at": 100.0, "status": "starting"}
    meta.update(runs.open_session(meta, 100.0))
    assert runs.active_seconds(meta, 130.0, "running") == 30.0
    meta.update(runs.close_session(meta, 140.0), ended_at=140.0, status="stopped")
    assert runs.active_seconds(meta, 10_000.0, "stopped") == 40.0
    meta.update(runs.open_session(meta, 1000.0), ended_at=None, status="running")
    assert runs.active_seconds(meta, 1005.0, "running") == 45.0
    # a session whose process died: counted up to its last update
    meta["updated_at"] = 1010.0
    assert runs.active_seconds(meta, 5000.0, "lost") == 50.0
    # a run recorded before sessions: start to end
    assert runs.active_seconds({"started_at": 10.0, "ended_at": 25.0}, 99.0, "finished") == 15.0


def test_a_resumed_run_counts_only_its_active_time(tmp_path):
    from engine.train import EXIT_OK, EXIT_STOPPED, StopFlag, run_training

    cfg = tiny_cfg("training.max_epochs=2")
    run_dir = tmp_path / "r"
    stop = StopFlag()

    def stop_in_epoch_two(trainer):
        if trainer.epoch == 1 and trainer.step_in_epoch == 1:
            stop.set("test")

    assert run_training(cfg, run_dir, stop=stop, on_step=stop_in_epoch_two) == EXIT_STOPPED
    first = meta_of(run_dir)
    assert first["session_started_at"] is None and first["active_s"] > 0
    time.sleep(2.0)  # the run sits stopped
    assert run_training(cfg, run_dir, resume=True) == EXIT_OK
    meta = meta_of(run_dir)
    wall = meta["ended_at"] - meta["started_at"]
    assert meta["status"] == "finished" and meta["started_at"] == first["started_at"]
    assert meta["active_s"] > first["active_s"] and meta["active_s"] < wall - 1.5
    assert runs.load_run(run_dir).duration_s == pytest.approx(meta["active_s"])
