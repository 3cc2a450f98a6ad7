"""bench/gpu_check.py: its CPU smoke run prints every row and the final line; the real
check (``-m gpu``) passes on a GPU machine."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("decord")
pytest.importorskip("transformers")

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "gpu_check.py"
FINAL = re.compile(r"^gpu_check: (\d+) ok, (\d+) failed")


def _rows() -> list[tuple[str, str, str, str]]:
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod.ROWS


def _check(*args: str, timeout: float) -> tuple[subprocess.CompletedProcess, list[str]]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=env,
    )
    return proc, proc.stdout.strip().splitlines()


def _assert_table(proc, lines) -> re.Match:
    out = proc.stdout + proc.stderr[-3000:]
    assert lines and FINAL.match(lines[-1]), out
    assert lines[0].split() == ["figure", "value", "target", "ok"], out
    for _key, figure, target, _judge in _rows():
        row = [ln for ln in lines if ln.startswith(figure + "  ")]
        assert len(row) == 1, f"row {figure!r} missing\n{out}"
        assert target in row[0], out
    return FINAL.match(lines[-1])


def test_cpu_smoke_prints_every_row_and_passes():
    proc, lines = _check("--cpu-smoke", timeout=240)
    m = _assert_table(proc, lines)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert int(m.group(2)) == 0 and int(m.group(1)) > 0
    assert "not judged (--cpu-smoke)" in lines[-1]
    # the judged rows all read ok; the GPU figures are reported, not judged
    marks = [ln.rstrip().rsplit(None, 1)[-1] for ln in lines[2:-1]]
    assert set(marks) <= {"ok", "-"}, proc.stdout


@pytest.mark.gpu
@pytest.mark.timeout(900)
def test_gpu_check_passes_on_the_gpu():
    proc, lines = _check(timeout=780)
    print(proc.stdout)
    m = _assert_table(proc, lines)
    assert proc.returncode == 0 and int(m.group(2)) == 0, proc.stdout + proc.stderr[-3000:]
