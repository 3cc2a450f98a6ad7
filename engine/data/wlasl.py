"""The WLASL source: word-level ASL videos with the official metadata.

``data.root`` holds the metadata JSON and the videos as the official downloader leaves
them, ``videos/<video_id>.mp4`` (or the videos directly in the root). Metadata accepted:

- ``WLASL_v0.3.json`` (all 2,000 glosses) and the ``asl100/300/1000/2000.json`` files cut
  from it, in its schema: a list of ``{gloss, instances: [{video_id, split, frame_start,
  frame_end, bbox, fps, signer_id, ...}]}``;
- the I3D split files ``nslt_{100,300,1000,2000}.json``: ``{video_id: {subset, action:
  [class, frame_start, frame_end]}}``, with class names from ``wlasl_class_list.txt``
  (``index<TAB>gloss``) in the root or beside the file, else ``class_<i>``.

Found in the root in this order, unless ``data.metadata`` names one: ``WLASL_v*.json``,
the smallest ``asl{N}.json`` with N >= ``data.subset``, the smallest ``nslt_{N}.json``
with N >= ``data.subset`` (with no subset: the largest). ``data.subset`` N keeps the first
N glosses in WLASL order; a class index is the gloss's position in that order. Splits come
from the metadata. Frame ranges are 1-based and inclusive, -1 meaning to the end (fps 25);
``data.crop_bbox`` crops to the signer's bbox ``[xmin, ymin, xmax, ymax]``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from engine.config import VideoOptions
from engine.data.splits import SPLITS
from engine.errors import DataError

if TYPE_CHECKING:
    from engine.config import RunConfig
    from engine.data.base import DataBundle
    from engine.data.video_records import VideoRecord

CLASS_LIST = "wlasl_class_list.txt"


class WlaslData(VideoOptions):
    """``data.*`` of the ``wlasl`` source: which glosses and which metadata, plus the video
    options."""

    source: Literal["wlasl"] = "wlasl"
    subset: int | None = Field(None, description="Keep the first N glosses (100, 300, ...).")
    metadata: str | None = Field(
        None,
        description="The metadata JSON (a name in data.root or a path). Default: found in "
        "data.root.",
    )


_NUMBERED = {"asl": re.compile(r"^asl(\d+)\.json$"), "nslt": re.compile(r"^nslt_(\d+)\.json$")}


@dataclass(frozen=True)
class Entry:
    video_id: str
    label: int
    split: str
    frame_start: int = 1
    frame_end: int = -1
    bbox: tuple[int, int, int, int] | None = None
    signer_id: int | None = None


@dataclass(frozen=True)
class Metadata:
    path: Path
    format: str  # "wlasl" (WLASL_v0.3 schema) or "nslt" (I3D split file)
    class_names: list[str]
    entries: list[Entry]

    def counts(self) -> dict[str, int]:
        return {s: sum(e.split == s for e in self.entries) for s in SPLITS}


# --------------------------------------------------------------------------- metadata


def find_metadata(root: Path, subset: int | None = None, explicit: str | None = None) -> Path:
    """The metadata file to use (see the module docstring for the order)."""
    if explicit:
        p = Path(explicit).expanduser()
        for cand in ([root / p] if not p.is_absolute() else []) + [p]:
            if cand.is_file():
                return cand
        raise DataError(f"data.metadata: no file {explicit} (looked in {root} and here)")
    full = sorted(root.glob("WLASL_v*.json"))
    if full:
        return full[-1]
    for kind in ("asl", "nslt"):
        sizes = {}
        for f in root.glob("*.json"):
            m = _NUMBERED[kind].match(f.name)
            if m:
                sizes[int(m.group(1))] = f
        fits = sorted(n for n in sizes if subset is None or n >= subset)
        if fits:
            return sizes[fits[-1] if subset is None else fits[0]]
    need = f" covering data.subset {subset}" if subset else ""
    raise DataError(
        f"no WLASL metadata{need} in {root} (looked for WLASL_v0.3.json, asl<N>.json, "
        "nslt_<N>.json); put it there or set data.metadata"
    )


def read_class_list(path: Path) -> dict[int, str]:
    """``index<TAB>gloss`` lines -> {index: gloss}."""
    names: dict[int, str] = {}
    for line in path.read_text().splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2 and parts[0].isdigit():
            names[int(parts[0])] = parts[1].strip()
    return names


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _bbox(value: Any) -> tuple[int, int, int, int] | None:
    if isinstance(value, (list, tuple)) and len(value) == 4:
        try:
            return tuple(int(round(float(v))) for v in value)  # type: ignore[return-value]
        except (TypeError, ValueError):
            return None
    return None


def _split(value: Any, where: str) -> str:
    split = str(value).strip().lower()
    if split not in SPLITS:
        raise DataError(f"{where}: split '{value}' is not one of train, val, test")
    return split


def parse_wlasl(data: Any, path: Path, subset: int | None = None) -> Metadata:
    """A WLASL_v0.3-schema list, first ``subset`` glosses."""
    if not isinstance(data, list) or not all(isinstance(g, dict) for g in data):
        raise DataError(f"{path}: expected a list of {{gloss, instances}} entries (WLASL_v0.3)")
    if subset is not None:
        if subset > len(data):
            raise DataError(
                f"data.subset is {subset} but {path} holds {len(data)} glosses; "
                "use a smaller subset or a larger metadata file (WLASL_v0.3.json)"
            )
        data = data[:subset]
    names, entries, seen = [], [], set()
    for label, g in enumerate(data):
        if "gloss" not in g or not isinstance(g.get("instances"), list):
            raise DataError(f"{path}: entry {label} has no 'gloss' or no 'instances' list")
        names.append(str(g["gloss"]))
        for k, inst in enumerate(g["instances"]):
            where = f"{path}: gloss '{g['gloss']}' instance {k}"
            if not isinstance(inst, dict) or "video_id" not in inst or "split" not in inst:
                raise DataError(f"{where} has no 'video_id' or 'split'")
            vid = str(inst["video_id"])
            if vid in seen:
                continue
            seen.add(vid)
            entries.append(
                Entry(
                    video_id=vid,
                    label=label,
                    split=_split(inst["split"], where),
                    frame_start=_int(inst.get("frame_start"), 1),
                    frame_end=_int(inst.get("frame_end"), -1),
                    bbox=_bbox(inst.get("bbox")),
                    signer_id=_int(inst.get("signer_id"), -1),
                )
            )
    return Metadata(path, "wlasl", names, entries)


def parse_nslt(
    data: Any, path: Path, subset: int | None = None, class_list: dict[int, str] | None = None
) -> Metadata:
    """An I3D ``nslt_N.json`` split file, classes ``< subset``."""
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected {{video_id: {{subset, action}}}} (an nslt file)")
    rows = []
    for vid, v in data.items():
        action = v.get("action") if isinstance(v, dict) else None
        if not isinstance(action, list) or len(action) < 3 or "subset" not in v:
            raise DataError(f"{path}: video '{vid}' has no 'subset' or no [class, start, end]")
        rows.append((str(vid), _int(action[0], -1), v["subset"], action[1], action[2]))
    m = _NUMBERED["nslt"].match(path.name)
    available = int(m.group(1)) if m else max((r[1] for r in rows), default=-1) + 1
    if subset is not None and subset > available:
        raise DataError(
            f"data.subset is {subset} but {path} holds {available} classes; "
            "use a smaller subset or a larger metadata file"
        )
    n = subset or available
    entries = [
        Entry(vid, label, _split(split, f"{path}: video '{vid}'"), _int(s, 1), _int(e, -1))
        for vid, label, split, s, e in rows
        if 0 <= label < n
    ]
    names = [(class_list or {}).get(i, f"class_{i}") for i in range(n)]
    return Metadata(path, "nslt", names, entries)


def read_metadata(
    path: str | Path, subset: int | None = None, class_list: str | Path | None = None
) -> Metadata:
    """Read either format; ``class_list`` (nslt only) defaults to the one beside the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read WLASL metadata {path} ({exc}); check the file") from None
    if isinstance(data, list):
        return parse_wlasl(data, path, subset)
    lst = Path(class_list) if class_list else path.parent / CLASS_LIST
    names = read_class_list(lst) if lst.is_file() else None
    return parse_nslt(data, path, subset, names)


# --------------------------------------------------------------------------- source


def video_dir(root: Path) -> Path:
    return root / "videos" if (root / "videos").is_dir() else root


def records(cfg: RunConfig) -> tuple[Path, Metadata, list[VideoRecord]]:
    """The dataset root, its metadata and one record per listed video."""
    from engine.data.video_records import VideoRecord

    d = cfg.data
    if not d.root:
        raise DataError(
            "data.root is not set; point it at the WLASL folder (metadata JSON + videos/)"
        )
    root = Path(d.root).expanduser()
    if not root.is_dir():
        raise DataError(f"WLASL folder {root} does not exist; set data.root")
    path = find_metadata(root, d.subset, d.metadata)
    class_list = root / CLASS_LIST if (root / CLASS_LIST).is_file() else None
    meta = read_metadata(path, d.subset, class_list)
    vdir = video_dir(root)
    rows = [
        VideoRecord(
            e.video_id,
            vdir / f"{e.video_id}.mp4",
            e.label,
            e.split,
            e.frame_start,
            e.frame_end,
            e.bbox,
        )
        for e in meta.entries
    ]
    return root, meta, rows


def _info(root: Path, meta: Metadata, cfg: RunConfig) -> dict[str, Any]:
    return {
        "source": "wlasl",
        "root": str(root),
        "metadata": str(meta.path),
        "format": meta.format,
        "subset": cfg.data.subset,
    }


def build(cfg: RunConfig) -> DataBundle:
    """The ``wlasl`` source; missing and unreadable videos are counted and skipped."""
    from engine.data.video_records import make_bundle, resolve

    root, meta, rows = records(cfg)
    res = resolve(rows, root)
    return make_bundle(res, meta.class_names, cfg, _info(root, meta, cfg))


def check(cfg: RunConfig, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """What ``slr data check`` reports: per split listed/present/missing/unreadable/usable,
    classes and training videos per class. ``progress(done, total)`` follows the probe."""
    from engine.data.video_records import report, resolve

    root, meta, rows = records(cfg)
    res = resolve(rows, root, progress)
    return {**_info(root, meta, cfg), **report(res, meta.class_names)}
