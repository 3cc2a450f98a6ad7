"""The synthetic landmark 'signs': determinism, layout, imbalance, splits, caching, learnability."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from engine.config import RunConfig, SyntheticConfig
from engine.data import synthetic
from engine.data.base import DataError

TINY = {"num_classes": 4, "samples_per_class": 8, "min_frames": 8, "max_frames": 12}


def tiny(**kw) -> SyntheticConfig:
    return SyntheticConfig(**{**TINY, "num_signers": 3, **kw})


def rows(root: Path) -> list[dict[str, str]]:
    with open(root / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def arrays(root: Path) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for row in rows(root):
        with np.load(root / "landmarks" / f"{row['id']}.npz") as z:
            out[row["id"]] = {k: z[k] for k in z.files}
    return out


def test_same_seed_same_data_other_seed_other_data(tmp_path: Path) -> None:
    a = arrays(synthetic.generate(tiny(seed=1), tmp_path / "a"))
    b = arrays(synthetic.generate(tiny(seed=1), tmp_path / "b"))
    c = arrays(synthetic.generate(tiny(seed=2), tmp_path / "c"))
    assert a.keys() == b.keys()
    for sid in a:
        for k in a[sid]:
            np.testing.assert_array_equal(a[sid][k], b[sid][k])
    assert rows(tmp_path / "a") == rows(tmp_path / "b")
    common = [sid for sid in a if sid in c and len(a[sid]["pose"]) == len(c[sid]["pose"])]
    assert not any(np.allclose(a[s]["pose"], c[s]["pose"], equal_nan=True) for s in common)
    assert rows(tmp_path / "a") != rows(tmp_path / "c")


def test_layout_and_shapes(tmp_path: Path) -> None:
    cfg = tiny(missing_hand_prob=0.0, noise=0.0)
    root = synthetic.generate(cfg, tmp_path / "ds")
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["format"] == "slr-landmarks" and meta["version"] == 1
    assert meta["settings"] == cfg.model_dump(mode="json")
    names = (root / "classes.txt").read_text().split()
    assert names == ["hello", "thanks", "book", "drink"]
    manifest = rows(root)
    assert list(manifest[0]) == ["id", "label", "split", "signer", "frames"]
    assert len({r["signer"] for r in manifest}) > 1
    for row in manifest:
        assert row["label"] in names and row["split"] in ("train", "val", "test")
        with np.load(root / "landmarks" / f"{row['id']}.npz") as z:
            t = int(row["frames"])
            assert cfg.min_frames <= t <= cfg.max_frames
            assert z["pose"].shape == (t, 33, 4) and z["pose"].dtype == np.float32
            assert z["left_hand"].shape == z["right_hand"].shape == (t, 21, 3)
            assert z["face"].shape == (t, 27, 3) and z["face"].dtype == np.float32
            assert float(z["fps"]) == 25.0
            np.testing.assert_array_equal(z["frame_indices"], np.arange(t))
            pose = z["pose"]
            head_and_shoulders = np.concatenate([pose[:, :13, :2], z["face"][..., :2]], 1)
            assert np.isfinite(pose).all() and np.isfinite(z["face"]).all()
            assert (head_and_shoulders > 0).all() and (head_and_shoulders < 1).all()
            assert (pose[:, 11, 0] > pose[:, 12, 0]).all()  # left shoulder on the image right
            assert (pose[:, 0, 1] < pose[:, 11, 1]).all()  # nose above the shoulders (y down)
            # hands hang off the pose wrists
            np.testing.assert_allclose(z["left_hand"][:, 0, :2], pose[:, 15, :2], atol=1e-6)
            np.testing.assert_allclose(z["right_hand"][:, 0, :2], pose[:, 16, :2], atol=1e-6)
            assert np.ptp(z["right_hand"][..., :2], axis=1).max() > 0.02  # a hand, not a dot


def test_class_names_fall_back() -> None:
    names = synthetic.class_names(60)
    assert names[0] == "hello" and names[-1] == "sign_59" and len(set(names)) == 60


def test_imbalance_counts(tmp_path: Path) -> None:
    cfg = tiny(num_classes=5, samples_per_class=20, imbalance=0.5)
    counts = synthetic.class_counts(cfg)
    assert counts[0] == 20 and counts[-1] == 10
    assert all(a >= b for a, b in zip(counts, counts[1:], strict=False)) and counts[2] == 15
    root = synthetic.generate(cfg, tmp_path / "ds")
    per_label = Counter(r["label"] for r in rows(root))
    assert [per_label[n] for n in synthetic.class_names(5)] == counts


def test_splits_are_stratified(tmp_path: Path) -> None:
    cfg = tiny(num_classes=5, samples_per_class=20, imbalance=0.2, val_fraction=0.2)
    manifest = rows(synthetic.generate(cfg, tmp_path / "ds"))
    by = Counter((r["label"], r["split"]) for r in manifest)
    for name in synthetic.class_names(5):
        assert by[name, "val"] >= 1 and by[name, "test"] >= 1 and by[name, "train"] >= 1
    assert by["hello", "val"] == 4 and by["hello", "test"] == 3  # 20 * 0.2, 20 * 0.15
    assert sum(v for (_, s), v in by.items() if s == "train") > len(manifest) * 0.5


def test_missing_hands(tmp_path: Path) -> None:
    never = arrays(synthetic.generate(tiny(missing_hand_prob=0.0), tmp_path / "a"))
    always = arrays(synthetic.generate(tiny(missing_hand_prob=1.0), tmp_path / "b"))
    assert all(np.isfinite(a[p]).all() for a in never.values() for p in a if p != "fps")
    for a in always.values():
        for part in ("left_hand", "right_hand"):
            gone = np.isnan(a[part]).all(axis=(1, 2))
            assert gone.any() and not np.isnan(a[part][~gone]).any()  # a run, whole frames
        assert np.isfinite(a["pose"]).all()


def test_generate_skips_matching_and_replaces_stale(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    calls: list[tuple[int, int]] = []
    synthetic.generate(tiny(), root, progress=lambda i, n: calls.append((i, n)))
    assert calls[-1][0] == calls[-1][1] == len(rows(root))
    stamp = (root / "dataset.json").stat().st_mtime_ns
    calls.clear()
    synthetic.generate(tiny(), root, progress=lambda i, n: calls.append((i, n)))
    assert calls == [] and (root / "dataset.json").stat().st_mtime_ns == stamp
    synthetic.generate(tiny(seed=5), root)  # other settings: regenerated in place
    assert json.loads((root / "dataset.json").read_text())["settings"]["seed"] == 5
    assert not [p for p in tmp_path.iterdir() if p.name != "ds"]  # no temp folders left


def test_generate_refuses_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="not a synthetic dataset"):
        synthetic.generate(tiny(), tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    with pytest.raises(DataError, match="min_frames"):
        synthetic.generate(tiny(min_frames=20, max_frames=10), tmp_path / "other")


def test_default_root_and_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLR_CACHE_DIR", str(tmp_path / "cache"))
    root = synthetic.default_root(tiny())
    assert root.parent == tmp_path / "cache" and root.name.startswith("synthetic-")
    assert synthetic.default_root(tiny(seed=3)) != root
    cfg = RunConfig.model_validate({"data": {"synthetic": {**TINY, "num_signers": 3}}})
    bundle = synthetic.build(cfg)
    assert (root / "dataset.json").is_file()
    assert bundle.class_names == synthetic.class_names(4)
    assert len(bundle.train) + len(bundle.val) + len(bundle.test) == len(rows(root))
    assert bundle.val[0]["x"].shape[1] == bundle.input_dim


def test_classes_are_separable(tmp_path: Path) -> None:
    """Nearest class centroid on mean/std-pooled features is far above chance (1/6)."""
    syn = {"num_classes": 6, "samples_per_class": 24, "imbalance": 1.0, "seed": 7}
    syn |= {"min_frames": 16, "max_frames": 24, "val_fraction": 0.25, "test_fraction": 0.25}
    data = {"root": str(tmp_path / "ds"), "augment": False, "synthetic": syn}
    bundle = synthetic.build(RunConfig.model_validate({"data": data}))

    def pooled(*splits) -> tuple[np.ndarray, np.ndarray]:
        xs = [ds[i]["x"] for ds in splits for i in range(len(ds))]
        labels = np.concatenate([ds.labels for ds in splits])
        return np.stack([np.concatenate([x.mean(0), x.std(0)]) for x in xs]), labels

    x_fit, y_fit = pooled(bundle.train)
    x_eval, y_eval = pooled(bundle.val, bundle.test)
    mu, sd = x_fit.mean(0), x_fit.std(0) + 1e-6
    centroids = np.stack([((x_fit - mu) / sd)[y_fit == c].mean(0) for c in range(6)])
    dist = ((((x_eval - mu) / sd)[:, None] - centroids[None]) ** 2).sum(-1)
    acc = (dist.argmin(1) == y_eval).mean()
    assert acc > 0.6, acc
