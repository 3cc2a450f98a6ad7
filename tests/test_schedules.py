import math

import numpy as np
import pytest
import torch

from engine.config import OptimConfig
from engine.data.base import class_weights
from engine.schedules import build_scheduler, warmup_cosine


def test_warmup_then_cosine_values():
    total, warm = 100, 10
    # linear warm-up: 1/10, 2/10, ... 10/10
    assert [warmup_cosine(s, warm, total) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    # cosine from 1 at the end of warm-up to 0 at the end
    assert warmup_cosine(10, warm, total) == pytest.approx(1.0)
    assert warmup_cosine(55, warm, total) == pytest.approx(0.5)  # half-way through the decay
    assert warmup_cosine(10 + 90 * 0.25, warm, total) == pytest.approx(
        0.5 * (1 + math.cos(math.pi / 4))
    )
    assert warmup_cosine(100, warm, total) == pytest.approx(0.0)
    assert warmup_cosine(500, warm, total) == pytest.approx(0.0)
    assert warmup_cosine(100, warm, total, min_ratio=0.1) == pytest.approx(0.1)


def test_cosine_scheduler_drives_the_optimizer():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=1e-3)
    cfg = OptimConfig(lr=1e-3, scheduler="cosine", warmup_ratio=0.1)
    sched, when = build_scheduler(opt, cfg, steps_per_epoch=10, max_epochs=10, mode="max")
    assert when == "step"
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(1e-4)  # first warm-up step
    assert lrs[9] == pytest.approx(1e-3)  # peak at the end of warm-up
    assert max(lrs) == pytest.approx(1e-3)
    assert lrs[-1] < 1e-5
    assert all(a >= b for a, b in zip(lrs[9:-1], lrs[10:], strict=True))  # monotone decay


def test_other_schedulers():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=1.0)
    _, when = build_scheduler(
        opt, OptimConfig(scheduler="steplr"), steps_per_epoch=5, max_epochs=3, mode="max"
    )
    assert when == "epoch"
    _, when = build_scheduler(
        opt, OptimConfig(scheduler="plateau"), steps_per_epoch=5, max_epochs=3, mode="max"
    )
    assert when == "metric"
    assert build_scheduler(
        opt, OptimConfig(scheduler="none"), steps_per_epoch=5, max_epochs=3, mode="max"
    ) == (None, None)


def test_class_weight_formula():
    labels = np.array([0] * 10 + [1] * 5 + [2] * 2)
    w = class_weights(labels, 3).numpy()
    inv = np.array([1 / 10, 1 / 5, 1 / 2])
    np.testing.assert_allclose(w, inv / inv.mean(), rtol=1e-6)
    assert w.mean() == pytest.approx(1.0)
    assert w[2] / w[0] == pytest.approx(5.0)


def test_class_weights_absent_class_gets_zero():
    w = class_weights(np.array([0, 0, 1]), 3).numpy()
    assert w[2] == 0.0
    assert w[:2].mean() == pytest.approx(1.0)
