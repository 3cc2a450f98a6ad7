"""Face and hand crops around MediaPipe Holistic landmarks: the pure part of ``slr extract --rois``.

Per frame, each stream (``face``, ``hand_left``, ``hand_right``) gets a square box in pixels
``(cx, cy, side)`` from its landmarks: the face from the 468 face-mesh points (falling back
to the pose's face points 0-10), a hand from its 21 points (falling back to the pose's
wrist and knuckles, when the wrist is visible). The box is the points' bounding box made
square on its long side and widened by ``margin`` of that side on every side. Boxes are then
smoothed over time (a centred moving average of centre and side over the frames that have
one, so a crop does not jitter with the landmarks), and a hand that is lost keeps its last
box for ``hold`` frames (Holistic drops a hand for a frame or two while it moves fast);
after that the stream has no box, its crop is zeros and its mask False.

Crops are cut with zero padding where a box leaves the frame (so a hand at the edge stays
centred and unstretched) and resized to ``size`` (``cv2.INTER_AREA`` when shrinking, which
does not alias). Holistic's ``left_hand`` is the signer's left hand, the one whose wrist is
pose point 15; it becomes ``hand_left``.

No torch; cv2 is imported by :func:`crop_square` only. Used by :mod:`engine.holistic`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.data.roi_cache import DEFAULT_ROI_SIZE, IMAGE_STREAMS

POSE_FACE = tuple(range(11))  # nose, eyes, ears, mouth
POSE_HAND = {"hand_left": (15, 17, 19, 21), "hand_right": (16, 18, 20, 22)}  # wrist first
HAND_PART = {"hand_left": "left_hand", "hand_right": "right_hand"}
VISIBLE = 0.5  # pose points below this visibility are not used for a fallback box
FACE_FROM_POSE = 1.4  # the pose's face points span less than the face (eyes to mouth)
HAND_FROM_POSE = 2.6  # hand side per wrist-to-knuckles distance
MIN_SIDE = 4.0  # pixels; a smaller box is no box


@dataclass(frozen=True)
class RoiOptions:
    """How boxes are made (``slr extract --roi-*``); one ROI cache holds one setting."""

    size: int = DEFAULT_ROI_SIZE
    margin: float = 0.2
    hold: int = 4
    smooth: int = 2  # radius of the moving average, in frames (0: none)


def square_box(xy: np.ndarray, margin: float, scale: float = 1.0) -> np.ndarray:
    """(cx, cy, side) of the square around the finite points ``xy`` (N, 2) in pixels:
    the bounding box's long side times ``scale``, plus ``margin`` of it on each side.
    NaN (3,) when fewer than two points are finite or the box is degenerate."""
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    xy = xy[np.isfinite(xy).all(axis=1)]
    if len(xy) < 2:
        return np.full(3, np.nan)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    side = float((hi - lo).max()) * scale * (1 + 2 * margin)
    if side < MIN_SIDE:
        return np.full(3, np.nan)
    c = (lo + hi) / 2
    return np.array([c[0], c[1], side])


def _pixels(points: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.asarray(points, np.float64)[..., :2] * (width, height)


def face_box(
    face: np.ndarray | None, pose: np.ndarray | None, width: int, height: int, margin: float
) -> np.ndarray:
    """One frame's face box from the face mesh (F, 3), else from the pose's face points."""
    if face is not None and np.isfinite(face[..., :2]).all(axis=-1).sum() >= 2:
        return square_box(_pixels(face, width, height), margin)
    if pose is None:
        return np.full(3, np.nan)
    pts = pose[list(POSE_FACE)]
    seen = pts[:, 3] >= VISIBLE if pose.shape[-1] > 3 else np.ones(len(pts), bool)
    return square_box(_pixels(pts[seen], width, height), margin, FACE_FROM_POSE)


def hand_box(
    hand: np.ndarray | None,
    pose: np.ndarray | None,
    stream: str,
    width: int,
    height: int,
    margin: float,
) -> np.ndarray:
    """One frame's box of ``stream`` (``hand_left``/``hand_right``) from its 21 points,
    else from the pose's wrist and knuckles (when the wrist is visible): centred on the
    knuckles, ``HAND_FROM_POSE`` times the wrist-to-knuckles distance wide."""
    if hand is not None and np.isfinite(hand[..., :2]).all(axis=-1).sum() >= 2:
        return square_box(_pixels(hand, width, height), margin)
    if pose is None:
        return np.full(3, np.nan)
    pts = pose[list(POSE_HAND[stream])]
    if not np.isfinite(pts[:, :2]).all() or (pose.shape[-1] > 3 and pts[0, 3] < VISIBLE):
        return np.full(3, np.nan)
    xy = _pixels(pts, width, height)
    knuckles = xy[1:3].mean(axis=0)  # pinky and index
    side = float(np.linalg.norm(knuckles - xy[0])) * HAND_FROM_POSE * (1 + 2 * margin)
    if side < MIN_SIDE:
        return np.full(3, np.nan)
    return np.array([knuckles[0], knuckles[1], side])


def box_tracks(
    landmarks: dict[str, np.ndarray], width: int, height: int, margin: float
) -> dict[str, np.ndarray]:
    """Raw boxes per stream, (T, 3) each, NaN rows where a frame has none. ``landmarks``
    holds Holistic's arrays as the landmark cache names them: ``pose`` (T, 33, 4 or 3),
    ``face`` (T, F, 3), ``left_hand``/``right_hand`` (T, 21, 3), NaN where not found."""
    pose = landmarks.get("pose")
    t = len(next(iter(landmarks.values())))

    def frame(part: str, i: int) -> np.ndarray | None:
        a = landmarks.get(part)
        return None if a is None else a[i]

    out = {s: np.full((t, 3), np.nan) for s in IMAGE_STREAMS}
    for i in range(t):
        p = None if pose is None else pose[i]
        out["face"][i] = face_box(frame("face", i), p, width, height, margin)
        for s in ("hand_left", "hand_right"):
            out[s][i] = hand_box(frame(HAND_PART[s], i), p, s, width, height, margin)
    return out


def smooth_track(track: np.ndarray, radius: int) -> np.ndarray:
    """A centred moving average over the frames within ``radius`` that have a box, at the
    frames that have one (a gap stays a gap: smoothing never invents a box)."""
    track = np.asarray(track, np.float64)
    if radius <= 0:
        return track.copy()
    ok = np.isfinite(track).all(axis=1)
    out = np.full_like(track, np.nan)
    for i in np.flatnonzero(ok):
        lo, hi = max(0, i - radius), min(len(track), i + radius + 1)
        near = track[lo:hi][ok[lo:hi]]
        out[i] = near.mean(axis=0)
    return out


def hold_track(track: np.ndarray, hold: int) -> tuple[np.ndarray, np.ndarray]:
    """Fill each gap's first ``hold`` frames with the last box before it; returns the
    boxes and the mask of frames that have one (a gap at the start stays empty)."""
    out = np.asarray(track, np.float64).copy()
    ok = np.isfinite(out).all(axis=1)
    mask = ok.copy()
    last, since = None, 0
    for i in range(len(out)):
        if ok[i]:
            last, since = out[i].copy(), 0
        elif last is not None and since < hold:
            out[i], mask[i] = last, True
            since += 1
        else:
            out[i] = np.nan
    return out, mask


def plan_boxes(
    landmarks: dict[str, np.ndarray], width: int, height: int, opts: RoiOptions
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per stream the boxes to cut (T, 3) and the mask (T,) of frames that have one:
    raw boxes, smoothed, then held."""
    raw = box_tracks(landmarks, width, height, opts.margin)
    return {s: hold_track(smooth_track(raw[s], opts.smooth), opts.hold) for s in IMAGE_STREAMS}


def crop_square(frame: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """The square ``box`` (cx, cy, side) of an (H, W, 3) uint8 frame resized to
    (size, size, 3); the part outside the frame is zeros. A box more than twice the
    frame's long side is cut at that (it would only add zeros)."""
    import cv2

    h, w = frame.shape[:2]
    cx, cy, side = (float(v) for v in box)
    n = max(1, int(round(min(side, 2 * max(h, w)))))
    x0, y0 = int(round(cx - n / 2)), int(round(cy - n / 2))
    patch = np.zeros((n, n, 3), np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + n, w), min(y0 + n, h)
    if sx1 > sx0 and sy1 > sy0:
        patch[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = frame[sy0:sy1, sx0:sx1, :3]
    if n == size:
        return patch
    interp = cv2.INTER_AREA if n > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interp)


def pose_xyz(pose: np.ndarray) -> np.ndarray:
    """(T, 33, 3) float32 x, y, z of Holistic's pose (T, 33, 4); NaN stays NaN."""
    return np.ascontiguousarray(np.asarray(pose, np.float32)[..., :3])
