"""A non-editable install still finds every preset (they ship inside the wheel)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=build,
    )
    if res.returncode != 0:
        pytest.fail(res.stderr[-2000:])
    return next(out.glob("slr_tui-*.whl"))


def test_wheel_ships_every_preset(wheel):
    shipped = {
        Path(n).stem
        for n in zipfile.ZipFile(wheel).namelist()
        if n.startswith("engine/presets/") and n.endswith(".yaml")
    }
    in_repo = {p.stem for p in (ROOT / "presets").glob("*.yaml")}
    assert shipped == in_repo and "demo" in shipped
    entry = (
        zipfile.ZipFile(wheel)
        .read(next(n for n in zipfile.ZipFile(wheel).namelist() if n.endswith("entry_points.txt")))
        .decode()
    )
    assert "slr = slr_tui.cli:main" in entry


def test_installed_wheel_finds_presets_outside_the_repo(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import importlib; [sys.modules.pop(m) for m in list(sys.modules) if m.startswith('engine')];"
        "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in type(f).__module__.lower() and 'editable' not in repr(f).lower()];"
        "import engine.config as c; assert c.__file__.startswith(sys.argv[1]), c.__file__;"
        "print(','.join(c.preset_names())); print(c.resolve(preset='wlasl300-recommended').optim.lr)"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(site)], capture_output=True, text=True, cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    names, lr = res.stdout.split()
    assert set(names.split(",")) == {p.stem for p in (ROOT / "presets").glob("*.yaml")}
    assert float(lr) == 5e-5
