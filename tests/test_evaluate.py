"""engine.evaluate: figures against scikit-learn and hand-worked values, sweeps, eval files."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from engine import evaluate as ev

# --------------------------------------------------------------------------- fixtures


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture
def random_case() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """200 samples, 12 classes, every class present, a planted signal (about 50% top-1)."""
    rng = np.random.default_rng(1234)
    n, c = 200, 12
    y = np.concatenate([np.arange(c), rng.integers(0, c, n - c)])
    logits = rng.normal(size=(n, c))
    logits[np.arange(n), y] += 1.5
    return y, _softmax(logits), [f"sign_{i}" for i in range(c)]


# A hand-made imbalanced 3-class case:
#   y    = a a a a b c      pred = a a a a a c
#   recall  a 4/4, b 0/1, c 1/1 -> per-class accuracy 2/3, accuracy 5/6
#   precision a 4/5, b 0 (never predicted), c 1/1 ; f1 a 8/9, b 0, c 1
HAND_Y = np.array([0, 0, 0, 0, 1, 2])
HAND_P = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.6, 0.3, 0.1],
        [0.5, 0.4, 0.1],
        [0.9, 0.05, 0.05],
        [0.5, 0.3, 0.2],
        [0.2, 0.2, 0.6],
    ]
)
HAND_NAMES = ["a", "b", "c"]

# A hand-made binary case: positive scores probs[:, 1].
BIN_Y = np.array([0, 0, 1, 1, 1])
BIN_P1 = np.array([0.1, 0.6, 0.4, 0.7, 0.9])
BIN_P = np.stack([1 - BIN_P1, BIN_P1], axis=1)


# --------------------------------------------------------------------------- summary


def test_summary_hand_case() -> None:
    s = ev.summarize(HAND_Y, HAND_P, HAND_NAMES)
    assert s["num_samples"] == 6 and s["num_classes"] == 3
    assert s["accuracy"] == pytest.approx(5 / 6)
    assert s["per_class_accuracy"] == pytest.approx(2 / 3)  # differs from accuracy: imbalance
    assert s["macro_precision"] == pytest.approx((0.8 + 0 + 1) / 3)
    assert s["macro_recall"] == pytest.approx(2 / 3)
    assert s["macro_f1"] == pytest.approx((8 / 9 + 0 + 1) / 3)
    assert s["weighted_f1"] == pytest.approx((4 * 8 / 9 + 1 * 0 + 1 * 1) / 6)
    assert s["top5_accuracy"] == 1.0 and s["top10_accuracy"] == 1.0  # k capped at C=3
    expected_nll = -np.mean(np.log([0.7, 0.6, 0.5, 0.9, 0.3, 0.6]))
    assert s["nll"] == pytest.approx(expected_nll)
    assert "roc_auc" not in s


def test_summary_matches_sklearn(random_case) -> None:
    y, p, names = random_case
    pred = p.argmax(1)
    labels = list(range(len(names)))
    s = ev.summarize(y, p, names)
    assert s["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert s["per_class_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    kw = {"labels": labels, "zero_division": 0}
    assert s["macro_precision"] == pytest.approx(precision_score(y, pred, average="macro", **kw))
    assert s["macro_recall"] == pytest.approx(recall_score(y, pred, average="macro", **kw))
    assert s["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro", **kw))
    assert s["weighted_f1"] == pytest.approx(f1_score(y, pred, average="weighted", **kw))
    # top-k worked out independently of sklearn
    order = np.argsort(-p, axis=1)
    for k, key in [(5, "top5_accuracy"), (10, "top10_accuracy")]:
        assert s[key] == pytest.approx(np.mean([y[i] in order[i, :k] for i in range(len(y))]))
    assert s["top5_accuracy"] >= s["accuracy"]
    assert s["nll"] == pytest.approx(-np.mean(np.log(p[np.arange(len(y)), y])))
    assert 0.3 < s["accuracy"] < 0.9


def test_top_k_capped_and_missing_classes() -> None:
    # 12 classes, a split where only two of them occur: still treated as multi-class
    rng = np.random.default_rng(0)
    p = _softmax(rng.normal(size=(8, 12)))
    y = np.array([3, 3, 5, 5, 3, 5, 3, 5])
    s = ev.summarize(y, p, [str(i) for i in range(12)])
    assert s["num_classes_present"] == 2
    assert s["top10_accuracy"] >= s["top5_accuracy"] >= s["accuracy"]
    # macro figures average over all 12 classes (absent ones count 0); per-class over present
    assert s["macro_recall"] == pytest.approx(s["per_class_accuracy"] * 2 / 12)


def test_binary_summary_hand_case() -> None:
    s = ev.summarize(BIN_Y, BIN_P, ["no", "yes"])
    assert s["accuracy"] == pytest.approx(3 / 5)  # argmax == p1 > 0.5
    assert s["roc_auc"] == pytest.approx(5 / 6)
    assert s["pr_auc"] == pytest.approx(11 / 12)
    assert s["roc_auc"] == pytest.approx(roc_auc_score(BIN_Y, BIN_P1))
    assert s["pr_auc"] == pytest.approx(average_precision_score(BIN_Y, BIN_P1))
    assert s["top5_accuracy"] == 1.0  # k capped at 2


def test_binary_one_class_present_gives_none_auc() -> None:
    s = ev.summarize(np.array([1, 1, 1]), BIN_P[2:], ["no", "yes"])
    assert s["roc_auc"] is None and s["pr_auc"] is None
    assert s["accuracy"] == pytest.approx(2 / 3)


def test_empty_split() -> None:
    s = ev.summarize(np.zeros(0, dtype=int), np.zeros((0, 4)), list("abcd"))
    assert s["num_samples"] == 0 and s["accuracy"] is None and s["nll"] is None
    assert ev.threshold_sweep(np.zeros(0, dtype=int), np.zeros((0, 4)), [0.5])[0]["accepted"] == 0


def test_bad_inputs_are_clear() -> None:
    with pytest.raises(ValueError, match="class names"):
        ev.summarize(HAND_Y, HAND_P, ["a", "b"])
    with pytest.raises(ValueError, match="rows"):
        ev.summarize(HAND_Y[:3], HAND_P, HAND_NAMES)
    with pytest.raises(ValueError, match="outside"):
        ev.summarize(np.array([0, 0, 0, 0, 1, 3]), HAND_P, HAND_NAMES)


# --------------------------------------------------------------------------- tables


def test_per_class_table_hand_case() -> None:
    rows = ev.per_class_table(HAND_Y, HAND_P, HAND_NAMES)
    assert [r["class"] for r in rows] == HAND_NAMES
    assert [r["support"] for r in rows] == [4, 1, 1]
    assert [r["accuracy"] for r in rows] == pytest.approx([1.0, 0.0, 1.0])
    assert [r["precision"] for r in rows] == pytest.approx([0.8, 0.0, 1.0])
    assert [r["f1"] for r in rows] == pytest.approx([8 / 9, 0.0, 1.0])


def test_per_class_table_absent_class_accuracy_none() -> None:
    p = np.array([[0.9, 0.05, 0.05], [0.1, 0.1, 0.8]])
    rows = ev.per_class_table(np.array([0, 2]), p, HAND_NAMES)
    assert rows[1]["support"] == 0 and rows[1]["accuracy"] is None and rows[1]["recall"] == 0.0


def test_per_class_table_matches_sklearn(random_case) -> None:
    y, p, names = random_case
    pred = p.argmax(1)
    rows = ev.per_class_table(y, p, names)
    f1 = f1_score(y, pred, average=None, labels=range(len(names)), zero_division=0)
    assert [r["f1"] for r in rows] == pytest.approx(list(f1))
    assert sum(r["support"] for r in rows) == len(y)


def test_confusion_pairs_and_most_confused() -> None:
    y = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 2, 0, 2])
    pairs = ev.confusion_pairs(y, pred, HAND_NAMES)
    cells = {(r["true_index"], r["pred_index"]): r["count"] for r in pairs}
    assert cells == {(0, 0): 1, (0, 1): 2, (1, 1): 1, (1, 2): 1, (2, 0): 1, (2, 2): 2}
    assert sum(cells.values()) == len(y)
    assert pairs[0] == {"true_index": 0, "true": "a", "pred_index": 0, "pred": "a", "count": 1}
    top = ev.confusion_pairs(y, pred, HAND_NAMES, top=2)
    assert [r["count"] for r in top] == [2, 2]
    mc = ev.most_confused(y, pred, HAND_NAMES)
    assert [(r["true"], r["pred"], r["count"]) for r in mc] == [
        ("a", "b", 2),
        ("b", "c", 1),
        ("c", "a", 1),
    ]
    assert ev.most_confused(y, pred, HAND_NAMES, top=1)[0]["count"] == 2


# --------------------------------------------------------------------------- thresholds


def test_default_thresholds() -> None:
    ts = ev.default_thresholds(0.05, 0.95, 0.05)
    assert len(ts) == 19 and ts[0] == 0.05 and ts[-1] == 0.95
    assert ts[2] == 0.15  # no 0.15000000000000002
    assert ev.default_thresholds(0.1, 0.3, 0.1) == [0.1, 0.2, 0.3]
    assert ev.default_thresholds(0.5, 0.5, 0.1) == [0.5]
    with pytest.raises(ValueError):
        ev.default_thresholds(0.5, 0.4, 0.1)
    with pytest.raises(ValueError):
        ev.default_thresholds(0.1, 0.9, 0)


def test_binary_sweep_by_hand() -> None:
    rows = {r["threshold"]: r for r in ev.threshold_sweep(BIN_Y, BIN_P, [0.4, 0.5, 0.65, 0.95])}
    # t=0.5: pred 0 1 0 1 1 -> TP 2, FP 1, FN 1
    r = rows[0.5]
    assert (r["precision"], r["recall"], r["f1"]) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    assert r["accuracy"] == pytest.approx(3 / 5)
    assert r["coverage"] == 1.0 and r["accepted"] == 5
    # t=0.65: pred 0 0 0 1 1 -> TP 2, FP 0, FN 1
    r = rows[0.65]
    assert (r["precision"], r["recall"], r["f1"]) == pytest.approx((1.0, 2 / 3, 0.8))
    assert r["accuracy"] == pytest.approx(4 / 5)
    # t=0.4 (>=: 0.4 is positive): pred 0 1 1 1 1 -> TP 3, FP 1
    r = rows[0.4]
    assert (r["precision"], r["recall"], r["f1"]) == pytest.approx((0.75, 1.0, 6 / 7))
    # t=0.95: nothing positive -> zero_division=0
    r = rows[0.95]
    assert (r["precision"], r["recall"], r["f1"], r["accuracy"]) == pytest.approx(
        (0.0, 0.0, 0.0, 2 / 5)
    )


def test_best_threshold_rule() -> None:
    rows = ev.threshold_sweep(BIN_Y, BIN_P, [0.4, 0.5, 0.65, 0.95])
    assert ev.best_threshold(rows)["threshold"] == 0.4
    # accuracy: 0.4 and 0.65 tie at 0.8 -> the lower threshold wins
    assert ev.best_threshold(rows, "accuracy")["threshold"] == 0.4
    assert ev.best_threshold(list(reversed(rows)), "accuracy")["threshold"] == 0.4
    assert ev.best_threshold([], "f1") is None
    assert ev.best_threshold([{"threshold": 0.5, "accuracy": None}], "accuracy") is None


def test_multiclass_sweep_by_hand() -> None:
    rows = {r["threshold"]: r for r in ev.threshold_sweep(HAND_Y, HAND_P, [0.5, 0.6, 0.95])}
    # max probs .7 .6 .5 .9 .5 .6; row 4 (max .5) is the only error
    r = rows[0.5]
    assert r["accepted"] == 6 and r["coverage"] == 1.0
    assert r["accuracy"] == pytest.approx(5 / 6) and r["recall"] == pytest.approx(5 / 6)
    r = rows[0.6]
    assert r["accepted"] == 4 and r["coverage"] == pytest.approx(4 / 6)
    assert r["accuracy"] == 1.0 and r["precision"] == 1.0
    assert r["recall"] == pytest.approx(4 / 6) and r["f1"] == pytest.approx(0.8)
    r = rows[0.95]
    assert r["accepted"] == 0 and r["coverage"] == 0.0
    assert r["accuracy"] is None and r["precision"] is None
    assert r["recall"] == 0.0 and r["f1"] == 0.0


def test_multiclass_coverage_monotone(random_case) -> None:
    y, p, _ = random_case
    rows = ev.threshold_sweep(y, p, ev.default_thresholds(0.0, 1.0, 0.02))
    cov = [r["coverage"] for r in rows]
    rec = [r["recall"] for r in rows]
    assert cov[0] == 1.0
    assert all(a >= b for a, b in zip(cov, cov[1:], strict=False))
    assert all(a >= b for a, b in zip(rec, rec[1:], strict=False))
    assert [r["accepted"] for r in rows] == [int(round(c * len(y))) for c in cov]
    for r in rows:
        if r["accepted"]:
            acc = r["accuracy"]
            assert r["recall"] == pytest.approx(acc * r["coverage"])


def test_pick_threshold_is_a_sweep_row(random_case) -> None:
    y, p, _ = random_case
    assert ev.pick_threshold(y, p, 0.3) == ev.threshold_sweep(y, p, [0.3])[0]
    assert set(ev.pick_threshold(y, p, 0.3)) == set(ev.SWEEP_COLUMNS)


# --------------------------------------------------------------------------- files


def _strict_json(text: str):
    def bad(name: str):
        raise AssertionError(f"non-strict JSON constant {name}")

    return json.loads(text, parse_constant=bad)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_write_eval_multiclass(tmp_path: Path, random_case) -> None:
    y, p, names = random_case
    names = [*names[:-1], "hände"]  # a non-ASCII gloss
    splits = {
        "val": {"ids": [f"v{i}" for i in range(120)], "y_true": y[:120], "probs": p[:120]},
        "test": {"ids": [f"t{i}" for i in range(80)], "y_true": y[120:], "probs": p[120:]},
    }
    ts = ev.default_thresholds(0.05, 0.95, 0.05)
    d = tmp_path / "eval"
    report = ev.write_eval(d, splits, names, ts, {"checkpoint": "best.pt", "epoch": 3})
    for f in ["report.json", "predictions.npz", "per_class.csv", "confusion.csv", "thresholds.csv"]:
        assert (d / f).is_file(), f
    assert not [x for x in d.iterdir() if x.name.startswith(".")]  # no temp files left

    on_disk = _strict_json((d / "report.json").read_text())
    assert on_disk == report
    assert on_disk["task"] == "multiclass" and on_disk["num_classes"] == 12
    assert on_disk["class_names"] == names and on_disk["epoch"] == 3
    assert on_disk["val"]["num_samples"] == 120 and on_disk["test"]["num_samples"] == 80
    assert on_disk["val"]["accuracy"] == pytest.approx(accuracy_score(y[:120], p[:120].argmax(1)))
    assert set(on_disk["best_threshold"]) == {"val", "test"}
    assert on_disk["best_threshold"]["val"]["threshold"] in ts

    per_class = _read_csv(d / "per_class.csv")
    assert list(per_class[0]) == ["split", *ev.PER_CLASS_COLUMNS]
    assert len(per_class) == 2 * 12 and per_class[-1]["class"] == "hände"
    conf = _read_csv(d / "confusion.csv")
    assert list(conf[0]) == ["split", *ev.CONFUSION_COLUMNS]
    assert sum(int(r["count"]) for r in conf if r["split"] == "test") == 80
    sweep = _read_csv(d / "thresholds.csv")
    assert list(sweep[0]) == ["split", *ev.SWEEP_COLUMNS]
    assert len(sweep) == 2 * len(ts)

    ids, yt, probs, cn = ev.load_predictions(d, "test")
    assert ids == splits["test"]["ids"] and cn == names
    np.testing.assert_array_equal(yt, y[120:])
    np.testing.assert_allclose(probs, p[120:], rtol=1e-6, atol=1e-7)
    assert sorted(ev.prediction_splits(d)) == ["test", "val"]
    # the stored predictions reproduce thresholds.csv
    again = ev.threshold_sweep(yt, probs, ts)
    for row, csv_row in zip(again, [r for r in sweep if r["split"] == "test"], strict=True):
        assert row["accepted"] == int(csv_row["accepted"])
        assert row["recall"] == pytest.approx(float(csv_row["recall"]))
    with pytest.raises(ValueError, match="stored splits: val, test"):
        ev.load_predictions(d, "train")


def test_write_eval_binary_nulls_are_strict(tmp_path: Path) -> None:
    splits = {
        "val": {"ids": ["a", "b", "c", "d", "e"], "y_true": BIN_Y, "probs": BIN_P},
        "test": {"ids": ["x", "y"], "y_true": np.array([1, 1]), "probs": BIN_P[3:]},
    }
    report = ev.write_eval(tmp_path, splits, ["no", "yes"], [0.5, 0.99], {})
    text = (tmp_path / "report.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    data = _strict_json(text)
    assert data["task"] == "binary"
    assert data["test"]["roc_auc"] is None and data["val"]["roc_auc"] == pytest.approx(5 / 6)
    assert report["best_threshold"]["val"]["threshold"] == 0.5
    # a class without samples in test: empty accuracy cell, not NaN
    rows = [r for r in _read_csv(tmp_path / "per_class.csv") if r["split"] == "test"]
    assert rows[0]["support"] == "0" and rows[0]["accuracy"] == ""


def test_write_eval_rejects_mismatched_ids(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ids"):
        ev.write_eval(
            tmp_path, {"val": {"ids": ["a"], "y_true": BIN_Y, "probs": BIN_P}}, ["n", "y"], [0.5]
        )


def test_multiclass_empty_acceptance_writes_empty_cells(tmp_path: Path) -> None:
    splits = {"val": {"ids": list("abcdef"), "y_true": HAND_Y, "probs": HAND_P}}
    ev.write_eval(tmp_path, splits, HAND_NAMES, [0.5, 0.95], {})
    rows = _read_csv(tmp_path / "thresholds.csv")
    assert rows[1]["accepted"] == "0" and rows[1]["accuracy"] == "" and rows[1]["f1"] == "0.0"


def test_evaluate_does_not_import_torch() -> None:
    code = "import sys, engine.evaluate; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert out.stdout.strip() == "False"


def test_no_nan_anywhere_in_summary(random_case) -> None:
    y, p, names = random_case
    s = ev.summarize(y, p, names)
    assert all(v is None or not (isinstance(v, float) and math.isnan(v)) for v in s.values())


def test_read_per_class(tmp_path: Path) -> None:
    splits = {
        "val": {"ids": list("abcdef"), "y_true": HAND_Y, "probs": HAND_P},
        "test": {"ids": ["x", "y"], "y_true": np.array([0, 2]), "probs": HAND_P[[0, 5]]},
    }
    ev.write_eval(tmp_path, splits, HAND_NAMES, [0.5], {})
    val = ev.read_per_class(tmp_path, "val")
    assert val == ev.per_class_table(HAND_Y, HAND_P, HAND_NAMES)
    test = ev.read_per_class(tmp_path, "test")
    assert [r["class"] for r in test] == ["a", "c"]  # "b" has no test samples
    assert all(isinstance(r["accuracy"], float) for r in test)  # sortable
    every = ev.read_per_class(tmp_path, "test", include_absent=True)
    assert len(every) == 3 and every[1]["accuracy"] is None and every[1]["support"] == 0
    assert ev.read_per_class(tmp_path, "train") == []
    assert ev.read_per_class(tmp_path / "missing", "val") == []


def test_damaged_predictions_is_value_error(tmp_path: Path) -> None:
    (tmp_path / "predictions.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="cannot read"):
        ev.load_predictions(tmp_path, "val")
    with pytest.raises(FileNotFoundError):
        ev.load_predictions(tmp_path / "nowhere", "val")
