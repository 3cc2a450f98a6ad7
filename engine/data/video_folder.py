"""The video-folder source: your own videos, one clip per sample.

Two layouts under ``data.root``:

- folders: ``root/{train,val,test}/<class>/<clip>.mp4`` (any of .mp4 .avi .mov .mkv .webm
  .m4v .mpg .mpeg; ``valid``/``validation`` count as ``val``);
- a CSV manifest with columns ``path,label,split`` (``path`` relative to the root or
  absolute): ``data.metadata``, else ``root/manifest.csv``.

Classes: ``root/classes.txt`` (one name a line, in class-index order) when present, else the
sorted class names found. Whole videos are used. Missing and unreadable files are counted
and skipped, as for WLASL.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from engine.config import VideoOptions
from engine.data.decode import VIDEO_SUFFIXES
from engine.errors import DataError

if TYPE_CHECKING:
    from engine.config import RunConfig
    from engine.data.base import DataBundle
    from engine.data.video_records import VideoRecord

MANIFEST = "manifest.csv"
CLASSES = "classes.txt"
ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
COLUMNS = ("path", "label", "split")

Row = tuple[str, Path, str, str]  # id, path, label name, split


class VideoFolderData(VideoOptions):
    """``data.*`` of the ``video_folder`` source: where the manifest is, plus the video
    options."""

    source: Literal["video_folder"] = "video_folder"
    metadata: str | None = Field(
        None,
        description="A CSV manifest (path,label,split; a name in data.root or a path). "
        "Default: root/manifest.csv if there is one, else the train/val/test folders.",
    )


def _classes(root: Path, found: list[str], where: str) -> list[str]:
    f = root / CLASSES
    if not f.is_file():
        return sorted(set(found))
    names = [line.strip() for line in f.read_text().splitlines() if line.strip()]
    unknown = sorted(set(found) - set(names))
    if unknown:
        raise DataError(f"{where}: label(s) {', '.join(unknown[:5])} are not in {f}; add them")
    return names


def folder_rows(root: Path) -> list[Row]:
    rows: list[Row] = []
    for split_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        split = ALIASES.get(split_dir.name.lower())
        if split is None:
            continue
        for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            for f in sorted(class_dir.iterdir()):
                if f.is_file() and f.suffix.lower() in VIDEO_SUFFIXES:
                    sid = f.relative_to(root).with_suffix("").as_posix()
                    rows.append((sid, f, class_dir.name, split))
    return rows


def manifest_rows(root: Path, manifest: Path) -> list[Row]:
    rows: list[Row] = []
    with open(manifest, newline="") as fh:
        reader = csv.DictReader(fh)
        absent = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if absent:
            raise DataError(
                f"{manifest}: missing column(s) {', '.join(absent)}; expected path,label,split"
            )
        for line, row in enumerate(reader, 2):
            rel, label, split = (str(row[c] or "").strip() for c in COLUMNS)
            if not rel or not label:
                raise DataError(f"{manifest} line {line}: empty path or label")
            if split.lower() not in ALIASES:
                raise DataError(
                    f"{manifest} line {line}: split '{split}' is not one of train, val, test"
                )
            p = Path(rel).expanduser()
            p = p if p.is_absolute() else root / p
            rows.append((Path(rel).with_suffix("").as_posix(), p, label, ALIASES[split.lower()]))
    return rows


def records(cfg: RunConfig) -> tuple[Path, str, list[str], list[VideoRecord]]:
    """The root, a description of the layout, class names and one record per video."""
    from engine.data.video_records import VideoRecord

    d = cfg.data
    if not d.root:
        raise DataError(
            "data.root is not set; point it at a folder of train/val/test/<class>/ videos "
            "or a folder with manifest.csv"
        )
    root = Path(d.root).expanduser()
    if not root.is_dir():
        raise DataError(f"video folder {root} does not exist; set data.root")
    manifest = None
    if d.metadata:
        manifest = Path(d.metadata).expanduser()
        manifest = manifest if manifest.is_absolute() or manifest.is_file() else root / manifest
        if not manifest.is_file():
            raise DataError(f"data.metadata: no manifest {d.metadata} (looked in {root} and here)")
    elif (root / MANIFEST).is_file():
        manifest = root / MANIFEST
    if manifest is not None:
        rows, layout = manifest_rows(root, manifest), str(manifest)
    else:
        if not any((root / s).is_dir() for s in ALIASES):
            raise DataError(
                f"{root} has neither train/ val/ test/ folders nor {MANIFEST}; "
                "use root/<split>/<class>/<clip>.mp4 or a path,label,split CSV"
            )
        rows, layout = folder_rows(root), "folders"
    if not rows:
        raise DataError(f"{root}: no videos found ({layout}); expected {', '.join(VIDEO_SUFFIXES)}")
    names = _classes(root, [r[2] for r in rows], str(layout))
    index = {n: i for i, n in enumerate(names)}
    seen: set[str] = set()
    out = []
    for sid, path, label, split in rows:
        if sid in seen:
            raise DataError(f"{layout}: the video {sid} is listed twice")
        seen.add(sid)
        out.append(VideoRecord(sid, path, index[label], split))
    return root, layout, names, out


def _info(root: Path, layout: str) -> dict[str, Any]:
    return {"source": "video_folder", "root": str(root), "layout": layout}


def build(cfg: RunConfig) -> DataBundle:
    """The ``video_folder`` source; missing and unreadable videos are counted and skipped."""
    from engine.data.video_records import make_bundle, resolve

    root, layout, names, rows = records(cfg)
    return make_bundle(resolve(rows, root), names, cfg, _info(root, layout))


def check(cfg: RunConfig, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Per split listed/present/missing/unreadable/usable, and the class statistics."""
    from engine.data.video_records import report, resolve

    root, layout, names, rows = records(cfg)
    res = resolve(rows, root, progress)
    return {**_info(root, layout), **report(res, names)}
