"""Video clips for the video sources (``wlasl``, ``video_folder``): decode, sample, transform.

One item is ``{"pixel_values": (num_frames, 3, H, W) float32}`` (VideoMAE's layout), made so:

1. the segment: frames ``[start, end)`` of the video (see :func:`segment`);
2. temporal sampling (:func:`sample_indices`): evaluation takes ``num_frames`` uniformly
   spaced frames over the whole segment; training takes a window of a random share
   (``data.temporal_scale``) of the segment at a random offset, and one random frame in
   each of ``num_frames`` equal bins of it (jitter);
3. those frames are decoded with decord, or read from the frame cache
   (:mod:`engine.data.frame_cache`), which holds each segment already resized;
4. the "base" frames: optional crop to the signer's bbox, then a short-side resize to
   ``data.short_side`` (default ``image_size * 256/224``);
5. evaluation: centre crop ``image_size``; training: one random resized crop for the whole
   clip (area share ``data.crop_scale``, aspect 3/4 to 4/3) to ``image_size``, and a
   horizontal flip only with ``data.hflip`` (handedness matters in sign language);
6. ``/255``, then ``(x - mean) / std`` (ImageNet's, as VideoMAE's image processor).

All randomness comes from the generator :class:`SampleDataset` passes to ``load``. A clip
that cannot be decoded mid-epoch becomes a zero clip: counted in ``failures``, logged once.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import default_collate, get_worker_info

from engine.data.base import DataError, SampleDataset
from engine.data.decode import (  # noqa: F401 - re-exported: the video sources' API
    CHUNK,
    VIDEO_SUFFIXES,
    VideoRef,
    _cv2,
    base_frames,
    decode,
    decode_segment,
    open_video,
    require_video_libs,
    segment,
)

if TYPE_CHECKING:
    from engine.config import RunConfig
    from engine.data.frame_cache import FrameCache

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipSpec:
    num_frames: int
    image_size: int
    short_side: int
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    crop_scale: tuple[float, float] = (0.5, 1.0)
    temporal_scale: tuple[float, float] = (0.8, 1.0)
    hflip: bool = False
    uint8: bool = False  # uint8 clips; the model normalises them with mean/std


def clip_spec(cfg: RunConfig) -> ClipSpec:
    """The clip settings of ``cfg.data`` (DataError on values that do not fit together)."""
    d = cfg.data
    short = d.short_side or int(round(d.image_size * 256 / 224))
    if short < d.image_size:
        raise DataError(
            f"data.short_side {short} is below data.image_size {d.image_size}; "
            "set short_side >= image_size (or leave it unset)"
        )
    for name, (lo, hi) in (("crop_scale", d.crop_scale), ("temporal_scale", d.temporal_scale)):
        if not 0 < lo <= hi <= 1:
            raise DataError(f"data.{name} ({lo}, {hi}) must satisfy 0 < low <= high <= 1")
    return ClipSpec(
        num_frames=d.num_frames,
        image_size=d.image_size,
        short_side=short,
        mean=tuple(d.mean),
        std=tuple(d.std),
        crop_scale=tuple(d.crop_scale),
        temporal_scale=tuple(d.temporal_scale),
        hflip=d.hflip,
        uint8=d.uint8_clips,
    )


# --------------------------------------------------------------------------- time


def sample_indices(
    length: int,
    num_frames: int,
    rng: np.random.Generator | None = None,
    temporal_scale: tuple[float, float] = (0.8, 1.0),
) -> np.ndarray:
    """``num_frames`` sorted frame indices in ``[0, length)``.

    Without ``rng``: bin centres of ``num_frames`` equal bins over the segment (uniform).
    With ``rng``: a window of ``uniform(*temporal_scale) * length`` frames at a random
    offset, one uniformly drawn position in each bin of it. Short segments repeat frames."""
    if length <= 0:
        raise ValueError("empty segment")
    bins = np.arange(num_frames, dtype=np.float64)
    if rng is None:
        pos = (bins + 0.5) * length / num_frames
    else:
        span = length * rng.uniform(*temporal_scale)
        offset = rng.uniform(0.0, length - span)
        pos = offset + (bins + rng.random(num_frames)) * span / num_frames
    return np.clip(np.floor(pos).astype(np.int64), 0, length - 1)


# --------------------------------------------------------------------------- space


def centre_box(h: int, w: int, size: int) -> tuple[int, int, int, int]:
    """(y, x, height, width) of the centred ``size`` square (or the short side if smaller)."""
    ch, cw = min(size, h), min(size, w)
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def random_box(
    h: int, w: int, scale: tuple[float, float], rng: np.random.Generator
) -> tuple[int, int, int, int]:
    """(y, x, height, width) of a random crop: area share in ``scale``, aspect 3/4 to 4/3."""
    area = h * w
    log_ratio = (math.log(3 / 4), math.log(4 / 3))
    for _ in range(10):
        a = area * rng.uniform(*scale)
        ratio = math.exp(rng.uniform(*log_ratio))
        cw, ch = int(round(math.sqrt(a * ratio))), int(round(math.sqrt(a / ratio)))
        if 0 < cw <= w and 0 < ch <= h:
            return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
    side = min(h, w)
    return (h - side) // 2, (w - side) // 2, side, side


def crop_resize(frames: np.ndarray, box: tuple[int, int, int, int], size: int) -> np.ndarray:
    y, x, ch, cw = box
    out = frames[:, y : y + ch, x : x + cw]
    if (ch, cw) == (size, size):
        return np.ascontiguousarray(out)
    cv2 = _cv2()
    # bilinear (as VideoMAE's processor); area averaging only where it shrinks over 1.5x
    interp = cv2.INTER_AREA if min(ch, cw) > 1.5 * size else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (size, size), interpolation=interp) for f in out])


def normalize(frames: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (T, 3, H, W) float32, ``(x / 255 - mean) / std``."""
    x = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2))).float()
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return x.mul_(1 / (255 * s)).add_(-m / s)  # one multiply-add pass


def transform(base: np.ndarray, spec: ClipSpec, rng: np.random.Generator | None) -> torch.Tensor:
    """Base frames (short side already ``spec.short_side``) -> normalised clip tensor."""
    h, w = base.shape[1:3]
    if rng is None:
        box = centre_box(h, w, spec.image_size)
    else:
        box = random_box(h, w, spec.crop_scale, rng)
    clip = crop_resize(base, box, spec.image_size)
    if rng is not None and spec.hflip and rng.random() < 0.5:
        clip = clip[:, :, ::-1]
    if spec.uint8:  # (T, 3, H, W) uint8; VideoMAEClassifier normalises on its device
        return torch.from_numpy(np.ascontiguousarray(clip.transpose(0, 3, 1, 2)))
    return normalize(clip, spec.mean, spec.std)


# --------------------------------------------------------------------------- dataset


class VideoClipDataset(SampleDataset):
    """Clips of ``num_frames`` frames from videos (see the module docstring)."""

    def __init__(
        self,
        refs: Sequence[VideoRef],
        ids: Sequence[str],
        labels: Sequence[int],
        spec: ClipSpec,
        *,
        augment: bool,
        seed: int,
        cache: FrameCache | None = None,
    ):
        super().__init__(ids, labels, augment=augment, seed=seed)
        self.refs = list(refs)
        self.spec = spec
        self.cache = cache
        self.failures = 0  # zero clips given; per process (each DataLoader worker counts its own)
        self._warned: set[str] = set()
        self._bad: set[int] = set()

    def frames(self, ref: VideoRef, indices: np.ndarray) -> np.ndarray:
        """Base frames at segment-relative ``indices``, from the cache or by decoding."""
        if self.cache is not None:
            try:
                return self.cache.get(ref, indices)
            except OSError as exc:  # the cache folder cannot be written: decode from now on
                self._warn("cache", "frame cache unusable (%s); decoding videos directly", exc)
                self.cache = None
        return base_frames(decode(ref.path, ref.start + indices), ref.bbox, self.spec.short_side)

    def load(self, index: int, rng: np.random.Generator | None) -> dict[str, Any]:
        _worker_setup()
        ref, spec = self.refs[index], self.spec
        clip = None
        if index not in self._bad:
            try:
                idx = sample_indices(ref.length, spec.num_frames, rng, spec.temporal_scale)
                clip = transform(self.frames(ref, idx), spec, rng)
            except Exception as exc:  # noqa: BLE001 - never crash mid-epoch on one bad video
                self._bad.add(index)  # not tried again by this process
                self._warn(
                    "decode",
                    "cannot decode %s (%s); using a zero clip (warned once)",
                    ref.path,
                    exc,
                )
        if clip is None:
            self.failures += 1
            clip = torch.zeros(
                (spec.num_frames, 3, spec.image_size, spec.image_size),
                dtype=torch.uint8 if spec.uint8 else torch.float32,
            )
        return {"pixel_values": clip}

    def _warn(self, kind: str, msg: str, *args: Any) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            log.warning(msg, *args)


_SETUP_PID: int | None = None


def _worker_setup() -> None:
    """In a DataLoader worker, once: OpenCV single-threaded (the workers are the
    parallelism; OpenCV's own thread pool can also hang in a forked process)."""
    global _SETUP_PID
    if _SETUP_PID == os.getpid():
        return
    _SETUP_PID = os.getpid()
    if get_worker_info() is not None:
        _cv2().setNumThreads(1)


def video_collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack ``pixel_values`` to (B, T, 3, H, W); labels, indices and ids as ``pad_collate``."""
    # default_collate stacks straight into shared memory in a DataLoader worker: one copy
    # fewer on the way to the main process (a 16 x 224 x 224 float32 clip is 9.6 MB)
    return {
        "pixel_values": default_collate([torch.as_tensor(it["pixel_values"]) for it in items]),
        "label": torch.tensor([it["label"] for it in items], dtype=torch.long),
        "index": torch.tensor([it["index"] for it in items], dtype=torch.long),
        "id": [it["id"] for it in items],
    }
