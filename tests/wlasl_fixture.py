"""Tiny synthetic video datasets for tests: a WLASL-layout root and a video folder.

:func:`make_wlasl_root` writes ``WLASL_v0.3.json`` in the real schema and
``videos/<video_id>.mp4`` (OpenCV 'mp4v'): a bright block moving across a dark frame in a
class-specific direction, so a video model can learn the classes. Some listed videos are
left out (missing) and some are garbage bytes (corrupt). Instances cycle through three
frame-range styles: the whole video (1, -1), an explicit full range (1, frames), and a
segment inside a longer video (grey frames before and after: 5, frames + 4). About 30
videos take well under a second.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LEAD = 4  # grey frames before and after a segment inside a longer video
GREY = 128


def write_video(path: str | Path, frames: np.ndarray, fps: float = 25.0) -> Path:
    """Write (T, H, W, 3) uint8 RGB frames as an mp4 (OpenCV 'mp4v')."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    try:
        for f in frames:
            writer.write(np.ascontiguousarray(f[:, :, ::-1]))
    finally:
        writer.release()
    return path


def index_frames(n: int, size: tuple[int, int] = (64, 48)) -> np.ndarray:
    """Flat frames whose brightness tells their index: ``10 * i + 5`` (read back with
    ``frame_index``); at most 25 frames."""
    assert n <= 25
    w, h = size
    return np.stack([np.full((h, w, 3), 10 * i + 5, np.uint8) for i in range(n)])


def frame_index(frame: np.ndarray) -> int:
    """The index :func:`index_frames` wrote into a (decoded, unnormalised) frame."""
    return int(float(np.mean(frame)) // 10)


def motion_frames(
    label: int,
    num_classes: int,
    frames: int,
    size: tuple[int, int],
    rng: np.random.Generator,
) -> np.ndarray:
    """A block crossing the frame in direction ``pi * label / num_classes``."""
    w, h = size
    block = max(4, min(w, h) // 5)
    angle = math.pi * label / max(num_classes, 1)
    reach = (min(w, h) - block) / 2 - 1
    background = int(rng.integers(10, 40))
    phase = rng.uniform(-0.15, 0.15)
    out = np.full((frames, h, w, 3), background, np.uint8)
    for t in range(frames):
        r = (-1 + 2 * t / max(frames - 1, 1) + phase) * reach
        cx = w / 2 + r * math.cos(angle)
        cy = h / 2 + r * math.sin(angle)
        x0 = int(np.clip(round(cx - block / 2), 0, w - block))
        y0 = int(np.clip(round(cy - block / 2), 0, h - block))
        out[t, y0 : y0 + block, x0 : x0 + block] = 230
    return out


@dataclass
class WlaslFixture:
    root: Path
    metadata: Path
    class_names: list[str]
    ids: dict[str, list[str]]  # split -> every listed video id
    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)

    def usable(self, split: str) -> list[str]:
        bad = set(self.missing) | set(self.corrupt)
        return [v for v in self.ids[split] if v not in bad]


def make_wlasl_root(
    root: str | Path,
    glosses: int = 4,
    per_split: tuple[int, int, int] = (3, 1, 1),
    size: tuple[int, int] = (64, 48),
    frames: int = 24,
    missing: int = 1,
    corrupt: int = 1,
    seed: int = 0,
) -> WlaslFixture:
    """A WLASL-layout folder: ``WLASL_v0.3.json`` plus ``videos/<video_id>.mp4``.

    ``size`` is (width, height); every class gets ``per_split`` (train, val, test)
    instances. ``missing`` train videos are listed but not written (the last train
    instance of classes 0, 1, ...) and ``corrupt`` are garbage bytes (the first train
    instance of the last classes)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    w, h = size
    names = [f"sign{c}" for c in range(glosses)]
    ids: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    entries = []
    missing_ids, corrupt_ids = [], []
    serial = 0
    for c, gloss in enumerate(names):
        instances = []
        for split, n in zip(("train", "val", "test"), per_split, strict=True):
            for k in range(n):
                vid = f"{10000 + serial:05d}"
                style = serial % 3
                serial += 1
                start, end = [(1, -1), (1, frames), (LEAD + 1, frames + LEAD)][style]
                instances.append(
                    {
                        "bbox": [2, 1, w - 2, h - 1],
                        "fps": 25,
                        "frame_end": end,
                        "frame_start": start,
                        "instance_id": len(instances),
                        "signer_id": int(rng.integers(0, 10)),
                        "source": "synthetic",
                        "split": split,
                        "url": f"https://example.org/{vid}.mp4",
                        "variation_id": 0,
                        "video_id": vid,
                    }
                )
                ids[split].append(vid)
                path = root / "videos" / f"{vid}.mp4"
                if split == "train" and k == n - 1 and c < missing:
                    missing_ids.append(vid)
                    continue
                if split == "train" and k == 0 and c >= glosses - corrupt:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(rng.integers(0, 256, 2048, dtype=np.uint8).tobytes())
                    corrupt_ids.append(vid)
                    continue
                clip = motion_frames(c, glosses, frames, size, rng)
                if style == 2:
                    pad = np.full((LEAD, h, w, 3), GREY, np.uint8)
                    clip = np.concatenate([pad, clip, pad])
                write_video(path, clip)
        entries.append({"gloss": gloss, "instances": instances})
    meta = root / "WLASL_v0.3.json"
    meta.write_text(json.dumps(entries))
    return WlaslFixture(root, meta, names, ids, missing_ids, corrupt_ids)


def make_video_folder(
    root: str | Path,
    classes: tuple[str, ...] = ("hello", "thanks", "yes"),
    per_split: tuple[int, int, int] = (2, 1, 1),
    size: tuple[int, int] = (64, 48),
    frames: int = 16,
    layout: str = "folders",
    corrupt: int = 0,
    missing: int = 0,
    seed: int = 0,
) -> dict[str, list[str]]:
    """``root/<split>/<class>/<clip>.mp4`` (``layout="folders"``) or ``clips/`` plus a
    ``manifest.csv`` of path,label,split (``layout="csv"``, where ``missing`` rows name
    files that are not written). ``corrupt`` train clips are garbage bytes. Returns the
    ids per split."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    ids: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    rows = []
    n_missing = n_corrupt = 0
    for c, name in enumerate(classes):
        for split, n in zip(("train", "val", "test"), per_split, strict=True):
            for k in range(n):
                if layout == "folders":
                    rel = Path(split) / name / f"clip{k}.mp4"
                else:
                    rel = Path("clips") / f"{name}_{split}_{k}.mp4"
                ids[split].append(rel.with_suffix("").as_posix())
                rows.append((rel.as_posix(), name, split))
                if split == "train" and k == 0 and n_corrupt < corrupt:
                    n_corrupt += 1
                    (root / rel).parent.mkdir(parents=True, exist_ok=True)
                    (root / rel).write_bytes(b"not a video" * 50)
                    continue
                if layout == "csv" and split == "train" and k == n - 1 and n_missing < missing:
                    n_missing += 1
                    continue
                write_video(root / rel, motion_frames(c, len(classes), frames, size, rng))
    if layout == "csv":
        with open(root / "manifest.csv", "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["path", "label", "split"])
            writer.writerows(rows)
    return ids
