"""The seam between the viewers and the engine.

``slr_tui`` imports no torch and, of the engine, only the torch-free contract; every engine
job is a ``python -m engine`` subcommand that reports through JSON files, which the CLI and
the TUI render. Here: every ``slr_tui`` module imports with torch made unimportable, the
CLI's help and torch-free commands run so, the jobs' files say what happened (an error
as one line, never a traceback), and ``slr data check`` prints what it always printed.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine import config as cfgmod
from engine import runs
from slr_tui import launch
from slr_tui.cli import app, render
from tests.test_imports import _imports

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = {
    "engine.runs",
    "engine.config",
    "engine.catalog",
    "engine.threads",
    "engine.procs",
    "engine.errors",
    "engine.evaluate",
    "engine.telemetry",  # read_gpus_now only: NVML, no torch
    "engine.schema",  # the run-folder records engine.runs checks and reads by
}

NO_TORCH = """
import importlib, pkgutil, sys
sys.modules["torch"] = None  # `import torch` (and torch.*) now raises ImportError
import slr_tui
names = [m.name for m in pkgutil.walk_packages(slr_tui.__path__, "slr_tui.")]
for name in names:
    if not name.endswith("__main__"):
        importlib.import_module(name)
import pytest
from typer.testing import CliRunner
from slr_tui.cli import app, render
for args in (["--help"], ["data", "check", "--help"], ["run", "--help"], ["presets"]):
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, (args, res.output)
print(len(names), "modules")
"""


def test_every_slr_tui_module_and_the_cli_work_without_torch():
    res = subprocess.run(
        [sys.executable, "-c", NO_TORCH], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert int(res.stdout.split()[0]) >= 25  # the walk found the package's modules


def test_slr_tui_imports_only_the_engine_contract():
    """Lazy imports too: one inside a function still loads the module when it runs."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / "slr_tui").rglob("*.py"):
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                base = node.module or ""
                names = [f"{base}.{a.name}" if base == "engine" else base for a in node.names]
            for name in names:
                if name.startswith("engine") and name not in CONTRACT:
                    found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    assert not found, f"slr_tui imports engine modules outside the contract: {found}"


# --------------------------------------------------------------------------- the jobs


def engine(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def test_check_writes_its_report_and_progress(tmp_path):
    cfg = tmp_path / "config.json"
    sets = ["data.synthetic.num_classes=4", "data.synthetic.samples_per_class=5"]
    runs.atomic_write_json(cfg, cfgmod.resolve(preset="demo", sets=sets).to_dict())
    res = engine(
        "check", "--config", str(cfg), "--out", "r.json", "--progress", "p.jsonl", cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout == "" and res.stderr == ""  # a job reports through its files only
    report = runs.read_json(tmp_path / "r.json")
    assert report["num_classes"] == 4 and report["train"]["listed"] == 7
    rows = runs.read_jsonl(tmp_path / "p.jsonl")
    assert rows[-1] == {"kind": "end", "code": 0, "error": None}


def test_bad_input_is_an_error_record_not_a_traceback(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    cfg = tmp_path / "config.json"
    on_empty = cfgmod.resolve(preset="activity-lstm", sets=[f"data.root={empty}"])
    runs.atomic_write_json(cfg, on_empty.to_dict())
    not_a_config = tmp_path / "list.json"
    not_a_config.write_text("[1, 2]")
    errors = []
    for args in (
        ["check", "--config", str(cfg), "--out", "r.json", "--progress", "p.jsonl"],
        ["check", "--config", str(not_a_config), "--out", "r.json", "--progress", "p.jsonl"],
        ["predict", "--run-dir", str(tmp_path), "--out", "r.json", "--progress", "p.jsonl", "x.csv"],
    ):  # fmt: skip
        (tmp_path / "p.jsonl").unlink(missing_ok=True)
        res = engine(*args, cwd=tmp_path)
        assert res.returncode == 2, (args, res.stderr)
        assert "Traceback" not in res.stderr
        record = json.loads((tmp_path / "r.json").read_text())
        assert list(record) == ["error"] and "\n" not in record["error"], record
        end = runs.read_jsonl(tmp_path / "p.jsonl")[-1]
        assert end == {"kind": "end", "code": 2, "error": record["error"]}
        errors.append(record["error"])
    assert "no CSV recordings" in errors[0] and "expected a mapping" in errors[1]
    assert "no trained model" in errors[2]


def test_a_job_started_by_launch_tells_its_outcome(tmp_path):
    cfg = cfgmod.resolve(preset="demo", sets=["data.synthetic.num_classes=3"])
    rows: list[dict] = []
    with launch.start_check(cfg) as job:
        assert job.temporary and (job.dir / launch.JOB_CONFIG).is_file()
        assert launch.follow(job, rows.append) == 0
        report, error = job.outcome()
    assert error is None and report["num_classes"] == 3
    assert rows[-1]["kind"] == "end" and not job.dir.exists()  # a temporary folder goes

    with launch.start_check(cfg, tmp_path / "job") as job:  # a folder of one's own stays
        job.proc.kill()  # a job that dies without a word: its exit and its log say so
        job.proc.wait()
        report, error = job.outcome()
    assert report is None and "engine check was killed by SIGKILL" in error
    assert str(tmp_path / "job" / launch.JOB_LOG) in error


# --------------------------------------------------------------------------- slr data check

SYNTHETIC_TABLE = """\
                     synthetic
┏━━━━━━━┳━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━━━━┓
┃ split ┃ listed ┃ present ┃ missing ┃ unreadable ┃
┡━━━━━━━╇━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━━━┩
│ train │      7 │       7 │       0 │          0 │
│ val   │      4 │       4 │       0 │          0 │
│ test  │      4 │       4 │       0 │          0 │
└───────┴────────┴─────────┴─────────┴────────────┘
classes: 4
training videos per class: min 1, mean 1.8, max 3; imbalance ratio (max/min) 3.0:1
every class has training videos
"""

SEQUENCES_TABLE = """\
                   sequences_csv
┏━━━━━━━┳━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━━━━┓
┃ split ┃ listed ┃ present ┃ missing ┃ unreadable ┃
┡━━━━━━━╇━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━━━┩
│ train │     18 │      18 │       0 │          0 │
│ val   │     17 │      17 │       0 │          0 │
│ test  │     16 │      16 │       0 │          0 │
└───────┴────────┴─────────┴─────────┴────────────┘
classes: 3
training videos per class: min 5, mean 6.0, max 7; imbalance ratio (max/min) 1.4:1
every class has training videos
"""


def lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


@pytest.fixture
def wide_console():
    """A 100-column console, as the tables were recorded (a test before may have fixed
    the width); afterwards it follows the terminal again."""
    render.console.width = 100
    yield
    render.console.width = None


def test_data_check_prints_the_same_tables(tmp_path, wide_console):
    from tests.seq_fixtures import make_activity_csvs

    runner = CliRunner()
    res = runner.invoke(
        app,
        ["data", "check", "--preset", "demo", "--set", "data.synthetic.num_classes=4",
         "--set", "data.synthetic.samples_per_class=5"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert lines(res.stdout) == lines(SYNTHETIC_TABLE)

    make_activity_csvs(tmp_path / "act", recordings_per_activity=3, seed=1)
    args = ["data", "check", "--preset", "activity-lstm", "--data-root", str(tmp_path / "act")]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert lines(res.stdout) == lines(SEQUENCES_TABLE)
    as_json = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    assert as_json["train"] == {"listed": 18, "present": 18, "missing": 0, "unreadable": 0}

    (tmp_path / "empty").mkdir()
    res = runner.invoke(app, [*args[:-1], str(tmp_path / "empty")])  # no CSV file there
    assert res.exit_code == 2
    (line,) = [x for x in res.output.splitlines() if x.strip()]
    assert line.startswith("error: no CSV recordings found under")
