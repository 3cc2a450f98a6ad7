"""CUDA paths: mixed precision, telemetry. Run with `pytest -m gpu` on a GPU machine."""

from __future__ import annotations

import pytest

from engine import runs
from engine.train import EXIT_OK, run_training
from tests.conftest import tiny_cfg

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_tiny_run_on_cuda_with_amp(tmp_path, precision):
    cfg = tiny_cfg(
        "training.device=cuda",
        f"training.precision={precision}",
        "training.telemetry_interval_s=0.2",
    )
    assert run_training(cfg, tmp_path / precision) == EXIT_OK
    meta = runs.read_json(tmp_path / precision / "run.json")
    assert meta["device"].startswith("cuda") and meta["mixed_precision"] == precision
    samples = runs.read_jsonl(tmp_path / precision / "system.jsonl")
    assert samples and samples[0]["gpus"], samples[:1]
    gpu = samples[0]["gpus"][0]
    assert gpu["mem_total_mb"] > 0 and gpu["temp_c"] is not None
    assert any(s.get("proc_peak_mem_mb") for s in samples)
