"""Clips per second of the video data pipeline, per worker, on one generated video.

    python bench/bench_video.py [--width 320 --height 240 --frames 64 --seconds 3]

Rows: a bare decord loop (open, 16 uniformly spaced frames), a bare OpenCV loop (open,
read up to the last of those frames), the training pipeline of
:class:`engine.data.video.VideoClipDataset` (decode, sample, transform) in evaluation and
training mode, the same reading from the frame cache (npy and jpeg), and a 2-worker
DataLoader with and without the cache. The video is OpenCV's 'mp4v' (MPEG-4 part 2);
real WLASL files are mostly H.264, which decodes slower, so the cache gains more there.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from engine.data.base import EpochSampler  # noqa: E402
from engine.data.frame_cache import FrameCache  # noqa: E402
from engine.data.video import (  # noqa: E402
    ClipSpec,
    VideoClipDataset,
    VideoRef,
    open_video,
    sample_indices,
    video_collate,
)

NUM_FRAMES, IMAGE_SIZE, SHORT_SIDE = 16, 224, 256


def make_video(path: Path, width: int, height: int, frames: int) -> Path:
    """A textured background with a few moving shapes (so the codec has work to do)."""
    import cv2

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    texture = (rng.random((height, width, 3)) * 40).astype(np.float32)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (width, height))
    for t in range(frames):
        img = np.stack(
            [
                110 + 60 * np.sin(xx / 37 + t / 9),
                110 + 60 * np.cos(yy / 29 - t / 11),
                110 + 40 * np.sin((xx + yy) / 53 + t / 7),
            ],
            axis=-1,
        )
        img = np.clip(img + texture, 0, 255).astype(np.uint8)
        for k in range(3):
            cx = int(width * (0.2 + 0.6 * ((t * (k + 1) / frames) % 1)))
            cy = int(height * (0.3 + 0.2 * k))
            cv2.circle(img, (cx, cy), height // 10, (230, 40 + 80 * k, 60), -1)
        writer.write(img)
    writer.release()
    return path


class Zeros(torch.utils.data.Dataset):
    """64 zero clips: what moving a clip from a worker to the main process costs."""

    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype

    def __len__(self) -> int:
        return 64

    def __getitem__(self, i: int) -> dict:
        x = torch.zeros((NUM_FRAMES, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=self.dtype)
        return {"pixel_values": x, "label": 0, "index": i, "id": str(i)}


def rate(fn: Callable[[int], int], seconds: float) -> tuple[float, int]:
    """(clips/s, clips) calling ``fn(i)`` (which returns the clips it made) for ``seconds``."""
    fn(0)  # warm-up
    n, i, t0 = 0, 1, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds:
        n += fn(i)
        i += 1
    return n / elapsed, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=240)
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=3.0, help="per row")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader rows")
    args = ap.parse_args()
    import cv2

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="bench-video-"))
    try:
        run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, tmp: Path) -> None:
    import cv2

    path = make_video(tmp / "clip.mp4", args.width, args.height, args.frames)
    st = path.stat()
    ref = VideoRef(path, 0, args.frames, stamp=(st.st_size, st.st_mtime_ns))
    spec = ClipSpec(NUM_FRAMES, IMAGE_SIZE, SHORT_SIDE)
    idx = sample_indices(args.frames, NUM_FRAMES)
    print(
        f"video {args.width}x{args.height}, {args.frames} frames, mp4v, "
        f"{st.st_size / 1e6:.2f} MB; clips of {NUM_FRAMES} frames, {IMAGE_SIZE}px "
        f"(short side {SHORT_SIDE}); cpu cores {os.cpu_count()}; {args.seconds:g} s a row"
    )

    def bare_decord(i: int) -> int:
        vr = open_video(path)
        vr.get_batch(idx.tolist()).asnumpy()
        return 1

    def bare_opencv(i: int) -> int:
        cap = cv2.VideoCapture(str(path))
        want, frames = set(idx.tolist()), []
        for k in range(int(idx.max()) + 1):
            ok, f = cap.read()
            if not ok:
                break
            if k in want:
                frames.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
        cap.release()
        return 1

    def dataset(augment: bool, cache: FrameCache | None = None) -> VideoClipDataset:
        return VideoClipDataset([ref], ["v"], [0], spec, augment=augment, seed=0, cache=cache)

    caches = {fmt: FrameCache(tmp / f"cache-{fmt}", SHORT_SIDE, fmt) for fmt in ("npy", "jpeg")}
    fill = {}
    for fmt, c in caches.items():
        t0 = time.perf_counter()
        size = c.fill(ref)
        fill[fmt] = (time.perf_counter() - t0, size)

    def item(ds: VideoClipDataset, augment: bool) -> Callable[[int], int]:
        def fn(i: int) -> int:
            ds[(0, i)] if augment else ds[0]
            return 1

        return fn

    rows: list[tuple[str, float, int]] = []

    def row(name: str, fn: Callable[[int], int]) -> None:
        r, n = rate(fn, args.seconds)
        rows.append((name, r, n))
        print(f"  {name:<46} {r:8.1f} clips/s  {1000 / r:7.1f} ms/clip  ({n} clips)", flush=True)

    print("\nper worker (one process, one thread):")
    row("bare decord loop (open + get_batch)", bare_decord)
    row("bare OpenCV loop (open + sequential read)", bare_opencv)
    row("pipeline, eval (decode + centre crop + norm)", item(dataset(False), False))
    row("pipeline, train (decode + jitter + RRC + norm)", item(dataset(True), True))
    row("frame cache npy, train", item(dataset(True, caches["npy"]), True))
    row("frame cache jpeg, train", item(dataset(True, caches["jpeg"]), True))

    if args.workers > 0:
        print(f"\nDataLoader, {args.workers} workers, batch 8, training items:")
        n_items = 64
        for name, cache in (("direct decode", None), ("frame cache npy", caches["npy"])):
            ds = VideoClipDataset(
                [ref] * n_items,
                [str(k) for k in range(n_items)],
                [0] * n_items,
                spec,
                augment=True,
                seed=0,
                cache=cache,
            )
            sampler = EpochSampler(n_items, shuffle=True)
            loader = DataLoader(
                ds,
                batch_size=8,
                sampler=sampler,
                num_workers=args.workers,
                collate_fn=video_collate,
                persistent_workers=True,
                prefetch_factor=4,
            )
            epoch = [0]

            def run(i: int, loader=loader, sampler=sampler, epoch=epoch) -> int:
                epoch[0] += 1
                sampler.set_epoch(epoch[0])
                return sum(len(b["id"]) for b in loader)

            row(f"{name} ({args.workers} workers)", run)

        print(f"\ntransport only (DataLoader, {args.workers} workers, batch 8, zero clips):")
        for dtype in (torch.float32, torch.uint8):
            loader = DataLoader(
                Zeros(dtype),
                batch_size=8,
                num_workers=args.workers,
                collate_fn=video_collate,
                persistent_workers=True,
                prefetch_factor=4,
            )
            row(
                f"{str(dtype).removeprefix('torch.')} clips",
                lambda i, loader=loader: len(list(loader)) * 8,
            )

    print("\nframe cache: one-time fill and disk cost for this video")
    for fmt, (secs, size) in fill.items():
        per_frame = size / args.frames
        print(
            f"  {fmt:<5} fill {secs * 1000:6.0f} ms, {size / 1e6:6.2f} MB "
            f"({per_frame / 1e3:.0f} KB a frame; a 64-frame sign ~ {per_frame * 64 / 1e6:.1f} MB)"
        )
    base = dict((n, r) for n, r, _ in rows)
    direct = base["pipeline, train (decode + jitter + RRC + norm)"]
    for fmt in ("npy", "jpeg"):
        print(
            f"  speed-up of the {fmt} cache over decoding: {base[f'frame cache {fmt}, train'] / direct:.1f}x"
        )


if __name__ == "__main__":
    main()
