"""minirocket: fits on collated batches, matches aeon's MiniRocketClassifier, and its
state_dict (tensors only) restores the same predictor into a freshly built module."""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from engine.config import RunConfig
from engine.data.base import pad_collate
from engine.models import build_model

pytest.importorskip("aeon")


def make_model(input_dim: int, num_classes: int, **model):
    cfg = RunConfig.model_validate({"model": {"name": "minirocket", **model}})
    return build_model(cfg, SimpleNamespace(input_dim=input_dim, num_classes=num_classes))


def recordings(n: int, classes: int = 2, channels: int = 1, lengths=(40, 80), seed: int = 0):
    """Sines whose frequency is the class, random phase, amplitude and length."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for i in range(n):
        k = i % classes
        t = np.arange(int(rng.integers(lengths[0], lengths[1] + 1)))
        x = np.stack(
            [
                rng.uniform(0.7, 1.3) * np.sin(2 * np.pi * 0.03 * (k + 1) * t + rng.uniform(0, 6))
                for _ in range(channels)
            ],
            axis=1,
        )
        xs.append((x + rng.normal(0, 0.1, x.shape)).astype(np.float32))
        ys.append(k)
    return xs, np.asarray(ys)


def batches(xs, ys, size: int, shuffle_seed: int | None = None):
    order = np.arange(len(xs))
    if shuffle_seed is not None:
        order = np.random.default_rng(shuffle_seed).permutation(len(xs))
    for s in range(0, len(xs), size):
        items = [
            {"x": xs[i], "label": int(ys[i]), "id": str(i), "index": int(i)}
            for i in order[s : s + size]
        ]
        yield pad_collate(items)


def logits_of(model, xs, ys, size: int = 7) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model(b) for b in batches(xs, ys, size)])


def test_contract_no_parameters_and_not_fitted() -> None:
    model = make_model(1, 2)
    assert type(model).is_classical is True
    assert sum(p.numel() for p in model.parameters()) == 0
    xs, ys = recordings(4)
    with pytest.raises(RuntimeError, match="not fitted"):
        model(next(batches(xs, ys, 4)))


@pytest.mark.parametrize("classes,channels", [(2, 1), (3, 2)])
def test_fit_predict_and_state_dict_round_trip(tmp_path, classes: int, channels: int) -> None:
    xs, ys = recordings(36, classes, channels)
    xt, yt = recordings(30, classes, channels, seed=1)
    model = make_model(channels, classes, num_kernels=840)
    model.fit_batches(batches(xs, ys, 8, shuffle_seed=3))
    model.eval()
    logits = logits_of(model, xt, yt)
    assert logits.shape == (30, classes) and logits.dtype == torch.float32
    assert (logits.argmax(1).numpy() == yt).mean() >= 0.9
    probs = torch.softmax(logits, 1)
    assert probs.max(1).values.mean() > 0.6  # a usable confidence, not a flat softmax

    # the loader's shuffle does not change the fit: batches are sorted by sample index
    again = make_model(channels, classes, num_kernels=840)
    again.fit_batches(batches(xs, ys, 5))
    assert torch.equal(logits_of(again, xt, yt), logits)

    # a recording's logits do not depend on what else is in its batch
    alone = logits_of(model, xt[:1], yt[:1], size=1)
    assert torch.allclose(alone, logits[:1], atol=1e-6)

    path = tmp_path / "model.pt"
    torch.save(model.state_dict(), path)
    fresh = make_model(channels, classes, num_kernels=840)
    fresh.load_state_dict(torch.load(path, weights_only=True))
    fresh.eval()
    assert torch.equal(logits_of(fresh, xt, yt), logits)
    assert all(isinstance(v, torch.Tensor) for v in model.state_dict().values())


def test_matches_aeon_minirocket_classifier() -> None:
    from aeon.classification.convolution_based import MiniRocketClassifier

    xs, ys = recordings(40, 3, lengths=(64, 64))
    xt, yt = recordings(40, 3, lengths=(64, 64), seed=2)
    model = make_model(1, 3, num_kernels=840)
    model.fit_batches(batches(xs, ys, 16))
    ours = logits_of(model, xt, yt).argmax(1).numpy()
    ref = MiniRocketClassifier(n_kernels=840, random_state=model.seed)
    ref.fit(np.stack([x.T for x in xs]), ys)
    assert (ref.predict(np.stack([x.T for x in xt])) == ours).all()


def test_longer_than_training_and_logistic() -> None:
    xs, ys = recordings(30, 2, lengths=(30, 50))
    xt, yt = recordings(10, 2, lengths=(90, 120), seed=4)
    model = make_model(1, 2, num_kernels=840, classifier="logistic")
    model.fit_batches(batches(xs, ys, 10))
    assert int(model.length) == max(len(x) for x in xs)
    out = logits_of(model, xt, yt)
    assert torch.isfinite(out).all() and (out.argmax(1).numpy() == yt).mean() >= 0.8


def test_a_class_missing_from_training_gets_no_probability() -> None:
    xs, ys = recordings(20, 2)
    model = make_model(1, 3, num_kernels=840)
    model.fit_batches(batches(xs, ys, 10))
    probs = torch.softmax(logits_of(model, xs, ys), 1)
    assert probs[:, 2].max() < 1e-6


def test_state_dict_survives_a_buffer_round_trip() -> None:
    xs, ys = recordings(20, 2)
    model = make_model(1, 2, num_kernels=840)
    model.fit_batches(batches(xs, ys, 10))
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    fresh = make_model(1, 2, num_kernels=840)
    missing, unexpected = fresh.load_state_dict(state, strict=True), None
    assert not missing.missing_keys and not missing.unexpected_keys and unexpected is None
    assert bool(fresh.fitted) and fresh.biases.shape == model.biases.shape


def test_run_training_end_to_end(tmp_path) -> None:
    """A real run: the trainer fits minirocket once and writes every run-folder file; the
    checkpoints load with weights_only=True into a fresh module that predicts the same."""
    from engine import runs
    from engine.config import resolve
    from engine.data import build_data
    from engine.train import EXIT_OK, run_training
    from tests.seq_fixtures import make_activity_csvs

    root = tmp_path / "act"
    make_activity_csvs(root, recordings_per_activity=6, frames=(40, 70), channels=3)
    cfg = resolve(
        "sequence-classifier",
        sets=[
            f"data.root={root}",
            "model.name=minirocket",
            "model.num_kernels=840",
            "data.split_val_fraction=0.25",
            "data.split_test_fraction=0.25",
            "training.device=cpu",
        ],
    )
    run_dir = tmp_path / "run"
    assert run_training(cfg, run_dir) == EXIT_OK
    for f in (
        "config.json",
        "run.json",
        "metrics.jsonl",
        "log.txt",
        "data.json",
        "best.pt",
        "last.pt",
    ):
        assert (run_dir / f).is_file(), f
    for f in ("report.json", "predictions.npz", "per_class.csv", "confusion.csv"):
        assert (run_dir / "eval" / f).is_file(), f
    meta = runs.read_json(run_dir / "run.json")
    assert meta["status"] == "finished", meta.get("error")
    rows = runs.read_jsonl(run_dir / "metrics.jsonl")
    assert [r["epoch"] for r in rows if r["kind"] == "epoch"] == [1]
    assert {r["split"] for r in rows if r["kind"] == "eval"} == {"val", "test"}
    report = runs.read_json(run_dir / "eval" / "report.json")
    assert report["test"]["accuracy"] >= 0.6  # 3 activities, chance is 1/3

    ck = torch.load(run_dir / "best.pt", weights_only=True)
    bundle = build_data(cfg)
    fresh = build_model(cfg, bundle)
    fresh.load_state_dict(ck["model"])
    fresh.eval()
    items = [bundle.test[i] for i in range(len(bundle.test))]
    with torch.no_grad():
        acc = (fresh(pad_collate(items)).argmax(1) == pad_collate(items)["label"]).float().mean()
    assert abs(float(acc) - report["test"]["accuracy"]) < 1e-9
