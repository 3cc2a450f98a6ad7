"""The features source: npy/npz, vectors/sequences, splits, binary class order, skipped files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from engine.config import RunConfig
from engine.data import build_data, features
from engine.data.base import DataError, pad_collate
from engine.data.splits import class_order
from tests.seq_fixtures import make_feature_set


def config(root: Path, **data) -> RunConfig:
    return RunConfig.model_validate({"data": {"source": "features", "root": str(root), **data}})


def all_ids(bundle) -> dict[str, list[str]]:
    return {
        s: list(getattr(bundle, s).ids) if getattr(bundle, s) is not None else []
        for s in ("train", "val", "test")
    }


@pytest.mark.parametrize("fmt", ["npy", "npz", "mixed"])
def test_vectors_become_one_frame(tmp_path: Path, fmt: str) -> None:
    man = make_feature_set(tmp_path / "f", binary=False, fmt=fmt, dim=5)
    bundle = build_data(config(tmp_path / "f", augment=False))
    assert bundle.input_dim == 5 and bundle.num_classes == 3
    assert bundle.info["kinds"] == {"vectors": len(man["ids"]), "sequences": 0}
    item = bundle.val[0]
    assert item["x"].shape == (1, 5) and item["x"].dtype == np.float32
    assert sum(bundle.info["per_split"].values()) == len(man["ids"])


def test_npz_key_choice(tmp_path: Path) -> None:
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.savez(tmp_path / "a.npz", other=np.zeros(4), features=x)
    np.savez(tmp_path / "b.npz", zzz=x, aaa=np.zeros(9))
    np.savez(tmp_path / "c.npz", x=x, y=np.zeros(1))
    for name in ("a", "b", "c"):
        assert features.array_shape(tmp_path / f"{name}.npz") == (2, 3)
        np.testing.assert_array_equal(features.load_array(tmp_path / f"{name}.npz"), x)


def test_sequences_under_features_folder(tmp_path: Path) -> None:
    root = tmp_path / "f"
    man = make_feature_set(root, sequences=True, subfolder=True, fmt="mixed", dim=4)
    bundle = build_data(config(root))
    assert bundle.info["kinds"] == {"vectors": 0, "sequences": len(man["ids"])}
    items = [bundle.val[i] for i in range(len(bundle.val))]
    lengths = [len(it["x"]) for it in items]
    assert len(set(lengths)) > 1
    batch = pad_collate(items)
    assert batch["x"].shape == (len(items), max(lengths), 4)
    assert batch["mask"].sum(1).tolist() == lengths


def test_vectors_and_sequences_together(tmp_path: Path) -> None:
    root = _mk(tmp_path / "f")
    rows = []
    for i in range(12):
        shape = (3,) if i % 2 else (i % 5 + 2, 3)
        np.save(root / f"x{i}.npy", np.ones(shape))
        rows.append([f"x{i}", "ab"[i % 4 // 2], ("train", "train", "val", "test")[i // 3 % 4]])
    _write_labels(root, ["id", "label", "split"], rows)
    bundle = build_data(config(root))
    batch = pad_collate([bundle.train[i] for i in range(len(bundle.train))])
    assert batch["x"].shape[-1] == 3
    assert bundle.info["kinds"] == {"vectors": 6, "sequences": 6}


def _mk(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def _write_labels(root: Path, header: list[str], rows: list[list]) -> None:
    with open(_mk(root) / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def test_split_column_is_used(tmp_path: Path) -> None:
    man = make_feature_set(tmp_path / "f", with_split=True)
    bundle = build_data(config(tmp_path / "f"))
    assert bundle.info["split_source"] == "labels.csv"
    got = all_ids(bundle)
    for split in ("train", "val", "test"):
        assert set(got[split]) == {
            i for i, s in zip(man["ids"], man["splits"], strict=True) if s == split
        }


def test_group_split_keeps_groups_together(tmp_path: Path) -> None:
    man = make_feature_set(tmp_path / "f", binary=False, groups=9)
    group_of = dict(zip(man["ids"], man["groups"], strict=True))
    a = build_data(config(tmp_path / "f", seed=3))
    b = build_data(config(tmp_path / "f", seed=3))
    assert a.info["split_source"] == "group"
    got = all_ids(a)
    groups = {s: {group_of[i] for i in ids} for s, ids in got.items()}
    assert not (groups["train"] & groups["val"]) and not (groups["train"] & groups["test"])
    assert not (groups["val"] & groups["test"])
    assert all(groups.values())
    assert got == all_ids(b)
    assert a.info["groups_per_split"] == {s: len(g) for s, g in groups.items()}
    assert sum(a.info["groups_per_split"].values()) == 9


def test_stratified_split_without_split_or_group(tmp_path: Path) -> None:
    man = make_feature_set(tmp_path / "f", binary=False, samples_per_class=10)
    bundle = build_data(config(tmp_path / "f"))
    assert bundle.info["split_source"] == "stratified"
    for split in ("val", "test"):
        labels = getattr(bundle, split).labels
        assert np.bincount(labels, minlength=3).tolist() == [2, 2, 2]
    assert len(bundle.train) + len(bundle.val) + len(bundle.test) == len(man["ids"])
    assert all_ids(bundle) != all_ids(build_data(config(tmp_path / "f", seed=5)))


@pytest.mark.parametrize(
    ("labels", "positive", "order"),
    [
        (["correct", "error"], None, ["correct", "error"]),
        (["ok", "error"], None, ["ok", "error"]),
        (["1", "0"], None, ["0", "1"]),
        (["True", "False"], None, ["False", "True"]),
        (["normal", "abnormal"], None, ["normal", "abnormal"]),
        (["cat", "dog"], None, ["cat", "dog"]),
        (["cat", "dog"], "cat", ["dog", "cat"]),
        (["0", "1"], 0, ["1", "0"]),
        (["no", "yes"], True, ["no", "yes"]),
        (["c", "a", "b"], None, ["a", "b", "c"]),
        (["10", "2", "1"], None, ["1", "2", "10"]),
    ],
)
def test_class_order(labels, positive, order) -> None:
    assert class_order(labels, positive) == order


def test_binary_positive_class_is_index_one(tmp_path: Path) -> None:
    make_feature_set(tmp_path / "f", labels=("ok", "error"))
    bundle = build_data(config(tmp_path / "f"))
    assert bundle.class_names == ["ok", "error"] and bundle.task == "binary"
    assert bundle.info["label_encoder"] == {"classes": ["ok", "error"]}
    forced = build_data(config(tmp_path / "f", positive_label="ok"))
    assert forced.class_names == ["error", "ok"]
    with pytest.raises(DataError, match="data.positive_label 'nope' is not a label"):
        build_data(config(tmp_path / "f", positive_label="nope"))


def test_missing_and_unreadable_are_counted(tmp_path: Path) -> None:
    man = make_feature_set(tmp_path / "f", missing=3, unreadable=2, fmt="mixed")
    np.save(tmp_path / "f" / "wrong.npy", np.zeros(99, dtype=np.float32))  # another width
    with open(tmp_path / "f" / "labels.csv", "a", newline="") as fh:
        fh.write("wrong,error\n")
    bundle = build_data(config(tmp_path / "f"))
    assert bundle.info["missing"] == 3
    assert bundle.info["unreadable"] == 3
    assert bundle.info["listed"] == len(man["ids"]) + 1
    kept = {i for ids in all_ids(bundle).values() for i in ids}
    assert kept.isdisjoint(man["missing"] + man["unreadable"] + ["wrong"])
    assert len(kept) == len(man["ids"]) - 5
    assert any("missing" in s for s in bundle.info["skipped"])


def test_standardisation_and_prediction(tmp_path: Path) -> None:
    make_feature_set(tmp_path / "f", dim=6, with_split=True)
    bundle = build_data(config(tmp_path / "f", augment=False))
    train = np.concatenate([features.load_array(p) for p in bundle.train.paths])
    np.testing.assert_allclose(bundle.info["feature_mean"], train.mean(0), atol=1e-5)
    np.testing.assert_allclose(bundle.info["feature_std"], train.std(0), rtol=1e-4)
    x = features.array_for_file(bundle.val.paths[0], bundle.info)
    np.testing.assert_allclose(x, bundle.val[0]["x"])
    np.save(tmp_path / "bad.npy", np.zeros(3))
    with pytest.raises(DataError, match="has 3 features; the run was trained on 6"):
        features.array_for_file(tmp_path / "bad.npy", bundle.info)


def test_errors_for_people(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="labels.csv not found"):
        build_data(config(_mk(tmp_path / "none")))
    _write_labels(tmp_path / "cols", ["name", "label"], [["a", "x"]])
    with pytest.raises(DataError, match=r"missing column\(s\) id"):
        build_data(config(tmp_path / "cols"))
    _write_labels(tmp_path / "gone", ["id", "label"], [["a", "x"], ["b", "y"]])
    with pytest.raises(DataError, match="none of the 2 arrays"):
        build_data(config(tmp_path / "gone"))
    make_feature_set(tmp_path / "tiny", samples_per_class=2)
    with pytest.raises(DataError, match="class 'correct' has only 2 samples") as err:
        build_data(config(tmp_path / "tiny"))
    assert "\n" not in str(err.value)


def test_learnable_by_a_linear_model(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    make_feature_set(tmp_path / "f", binary=True, sequences=True, samples_per_class=30)
    bundle = build_data(config(tmp_path / "f"))

    def pooled(ds):
        return np.stack([ds.load(i, None)["x"].mean(0) for i in range(len(ds))]), ds.labels

    xtr, ytr = pooled(bundle.train)
    xte, yte = pooled(bundle.test)
    assert LogisticRegression(max_iter=500).fit(xtr, ytr).score(xte, yte) > 0.85


def test_the_cache_reads_each_file_once_and_gives_the_same_samples(tmp_path, monkeypatch) -> None:
    make_feature_set(tmp_path / "f", dim=4, with_split=True)
    cached = build_data(config(tmp_path / "f", noise_std=0.1))
    plain = build_data(config(tmp_path / "f", noise_std=0.1, cache_mb=0))
    reads: list[str] = []
    real = features.load_array
    monkeypatch.setattr(features, "load_array", lambda p: reads.append(str(p)) or real(p))
    for split in ("val", "test"):
        a, b = getattr(cached, split), getattr(plain, split)
        for i in range(len(a)):
            np.testing.assert_array_equal(a[i]["x"], b[i]["x"])
    n_eval = len(cached.val) + len(cached.test)
    train = cached.train
    first = [train[i, 0]["x"].copy() for i in range(len(train))]
    again = [train[i, 1]["x"].copy() for i in range(len(train))]  # next epoch: fresh noise
    assert any(not np.array_equal(x, y) for x, y in zip(first, again, strict=True))
    # the loop above read every eval file once for each bundle, the epochs each train file
    # once (the cached bundle: each file once per run)
    assert len(reads) == 2 * n_eval + len(train)
    before = len(reads)
    for a, b in ((cached.val, plain.val), (cached.test, plain.test)):
        for i in range(len(a)):
            a[i], b[i]
    assert len(reads) - before == n_eval  # again: only the uncached bundle reads
    assert cached.train.cached_bytes > 0 and plain.train.cached_bytes == 0
