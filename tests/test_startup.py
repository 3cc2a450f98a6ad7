"""Start-up cost: the quick commands import only what they use (issue 14). Speed targets
live in the benchmarks; this checks which heavy modules a command pulls in."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "sklearn", "transformers", "pandas", "scipy")

PROBE = """
import json, sys
args, watch = json.loads(sys.argv[1]), json.loads(sys.argv[2])
from slr_tui.cli import main
sys.argv = ["slr", *args]
try:
    main()
except SystemExit:
    pass
heavy = [m for m in watch if m in sys.modules]
print("LOADED=" + json.dumps(heavy))
"""


def loaded(args: list[str], watch: tuple[str, ...]) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args), json.dumps(list(watch))],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("LOADED="))
    return json.loads(line.removeprefix("LOADED="))


@pytest.mark.parametrize(
    "args", [["--help"], ["run", "--help"], ["runs"], ["presets"], ["data", "check", "--help"]]
)
def test_quick_commands_import_no_heavy_library(args, tmp_path, monkeypatch):
    monkeypatch.setenv("SLR_RUNS_DIR", str(tmp_path))
    assert loaded(args, HEAVY) == []


def test_help_builds_no_config_models(tmp_path, monkeypatch):
    """`slr --help` does not import the config models (pydantic) or YAML."""
    monkeypatch.setenv("SLR_RUNS_DIR", str(tmp_path))
    assert loaded(["--help"], ("engine.config", "pydantic", "yaml", "numpy")) == []


def test_the_probe_sees_what_a_command_imports(tmp_path, monkeypatch):
    monkeypatch.setenv("SLR_RUNS_DIR", str(tmp_path))
    watch = ("engine.config", "yaml")
    assert loaded(["presets", "show", "demo"], watch) == ["engine.config", "yaml"]


def test_help_imports_no_command_module(tmp_path, monkeypatch):
    """`slr --help` lists the commands from a table: none of their modules is imported."""
    monkeypatch.setenv("SLR_RUNS_DIR", str(tmp_path))
    modules = tuple(f"slr_tui.cli.{m}" for m in ("run", "browse", "data", "evaluate", "report"))
    assert loaded(["--help"], (*modules, "engine.runs", "slr_tui.launch")) == []


def test_presets_listing_builds_config_models_once(tmp_path, monkeypatch):
    """The first `slr presets` validates the presets (and caches the rows); the next reads
    the cache: no config models, no numpy."""
    monkeypatch.setenv("SLR_RUNS_DIR", str(tmp_path))
    monkeypatch.setenv("SLR_CACHE_DIR", str(tmp_path / "cache"))
    watch = ("engine.config", "numpy", *HEAVY)
    assert loaded(["presets"], watch) == ["engine.config", "numpy"]
    assert loaded(["presets"], watch) == []
