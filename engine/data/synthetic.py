"""Synthetic 'signs': landmark sequences shaped like MediaPipe Holistic output.

Each class is a sign: a location near the body, a smooth motion of the dominant (right)
wrist made of a few Fourier terms, a hand shape (finger curls, thumb, spread) that may
change during the sign, a palm orientation, and what the other hand does (rests, mirrors,
alternates, or holds still as a base). Samples add signer variation (body size and
proportions, position in frame, tilt, signing style), speed variation (length and a time
warp), per-landmark noise and occasional runs of frames where a hand is not detected.

The dataset is written in the landmark cache layout that :mod:`engine.data.landmarks`
reads (``manifest.csv``, ``classes.txt``, ``landmarks/<id>.npz``, ``dataset.json``).
Everything is deterministic from :class:`SyntheticConfig`; class ``c`` has the most
samples for ``c = 0`` and the fewest for the last class (linearly in between).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from engine.config import LandmarkOptions, SyntheticConfig
from engine.data import landmark_cache as lc
from engine.errors import DataError

if TYPE_CHECKING:
    from engine.config import RunConfig
    from engine.data.base import DataBundle


class SyntheticData(LandmarkOptions):
    """``data.*`` of the ``synthetic`` source: the landmark options (it is read as a
    landmark cache) and ``data.synthetic``, what to generate."""

    source: Literal["synthetic"] = "synthetic"
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)


GENERATOR = {"name": "synthetic", "version": 1}
FPS = 25.0
GLOSSES = (
    "hello thanks book drink eat help more please sorry want go home work school friend "
    "family water name learn finish again happy sad yes no who what where when why mother "
    "father play sleep walk read write sign deaf hear like love need stop wait come bad good "
    "time day"
).split()

# Body template in shoulder widths: origin at the shoulders' midpoint, x to the image right
# (the signer's left), y down, z towards the camera negative. MediaPipe pose indices.
_POSE = np.zeros((33, 3))
_POSE[:11, :2] = [
    (0, -0.72), (0.05, -0.82), (0.09, -0.83), (0.13, -0.82), (-0.05, -0.82), (-0.09, -0.83),
    (-0.13, -0.82), (0.2, -0.78), (-0.2, -0.78), (0.06, -0.62), (-0.06, -0.62),
]  # fmt: skip
_POSE[:11, 2] = -0.25
_POSE[[11, 12], 0] = (0.5, -0.5)
_POSE[23:, :2] = [
    (0.32, 1.25), (-0.32, 1.25), (0.33, 2.2), (-0.33, 2.2), (0.33, 3.1), (-0.33, 3.1),
    (0.33, 3.18), (-0.33, 3.18), (0.38, 3.25), (-0.38, 3.25),
]  # fmt: skip
_VISIBILITY = np.full(33, 0.98)
_VISIBILITY[25:] = 0.05  # legs are out of frame
_HEAD, _TORSO = np.arange(11), np.arange(23, 33)

# A subset of 27 FaceMesh points (indices recorded in dataset.json), relative to the nose tip.
FACE_INDICES = (
    [1, 10, 152, 234, 454, 33, 133, 159, 145, 362, 263, 386, 374, 70, 105, 334, 300]
    + [61, 291, 0, 17, 13, 14, 40, 270, 91, 321]
)  # fmt: skip
_FACE = np.zeros((27, 3))
_FACE[:, :2] = [
    (0, 0), (0, -0.28), (0, 0.22), (-0.2, -0.05), (0.2, -0.05), (-0.14, -0.1), (-0.05, -0.1),
    (-0.095, -0.12), (-0.095, -0.08), (0.05, -0.1), (0.14, -0.1), (0.095, -0.12),
    (0.095, -0.08), (-0.15, -0.16), (-0.08, -0.17), (0.08, -0.17), (0.15, -0.16), (-0.07, 0.1),
    (0.07, 0.1), (0, 0.075), (0, 0.13), (0, 0.095), (0, 0.105), (-0.035, 0.08), (0.035, 0.08),
    (-0.035, 0.125), (0.035, 0.125),
]  # fmt: skip
_FACE[:, 2] = 0.05 + 0.1 * np.abs(_FACE[:, 0])
_LOWER_LIP = [20, 22, 25, 26]

# Right hand, palm towards the camera, fingers up (-y), thumb towards +x (the body's midline).
_MCP = np.array([[0.07, -0.24, 0], [0.02, -0.25, 0], [-0.03, -0.235, 0], [-0.075, -0.21, 0]])
_SEG = np.array([[0.1, 0.06, 0.05], [0.11, 0.07, 0.05], [0.1, 0.065, 0.05], [0.08, 0.05, 0.04]])
_SPREAD = np.array([0.25, 0.0, -0.2, -0.4])
_FLEX = np.array([1.4, 1.7, 1.2])  # full flexion of each finger joint (radians)
_THUMB = (np.array([0.05, -0.06, 0]), np.array([0.08, 0.07, 0.055]))

# Hand shapes: thumb open, curl of index, middle, ring, pinky, finger spread (all 0..1).
_SHAPES = np.array([
    (0.2, 0, 0, 0, 0, 0.1), (1, 0, 0, 0, 0, 1), (0.5, 1, 1, 1, 1, 0), (0.1, 1, 1, 1, 1, 0),
    (0.2, 0, 1, 1, 1, 0), (0.2, 0, 0, 1, 1, 1), (1, 1, 1, 1, 0, 0.8), (0.7, 0.45, 0.45, 0.45, 0.45, 0.2),
    (0.4, 0.7, 0.7, 0.7, 0.7, 0.1), (1, 0, 1, 1, 1, 0.3), (0.2, 0, 0, 0, 1, 0.8),
])  # fmt: skip
_RELAXED = np.array([0.5, 0.3, 0.35, 0.4, 0.45, 0.2])

# Where signs happen (right wrist, shoulder widths) and where hands rest.
_LOCATIONS = np.array([
    (-0.05, -0.95, -0.25), (-0.3, -0.85, -0.1), (-0.02, -0.5, -0.3), (-0.25, -0.6, -0.2),
    (0, 0.3, -0.25), (0.25, 0.1, -0.2), (-0.3, 0.25, -0.5), (-0.75, 0.35, -0.2), (-0.05, 0.75, -0.3),
])  # fmt: skip
_REST = np.array([-0.35, 1.2, -0.1])
_BASE = np.array([0.15, 0.45, -0.4])
_MIRROR = np.array([-1.0, 1.0, 1.0])
_OTHER_HAND = ("rest", "mirror", "alternate", "base")


def class_names(n: int) -> list[str]:
    """Gloss-like names for ``n`` classes, ``sign_NN`` past the built-in list."""
    return [GLOSSES[i] if i < len(GLOSSES) else f"sign_{i:02d}" for i in range(n)]


def class_counts(cfg: SyntheticConfig) -> list[int]:
    """Samples per class: ``samples_per_class`` for class 0 down to ``imbalance`` times that
    for the last class, linearly (at least 3, so every split gets one)."""
    c = cfg.num_classes
    ratio = np.linspace(1.0, cfg.imbalance, c)
    return [max(3, int(round(cfg.samples_per_class * r))) for r in ratio]


def generated_root(prefix: str, generator: dict[str, Any], settings: Any) -> Path:
    """Where a generated dataset lives by default: ``$SLR_CACHE_DIR`` (else
    ``~/.cache/slr``) / ``<prefix>-<hash of the generator and its settings>``, so other
    settings never reuse the folder (``settings`` is a pydantic model)."""
    blob = json.dumps(
        {"generator": generator, "settings": settings.model_dump(mode="json")}, sort_keys=True
    )
    base = os.environ.get("SLR_CACHE_DIR") or Path.home() / ".cache" / "slr"
    return Path(base).expanduser() / f"{prefix}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def default_root(cfg: SyntheticConfig) -> Path:
    return generated_root("synthetic", GENERATOR, cfg)


# --------------------------------------------------------------------------- geometry


def _smooth(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3 - 2 * u)


def _lerp(a: Any, b: Any, w: np.ndarray) -> np.ndarray:
    return a + (b - a) * w


def _hand(shape: np.ndarray, roll: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """(T, 6) shape, (T,) roll and yaw -> (T, 21, 3) right-hand points relative to the wrist."""
    t = len(shape)
    pts = np.zeros((t, 21, 3))
    normal = np.array([0.0, 0.0, -1.0])  # fingers curl towards the palm side (the camera)
    for f in range(4):
        ang = _SPREAD[f] * shape[:, 5]
        d = np.stack([np.sin(ang), -np.cos(ang), np.zeros(t)], -1)
        p = np.broadcast_to(_MCP[f], (t, 3)).copy()
        pts[:, 5 + 4 * f] = p
        theta = np.zeros(t)
        for j in range(3):
            theta = theta + _FLEX[j] * shape[:, 1 + f]
            p = p + _SEG[f, j] * (np.cos(theta)[:, None] * d + np.sin(theta)[:, None] * normal)
            pts[:, 6 + 4 * f + j] = p
    ang = -0.6 + 1.6 * shape[:, 0]  # thumb swings from across the palm to abducted
    d = np.stack([np.sin(ang), -np.cos(ang), np.zeros(t)], -1)
    p = np.broadcast_to(_THUMB[0], (t, 3)).copy()
    pts[:, 1] = p
    theta = np.zeros(t)
    for j in range(3):
        theta = theta + 0.5 * (1 - shape[:, 0])
        p = p + _THUMB[1][j] * (np.cos(theta)[:, None] * d + np.sin(theta)[:, None] * normal)
        pts[:, 2 + j] = p
    cr, sr, cy, sy = np.cos(roll), np.sin(roll), np.cos(yaw), np.sin(yaw)
    x, y, z = pts[..., 0], pts[..., 1], pts[..., 2]
    x, z = x * cy[:, None] + z * sy[:, None], -x * sy[:, None] + z * cy[:, None]
    x, y = x * cr[:, None] - y * sr[:, None], x * sr[:, None] + y * cr[:, None]
    return np.stack([x, y, z], -1)


def _elbow(
    shoulder: np.ndarray, wrist: np.ndarray, l1: float, l2: float, side: float
) -> np.ndarray:
    """2-link inverse kinematics in the image plane; the elbow bends down and outwards."""
    v = wrist[:, :2] - shoulder[:2]
    d = np.linalg.norm(v, axis=1, keepdims=True)
    u = v / np.maximum(d, 1e-6)
    d = np.clip(d, abs(l1 - l2) + 1e-3, l1 + l2 - 1e-3)
    a = (l1**2 - l2**2 + d**2) / (2 * d)
    h = np.sqrt(np.maximum(l1**2 - a**2, 0))
    perp = np.stack([-u[:, 1], u[:, 0]], -1)
    flip = (perp[:, 1] + 0.5 * side * perp[:, 0]) < 0
    perp[flip] *= -1
    xy = shoulder[:2] + a * u + h * perp
    return np.concatenate([xy, wrist[:, 2:] / 2], 1)


# --------------------------------------------------------------------------- classes & signers


@dataclass
class _Sign:
    anchor: np.ndarray  # (3,) right-wrist location
    amp: np.ndarray  # (K, 3) Fourier amplitudes of the wrist motion
    phase: np.ndarray  # (K, 3)
    shapes: tuple[np.ndarray, np.ndarray]  # hand shape at the start and the end
    roll: float
    yaw: float
    twist: float  # change of roll during the sign
    other: str  # what the left hand does
    mouth: float  # mouthing amplitude


def _signs(cfg: SyntheticConfig) -> list[_Sign]:
    out = []
    for c in range(cfg.num_classes):
        r = np.random.default_rng([cfg.seed, 1, c])
        k = np.arange(1, 4)[:, None]
        other = _OTHER_HAND[r.choice(4, p=[0.45, 0.25, 0.15, 0.15])]
        anchor = _LOCATIONS[r.integers(len(_LOCATIONS))] + r.normal(0, 0.08, 3)
        if other == "base":
            anchor = _BASE * _MIRROR + np.array([0.1, -0.2, -0.05])
        s0 = _SHAPES[r.integers(len(_SHAPES))]
        s1 = _SHAPES[r.integers(len(_SHAPES))] if r.random() < 0.3 else s0
        out.append(
            _Sign(
                anchor=anchor,
                amp=r.normal(0, 1, (3, 3)) * (0.28 / k) * np.array([1, 1, 0.4]),
                phase=r.uniform(0, 2 * np.pi, (3, 3)),
                shapes=(s0, s1),
                roll=r.uniform(-1.2, 1.2),
                yaw=r.choice([0.0, 0.8, 1.6, 2.6]) + r.normal(0, 0.1),
                twist=r.normal(0, 0.6) if r.random() < 0.4 else 0.0,
                other=other,
                mouth=r.choice([0.0, 0.0, 0.03, 0.06]),
            )
        )
    return out


def _signer(seed: int, j: int) -> dict[str, Any]:
    r = np.random.default_rng([seed, 2, j])
    return {
        "scale": r.uniform(0.22, 0.34),
        "centre": np.array([r.uniform(0.42, 0.58), r.uniform(0.5, 0.62)]),
        "tilt": r.uniform(-0.1, 0.1),
        "arm": (0.75 * r.uniform(0.93, 1.07), 0.65 * r.uniform(0.93, 1.07)),
        "neck": r.uniform(0.9, 1.1),
        "hips": r.uniform(0.9, 1.1),
        "hand": r.uniform(0.9, 1.1),
        "head": r.uniform(0.9, 1.1),
        "amp": r.uniform(0.85, 1.15),
        "offset": r.normal(0, 0.08, 3),
        "left_handed": j % 6 == 5,
    }


# --------------------------------------------------------------------------- one sample


def _sample(
    sign: _Sign, who: dict[str, Any], frames: int, cfg: SyntheticConfig, r: np.random.Generator
) -> dict[str, np.ndarray]:
    t = np.linspace(0.0, 1.0, frames)
    warp = r.uniform(-0.6, 0.6)
    tau = np.clip(t + warp * np.sin(2 * np.pi * t) / (2 * np.pi), 0, 1) ** np.exp(
        r.uniform(-0.25, 0.25)
    )
    on, off = r.uniform(0.06, 0.2), r.uniform(0.8, 0.94)
    s = np.clip((tau - on) / (off - on), 0, 1)[:, None]
    blend = (_smooth(tau / on) * _smooth((1 - tau) / (1 - off)))[:, None]

    k = np.arange(1, 4)[:, None]
    phase = sign.phase + r.normal(0, 0.15, sign.phase.shape)
    amp = sign.amp * who["amp"] * r.uniform(0.85, 1.15)
    motion = np.einsum("kd,tkd->td", amp, np.sin(np.pi * k[None] * s[:, :, None] + phase[None]))
    anchor = sign.anchor + who["offset"] + r.normal(0, 0.06, 3)
    rest_r, rest_l = _REST + r.normal(0, 0.03, 3), _REST * _MIRROR + r.normal(0, 0.03, 3)
    right = _lerp(rest_r, anchor + motion, blend)
    if sign.other in ("mirror", "alternate"):
        sgn = 1.0 if sign.other == "mirror" else -1.0
        left = _lerp(rest_l, (anchor + sgn * motion) * _MIRROR, blend)
    elif sign.other == "base":
        left = _lerp(rest_l, _BASE + who["offset"] * _MIRROR, blend)
    else:
        left = rest_l + 0.01 * np.sin(2 * np.pi * t[:, None] + r.uniform(0, 6, 3))

    # hand shapes and orientation, relaxed at rest
    jitter = r.normal(0, 0.1, 6)
    shape = np.clip(
        _lerp(_RELAXED, _lerp(sign.shapes[0], sign.shapes[1], _smooth(s)), blend) + jitter, 0, 1
    )
    roll = _lerp(np.pi, sign.roll + sign.twist * _smooth(s[:, 0]) + r.normal(0, 0.2), blend[:, 0])
    yaw = _lerp(np.pi / 2, sign.yaw + r.normal(0, 0.2), blend[:, 0])
    size = 0.9 * who["hand"]
    hand_r = _hand(shape, roll, yaw) * size
    if sign.other in ("mirror", "alternate"):
        hand_l = hand_r * _MIRROR
    elif sign.other == "base":
        flat = np.tile(_SHAPES[0], (frames, 1))
        base_roll = _lerp(np.pi, np.full(frames, -1.3), blend[:, 0])
        hand_l = (
            _hand(flat, base_roll, _lerp(np.pi / 2, np.full(frames, 1.3), blend[:, 0]))
            * size
            * _MIRROR
        )
    else:
        hand_l = (
            _hand(np.tile(_RELAXED, (frames, 1)), np.full(frames, np.pi), np.full(frames, 1.6))
            * size
            * _MIRROR
        )

    if who["left_handed"]:  # the same sign, made with the other hand
        right, left = left * _MIRROR, right * _MIRROR
        hand_r, hand_l = hand_l * _MIRROR, hand_r * _MIRROR

    # body, arms, head and face (body units)
    pose = np.tile(_POSE, (frames, 1, 1))
    pose[:, _HEAD, 1] *= who["neck"]
    pose[:, _TORSO, 1] *= who["hips"]
    nod = 0.02 * np.sin(2 * np.pi * (t[:, None] * r.uniform(0.5, 1.5) + r.uniform(0, 1)))
    pose[:, _HEAD, :2] += nod[:, :, None] * np.array([0.5, 1.0])
    l1, l2 = who["arm"]
    pose[:, 16], pose[:, 15] = right, left
    pose[:, 14] = _elbow(_POSE[12], right, l1, l2, side=-1.0)
    pose[:, 13] = _elbow(_POSE[11], left, l1, l2, side=1.0)
    hand_r, hand_l = hand_r + right[:, None], hand_l + left[:, None]
    pose[:, [18, 20, 22]] = hand_r[:, [17, 5, 2]]
    pose[:, [17, 19, 21]] = hand_l[:, [17, 5, 2]]
    face = pose[:, :1] + _FACE * who["head"] * 1.2
    open_mouth = sign.mouth * np.sin(np.pi * 2 * s[:, 0]) ** 2 * blend[:, 0]
    face[:, _LOWER_LIP, 1] += open_mouth[:, None]

    # into the image: signer position, size and tilt, a little sway, then noise
    scale = who["scale"] * r.uniform(0.97, 1.03)
    angle = who["tilt"] + r.normal(0, 0.02)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = (
        who["centre"]
        + r.normal(0, 0.015, 2)
        + 0.01 * np.sin(2 * np.pi * t[:, None] + r.uniform(0, 6, 2))
    )

    def image(p: np.ndarray, relative_z: np.ndarray | None = None) -> np.ndarray:
        xy = centre[:, None] + scale * p[..., :2] @ rot.T
        z = scale * (p[..., 2] if relative_z is None else relative_z)
        out = np.concatenate([xy, z[..., None]], -1)
        return out + r.normal(0, cfg.noise, out.shape)

    vis = np.clip(_VISIBILITY + r.normal(0, 0.02, (frames, 33)), 0, 1)
    arrays = {
        "pose": np.concatenate([image(pose), vis[..., None]], -1),
        "left_hand": image(hand_l, (hand_l - hand_l[:, :1])[..., 2]),
        "right_hand": image(hand_r, (hand_r - hand_r[:, :1])[..., 2]),
        "face": image(face, face[..., 2] - face[:, :1, 2]),
    }
    for part in ("left_hand", "right_hand"):
        if r.random() < cfg.missing_hand_prob:
            n = int(r.integers(1, max(2, frames // 2) + 1))
            start = int(r.integers(0, frames - n + 1))
            arrays[part][start : start + n] = np.nan
    return {k: v.astype(np.float32) for k, v in arrays.items()}


# --------------------------------------------------------------------------- writing


def _plan(cfg: SyntheticConfig) -> list[tuple[str, int, int, str]]:
    """(id, class, index within class, split) for every sample, stratified per class."""
    names = class_names(cfg.num_classes)
    plan = []
    for c, n in enumerate(class_counts(cfg)):
        n_val = max(1, int(round(n * cfg.val_fraction)))
        n_test = max(1, int(round(n * cfg.test_fraction)))
        while n - n_val - n_test < 1:
            if n_val >= n_test:
                n_val -= 1
            else:
                n_test -= 1
        splits = ["val"] * n_val + ["test"] * n_test + ["train"] * (n - n_val - n_test)
        order = np.random.default_rng([cfg.seed, 3, c]).permutation(n)
        plan += [(f"{names[c]}_{i:04d}", c, i, splits[order[i]]) for i in range(n)]
    return plan


def _matches(root: Path, cfg: SyntheticConfig) -> bool:
    meta = lc.read_dataset_json(root)
    return (
        meta is not None
        and meta.get("generator") == GENERATOR
        and meta.get("settings") == cfg.model_dump(mode="json")
        and (root / lc.MANIFEST).is_file()
        and (root / lc.CLASSES).is_file()
    )


def _write(cfg: SyntheticConfig, out: Path, progress: Callable[[int, int], None] | None) -> None:
    """Fill ``out`` (a temp folder that :func:`generate` renames into place)."""
    signs = _signs(cfg)
    signers = [_signer(cfg.seed, j) for j in range(cfg.num_signers)]
    plan = _plan(cfg)
    rows = []
    for done, (sid, c, i, split) in enumerate(plan, 1):
        r = np.random.default_rng([cfg.seed, 4, c, i])
        who = int(r.integers(cfg.num_signers))
        frames = int(r.integers(cfg.min_frames, cfg.max_frames + 1))
        arrays = _sample(signs[c], signers[who], frames, cfg, r)
        arrays.update(fps=np.float32(FPS), frame_indices=np.arange(frames, dtype=np.int64))
        lc.write_npz(lc.npz_path(out, sid), arrays, compress=False, atomic=False)
        rows.append((sid, class_names(cfg.num_classes)[c], split, who, frames))
        if progress:
            progress(done, len(plan))
    lc.write_manifest(out, rows)
    lc.write_classes(out, class_names(cfg.num_classes))
    meta = {
        "generator": GENERATOR,
        "settings": cfg.model_dump(mode="json"),
        "fps": FPS,
        "parts": lc.parts_meta(len(FACE_INDICES)),
        "face_indices": FACE_INDICES,
        "samples": len(rows),
    }
    lc.write_dataset_json(out, meta)


def replaceable(root: Path, meta: dict[str, Any] | None, generator_name: str) -> bool:
    """May a generator write its dataset at ``root``? When it is absent or empty, or holds
    an older dataset of that generator (``meta``: its dataset.json); anything else is kept."""
    if not root.exists():
        return True
    if not root.is_dir():
        return False
    if not any(root.iterdir()):
        return True
    generator = (meta or {}).get("generator")
    return isinstance(generator, dict) and generator.get("name") == generator_name


def write_once(
    root: Path, what: str, matches: Callable[[Path], bool], write: Callable[[Path], None]
) -> Path:
    """Write a generated dataset to ``root`` atomically: ``write`` fills a temp folder beside
    it, which is renamed into place (an older dataset there goes with the temp folder); when
    ``matches(root)`` already, or becomes so while we write (another process finished the
    same work), that one is kept. An OSError is one DataError line naming ``what``."""
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        write(tmp / "data")
        if root.exists():  # an empty folder or an older dataset of this generator
            if matches(root):  # someone else just finished the same work
                return root
            root.rename(tmp / "old")
        (tmp / "data").rename(root)
    except OSError as exc:
        if matches(root):
            return root
        raise DataError(f"cannot write the {what} to {root}: {exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def generate(
    cfg: SyntheticConfig, root: Path, progress: Callable[[int, int], None] | None = None
) -> Path:
    """Write the dataset to ``root`` (atomically); a no-op if it already holds these settings."""
    root = Path(root).expanduser()
    if _matches(root, cfg):
        return root
    if cfg.min_frames > cfg.max_frames:
        raise DataError(
            f"synthetic.min_frames ({cfg.min_frames}) is above synthetic.max_frames ({cfg.max_frames})"
        )
    if not replaceable(root, lc.read_dataset_json(root), GENERATOR["name"]):
        raise DataError(
            f"{root} exists and is not a synthetic dataset; set data.root to another folder"
        )
    return write_once(
        root,
        "synthetic dataset",
        lambda r: _matches(r, cfg),
        lambda out: _write(cfg, out, progress),
    )


def build(cfg: RunConfig) -> DataBundle:
    """Generate the synthetic dataset if needed and read it as a landmark cache."""
    from engine.data.landmarks import build_from_root

    syn = cfg.data.synthetic
    root = Path(cfg.data.root).expanduser() if cfg.data.root else default_root(syn)
    generate(syn, root)
    bundle = build_from_root(root, cfg)
    bundle.info["generator"] = GENERATOR
    return bundle
