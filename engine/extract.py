"""Landmark extraction: MediaPipe Holistic over the videos of a dataset, into a landmark cache.

The videos come from a video source's ``records(cfg)`` (``wlasl`` or ``video_folder``);
missing and unreadable files are counted and skipped (probed once, as ``slr data check``
does). Each video's segment ``[frame_start, frame_end]`` goes through Holistic (tracking
mode, ``refine_face_landmarks`` off), every ``stride``-th frame, optionally cropped to the
signer's bbox (``data.crop_bbox``) and downscaled so its long side is at most ``max_size``
(landmarks are normalised image coordinates, so they stay valid). The cache is the layout
:mod:`engine.data.landmarks` reads::

    OUT/landmarks/<id>.npz   pose (T,33,4) x,y,z,visibility; left_hand, right_hand (T,21,3);
                             face (T,F,3) (F = 468, or the configured subset); float32, NaN
                             where a part was not detected; fps (the video's); frame_indices
                             (T,) 0-based frame numbers in the video
    OUT/manifest.csv         id,label,split,signer,frames
    OUT/classes.txt          class names in class-index order
    OUT/dataset.json         {"format": "slr-landmarks", "version": 1, "generator": ...}

Resumable: each npz is written to a temp file in its folder and renamed, so a file that
exists is whole; a rerun skips the ids whose npz is complete and removes temp files a
killed run left. The manifest lists only finished videos and is rewritten atomically at
the start, every half minute and at the end (also after Ctrl-C), so an interrupted run
leaves a valid cache. One cache holds one set of extraction settings.

Parallel: a ``spawn`` process pool, one Holistic per worker, ``imap_unordered`` over
videos; one worker runs in this process. The pose model of complexity 1 ships in the
mediapipe 0.10.21 wheel; 0 and 2 are downloaded at first use, which fails offline, so
they run only when the model file is in the package or given with ``model_file``.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import io
import json
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.data.video_probe import atomic_write_text
from engine.errors import DataError

if TYPE_CHECKING:
    from engine.config import RunConfig
    from engine.data.video_records import VideoRecord

GENERATOR_NAME = "mediapipe-holistic"
MEDIAPIPE_VERSION = "0.10.21"
FACE_POINTS = 468
PARTS = ("pose", "left_hand", "right_hand", "face")
SHAPES = {"pose": (33, 4), "left_hand": (21, 3), "right_hand": (21, 3)}
POSE_MODELS = {
    0: "pose_landmark_lite.tflite",
    1: "pose_landmark_full.tflite",
    2: "pose_landmark_heavy.tflite",
}
MODEL_URL = "https://storage.googleapis.com/mediapipe-assets/"
SOURCES = ("wlasl", "video_folder")
TMP_SUFFIX = ".tmp"
LOCK = ".extract.lock"
CHUNK = 32  # frames decoded at a time
FLUSH_S = 30.0  # manifest rewrite interval

ProbeProgress = Callable[[int, int], None]
Progress = Callable[[int, int, int, float], None]  # videos done, total, frames done, frames/s


class ExtractError(Exception):
    """Extraction cannot run as asked; the message is one line (what, why, what to do)."""


@dataclass(frozen=True)
class ExtractSettings:
    """What decides the landmarks of a video; one cache holds one setting."""

    model_complexity: int = 1
    stride: int = 1
    max_size: int | None = None
    crop_bbox: bool = False
    face_indices: tuple[int, ...] | None = None  # None: all 468 face points
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5

    @property
    def face_points(self) -> int:
        return FACE_POINTS if self.face_indices is None else len(self.face_indices)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["face_indices"] = None if self.face_indices is None else list(self.face_indices)
        return d


@dataclass(frozen=True)
class Job:
    """One video to extract (picklable: it travels to the worker processes)."""

    id: str
    path: str
    out: str
    label: str
    split: str
    signer: str = ""
    frame_start: int = 1  # 1-based, inclusive (as in VideoRecord)
    frame_end: int = -1
    bbox: tuple[int, int, int, int] | None = None


@dataclass
class VideoResult:
    id: str
    frames: int = 0
    detected: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0


# --------------------------------------------------------------------------- mediapipe


def require_mediapipe() -> str:
    """The installed mediapipe version (ExtractError when it cannot be imported)."""
    try:
        import mediapipe
        from mediapipe.python.solutions import holistic  # noqa: F401
    except ImportError as exc:
        raise ExtractError(
            f"mediapipe cannot be imported ({_first_line(exc)}); install it with "
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
    """Make sure Holistic's pose model for ``complexity`` is inside the mediapipe package,
    copying ``model_file`` there when given; returns its path. Holistic would otherwise try
    to download it at first use, which fails offline (ExtractError saying how to fix it)."""
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
    src = Path(model_file).expanduser()
    if not src.is_file():
        raise ExtractError(f"--model-file {src}: no such file")
    with open(src, "rb") as fh:
        head = fh.read(8)
    if head[4:8] != b"TFL3":
        raise ExtractError(f"--model-file {src} is not a TFLite model (expected {name})")
    if target.is_file() and _same_file(src, target):
        return target
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=TMP_SUFFIX, dir=target.parent)
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out)
        os.replace(tmp, target)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise ExtractError(
            f"cannot copy {src} into the mediapipe package ({exc.strerror or exc}); "
            f"copy it yourself: cp {src} {target}"
        ) from None
    return target


def _same_file(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    return a.read_bytes() == b.read_bytes()


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2: MediaPipe's C++ logs warnings there when a graph starts."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


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


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an npz atomically: a temp file in the same folder, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Extractor:
    """One Holistic (made at the first video, restarted for each next one)."""

    def __init__(self, settings: ExtractSettings):
        self.settings = settings
        self._holistic: Any = None
        self._used = False

    def _start(self) -> Any:
        s = self.settings
        with _quiet_stderr():
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
        """The arrays of one video (raises on a video that cannot be decoded)."""
        from engine.data.video import open_video, segment

        s = self.settings
        vr = open_video(job.path)
        start, end = segment(job.frame_start, job.frame_end, len(vr))
        idx = np.arange(start, end, s.stride, dtype=np.int64)
        t = len(idx)
        arrays = {p: np.full((t, *SHAPES[p]), np.nan, np.float32) for p in SHAPES}
        arrays["face"] = np.full((t, s.face_points, 3), np.nan, np.float32)
        face_idx = None if s.face_indices is None else np.asarray(s.face_indices)
        holistic = self._start()
        for a in range(0, t, CHUNK):
            frames = vr.get_batch(idx[a : a + CHUNK].tolist()).asnumpy()
            for k, frame in enumerate(frames):
                img = prepare_frame(frame, job.bbox if s.crop_bbox else None, s.max_size)
                if a + k == 0:
                    with _quiet_stderr():
                        res = holistic.process(img)
                else:
                    res = holistic.process(img)
                found = {
                    "pose": _points(res.pose_landmarks, True),
                    "left_hand": _points(res.left_hand_landmarks, False),
                    "right_hand": _points(res.right_hand_landmarks, False),
                    "face": _points(res.face_landmarks, False),
                }
                for part, pts in found.items():
                    if pts is None:
                        continue
                    if part == "face" and face_idx is not None:
                        pts = pts[face_idx]
                    arrays[part][a + k] = pts
        arrays["fps"] = np.float32(vr.get_avg_fps())
        arrays["frame_indices"] = idx
        detected = {p: int(np.isfinite(arrays[p]).any(axis=(1, 2)).sum()) for p in PARTS}
        return arrays, VideoResult(job.id, frames=t, detected=detected)

    def run(self, job: Job) -> VideoResult:
        """Extract one video and write its npz; failures come back as ``error``."""
        t0 = time.perf_counter()
        try:
            arrays, result = self.landmarks(job)
            if result.frames == 0:
                raise ValueError("no frames in the segment")
            write_npz(Path(job.out), arrays)
        except Exception as exc:  # noqa: BLE001 - one bad video never stops the others
            return VideoResult(job.id, error=_first_line(exc), seconds=time.perf_counter() - t0)
        result.seconds = time.perf_counter() - t0
        return result


_WORKER: Extractor | None = None


def _init_worker(settings: ExtractSettings) -> None:
    global _WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    with contextlib.suppress(Exception):
        import cv2

        cv2.setNumThreads(1)
    _WORKER = Extractor(settings)


def _work(job: Job) -> VideoResult:
    assert _WORKER is not None
    return _WORKER.run(job)


# --------------------------------------------------------------------------- selection


def select(
    records: Sequence[VideoRecord],
    num_classes: int,
    max_glosses: int | None = None,
    samples_per_gloss: int | None = None,
) -> tuple[list[VideoRecord], list[int]]:
    """The most frequent glosses and up to ``samples_per_gloss`` videos of each.

    Glosses rank by their number of videos in ``records`` (ties: class order); the kept
    class indices come back in their original order. A gloss with more videos than
    ``samples_per_gloss`` keeps a share of each split in proportion to the split's size
    (largest remainders; each split it has keeps one when there is room), the first ones
    in record order. Deterministic."""
    counts = np.bincount([r.label for r in records], minlength=num_classes)
    classes = list(range(num_classes))
    if max_glosses is not None:
        ranked = sorted(classes, key=lambda c: (-counts[c], c))
        classes = sorted(ranked[:max_glosses])
    keep = set(classes)
    rows = [r for r in records if r.label in keep]
    if samples_per_gloss is not None:
        per_class: dict[int, list[int]] = {}
        for i, r in enumerate(rows):
            per_class.setdefault(r.label, []).append(i)
        chosen: set[int] = set()
        for mine in per_class.values():
            chosen.update(_cap(mine, [rows[i].split for i in mine], samples_per_gloss))
        rows = [r for i, r in enumerate(rows) if i in chosen]
    return rows, classes


def _cap(items: list[int], splits: list[str], n: int) -> list[int]:
    if len(items) <= n:
        return items
    names = list(dict.fromkeys(splits))
    size = {s: splits.count(s) for s in names}
    share = {s: n * size[s] / len(items) for s in names}
    quota = {s: int(share[s]) for s in names}
    for s in sorted(names, key=lambda s: -(share[s] - quota[s]))[: n - sum(quota.values())]:
        quota[s] += 1
    for s in names:  # every split keeps one video if another split can spare it
        if quota[s] == 0:
            donor = max(names, key=lambda d: quota[d])
            if quota[donor] > 1:
                quota[donor] -= 1
                quota[s] = 1
    taken = {s: 0 for s in names}
    out = []
    for item, s in zip(items, splits, strict=True):
        if taken[s] < quota[s]:
            taken[s] += 1
            out.append(item)
    return out


# --------------------------------------------------------------------------- the cache


def safe_id(sid: str) -> str:
    """An id usable as a path below ``landmarks/`` (no absolute paths, no ``..``)."""
    parts = [p for p in PurePosixPath(sid.replace("\\", "/")).parts if p not in ("/", "")]
    parts = ["_" if p in (".", "..") else p for p in parts]
    return "/".join(parts) or "_"


def npz_path(out: Path, sid: str) -> Path:
    return out / "landmarks" / f"{sid}.npz"


def cached_frames(path: Path, face_points: int) -> int | None:
    """Frames in a finished npz; None when it is absent, unreadable or incomplete."""
    from engine.data.landmarks import npz_shapes

    if not path.is_file():
        return None
    try:
        shapes = npz_shapes(path)
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None
    t = shapes.get("frame_indices")
    if t is None or len(t) != 1 or t[0] < 1 or "fps" not in shapes:
        return None
    want = {**SHAPES, "face": (face_points, 3)}
    if any(shapes.get(p) != (t[0], *tail) for p, tail in want.items()):
        return None
    return int(t[0])


def remove_temp_files(out: Path) -> int:
    """Delete the temp files a killed run left in ``landmarks/``; returns how many."""
    n = 0
    folder = out / "landmarks"
    if folder.is_dir():
        for f in folder.rglob(f".*{TMP_SUFFIX}"):
            with contextlib.suppress(OSError):
                f.unlink()
                n += 1
    return n


def _read_meta(out: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((out / "dataset.json").read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def check_out(out: Path, settings: ExtractSettings) -> None:
    """``out`` must be new, empty, or a cache of this extractor with the same settings."""
    if out.exists() and not out.is_dir():
        raise ExtractError(f"--out {out} is a file; give a folder for the landmark cache")
    if not out.is_dir() or not any(p.name != LOCK for p in out.iterdir()):
        return
    meta = _read_meta(out)
    if (
        meta is None
        or meta.get("format") != "slr-landmarks"
        or (meta.get("generator") or {}).get("name") != GENERATOR_NAME
    ):
        raise ExtractError(
            f"{out} is not empty and is no landmark cache of slr extract (no dataset.json of "
            "mediapipe-holistic); give a new or empty folder as --out"
        )
    old, new = meta.get("extraction") or {}, settings.to_json()
    diff = [f"{k} {old.get(k)!r} there, {v!r} here" for k, v in new.items() if old.get(k) != v]
    if diff and any((out / "landmarks").rglob("*.npz")):
        raise ExtractError(
            f"{out} holds landmarks extracted with other settings ({'; '.join(diff)}); "
            "use the same settings to resume, or another --out"
        )


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """One extraction at a time writes to ``out``."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Windows
        yield
        return
    with open(out / LOCK, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ExtractError(
                f"another slr extract is writing to {out}; wait for it or use another --out"
            ) from None
        yield


def write_manifest(out: Path, jobs: Sequence[Job], frames: dict[str, int]) -> int:
    """Rewrite ``manifest.csv`` (atomically) with the finished jobs; returns the rows."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "label", "split", "signer", "frames"])
    n = 0
    for j in jobs:
        if j.id in frames:
            w.writerow([j.id, j.label, j.split, j.signer, frames[j.id]])
            n += 1
    atomic_write_text(out / "manifest.csv", buf.getvalue())
    return n


# --------------------------------------------------------------------------- the dataset


def dataset_records(
    cfg: RunConfig,
) -> tuple[Path, list[str], list[VideoRecord], dict[str, str], dict[str, Any]]:
    """(root, class names, records, signer per id, a description) of a video source."""
    source = cfg.data.source
    if source == "wlasl":
        from engine.data import wlasl

        root, meta, rows = wlasl.records(cfg)
        signers = {
            e.video_id: str(e.signer_id)
            for e in meta.entries
            if e.signer_id is not None and e.signer_id >= 0
        }
        info = {"metadata": str(meta.path), "subset": cfg.data.subset}
        return root, list(meta.class_names), rows, signers, info
    if source == "video_folder":
        from engine.data import video_folder

        root, layout, names, rows = video_folder.records(cfg)
        return root, names, rows, {}, {"layout": layout}
    raise ExtractError(
        f"data.source is '{source}', but slr extract reads videos ({', '.join(SOURCES)}); "
        "use a WLASL preset or --set data.source=video_folder"
    )


def _check_args(
    settings: ExtractSettings,
    workers: int,
    max_glosses: int | None,
    samples_per_gloss: int | None,
    limit: int | None,
) -> None:
    checks = [
        (workers >= 1, f"--workers must be at least 1, not {workers}"),
        (settings.stride >= 1, f"--stride must be at least 1, not {settings.stride}"),
        (
            settings.max_size is None or settings.max_size >= 16,
            f"--max-size must be at least 16 pixels, not {settings.max_size}",
        ),
        (max_glosses is None or max_glosses >= 1, "--max-glosses must be at least 1"),
        (
            samples_per_gloss is None or samples_per_gloss >= 1,
            "--samples-per-gloss must be at least 1",
        ),
        (limit is None or limit >= 1, "--limit must be at least 1"),
    ]
    if settings.face_indices is not None:
        bad = [i for i in settings.face_indices if not 0 <= i < FACE_POINTS]
        checks.append((not bad, f"face indices must be in 0..{FACE_POINTS - 1}, not {bad[:3]}"))
        checks.append((len(settings.face_indices) > 0, "face indices: give at least one"))
        checks.append(
            (len(set(settings.face_indices)) == len(settings.face_indices), "a face index repeats")
        )
    for ok, msg in checks:
        if not ok:
            raise ExtractError(msg)


def extract(
    cfg: RunConfig,
    out: str | Path,
    settings: ExtractSettings | None = None,
    *,
    workers: int = 1,
    max_glosses: int | None = None,
    samples_per_gloss: int | None = None,
    limit: int | None = None,
    model_file: str | Path | None = None,
    on_probe: ProbeProgress | None = None,
    on_progress: Progress | None = None,
) -> dict[str, Any]:
    """Extract the landmarks of ``cfg``'s videos into the cache ``out`` (see the module
    docstring); returns a summary. ``limit`` caps the videos extracted in this run.
    Raises ExtractError / DataError (one line) before any work when it cannot run; Ctrl-C
    stops it with a valid cache (``summary["interrupted"]``)."""
    settings = settings or ExtractSettings(crop_bbox=cfg.data.crop_bbox)
    _check_args(settings, workers, max_glosses, samples_per_gloss, limit)
    out = Path(out).expanduser()
    check_out(out, settings)
    version = require_mediapipe()
    ensure_pose_model(settings.model_complexity, model_file)
    root, names, records, signers, source_info = dataset_records(cfg)
    if out.resolve() == root.resolve():
        raise ExtractError(f"--out {out} is the dataset folder itself; give another folder")

    from engine.data.video_records import resolve

    res = resolve(records, root, on_probe)
    chosen, classes = select(res.usable, len(names), max_glosses, samples_per_gloss)
    class_names = [names[c] for c in classes]
    jobs, seen = [], set()
    for r in chosen:
        sid = safe_id(r.id)
        while sid in seen:
            sid += "_"
        seen.add(sid)
        jobs.append(
            Job(
                sid,
                str(r.path),
                str(npz_path(out, sid)),
                names[r.label],
                r.split,
                signers.get(r.id, ""),
                r.frame_start,
                r.frame_end,
                r.bbox,
            )
        )

    meta = {
        "format": "slr-landmarks",
        "version": 1,
        "generator": {
            "name": GENERATOR_NAME,
            "version": version,
            "model_complexity": settings.model_complexity,
            "refine_face_landmarks": False,
            "static_image_mode": False,
        },
        "extraction": settings.to_json(),
        "selection": {"max_glosses": max_glosses, "samples_per_gloss": samples_per_gloss},
        "source": {"source": cfg.data.source, "root": str(root), **source_info},
        "parts": {
            "pose": [33, 4],
            "left_hand": [21, 3],
            "right_hand": [21, 3],
            "face": [settings.face_points, 3],
        },
        "face_indices": settings.to_json()["face_indices"],
    }
    out.mkdir(parents=True, exist_ok=True)
    with _locked(out):
        cleaned = remove_temp_files(out)
        done: dict[str, int] = {}
        for j in jobs:
            frames = cached_frames(Path(j.out), settings.face_points)
            if frames is not None:
                done[j.id] = frames
        skipped = len(done)
        todo = [j for j in jobs if j.id not in done][:limit]

        def save() -> int:
            stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
            (out / "classes.txt").write_text("\n".join(class_names) + "\n")
            n = write_manifest(out, jobs, done)
            text = json.dumps({**meta, "samples": n, "updated": stamp}, indent=2) + "\n"
            atomic_write_text(out / "dataset.json", text)
            return n

        save()
        results: list[VideoResult] = []
        interrupted = False
        t0 = last = time.perf_counter()
        running = _run(todo, settings, workers)
        try:
            for r in running:
                results.append(r)
                if r.error is None:
                    done[r.id] = r.frames
                frames_done = sum(x.frames for x in results)
                now = time.perf_counter()
                if on_progress:
                    rate = frames_done / max(now - t0, 1e-9)
                    on_progress(len(results), len(todo), frames_done, rate)
                if now - last > FLUSH_S:
                    save()
                    last = now
        except KeyboardInterrupt:
            interrupted = True
        finally:
            running.close()  # stops the pool's workers
            rows = save()
        seconds = time.perf_counter() - t0

    frames = sum(r.frames for r in results)
    kept = set(classes)
    failures = [{"id": r.id, "reason": r.error} for r in results if r.error]
    failures += [{"id": r.id, "reason": "missing"} for r in res.missing if r.label in kept]
    failures += [
        {"id": r.id, "reason": res.probes[r.path].error} for r in res.unreadable if r.label in kept
    ]
    return {
        "out": str(out),
        "listed": len(records),
        "missing": len(res.missing),
        "unreadable": len(res.unreadable),
        "selected": len(jobs),
        "classes": len(class_names),
        "skipped": skipped,
        "extracted": sum(r.error is None for r in results),
        "failed": sum(r.error is not None for r in results),
        "remaining": len(jobs) - len(done),
        "frames": frames,
        "seconds": seconds,
        "frames_per_s": frames / seconds if seconds > 0 else 0.0,
        "detection": {
            p: (sum(r.detected.get(p, 0) for r in results) / frames if frames else None)
            for p in PARTS
        },
        "failures": failures,
        "manifest_rows": rows,
        "temp_files_removed": cleaned,
        "workers": workers,
        "interrupted": interrupted,
    }


def _run(todo: list[Job], settings: ExtractSettings, workers: int) -> Iterator[VideoResult]:
    """Results as videos finish: in this process for one worker, else a spawn pool."""
    if not todo:
        return
    workers = min(workers, len(todo))
    if workers == 1:
        ex = Extractor(settings)
        try:
            for job in todo:
                yield ex.run(job)
        finally:
            ex.close()
        return
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(settings,)) as pool:
        yield from pool.imap_unordered(_work, todo, chunksize=1)
        pool.close()
        pool.join()


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    line = lines[0] if lines else type(exc).__name__
    if line.startswith("Error reading"):  # decord's whole message
        return "decord cannot decode it (not a video, truncated or an unsupported codec)"
    return line[:200]


__all__ = [
    "DataError",
    "ExtractError",
    "ExtractSettings",
    "Extractor",
    "cached_frames",
    "ensure_pose_model",
    "extract",
    "select",
]
