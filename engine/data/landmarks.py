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


def _resample_index(t: int, frames: int) -> np.ndarray:
    return np.round(np.linspace(0, t - 1, max(frames, 1))).astype(np.int64)


@dataclass(frozen=True)
class Prepared:
    """What :func:`features` makes of a sample before any augmentation draw (a training
    split keeps it in memory): every part it needs stacked on one points axis."""

    points: np.ndarray  # (T, P, 3) float32, NaN where missing; normalised with spec.normalize
    centre: np.ndarray  # (2,) float32: what a mirror and a rotation turn about
    blocks: dict[str, slice]  # part -> its points on the points axis
    out_index: np.ndarray  # the points of spec.parts, in order
    out_blocks: tuple[slice, ...]  # each part of spec.parts on the axis out_index makes
    mirror_index: np.ndarray  # where each point comes from when mirrored (pose pairs, hands)

    @property
    def nbytes(self) -> int:
        return self.points.nbytes


def prepare(arrays: dict[str, np.ndarray], spec: FeatureSpec) -> Prepared:
    """The deterministic part of :func:`features`: centre and scale (from every array read,
    as :func:`centre_scale` says), then the parts stacked. A part the spec mirrors into
    (the other hand) is kept even when it is not a feature."""
    arrays = {k: v[..., :3].astype(np.float32) for k, v in arrays.items()}  # drop visibility
    centre, width = centre_scale(arrays)
    t = len(next(iter(arrays.values())))
    needed = list(spec.parts)
    if spec.mirror:
        for a, b in (("left_hand", "right_hand"), ("right_hand", "left_hand")):
            if a in needed and b not in needed:
                needed.append(b)
    want = dict(zip(spec.parts, spec.points, strict=True))
    chunks, blocks, at = [], {}, 0
    for part in needed:
        a = arrays.get(part)
        if a is None:
            n = want.get(part) or POINTS[part] or 0
            a = np.full((t, n, 3), np.nan, np.float32)
        elif a.shape[-1] < 3:  # x, y only: z is missing
            a = np.concatenate([a, np.full((*a.shape[:-1], 3 - a.shape[-1]), np.nan, a.dtype)], -1)
        chunks.append(a)
        blocks[part] = slice(at, at + a.shape[1])
        at += a.shape[1]
    points = np.concatenate(chunks, axis=1) if chunks else np.zeros((t, 0, 3), np.float32)
    if spec.normalize:
        points[..., :2] -= centre
        points /= width
        centre = np.zeros(2)
    out_index = np.concatenate([np.arange(at, dtype=np.int64)[blocks[p]] for p in spec.parts])
    out_blocks, o = [], 0
    for p in spec.parts:
        n = blocks[p].stop - blocks[p].start
        out_blocks.append(slice(o, o + n))
        o += n
    mirror_index = np.arange(at, dtype=np.int64)
    if "pose" in blocks:
        mirror_index[blocks["pose"]] = blocks["pose"].start + POSE_MIRROR
    if "left_hand" in blocks and "right_hand" in blocks:
        left, right = blocks["left_hand"], blocks["right_hand"]
        mirror_index[left] = np.arange(right.start, right.stop)
        mirror_index[right] = np.arange(left.start, left.stop)
    return Prepared(
        points, np.asarray(centre, np.float32), blocks, out_index, tuple(out_blocks), mirror_index
    )


def _normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal float32 noise, drawn by torch from a seed taken from ``rng`` (so it
    stays keyed by seed, epoch and sample): about 3x faster than numpy's normal, which
    was a third of a demo sample's augmentation time."""
    import torch

    gen = torch.Generator()
    gen.manual_seed(int(rng.integers(2**62)))
    return torch.randn(shape, generator=gen).numpy()


@dataclass(frozen=True)
class _Draw:
    """One sample's augmentation draw: which frames and points, mirrored or not, the
    rotation (cos, sin, both times the scale) and the scale."""

    frames: np.ndarray
    points: np.ndarray
    mirrored: bool
    cos: float
    sin: float
    scale: float


def _draw(prep: Prepared, spec: FeatureSpec, rng: np.random.Generator | None) -> _Draw:
    t = len(prep.points)
    frames = np.arange(t)
    mirrored, angle, scale = False, 0.0, 1.0
    if rng is not None:
        mirrored = bool(rng.random() < 0.5) and spec.mirror
        angle = float(np.deg2rad(rng.uniform(-spec.rotate_deg, spec.rotate_deg)))
        scale = float(rng.uniform(*spec.scale_range))
        speed = rng.uniform(*spec.speed_range)
        n = max(1, int(round(t / max(speed, 1e-3))))
        if n != t:
            frames = _resample_index(t, n)
    if len(frames) > spec.max_frames:
        frames = frames[_resample_index(len(frames), spec.max_frames)]
    points = prep.mirror_index[prep.out_index] if mirrored else prep.out_index
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    return _Draw(frames, points, mirrored, float(c), float(s), scale)


def _finish(sel: np.ndarray, prep: Prepared, spec: FeatureSpec) -> np.ndarray:
    """``(..., T, P, coords)`` turned points -> ``(..., T, D)`` features: presence flags per
    part, missing (or non-finite) coordinates 0."""
    finite = np.isfinite(sel)
    seen = finite[..., 0].copy()  # (..., T, P): a point with any finite coordinate
    for k in range(1, spec.coords):  # (elementwise: any() over a 2-long axis is slow)
        seen |= finite[..., k]
    if seen.size and all(b.stop > b.start for b in prep.out_blocks):
        starts = [b.start for b in prep.out_blocks]
        present = np.logical_or.reduceat(seen, starts, axis=-1)
    else:  # a part without points: never present
        present = np.stack([seen[..., b].any(axis=-1) for b in prep.out_blocks], -1)
    sel[~finite] = 0.0
    flat = sel.reshape(*sel.shape[:-2], -1)
    return np.concatenate([flat, present], axis=-1).astype(np.float32, copy=False)


def features_from(
    prep: Prepared, spec: FeatureSpec, rng: np.random.Generator | None = None
) -> np.ndarray:
    """A prepared sample -> (T, D) float32 features; ``rng`` draws the augmentation (mirror,
    rotation and scale about the centre, speed, noise). ``prep`` is never changed. One
    sample through :func:`features_batch`."""
    return features_batch([prep], spec, [rng])[0]


def _augment(
    sel: np.ndarray,
    preps: list[Prepared],
    draws: list[_Draw],
    rngs: list[Any],
    lens: list[int],
    spec: FeatureSpec,
) -> None:
    """Mirror, rotate and scale each sample's points about its centre, and add its noise,
    in place, in float32 (``sel``: (B, T, P, coords), sample b's first ``lens[b]`` frames)."""

    def per_sample(values: list[float]) -> np.ndarray:
        return np.asarray(values, np.float32)[:, None, None]

    cx = per_sample([p.centre[0] for p in preps])
    cy = per_sample([p.centre[1] for p in preps])
    cos, sin = per_sample([d.cos for d in draws]), per_sample([d.sin for d in draws])
    x, y = sel[..., 0] - cx, sel[..., 1] - cy
    x *= per_sample([-1.0 if d.mirrored else 1.0 for d in draws])
    sel[..., 0] = cos * x - sin * y + cx
    sel[..., 1] = sin * x + cos * y + cy
    if spec.coords > 2:
        sel[..., 2:] *= per_sample([d.scale for d in draws])[..., None]
    if spec.noise_std > 0:
        for b, r in enumerate(rngs):
            sel[b, : lens[b]] += _normal(r, sel[b, : lens[b]].shape) * np.float32(spec.noise_std)


def features_batch(
    preps: list[Prepared], spec: FeatureSpec, rngs: list[np.random.Generator | None]
) -> list[np.ndarray]:
    """Several samples at once, on one padded array (a demo sample alone: ~0.2 ms), each
    with its own draw from its ``rng`` (all None: no augmentation).

    Frames and points are picked first (speed, ``max_frames``, the mirror's swaps), in one
    gather of only the points and coordinates that become features; the rotation, scale
    and noise then touch nothing else. Samples with other point counts than the first are
    done one by one."""
    if not preps:
        return []
    augment = {r is not None for r in rngs}
    if len(augment) > 1:
        raise ValueError("a batch is augmented whole or not at all")
    draws = [_draw(p, spec, r) for p, r in zip(preps, rngs, strict=True)]
    npts = len(draws[0].points)
    if any(len(d.points) != npts for d in draws):
        return [features_from(p, spec, r) for p, r in zip(preps, rngs, strict=True)]
    lens = [len(d.frames) for d in draws]
    sel = np.full((len(preps), max(lens), npts, spec.coords), np.nan, np.float32)
    for b, (p, d) in enumerate(zip(preps, draws, strict=True)):
        sel[b, : lens[b]] = p.points[d.frames[:, None], d.points[None, :], : spec.coords]
    if augment == {True}:
        _augment(sel, preps, draws, rngs, lens, spec)
    out = _finish(sel, preps[0], spec)
    return [out[b, : lens[b]] for b in range(len(preps))]


def features(
    arrays: dict[str, np.ndarray], spec: FeatureSpec, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Landmark arrays (NaN where missing) -> (T, D) float32 features; ``rng`` augments.
    For each part of ``spec.parts``: its points' x, y (and z), flattened per frame, then one
    presence flag per part."""
    return features_from(prepare(arrays, spec), spec, rng)


# --------------------------------------------------------------------------- dataset & bundle


class LandmarkDataset(SampleDataset):
    """Landmark sequences read lazily from ``<root>/landmarks/<id>.npz``.

    What does not depend on the augmentation draw is computed once and kept in memory,
    up to ``cache_bytes``: for an augmenting (training) split the centred, scaled and stacked
    points (:func:`prepare`), for an evaluation split the finished features. So each file is read once per run (per
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

    def _prepared(self, index: int) -> Prepared:
        prep = self._cache.get(index)
        if prep is None:
            prep = prepare(load_npz(self.paths[index], self.read_parts), self.spec)
            self._keep(index, prep, prep.nbytes)
        return prep

    def __getitems__(self, keys: list[Any]) -> list[dict[str, Any]]:
        """A batch (the DataLoader asks for one at a time): augmented training samples are
        featurised together (:func:`features_batch`); anything else, and a batch with a
        file that cannot be read, sample by sample."""
        if not self.augment:
            return [self[k] for k in keys]
        pairs = [k if isinstance(k, tuple) else (int(k), 0) for k in keys]
        try:
            preps = [self._prepared(index) for index, _ in pairs]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return [self[k] for k in keys]
        rngs = [np.random.default_rng([self.seed, epoch, index]) for index, epoch in pairs]
        xs = features_batch(preps, self.spec, rngs)
        return [
            {"x": x, "label": int(self.labels[index]), "id": self.ids[index], "index": index}
            for x, (index, _) in zip(xs, pairs, strict=True)
        ]

    def load(self, index: int, rng: np.random.Generator | None) -> dict[str, Any]:
        if rng is None and not self.augment and index in self._cache:
            return {"x": self._cache[index]}
        try:
            if rng is None and not self.augment:  # evaluation: cache the features
                x = features(load_npz(self.paths[index], self.read_parts), self.spec)
                self._keep(index, x, x.nbytes)
            else:  # features_from() copies before it augments: the cached sample stays
                x = features_from(self._prepared(index), self.spec, rng)
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
