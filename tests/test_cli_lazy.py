"""`slr` as a lazy group: `slr --help` lists the commands from a table that must say what
the real commands say, commands load on demand, and the presets listing comes from a cache
that the preset files' fingerprint keeps true. (What each command imports:
tests/test_startup.py; timings: bench/bench_startup.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from slr_tui import cli
from slr_tui.cli import presets as presets_cli

ROOT = Path(__file__).resolve().parents[1]


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


def test_presets_cache_is_rebuilt_when_a_source_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("SLR_CACHE_DIR", str(tmp_path))
    fresh = presets_cli.listing_rows()
    names = [n for n, _ in fresh]
    assert "demo" in names and all("epochs" in text for _, text in fresh)
    cache = tmp_path / presets_cli.CACHE_NAME
    data = json.loads(cache.read_text())
    assert data["rows"] == fresh
    keyed = [Path(f).name for f, _, _ in data["key"]]
    assert {"demo.yaml", "sequence-classifier.yaml", "config.py"} <= set(keyed)
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
