"""Training batches made ahead in a thread (engine/data/prefetch.py): same batches, same
run, errors raised where the loop asks, and a loop left early stops the thread."""

from __future__ import annotations

import threading

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from engine import runs
from engine.data.prefetch import Prefetched
from engine.train import EXIT_FAILED, EXIT_OK, run_training
from tests.conftest import tiny_cfg


class Counting(Dataset):
    def __init__(self, n: int, fail_at: int | None = None):
        self.n, self.fail_at, self.made = n, fail_at, 0

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        if i == self.fail_at:
            raise ValueError(f"sample {i} is broken")
        self.made += 1
        return torch.full((3,), float(i))


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name == "slr-prefetch"}


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_batches_come_in_the_loaders_order(depth):
    loader = DataLoader(Counting(23), batch_size=4)
    with Prefetched(loader, depth) as batches:
        got = list(batches)
    want = list(loader)
    assert len(got) == len(want) == 6
    for a, b in zip(got, want, strict=True):
        assert torch.equal(a, b)
    assert not _threads()


def test_an_error_in_a_batch_is_raised_by_the_loop_with_its_message():
    loader = DataLoader(Counting(20, fail_at=9), batch_size=4)
    seen = []
    with pytest.raises(ValueError, match="sample 9 is broken"):
        with Prefetched(loader, 2) as batches:
            for batch in batches:
                seen.append(batch)
    assert len(seen) == 2  # batches 0-3 and 4-7 came; 8-11 holds the broken sample
    assert not _threads()


def test_leaving_the_loop_early_stops_the_thread():
    ds = Counting(400)
    loader = DataLoader(ds, batch_size=2)
    with Prefetched(loader, 2) as batches:
        for i, _ in enumerate(batches):
            if i == 3:
                break
    assert not _threads()
    # at most the queue's batches and the one being made past the 4 taken
    assert 8 <= ds.made <= 2 * (4 + 2 + 1)


def test_worker_processes_are_not_doubled_by_a_thread():
    loader = DataLoader(Counting(8), batch_size=4, num_workers=1)
    assert Prefetched(loader, 4).depth == 0


def test_a_run_is_the_same_with_and_without_prefetching(tmp_path):
    def figures(run_dir):
        rows = runs.iter_epochs(runs.read_jsonl(run_dir / "metrics.jsonl"))
        return [(r["train_loss"], r["val_loss"], r["val_acc"]) for r in rows]

    base = ("training.max_epochs=2", "data.num_workers=0", "training.eval_test=false")
    assert run_training(tiny_cfg(*base, "data.prefetch_batches=0"), tmp_path / "a") == EXIT_OK
    assert run_training(tiny_cfg(*base, "data.prefetch_batches=3"), tmp_path / "b") == EXIT_OK
    assert figures(tmp_path / "a") == figures(tmp_path / "b")
    meta = runs.read_json(tmp_path / "b" / "run.json")
    assert meta["threads"]["prefetch_batches"] == 3
    assert "3 batches made ahead in a thread" in (tmp_path / "b" / "log.txt").read_text()
    assert runs.read_json(tmp_path / "a" / "run.json")["threads"]["prefetch_batches"] == 0


def test_a_sample_that_breaks_mid_epoch_fails_the_run_with_its_error(tmp_path, monkeypatch):
    from engine.data.landmarks import LandmarkDataset

    real = LandmarkDataset.__getitems__
    calls = []

    def breaks(self, keys):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk went away")
        return real(self, keys)

    monkeypatch.setattr(LandmarkDataset, "__getitems__", breaks)
    run_dir = tmp_path / "broken"
    cfg = tiny_cfg("data.num_workers=0", "data.prefetch_batches=2")
    assert run_training(cfg, run_dir) == EXIT_FAILED
    meta = runs.read_json(run_dir / "run.json")
    assert meta["status"] == "failed" and meta["error"] == "RuntimeError: disk went away"
    assert not _threads()
