"""The landmark cache format, in one place: what ``slr extract`` and the synthetic source
write and what the ``landmarks`` source reads. No torch.

Layout::

    root/manifest.csv          id,label,split,signer,frames   (label: class name; split: train/val/test)
    root/classes.txt           one class name a line, in class-index order
    root/landmarks/<id>.npz    pose (T,33,4) x,y,z,visibility; left_hand, right_hand (T,21,3);
                               face (T,F,3); float32, NaN where not detected;
                               fps (scalar); frame_indices (T,) source frame of each row
    root/dataset.json          {"format": "slr-landmarks", "version": 1, "generator": ..., ...}

Every file is written atomically (a temp file ``.<name>.<random>.tmp`` in the same folder,
renamed over the target), so a file that exists is whole and a killed writer leaves only
temp files, which :func:`remove_temp_files` clears.
"""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.data import cache_files as cf
from engine.data.cache_files import npz_shapes
from engine.errors import DataError
from engine.runs import atomic_write_bytes, atomic_write_file

FORMAT = "slr-landmarks"
VERSION = 1
FACE_POINTS = 468  # MediaPipe's face mesh (a cache may keep a subset)
PARTS = ("pose", "left_hand", "right_hand", "face")
SHAPES = {"pose": (33, 4), "left_hand": (21, 3), "right_hand": (21, 3)}  # face: (F, 3)
POINTS = {"pose": 33, "left_hand": 21, "right_hand": 21, "face": None}  # None: any count
SPLITS = ("train", "val", "test")
MANIFEST_COLUMNS = ("id", "label", "split", "signer", "frames")
REQUIRED_COLUMNS = ("id", "label", "split")

MANIFEST, CLASSES, DATASET_JSON, LANDMARKS = (
    "manifest.csv",
    "classes.txt",
    "dataset.json",
    "landmarks",
)


def npz_path(root: Path, sid: str) -> Path:
    return Path(root) / LANDMARKS / f"{sid}.npz"


def parts_meta(face_points: int) -> dict[str, list[int]]:
    """The ``parts`` entry of dataset.json: each part's (points, coordinates)."""
    return {**{p: list(s) for p, s in SHAPES.items()}, "face": [face_points, 3]}


# --------------------------------------------------------------------------- writing


def write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_npz(
    path: Path, arrays: dict[str, np.ndarray], compress: bool = True, atomic: bool = True
) -> None:
    """One sample's arrays (see the layout), written atomically; ``atomic=False`` for a
    writer that fills a temp folder and renames the whole folder into place (no fsync per
    file)."""
    save = np.savez_compressed if compress else np.savez
    if atomic:
        atomic_write_file(path, lambda fh: save(fh, **arrays))
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        save(path, **arrays)


def write_manifest(root: Path, rows: Iterable[tuple[Any, ...]]) -> int:
    """Rewrite ``manifest.csv`` with ``rows`` (id, label, split, signer, frames); returns
    how many rows it holds."""
    return cf.write_csv(Path(root) / MANIFEST, MANIFEST_COLUMNS, rows)


def write_classes(root: Path, class_names: list[str]) -> None:
    write_text(Path(root) / CLASSES, "\n".join(class_names) + "\n")


def write_dataset_json(root: Path, meta: dict[str, Any]) -> None:
    """dataset.json: ``format`` and ``version`` first, then what the writer records."""
    cf.write_format_json(Path(root) / DATASET_JSON, FORMAT, VERSION, meta)


def read_dataset_json(root: Path) -> dict[str, Any] | None:
    """dataset.json of a landmark cache; None when absent, unreadable or of another format."""
    return cf.read_format_json(Path(root) / DATASET_JSON, FORMAT)


def remove_temp_files(root: Path) -> int:
    """Delete the temp files a killed writer left (in ``root`` and anywhere under
    ``landmarks/``: ids may hold folders); returns how many."""
    return cf.remove_temp_files(root, LANDMARKS)


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Manifest:
    ids: list[str]
    labels: list[int]
    splits: list[str]
    class_names: list[str]


def read_manifest(root: Path) -> Manifest:
    """Read and check ``manifest.csv`` and ``classes.txt`` (DataError on any problem)."""
    man, cls = Path(root) / MANIFEST, Path(root) / CLASSES
    for f in (man, cls):
        if not f.is_file():
            raise DataError(
                f"{f} not found; a landmark folder holds manifest.csv, classes.txt and landmarks/<id>.npz"
            )
    names = [line.strip() for line in cls.read_text().splitlines() if line.strip()]
    if not names:
        raise DataError(f"{cls} lists no classes")
    if len(set(names)) != len(names):
        raise DataError(f"{cls} lists a class twice")
    index = {n: i for i, n in enumerate(names)}
    ids: list[str] = []
    labels: list[int] = []
    splits: list[str] = []
    with open(man, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(
                f"{man}: missing column(s) {', '.join(missing)}; expected id,label,split,signer,frames"
            )
        for line, row in enumerate(reader, 2):
            sid, label, split = (str(row[c] or "").strip() for c in REQUIRED_COLUMNS)
            if not sid:
                raise DataError(f"{man} line {line}: empty id")
            if label not in index:
                raise DataError(f"{man} line {line}: label '{label}' is not in classes.txt")
            if split not in SPLITS:
                raise DataError(
                    f"{man} line {line}: split '{split}' is not one of train, val, test"
                )
            ids.append(sid)
            labels.append(index[label])
            splits.append(split)
    if not ids:
        raise DataError(f"{man} has no samples")
    if len(set(ids)) != len(ids):
        raise DataError(f"{man}: an id appears twice")
    return Manifest(ids, labels, splits, names)


def complete_frames(path: Path, face_points: int) -> int | None:
    """Frames in a finished npz of this format; None when it is absent, unreadable or
    incomplete (an array missing or of the wrong shape)."""
    if not path.is_file():
        return None
    try:
        shapes = npz_shapes(path)
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None
    t = shapes.get("frame_indices")
    if t is None or len(t) != 1 or t[0] < 1 or "fps" not in shapes:
        return None
    want = {**SHAPES, "face": (face_points, 3)}
    if any(shapes.get(p) != (t[0], *tail) for p, tail in want.items()):
        return None
    return int(t[0])


def load_npz(path: Path, parts: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The float32 arrays of ``parts`` that the file holds (the sample's data, never
    pickled objects: ``np.load`` refuses them by default)."""
    with np.load(path) as z:
        return {p: np.asarray(z[p], dtype=np.float32) for p in parts if p in z.files}
