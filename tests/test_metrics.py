"""engine.metrics against sklearn.metrics, whose definitions it computes: random splits,
absent classes, classes never predicted, ties in scores, one sample, coarse probabilities."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from engine import evaluate, metrics


def _cases():
    """(y, probs) pairs: many shapes of trouble."""
    rng = np.random.default_rng(0)
    for seed in range(40):
        r = np.random.default_rng(seed)
        c = int(r.choice([2, 3, 5, 12]))
        n = int(r.choice([1, 2, 7, 50, 300]))
        y = r.integers(0, c, n)
        if seed % 5 == 0 and c > 2:
            y = y % (c - 1)  # the last class never occurs
        logits = r.normal(0, 1 + seed % 3, (n, c))
        if seed % 4 == 0:
            logits = np.round(logits)  # many exact ties
        if seed % 7 == 0:
            logits[:, 0] += 5  # one class predicted nearly always
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        if seed % 6 == 0:
            p = np.round(p, 1) + 1e-3  # coarse scores: ties in the binary score
            p /= p.sum(1, keepdims=True)
        yield y, p
    yield np.array([0, 1]), np.array([[0.5, 0.5], [0.5, 0.5]])  # all tied
    yield rng.integers(0, 2, 100), np.full((100, 2), 0.5)


CASES = list(_cases())


@pytest.mark.parametrize("case", range(len(CASES)))
def test_numpy_metrics_equal_sklearn(case):
    y, p = CASES[case]
    c = p.shape[1]
    pred = p.argmax(1)
    labels = np.arange(c)
    np.testing.assert_array_equal(
        metrics.confusion(y, pred, c), skm.confusion_matrix(y, pred, labels=labels)
    )
    prec, rec, f1, sup = metrics.per_class(y, pred, c)
    sk = skm.precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    for ours, theirs in zip((prec, rec, f1, sup), sk, strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-12)
    assert metrics.accuracy(y, pred) == pytest.approx(skm.accuracy_score(y, pred))
    for k in (1, 2, 5):
        score = p[:, 1] if c == 2 else p
        if k < c:
            want = skm.top_k_accuracy_score(y, score, k=k, labels=labels)
            assert metrics.top_k_accuracy(y, p, k) == pytest.approx(want), k
    q = np.clip(p, 1e-7, 1)
    q /= q.sum(1, keepdims=True)
    assert metrics.mean_nll(y, q) == pytest.approx(skm.log_loss(y, q, labels=labels))
    if c == 2:
        bp, br, bf = metrics.binary_prf(y, pred)
        assert bp == pytest.approx(skm.precision_score(y, pred, zero_division=0))
        assert br == pytest.approx(skm.recall_score(y, pred, zero_division=0))
        assert bf == pytest.approx(skm.f1_score(y, pred, zero_division=0))
        if len(np.unique(y)) == 2:
            assert metrics.roc_auc(y, p[:, 1]) == pytest.approx(skm.roc_auc_score(y, p[:, 1]))
            assert metrics.average_precision(y, p[:, 1]) == pytest.approx(
                skm.average_precision_score(y, p[:, 1])
            )


@pytest.mark.parametrize("case", range(0, len(CASES), 3))
def test_the_split_summary_keeps_sklearns_figures(case):
    """evaluate.summarize's figures, as sklearn gave them before engine.metrics."""
    y, p = CASES[case]
    c = p.shape[1]
    pred, labels, present = p.argmax(1), np.arange(c), np.unique(y)
    out = evaluate.summarize(y, p, [f"c{i}" for i in range(c)])
    assert out["per_class_accuracy"] == pytest.approx(
        skm.recall_score(y, pred, labels=present, average="macro", zero_division=0)
    )
    assert out["macro_f1"] == pytest.approx(
        skm.f1_score(y, pred, labels=labels, average="macro", zero_division=0)
    )
    assert out["weighted_f1"] == pytest.approx(
        skm.f1_score(y, pred, labels=labels, average="weighted", zero_division=0)
    )
    assert out["macro_precision"] == pytest.approx(
        skm.precision_score(y, pred, labels=labels, average="macro", zero_division=0)
    )


def test_evaluate_imports_no_sklearn():
    import subprocess
    import sys

    code = "import sys, engine.evaluate, engine.train; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
