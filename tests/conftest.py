"""Shared fixtures: tiny configs and a finished tiny run made by the real engine."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine import config as cfgmod

TINY_SETS = [
    "data.synthetic.num_classes=4",
    "data.synthetic.samples_per_class=16",
    "data.synthetic.min_frames=8",
    "data.synthetic.max_frames=12",
    "data.synthetic.num_signers=4",
    "data.batch_size=8",
    "data.max_frames=12",
    "model.hidden_size=16",
    "training.max_epochs=3",
    "training.patience=null",
    "training.min_epoch_steps=0",  # plumbing tests: one pass per epoch keeps them fast
    "training.log_every_steps=1",
    "training.telemetry_interval_s=0.5",
]


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    """Synthetic data cache shared per session; runs never land in the repo's runs/."""
    cache = tmp_path_factory.getbasetemp() / "slr-cache"
    monkeypatch.setenv("SLR_CACHE_DIR", str(cache))
    monkeypatch.setenv("SLR_RUNS_DIR", str(tmp_path_factory.getbasetemp() / "default-runs"))
    # never the user's own settings file
    monkeypatch.setenv("SLR_CONFIG", str(tmp_path_factory.getbasetemp() / "no-settings.yaml"))


def tiny_cfg(*extra: str) -> cfgmod.RunConfig:
    return cfgmod.resolve(preset="demo", sets=[*TINY_SETS, *extra])


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    """One finished tiny demo run (trained in-process once per session)."""
    import os

    from engine.train import run_training

    cache = tmp_path_factory.getbasetemp() / "slr-cache"
    old = os.environ.get("SLR_CACHE_DIR")
    os.environ["SLR_CACHE_DIR"] = str(cache)
    try:
        run_dir = tmp_path_factory.mktemp("runs") / "20250101-000000-demo"
        assert run_training(tiny_cfg("training.max_epochs=4"), run_dir) == 0
    finally:
        if old is None:
            os.environ.pop("SLR_CACHE_DIR", None)
        else:
            os.environ["SLR_CACHE_DIR"] = old
    return run_dir


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    """A private copy of the finished run inside a runs dir, safe to modify."""
    root = tmp_path / "runs"
    dst = root / finished_run.name
    shutil.copytree(finished_run, dst)
    return dst


def pytest_collection_modifyitems(config, items):
    """`gpu` tests run only where CUDA is available (select them with -m gpu)."""
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU with CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
