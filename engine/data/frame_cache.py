"""A one-time cache of decoded, resized video segments: training then samples clips from it
without decoding video (decoding, not the model, is what limits a VideoMAE fine-tune).

Each usable video's segment is decoded once, cropped to its bbox (with ``data.crop_bbox``),
resized to the short side (``data.short_side``), and kept as one file, in
``data.frame_cache`` (``auto``: ``$SLR_CACHE_DIR/frames``), named by a hash of the video's
path, size and mtime, the segment, the bbox, the short side and the format:

- ``npy`` (default): (frames, h, w, 3) uint8, memory-mapped on read, so a clip reads only
  its own frames. Disk: ``frames * h * w * 3`` bytes, 262 KB a frame at short side 256
  for 4:3 video (349 KB for 16:9). WLASL segments average 61 frames (16 MB a video):
  all of WLASL100 (2,038 videos, 126k frames) takes about 33 GB (44 GB if 16:9),
  WLASL300 about 82 GB, WLASL2000 about 330 GB; a partial copy proportionally less.
- ``jpeg``: every frame JPEG-encoded (quality 90) in one ``.npz``: about 23 KB a frame
  (10 times smaller: WLASL100 about 3 GB, WLASL2000 about 30 GB), at the price of one
  JPEG decode per sampled frame (still 2 to 3 times faster than decoding the video).

Entries are written atomically (a temp file, then a rename), so several DataLoader workers
can fill the cache at once. An entry that is missing is made when first read: without
:func:`build_frame_cache` the first epoch fills the cache as it goes. A changed video or
setting gets a new entry; old ones stay until the folder is deleted.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.data.base import DataError
from engine.data.decode import VideoRef, base_frames, decode_segment
from engine.data.video_probe import cache_dir

if TYPE_CHECKING:
    from engine.config import RunConfig

log = logging.getLogger(__name__)

SUFFIX = {"npy": ".npy", "jpeg": ".jpg.npz"}
JPEG_QUALITY = 90


def cache_folder(setting: str) -> Path:
    """The folder a ``data.frame_cache`` setting names (``auto``: under the slr cache dir)."""
    return cache_dir() / "frames" if setting == "auto" else Path(setting).expanduser()


class FrameCache:
    """Base frames of whole segments, one file per video (see the module docstring)."""

    def __init__(self, folder: str | Path, short_side: int, fmt: str = "npy"):
        if fmt not in SUFFIX:
            raise DataError(f"frame cache format '{fmt}' is unknown; use npy or jpeg")
        self.folder = Path(folder)
        self.short_side = int(short_side)
        self.fmt = fmt

    def path(self, ref: VideoRef) -> Path:
        key = "|".join(
            map(
                str,
                (
                    Path(ref.path).resolve(),
                    *ref.stamp,
                    ref.start,
                    ref.end,
                    ref.bbox,
                    self.short_side,
                    self.fmt,
                    1,
                ),
            )
        )
        digest = hashlib.sha1(key.encode()).hexdigest()
        return self.folder / digest[:2] / (digest + SUFFIX[self.fmt])

    def get(self, ref: VideoRef, indices: np.ndarray) -> np.ndarray:
        """Base frames at segment-relative ``indices``; fills the entry first if needed.

        Raises OSError when the entry cannot be written, other errors when the video
        cannot be decoded."""
        p = self.path(ref)
        try:
            return self._read(p, indices)
        except FileNotFoundError:
            pass
        except (ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
            log.warning("frame cache entry %s is damaged (%s); writing it again", p, exc)
        self.fill(ref)
        return self._read(p, indices)

    def _read(self, p: Path, indices: np.ndarray) -> np.ndarray:
        if self.fmt == "npy":
            arr = np.load(p, mmap_mode="r")
            idx = np.clip(indices, 0, len(arr) - 1)
            return np.ascontiguousarray(arr[idx])
        import cv2

        with np.load(p) as z:
            offsets, data = z["offsets"], z["data"]
        idx = np.clip(indices, 0, len(offsets) - 2)
        return np.stack(
            [
                cv2.cvtColor(
                    cv2.imdecode(data[offsets[i] : offsets[i + 1]], cv2.IMREAD_COLOR),
                    cv2.COLOR_BGR2RGB,
                )
                for i in idx
            ]
        )

    def fill(self, ref: VideoRef) -> int:
        """Decode ``ref``'s segment into its entry (atomically). Returns the bytes written."""
        parts: list[np.ndarray] = []

        def keep(chunk: np.ndarray) -> None:
            base = base_frames(chunk, ref.bbox, self.short_side)
            if self.fmt == "npy":
                parts.append(base)
            else:
                parts.extend(_jpeg(f) for f in base)

        if decode_segment(ref.path, ref.start, ref.end, keep) <= 0:
            raise ValueError(f"no frames in {ref.path} [{ref.start}, {ref.end})")
        p = self.path(ref)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=p.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                if self.fmt == "npy":
                    np.save(fh, np.concatenate(parts))
                else:
                    offsets = np.cumsum([0] + [len(b) for b in parts]).astype(np.int64)
                    np.savez(fh, offsets=offsets, data=np.concatenate(parts))
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return p.stat().st_size


def _jpeg(frame: np.ndarray) -> np.ndarray:
    import cv2

    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    )
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.reshape(-1)


def from_config(cfg: RunConfig, short_side: int) -> FrameCache | None:
    d = cfg.data
    if not d.frame_cache:
        return None
    return FrameCache(cache_folder(d.frame_cache), short_side, d.frame_cache_format)


def build_frame_cache(
    cfg: RunConfig,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Fill ``data.frame_cache`` for every usable video of every split (threads).

    Returns ``{"folder", "videos", "written", "already", "failed", "bytes"}``, ``bytes``
    being the disk size of all the entries of this dataset."""
    if not hasattr(cfg.data, "frame_cache"):  # only the video sources' options have it
        raise DataError(f"data.source '{cfg.data.source}' has no frame cache; use a video source")
    if not cfg.data.frame_cache:
        raise DataError(
            "data.frame_cache is not set; set it to a folder (or 'auto') to build a frame cache"
        )
    from engine.data import build_data

    bundle = build_data(cfg)
    splits = [ds for ds in (bundle.train, bundle.val, bundle.test) if ds is not None]
    if not all(getattr(ds, "cache", None) is not None for ds in splits):  # video clips
        raise DataError(f"data.source '{cfg.data.source}' has no frame cache; use a video source")
    cache: FrameCache = splits[0].cache
    refs = list(dict.fromkeys(r for ds in splits for r in ds.refs))
    stats = {"folder": str(cache.folder), "videos": len(refs), "written": 0, "already": 0}
    stats.update(failed=0, bytes=0)

    def one(ref: VideoRef) -> tuple[str, int]:
        p = cache.path(ref)
        if p.is_file():
            return "already", p.stat().st_size
        try:
            return "written", cache.fill(ref)
        except OSError:
            raise
        except Exception as exc:  # noqa: BLE001 - a video that cannot be decoded is skipped
            log.warning("cannot decode %s (%s); not cached", ref.path, exc)
            return "failed", 0

    if progress:
        progress(0, len(refs))
    n = workers or min(8, os.cpu_count() or 2)
    with ThreadPoolExecutor(max_workers=n) as pool:
        for done, fut in enumerate(as_completed([pool.submit(one, r) for r in refs]), 1):
            try:
                kind, size = fut.result()
            except OSError as exc:
                raise DataError(
                    f"cannot write the frame cache in {cache.folder} ({exc}); "
                    "free some space or set data.frame_cache to another folder"
                ) from None
            stats[kind] += 1
            stats["bytes"] += size
            if progress:
                progress(done, len(refs))
    return stats
