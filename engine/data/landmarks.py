"""The landmark source: a folder of MediaPipe-Holistic-shaped landmark sequences, in the
format :mod:`engine.data.landmark_cache` defines (written by ``slr extract`` and the
synthetic source).

Each item is ``{"x": (T, D) float32}``: for every part in ``data.parts`` the x, y (and z
with ``data.use_z``) of its points, flattened per frame, then one presence flag per part
(1 detected, 0 missing); missing points are 0. With ``data.normalize`` coordinates are
centred on the shoulders' midpoint and divided by the shoulder width (medians over the
frames where both shoulders are present).
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from engine.config import LandmarkOptions
from engine.data.dataset import SampleDataset
from engine.data.landmark_cache import (  # noqa: F401 - Manifest, read_manifest: this source's API
    POINTS,
    SPLITS,
    Manifest,
    load_npz,
    npz_path,
    npz_shapes,
    read_manifest,
)
from engine.errors import DataError

if TYPE_CHECKING:
    from engine.config import RunConfig
    from engine.data.base import DataBundle

log = logging.getLogger(__name__)


class LandmarksData(LandmarkOptions):
    """``data.*`` of the ``landmarks`` source: a landmark cache and the landmark options."""

    source: Literal["landmarks"] = "landmarks"


# MediaPipe pose: left/right pairs swapped by a mirror.
_PAIRS = [(1, 4), (2, 5), (3, 6), (7, 8), (9, 10)] + [(i, i + 1) for i in range(11, 33, 2)]
POSE_MIRROR = np.arange(33)
for _a, _b in _PAIRS:
    POSE_MIRROR[_a], POSE_MIRROR[_b] = _b, _a


@dataclass(frozen=True)
class FeatureSpec:
    """How an npz becomes a (T, D) feature array."""

    parts: tuple[str, ...]
    points: tuple[int, ...]
    coords: int  # 2 (x, y) or 3 (x, y, z)
    max_frames: int
    normalize: bool
    noise_std: float = 0.0
    speed_range: tuple[float, float] = (1.0, 1.0)
    rotate_deg: float = 0.0
    scale_range: tuple[float, float] = (1.0, 1.0)
    mirror: bool = False

    @property
    def dim(self) -> int:
        return sum(p * self.coords for p in self.points) + len(self.parts)


# --------------------------------------------------------------------------- checks


def _check(shapes: dict[str, tuple[int, ...]], parts: tuple[str, ...], coords: int) -> str | None:
    """Why these arrays cannot be used (None when they can)."""
    frames = set()
    for part in parts:
        shape = shapes.get(part)
        if shape is None:
            return f"no '{part}' array"
        want = POINTS[part]
        if len(shape) != 3 or (want is not None and shape[1] != want) or shape[2] < coords:
            return f"'{part}' has shape {shape}"
        frames.add(shape[0])
    if len(frames) > 1 or 0 in frames:
        return f"frame counts {sorted(frames)}"
    return None


# --------------------------------------------------------------------------- transforms


def centre_scale(arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, float]:
    """Shoulders' midpoint and shoulder width (medians over frames with both shoulders).

    Without shoulders: the median of all points and scale 1."""
    pose = arrays.get("pose")
    if pose is not None:
        sh = pose[:, [11, 12], :2]
        ok = np.isfinite(sh).all(axis=(1, 2))
        if ok.any():
            width = float(np.median(np.linalg.norm(sh[ok, 0] - sh[ok, 1], axis=-1)))
            if width > 1e-6:
                return np.median(sh[ok].mean(axis=1), axis=0), width
    pts = np.concatenate([a[..., :2].reshape(-1, 2) for a in arrays.values()])
    pts = pts[np.isfinite(pts).all(axis=1)]
    return (np.median(pts, axis=0) if len(pts) else np.zeros(2)), 1.0


def affine(arrays: dict[str, np.ndarray], centre: np.ndarray, angle: float, scale: float) -> None:
    """Rotate x, y by ``angle`` (radians) about ``centre`` and scale x, y, z, in place."""
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]], dtype=np.float32) * scale
    for a in arrays.values():
        a[..., :2] = (a[..., :2] - centre) @ rot.T + centre
        a[..., 2:] *= scale


def mirror(arrays: dict[str, np.ndarray], centre_x: float) -> dict[str, np.ndarray]:
    """Flip x about ``centre_x`` and swap left and right (hands and pose points)."""
    out = {}
    for part, a in arrays.items():
        a = a.copy()
        a[..., 0] = 2 * centre_x - a[..., 0]
        if part == "pose":
            a = a[:, POSE_MIRROR]
        out[part] = a
    left, right = out.pop("left_hand", None), out.pop("right_hand", None)
    if right is not None:
        out["left_hand"] = right
    if left is not None:
        out["right_hand"] = left
    return out


def resample(arrays: dict[str, np.ndarray], frames: int) -> dict[str, np.ndarray]:
    """Uniform temporal resampling (nearest frame) to ``frames`` frames."""
    t = len(next(iter(arrays.values())))
    if frames == t:
        return arrays
    idx = np.round(np.linspace(0, t - 1, max(frames, 1))).astype(np.int64)
    return {k: v[idx] for k, v in arrays.items()}


def features(
    arrays: dict[str, np.ndarray], spec: FeatureSpec, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Landmark arrays (NaN where missing) -> (T, D) float32 features; ``rng`` augments."""
    arrays = {k: v[..., :3].astype(np.float32) for k, v in arrays.items()}  # drop visibility
    centre, width = centre_scale(arrays)
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
            arrays = mirror(arrays, float(centre[0]))
        affine(arrays, centre.astype(np.float32), angle, scale)
        if spec.noise_std > 0:
            for a in arrays.values():
                a += rng.normal(0, spec.noise_std, a.shape).astype(np.float32)
        t = len(next(iter(arrays.values())))
        arrays = resample(arrays, max(1, int(round(t / max(speed, 1e-3)))))
    if len(next(iter(arrays.values()))) > spec.max_frames:
        arrays = resample(arrays, spec.max_frames)
    t = len(next(iter(arrays.values())))
    coords, present = [], []
    for part, points in zip(spec.parts, spec.points, strict=True):
        a = arrays.get(part, np.full((t, points, 3), np.nan, np.float32))[..., : spec.coords]
        present.append(np.isfinite(a).any(axis=(1, 2)))
        coords.append(np.nan_to_num(a, nan=0.0).reshape(len(a), -1))
    x = np.concatenate(coords + [np.stack(present, 1)], axis=1)
    return x.astype(np.float32)


# --------------------------------------------------------------------------- dataset & bundle


class LandmarkDataset(SampleDataset):
    """Landmark sequences read lazily from ``<root>/landmarks/<id>.npz``.

    What does not depend on the augmentation draw is computed once and kept in memory,
    up to ``cache_bytes``: for an augmenting (training) split the decoded arrays, for an
    evaluation split the finished features. So each file is read once per run (per
    DataLoader worker), not once per epoch, and the samples are identical to uncached
    reads (``tests/test_landmarks.py``). Beyond the budget, samples are read as before."""

    def __init__(
        self,
        paths: list[Path],
        ids: list[str],
        labels: list[int],
        spec: FeatureSpec,
        *,
        augment: bool,
        seed: int,
        cache_bytes: int = 0,
    ):
        super().__init__(ids, labels, augment=augment, seed=seed)
        self.paths = list(paths)
        self.spec = spec
        self.failures = 0
        # each part once: pose and the hands are needed for centring even when unused
        self.read_parts = tuple(dict.fromkeys(spec.parts + ("pose", "left_hand", "right_hand")))
        self.cache_bytes = cache_bytes
        self.cached_bytes = 0
        self._cache: dict[int, Any] = {}

    def _keep(self, index: int, value: Any, nbytes: int) -> None:
        if self.cached_bytes + nbytes <= self.cache_bytes:
            self._cache[index] = value
            self.cached_bytes += nbytes

    def _arrays(self, index: int) -> dict[str, np.ndarray]:
        arrays = self._cache.get(index)
        if arrays is None:
            arrays = load_npz(self.paths[index], self.read_parts)
            self._keep(index, arrays, sum(a.nbytes for a in arrays.values()))
        return arrays

    def load(self, index: int, rng: np.random.Generator | None) -> dict[str, Any]:
        if rng is None and not self.augment and index in self._cache:
            return {"x": self._cache[index]}
        try:
            if rng is None and not self.augment:  # evaluation: cache the features
                x = features(load_npz(self.paths[index], self.read_parts), self.spec)
                self._keep(index, x, x.nbytes)
            else:  # features() copies before it augments: the cached arrays stay as read
                x = features(self._arrays(index), self.spec, rng)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            # checked when the bundle was built; a file that broke since gives an empty frame
            self.failures += 1
            log.warning("cannot read %s (%s); using an empty frame", self.paths[index], exc)
            x = np.zeros((1, self.spec.dim), dtype=np.float32)
        return {"x": x}


def build_from_root(root: str | Path, cfg: RunConfig) -> DataBundle:
    """Read a landmark folder; samples whose npz is missing or unreadable are counted and skipped."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"landmark folder {root} does not exist; set data.root")
    d = cfg.data
    man = read_manifest(root)
    coords = 3 if d.use_z else 2
    parts = tuple(dict.fromkeys(d.parts))
    keep: dict[str, list[int]] = {s: [] for s in SPLITS}
    counts = {"missing": 0, "unreadable": 0}
    skipped: list[str] = []
    face_points: int | None = None
    for i, sid in enumerate(man.ids):
        path = npz_path(root, sid)
        if not path.is_file():
            counts["missing"] += 1
            skipped.append(f"{sid}: missing")
            continue
        try:
            shapes = npz_shapes(path)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            shapes, why = {}, f"unreadable ({exc})"
        else:
            why = _check(shapes, parts, coords)
            if why is None and "face" in parts:
                face_points = face_points or shapes["face"][1]
                if shapes["face"][1] != face_points:
                    why = f"{shapes['face'][1]} face points, others have {face_points}"
        if why is not None:
            counts["unreadable"] += 1
            skipped.append(f"{sid}: {why}")
            continue
        keep[man.splits[i]].append(i)
    for split in ("train", "val"):
        if not keep[split]:
            raise DataError(f"{root}: no readable {split} samples (skipped {sum(counts.values())})")
    points = tuple(POINTS[p] or face_points or 0 for p in parts)
    spec = FeatureSpec(
        parts=parts,
        points=points,
        coords=coords,
        max_frames=d.max_frames,
        normalize=d.normalize,
        noise_std=d.noise_std,
        speed_range=tuple(d.speed_range),
        rotate_deg=d.rotate_deg,
        scale_range=tuple(d.scale_range),
        mirror=d.mirror,
    )

    def dataset(split: str, augment: bool) -> LandmarkDataset:
        rows = keep[split]
        return LandmarkDataset(
            [npz_path(root, man.ids[i]) for i in rows],
            [man.ids[i] for i in rows],
            [man.labels[i] for i in rows],
            spec,
            augment=augment,
            seed=d.seed,
            cache_bytes=d.cache_mb << 20,
        )

    info = {
        "root": str(root),
        **counts,
        "skipped": skipped[:20],
        "per_split": {s: len(v) for s, v in keep.items()},
        "features": {"parts": list(parts), "points": list(points), "coords": coords},
    }
    if counts["missing"] or counts["unreadable"]:
        log.warning("%s: skipped %d missing and %d unreadable samples", root, *counts.values())
    from engine.data.base import DataBundle

    return DataBundle(
        train=dataset("train", d.augment),
        val=dataset("val", False),
        test=dataset("test", False) if keep["test"] else None,
        class_names=man.class_names,
        input_dim=spec.dim,
        info=info,
    )


def build(cfg: RunConfig) -> DataBundle:
    """The ``landmarks`` source: ``data.root`` is a landmark folder."""
    if not cfg.data.root:
        raise DataError(
            "data.root is not set; point it at a landmark folder (manifest.csv, classes.txt, landmarks/)"
        )
    return build_from_root(cfg.data.root, cfg)
