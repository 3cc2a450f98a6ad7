"""The landmark source: manifest checks, skipped files, features, normalisation, augmentation."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.config import RunConfig, SyntheticConfig
from engine.data import landmarks, synthetic
from engine.data.base import DataError

FACE = 5


def sample(frames: int = 6, seed: int = 0) -> dict[str, np.ndarray]:
    """A still signer: shoulders at (0.6, 0.5) (left) and (0.4, 0.5) (right), so the
    shoulder width is 0.2; the other points are random."""
    r = np.random.default_rng(seed)
    pose = r.uniform(0.2, 0.8, (frames, 33, 4)).astype(np.float32)
    pose[:, 11, :2], pose[:, 12, :2] = (0.6, 0.5), (0.4, 0.5)
    return {
        "pose": pose,
        "left_hand": r.uniform(0.55, 0.7, (frames, 21, 3)).astype(np.float32),
        "right_hand": r.uniform(0.3, 0.45, (frames, 21, 3)).astype(np.float32),
        "face": r.uniform(0.45, 0.55, (frames, FACE, 3)).astype(np.float32),
    }


def write_root(root: Path, items: list[tuple[str, str, str, dict]], classes: list[str]) -> Path:
    (root / "landmarks").mkdir(parents=True)
    (root / "classes.txt").write_text("\n".join(classes) + "\n")
    with open(root / "manifest.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "label", "split", "signer", "frames"])
        for sid, label, split, arrays in items:
            w.writerow([sid, label, split, 0, len(arrays["pose"])])
            np.savez(root / "landmarks" / f"{sid}.npz", **arrays, fps=np.float32(25))
    return root


def config(root: Path | None = None, **data) -> RunConfig:
    return RunConfig.model_validate(
        {"data": {"source": "landmarks", "root": root and str(root), **data}}
    )


@pytest.fixture
def small_root(tmp_path: Path) -> Path:
    items = [
        (f"s{i}", label, split, sample(6 + i, seed=i))
        for i, (label, split) in enumerate(
            [("b", "train"), ("a", "train"), ("a", "val"), ("b", "val"), ("a", "test")]
        )
    ]
    return write_root(tmp_path / "lm", items, ["b", "a"])


def test_bundle_from_a_folder(small_root: Path) -> None:
    bundle = landmarks.build(config(small_root, augment=False))
    assert bundle.class_names == ["b", "a"]
    assert list(bundle.train.labels) == [0, 1] and list(bundle.val.labels) == [1, 0]
    assert bundle.test is not None and bundle.test.ids == ["s4"]
    assert bundle.info["per_split"] == {"train": 2, "val": 2, "test": 1}
    assert bundle.info["missing"] == bundle.info["unreadable"] == 0
    assert bundle.input_dim == (33 + 21 + 21 + FACE) * 2 + 4
    item = bundle.train[1]
    assert item["x"].shape == (7, bundle.input_dim) and item["x"].dtype == np.float32
    assert item["label"] == 1 and item["id"] == "s1"


@pytest.mark.parametrize(
    ("parts", "use_z", "dim"),
    [(["pose"], False, 33 * 2 + 1), (["right_hand", "left_hand"], True, 42 * 3 + 2)],
)
def test_feature_dimension(small_root: Path, parts: list[str], use_z: bool, dim: int) -> None:
    bundle = landmarks.build(config(small_root, parts=parts, use_z=use_z))
    assert bundle.input_dim == dim
    assert bundle.train[(0, 0)]["x"].shape[1] == dim and bundle.val[0]["x"].shape[1] == dim


def test_errors_are_one_line(tmp_path: Path, small_root: Path) -> None:
    def fails(cfg: RunConfig, match: str) -> None:
        with pytest.raises(DataError, match=match) as err:
            landmarks.build(cfg)
        assert "\n" not in str(err.value)

    fails(config(None), "data.root is not set")
    fails(config(tmp_path / "nowhere"), "does not exist")
    (tmp_path / "empty").mkdir()
    fails(config(tmp_path / "empty"), "manifest.csv not found")
    man = small_root / "manifest.csv"
    text = man.read_text()
    man.write_text(text.replace("s1,a,train", "s1,zebra,train"))
    fails(config(small_root), "line 3: label 'zebra' is not in classes.txt")
    man.write_text(text.replace("s1,a,train", "s1,a,training"))
    fails(config(small_root), "split 'training'")
    man.write_text(text.replace("label,", "gloss,"))
    fails(config(small_root), "missing column")
    man.write_text(text)
    (small_root / "classes.txt").unlink()
    fails(config(small_root), "classes.txt not found")


def test_missing_and_corrupt_files_are_skipped(tmp_path: Path) -> None:
    root = synthetic.generate(
        SyntheticConfig(num_classes=3, samples_per_class=10, min_frames=8, max_frames=10),
        tmp_path / "ds",
    )
    with open(root / "manifest.csv", newline="") as fh:
        ids = [r["id"] for r in csv.DictReader(fh) if r["split"] == "train"]
    lm = root / "landmarks"
    (lm / f"{ids[0]}.npz").unlink()  # missing
    (lm / f"{ids[1]}.npz").write_bytes(b"not a zip file")  # garbage
    data = (lm / f"{ids[2]}.npz").read_bytes()
    (lm / f"{ids[2]}.npz").write_bytes(data[: len(data) // 2])  # truncated
    with np.load(lm / f"{ids[3]}.npz") as z:  # lacks a part
        np.savez(lm / f"{ids[3]}.npz", **{k: z[k] for k in z.files if k != "face"})
    bundle = landmarks.build(config(root, cache_mb=0))  # re-read: see the breakage below
    assert bundle.info["missing"] == 1 and bundle.info["unreadable"] == 3
    assert bundle.info["per_split"]["train"] == len(ids) - 4
    assert not set(ids[:4]) & set(bundle.train.ids)
    for ds in (bundle.train, bundle.val, bundle.test):
        for i in range(len(ds)):
            assert ds[(i, 1)]["x"].shape[1] == bundle.input_dim
    # a file that breaks after the bundle was built gives an empty frame, not a crash
    (lm / f"{bundle.val.ids[0]}.npz").write_bytes(b"broken since")
    assert bundle.val[0]["x"].shape == (1, bundle.input_dim) and bundle.val.failures == 1
    # with 'face' not used, the file without a face is fine: garbage, truncated, broken since
    assert landmarks.build(config(root, parts=["pose", "left_hand"])).info["unreadable"] == 3


def test_presence_flags_and_missing_points(tmp_path: Path) -> None:
    arrays = sample(8)
    arrays["left_hand"][2:5] = np.nan
    root = write_root(
        tmp_path / "lm", [("x", "a", "train", arrays), ("y", "a", "val", sample())], ["a"]
    )
    bundle = landmarks.build(config(root, parts=["left_hand", "right_hand"], augment=False))
    x = bundle.train[0]["x"]
    np.testing.assert_array_equal(x[:, -2], [1, 1, 0, 0, 0, 1, 1, 1])  # left hand present
    np.testing.assert_array_equal(x[:, -1], np.ones(8))
    assert (x[2:5, :42] == 0).all() and (x[[0, 1, 5], :42] != 0).any(axis=1).all()


def test_normalisation_centres_and_scales_on_the_shoulders(small_root: Path) -> None:
    bundle = landmarks.build(config(small_root, parts=["pose"], augment=False))
    pose = bundle.train[0]["x"][:, :66].reshape(-1, 33, 2)
    np.testing.assert_allclose(pose[:, 11], np.tile([0.5, 0.0], (6, 1)), atol=1e-6)
    np.testing.assert_allclose(pose[:, 12], np.tile([-0.5, 0.0], (6, 1)), atol=1e-6)
    raw = sample(6, seed=0)["pose"][..., :2]
    np.testing.assert_allclose(pose, (raw - [0.5, 0.5]) / 0.2, atol=1e-5)
    plain = landmarks.build(config(small_root, parts=["pose"], normalize=False, augment=False))
    np.testing.assert_allclose(plain.train[0]["x"][:, :66].reshape(-1, 33, 2), raw, atol=1e-6)


def test_normalisation_on_moving_synthetic_signers(tmp_path: Path) -> None:
    cfg = SyntheticConfig(num_classes=2, samples_per_class=4, min_frames=10, max_frames=14)
    root = synthetic.generate(cfg, tmp_path / "ds")
    bundle = landmarks.build(config(root, parts=["pose"], augment=False))
    for ds in (bundle.train, bundle.val):
        for i in range(len(ds)):
            pose = ds[i]["x"][:, :66].reshape(-1, 33, 2)
            left, right = pose[:, 11], pose[:, 12]
            np.testing.assert_allclose(np.median((left + right) / 2, axis=0), 0, atol=1e-5)
            assert np.median(np.linalg.norm(left - right, axis=1)) == pytest.approx(1, abs=1e-5)


def test_long_sequences_are_resampled(tmp_path: Path) -> None:
    root = write_root(
        tmp_path / "lm", [("x", "a", "train", sample(30)), ("y", "a", "val", sample(5))], ["a"]
    )
    bundle = landmarks.build(config(root, max_frames=10, augment=False))
    full = landmarks.build(config(root, max_frames=64, augment=False)).train[0]["x"]
    x = bundle.train[0]["x"]
    assert x.shape[0] == 10 and bundle.val[0]["x"].shape[0] == 5
    np.testing.assert_array_equal(x[0], full[0])
    np.testing.assert_array_equal(x[-1], full[-1])


# the per-part implementation features() had before it was stacked on one points axis: the
# reference the vectorised one must equal, draw for draw (noise aside: it draws in another order)
def _ref_mirror(arrays: dict[str, np.ndarray], centre_x: float) -> dict[str, np.ndarray]:
    out = {}
    for part, a in arrays.items():
        a = a.copy()
        a[..., 0] = 2 * centre_x - a[..., 0]
        if part == "pose":
            a = a[:, landmarks.POSE_MIRROR]
        out[part] = a
    left, right = out.pop("left_hand", None), out.pop("right_hand", None)
    if right is not None:
        out["left_hand"] = right
    if left is not None:
        out["right_hand"] = left
    return out


def _ref_resample(arrays: dict[str, np.ndarray], frames: int) -> dict[str, np.ndarray]:
    t = len(next(iter(arrays.values())))
    if frames == t:
        return arrays
    idx = np.round(np.linspace(0, t - 1, max(frames, 1))).astype(np.int64)
    return {k: v[idx] for k, v in arrays.items()}


def _ref_features(arrays, spec, rng=None) -> np.ndarray:
    arrays = {k: v[..., :3].astype(np.float32) for k, v in arrays.items()}
    centre, width = landmarks.centre_scale(arrays)
    if spec.normalize:
        for a in arrays.values():
            a[..., :2] -= centre
            a /= width
        centre = np.zeros(2)
    if rng is not None:
        flip = rng.random() < 0.5
        angle = np.deg2rad(rng.uniform(-spec.rotate_deg, spec.rotate_deg))
        scale = rng.uniform(*spec.scale_range)
        speed = rng.uniform(*spec.speed_range)
        if spec.mirror and flip:
            arrays = _ref_mirror(arrays, float(centre[0]))
        c, s = np.cos(angle), np.sin(angle)
        rot = np.array([[c, -s], [s, c]], dtype=np.float32) * scale
        for a in arrays.values():
            a[..., :2] = (a[..., :2] - centre.astype(np.float32)) @ rot.T + centre
            a[..., 2:] *= scale
        t = len(next(iter(arrays.values())))
        arrays = _ref_resample(arrays, max(1, int(round(t / max(speed, 1e-3)))))
    if len(next(iter(arrays.values()))) > spec.max_frames:
        arrays = _ref_resample(arrays, spec.max_frames)
    t = len(next(iter(arrays.values())))
    coords, present = [], []
    for part, points in zip(spec.parts, spec.points, strict=True):
        a = arrays.get(part, np.full((t, points, 3), np.nan, np.float32))[..., : spec.coords]
        present.append(np.isfinite(a).any(axis=(1, 2)))
        coords.append(np.nan_to_num(a, nan=0.0).reshape(len(a), -1))
    return np.concatenate(coords + [np.stack(present, 1)], axis=1).astype(np.float32)


@pytest.mark.parametrize(
    "parts",
    [
        ("pose", "left_hand", "right_hand", "face"),
        ("left_hand",),  # mirrored, the left hand's features come from the right hand
        ("right_hand", "pose"),
        ("face",),
    ],
)
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("coords", [2, 3])
def test_features_equal_the_per_part_reference(parts, normalize, coords) -> None:
    points = tuple(FACE if p == "face" else landmarks.POINTS[p] for p in parts)
    spec = landmarks.FeatureSpec(
        parts=parts,
        points=points,
        coords=coords,
        max_frames=9,
        normalize=normalize,
        speed_range=(0.6, 1.4),
        rotate_deg=20.0,
        scale_range=(0.8, 1.2),
        mirror=True,
    )
    arrays = sample(12, seed=3)
    arrays["right_hand"][2:5] = np.nan  # a hand missing for a few frames
    del arrays["left_hand"]  # and one never detected
    np.testing.assert_allclose(
        landmarks.features(arrays, spec), _ref_features(arrays, spec), atol=1e-5
    )
    flips = set()
    for seed in range(8):
        new = landmarks.features(arrays, spec, np.random.default_rng(seed))
        ref = _ref_features(arrays, spec, np.random.default_rng(seed))
        assert new.shape == ref.shape and new.shape[1] == spec.dim
        np.testing.assert_allclose(new, ref, atol=1e-5)
        flips.add(np.random.default_rng(seed).random() < 0.5)
    assert flips == {True, False}  # both mirrored and plain draws were compared
    prep = landmarks.prepare(arrays, spec)
    views = [prep.plain, prep.mirrored]
    before = [{k: v.copy() for k, v in vars(view).items()} for view in views]
    for seed in range(4):  # mirrored and plain draws
        landmarks.features_from(prep, spec, np.random.default_rng(seed))
    for view, arrays_before in zip(views, before, strict=True):  # the cached sample stays
        for key, value in arrays_before.items():
            np.testing.assert_array_equal(getattr(view, key), value)


def test_noise_augmentation_adds_noise_of_the_asked_size() -> None:
    spec = landmarks.FeatureSpec(
        parts=("pose",), points=(33,), coords=2, max_frames=64, normalize=True, noise_std=0.05
    )
    arrays = sample(40, seed=1)
    plain = landmarks.features(arrays, spec)
    noisy = landmarks.features(arrays, spec, np.random.default_rng(0))
    diff = (noisy - plain)[:, :66]
    assert diff.std() == pytest.approx(0.05, rel=0.1) and abs(diff.mean()) < 0.01


def test_mirror_augmentation_in_the_dataset(small_root: Path) -> None:
    still = {"noise_std": 0.0, "speed_range": (1, 1), "rotate_deg": 0.0, "scale_range": (1, 1)}
    plain = landmarks.build(config(small_root, parts=["left_hand", "right_hand"], augment=False))
    aug = landmarks.build(
        config(small_root, parts=["left_hand", "right_hand"], mirror=True, **still)
    )
    x0 = plain.train[0]["x"]
    flipped = x0.copy()
    flipped[:, :42], flipped[:, 42:84] = x0[:, 42:84], x0[:, :42]  # swap the hands
    flipped[:, 0:84:2] *= -1  # x about the (normalised) centre
    seen = set()
    for epoch in range(12):
        x = aug.train[(0, epoch)]["x"]
        same, mirrored = np.allclose(x, x0, atol=1e-6), np.allclose(x, flipped, atol=1e-6)
        assert same != mirrored
        seen.add(mirrored)
    assert seen == {True, False}
    no_mirror = landmarks.build(config(small_root, parts=["left_hand", "right_hand"], **still))
    assert all(np.allclose(no_mirror.train[(0, e)]["x"], x0, atol=1e-6) for e in range(6))


def test_augmentation_is_keyed_by_seed_epoch_and_index(small_root: Path) -> None:
    cfg = config(small_root, mirror=True, seed=3)
    a, b = landmarks.build(cfg), landmarks.build(cfg)
    np.testing.assert_array_equal(a.train[(1, 4)]["x"], b.train[(1, 4)]["x"])
    x = a.train[(1, 4)]["x"]
    assert x.shape != a.train[(1, 5)]["x"].shape or not np.allclose(x, a.train[(1, 5)]["x"])
    plain = landmarks.build(config(small_root, augment=False)).train[1]["x"]
    assert x.shape != plain.shape or not np.allclose(x, plain)
    other = landmarks.build(config(small_root, mirror=True, seed=4)).train[(1, 4)]["x"]
    assert x.shape != other.shape or not np.allclose(x, other)
    np.testing.assert_array_equal(a.val[0]["x"], a.val[0]["x"])  # eval never augments
    np.testing.assert_array_equal(
        a.val[0]["x"], landmarks.build(config(small_root, augment=False)).val[0]["x"]
    )


@pytest.mark.parametrize("use_z", [False, True])
def test_a_batch_is_featurised_as_its_samples_are(tmp_path: Path, use_z: bool, monkeypatch) -> None:
    """__getitems__ (what the DataLoader asks for) gives exactly the items __getitem__ gives,
    with every augmentation on; the DataLoader goes through it."""
    import torch

    items = [(f"s{i}", "ab"[i % 2], "train", sample(8 + 3 * i, seed=i)) for i in range(7)]
    items[2][3]["right_hand"][:4] = np.nan
    items.append(("v0", "a", "val", sample(6, seed=9)))
    root = write_root(tmp_path / "lm", items, ["a", "b"])
    cfg = config(
        root,
        mirror=True,
        use_z=use_z,
        noise_std=0.02,
        rotate_deg=15.0,
        speed_range=(0.7, 1.3),
        max_frames=12,
        seed=5,
    )
    ds = landmarks.build(cfg).train
    keys = [(i, e) for e in range(3) for i in range(len(ds))]
    batch = ds.__getitems__(keys)
    for k, got in zip(keys, batch, strict=True):
        want = ds[k]
        assert set(got) == set(want) and got["id"] == want["id"] and got["label"] == want["label"]
        np.testing.assert_array_equal(got["x"], want["x"])
    assert len({b["x"].shape[0] for b in batch}) > 1  # lengths differed within the batch
    calls = []
    real = landmarks.features_batch
    monkeypatch.setattr(landmarks, "features_batch", lambda *a: calls.append(1) or real(*a))
    loader = torch.utils.data.DataLoader(ds, batch_size=4, collate_fn=lambda b: b)
    assert sum(len(b) for b in loader) == len(ds) and len(calls) == 2


def test_speed_augmentation_changes_length(small_root: Path) -> None:
    bundle = landmarks.build(config(small_root, speed_range=(0.5, 0.5)))
    assert bundle.train[(1, 0)]["x"].shape[0] == 14  # 7 frames played at half speed
    fast = landmarks.build(config(small_root, speed_range=(2.0, 2.0)))
    assert fast.train[(1, 0)]["x"].shape[0] == 4  # round(7 / 2)


def test_collate_pads_a_batch(small_root: Path) -> None:
    bundle = landmarks.build(config(small_root))
    batch = bundle.collate_fn([bundle.train[(0, 0)], bundle.train[(1, 0)]])
    assert batch["x"].shape[0] == 2 and batch["x"].shape[2] == bundle.input_dim
    assert batch["mask"].sum().item() == sum(len(bundle.train[(i, 0)]["x"]) for i in range(2))


def test_items_are_read_lazily(tmp_path: Path, small_root: Path) -> None:
    """Items read lazily: moving a file away after the build only affects that item."""
    moved = tmp_path / "moved.npz"
    bundle = landmarks.build(config(small_root, augment=False))
    shutil.move(small_root / "landmarks" / "s0.npz", moved)
    assert bundle.train[0]["x"].shape == (1, bundle.input_dim)
    assert bundle.train[1]["x"].shape[0] == 7


def test_the_sample_cache_reads_each_file_once_and_changes_nothing(
    small_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cached samples (decoded arrays for training, features for evaluation) equal uncached
    reads, epoch after epoch, and each file is read once per dataset."""
    uncached = landmarks.build(config(small_root, cache_mb=0, noise_std=0.05, mirror=True))
    cached = landmarks.build(config(small_root, noise_std=0.05, mirror=True))
    reads: list[str] = []
    real = landmarks.load_npz

    def counting(path, parts):
        reads.append(Path(path).name)
        assert len(set(parts)) == len(parts)  # each part once
        return real(path, parts)

    monkeypatch.setattr(landmarks, "load_npz", counting)
    for epoch in (0, 1, 2):
        for ds_c, ds_u in ((cached.train, uncached.train), (cached.val, uncached.val)):
            for i in range(len(ds_c)):
                key = (i, epoch) if ds_c.augment else i
                np.testing.assert_array_equal(ds_c[key]["x"], ds_u[key]["x"])
    train_reads = [n for n in reads if n in {"s0.npz", "s1.npz"}]
    # the uncached datasets read every item every epoch; the cached ones once in all
    assert len(train_reads) == 3 * 2 + 2
    # a training epoch with a new draw still augments differently
    assert not np.array_equal(cached.train[(0, 5)]["x"], cached.train[(0, 6)]["x"])
    assert cached.train.cached_bytes > 0 and uncached.train.cached_bytes == 0


def test_resampling_picks_the_frames_linspace_picks() -> None:
    """The per-sample resampling index (written without np.linspace, whose ~8 us of
    overhead every training sample paid) is numpy's round(linspace(0, t - 1, n)) for
    every length pair."""
    for t in range(1, 70):
        for n in range(1, 140):
            want = np.round(np.linspace(0, t - 1, n)).astype(np.int64)
            np.testing.assert_array_equal(landmarks._resample_index(t, n), want)
