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
import math
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
    """``frames`` indices spread evenly over ``t`` frames: ``round(linspace(0, t - 1,
    frames))`` as numpy computes it, without linspace's overhead (it is drawn per sample)."""
    frames = max(frames, 1)
    if frames == 1:
        return np.zeros(1, np.int64)
    idx = np.arange(frames) * ((t - 1) / (frames - 1))
    idx[-1] = t - 1
    return np.round(idx).astype(np.int64)


@dataclass(frozen=True)
class _Points:
    """One orientation (as recorded, or mirrored) of a prepared sample's feature points,
    frame by frame: what a batch gathers its frames from."""

    values: np.ndarray  # (T, P * coords) float32: the features' points, missing coordinates 0
    present: np.ndarray  # (T, parts) float32: the presence flags
    # after a turn (rotation, mirror) x and y are missing together: where they are kept,
    # and the presence flags that follow from that
    kept: np.ndarray  # (T, P * coords) bool
    present_turned: np.ndarray  # (T, parts) float32

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.values, self.present, self.kept, self.present_turned))


@dataclass(frozen=True)
class Prepared:
    """What :func:`features` makes of a sample before any augmentation draw (a training
    split keeps it in memory): the feature points of every frame, centred and scaled,
    as recorded and (when the spec mirrors) mirrored."""

    centre: np.ndarray  # (2,) float32: what a mirror and a rotation turn about
    plain: _Points
    mirrored: _Points | None  # with spec.mirror: left and right swapped (x not yet negated)

    @property
    def frames(self) -> int:
        return len(self.plain.values)

    @property
    def nbytes(self) -> int:
        return self.plain.nbytes + (self.mirrored.nbytes if self.mirrored else 0)


def _presence(seen: np.ndarray, blocks: tuple[slice, ...]) -> np.ndarray:
    """(T, P) point seen -> (T, parts) float32: any point of the part seen."""
    if seen.size and all(b.stop > b.start for b in blocks):
        present = np.logical_or.reduceat(seen, [b.start for b in blocks], axis=-1)
    else:  # a part without points: never present
        present = np.stack([seen[:, b].any(axis=-1) for b in blocks], -1)
    return present.reshape(len(seen), len(blocks)).astype(np.float32)


def _oriented(sel: np.ndarray, blocks: tuple[slice, ...]) -> _Points:
    """(T, P, coords) points (NaN where missing) -> their :class:`_Points`."""
    finite = np.isfinite(sel)
    kept = finite.copy()
    if sel.shape[-1] >= 2:
        kept[..., :2] = (finite[..., 0] & finite[..., 1])[..., None]
    t = len(sel)
    return _Points(
        values=np.where(finite, sel, np.float32(0)).reshape(t, -1),
        present=_presence(finite.any(axis=-1), blocks),
        kept=kept.reshape(t, -1),
        present_turned=_presence(kept.any(axis=-1), blocks),
    )


def prepare(arrays: dict[str, np.ndarray], spec: FeatureSpec) -> Prepared:
    """The deterministic part of :func:`features`: centre and scale (from every array read,
    as :func:`centre_scale` says), then the points of ``spec.parts`` stacked per frame (and,
    with ``spec.mirror``, the same with left and right swapped: pose pairs and the hands)."""
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
        chunks.append(a[..., : spec.coords])
        blocks[part] = slice(at, at + a.shape[1])
        at += a.shape[1]
    points = np.concatenate(chunks, axis=1) if chunks else np.zeros((t, 0, spec.coords), np.float32)
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
    mirrored = None
    if spec.mirror:
        mirror_index = np.arange(at, dtype=np.int64)
        if "pose" in blocks:
            mirror_index[blocks["pose"]] = blocks["pose"].start + POSE_MIRROR
        if "left_hand" in blocks and "right_hand" in blocks:
            left, right = blocks["left_hand"], blocks["right_hand"]
            mirror_index[left] = np.arange(right.start, right.stop)
            mirror_index[right] = np.arange(left.start, left.stop)
        mirrored = _oriented(points[:, mirror_index[out_index]], tuple(out_blocks))
    plain = _oriented(points[:, out_index], tuple(out_blocks))
    return Prepared(np.asarray(centre, np.float32), plain, mirrored)


def _normal(rng: np.random.Generator, out: np.ndarray, std: float) -> None:
    """Fill ``out`` (C-contiguous float32) with normal noise of ``std``, drawn by torch from
    a seed taken from ``rng`` (so it stays keyed by seed, epoch and sample): about 3x faster
    than numpy's normal, which was a third of a demo sample's augmentation time."""
    import torch

    gen = torch.Generator()
    gen.manual_seed(int(rng.integers(2**62)))
    torch.from_numpy(out).normal_(0.0, std, generator=gen)


@dataclass(frozen=True)
class _Draw:
    """One sample's augmentation draw: which frames, mirrored or not, the rotation (cos,
    sin, both times the scale) and the scale."""

    frames: np.ndarray
    mirrored: bool
    cos: float
    sin: float
    scale: float


def _draw(prep: Prepared, spec: FeatureSpec, rng: np.random.Generator | None) -> _Draw:
    t = prep.frames
    frames = np.arange(t)
    mirrored, angle, scale = False, 0.0, 1.0
    if rng is not None:
        mirrored = bool(rng.random() < 0.5) and spec.mirror
        angle = math.radians(rng.uniform(-spec.rotate_deg, spec.rotate_deg))
        scale = float(rng.uniform(*spec.scale_range))
        speed = rng.uniform(*spec.speed_range)
        n = max(1, int(round(t / max(speed, 1e-3))))
        if n != t:
            frames = _resample_index(t, n)
    if len(frames) > spec.max_frames:
        frames = frames[_resample_index(len(frames), spec.max_frames)]
    return _Draw(frames, mirrored, math.cos(angle) * scale, math.sin(angle) * scale, scale)


def features_from(
    prep: Prepared, spec: FeatureSpec, rng: np.random.Generator | None = None
) -> np.ndarray:
    """A prepared sample -> (T, D) float32 features; ``rng`` draws the augmentation (mirror,
    rotation and scale about the centre, speed, noise). ``prep`` is never changed. One
    sample through :func:`features_batch`."""
    return features_batch([prep], spec, [rng])[0]


def _augment(
    out: np.ndarray,
    kept: np.ndarray,
    preps: list[Prepared],
    draws: list[_Draw],
    rngs: list[Any],
    lens: list[int],
    spec: FeatureSpec,
) -> None:
    """Mirror, rotate and scale each sample's points about its centre and add its noise, in
    place, in float32, then zero what is missing (``out``: (B, T, P * coords) points,
    sample b's first ``lens[b]`` frames; ``kept``: where they are kept)."""

    def per_sample(values: list[float]) -> np.ndarray:
        return np.asarray(values, np.float32)[:, None, None]

    c = spec.coords  # each point's x, y (and z) are every c-th column from 0, 1 (and 2)
    cx = per_sample([p.centre[0] for p in preps])
    cy = per_sample([p.centre[1] for p in preps])
    cos, sin = per_sample([d.cos for d in draws]), per_sample([d.sin for d in draws])
    x = out[..., 0::c] - cx
    x *= per_sample([-1.0 if d.mirrored else 1.0 for d in draws])
    y = out[..., 1::c] - cy
    out[..., 0::c] = cos * x - sin * y + cx
    out[..., 1::c] = sin * x + cos * y + cy
    if c > 2:
        out[..., 2::c] *= per_sample([d.scale for d in draws])
    if spec.noise_std > 0:
        noise = np.zeros_like(out)
        for b, r in enumerate(rngs):
            _normal(r, noise[b, : lens[b]], spec.noise_std)
        out += noise
    out *= kept


def features_batch(
    preps: list[Prepared], spec: FeatureSpec, rngs: list[np.random.Generator | None]
) -> list[np.ndarray]:
    """Several samples at once, on one padded array (a demo batch of 16: ~1.3 ms), each with
    its own draw from its ``rng`` (all None: no augmentation).

    Each sample's frames are gathered (speed, ``max_frames``) from its prepared points as
    recorded or mirrored, rows of the features with their presence flags; the rotation,
    scale and noise then run on the whole batch. Samples with other point counts than the
    first are done one by one."""
    if not preps:
        return []
    augment = {r is not None for r in rngs}
    if len(augment) > 1:
        raise ValueError("a batch is augmented whole or not at all")
    turned = augment == {True}
    draws = [_draw(p, spec, r) for p, r in zip(preps, rngs, strict=True)]
    views = [p.mirrored if d.mirrored else p.plain for p, d in zip(preps, draws, strict=True)]
    width = views[0].values.shape[1]
    if any(v.values.shape[1] != width for v in views):
        return [features_from(p, spec, r) for p, r in zip(preps, rngs, strict=True)]
    lens = [len(d.frames) for d in draws]
    out = np.zeros((len(preps), max(lens), width + len(spec.parts)), np.float32)
    kept = np.zeros((len(preps), max(lens), width), bool) if turned else None
    for b, (v, d) in enumerate(zip(views, draws, strict=True)):
        out[b, : lens[b], :width] = v.values[d.frames]
        out[b, : lens[b], width:] = (v.present_turned if turned else v.present)[d.frames]
        if kept is not None:
            kept[b, : lens[b]] = v.kept[d.frames]
    if kept is not None:
        _augment(out[..., :width], kept, preps, draws, rngs, lens, spec)
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
