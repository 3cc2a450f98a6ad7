"""`slr sweep --search optuna`: spaces, a study shared by two workers, pruning, the grid
sampler against `--grid`, `slr sweep show` and `slr compare STUDY`, optuna optional."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine import runs
from engine.config import ConfigError
from slr_tui import search as se
from slr_tui import sweep as sw
from slr_tui.cli import app
from tests.conftest import TINY_SETS

ROOT = Path(__file__).resolve().parents[1]
optuna = pytest.importorskip("optuna")


def _sets(*extra: str) -> list[str]:
    out: list[str] = []
    for s in [*TINY_SETS, *extra]:
        out += ["--set", s]
    return out


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_space_specs():
    lr, bs, layers, drop = se.parse_space(
        [
            "optim.lr=loguniform:1e-5:1e-3",
            "data.batch_size=choice:8,12,16",
            "model.num_layers=int:1:3",
            "model.dropout=uniform:0:0.5",
        ]
    )
    assert (lr.kind, lr.low, lr.high) == ("loguniform", 1e-5, 1e-3)
    assert bs.choices == ("8", "12", "16")
    assert (layers.kind, layers.low, layers.high) == ("int", 1, 3)
    assert drop.probes() == ["0.0", "0.5"]
    for bad in (
        "optim.lr=loguniform:0:1",  # log of 0
        "optim.lr=uniform:2:1",  # low above high
        "optim.lr=int:1.5:3",
        "optim.lr=choice:",
        "optim.lr=normal:0:1",
        "lr=uniform:0:1",  # no section
        "optim.lr",
    ):
        with pytest.raises(ConfigError):
            se.parse_space([bad])
    with pytest.raises(ConfigError, match="twice"):
        se.parse_space(["optim.lr=uniform:0:1", "optim.lr=uniform:0:2"])


def test_space_file(tmp_path):
    f = tmp_path / "space.yaml"
    f.write_text(
        "optim.lr: loguniform:1e-5:1e-3\n"
        "data.batch_size: [8, 12]\n"
        "model.num_layers: {type: int, low: 1, high: 3}\n"
    )
    params = se.load_space_file(f)
    assert [p.describe() for p in params] == [
        "optim.lr=loguniform:1e-05:0.001",
        "data.batch_size=choice:8,12",
        "model.num_layers=int:1:3",
    ]
    f.write_text("optim.lr: {type: int, low: a, high: 3}\n")
    with pytest.raises(ConfigError, match="space.yaml"):
        se.load_space_file(f)


@pytest.mark.parametrize(
    "space",
    ["optim.lr=loguniform:-1:1", "data.batch_size=choice:8,lots", "optim.nope=uniform:0:1"],
)
def test_a_bad_space_is_one_error_line(tmp_path, space):
    res = _invoke(
        "sweep", "--search", "optuna", "--preset", "demo", "--runs-dir", str(tmp_path),
        "--space", space, "--trials", "2",
    )  # fmt: skip
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.output
    assert "Traceback" not in res.output
    assert not any(tmp_path.iterdir())  # nothing started, no study made


def test_storage_forms(tmp_path):
    assert se.storage_label(None, tmp_path, "s") == str(tmp_path / "studies" / "s.journal")
    assert se.storage_label(f"journal:{tmp_path}/x.log", tmp_path, "s") == f"{tmp_path}/x.log"
    assert se.storage_label("postgresql://u:secret@db/optuna", tmp_path, "s") == (
        "postgresql://u:***@db/optuna"
    )
    assert se.storage_ref("postgresql://u:secret@db/optuna", tmp_path, "s") == (
        "postgresql://u@db/optuna"  # no password in run.json
    )
    assert se.storage_ref(None, tmp_path, "s") == str((tmp_path / "studies/s.journal").resolve())
    with pytest.raises(ConfigError, match="no study journal"):
        se.open_storage(None, tmp_path, "absent", create=False)
    with pytest.raises(ConfigError, match="--study"):
        se.check_study_name("../escape")


def test_two_workers_share_one_study(tmp_path):
    """Two `slr sweep --search optuna` processes (two "boxes", each with its own runs dir)
    on one journal file run trials 0..5 once each between them."""
    journal = tmp_path / "shared" / "s.journal"
    cmd = [
        sys.executable, "-m", "slr_tui.cli", "sweep", "--search", "optuna",
        "--preset", "demo", "--study", "shared", "--storage", f"journal:{journal}",
        "--sampler", "random", "--seed", "0", "--trials", "6", "--pruner", "none",
        "--space", "optim.lr=loguniform:1e-4:1e-2",
        *_sets("training.max_epochs=1"),
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1", SLR_CONCURRENT_RUNS="2")
    procs = [
        subprocess.Popen(
            [*cmd, "--runs-dir", str(tmp_path / f"box{i}")],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in (0, 1)
    ]
    outs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    items = runs.list_runs(tmp_path / "box0") + runs.list_runs(tmp_path / "box1")
    trials = sorted(r.meta["trial"] for r in items)
    assert trials == list(range(6))  # every trial once, none twice
    assert {r.meta["study"] for r in items} == {"shared"}
    assert all(r.status == "finished" for r in items)
    study = optuna.load_study(
        study_name="shared", storage=se.open_storage(str(journal), tmp_path, "shared")
    )
    real = [t for t in study.trials if not t.user_attrs.get(se.SURPLUS)]
    assert sorted(t.number for t in real) == list(range(6))
    assert all(t.state.name == "COMPLETE" for t in real)
    by_dir = {str(r.path): r for r in items}  # two boxes may name a run alike
    for t in real:  # each trial's value is its run's best monitored figure
        run = by_dir[t.user_attrs["run_dir"]]
        assert run.meta["trial"] == t.number
        assert t.value == pytest.approx(run.best_metric)
        assert run.config()["optim"]["lr"] == pytest.approx(t.params["optim.lr"])
    shown = _invoke(
        "sweep", "show", "shared", "--storage", str(journal), "--runs-dir", str(tmp_path),
        "--json",
    )  # fmt: skip
    assert shown.exit_code == 0, shown.output
    summary = json.loads(shown.output)
    assert summary["direction"] == "maximize" and summary["metric"] == "val_acc"
    assert [r["number"] for r in summary["trials"]] != [] and len(summary["trials"]) == 6
    values = [r["value"] for r in summary["trials"]]
    assert values == sorted(values, reverse=True)
    assert summary["importances"] is None and "parameters" in summary["importances_note"]


def test_pruning_stops_a_bad_trial_early(tmp_path):
    """A good trial first, then a frozen one (lr 1e-12) that the median pruner stops: status
    pruned, last.pt kept, fewer epochs than it was given, the trial PRUNED in the study."""
    common = [
        "sweep", "--search", "optuna", "--preset", "demo", "--runs-dir", str(tmp_path),
        "--study", "p", "--sampler", "random", "--space", "training.log_every_steps=int:1:2",
        "--pruner", "median", "--pruner-startup-trials", "1",
    ]  # fmt: skip
    good = _invoke(
        *common, "--trials", "1",
        *_sets(
            "training.monitor=val_loss",
            "optim.lr=1e-2",
            "training.max_epochs=3",
            "training.min_epoch_steps=20",  # it learns: its val_loss falls well below chance
        ),
    )  # fmt: skip
    assert good.exit_code == 0, good.output
    bad = _invoke(
        *common, "--trials", "2",
        *_sets("training.monitor=val_loss", "optim.lr=1e-12", "training.max_epochs=40"),
    )  # fmt: skip
    assert bad.exit_code == 0, bad.output
    (pruned,) = [r for r in runs.list_runs(tmp_path) if r.meta["trial"] == 1]
    assert pruned.status == "pruned" and pruned.meta["stop_reason"] == "pruned"
    assert (pruned.path / "last.pt").is_file()
    assert 1 <= pruned.epoch < 40
    shown = _invoke("sweep", "show", "p", "--runs-dir", str(tmp_path), "--json")
    states = {r["number"]: r["state"] for r in json.loads(shown.output)["trials"]}
    assert states == {0: "complete", 1: "pruned"}
    assert "minimize val_loss" in _invoke("sweep", "show", "p", "--runs-dir", str(tmp_path)).output
    # `slr runs` shows the status as it is
    listed = _invoke("runs", "--runs-dir", str(tmp_path), "--json")
    assert {r["status"] for r in json.loads(listed.output)} == {"finished", "pruned"}


def test_grid_sampler_reproduces_the_grid(tmp_path):
    """Trial k is grid point k: two workers asking in turn on one journal get every
    combination of --grid once, then nothing."""
    grid = ["optim.lr=5e-5,1e-4,2e-4", "data.batch_size=12,16"]
    space = se.grid_space(grid)
    journal = str(tmp_path / "g.journal")
    workers = []
    for _ in range(2):  # two processes' views of one study
        study = se.open_study(
            "g",
            se.open_storage(journal, tmp_path, "g"),
            direction="maximize",
            sampler=se.make_sampler("grid", space, seed=None),
            pruner=se.make_pruner("none", startup=0, warmup=0, max_epochs=1),
            attrs={},
        )
        workers.append(
            se.Search(
                study, "g", space, "demo", None, [], {}, tmp_path, se.grid_size(space), "val_acc"
            )
        )
    got = []
    for i in range(8):
        w = workers[i % 2]
        m = se._ask(w)
        if m is None:
            continue
        got.append(frozenset(f"{k}={v}" for k, v in m.params.items()))
        w.study.tell(m.trial, 0.5)
    want = [frozenset(c) for c in sw.combinations(sw.parse_grid(grid))]
    assert len(got) == 6 and set(got) == set(want)
    assert all(w.exhausted for w in workers)


def test_grid_study_runs_and_compare(tmp_path):
    """The CLI: `--sampler grid --grid ...` runs each combination as a run tagged with the
    study; a second call runs nothing; `slr compare STUDY` compares its best."""
    grid = ["optim.lr=1e-3,3e-3", "data.batch_size=8"]
    args = [
        "sweep", "--search", "optuna", "--sampler", "grid", "--preset", "demo",
        "--runs-dir", str(tmp_path), "--study", "g", "--parallel", "2",
        *(x for g in grid for x in ("--grid", g)),
        *_sets("training.max_epochs=1"),
    ]  # fmt: skip
    res = _invoke(*args)
    assert res.exit_code == 0, res.output
    items = runs.list_runs(tmp_path)
    got = {frozenset(f"{k}={v}" for k, v in r.meta["sweep_params"].items()) for r in items}
    assert got == {frozenset(c) for c in sw.combinations(sw.parse_grid(grid))}
    assert {r.config()["optim"]["lr"] for r in items} == {1e-3, 3e-3}
    assert {r.meta["trial"] for r in items} == {0, 1}
    again = _invoke(*args)  # the grid is done: nothing runs twice
    assert again.exit_code == 0 and "already has its 2 trials" in again.output
    assert len(runs.list_runs(tmp_path)) == 2
    cmp = _invoke("compare", "g", "--runs-dir", str(tmp_path), "--top", "3")
    assert cmp.exit_code == 0, cmp.output
    assert "study g: top 2 trials" in cmp.output
    none = _invoke("compare", "nosuchstudy", "--runs-dir", str(tmp_path))
    assert none.exit_code == 2 and "two or more runs" in none.output


def test_without_optuna_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna -> ImportError
    res = _invoke(
        "sweep", "--search", "optuna", "--preset", "demo", "--runs-dir", str(tmp_path),
        "--space", "optim.lr=uniform:0:1",
    )  # fmt: skip
    assert res.exit_code == 2
    assert res.output.strip() == (
        "error: --search optuna needs optuna: pip install 'slr-tui[search]'"
    )


def test_no_slr_tui_module_imports_optuna_or_submitit():
    code = (
        "import importlib, pkgutil, sys, slr_tui\n"
        "for m in pkgutil.walk_packages(slr_tui.__path__, 'slr_tui.'):\n"
        "    if not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
        "print([m for m in ('optuna', 'submitit') if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_tui_study_view_from_a_trial(tmp_path, monkeypatch):
    """`w` on a run that is a trial opens the study's trials, read in a worker thread and
    refreshed as the study grows; on a run of no study it only says so."""
    from slr_tui.screens.sweep import SweepScreen
    from tests.fixtures_runs import make_app, to_row, until, write_run

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLR_CONFIG", str(tmp_path / "config.yaml"))
    journal = tmp_path / "runs" / "studies" / "tui.journal"
    study = se.open_study(
        "tui",
        se.open_storage(None, tmp_path / "runs", "tui"),
        direction="maximize",
        sampler=se.make_sampler("random", [], seed=0),
        pruner=se.make_pruner("none", startup=0, warmup=0, max_epochs=1),
        attrs={"metric": "val_acc"},
    )
    lr = se.parse_space(["optim.lr=loguniform:1e-4:1e-2"])[0]
    for value in (0.5, 0.9):
        t = study.ask()
        lr.suggest(t)
        t.set_user_attr("run_id", f"run-{t.number}")
        study.tell(t, value)
    write_run(
        Path("runs"),
        "20250101-090000-demo",
        extra_meta={"study": "tui", "trial": 0, "study_storage": str(journal)},
    )
    write_run(Path("runs"), "20250102-090000-demo")
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await to_row(pilot, "20250102-090000-demo")
        await pilot.press("w")
        assert not isinstance(app.screen, SweepScreen)
        await to_row(pilot, "20250101-090000-demo")
        await pilot.press("w")
        screen = app.screen
        assert isinstance(screen, SweepScreen)
        await until(pilot, lambda: screen.loads >= 1)
        table = screen.query_one("#sweep-table")
        assert [str(table.get_row_at(i)[1]) for i in range(table.row_count)] == ["1", "0"]
        assert "maximize val_acc (2 complete)" in str(screen.query_one("#sweep-title").render())
        t = study.ask()  # another worker's trial, still running
        lr.suggest(t)
        await pilot.press("r")
        await until(pilot, lambda: table.row_count == 3)
        assert "running" in [str(table.get_row_at(i)[2]) for i in range(3)]
        await pilot.press("escape")
        assert not isinstance(app.screen, SweepScreen)


def test_joining_a_study_with_another_space_is_one_error(tmp_path):
    def search_with(spec: str) -> se.Search:
        space = se.parse_space([spec])
        study = se.open_study(
            "m",
            se.open_storage(None, tmp_path, "m"),
            direction="maximize",
            sampler=se.make_sampler("random", space, seed=0),
            pruner=se.make_pruner("none", startup=0, warmup=0, max_epochs=1),
            attrs={},
        )
        return se.Search(study, "m", space, "demo", None, [], {}, tmp_path, 5, "val_acc")

    first = search_with("optim.lr=uniform:0.1:1")
    m = se._ask(first)
    first.study.tell(m.trial, 1.0)
    other = search_with("optim.lr=choice:1,2")
    with pytest.raises(ConfigError, match="does not match the study"):
        se.execute(other)
    assert other.members == [] and other.exhausted
    with pytest.raises(ConfigError, match="maximizes"):
        se.open_study(
            "m",
            se.open_storage(None, tmp_path, "m"),
            direction="minimize",
            sampler=se.make_sampler("tpe", [], seed=0),
            pruner=se.make_pruner("median", startup=0, warmup=0, max_epochs=1),
            attrs={},
        )
