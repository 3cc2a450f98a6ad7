"""User settings (slr_tui/settings.py): the YAML file the TUI edits and the CLI reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine import config as cfgmod
from slr_tui import settings as st
from slr_tui.cli import app as cli
from slr_tui.cli.options import settings_root as _settings_root


def test_missing_file_gives_defaults(tmp_path):
    s = st.load_settings(tmp_path / "nope.yaml")
    assert s == st.Settings()
    assert s.gpu_temp_warn_c == 80 and s.dataset_roots == {} and s.runs_dir is None
    for name, field in st.Settings.model_fields.items():  # every field says what it is for
        assert field.description, name


def test_save_and_load_round_trip_atomically(tmp_path):
    path = tmp_path / "deep" / "config.yaml"
    s = st.Settings(
        runs_dir="/scratch/runs", dataset_roots={"wlasl": "/data/W"}, gpu_temp_warn_c=85
    )
    assert st.save_settings(s, path) == path
    assert st.load_settings(path) == s
    assert [p.name for p in path.parent.iterdir()] == ["config.yaml"]  # no temp files left
    assert path.read_text().startswith("# slr settings")


def test_env_var_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SLR_CONFIG", str(tmp_path / "c.yaml"))
    assert st.settings_path() == tmp_path / "c.yaml"
    monkeypatch.delenv("SLR_CONFIG")
    assert st.settings_path() == Path("~/.config/slr/config.yaml").expanduser()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("runs_dir: [unclosed", "cannot parse"),
        ("- a list", "expected a mapping"),
        ("gpu_temp: 80", "unknown key 'gpu_temp'"),
        ("gpu_temp_warn_c: hot", "gpu_temp_warn_c"),
        ("gpu_temp_warn_c: 500", "gpu_temp_warn_c"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path, text, needle):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(st.SettingsError) as exc:
        st.load_settings(path)
    msg = str(exc.value)
    assert needle in msg and str(path) in msg and "\n" not in msg


def test_runs_dir_precedence(tmp_path, monkeypatch):
    s = st.Settings(runs_dir=str(tmp_path / "from-settings"))
    monkeypatch.delenv("SLR_RUNS_DIR", raising=False)
    assert st.resolve_runs_dir("explicit", s) == Path("explicit")
    assert st.resolve_runs_dir(None, s) == tmp_path / "from-settings"
    assert st.resolve_runs_dir(None, st.Settings()) == Path("runs")
    monkeypatch.setenv("SLR_RUNS_DIR", str(tmp_path / "env"))
    assert st.resolve_runs_dir(None, s) == tmp_path / "env"


def test_root_lookup_and_detection(tmp_path):
    s = st.Settings(dataset_roots={"wlasl": "/a", "wlasl100": "/b", "mine": "/c"})
    assert st.root_for("wlasl", "wlasl100", s) == ("wlasl100", "/b")  # the label first
    assert st.root_for("wlasl", "wlasl300", s) == ("wlasl", "/a")
    assert st.root_for("synthetic", "synthetic10", s) is None
    assert st.source_of("WLASL2000") == "wlasl"
    assert st.source_of("landmarks-v2") == "landmarks"
    assert st.source_of("mine") is None
    (tmp_path / "data" / "WLASL2000").mkdir(parents=True)
    (tmp_path / "data" / "other").mkdir()
    found = st.detect_dataset_roots((str(tmp_path / "data"), str(tmp_path / "missing")))
    assert found == {"wlasl2000": str((tmp_path / "data" / "WLASL2000").resolve())}


def test_cli_run_takes_a_named_root(tmp_path, monkeypatch):
    cfgfile = tmp_path / "c.yaml"
    monkeypatch.setenv("SLR_CONFIG", str(cfgfile))
    st.save_settings(st.Settings(dataset_roots={"wlasl": str(tmp_path / "W")}), cfgfile)
    wlasl = cfgmod.resolve(preset="wlasl100-conservative")
    assert _settings_root(wlasl, None) == str(tmp_path / "W")  # named like its source
    demo = cfgmod.resolve(preset="demo")
    assert _settings_root(demo, None) is None  # synthetic data needs no root
    assert _settings_root(demo, "wlasl") == str(tmp_path / "W")  # --dataset NAME
    given = cfgmod.resolve(preset="wlasl100-conservative", sets=["data.root=/x"])
    assert _settings_root(given, None) is None  # a root in the config wins

    res = CliRunner().invoke(
        cli, ["run", "--preset", "demo", "--dataset", "nope", "--runs-dir", str(tmp_path / "r")]
    )
    assert res.exit_code == 2
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert len(lines) == 1 and "no dataset root named 'nope'" in lines[0] and "wlasl" in lines[0]
    assert not (tmp_path / "r").exists()

    cfgfile.write_text("dataset_roots: [broken")
    res = CliRunner().invoke(
        cli,
        ["run", "--preset", "wlasl100-conservative", "--runs-dir", str(tmp_path / "r")],
    )
    assert res.exit_code == 2 and "cannot parse settings" in res.output
