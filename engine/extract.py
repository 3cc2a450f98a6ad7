"""Landmark extraction: MediaPipe Holistic over the videos of a dataset, into a landmark cache.

The videos come from a video source's ``records(cfg)`` (``wlasl`` or ``video_folder``);
missing and unreadable files are counted and skipped (probed once, as ``slr data check``
does). ``max_glosses`` keeps the glosses with the most videos, ``samples_per_gloss`` caps
the videos of each (see :func:`select`). Each video's segment goes through Holistic as
:mod:`engine.holistic` describes (stride, maximum input size, optional bbox crop). The
cache has the layout :mod:`engine.data.landmarks` reads::

    OUT/landmarks/<id>.npz   pose (T,33,4) x,y,z,visibility; left_hand, right_hand (T,21,3);
                             face (T,F,3) (F = 468, or the configured subset); float32, NaN
                             where a part was not detected; fps (the video's); frame_indices
                             (T,) the 0-based frame numbers in the video
    OUT/manifest.csv         id,label,split,signer,frames
    OUT/classes.txt          class names in class-index order
    OUT/dataset.json         {"format": "slr-landmarks", "version": 1, "generator": ...}
    OUT/extract.log          what MediaPipe and the workers printed

Resumable: each npz is written to a temp file in its folder and renamed, so a file that
exists is whole; a rerun skips the ids whose npz is complete and deletes the temp files a
killed run left. The manifest lists only finished videos and is rewritten atomically at
the start, every half minute and at the end (also after Ctrl-C), so an interrupted run
leaves a valid cache. One cache holds one set of extraction settings; a lock file keeps a
second extraction out of it.

With ``rois`` on (``slr extract --rois``) the same Holistic pass writes an ROI cache
instead, the layout of :mod:`engine.data.roi_cache` (``OUT/rois/<id>.npz`` with ``face``,
``hand_left``, ``hand_right`` crops (T, S, S, 3) uint8, their masks, ``pose`` (T, 33, 3),
``frame_indices``, ``fps``; ``OUT/manifest.csv`` id,frames,label,split,signer;
``OUT/dataset.json`` of format ``slr-rois``); the boxes are made as :mod:`engine.rois`
says. Instead, not besides: the crops are what a translation run reads, and the pose it
needs is in the same file; one folder holds one kind of cache, so a rerun knows what to
resume. Resuming, the lock, temp files and the manifest work as for landmarks.

Parallel: ``workers`` spawned processes with one Holistic each, one video in flight per
worker, results as they finish; with one worker everything runs in this process.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.data import landmark_cache as lc
from engine.data import roi_cache as rc
from engine.data.landmark_cache import FACE_POINTS, PARTS
from engine.errors import DataError
from engine.holistic import (
    ExtractError,
    Extractor,
    ExtractSettings,
    Job,
    VideoResult,
    ensure_pose_model,
    init_worker,
    require_mediapipe,
    stderr_to,
    work,
)

if TYPE_CHECKING:
    from engine.config import RunConfig
    from engine.data.video_records import VideoRecord

GENERATOR_NAME = "mediapipe-holistic"
SOURCES = ("wlasl", "video_folder")
LOCK = ".extract.lock"
LOG = "extract.log"
FLUSH_S = 30.0  # manifest rewrite interval
DIED = "a worker process died while extracting it (or a video beside it); rerun to retry"

ProbeProgress = Callable[[int, int], None]
Progress = Callable[[int, int, int, float], None]  # videos done, total, frames done, frames/s
Plan = Callable[[dict[str, int]], None]


# --------------------------------------------------------------------------- selection


def select(
    records: Sequence[VideoRecord],
    num_classes: int,
    max_glosses: int | None = None,
    samples_per_gloss: int | None = None,
) -> tuple[list[VideoRecord], list[int]]:
    """The most frequent glosses and up to ``samples_per_gloss`` videos of each.

    Glosses rank by their number of videos in ``records`` (ties: class order; glosses
    without videos are never picked); the kept class indices come back in their original
    order. A gloss with more videos than
    ``samples_per_gloss`` keeps a share of each split in proportion to the split's size
    (largest remainders; each split it has keeps one when there is room), the first ones
    in record order. Deterministic."""
    labels = np.asarray([r.label for r in records], dtype=np.int64)
    counts = np.bincount(labels, minlength=num_classes)
    classes = list(range(num_classes))
    if max_glosses is not None:
        ranked = sorted((c for c in classes if counts[c]), key=lambda c: (-counts[c], c))
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


def check_out(out: Path, settings: ExtractSettings) -> None:
    """``out`` must be new, empty, or a cache of this extractor (landmarks, or ROI crops
    with ``settings.rois``) with the same settings."""
    kind = "ROI cache" if settings.rois else "landmark cache"
    if out.exists() and not out.is_dir():
        raise ExtractError(f"--out {out} is a file; give a folder for the {kind}")
    if not out.is_dir() or not any(p.name != LOCK for p in out.iterdir()):
        return
    meta = (rc if settings.rois else lc).read_dataset_json(out)
    if meta is None or (meta.get("generator") or {}).get("name") != GENERATOR_NAME:
        if settings.rois:
            other = lc.read_dataset_json(out) is not None
            hint = " (it is a landmark cache: leave out --rois to resume it)" if other else ""
        else:
            other = rc.read_dataset_json(out) is not None
            hint = " (it is an ROI cache: add --rois to resume it)" if other else ""
        raise ExtractError(
            f"{out} is not empty and is no {kind} of slr extract{hint}; give a new or empty "
            "folder as --out"
        )
    old, new = meta.get("extraction") or {}, settings.to_json()
    diff = [f"{k} {old.get(k)!r} there, {v!r} here" for k, v in new.items() if old.get(k) != v]
    folder = out / (rc.ROIS if settings.rois else lc.LANDMARKS)
    if diff and any(folder.rglob("*.npz")):
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


def write_manifest(
    out: Path, jobs: Sequence[Job], frames: dict[str, int], rois: bool = False
) -> int:
    """Rewrite ``manifest.csv`` (atomically) with the finished jobs; returns the rows.
    The two caches order the columns differently (each as its format module says)."""
    if rois:
        return rc.write_manifest(
            out, ((j.id, frames[j.id], j.label, j.split, j.signer) for j in jobs if j.id in frames)
        )
    rows = ((j.id, j.label, j.split, j.signer, frames[j.id]) for j in jobs if j.id in frames)
    return lc.write_manifest(out, rows)


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
    if settings.rois:
        checks += [
            (
                16 <= settings.roi_size <= 1024,
                f"--roi-size must be 16 to 1024 pixels, not {settings.roi_size}",
            ),
            (
                0 <= settings.roi_margin <= 2,
                f"--roi-margin must be 0 to 2 (a share of the box), not {settings.roi_margin}",
            ),
            (settings.roi_hold >= 0, f"--roi-hold must be 0 or more, not {settings.roi_hold}"),
            (settings.roi_smooth >= 0, f"roi_smooth must be 0 or more, not {settings.roi_smooth}"),
            (
                settings.face_indices is None,
                "--face-indices is for the landmark cache; an ROI cache keeps no face points",
            ),
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
    on_plan: Plan | None = None,
    on_progress: Progress | None = None,
) -> dict[str, Any]:
    """Extract the landmarks of ``cfg``'s videos (with ``settings.rois``: their face and
    hand crops) into the cache ``out`` (see the module docstring) and return a summary:
    counts, frames, frames/s, detection rate per part (for ROIs: the share of frames with
    each crop, and with a pose), failures with reasons. ``limit`` caps the videos
    extracted in this run.

    ``on_probe(done, total)`` follows the probing of the videos, ``on_plan(counts)`` gets
    what will be done, ``on_progress(videos done, total, frames done, frames/s)`` follows
    the work (first with 0 done). Raises ExtractError / DataError (one line) before any
    work when it cannot run; Ctrl-C stops it with a valid cache (``"interrupted"``)."""
    # only the video sources have crop_bbox; any other is refused below, by dataset_records
    settings = settings or ExtractSettings(crop_bbox=getattr(cfg.data, "crop_bbox", False))
    _check_args(settings, workers, max_glosses, samples_per_gloss, limit)
    out = Path(out).expanduser()
    check_out(out, settings)
    version = require_mediapipe()
    ensure_pose_model(settings.model_complexity, model_file)
    root, names, records, signers, source_info = dataset_records(cfg)
    if out.resolve() == root.resolve():
        raise ExtractError(f"--out {out} is the dataset folder itself; give another folder")

    from engine.data.video import segment
    from engine.data.video_records import resolve

    res = resolve(records, root, on_probe)
    if not res.usable:
        raise ExtractError(
            f"{root}: no usable videos ({len(records)} listed, {len(res.missing)} missing, "
            f"{len(res.unreadable)} unreadable); run 'slr data check' for details"
        )
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
                str((rc if settings.rois else lc).npz_path(out, sid)),
                names[r.label],
                r.split,
                signers.get(r.id, ""),
                *segment(r.frame_start, r.frame_end, res.probes[r.path].frames),
                r.bbox,
            )
        )

    meta = {
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
    }
    if settings.rois:
        meta["roi_size"] = settings.roi_size
        meta["streams"] = list(rc.STREAMS)
    else:
        meta["parts"] = lc.parts_meta(settings.face_points)
        meta["face_indices"] = settings.to_json()["face_indices"]
    out.mkdir(parents=True, exist_ok=True)
    with _locked(out):
        cleaned = (rc if settings.rois else lc).remove_temp_files(out)
        done: dict[str, int] = {}
        for j in jobs:
            frames = (
                rc.complete_frames(Path(j.out))
                if settings.rois
                else lc.complete_frames(Path(j.out), settings.face_points)
            )
            if frames is not None:
                done[j.id] = frames
        skipped = len(done)
        todo = [j for j in jobs if j.id not in done][:limit]

        def save() -> int:
            stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
            if settings.rois:
                n = write_manifest(out, jobs, done, rois=True)
                rc.write_dataset_json(out, {**meta, "samples": n, "updated": stamp})
                return n
            lc.write_classes(out, class_names)
            n = write_manifest(out, jobs, done)
            lc.write_dataset_json(out, {**meta, "samples": n, "updated": stamp})
            return n

        save()
        if on_plan:
            on_plan(
                {
                    "listed": len(records),
                    "missing": len(res.missing),
                    "unreadable": len(res.unreadable),
                    "selected": len(jobs),
                    "classes": len(class_names),
                    "skipped": skipped,
                    "todo": len(todo),
                    "workers": min(workers, max(len(todo), 1)),
                }
            )
        if on_progress:
            on_progress(0, len(todo), 0, 0.0)
        results: list[VideoResult] = []
        interrupted = False
        t0 = last = time.perf_counter()
        frames_done = 0
        running = _run(todo, settings, workers, out / LOG)
        try:
            for r in running:
                results.append(r)
                if r.error is None:
                    done[r.id] = r.frames
                frames_done += r.frames
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
            with _deferred_interrupts(raise_after=not interrupted):
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
        "cache": "rois" if settings.rois else "landmarks",
        "roi_size": settings.roi_size if settings.rois else None,
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
            for p in (rc.STREAMS if settings.rois else PARTS)
        },
        "failures": failures,
        "manifest_rows": rows,
        "temp_files_removed": cleaned,
        "workers": min(workers, max(len(todo), 1)),
        "interrupted": interrupted,
    }


@contextlib.contextmanager
def _deferred_interrupts(raise_after: bool = True) -> Iterator[None]:
    """Ctrl-C waits while the cache is finalised (a second one would break it off), then
    raises KeyboardInterrupt (unless ``raise_after`` is false: one is being handled)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    old = signal.signal(signal.SIGINT, lambda sig, frame: caught.append(sig))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
    if caught and raise_after:
        raise KeyboardInterrupt


def _run(
    todo: list[Job], settings: ExtractSettings, workers: int, log: Path
) -> Iterator[VideoResult]:
    """Results as videos finish: in this process for one worker, else worker processes."""
    if not todo:
        return
    if min(workers, len(todo)) == 1:
        ex = Extractor(settings)
        try:
            for job in todo:
                with stderr_to(log):
                    result = ex.run(job)
                yield result
        finally:
            ex.close()
        return
    queue = list(reversed(todo))
    while queue:
        lived = 0
        for r in _pool(queue, settings, min(workers, len(queue)), log):
            lived += r.error != DIED
            yield r
        if queue and not lived:
            raise ExtractError(
                f"the worker processes died before finishing any video (see {log}); try --workers 1"
            )


def _pool(
    queue: list[Job], settings: ExtractSettings, workers: int, log: Path
) -> Iterator[VideoResult]:
    """Run jobs popped from ``queue`` on ``workers`` spawned processes, one video in flight
    per worker. A worker that dies (a crash in MediaPipe, the OOM killer) fails the videos
    in flight and ends this pool; the caller starts another for the rest. (A
    multiprocessing.Pool would wait for the lost videos forever.)"""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=init_worker,
        initargs=(settings, str(log)),
    )
    running: dict[Any, Job] = {}
    clean = False
    try:
        while queue or running:
            while queue and len(running) < workers:
                job = queue.pop()
                running[pool.submit(work, job)] = job
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            broken = False
            for fut in finished:
                job = running.pop(fut)
                try:
                    yield fut.result()
                except BrokenProcessPool:
                    broken = True
                    yield VideoResult(job.id, error=DIED)
            if broken:
                for job in running.values():
                    yield VideoResult(job.id, error=DIED)
                running.clear()
                return
        clean = True
    finally:
        if not clean:  # Ctrl-C or a dead worker: stop the others now
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                with contextlib.suppress(Exception):
                    proc.terminate()
        pool.shutdown(wait=clean, cancel_futures=True)


__all__ = [
    "DataError",
    "ExtractError",
    "ExtractSettings",
    "ensure_pose_model",
    "extract",
    "select",
]
