"""Run management (issue 13): tags and notes in RUN/notes.json (`slr tag`, `slr note`), kept
while the engine rewrites run.json; `slr rm` / `slr archive` / `slr restore` and the run
index leaving .trash/ and archive/ out; `slr runs --filter`; the command line in `slr show`."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine import runs
from engine.recording import Recorder
from slr_tui.cli import app, console
from tests.fixtures_runs import build_runs, write_run

runner = CliRunner()
A, B = "20250101-090000-demo", "20250102-090000-demo"
FAILED, RUNNING, LOST = (
    "20250103-090000-wlasl100-conservative",
    "20250104-090000-demo",
    "20250105-090000-demo",
)


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setattr(console, "_width", 300)  # tables whole, lines unbroken
    root = tmp_path / "runs"
    build_runs(root)
    monkeypatch.setenv("SLR_RUNS_DIR", str(root))
    return root


def invoke(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def one_line_error(res, says):
    assert res.exit_code == 2, res.output
    assert says in res.output and "Traceback" not in res.output
    assert res.output.strip().count("\n") == 0, res.output


def test_help_of_every_new_command():
    for cmd in ("tag", "note", "rm", "archive", "restore"):
        res = invoke(cmd, "--help")
        assert res.exit_code == 0 and "Usage" in res.output, (cmd, res.output)
    assert "--filter" in invoke("runs", "--help").output


def test_tag_adds_removes_and_prints(store):
    res = invoke("tag", A, "+baseline", "ablation", "-nothere")
    assert res.exit_code == 0 and res.output.strip() == f"{A}: baseline ablation"
    res = invoke("tag", A, "-baseline", "+lr-3e-4")
    assert res.output.strip() == f"{A}: ablation lr-3e-4"
    assert invoke("tag", A).output.strip() == f"{A}: ablation lr-3e-4"
    assert invoke("tag", B).output.strip() == f"{B}: (no tags)"
    saved = json.loads((store / A / runs.NOTES_JSON).read_text())
    assert saved["tags"] == ["ablation", "lr-3e-4"]
    runs.check_notes(saved)  # what was written fits the schema
    assert "tags" not in runs.read_json(store / A / runs.RUN_JSON)  # run.json untouched
    one_line_error(invoke("tag", A, "+bad tag"), "bad tag 'bad tag'")
    one_line_error(invoke("tag", A, "-"), "a lone '-'")
    one_line_error(invoke("tag", "nope", "+x"), "no run 'nope'")


def test_note_set_print_clear(store):
    assert invoke("note", A).output.strip() == f"{A}: (no note)"
    res = invoke("note", A, "lr too high, rerun")
    assert res.exit_code == 0 and "lr too high, rerun" in res.output
    assert invoke("note", A).output.strip() == "lr too high, rerun"
    invoke("tag", A, "+keep")
    assert invoke("note", A, "--clear").exit_code == 0
    assert runs.read_notes(store / A) == {
        "tags": ["keep"],
        "note": "",
        "updated_at": runs.read_notes(store / A)["updated_at"],
    }
    one_line_error(invoke("note", A, "x", "--clear"), "not both")
    one_line_error(invoke("note", A, "x" * (runs.MAX_NOTE_CHARS + 1)), "at most")


def test_a_tag_written_while_the_engine_rewrites_run_json_is_kept(store):
    """The engine's recorder merges and renames run.json over and over (as it does every
    epoch); tags written meanwhile by `slr tag` (another thread here) all survive, and the
    engine's records all land too."""
    run_dir = store / RUNNING
    rec = Recorder.reading(run_dir, enabled=True)
    stop = threading.Event()
    writes = []

    def engine() -> None:
        i = 0
        while not stop.is_set() or i < 50:
            i += 1
            rec.update(epoch=i, step=i * 20, last_metrics={"val_acc": i / 1000})
            writes.append(i)

    t = threading.Thread(target=engine)
    t.start()
    try:
        for i in range(40):
            res = invoke("tag", RUNNING, f"+t{i}")
            assert res.exit_code == 0, res.output
    finally:
        stop.set()
        t.join()
    assert runs.read_notes(run_dir)["tags"] == [f"t{i}" for i in range(40)]
    meta = runs.read_json(run_dir / runs.RUN_JSON)
    assert meta["epoch"] == writes[-1] and len(writes) >= 50
    rec.end("stopped")  # the engine's last word reads run.json again: the tags stay
    assert runs.read_notes(run_dir)["tags"][-1] == "t39"


def test_two_writers_of_notes_at_once_lose_nothing(store):
    run_dir = store / A

    def add(prefix: str) -> None:
        for i in range(25):
            runs.update_notes(run_dir, add=[f"{prefix}{i}"])

    threads = [threading.Thread(target=add, args=(p,)) for p in ("x", "y")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tags = set(runs.read_notes(run_dir)["tags"])
    assert tags == {f"{p}{i}" for p in "xy" for i in range(25)}


def test_damaged_notes_read_as_empty(store):
    (store / A / runs.NOTES_JSON).write_text('{"tags": ["ok", 3, ""], "note": 5}')
    assert runs.read_notes(store / A)["tags"] == ["ok"]
    assert runs.read_notes(store / A)["note"] == ""
    (store / A / runs.NOTES_JSON).write_text("{torn")
    assert runs.read_notes(store / A) == {"tags": [], "note": ""}


def test_rm_archive_restore_round_trip(store):
    invoke("tag", A, "+baseline")
    res = invoke("rm", A, "--yes")
    assert res.exit_code == 0, res.output
    assert not (store / A).exists() and (store / runs.TRASH_DIR / A / runs.RUN_JSON).is_file()
    assert A not in [r.path.name for r in runs.list_runs(store)]
    assert A not in [r.path.name for r in runs.list_runs(store, archived=True)]
    res = invoke("archive", B)
    assert res.exit_code == 0 and (store / runs.ARCHIVE_DIR / B).is_dir()
    listed = {r.path.name: r for r in runs.list_runs(store, archived=True)}
    assert B in listed and listed[B].archived and A not in listed
    assert B not in [r.path.name for r in runs.list_runs(store)]
    assert B not in invoke("runs").output and B in invoke("runs", "--archived").output
    res = invoke("restore")
    assert f".trash/{A}" in res.output and f"archive/{B}" in res.output
    assert invoke("restore", A).exit_code == 0 and invoke("restore", "20250102").exit_code == 0
    assert (store / A).is_dir() and (store / B).is_dir()
    assert runs.read_notes(store / A)["tags"] == ["baseline"]  # the notes travel along
    one_line_error(invoke("restore", A), f"no run '{A}'")
    names = {r.path.name for r in runs.list_runs(store)}
    assert {A, B} <= names


def test_active_runs_and_clashes_are_refused(store, tmp_path):
    one_line_error(invoke("rm", RUNNING, "--yes"), "is running: stop it first")
    one_line_error(invoke("archive", RUNNING), "is running: stop it first")
    assert (store / RUNNING).is_dir()
    # without --yes and no terminal: nothing is moved
    res = invoke("rm", A, input="")
    assert res.exit_code == 2 and (store / A).is_dir()
    # a name taken in the trash
    (store / runs.TRASH_DIR / A).mkdir(parents=True)
    one_line_error(invoke("rm", A, "--yes"), "already exists")
    os.rmdir(store / runs.TRASH_DIR / A)
    # a run folder outside the store
    other = write_run(tmp_path / "elsewhere", "20250109-090000-demo", with_eval=False)
    one_line_error(invoke("rm", str(other), "--yes"), "is not in the runs folder")
    # restoring over a run of the same name
    assert invoke("archive", A).exit_code == 0
    write_run(store, A, with_eval=False)
    one_line_error(invoke("restore", A), "already exists")


def test_run_index_sees_notes_change_and_skips_trash_and_archive(store):
    idx = runs.RunIndex(store)
    first = {r.path.name: r for r in idx.scan()}
    assert first[A].tags == [] and len(first) == 5
    runs.update_notes(store / A, add=["new"])
    second = {r.path.name: r for r in idx.scan()}
    assert second[A] is not first[A] and second[A].tags == ["new"]
    assert second[B] is first[B]  # unchanged runs are not read again
    runs.move_run(second[B], store, runs.ARCHIVE_DIR)
    (store / runs.TRASH_DIR / "x").mkdir(parents=True)
    assert set(r.path.name for r in idx.scan()) == {A, FAILED, RUNNING, LOST}
    idx.archived = True
    listed = {r.path.name: r.archived for r in idx.scan()}
    assert listed[B] is True and listed[A] is False and "x" not in listed


def test_runs_filter(store):
    invoke("tag", A, "+baseline")
    invoke("tag", FAILED, "+baseline")
    out = invoke("runs", "--filter", "tag:baseline").output
    assert A in out and FAILED in out and B not in out and "tags" in out
    out = invoke("runs", "-f", "tag:baseline status:finished").output
    assert A in out and FAILED not in out
    out = invoke("runs", "-f", "val_acc>0.9 preset:demo").output
    assert A in out and B not in out  # A's best val acc is 0.96, B's 0.88
    out = invoke("runs", "-f", "epoch<4").output
    assert FAILED in out and LOST in out and A not in out
    res = invoke("runs", "-f", "preset:nothing*")
    assert res.exit_code == 0 and "matches" in res.output
    one_line_error(invoke("runs", "-f", "val_acc>"), "--filter: 'val_acc>'")
    one_line_error(invoke("runs", "-f", "colour:red"), "unknown filter 'colour:'")
    invoke("archive", B)
    assert B in invoke("runs", "-f", "archived").output
    js = json.loads(invoke("runs", "--json", "-f", "tag:baseline").output)
    assert {r["id"] for r in js} == {A, FAILED} and js[0]["tags"] == ["baseline"]


def test_show_prints_the_command_line_tags_and_note(store, monkeypatch, tmp_path):
    invoke("tag", A, "+baseline")
    invoke("note", A, "the reference run")
    res = invoke("show", A)
    cfg = store / A / "config.json"
    assert f"slr run --config {cfg}" in res.output and "--runs-dir" not in res.output
    assert "baseline" in res.output and "the reference run" in res.output
    # a run store that is not the default one: the command line names it
    monkeypatch.delenv("SLR_RUNS_DIR")
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")  # ./runs, the default, is another folder
    res = invoke("show", A, "--runs-dir", store)
    assert f"slr run --config {cfg} --runs-dir {store}" in res.output
    assert Path(cfg).is_file()
