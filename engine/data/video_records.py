"""From a list of videos a source names to a :class:`DataBundle` or a ``data check`` report.

Both video sources (``wlasl``, ``video_folder``) read their metadata into
:class:`VideoRecord` rows, then share this: files that do not exist are *missing*, files
decord cannot open (probed once, see :mod:`engine.data.video_probe`) are *unreadable*;
both are counted per split and skipped, the rest become :class:`VideoClipDataset` items.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.data.base import DataBundle, DataError
from engine.data.frame_cache import from_config
from engine.data.video import (
    VideoClipDataset,
    VideoRef,
    clip_spec,
    require_video_libs,
    segment,
    video_collate,
)
from engine.data.video_probe import Probe, probe_videos

if TYPE_CHECKING:
    from engine.config import RunConfig

SPLITS = ("train", "val", "test")
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class VideoRecord:
    """One listed sample: a video file, its class and split, and its frame range."""

    id: str
    path: Path
    label: int
    split: str
    frame_start: int = 1  # 1-based, inclusive
    frame_end: int = -1  # 1-based, inclusive; -1: to the end
    bbox: tuple[int, int, int, int] | None = None


@dataclass
class Resolved:
    """The listed records and what was found on disk."""

    records: list[VideoRecord]
    probes: dict[Path, Probe]
    missing: list[VideoRecord] = field(default_factory=list)
    unreadable: list[VideoRecord] = field(default_factory=list)
    usable: list[VideoRecord] = field(default_factory=list)

    def count(self, rows: Sequence[VideoRecord]) -> dict[str, int]:
        return {s: sum(r.split == s for r in rows) for s in SPLITS}


def resolve(
    records: Sequence[VideoRecord], root: str | Path, progress: Progress | None = None
) -> Resolved:
    """Sort records into missing, unreadable and usable (probing the present files)."""
    require_video_libs()
    present = [r for r in records if r.path.is_file()]
    probes = probe_videos(root, [r.path for r in present], progress)
    res = Resolved(list(records), probes)
    for r in records:
        probe = probes.get(r.path)
        if probe is None:
            res.missing.append(r)
        elif not probe.ok:
            res.unreadable.append(r)
        else:
            res.usable.append(r)
    return res


def ref_for(r: VideoRecord, probe: Probe, crop_bbox: bool) -> VideoRef:
    start, end = segment(r.frame_start, r.frame_end, probe.frames)
    return VideoRef(
        path=r.path,
        start=start,
        end=end,
        bbox=r.bbox if crop_bbox else None,
        stamp=(probe.size, probe.mtime_ns),
    )


def make_bundle(
    res: Resolved, class_names: list[str], cfg: RunConfig, info: dict[str, Any]
) -> DataBundle:
    """Datasets of the usable records; counts in ``info`` (missing, unreadable, per_split)."""
    d = cfg.data
    spec = clip_spec(cfg)
    cache = from_config(cfg, spec.short_side)
    where = info.get("root", d.root)

    def dataset(split: str) -> VideoClipDataset:
        rows = [r for r in res.usable if r.split == split]
        return VideoClipDataset(
            [ref_for(r, res.probes[r.path], d.crop_bbox) for r in rows],
            [r.id for r in rows],
            [r.label for r in rows],
            spec,
            augment=d.augment and split == "train",
            seed=d.seed,
            cache=cache,
        )

    per_split = res.count(res.usable)
    for split in ("train", "val"):
        if not per_split[split]:
            listed = res.count(res.records)[split]
            raise DataError(
                f"{where}: no usable {split} videos ({listed} listed, "
                f"{res.count(res.missing)[split]} missing, "
                f"{res.count(res.unreadable)[split]} unreadable); run 'slr data check' for details"
            )
    info = {
        **info,
        "listed": res.count(res.records),
        "missing": res.count(res.missing),
        "unreadable": res.count(res.unreadable),
        "per_split": per_split,
        "skipped": [f"{r.id}: missing" for r in res.missing[:10]]
        + [f"{r.id}: {res.probes[r.path].error}" for r in res.unreadable[:10]],
        "frame_cache": str(cache.folder) if cache else None,
    }
    return DataBundle(
        train=dataset("train"),
        val=dataset("val"),
        test=dataset("test") if per_split["test"] else None,
        class_names=list(class_names),
        input_dim=None,
        collate_fn=video_collate,
        info=info,
    )


def report(res: Resolved, class_names: Sequence[str]) -> dict[str, Any]:
    """Per split: listed, present, missing, unreadable, usable; ``classes``: statistics of
    the usable training videos per class (:func:`engine.data.class_stats`: min/mean/max and
    max/min ratio over the classes that have any, and the classes that have none)."""
    out: dict[str, Any] = {}
    listed, missing = res.count(res.records), res.count(res.missing)
    unreadable, usable = res.count(res.unreadable), res.count(res.usable)
    for s in SPLITS:
        out[s] = {
            "listed": listed[s],
            "present": listed[s] - missing[s],
            "missing": missing[s],
            "unreadable": unreadable[s],
            "usable": usable[s],
        }
    out["total"] = {k: sum(out[s][k] for s in SPLITS) for k in out["train"]}
    from engine.data import class_stats

    counts = np.bincount(
        np.asarray([r.label for r in res.usable if r.split == "train"], dtype=np.int64),
        minlength=len(class_names),
    )
    out["num_classes"] = len(class_names)
    out["classes"] = class_stats(counts, list(class_names))
    out["train_per_class"] = {name: int(n) for name, n in zip(class_names, counts, strict=True)}
    out["missing_ids"] = [r.id for r in res.missing[:20]]
    out["unreadable_ids"] = {r.id: res.probes[r.path].error for r in res.unreadable[:20]}
    return out
