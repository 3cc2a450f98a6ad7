"""The sequences_csv source: windows, recording-level splits, standardisation, prediction."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from engine.config import RunConfig
from engine.data import build_data, sequences_csv
from engine.data.base import DataError, pad_collate
from engine.data.sequences_csv import pure_windows, windows_for_file
from tests.seq_fixtures import make_activity_csvs


def config(root: Path, **data) -> RunConfig:
    data = {"window_size": 20, "stride": 10, **data}
    return RunConfig.model_validate(
        {"data": {"source": "sequences_csv", "root": str(root), **data}}
    )


def recording_of(sample_id: str) -> str:
    return sample_id.split("@")[0]


def split_recordings(bundle) -> dict[str, set[str]]:
    out = {}
    for name in ("train", "val", "test"):
        ds = getattr(bundle, name)
        out[name] = {recording_of(i) for i in ds.ids} if ds is not None else set()
    return out


@pytest.fixture
def activity(tmp_path: Path) -> tuple[Path, dict]:
    root = tmp_path / "act"
    return root, make_activity_csvs(root, recordings_per_activity=5, mixed_recordings=2)


def test_pure_windows_drop_mixed_and_unlabelled() -> None:
    codes = np.array([0] * 10 + [1] * 10 + [-1] * 5 + [1] * 10)
    starts, mixed, gaps = pure_windows(codes, window=5, stride=5)
    assert starts.tolist() == [0, 5, 10, 15, 25, 30]
    assert (mixed, gaps) == (0, 1)
    starts, mixed, gaps = pure_windows(codes, window=4, stride=3)
    for s in starts:
        assert len(set(codes[s : s + 4])) == 1 and codes[s] >= 0
    assert mixed + gaps + len(starts) == len(range(0, len(codes) - 4 + 1, 3))


def test_windows_are_label_pure(activity) -> None:
    root, man = activity
    bundle = build_data(config(root))
    assert bundle.info["dropped_mixed_windows"] > 0
    classes = bundle.class_names
    assert classes == sorted(man["activities"])
    seen_mixed = 0
    for ds in (bundle.train, bundle.val, bundle.test):
        for sid, label in zip(ds.ids, ds.labels, strict=True):
            name, start = sid.split("@")
            frames = man["recordings"][name]["labels"][int(start) : int(start) + 20]
            assert len(frames) == 20
            assert set(frames) == {classes[label]}
            seen_mixed += man["recordings"][name]["label"] is None
    assert seen_mixed > 0  # mixed recordings still give their pure windows
    item = bundle.train[(0, 0)]
    assert item["x"].shape == (20, 6) and item["x"].dtype == np.float32


def test_recording_split_is_disjoint_and_seeded(activity) -> None:
    root, _ = activity
    a = build_data(config(root, seed=1))
    b = build_data(config(root, seed=1))
    c = build_data(config(root, seed=2))
    sa = split_recordings(a)
    assert not (sa["train"] & sa["val"]) and not (sa["train"] & sa["test"])
    assert not (sa["val"] & sa["test"])
    assert sa == split_recordings(b)
    assert sa != split_recordings(c)
    assert a.train.ids == b.train.ids
    assert a.info["split_source"] == "stratified"
    per = a.info["recordings_per_split"]
    assert per["val"] >= 3 and per["test"] >= 3  # stratified: one of each activity at least
    assert sum(a.info["per_split"].values()) == sum(len(d) for d in (a.train, a.val, a.test))


def test_splits_csv_fixes_the_splits(tmp_path: Path) -> None:
    names = [f"rec{i:03d}" for i in range(9)]
    wanted = {n: ("train", "train", "val", "test")[i % 4] for i, n in enumerate(names)}
    del wanted["rec008"]  # unlisted: skipped
    root = tmp_path / "act"
    make_activity_csvs(root, recordings_per_activity=3, splits=wanted)
    bundle = build_data(config(root))
    got = split_recordings(bundle)
    for split in ("train", "val", "test"):
        assert got[split] == {n for n, s in wanted.items() if s == split}
    assert bundle.info["split_source"] == "splits.csv"
    assert bundle.info["unlisted_recordings"] == 1


def test_splits_csv_naming_a_missing_recording(tmp_path: Path) -> None:
    root = tmp_path / "act"
    make_activity_csvs(root, recordings_per_activity=3, splits={"rec000": "train", "nope": "val"})
    with pytest.raises(DataError, match="recording 'nope'"):
        build_data(config(root))


def test_whole_recordings_have_variable_lengths_and_masks(activity) -> None:
    root, man = activity
    bundle = build_data(config(root, window_size=None))
    assert bundle.info["mixed_recordings"] == 2
    items = [bundle.val[i] for i in range(len(bundle.val))]
    lengths = [len(it["x"]) for it in items]
    assert len(set(lengths)) > 1
    assert lengths == [len(man["recordings"][it["id"]]["labels"]) for it in items]
    batch = pad_collate(items)
    assert batch["x"].shape == (len(items), max(lengths), 6)
    assert batch["mask"].sum(1).tolist() == lengths
    assert bool((batch["x"][~batch["mask"]] == 0).all())


def test_downsample_to_averages_long_whole_recordings_down(activity) -> None:
    root, man = activity  # recordings of 80-120 frames
    full = build_data(config(root, window_size=None))
    short = build_data(config(root, window_size=None, downsample_to=25))
    assert short.info["downsample_to"] == 25
    for i in range(len(full.val)):
        x, y = full.val[i]["x"], short.val[i]["x"]
        k = -(-len(x) // 25)  # 4 or 5 frames a block
        assert len(y) == -(-len(x) // k) <= 25
        assert np.allclose(y[0], x[:k].mean(0), atol=1e-5)
        assert np.allclose(y[-1], x[(len(y) - 1) * k :].mean(0), atol=1e-5)  # partial block
    # windows are not touched, and a new recording is read the way the run was trained
    assert build_data(config(root, downsample_to=25)).train[0]["x"].shape[0] == 20
    name = full.val.ids[0]
    cfg = config(root, window_size=None, downsample_to=25)
    got, starts = windows_for_file(man["recordings"][name]["path"], short.info, cfg)
    assert starts.tolist() == [0] and np.allclose(got[0], short.val[0]["x"], atol=1e-5)


def test_shorten_skips_missing_frames_in_a_block() -> None:
    x = np.array([[1.0], [np.nan], [3.0], [np.nan], [np.nan], [5.0]], dtype=np.float32)
    got = sequences_csv.shorten(x, 2)  # blocks of 3
    assert got[:, 0].tolist() == [2.0, 5.0]
    assert sequences_csv.shorten(x, 6) is x


def test_feature_columns_exclude_text_and_label(activity) -> None:
    root, man = activity
    bundle = build_data(config(root))
    assert bundle.info["feature_columns"] == man["columns"]
    assert bundle.input_dim == 6
    sub = build_data(config(root, feature_columns=["ch1", "ch3"]))
    assert sub.info["feature_columns"] == ["ch1", "ch3"] and sub.input_dim == 2
    assert sub.train[0]["x"].shape[1] == 2


def test_standardisation_is_fitted_on_train_only(activity) -> None:
    root, man = activity
    bundle = build_data(config(root, augment=False))
    train = split_recordings(bundle)["train"]

    def frames(names) -> np.ndarray:
        rows = []
        for n in names:
            with open(man["recordings"][n]["path"], newline="") as fh:
                rows += [[float(r[c]) for c in man["columns"]] for r in csv.DictReader(fh)]
        return np.array(rows)

    x_train = frames(train)
    np.testing.assert_allclose(bundle.info["feature_mean"], x_train.mean(0), atol=1e-5)
    np.testing.assert_allclose(bundle.info["feature_std"], x_train.std(0), rtol=1e-4)
    x_all = frames(man["recordings"])
    assert not np.allclose(bundle.info["feature_mean"], x_all.mean(0), atol=1e-4)
    # the training windows come out standardised with those stats
    xs = np.concatenate([bundle.train[i]["x"] for i in range(len(bundle.train))])
    assert abs(float(xs.mean())) < 0.2 and 0.7 < float(xs.std()) < 1.3

    raw = build_data(config(root, standardize=False))
    assert raw.info["feature_mean"] is None and raw.info["feature_std"] is None


def test_windows_for_file_reproduces_training_windows(activity) -> None:
    root, man = activity
    cfg = config(root)
    bundle = build_data(cfg)
    name = recording_of(bundle.train.ids[0])
    windows, starts = windows_for_file(man["recordings"][name]["path"], bundle.info, cfg)
    assert windows.dtype == np.float32 and windows.shape[1:] == (20, 6)
    assert windows.shape[0] == len(starts)
    position = {int(s): i for i, s in enumerate(starts)}
    checked = 0
    for i, sid in enumerate(bundle.train.ids):
        if recording_of(sid) == name:
            start = int(sid.split("@")[1])
            np.testing.assert_allclose(windows[position[start]], bundle.train.load(i, None)["x"])
            checked += 1
    assert checked > 0

    # a recording to predict may have no label column
    path = man["recordings"][name]["path"]
    unlabelled = root.parent / "new.csv"
    with open(path, newline="") as src, open(unlabelled, "w", newline="") as dst:
        rows = list(csv.DictReader(src))
        w = csv.DictWriter(dst, fieldnames=man["columns"])
        w.writeheader()
        w.writerows({c: r[c] for c in man["columns"]} for r in rows)
    again, _ = windows_for_file(unlabelled, bundle.info, cfg)
    np.testing.assert_allclose(again, windows)

    whole_cfg = config(root, window_size=None)
    whole, starts = windows_for_file(path, build_data(whole_cfg).info, whole_cfg)
    assert isinstance(whole, list) and len(whole) == 1 and starts.tolist() == [0]
    assert whole[0].shape == (len(rows), 6)


def test_training_noise_is_repeatable_and_eval_is_clean(activity) -> None:
    root, _ = activity
    bundle = build_data(config(root, noise_std=0.1))
    a, b = bundle.train[(3, 1)]["x"], bundle.train[(3, 1)]["x"]
    np.testing.assert_array_equal(a, b)
    clean = bundle.train.load(3, None)["x"]
    assert not np.allclose(a, clean)
    assert (a - clean).std() == pytest.approx(0.1, rel=0.3)
    assert not np.allclose(bundle.train[(3, 2)]["x"], a)
    off = build_data(config(root, augment=False))
    np.testing.assert_array_equal(off.train[(3, 1)]["x"], clean)


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def test_errors_for_people(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no CSV recordings"):
        build_data(config(empty))

    nolabel = tmp_path / "nolabel"
    write_csv(nolabel / "r1.csv", ["a", "b", "activity"], [[1, 2, "x"]])
    with pytest.raises(
        DataError, match=r"r1\.csv: no label column 'label' \(columns: a, b, activity\)"
    ):
        build_data(config(nolabel))

    text = tmp_path / "text"
    write_csv(text / "r1.csv", ["name", "label"], [["x", "walk"]])
    with pytest.raises(DataError, match="no numeric feature columns"):
        build_data(config(text))

    small = tmp_path / "small"
    make_activity_csvs(small, recordings_per_activity=3)
    (small / "rec000.csv").unlink()  # walk keeps 2 recordings
    with pytest.raises(DataError, match="class 'walk' has only 2 recordings"):
        build_data(config(small))
    bundle = build_data(config(small, split_test_fraction=0))
    assert bundle.test is None

    with pytest.raises(DataError, match=r"no feature column\(s\) zz") as err:
        build_data(config(small, feature_columns=["ch0", "zz"]))
    assert "\n" not in str(err.value)

    with pytest.raises(DataError, match="data.root is not set"):
        sequences_csv.build(RunConfig.model_validate({"data": {"source": "sequences_csv"}}))


def test_learnable_by_a_linear_model(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    root = tmp_path / "act"
    make_activity_csvs(root, recordings_per_activity=6)
    bundle = build_data(config(root, window_size=30, stride=15))

    def pooled(ds):
        x = np.stack([ds.load(i, None)["x"].mean(0) for i in range(len(ds))])
        return x, ds.labels

    xtr, ytr = pooled(bundle.train)
    xte, yte = pooled(bundle.test)
    acc = LogisticRegression(max_iter=500).fit(xtr, ytr).score(xte, yte)
    assert acc > 0.9  # chance: 1/3
