"""Videos of a real person for the landmark extractor: scikit-image's ``astronaut`` photograph
(a woman, head and upper body), shifted and scaled from frame to frame, on a canvas padded
with its own border pixels. Used by tests/test_extract.py and bench/bench_extract.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.wlasl_fixture import write_video


def astronaut_frames(
    frames: int, width: int = 256, height: int = 256, phase: float = 0.0
) -> np.ndarray:
    """(frames, height, width, 3) uint8 RGB: the photograph drifting and zooming gently."""
    import cv2
    from skimage import data

    img = data.astronaut()
    side = img.shape[0]
    out = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        u = 2 * np.pi * (t / max(frames - 1, 1) + phase)
        s = min(width, height) / side * (0.85 + 0.15 * np.sin(u))
        tx = (width - side * s) / 2 + 0.08 * width * np.sin(u)
        ty = (height - side * s) / 2 + 0.05 * height * np.cos(u)
        m = np.float32([[s, 0, tx], [0, s, ty]])
        out[t] = cv2.warpAffine(
            img, m, (width, height), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
        )
    return out


def make_astronaut_folder(
    root: str | Path,
    layout: dict[str, dict[str, int]],
    frames: int = 12,
    width: int = 256,
    height: int = 256,
) -> list[str]:
    """``root/<split>/<class>/clip<k>.mp4`` for ``layout[split][class]`` clips each (the
    video-folder source's layout); returns the ids (``split/class/clipK``) in write order."""
    root = Path(root)
    ids = []
    n = 0
    for split, classes in layout.items():
        for name, count in classes.items():
            for k in range(count):
                rel = Path(split) / name / f"clip{k}.mp4"
                write_video(root / rel, astronaut_frames(frames, width, height, phase=0.13 * n))
                ids.append(rel.with_suffix("").as_posix())
                n += 1
    return ids
