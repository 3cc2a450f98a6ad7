"""temporal_cnn and tcn_attention: padding never changes a prediction; both learn a tiny
dataset whose classes differ in frequency (not in their mean) in a handful of steps."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from engine.config import RunConfig, resolve
from engine.data.base import pad_collate
from engine.models import build_model

MODELS = ("temporal_cnn", "tcn_attention")


def make_model(name: str, input_dim: int, num_classes: int, **model):
    cfg = RunConfig.model_validate({"model": {"name": name, **model}})
    bundle = SimpleNamespace(input_dim=input_dim, num_classes=num_classes)
    return build_model(cfg, bundle)


def tiny_recordings(n: int = 24, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """``n`` one-channel recordings of 40-80 frames: class 0 a slow sine, class 1 a fast
    one, random phase and amplitude, the same mean (zero) in both classes."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for i in range(n):
        k = i % 2
        t = np.arange(int(rng.integers(40, 81)))
        freq = 0.03 if k == 0 else 0.12
        x = rng.uniform(0.7, 1.3) * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
        xs.append((x + rng.normal(0, 0.1, len(t)))[:, None].astype(np.float32))
        ys.append(k)
    return xs, np.asarray(ys)


def batch_of(xs: list[np.ndarray], ys) -> dict:
    items = [
        {"x": x, "label": int(y), "id": str(i), "index": i}
        for i, (x, y) in enumerate(zip(xs, ys, strict=True))
    ]
    return pad_collate(items)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize(
    "norm,input_norm",
    [
        ("batch", "instance_rank"),
        ("layer", "instance_stats"),
        ("batch", "none"),
        ("batch", "instance_auto"),
    ],
)
def test_padding_never_changes_a_prediction(name: str, norm: str, input_norm: str) -> None:
    from engine.models.recording_stats import RankChoice

    torch.manual_seed(0)
    extra = {"pool": 2, "cnn_pooling": "meanmax"} if name == "temporal_cnn" else {}
    model = make_model(name, 3, 4, channels=[8, 16, 16], norm=norm, input_norm=input_norm, **extra)
    for m in model.modules():
        if isinstance(m, RankChoice):  # as if fitted: ranks for the first and last channel
            m.ranked.copy_(torch.tensor([1.0, 0.0, 1.0]))
    # a few training steps on padded batches, so the BatchNorm running stats are not trivial
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    model.train()
    for _ in range(3):
        x = torch.randn(4, 50, 3)
        mask = torch.ones(4, 50, dtype=torch.bool)
        mask[1, 31:] = False
        mask[2, 17:] = False
        x[~mask] = 0.0
        loss = model({"x": x, "mask": mask}).logsumexp(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    model.eval()
    g = torch.Generator().manual_seed(1)
    for length in (9, 37, 60):
        a = torch.randn(1, length, 3, generator=g)
        longer = torch.randn(1, 61, 3, generator=g)
        x = torch.zeros(2, 61, 3)
        x[0, :length] = a[0]
        x[0, length:] = 7.0  # whatever sits in the padding must not matter either
        x[1] = longer[0]
        mask = torch.zeros(2, 61, dtype=torch.bool)
        mask[0, :length] = True
        mask[1] = True
        with torch.no_grad():
            alone = model({"x": a})
            in_batch = model({"x": x, "mask": mask})
            other_alone = model({"x": longer})
        assert torch.allclose(alone, in_batch[:1], atol=1e-5), (length, alone, in_batch[:1])
        assert torch.allclose(other_alone, in_batch[1:], atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_learns_a_tiny_frequency_task(name: str) -> None:
    torch.manual_seed(0)
    xs, ys = tiny_recordings()
    batch = batch_of(xs, ys)
    assert (
        abs(
            np.mean([x.mean() for x, y in zip(xs, ys, strict=True) if y == 0])
            - np.mean([x.mean() for x, y in zip(xs, ys, strict=True) if y == 1])
        )
        < 0.2
    )  # the class means do not tell the classes apart
    model = make_model(name, 1, 2, channels=[16, 16], dropout=0.0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(15):
        loss = torch.nn.functional.cross_entropy(model(batch), batch["label"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(batch).argmax(1) == batch["label"]).float().mean().item()
    assert acc >= 0.9, acc


def test_cnn_options_and_augmentation_keep_shapes() -> None:
    torch.manual_seed(0)
    xs, ys = tiny_recordings(6)
    batch = batch_of(xs, ys)
    for opts in (
        {"cnn_pooling": "meanmax", "pool": 3},
        {"norm": "none", "augment_scale": 0.2, "augment_shift": 0.3},
        {"kernel_sizes": [3], "channels": [4, 4, 4, 4]},
    ):
        model = make_model("temporal_cnn", 1, 3, **opts)
        model.train()
        out = model(batch)
        assert out.shape == (6, 3) and torch.isfinite(out).all()
    model = make_model("tcn_attention", 1, 3, augment_scale=0.2, augment_shift=0.3)
    model.train()
    assert model(batch).shape == (6, 3)


def test_instance_ranks_share_ties_and_ignore_padding() -> None:
    from engine.models.temporal_cnn import instance_ranks

    x = torch.tensor([[[3.0, 1.0, 2.0, 2.0, 9.0, -9.0]]])
    mask = torch.tensor([[True, True, True, True, False, False]])
    assert instance_ranks(x, mask).tolist() == [[[1.0, -1.0, 0.0, 0.0, 0.0, 0.0]]]
    spiky = torch.tensor([[[0.0, 1.0, 2.0, 1000.0]]])
    got = instance_ranks(spiky, torch.ones(1, 4, dtype=torch.bool))
    assert torch.allclose(got, torch.tensor([[[-1.0, -1 / 3, 1 / 3, 1.0]]]))


def test_instance_ranks_are_the_mid_ranks_numpy_counts() -> None:
    """The sort-and-runs ranks (ONNX-exportable) against counts of smaller and equal real
    values, on random recordings with many ties and random lengths."""
    from engine.models.temporal_cnn import instance_ranks

    g = torch.Generator().manual_seed(0)
    for trial in range(60):
        b, c, t = 1 + trial % 4, 1 + trial % 3, 1 + trial % 25
        if trial % 2:
            x = torch.randint(0, 1 + trial % 5, (b, c, t), generator=g).float()
        else:
            x = torch.randn(b, c, t, generator=g)
        lengths = torch.randint(1, t + 1, (b,), generator=g)
        mask = torch.arange(t)[None] < lengths[:, None]
        got = instance_ranks(x, mask).numpy()
        for i in range(b):
            n = int(lengths[i])
            for j in range(c):
                v = x[i, j, :n].numpy()
                lo = (v[None, :] < v[:, None]).sum(1)
                hi = (v[None, :] <= v[:, None]).sum(1)
                want = (lo + hi - 1) / max(n - 1, 1) - 1.0
                np.testing.assert_allclose(got[i, j, :n], want, atol=1e-6)
                assert not got[i, j, n:].any()


def test_attention_gives_padding_zero_weight() -> None:
    model = make_model("tcn_attention", 2, 2, channels=[8, 8])
    h = torch.randn(2, 10, 8)
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[0, 6:] = False
    w = model.pool.weights(h, mask)
    assert torch.all(w[0, 6:] == 0)
    assert torch.allclose(w.sum(1), torch.ones(2))


@pytest.mark.parametrize("preset", ["sequence-classifier", "pose-classifier"])
def test_presets_validate(preset: str) -> None:
    cfg = resolve(preset)
    assert cfg.model.name == "temporal_cnn"
    assert cfg.data.source != "sequences_csv" or cfg.data.window_size is None


@pytest.mark.parametrize("name", MODELS)
def test_an_ensemble_averages_its_members_probabilities(name: str) -> None:
    from engine.models.ensemble import Ensemble

    torch.manual_seed(0)
    xs, ys = tiny_recordings(6)
    batch = batch_of(xs, ys)
    model = make_model(name, 1, 3, channels=[8, 8], ensemble=3, recording_stats=4)
    assert model.fits_input_stats
    model.fit_input_stats(model.input_stats(batch))
    assert isinstance(model, Ensemble) and len(model.members) == 3
    first, second = (list(m.parameters())[0] for m in model.members[:2])
    assert not torch.equal(first, second)  # independently initialised
    model.train()
    out = model(batch)
    assert out.shape == (6, 3, 3)
    each = [torch.nn.functional.cross_entropy(out[:, k], batch["label"]).item() for k in range(3)]
    assert model.compute_loss(out, batch).item() == pytest.approx(np.mean(each), rel=1e-5)
    model.eval()
    with torch.no_grad():
        mean_probs = torch.stack([torch.softmax(m(batch), -1) for m in model.members]).mean(0)
        scores = model.class_scores(model(batch), batch)
    assert torch.allclose(scores, mean_probs, atol=1e-6)
    assert torch.allclose(scores.sum(1), torch.ones(6), atol=1e-6)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("diff", [False, True])
def test_an_ensemble_with_recording_stats_ignores_padding_too(name: str, diff: bool) -> None:
    torch.manual_seed(0)
    extra = {"pool": 2} if name == "temporal_cnn" else {}
    model = make_model(
        name,
        2,
        3,
        channels=[8, 8],
        ensemble=2,
        recording_stats=4,
        recording_stats_diff=diff,
        **extra,
    )
    model.fit_input_stats(torch.randn(30, 36 if diff else 18))
    model.eval()
    a = torch.randn(1, 23, 2)
    x = torch.full((2, 40, 2), 5.0)
    x[0, :23] = a[0]
    x[1] = torch.randn(40, 2)
    mask = torch.ones(2, 40, dtype=torch.bool)
    mask[0, 23:] = False
    with torch.no_grad():
        assert torch.allclose(model({"x": a}), model({"x": x, "mask": mask})[:1], atol=1e-5)


def test_make_model_with_ensemble_one_is_the_plain_network() -> None:
    from engine.models.temporal_cnn import TemporalCNN

    assert isinstance(make_model("temporal_cnn", 1, 2, ensemble=1), TemporalCNN)


def test_recording_stats_match_numpy_over_the_real_frames_only() -> None:
    from engine.models.recording_stats import QUANTILES, recording_stats

    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, 10, generator=g)
    mask = torch.ones(3, 10, dtype=torch.bool)
    mask[1, 6:] = False
    mask[2, 1:] = False  # one real frame
    x[~mask.unsqueeze(1).expand_as(x)] = 99.0  # padding must not count
    got = recording_stats(x, mask).reshape(3, 2, -1)
    for b in range(3):
        n = int(mask[b].sum())
        for c in range(2):
            v = x[b, c, :n].double().numpy()
            want = np.r_[np.quantile(v, QUANTILES), v.mean(), 0.5 * np.log(v.var() + 1e-5)]
            assert np.allclose(got[b, c].numpy(), want, atol=1e-5), (b, c)


def test_difference_stats_are_those_of_the_real_frames_first_difference() -> None:
    from engine.models.recording_stats import QUANTILES, difference_stats

    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 2, 10, generator=g)
    mask = torch.ones(3, 10, dtype=torch.bool)
    mask[1, 6:] = False
    mask[2, 1:] = False  # one real frame: no difference at all
    x[~mask.unsqueeze(1).expand_as(x)] = 99.0  # padding must not count
    got = difference_stats(x, mask).reshape(3, 2, -1)
    for b in range(2):
        n = int(mask[b].sum())
        for c in range(2):
            v = np.diff(x[b, c, :n].double().numpy())
            want = np.r_[np.quantile(v, QUANTILES), v.mean(), 0.5 * np.log(v.var() + 1e-5)]
            assert np.allclose(got[b, c].numpy(), want, atol=1e-5), (b, c)
    assert torch.equal(got[2], torch.zeros_like(got[2]))
    one_frame = difference_stats(x[:, :, :1], mask[:, :1])  # a batch of one-frame recordings
    assert one_frame.shape == (3, 18) and not one_frame.any()


def test_the_quantile_transform_spreads_decades_and_keeps_order() -> None:
    from engine.models.recording_stats import RecordingStats

    rs = RecordingStats(1, 4)
    # one feature over four decades (the other eight constant): its training quantiles
    train = torch.zeros(200, 9)
    train[:, 0] = torch.logspace(-3, 1, 200)
    rs.fit(train)
    v = torch.zeros(4, 9)
    v[:, 0] = torch.tensor([0.0011, 0.0101, 0.101, 9.0])
    z = rs.transform(v)[:, 0]
    assert torch.all(z[1:] > z[:-1])  # order kept
    gaps = z[1:] - z[:-1]
    assert gaps.min() > 0.5  # 1e-3 apart at the bottom is as visible as 10x at the top
    assert torch.isfinite(rs.transform(torch.full((1, 9), 1e9))).all()  # beyond the range


def test_training_fits_the_recording_stats_into_best_pt(tmp_path) -> None:
    from engine.train import EXIT_OK, run_training
    from tests.seq_fixtures import tiny_sequence_classifier

    cfg = tiny_sequence_classifier(tmp_path, "training.max_epochs=2", "model.ensemble=2")
    assert run_training(cfg, tmp_path / "run") == EXIT_OK
    state = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    model_state = state.get("model", state)
    fitted = [v for k, v in model_state.items() if k.endswith("stats.fitted")]
    assert len(fitted) == 2 and all(bool(f) for f in fitted)
    refs = [v for k, v in model_state.items() if k.endswith("stats.reference")]
    assert torch.equal(refs[0], refs[1]) and refs[0].std() > 0
    # the preset's instance_auto decided once, for every member, and said so in log.txt
    assert cfg.model.input_norm == "instance_auto"
    ranked = [v for k, v in model_state.items() if k.endswith("rank_choice.ranked")]
    assert len(ranked) == 2 and torch.equal(ranked[0], ranked[1]) and ranked[0].shape == (6,)
    log_txt = (tmp_path / "run" / "log.txt").read_text()
    assert f"ranks for {int(ranked[0].sum())} of 6 channels" in log_txt


def test_a_quiet_recording_is_z_scored_to_its_shape() -> None:
    """The per-recording z-score floors the variance relative to the recording's own
    scale: a recording of std 1e-3 comes out with unit std (the old absolute floor of
    1e-5 left it at about 0.3), a constant one at zero, and a checkpoint written before
    the floor buffers existed loads the old floor back."""
    from engine.models.temporal_cnn import LEGACY_FLOOR, InstanceFloor, input_transform

    t = torch.arange(200.0)
    quiet = (1e-3 * torch.sin(t / 5))[None, None]  # (1, 1, 200)
    mask = torch.ones(1, 200, dtype=torch.bool)
    h, _ = input_transform(quiet, mask, "instance_stats", floor=InstanceFloor())
    assert abs(float(h[0, 0].std(unbiased=False)) - 1.0) < 1e-3
    constant = torch.full((1, 1, 200), 0.37)
    c, _ = input_transform(constant, mask, "instance_stats", floor=InstanceFloor())
    assert float(c[0, 0].abs().max()) < 0.05
    zeros, _ = input_transform(torch.zeros(1, 1, 200), mask, "instance_stats")
    assert torch.isfinite(zeros).all() and float(zeros[0, 0].abs().max()) == 0.0

    old = InstanceFloor()
    state = {k: v for k, v in old.state_dict().items() if k not in ("absolute", "relative")}
    old.load_state_dict(state)
    assert float(old.absolute) == pytest.approx(LEGACY_FLOOR) and float(old.relative) == 0.0
    damped, _ = input_transform(quiet, mask, "instance_stats", floor=old)
    assert float(damped[0, 0].std(unbiased=False)) < 0.4  # as the old runs saw it
    new = InstanceFloor()
    new.load_state_dict(InstanceFloor().state_dict())
    assert float(new.relative) > 0
    # a whole model from before the floor buffers: loads, with the old floor
    model = make_model("temporal_cnn", 1, 2, channels=[4], input_norm="instance_stats")
    legacy = {k: v for k, v in model.state_dict().items() if not k.startswith("floor.")}
    model.load_state_dict(legacy)
    assert float(model.floor.absolute) == pytest.approx(LEGACY_FLOOR)


def heavy_and_smooth(n: int = 20, t: int = 200, seed: int = 0) -> np.ndarray:
    """(n, 2, t): channel 0 a sine of random gain and phase (smooth: IQR / 1.349 std
    about 1.5), channel 1 small noise with a tall spike every 25 frames (heavy-tailed)."""
    rng = np.random.default_rng(seed)
    frames = np.arange(t)
    x = np.zeros((n, 2, t))
    x[:, 0] = rng.uniform(0.5, 2, (n, 1)) * np.sin(
        2 * np.pi * frames / 50 + rng.uniform(0, 2 * np.pi, (n, 1))
    )
    x[:, 1] = rng.normal(0, 0.1, (n, t))
    x[:, 1, ::25] += rng.uniform(5, 10, (n, 1))
    return x


def test_instance_auto_ranks_the_heavy_tailed_channels_only(caplog) -> None:
    import logging

    from engine.models.recording_stats import HEAVY_TAIL_RATIO, RankChoice, spread_ratios

    x = torch.tensor(heavy_and_smooth(), dtype=torch.float32)
    mask = torch.ones(x.shape[0], x.shape[2], dtype=torch.bool)
    ratio = spread_ratios(x, mask).median(0).values
    assert ratio[0] > 1.3 and ratio[1] < 0.5 < HEAVY_TAIL_RATIO, ratio
    # the ratio does not depend on the scale: a recording 1e-4 as loud (a quiet appliance
    # after the data source's global standardisation) gives the same one
    quiet = spread_ratios(x * 1e-4, mask).median(0).values
    assert torch.allclose(quiet, ratio, rtol=1e-4), (quiet, ratio)
    # a Gaussian channel sits near 1, on the smooth side; padding is not counted
    gauss = torch.randn(50, 1, 400, generator=torch.Generator().manual_seed(0))
    half = torch.ones(50, 400, dtype=torch.bool)
    half[:, 200:] = False
    padded = gauss.clone()
    padded[:, :, 200:] = 100.0
    g = spread_ratios(gauss[:, :, :200], torch.ones(50, 200, dtype=torch.bool))
    assert torch.allclose(spread_ratios(padded, half), g, rtol=1e-6)
    assert 0.9 < float(g.median()) < 1.1
    choice = RankChoice(2)
    with caplog.at_level(logging.INFO, logger="engine"):
        choice.fit(spread_ratios(x, mask))
    assert choice.ranked.tolist() == [0.0, 1.0]
    assert "ranks for 1 of 2 channels" in caplog.text
    # a constant channel is no heavy tail: ratio 1, no NaN
    flat = spread_ratios(torch.full((4, 1, 30), 3.0), torch.ones(4, 30, dtype=torch.bool))
    assert flat.tolist() == [[1.0]] * 4


def test_instance_auto_is_instance_rank_on_the_ranked_channels_only() -> None:
    from engine.models.temporal_cnn import input_transform

    x = torch.randn(3, 2, 40)
    mask = torch.ones(3, 40, dtype=torch.bool)
    mask[1, 25:] = False
    full, levels = input_transform(x, mask, "instance_rank")
    auto, auto_levels = input_transform(x, mask, "instance_auto", torch.tensor([0.0, 1.0]))
    assert torch.equal(levels, auto_levels)
    assert torch.equal(auto[:, [0, 1, 3, 4, 5, 6, 7]], full[:, [0, 1, 3, 4, 5, 6, 7]])
    assert (auto[:, 2] == 0).all() and (full[:, 2] != 0).any()
    # without ranks on any channel it is instance_stats with zero rank channels
    none, _ = input_transform(x, mask, "instance_auto", torch.zeros(2))
    plain, _ = input_transform(x, mask, "instance_stats")
    assert torch.equal(none[:, [0, 1, 4, 5, 6, 7]], plain) and (none[:, 2:4] == 0).all()


def test_encoder_families_refuse_the_per_recording_norms() -> None:
    """The recurrent, transformer and MLP encoders have no per-recording normalisation:
    asking one for it is a clear error, not a setting silently ignored."""
    for name in ("bigru", "transformer", "mlp"):
        with pytest.raises(Exception, match="input_norm"):
            make_model(name, 3, 2, input_norm="instance_rank")


def test_the_lstm_stack_reads_its_per_recording_input_norm() -> None:
    torch.manual_seed(0)
    plain = make_model("lstm_stack", 2, 3, hidden_sizes=[8], dense_size=4)
    stats = make_model(
        "lstm_stack", 2, 3, hidden_sizes=[8], dense_size=4, input_norm="instance_stats"
    )
    assert plain.rnns[0].input_size == 2 and stats.rnns[0].input_size == 6
    x = torch.randn(2, 30, 2)
    mask = torch.ones(2, 30, dtype=torch.bool)
    mask[0, 12:] = False
    stats.eval()
    with torch.no_grad():
        alone = stats({"x": x[:1, :12]})
        padded = stats({"x": x, "mask": mask})[:1]
        # a recording scaled and shifted as a whole keeps its z-scored frames: only the
        # level channels (mean, log std) change, so the output moves
        moved = stats({"x": x[:1, :12] * 3 + 5})
    assert torch.allclose(alone, padded, atol=1e-5)
    assert not torch.allclose(alone, moved, atol=1e-4)
    with pytest.raises(Exception, match="input_norm"):
        make_model("lstm_stack", 2, 3, input_norm="layer")
