"""MiniRocket + a linear classifier (``model.name: minirocket``): a classical baseline.

The transform is aeon's MiniRocket (Dempster et al., 2021: fixed length-9 kernels over
dilations, biases from training quantiles, PPV features), the classifier is aeon's
MiniRocketClassifier recipe: ``StandardScaler(with_mean=False)`` then
``RidgeClassifierCV(alphas=logspace(-3, 3, 10))`` (``model.classifier: ridge``), or a
logistic regression (``model.classifier: logistic``). Needs ``aeon``
(``pip install 'slr-tui[classical]'``).

The trainer fits it in one pass (:attr:`is_classical`): :meth:`MiniRocket.fit_batches`
gathers the training batches (the padded ``x`` (B, T, F), ``mask``, ``label``), sorts them
by sample index (so the fit does not depend on the loader's shuffle) and fits. Recordings
of unequal length: each is zero-padded at the end to ``model.max_length`` frames (null:
the longest training recording, at least 9), and one longer than that is transformed at
its own length, so a recording's features never depend on the others in its batch.

Outputs are logits whose softmax is a probability. For ridge they are the decision
values (one-vs-rest scores near +-1) times a temperature fitted on the leave-one-out
decision values that RidgeClassifierCV computes anyway (the temperature minimising the
LOO cross-entropy), so the probabilities are calibrated on held-out predictions rather
than on the (interpolated) training fit; for logistic regression they are its own logits.
A binary task's single decision value ``d`` becomes the logits ``(0, d)``. A class with no
training sample gets a logit of -1e4.

Everything fitted lives in buffers (the MiniRocket parameters, the scaler's scale, the
classifier's coefficients and intercepts, the temperature, the padded length), so
``load_state_dict(torch.load(path, weights_only=True))`` restores the same predictor
into a freshly built, unfitted module: no pickled sklearn objects.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from engine.models.base import SLRModel
from engine.models.common import batch_mask, require_input_dim

ABSENT_LOGIT = -1e4
INSTALL_HINT = "model 'minirocket' needs aeon; install it with: pip install 'slr-tui[classical]'"

# the fitted buffers, with their dtypes (their shapes are known only after fitting)
FITTED = {
    "n_channels_per_combination": torch.int32,
    "channel_indices": torch.int32,
    "dilations": torch.int32,
    "n_features_per_dilation": torch.int32,
    "biases": torch.float32,
    "scale": torch.float64,
    "coef": torch.float64,
    "intercept": torch.float64,
    "classes": torch.int64,
}


def _aeon_minirocket():
    try:
        from aeon.transformations.collection.convolution_based import MiniRocket
    except ImportError:
        from engine.models import ModelError

        raise ModelError(INSTALL_HINT) from None
    return MiniRocket


def recordings_of(batch: dict) -> list[np.ndarray]:
    """The real frames of each recording of a batch, as (T_i, F) float32 arrays."""
    x = batch["x"].detach().float().cpu().numpy()
    lengths = batch_mask(batch).long().sum(1).cpu().numpy()
    return [x[i, : int(n)] for i, n in enumerate(lengths)]


def fit_temperature(decision: np.ndarray, y: np.ndarray) -> float:
    """The temperature t minimising the cross-entropy of softmax(t * decision) (N, K)."""
    from scipy.optimize import minimize_scalar

    d = decision - decision.max(1, keepdims=True)
    rows = np.arange(len(y))

    def nll(log_t: float) -> float:
        z = np.exp(log_t) * d
        z = z - z.max(1, keepdims=True)
        return float(-(z[rows, y] - np.log(np.exp(z).sum(1))).mean())

    res = minimize_scalar(nll, bounds=(np.log(1e-2), np.log(1e4)), method="bounded")
    return float(np.exp(res.x))


def ridge_loo_decision(xs: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """Leave-one-out decision values (N, K; K = 1 for two classes) of a ridge classifier
    with an unpenalised intercept on the +-1 coded labels, in closed form as
    RidgeClassifierCV's GCV computes them: with G = K + alpha I over the Gram matrix of the
    centred features (plus the intercept direction, left unpenalised), the LOO residual of
    sample i is (G^-1 y)_i / (G^-1)_ii."""
    from sklearn.preprocessing import LabelBinarizer

    targets = LabelBinarizer(neg_label=-1, pos_label=1).fit_transform(y).astype(np.float64)
    n = len(y)
    xc = xs.astype(np.float64) - xs.mean(0, dtype=np.float64)
    ones = np.ones(n) / np.sqrt(n)
    gram = xc @ xc.T + np.outer(np.ones(n), np.ones(n))
    s, q = np.linalg.eigh(gram)
    w = 1.0 / (s + alpha)
    w[int(np.argmax(np.abs(q.T @ ones)))] = 0.0  # the intercept is not penalised
    c = q @ (w[:, None] * (q.T @ targets))
    g_inv_diag = (q**2) @ w
    return targets - c / g_inv_diag[:, None]


class MiniRocket(SLRModel):
    """MiniRocket features + ridge (or logistic) classifier, fitted by :meth:`fit_batches`."""

    is_classical = True

    def __init__(
        self,
        input_dim: int,
        num_classes: int,
        *,
        num_kernels: int = 10_000,
        max_dilations_per_kernel: int = 32,
        classifier: str = "ridge",
        max_length: int | None = None,
        seed: int = 0,
    ):
        super().__init__()
        if classifier not in ("ridge", "logistic"):
            raise ValueError(f"unknown classifier '{classifier}'")
        self.input_dim = int(input_dim)
        self.num_classes = int(num_classes)
        self.num_kernels = int(num_kernels)
        self.max_dilations_per_kernel = int(max_dilations_per_kernel)
        self.classifier = classifier
        self.max_length = max_length
        self.seed = int(seed)
        for name, dtype in FITTED.items():
            self.register_buffer(name, torch.zeros(0, dtype=dtype))
        self.register_buffer("length", torch.zeros((), dtype=torch.int64))
        self.register_buffer("temperature", torch.ones((), dtype=torch.float64))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    # ---- state --------------------------------------------------------------------------

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # the fitted buffers take the saved shapes, so an unfitted module loads a fitted one
        for name in FITTED:
            saved = state_dict.get(prefix + name)
            if isinstance(saved, torch.Tensor):
                setattr(self, name, torch.empty_like(saved, device=getattr(self, name).device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _set(self, name: str, value: np.ndarray) -> None:
        dtype = FITTED[name]
        device = getattr(self, name).device
        setattr(self, name, torch.as_tensor(np.ascontiguousarray(value)).to(device, dtype))

    def _transformer(self):
        trf = _aeon_minirocket()(
            n_kernels=self.num_kernels,
            max_dilations_per_kernel=self.max_dilations_per_kernel,
            n_jobs=1,
            random_state=self.seed,
        )
        trf.parameters = tuple(
            getattr(self, n).cpu().numpy()
            for n in (
                "n_channels_per_combination",
                "channel_indices",
                "dilations",
                "n_features_per_dilation",
                "biases",
            )
        )
        trf._n_jobs = 1
        return trf

    # ---- features -----------------------------------------------------------------------

    def padded(self, recordings: list[np.ndarray], length: int) -> np.ndarray:
        """(N, F, length) float32: each (T_i, F) recording cut or zero-padded at the end."""
        out = np.zeros((len(recordings), self.input_dim, length), dtype=np.float32)
        for i, r in enumerate(recordings):
            n = min(len(r), length)
            out[i, :, :n] = r[:n].T
        return out

    def transform(self, recordings: list[np.ndarray]) -> np.ndarray:
        """(N, num_features) MiniRocket features, each recording on its own."""
        trf = self._transformer()
        length = int(self.length)
        n_features = 84 * int(self.n_features_per_dilation.sum())
        out = np.zeros((len(recordings), n_features), dtype=np.float32)
        short = [i for i, r in enumerate(recordings) if len(r) <= length]
        if short:
            out[short] = trf._transform(self.padded([recordings[i] for i in short], length))
        for i, r in enumerate(recordings):
            if len(r) > length:
                out[i] = trf._transform(np.ascontiguousarray(r.T[None], dtype=np.float32))[0]
        return out

    # ---- fitting ------------------------------------------------------------------------

    def fit_batches(self, batches: Iterable[dict[str, Any]]) -> None:
        """Fit MiniRocket and the classifier on every recording of ``batches``."""
        recs: list[np.ndarray] = []
        labels: list[int] = []
        order: list[int] = []
        for batch in batches:
            recs += recordings_of(batch)
            labels += batch["label"].cpu().tolist()
            if "index" in batch:
                order += torch.as_tensor(batch["index"]).cpu().tolist()
        if not recs:
            raise ValueError("minirocket: no training recordings to fit")
        if len(order) == len(recs):  # dataset order, whatever the loader's shuffle
            perm = np.argsort(np.asarray(order), kind="stable")
            recs = [recs[i] for i in perm]
            labels = [labels[i] for i in perm]
        y = np.asarray(labels, dtype=np.int64)
        present = np.unique(y)
        if len(present) < 2:
            raise ValueError("minirocket: the training recordings hold fewer than two classes")

        longest = max(len(r) for r in recs)
        length = max(int(self.max_length or longest), 9)
        fit_x = self.padded(recs, length)
        mr = _aeon_minirocket()(
            n_kernels=self.num_kernels,
            max_dilations_per_kernel=self.max_dilations_per_kernel,
            n_jobs=1,
            random_state=self.seed,
        )
        mr.fit(fit_x)
        names = ("n_channels_per_combination", "channel_indices", "dilations")
        for name, value in zip(
            (*names, "n_features_per_dilation", "biases"), mr.parameters, strict=True
        ):
            self._set(name, value)
        self.length.fill_(length)
        feats = self.transform(recs)

        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler(with_mean=False).fit(feats)
        xs = scaler.transform(feats)
        temperature = 1.0
        if self.classifier == "ridge":
            from sklearn.linear_model import RidgeClassifierCV

            clf = RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)).fit(xs, y)
            loo = ridge_loo_decision(xs, y, float(clf.alpha_))
            if loo.shape[1] == 1:
                loo = np.concatenate([np.zeros_like(loo), loo], axis=1)
            temperature = fit_temperature(loo, np.searchsorted(clf.classes_, y))
        else:
            from sklearn.linear_model import LogisticRegression

            clf = LogisticRegression(max_iter=1000).fit(xs, y)
        self._set("scale", np.asarray(scaler.scale_, dtype=np.float64))
        self._set("coef", np.atleast_2d(clf.coef_))
        self._set("intercept", np.atleast_1d(clf.intercept_))
        self._set("classes", np.asarray(clf.classes_, dtype=np.int64))
        self.temperature.fill_(temperature)
        self.fitted.fill_(True)

    # ---- prediction ---------------------------------------------------------------------

    def decision(self, feats: np.ndarray) -> np.ndarray:
        """(N, num_classes) logits for (N, num_features) MiniRocket features."""
        coef = self.coef.cpu().numpy()
        xs = feats.astype(np.float64) / self.scale.cpu().numpy()
        d = xs @ coef.T + self.intercept.cpu().numpy()
        if coef.shape[0] == 1:  # binary: one decision value for the second class
            d = np.concatenate([np.zeros_like(d), d], axis=1)
        d = d * float(self.temperature)
        out = np.full((len(feats), self.num_classes), ABSENT_LOGIT, dtype=np.float64)
        out[:, self.classes.cpu().numpy()] = d
        return out

    def forward(self, batch: dict) -> torch.Tensor:
        if not bool(self.fitted):
            raise RuntimeError("minirocket is not fitted: call fit_batches first")
        logits = self.decision(self.transform(recordings_of(batch)))
        return torch.as_tensor(logits, dtype=torch.float32, device=batch["x"].device)


def build(cfg, bundle) -> SLRModel:
    _aeon_minirocket()  # one clear line now if aeon is missing, not after loading data
    m = cfg.model
    return MiniRocket(
        require_input_dim(bundle, "minirocket"),
        bundle.num_classes,
        num_kernels=m.num_kernels,
        max_dilations_per_kernel=m.max_dilations_per_kernel,
        classifier=m.classifier,
        max_length=m.max_length,
        seed=cfg.training.seed,
    )
