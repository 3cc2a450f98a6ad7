"""MediaPipe Holistic on one video: frames in, landmark arrays out (used by :mod:`engine.extract`).

Holistic runs in tracking mode (``static_image_mode`` off, landmarks smoothed) with
``refine_face_landmarks`` off, and restarts for every video, so nothing is tracked or
smoothed across two videos. Each kept frame (every ``stride``-th of the segment) may be
cropped to the signer's bbox and shrunk so its long side is at most ``max_size`` before
Holistic sees it; the landmarks are normalised image coordinates, so they stay valid.

The mediapipe 0.10.21 wheel ships the pose landmark model of complexity 1 only;
complexities 0 and 2 download theirs at first use, which fails offline.
:func:`ensure_pose_model` checks for the file and installs one the user provides.

With ``ExtractSettings.rois`` a worker also cuts the face and hand crops
(:meth:`Extractor.rois`, boxes by :mod:`engine.rois`) and writes an ROI sample
(:mod:`engine.data.roi_cache`) instead of the landmarks: the worker has the frames and
writes the npz itself, so no frame ever travels between processes.

This module imports mediapipe and decord lazily and never imports torch, so worker
processes start quickly.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.data import roi_cache
from engine.data.decode import open_video
from engine.data.landmark_cache import FACE_POINTS, PARTS, SHAPES, write_npz
from engine.data.roi_cache import DEFAULT_ROI_SIZE
from engine.rois import IMAGE_STREAMS, RoiOptions, crop_square, plan_boxes, pose_xyz
from engine.runs import atomic_write_file

MEDIAPIPE_VERSION = "0.10.21"
POSE_MODELS = {
    0: "pose_landmark_lite.tflite",
    1: "pose_landmark_full.tflite",
    2: "pose_landmark_heavy.tflite",
}
MODEL_URL = "https://storage.googleapis.com/mediapipe-assets/"
CHUNK = 32  # frames decoded at a time


class ExtractError(Exception):
    """Extraction cannot run as asked; the message is one line (what, why, what to do)."""


@dataclass(frozen=True)
class ExtractSettings:
    """What decides the landmarks of a video; one cache holds one setting."""

    model_complexity: int = 1
    stride: int = 1
    max_size: int | None = None  # long side in pixels before Holistic (None: as decoded)
    crop_bbox: bool = False
    face_indices: tuple[int, ...] | None = None  # None: all 468 face points
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    # --rois: face and hand crops into an ROI cache instead of landmarks (engine.rois)
    rois: bool = False
    roi_size: int = DEFAULT_ROI_SIZE
    roi_margin: float = RoiOptions.margin
    roi_hold: int = RoiOptions.hold
    roi_smooth: int = RoiOptions.smooth

    @property
    def face_points(self) -> int:
        return FACE_POINTS if self.face_indices is None else len(self.face_indices)

    @property
    def roi_options(self) -> RoiOptions:
        return RoiOptions(self.roi_size, self.roi_margin, self.roi_hold, self.roi_smooth)

    def to_json(self) -> dict[str, Any]:
        """The settings a cache records; the ROI ones only for an ROI cache, so a landmark
        cache written before they existed still resumes."""
        d = asdict(self)
        d["face_indices"] = None if self.face_indices is None else list(self.face_indices)
        if not self.rois:
            for k in ("rois", "roi_size", "roi_margin", "roi_hold", "roi_smooth"):
                d.pop(k)
        return d


@dataclass(frozen=True)
class Job:
    """One video to extract (picklable: it travels to the worker processes)."""

    id: str
    path: str
    out: str  # the npz to write
    label: str
    split: str
    signer: str = ""
    start: int = 0  # the segment: frames [start, end), 0-based
    end: int = -1  # -1: to the end of the video
    bbox: tuple[int, int, int, int] | None = None  # xmin, ymin, xmax, ymax (pixels)


@dataclass
class VideoResult:
    id: str
    frames: int = 0
    detected: dict[str, int] = field(default_factory=dict)  # frames with the part, per part
    error: str | None = None
    seconds: float = 0.0


# --------------------------------------------------------------------------- the package


def require_mediapipe() -> str:
    """The installed mediapipe version (ExtractError when it cannot be imported)."""
    try:
        import mediapipe
        from mediapipe.python.solutions import holistic  # noqa: F401
    except ImportError as exc:
        raise ExtractError(
            f"mediapipe cannot be imported ({first_line(exc)}); install it with "
            f"pip install 'slr-tui[pose]' (mediapipe=={MEDIAPIPE_VERSION})"
        ) from None
    return str(getattr(mediapipe, "__version__", "unknown"))


def mediapipe_dir() -> Path:
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.origin:
        raise ExtractError(
            f"mediapipe is not installed; pip install 'slr-tui[pose]' (mediapipe=={MEDIAPIPE_VERSION})"
        )
    return Path(spec.origin).parent


def ensure_pose_model(
    complexity: int, model_file: str | Path | None = None, package_dir: Path | None = None
) -> Path:
    """Make sure Holistic's pose model for ``complexity`` is inside the mediapipe package
    (``package_dir``, default the installed one), copying ``model_file`` there when given;
    returns its path. Without it Holistic would try to download the file at first use."""
    if complexity not in POSE_MODELS:
        raise ExtractError(f"model complexity must be 0, 1 or 2, not {complexity}")
    name = POSE_MODELS[complexity]
    target = (package_dir or mediapipe_dir()) / "modules" / "pose_landmark" / name
    if model_file is None:
        if target.is_file():
            return target
        raise ExtractError(
            f"model complexity {complexity} needs {name}, which the mediapipe wheel does not ship "
            f"(it downloads it at first use, which fails offline); get it from {MODEL_URL}{name} "
            f"and pass --model-file PATH, or use --model-complexity 1 (shipped)"
        )
    if complexity == 1:
        raise ExtractError(
            "--model-file is for model complexity 0 or 2; the model of complexity 1 ships with mediapipe"
        )
    src = Path(model_file).expanduser()
    if not src.is_file():
        raise ExtractError(f"--model-file {src}: no such file")
    with open(src, "rb") as fh:
        head = fh.read(8)
    if head[4:8] != b"TFL3":
        raise ExtractError(f"--model-file {src} is not a TFLite model (expected {name})")
    if target.is_file() and src.read_bytes() == target.read_bytes():
        return target
    try:
        with open(src, "rb") as inp:
            atomic_write_file(target, lambda out: shutil.copyfileobj(inp, out))
    except OSError as exc:
        raise ExtractError(
            f"cannot copy {src} into the mediapipe package ({exc.strerror or exc}); "
            f"copy it yourself: cp {src} {target}"
        ) from None
    return target


# --------------------------------------------------------------------------- stderr


@contextlib.contextmanager
def stderr_to(path: str | os.PathLike[str] | None) -> Iterator[None]:
    """Send file descriptor 2 to ``path`` (appending; None: /dev/null) for a while.

    MediaPipe's C++ side logs warnings there (at every graph start, and once per process
    at the first inference), which would tear a progress bar."""
    target = os.open(path or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        saved = os.dup(2)
    except OSError:
        os.close(target)
        yield
        return
    try:
        os.dup2(target, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(target)


# --------------------------------------------------------------------------- one video


def _points(lms: Any, vis: bool) -> np.ndarray | None:
    if lms is None:
        return None
    if vis:
        return np.array([(p.x, p.y, p.z, p.visibility) for p in lms.landmark], np.float32)
    return np.array([(p.x, p.y, p.z) for p in lms.landmark], np.float32)


def prepare_frame(
    frame: np.ndarray, bbox: tuple[int, int, int, int] | None, max_size: int | None
) -> np.ndarray:
    """Crop an RGB frame to ``bbox`` (clamped; ignored when degenerate), then shrink it so
    its long side is at most ``max_size``."""
    if bbox is not None:
        h, w = frame.shape[:2]
        x0, y0 = max(int(bbox[0]), 0), max(int(bbox[1]), 0)
        x1, y1 = min(int(bbox[2]), w), min(int(bbox[3]), h)
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            frame = frame[y0:y1, x0:x1]
    h, w = frame.shape[:2]
    if max_size and max(h, w) > max_size:
        import cv2

        scale = max_size / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    frame = np.ascontiguousarray(frame)
    frame.flags.writeable = False  # MediaPipe then reads it in place
    return frame


class Extractor:
    """One Holistic, made at the first video and restarted for each next one."""

    def __init__(self, settings: ExtractSettings):
        self.settings = settings
        self._holistic: Any = None
        self._used = False

    def _start(self) -> Any:
        s = self.settings
        with stderr_to(None):
            if self._holistic is None:
                from mediapipe.python.solutions import holistic

                self._holistic = holistic.Holistic(
                    static_image_mode=False,
                    model_complexity=s.model_complexity,
                    smooth_landmarks=True,
                    refine_face_landmarks=False,
                    min_detection_confidence=s.min_detection_confidence,
                    min_tracking_confidence=s.min_tracking_confidence,
                )
            elif self._used:
                self._holistic.reset()  # no tracking or smoothing across videos
        self._used = True
        return self._holistic

    def close(self) -> None:
        if self._holistic is not None:
            self._holistic.close()
            self._holistic = None

    def landmarks(self, job: Job) -> tuple[dict[str, np.ndarray], VideoResult]:
        """The arrays of one video's segment (raises when it cannot be decoded)."""
        s = self.settings
        vr = open_video(job.path)
        end = len(vr) if job.end < 0 else min(job.end, len(vr))
        idx = np.arange(job.start, end, s.stride, dtype=np.int64)
        t = len(idx)
        if t == 0:
            raise ValueError(f"no frames in the segment [{job.start}, {end})")
        arrays = {p: np.full((t, *SHAPES[p]), np.nan, np.float32) for p in SHAPES}
        arrays["face"] = np.full((t, s.face_points, 3), np.nan, np.float32)
        face_idx = None if s.face_indices is None else np.asarray(s.face_indices)
        bbox = job.bbox if s.crop_bbox else None
        holistic = self._start()
        for a in range(0, t, CHUNK):
            frames = vr.get_batch(idx[a : a + CHUNK].tolist()).asnumpy()
            for k, frame in enumerate(frames):
                img = prepare_frame(frame, bbox, s.max_size)
                with stderr_to(None) if a + k == 0 else contextlib.nullcontext():
                    res = holistic.process(img)
                found = {
                    "pose": _points(res.pose_landmarks, True),
                    "left_hand": _points(res.left_hand_landmarks, False),
                    "right_hand": _points(res.right_hand_landmarks, False),
                    "face": _points(res.face_landmarks, False),
                }
                if found["face"] is not None and face_idx is not None:
                    found["face"] = found["face"][face_idx]
                for part, pts in found.items():
                    if pts is not None:
                        arrays[part][a + k] = pts
        arrays["fps"] = np.float32(vr.get_avg_fps())
        arrays["frame_indices"] = idx
        detected = {p: int(np.isfinite(arrays[p]).any(axis=(1, 2)).sum()) for p in PARTS}
        return arrays, VideoResult(job.id, frames=t, detected=detected)

    def rois(self, job: Job) -> tuple[dict[str, np.ndarray], VideoResult]:
        """The ROI arrays of one video's segment (see :mod:`engine.data.roi_cache`): the
        landmarks first, then the boxes over the whole segment (smoothing looks ahead),
        then a second decoding pass cuts the crops, so no more than :data:`CHUNK` frames
        are held in memory. Crops come from the frame Holistic saw before any shrinking
        (``max_size`` only speeds up Holistic; landmarks are normalised, so they fit)."""
        s = self.settings
        lms, result = self.landmarks(job)
        idx = lms["frame_indices"]
        t, size = len(idx), s.roi_size
        arrays: dict[str, np.ndarray] = {}
        for stream in IMAGE_STREAMS:
            arrays[stream] = np.zeros((t, size, size, 3), np.uint8)
        bbox = job.bbox if s.crop_bbox else None
        plan: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        vr = open_video(job.path)
        for a in range(0, t, CHUNK):
            frames = vr.get_batch(idx[a : a + CHUNK].tolist()).asnumpy()
            for k, frame in enumerate(frames):
                img = prepare_frame(frame, bbox, None)
                if not plan:
                    h, w = img.shape[:2]
                    plan = plan_boxes(lms, w, h, s.roi_options)
                for stream, (boxes, mask) in plan.items():
                    if mask[a + k]:
                        arrays[stream][a + k] = crop_square(img, boxes[a + k], size)
        if not plan:  # decord gave no frames the second time: never write unmasked zeros
            raise ValueError("the video's frames could not be decoded again for the crops")
        for stream, (_, mask) in plan.items():
            arrays[roi_cache.mask_key(stream)] = mask
        arrays["pose"] = pose_xyz(lms["pose"])
        arrays["frame_indices"] = idx
        arrays["fps"] = lms["fps"]
        result.detected = {
            **{st: int(arrays[roi_cache.mask_key(st)].sum()) for st in IMAGE_STREAMS},
            "pose": result.detected["pose"],
        }
        return arrays, result

    def run(self, job: Job) -> VideoResult:
        """Extract one video and write its npz; a failure comes back as ``error``."""
        t0 = time.perf_counter()
        try:
            if self.settings.rois:
                arrays, result = self.rois(job)
                roi_cache.write_sample(Path(job.out), arrays)  # compressed, atomic
            else:
                arrays, result = self.landmarks(job)
                write_npz(Path(job.out), arrays)  # compressed, atomic
        except Exception as exc:  # noqa: BLE001 - one bad video never stops the others
            return VideoResult(job.id, error=first_line(exc), seconds=time.perf_counter() - t0)
        result.seconds = time.perf_counter() - t0
        return result


# --------------------------------------------------------------------------- worker processes

_WORKER: Extractor | None = None


def init_worker(settings: ExtractSettings, log: str | None) -> None:
    """A pool worker's start: Ctrl-C is the parent's business, stderr goes to ``log``."""
    global _WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fd = os.open(log or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 2)
    os.close(fd)
    with contextlib.suppress(Exception):
        import cv2

        cv2.setNumThreads(1)
    _WORKER = Extractor(settings)


def work(job: Job) -> VideoResult:
    """A pool worker's task: one video with the worker's Holistic."""
    assert _WORKER is not None, "init_worker did not run"
    return _WORKER.run(job)


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    line = lines[0] if lines else type(exc).__name__
    if line.startswith("Error reading") or "DECORDError" in line:
        return "decord cannot decode it (not a video, truncated or an unsupported codec)"
    return line[:200]
