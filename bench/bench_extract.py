"""Frames per second of landmark extraction (``slr extract``) beside a bare Holistic loop.

    python bench/bench_extract.py [--videos 4 --frames 50 --width 480 --height 360 --workers 2]

The videos show a real person (scikit-image's astronaut photograph, drifting and zooming,
OpenCV 'mp4v'). Rows, all on the same frames:

- bare Holistic loop: frames decoded beforehand, one Holistic (tracking mode) per process,
  ``process()`` timed after one warm-up frame; with N processes each takes its share of
  the videos and the rate is all frames over the slowest process's time;
- ``engine.extract.extract`` with 1 and N workers: decoding, a Holistic restart per video,
  landmark conversion and the npz writes; the rate is frames over the time from the first
  video to the last (pool start-up included), the wall time adds probing and setup;
- the same with ``--stride 2`` (half the frames) and with ``--max-size 256``.

Needs mediapipe (``pip install 'slr-tui[pose]'``) and scikit-image.
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import config as cfgmod  # noqa: E402
from engine.extract import ExtractSettings, extract  # noqa: E402
from engine.holistic import open_video, stderr_to  # noqa: E402
from tests.pose_fixture import make_astronaut_folder  # noqa: E402


def bare_loop(paths: list[str]) -> tuple[int, float, float]:
    """(frames, seconds, CPU seconds) of Holistic.process over the videos' frames, decoded
    beforehand."""
    import numpy as np
    from mediapipe.python.solutions import holistic

    readers = [open_video(p) for p in paths]
    frames = np.concatenate([vr.get_batch(list(range(len(vr)))).asnumpy() for vr in readers])
    with stderr_to(None):
        h = holistic.Holistic(static_image_mode=False, model_complexity=1)
        h.process(frames[0])  # warm-up: graph start, first detection
        t0, c0 = time.perf_counter(), time.process_time()
        for f in frames:
            h.process(f)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    h.close()
    return len(frames), seconds, cpu


def bare(paths: list[str], procs: int) -> tuple[float, str]:
    """(frames/s, a note on the CPU it took)."""
    if procs == 1:
        out = [bare_loop(paths)]
    else:
        shares = [paths[i::procs] for i in range(procs)]
        with multiprocessing.get_context("spawn").Pool(procs) as pool:
            out = pool.map(bare_loop, shares)
    frames = sum(n for n, _, _ in out)
    wall = max(s for _, s, _ in out)
    cpu = sum(c for _, _, c in out)
    return frames / wall, f"{1000 * cpu / frames:.0f} CPU ms a frame, {cpu / wall:.1f} cores busy"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--frames", type=int, default=50, help="frames a video")
    ap.add_argument("--width", type=int, default=480)
    ap.add_argument("--height", type=int, default=360)
    ap.add_argument("--workers", type=int, default=2, help="N for the N-process rows")
    args = ap.parse_args()
    missing = [m for m in ("mediapipe", "skimage") if importlib.util.find_spec(m) is None]
    if missing:  # `make bench` runs every script; this one needs the pose extra
        print(
            f"skipped: {', '.join(missing)} not installed (pip install 'slr-tui[pose]' scikit-image)"
        )
        return
    import mediapipe

    tmp = Path(tempfile.mkdtemp(prefix="bench-extract-"))
    try:
        root = tmp / "videos"
        ids = make_astronaut_folder(
            root, {"train": {"person": args.videos}}, args.frames, args.width, args.height
        )
        paths = [str(root / f"{i}.mp4") for i in ids]
        total = args.videos * args.frames
        print(
            f"{args.videos} videos x {args.frames} frames = {total} frames, "
            f"{args.width}x{args.height} mp4v; mediapipe {mediapipe.__version__}, "
            f"model complexity 1; cpu cores {os.cpu_count()}"
        )
        cfg = cfgmod.resolve(sets=["data.source=video_folder", f"data.root={root}"])
        n = args.workers
        rows: list[tuple[str, float, str]] = [
            ("bare Holistic loop, 1 process", *bare(paths, 1)),
            (f"bare Holistic loop, {n} processes", *bare(paths, n)),
        ]
        runs = [
            ("slr extract, 1 worker", 1, ExtractSettings()),
            (f"slr extract, {n} workers", n, ExtractSettings()),
            ("slr extract, 1 worker, --stride 2", 1, ExtractSettings(stride=2)),
            (f"slr extract, {n} workers, --stride 2", n, ExtractSettings(stride=2)),
            ("slr extract, 1 worker, --max-size 256", 1, ExtractSettings(max_size=256)),
            (f"slr extract, {n} workers, --max-size 256", n, ExtractSettings(max_size=256)),
        ]
        for k, (name, workers, settings) in enumerate(runs):
            t0 = time.perf_counter()
            s = extract(cfg, tmp / f"out{k}", settings, workers=workers)
            wall = time.perf_counter() - t0
            assert s["extracted"] == args.videos, s["failures"]
            covered = total / s["seconds"]
            note = (
                f"{s['frames']} frames in {s['seconds']:.1f} s (wall {wall:.1f} s); "
                f"pose {100 * s['detection']['pose']:.0f}%, face {100 * s['detection']['face']:.0f}%"
            )
            if settings.stride > 1:
                note += f"; {covered:.1f} video frames/s covered"
            rows.append((name, s["frames_per_s"], note))
        print()
        for name, fps, note in rows:
            print(f"  {name:<40} {fps:6.1f} frames/s  {note}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
