import os
import subprocess
import sys

import pytest

from engine import runs


def test_runs_module_imports_no_torch():
    code = "import sys, engine.runs, engine.config, slr_tui.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_runs_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("SLR_RUNS_DIR", raising=False)
    assert runs.runs_dir() == runs.Path("runs")
    monkeypatch.setenv("SLR_RUNS_DIR", str(tmp_path / "env"))
    assert runs.runs_dir() == tmp_path / "env"
    assert runs.runs_dir(tmp_path / "flag") == tmp_path / "flag"


def test_run_ids_sort_by_time_and_hold_preset(tmp_path):
    a = runs.new_run_id("demo", now=1_700_000_000)
    b = runs.new_run_id("wlasl300-recommended", now=1_700_000_100)
    assert a < b and a.endswith("-demo") and b.endswith("-wlasl300-recommended")
    d1 = runs.create_run_dir(tmp_path, "demo")
    d2 = runs.create_run_dir(tmp_path, "demo")
    assert d1 != d2 and d1.is_dir() and d2.is_dir()


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    p = tmp_path / "run.json"
    runs.atomic_write_json(p, {"a": 1})
    runs.atomic_write_json(p, {"a": 2})
    assert runs.read_json(p) == {"a": 2}
    assert [x.name for x in tmp_path.iterdir()] == ["run.json"]


def test_atomic_write_failure_keeps_old_file(tmp_path):
    p = tmp_path / "run.json"
    runs.atomic_write_json(p, {"ok": True})

    class Unprintable:
        def __str__(self):
            raise RuntimeError("cannot serialise")

    with pytest.raises(RuntimeError):
        runs.atomic_write_json(p, {"bad": Unprintable()})
    assert runs.read_json(p) == {"ok": True}
    assert [x.name for x in tmp_path.iterdir()] == ["run.json"]


def test_jsonl_tail_is_incremental_and_skips_torn_line(tmp_path):
    p = tmp_path / "metrics.jsonl"
    tail = runs.JsonlTail(p)
    assert tail.read_new() == []
    runs.append_jsonl(p, {"kind": "step", "step": 1})
    runs.append_jsonl(p, {"kind": "step", "step": 2})
    assert [r["step"] for r in tail.read_new()] == [1, 2]
    offset = tail.offset
    with open(p, "ab") as f:
        f.write(b'{"kind": "step", "st')  # torn: a writer died mid-line
    assert tail.read_new() == [] and tail.offset == offset
    with open(p, "ab") as f:
        f.write(b'ep": 3}\n')  # ... or was only slow: the line completes
    assert [r["step"] for r in tail.read_new()] == [3]
    with open(p, "ab") as f:
        f.write(b"not json\n")
    runs.append_jsonl(p, {"kind": "epoch", "epoch": 1})
    assert [r["kind"] for r in tail.read_new()] == ["epoch"]
    assert tail.skipped == 1


def test_read_jsonl_skips_torn_last_line(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_bytes(b'{"a": 1}\n{"a": 2}\n{"a": ')
    assert runs.read_jsonl(p) == [{"a": 1}, {"a": 2}]


def test_tail_starts_over_when_file_replaced(tmp_path):
    p = tmp_path / "m.jsonl"
    runs.append_jsonl(p, {"a": 1})
    runs.append_jsonl(p, {"a": 2})
    tail = runs.JsonlTail(p)
    assert len(tail.read_new()) == 2
    p.unlink()
    runs.append_jsonl(p, {"a": 9})
    assert tail.read_new() == [{"a": 9}]


def _make_run(root, name, **meta):
    d = root / name
    d.mkdir(parents=True)
    runs.atomic_write_json(d / "run.json", {"id": name, **meta})
    return d


def test_resolve_by_id_prefix_and_path(tmp_path):
    _make_run(tmp_path, "20250101-000000-demo", status="finished", started_at=1)
    _make_run(tmp_path, "20250102-000000-demo", status="finished", started_at=2)
    assert runs.resolve_run("20250101-000000-demo", tmp_path).id == "20250101-000000-demo"
    assert runs.resolve_run("20250102", tmp_path).id == "20250102-000000-demo"
    assert runs.resolve_run(str(tmp_path / "20250101-000000-demo"), "/nonexistent").id.startswith(
        "20250101"
    )
    with pytest.raises(runs.RunError, match="matches 2 runs"):
        runs.resolve_run("2025010", tmp_path)
    with pytest.raises(runs.RunError, match="no run"):
        runs.resolve_run("1999", tmp_path)
    assert [r.id for r in runs.list_runs(tmp_path)] == [
        "20250102-000000-demo",
        "20250101-000000-demo",
    ]


def test_running_run_with_dead_process_is_lost(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    _make_run(tmp_path, "dead", status="running", pid=proc.pid, host=runs.hostname())
    _make_run(tmp_path, "alive", status="running", pid=os.getpid(), host=runs.hostname())
    _make_run(tmp_path, "elsewhere", status="running", pid=proc.pid, host="another-box")
    by_id = {r.id: r.status for r in runs.list_runs(tmp_path)}
    assert by_id == {"dead": "lost", "alive": "running", "elsewhere": "running"}


def test_iter_epochs_keeps_last_row_per_epoch():
    rows = [
        {"kind": "epoch", "epoch": 1, "v": 1},
        {"kind": "step", "epoch": 2},
        {"kind": "epoch", "epoch": 2, "v": 2},
        {"kind": "epoch", "epoch": 2, "v": 3},
    ]
    assert [r["v"] for r in runs.iter_epochs(rows)] == [1, 3]


def test_json_is_strict_nan_becomes_null(tmp_path):
    import numpy as np

    p = tmp_path / "x.json"
    runs.atomic_write_json(
        p, {"a": float("nan"), "b": np.float32(1.5), "c": np.arange(3), "d": [float("inf")]}
    )
    assert "NaN" not in p.read_text()
    assert runs.read_json(p) == {"a": None, "b": 1.5, "c": [0, 1, 2], "d": [None]}


# --------------------------------------------------------------------------- tailing


def test_tail_from_end_starts_at_a_whole_line(tmp_path):
    p = tmp_path / "log.txt"
    p.write_bytes(b"aaaa\nbbbb\ncccc\n")
    assert runs.Tail(p, from_end=10).read_lines() == [b"bbbb", b"cccc"]  # edge: kept whole
    assert runs.Tail(p, from_end=8).read_lines() == [b"cccc"]  # cut: left out
    assert runs.Tail(p, from_end=100).read_lines() == [b"aaaa", b"bbbb", b"cccc"]


def test_tail_skips_all_of_a_cut_line_even_when_it_is_still_being_written(tmp_path):
    p = tmp_path / "system.jsonl"
    p.write_bytes(b'{"t": 1}\n{"t": 2, "gpus": [], "pad": "' + b"x" * 50)
    tail = runs.JsonlTail(p, from_end=20)
    assert tail.read_new() == []
    with open(p, "ab") as f:
        f.write(b'xx"}\n{"t": 3}\n')
    assert tail.read_new() == [{"t": 3}] and tail.skipped == 0


def test_tail_starts_over_when_the_file_is_replaced_by_a_longer_one(tmp_path):
    p = tmp_path / "m.jsonl"
    runs.append_jsonl(p, {"a": 1})
    tail = runs.JsonlTail(p)
    assert tail.read_new() == [{"a": 1}]
    new = tmp_path / "new.jsonl"
    runs.append_rows(new, [{"b": 1}, {"b": 2}, {"b": 3}])
    os.replace(new, p)  # rotated: another inode, larger than the offset
    assert tail.read_new() == [{"b": 1}, {"b": 2}, {"b": 3}]


def test_a_missing_or_unreadable_file_has_no_new_lines(tmp_path):
    assert runs.TextTail(tmp_path / "none.txt").read_new() == []
    (tmp_path / "dir.jsonl").mkdir()
    assert runs.JsonlTail(tmp_path / "dir.jsonl").read_new() == []
    assert runs.last_lines(tmp_path / "none.txt", 100) == []


def test_last_lines_breaks_at_carriage_returns_and_keeps_the_line_being_written(tmp_path):
    p = tmp_path / "extract.log"
    p.write_bytes(b"$ slr extract\n12 videos selected\n\n 10%\r 20%\r 30")
    assert runs.last_lines(p, 1000) == [
        "$ slr extract",
        "12 videos selected",
        " 10%",
        " 20%",
        " 30",
    ]
    assert runs.last_lines(p, 16) == [" 10%", " 20%", " 30"]  # the cut "...selected" left out
    assert runs.last_lines(p, 2) == ["30"]  # no break in the window: what there is of it
