"""The ROI cache format, in one place: what ``slr extract --rois`` and the synthetic
translation demo write and what the ``translation`` source reads. No torch.

Layout::

    root/rois/<id>.npz     face, hand_left, hand_right: (T, S, S, 3) uint8 RGB crops;
                           face_mask, hand_left_mask, hand_right_mask: (T,) bool, True where
                           the crop is real (False: the stream was not found in that frame
                           and its crop is zeros); pose: (T, 33, 3) float32 x, y, z
                           (normalised image coordinates, NaN where not detected);
                           frame_indices: (T,) int64 source frame of each row; fps: scalar
    root/manifest.csv      id,frames[,label,split,signer]  (one row per finished video)
    root/dataset.json      {"format": "slr-rois", "version": 1, "roi_size": S, ...}

A user who made crops with another tool writes the same layout (only ``face``,
``hand_left``, ``hand_right``, ``pose`` are required; missing masks mean "all frames real").
The translation source also reads per-stream folders instead: ``face_dir/<id>.npy`` (T, S,
S, 3) uint8 and likewise ``hand_left_dir``, ``hand_right_dir``, ``pose_dir`` (T, 33, 3).
Every file is written atomically, so a file that exists is whole.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from engine.data import cache_files as cf
from engine.data.cache_files import npz_shapes
from engine.runs import atomic_write_file

FORMAT = "slr-rois"
VERSION = 1
IMAGE_STREAMS = ("face", "hand_left", "hand_right")
STREAMS = (*IMAGE_STREAMS, "pose")
POSE_POINTS = 33
DEFAULT_ROI_SIZE = 112
MANIFEST, DATASET_JSON, ROIS = "manifest.csv", "dataset.json", "rois"
MANIFEST_COLUMNS = ("id", "frames", "label", "split", "signer")


def npz_path(root: Path, sid: str) -> Path:
    return Path(root) / ROIS / f"{sid}.npz"


def mask_key(stream: str) -> str:
    return f"{stream}_mask"


# --------------------------------------------------------------------------- writing


def write_sample(path: Path, arrays: dict[str, np.ndarray], compress: bool = True) -> None:
    """One video's streams (see the layout), checked and written atomically."""
    problem = check_arrays({k: v.shape for k, v in arrays.items()})
    if problem:
        raise ValueError(f"not an ROI sample: {problem}")
    save = np.savez_compressed if compress else np.savez
    atomic_write_file(path, lambda fh: save(fh, **arrays))


def write_manifest(root: Path, rows: Iterable[tuple[Any, ...]]) -> int:
    """Rewrite ``manifest.csv`` with rows (id, frames, label, split, signer)."""
    return cf.write_csv(Path(root) / MANIFEST, MANIFEST_COLUMNS, rows)


def write_dataset_json(root: Path, meta: dict[str, Any]) -> None:
    cf.write_format_json(Path(root) / DATASET_JSON, FORMAT, VERSION, meta)


def remove_temp_files(root: Path) -> int:
    """Delete the temp files a killed writer left (in ``root`` and under ``rois/``)."""
    return cf.remove_temp_files(root, ROIS)


# --------------------------------------------------------------------------- reading


def read_dataset_json(root: Path) -> dict[str, Any] | None:
    """dataset.json of an ROI cache; None when absent, unreadable or of another format."""
    return cf.read_format_json(Path(root) / DATASET_JSON, FORMAT)


def check_arrays(shapes: dict[str, tuple[int, ...]]) -> str | None:
    """Why arrays of these shapes are not one ROI sample (None when they are)."""
    missing = [s for s in STREAMS if s not in shapes]
    if missing:
        return f"no {', '.join(missing)} array"
    t = shapes["pose"][0] if shapes["pose"] else 0
    if shapes["pose"] != (t, POSE_POINTS, 3) or t < 1:
        return f"pose has shape {shapes['pose']}, expected (T, {POSE_POINTS}, 3)"
    size = shapes["face"][1] if len(shapes["face"]) == 4 else None
    for s in IMAGE_STREAMS:
        if shapes[s] != (t, size, size, 3):
            return f"{s} has shape {shapes[s]}, expected ({t}, S, S, 3) like face"
        m = shapes.get(mask_key(s))
        if m is not None and m != (t,):
            return f"{mask_key(s)} has shape {m}, expected ({t},)"
    return None


def complete_frames(path: Path) -> int | None:
    """Frames in a finished ROI npz; None when it is absent, unreadable or incomplete."""
    if not path.is_file():
        return None
    try:
        shapes = npz_shapes(path)
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None
    if check_arrays(shapes) is not None:
        return None
    return int(shapes["pose"][0])


def load_sample(path: Path, streams: Iterable[str] = STREAMS) -> dict[str, np.ndarray]:
    """The arrays of ``streams`` (and their masks: all True when the file has none).
    ``np.load`` refuses pickled objects, so a file cannot run code."""
    out: dict[str, np.ndarray] = {}
    with np.load(path) as z:
        for s in streams:
            if s not in z.files:
                continue
            out[s] = np.asarray(z[s])
            if s in IMAGE_STREAMS:
                key = mask_key(s)
                mask = z[key] if key in z.files else np.ones(len(out[s]), bool)
                out[key] = np.asarray(mask, dtype=bool)
    return out
