"""Reading videos, without torch: decord and OpenCV loaded on first use, one video's
frames decoded in chunks, the "base" frames the frame cache stores, and :class:`VideoRef`,
one usable video's segment.

Everything that opens a video file goes through :func:`open_video`: the clip datasets
(:mod:`engine.data.video`), the frame cache, the probe and landmark extraction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import DataError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
CHUNK = 32  # frames decoded at a time when a whole segment is read


@dataclass(frozen=True)
class VideoRef:
    """One usable video: where it is and which frames belong to the sample."""

    path: Path
    start: int  # first frame of the segment, 0-based
    end: int  # one past the last frame
    bbox: tuple[int, int, int, int] | None = None  # xmin, ymin, xmax, ymax (pixels)
    stamp: tuple[int, int] = (0, 0)  # file size, mtime_ns (the frame cache's key)

    @property
    def length(self) -> int:
        return self.end - self.start


def segment(frame_start: int, frame_end: int, frames: int) -> tuple[int, int]:
    """0-based ``[start, end)`` of a 1-based, inclusive metadata range (``frame_end`` -1: to
    the end) in a video of ``frames`` frames.

    A range that does not fit the video means the file is already cut to the segment (the
    official WLASL ``preprocess.py`` writes only the segment of a long YouTube video): the
    whole video is used then."""
    start = max(int(frame_start), 1) - 1
    end = frames if frame_end is None or int(frame_end) < 0 else int(frame_end)
    if start >= end or end > frames:
        return 0, frames
    return start, end


# --------------------------------------------------------------------------- decoding


_DECORD: Any = None


def _decord() -> Any:
    global _DECORD
    if _DECORD is None:
        try:
            import decord
        except ImportError:
            raise DataError(
                "decord is not installed; video sources need it: pip install 'slr-tui[video]'"
            ) from None
        decord.logging.set_level(decord.logging.QUIET)  # we count and report bad files
        _DECORD = decord
    return _DECORD


def require_video_libs() -> None:
    """DataError (one line) unless decord and OpenCV can be imported."""
    _decord()
    try:
        _cv2()
    except ImportError:
        raise DataError(
            "OpenCV is not installed; video sources need it: pip install 'slr-tui[video]'"
        ) from None


def open_video(path: str | Path, num_threads: int = 1) -> Any:
    """A decord VideoReader (raises on a file decord cannot open)."""
    decord = _decord()
    return decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=num_threads)


def decode(path: str | Path, indices: Sequence[int] | np.ndarray) -> np.ndarray:
    """Frames at ``indices`` (absolute, 0-based) as (k, H, W, 3) uint8 RGB."""
    vr = open_video(path)
    idx = np.clip(np.asarray(indices, dtype=np.int64), 0, len(vr) - 1)
    uniq, inverse = np.unique(idx, return_inverse=True)
    frames = vr.get_batch(uniq.tolist()).asnumpy()
    return frames[inverse]


def decode_segment(
    path: str | Path,
    start: int,
    end: int,
    each: Callable[[np.ndarray], None],
    chunk: int = CHUNK,
) -> int:
    """Decode frames ``[start, end)`` in chunks, handing each (k, H, W, 3) chunk to ``each``.

    Returns the number of frames decoded: ``end`` is clipped to the video's length, and a
    video whose last frames do not decode (decord can count frames it cannot read) stops
    at the first frame that fails."""
    vr = open_video(path)
    end = min(end, len(vr))
    done = 0
    for a in range(start, end, chunk):
        ids = list(range(a, min(a + chunk, end)))
        try:
            each(vr.get_batch(ids).asnumpy())
            done += len(ids)
            continue
        except Exception:  # noqa: BLE001 - salvage the frames before the broken one
            pass
        for i in ids:
            try:
                frame = vr.get_batch([i]).asnumpy()
            except Exception:  # noqa: BLE001
                if not done:
                    raise
                return done
            each(frame)
            done += 1
    return done


# --------------------------------------------------------------------------- space


def _cv2() -> Any:
    import cv2

    return cv2


def base_frames(
    frames: np.ndarray, bbox: tuple[int, int, int, int] | None, short_side: int
) -> np.ndarray:
    """Crop (T, H, W, 3) frames to ``bbox`` (clamped; ignored when degenerate) and resize
    them so the short side is ``short_side``. This is what the frame cache stores."""
    if bbox is not None:
        h, w = frames.shape[1:3]
        x0, y0 = max(int(bbox[0]), 0), max(int(bbox[1]), 0)
        x1, y1 = min(int(bbox[2]), w), min(int(bbox[3]), h)
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            frames = frames[:, y0:y1, x0:x1]
    h, w = frames.shape[1:3]
    scale = short_side / min(h, w)
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))  # cv2: (w, h)
    if size == (w, h):
        return np.ascontiguousarray(frames)
    cv2 = _cv2()
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return np.stack(
        [cv2.resize(np.ascontiguousarray(f), size, interpolation=interp) for f in frames]
    )
