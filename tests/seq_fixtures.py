"""Small synthetic datasets for the tabular sources (reusable in end-to-end tests).

``make_activity_csvs`` writes a ``sequences_csv`` folder: activities differ by posture (a
per-activity offset on the first channels, like gravity on an accelerometer) and by
rhythm (sinusoid frequency), so both pooled features and sequence models can learn them.
``make_feature_set`` writes a ``features`` folder: class-dependent Gaussian clusters as
(D,) vectors or (T, D) sequences, in .npy and/or .npz.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

ACTIVITIES = ("walk", "run", "sit")


def _activity_signal(
    rng: np.random.Generator, k: int, frames: int, channels: int, noise: float
) -> np.ndarray:
    """(frames, channels): offset (posture) + sinusoid with activity-specific frequency."""
    t = np.arange(frames)
    freq = 0.04 * (k + 1)  # cycles per frame
    offset = np.zeros(channels)
    offset[k % channels] = 1.5
    amp = rng.uniform(0.6, 1.0, channels)
    phase = rng.uniform(0, 2 * np.pi, channels)
    x = offset + amp * np.sin(2 * np.pi * freq * t[:, None] + phase)
    return x + rng.normal(0, noise, (frames, channels))


def make_activity_csvs(
    root: str | Path,
    *,
    activities: tuple[str, ...] = ACTIVITIES,
    recordings_per_activity: int = 6,
    frames: tuple[int, int] = (80, 120),
    channels: int = 6,
    noise: float = 0.3,
    mixed_recordings: int = 0,
    label_column: str = "label",
    extra_text_column: bool = True,
    nested: bool = True,
    splits: dict[str, str] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Write one CSV per recording under ``root`` and return a manifest.

    Columns: ``ch0..ch{channels-1}`` (float), ``subject`` (text, ignored by the source) and
    the label column. Half the recordings sit in subfolders when ``nested``. The first
    ``mixed_recordings`` extra recordings change activity half-way. ``splits`` writes a
    ``splits.csv`` ({recording: split}). Returns ``{"recordings": {name: {"path", "labels"
    (per frame), "label" (None if mixed)}}, "columns": [...], "activities": [...]}``.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    plan: list[list[int]] = [
        [k] for _ in range(recordings_per_activity) for k in range(len(activities))
    ]
    plan += [[i % len(activities), (i + 1) % len(activities)] for i in range(mixed_recordings)]
    columns = [f"ch{c}" for c in range(channels)]
    recs: dict[str, dict[str, Any]] = {}
    for n, parts in enumerate(plan):
        name = f"rec{n:03d}"
        lengths = [int(rng.integers(frames[0], frames[1] + 1)) for _ in parts]
        x = np.concatenate(
            [
                _activity_signal(rng, k, m, channels, noise)
                for k, m in zip(parts, lengths, strict=True)
            ]
        )
        labels = [activities[k] for k, m in zip(parts, lengths, strict=True) for _ in range(m)]
        folder = root / f"subject{n % 3}" if nested and n % 2 else root
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.csv"
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow([*columns, *(["subject"] if extra_text_column else []), label_column])
            for row, lab in zip(x, labels, strict=True):
                extra = [f"s{n % 3:02d}"] if extra_text_column else []
                w.writerow([f"{v:.5f}" for v in row] + extra + [lab])
        recs[name] = {
            "path": path,
            "labels": labels,
            "label": labels[0] if len(parts) == 1 else None,
        }
    if splits is not None:
        with open(root / "splits.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["recording", "split"])
            for name, split in splits.items():
                w.writerow([name, split])
    return {"recordings": recs, "columns": columns, "activities": list(activities)}


def make_feature_set(
    root: str | Path,
    binary: bool = True,
    *,
    labels: tuple[str, ...] | None = None,
    samples_per_class: int = 20,
    dim: int = 8,
    sequences: bool = False,
    frames: tuple[int, int] = (4, 10),
    fmt: str = "npy",
    subfolder: bool = False,
    groups: int = 0,
    with_split: bool = False,
    missing: int = 0,
    unreadable: int = 0,
    separation: float = 2.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Write ``labels.csv`` and one array per sample under ``root``; return a manifest.

    Labels default to ("correct", "error") when ``binary``, else ("a", "b", "c"). Arrays
    are (D,) vectors, or (T, D) sequences when ``sequences``; ``fmt`` is "npy", "npz" or
    "mixed" (alternating; npz arrays are stored under the key "features" or, every other
    time, as the only unnamed array). ``subfolder`` puts them in root/features/.
    ``groups`` > 0 adds a group column (samples dealt round-robin to that many groups);
    ``with_split`` adds a split column. ``missing`` ids are listed without a file,
    ``unreadable`` ones get a corrupt file. Returns ``{"ids", "labels", "groups", "splits",
    "missing", "unreadable", "classes"}`` (lists aligned with ``ids``)."""
    root = Path(root)
    folder = root / "features" if subfolder else root
    folder.mkdir(parents=True, exist_ok=True)
    names = labels or (("correct", "error") if binary else ("a", "b", "c"))
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (len(names), dim))
    centres *= separation / np.linalg.norm(centres, axis=1, keepdims=True)
    ids, labs, grps, spl = [], [], [], []
    order = ["train"] * 6 + ["val"] * 2 + ["test"] * 2
    n = 0
    for k, name in enumerate(names):
        for i in range(samples_per_class):
            sid = f"s{n:04d}"
            shape = (int(rng.integers(frames[0], frames[1] + 1)), dim) if sequences else (dim,)
            x = (centres[k] + rng.normal(0, 1, shape)).astype(np.float32)
            use_npz = fmt == "npz" or (fmt == "mixed" and n % 2 == 1)
            if use_npz:
                if (n // (2 if fmt == "mixed" else 1)) % 2 == 0:
                    np.savez(folder / f"{sid}.npz", features=x, other=np.zeros(3))
                else:
                    np.savez(folder / f"{sid}.npz", x)
            else:
                np.save(folder / f"{sid}.npy", x)
            ids.append(sid)
            labs.append(name)
            grps.append(f"g{n % groups}" if groups else "")
            spl.append(order[i % len(order)])
            n += 1
    gone = ids[:: max(len(ids) // max(missing, 1), 1)][:missing] if missing else []
    for sid in gone:
        for ext in (".npy", ".npz"):
            (folder / f"{sid}{ext}").unlink(missing_ok=True)
    broken = [s for s in ids[1::3] if s not in gone][:unreadable]
    for sid in broken:
        for ext in (".npy", ".npz"):
            p = folder / f"{sid}{ext}"
            if p.exists():
                p.write_bytes(b"not an array")
    with open(root / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["id", "label", *(["group"] if groups else []), *(["split"] if with_split else [])]
        )
        for sid, lab, g, s in zip(ids, labs, grps, spl, strict=True):
            w.writerow([sid, lab, *([g] if groups else []), *([s] if with_split else [])])
    return {
        "ids": ids,
        "labels": labs,
        "groups": grps,
        "splits": spl,
        "missing": gone,
        "unreadable": broken,
        "classes": list(names),
    }


def tiny_sequence_classifier(tmp_path: Path, *sets: str):
    """The ``sequence-classifier`` config on a small activity set written under
    ``tmp_path/data`` (4 recordings an activity), on CPU, with 8-channel blocks and 8
    recording statistics; ``sets`` are further overrides."""
    from engine.config import resolve

    root = tmp_path / "data"
    make_activity_csvs(root, recordings_per_activity=4)
    base = [f"data.root={root}", "training.device=cpu", "model.channels=[8,8]"]
    return resolve("sequence-classifier", sets=[*base, "model.recording_stats=8", *sets])
