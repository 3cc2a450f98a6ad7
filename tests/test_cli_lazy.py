"""`slr` starts fast: a command's module is imported only when it runs, `slr --help` lists
the commands from a table without importing them, `slr runs` / `slr presets` load no
torch, sklearn, transformers or numpy, and the presets listing comes from a cache that the
preset files' fingerprint keeps true. (Timings are in bench/bench_startup.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import typer
from typer.testing import CliRunner

from slr_tui import cli
from slr_tui.cli import presets as presets_cli

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "sklearn", "transformers", "numpy", "engine.config", "slr_tui.cli.run")


def _eager_app() -> typer.Typer:
    """The same `slr`, built the plain Typer way: every command module imported."""
    eager = typer.Typer(
        name="slr",
        help="Train and compare sign-language-recognition experiments (headless).",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    for spec in cli.COMMANDS:
        module, attr = spec.target.split(":")
        obj = getattr(__import__(module, fromlist=[attr]), attr)
        if spec.group:
            eager.add_typer(obj, name=spec.name, rich_help_panel=spec.panel)
        else:
            eager.command(
                spec.name, rich_help_panel=spec.panel, context_settings=spec.context_settings
            )(obj)
    return eager


def test_lazy_help_lists_what_the_real_commands_say():
    runner = CliRunner()
    lazy = runner.invoke(cli.app, ["--help"], terminal_width=100)
    eager = runner.invoke(_eager_app(), ["--help"], terminal_width=100)
    assert lazy.exit_code == eager.exit_code == 0
    assert lazy.output == eager.output
    real = typer.main.get_group(_eager_app())
    for spec in cli.COMMANDS:  # the table's line is the command's own first paragraph
        cmd = real.commands[spec.name]
        assert spec.help == (cmd.help or "").split("\n\n")[0].replace("\n", " ").strip(), spec.name


def test_lazy_commands_run_and_suggest(tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli.app, ["runs", "--runs-dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli.app, ["runz"])
    assert res.exit_code == 2 and "Did you mean 'run', 'runs'?" in res.output
    res = runner.invoke(cli.app, ["sweep", "--help"])  # a group loads on demand
    assert res.exit_code == 0 and "show" in res.output
    res = runner.invoke(cli.app, ["tag", "--help"])  # its context settings carried over
    assert res.exit_code == 0


def _modules_after(args: list[str], env: dict[str, str]) -> set[str]:
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['slr', *{args!r}]\n"
        "try:\n    runpy.run_module('slr_tui.cli', run_name='__main__')\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "sys.stderr.write('\\nMODULES ' + ' '.join(sorted(sys.modules)))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return set(res.stderr.rsplit("MODULES ", 1)[1].split())


def test_help_runs_and_presets_import_nothing_heavy(tmp_path, monkeypatch):
    import os

    env = {**os.environ, "SLR_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "100"}
    env["SLR_RUNS_DIR"] = str(tmp_path / "runs")
    helped = _modules_after(["--help"], env)
    assert not [m for m in helped if m.startswith("slr_tui.cli.") or m.startswith("engine")]
    listed = _modules_after(["runs"], env)
    assert not [m for m in listed if m.split(".")[0] in HEAVY or m in HEAVY]
    first = _modules_after(["presets"], env)  # builds the cache: validates every preset
    assert "engine.config" in first and "torch" not in first
    again = _modules_after(["presets"], env)
    assert not [m for m in again if m.split(".")[0] in HEAVY or m in HEAVY]


def test_presets_cache_is_rebuilt_when_a_source_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("SLR_CACHE_DIR", str(tmp_path))
    fresh = presets_cli.listing_rows()
    names = [n for n, _ in fresh]
    assert "demo" in names and all("epochs" in text for _, text in fresh)
    cache = tmp_path / presets_cli.CACHE_NAME
    data = json.loads(cache.read_text())
    assert data["rows"] == fresh
    # a stale key (a preset file changed since): the rows are built again, not trusted
    data["key"][0][1] += 1
    data["rows"] = [["bogus", "stale"]]
    cache.write_text(json.dumps(data))
    assert presets_cli.listing_rows() == fresh
    assert json.loads(cache.read_text())["rows"] == fresh
    # a damaged cache file is ignored and replaced
    cache.write_text("{not json")
    assert presets_cli.listing_rows() == fresh
    # an unwritable cache folder: the listing still works
    monkeypatch.setenv("SLR_CACHE_DIR", str(cache / "under-a-file"))
    assert presets_cli.listing_rows() == fresh
    res = CliRunner().invoke(cli.app, ["presets"], terminal_width=200)
    assert res.exit_code == 0 and "demo" in res.output and "show one" in res.output
