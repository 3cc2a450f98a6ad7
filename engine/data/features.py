"""The ``features`` source: per-sample arrays and a labels CSV (error-recognition notes).

Layout::

    root/labels.csv                     id,label and optionally split (train/val/test), group
    root/<id>.npy | root/<id>.npz       one array per sample (also searched under
    root/features/<id>.npy | .npz       root/features/); an npz gives its 'features' or
                                        'x' array, else its first one

An array is a (T, D) sequence or a (D,) vector; a vector becomes x of shape (1, D), so
pad_collate and the sequence models take both (the MLP pools). Every sample needs the same
D. Labels may be binary or multi-class; with exactly two labels the positive (error) class
is index 1 (``data.positive_label``, else a 1/true/error-like name, else sorted order).

Without a ``split`` column the samples are split with a seed: by ``group`` when there is
one (a group never spans two splits; groups are stratified by their most frequent label
where a label has enough groups), else stratified by label. Missing or unreadable arrays
are counted and skipped. With ``data.standardize`` each feature is z-scored with the
training split's mean and std (kept in ``info`` for prediction, see :func:`array_for_file`).
"""

from __future__ import annotations

import csv
import logging
import zipfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from engine.config import TableOptions
from engine.data.dataset import SampleDataset
from engine.data.landmarks import npz_shapes
from engine.data.sequences_csv import fit_standardizer, standardize
from engine.data.splits import SPLITS, check_fractions, class_order, split_groups
from engine.errors import DataError

if TYPE_CHECKING:
    from engine.config import RunConfig
    from engine.data.base import DataBundle

log = logging.getLogger(__name__)


class FeaturesData(TableOptions):
    """``data.*`` of the ``features`` source: the tabular options (splits, scaling)."""

    source: Literal["features"] = "features"
    cache_mb: int = Field(
        1024,
        ge=0,
        description="MiB of read arrays each split keeps in memory, per process: a file is "
        "read once per run, standardisation and noise run on the cached array (0: read "
        "every time).",
    )


LABELS_FILE = "labels.csv"
ARRAY_KEYS = ("features", "x")
_READ_ERRORS = (OSError, ValueError, KeyError, EOFError, IndexError, zipfile.BadZipFile)


# --------------------------------------------------------------------------- arrays


def find_array(root: Path, sid: str) -> Path | None:
    """Where the array of sample ``sid`` lies (root/ first, then root/features/)."""
    for base in (root, root / "features"):
        for ext in (".npy", ".npz"):
            p = base / f"{sid}{ext}"
            if p.is_file():
                return p
    return None


def npz_key(names: list[str]) -> str:
    for key in ARRAY_KEYS:
        if key in names:
            return key
    if not names:
        raise ValueError("the npz holds no arrays")
    return names[0]


def array_shape(path: Path) -> tuple[int, ...]:
    """The sample array's shape, read from the file header (cheap); raises if unreadable."""
    if path.suffix == ".npz":
        shapes = npz_shapes(path)
        return tuple(shapes[npz_key(list(shapes))])
    return tuple(np.load(path, mmap_mode="r").shape)


def load_array(path: str | Path) -> np.ndarray:
    """A sample as (T, D) float32 ((D,) vectors become (1, D)); raises if unreadable."""
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path) as z:
            a = np.asarray(z[npz_key(list(z.files))], dtype=np.float32)
    else:
        a = np.asarray(np.load(path), dtype=np.float32)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or 0 in a.shape:
        raise ValueError(f"shape {a.shape}; expected (T, D) or (D,)")
    return a


def array_for_file(path: str | Path, info: dict[str, Any]) -> np.ndarray:
    """A new sample read the way the run was trained (for ``slr predict``): (T, D) float32,
    standardised with the saved ``feature_mean``/``feature_std``."""
    path = Path(path)
    try:
        x = load_array(path)
    except _READ_ERRORS as exc:
        raise DataError(f"cannot read {path} ({exc}); expected a (T, D) or (D,) array") from None
    dim = info.get("feature_dim")
    if dim is not None and x.shape[1] != dim:
        raise DataError(f"{path} has {x.shape[1]} features; the run was trained on {dim}")
    return standardize(x, info.get("feature_mean"), info.get("feature_std"))


# --------------------------------------------------------------------------- labels.csv


def read_labels(path: Path) -> list[dict[str, str]]:
    """Rows of ``labels.csv`` as ``{id, label, split?, group?}`` (DataError on any problem).
    A ``split`` or ``group`` column with no values counts as absent."""
    if not path.is_file():
        raise DataError(
            f"{path} not found; a features folder holds labels.csv (id,label[,split][,group]) "
            "and one .npy/.npz per id"
        )
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        cols = [str(c).strip() for c in reader.fieldnames or []]
        missing = [c for c in ("id", "label") if c not in cols]
        if missing:
            raise DataError(
                f"{path}: missing column(s) {', '.join(missing)} (has: {', '.join(cols) or 'none'}); "
                "expected id,label[,split][,group]"
            )
        rows = []
        for line, raw in enumerate(reader, 2):
            row = {str(k).strip(): (v or "").strip() for k, v in raw.items() if k is not None}
            if not row["id"]:
                raise DataError(f"{path} line {line}: empty id")
            if not row["label"]:
                raise DataError(f"{path} line {line}: sample '{row['id']}' has no label")
            row["line"] = str(line)
            rows.append(row)
    if not rows:
        raise DataError(f"{path} lists no samples")
    dupes = [k for k, n in Counter(r["id"] for r in rows).items() if n > 1]
    if dupes:
        raise DataError(f"{path}: id '{dupes[0]}' appears more than once; ids must be unique")
    for col in ("split", "group"):
        if not any(r.get(col) for r in rows):
            for r in rows:
                r.pop(col, None)
    if "split" in rows[0]:
        for r in rows:
            r["split"] = r["split"].lower()
            if r["split"] not in SPLITS:
                raise DataError(
                    f"{path} line {r['line']}: split '{r['split']}' is not one of train, val, test"
                )
    return rows


# --------------------------------------------------------------------------- dataset & bundle


class FeatureDataset(SampleDataset):
    """Per-sample arrays read lazily from disk and standardised."""

    def __init__(
        self,
        paths: list[Path],
        ids: list[str],
        labels: list[int],
        *,
        dim: int,
        mean: list[float] | None,
        std: list[float] | None,
        noise_std: float,
        augment: bool,
        seed: int,
        cache_bytes: int = 0,
    ):
        super().__init__(ids, labels, augment=augment, seed=seed)
        self.paths = list(paths)
        self.cache_bytes = cache_bytes
        self.cached_bytes = 0
        self._cache: dict[int, np.ndarray] = {}
        self.dim = dim
        self.mean = mean
        self.std = std
        self.noise_std = float(noise_std)
        self.failures = 0

    def _array(self, index: int) -> np.ndarray:
        """The sample's array as read from disk, kept in memory while the budget lasts
        (standardising copies it, so the cached array is never changed)."""
        a = self._cache.get(index)
        if a is None:
            a = load_array(self.paths[index])
            if self.cached_bytes + a.nbytes <= self.cache_bytes:
                self._cache[index] = a
                self.cached_bytes += a.nbytes
        return a

    def load(self, index: int, rng: np.random.Generator | None) -> dict[str, Any]:
        try:
            x = standardize(self._array(index), self.mean, self.std)
        except _READ_ERRORS as exc:
            # checked when the bundle was built; a file that broke since gives a zero frame
            self.failures += 1
            log.warning("cannot read %s (%s); using a zero frame", self.paths[index], exc)
            x = np.zeros((1, self.dim), dtype=np.float32)
        if rng is not None and self.noise_std > 0:
            x += rng.normal(0.0, self.noise_std, x.shape).astype(np.float32)
        return {"x": x}


def _split(
    rows: list[dict[str, str]], label_of: dict[str, str], cfg: RunConfig, root: Path
) -> tuple[dict[str, str], str]:
    """``{id: split}`` and how it was made (labels.csv, group, stratified)."""
    d = cfg.data
    if "split" in rows[0]:
        return {r["id"]: r["split"] for r in rows}, LABELS_FILE
    hint = f"add a split column to {root / LABELS_FILE}"
    if "group" in rows[0]:
        group_of = {r["id"]: r.get("group") or f"id:{r['id']}" for r in rows}
        members: dict[str, list[str]] = {}
        for r in rows:
            members.setdefault(group_of[r["id"]], []).append(label_of[r["id"]])
        strata = {g: Counter(labs).most_common(1)[0][0] for g, labs in members.items()}
        by_group = split_groups(
            strata,
            val_fraction=d.split_val_fraction,
            test_fraction=d.split_test_fraction,
            seed=d.seed,
            strict=False,
            what="groups",
            where=str(root),
            hint=hint,
        )
        return {r["id"]: by_group[group_of[r["id"]]] for r in rows}, "group"
    by_id = split_groups(
        {r["id"]: label_of[r["id"]] for r in rows},
        val_fraction=d.split_val_fraction,
        test_fraction=d.split_test_fraction,
        seed=d.seed,
        strict=True,
        what="samples",
        where=str(root),
        hint=hint,
    )
    return by_id, "stratified"


def build_from_root(root: str | Path, cfg: RunConfig) -> DataBundle:
    """Read a features folder; missing or unreadable arrays are counted and skipped."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"features folder {root} does not exist; set data.root")
    d = cfg.data
    check_fractions(d.split_val_fraction, d.split_test_fraction)
    rows = read_labels(root / LABELS_FILE)

    counts = {"missing": 0, "unreadable": 0}
    skipped: list[str] = []
    found: list[tuple[dict[str, str], Path, tuple[int, ...]]] = []
    for r in rows:
        path = find_array(root, r["id"])
        if path is None:
            counts["missing"] += 1
            skipped.append(f"{r['id']}: missing")
            continue
        try:
            shape = array_shape(path)
        except _READ_ERRORS as exc:
            counts["unreadable"] += 1
            skipped.append(f"{r['id']}: unreadable ({exc})")
            continue
        if len(shape) not in (1, 2) or 0 in shape:
            counts["unreadable"] += 1
            skipped.append(f"{r['id']}: shape {shape}")
            continue
        found.append((r, path, shape))
    if not found:
        raise DataError(
            f"{root}: none of the {len(rows)} arrays in {LABELS_FILE} could be read "
            f"({counts['missing']} missing); put <id>.npy or <id>.npz in {root} or {root / 'features'}"
        )
    dim = Counter(s[-1] for _, _, s in found).most_common(1)[0][0]
    kept: list[tuple[dict[str, str], Path, tuple[int, ...]]] = []
    for r, path, shape in found:
        if shape[-1] != dim:
            counts["unreadable"] += 1
            skipped.append(f"{r['id']}: {shape[-1]} features, most samples have {dim}")
        else:
            kept.append((r, path, shape))

    rows_kept = [r for r, _, _ in kept]
    label_of = {r["id"]: r["label"] for r in rows_kept}
    path_of = {r["id"]: p for r, p, _ in kept}
    split_of, split_source = _split(rows_kept, label_of, cfg, root)
    classes = class_order(label_of.values(), d.positive_label, where=str(root / LABELS_FILE))
    index = {n: i for i, n in enumerate(classes)}
    ids = {s: [r["id"] for r in rows_kept if split_of[r["id"]] == s] for s in SPLITS}

    mean = std = None
    if d.standardize:
        arrays = []
        for sid in list(ids["train"]):
            try:
                arrays.append(load_array(path_of[sid]))
            except _READ_ERRORS as exc:
                counts["unreadable"] += 1
                skipped.append(f"{sid}: unreadable ({exc})")
                ids["train"].remove(sid)
        if arrays:
            mean, std = fit_standardizer(arrays, dim)
    for split in ("train", "val"):
        if not ids[split]:
            raise DataError(
                f"{root}: no readable {split} samples (skipped {sum(counts.values())}); "
                f"check the split column of {LABELS_FILE} or add samples"
            )

    def dataset(split: str, augment: bool) -> FeatureDataset:
        return FeatureDataset(
            [path_of[i] for i in ids[split]],
            ids[split],
            [index[label_of[i]] for i in ids[split]],
            dim=dim,
            mean=mean,
            std=std,
            noise_std=d.noise_std,
            augment=augment,
            seed=d.seed,
            cache_bytes=d.cache_mb << 20,
        )

    datasets = {
        "train": dataset("train", d.augment),
        "val": dataset("val", False),
        "test": dataset("test", False) if ids["test"] else None,
    }
    info: dict[str, Any] = {
        "root": str(root),
        "label_encoder": {"classes": classes},
        "feature_dim": dim,
        "standardize": d.standardize,
        "feature_mean": mean,
        "feature_std": std,
        "split_source": split_source,
        "listed": len(rows),
        **counts,
        "skipped": skipped[:20],
        "per_split": {s: len(ids[s]) for s in SPLITS},
        "kinds": {
            "vectors": sum(1 for _, _, s in kept if len(s) == 1),
            "sequences": sum(1 for _, _, s in kept if len(s) == 2),
        },
    }
    if split_source == "group":
        group_of = {r["id"]: r.get("group") or f"id:{r['id']}" for r in rows_kept}
        info["groups_per_split"] = {s: len({group_of[i] for i in ids[s]}) for s in SPLITS}
    if counts["missing"] or counts["unreadable"]:
        log.warning("%s: skipped %d missing and %d unreadable arrays", root, *counts.values())
    from engine.data.base import DataBundle

    return DataBundle(
        train=datasets["train"],
        val=datasets["val"],
        test=datasets["test"],
        class_names=classes,
        input_dim=dim,
        info=info,
    )


def build(cfg: RunConfig) -> DataBundle:
    """The ``features`` source: ``data.root`` holds labels.csv and one array per sample."""
    if not cfg.data.root:
        raise DataError(
            "data.root is not set; point it at a folder with labels.csv and <id>.npy/.npz arrays"
        )
    return build_from_root(cfg.data.root, cfg)
