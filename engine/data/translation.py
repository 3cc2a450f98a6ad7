"""The ``translation`` source: signed sentences (face, hand and pose streams) with their
written sentence, for sign language translation (``model.name: multistream_seq2seq``).

A dataset root holds::

    root/rois/<id>.npz          the ROI cache (engine.data.roi_cache), or per-stream folders:
    root/<face_dir>/<id>.npy    (T, S, S, 3) uint8, likewise hand_left_dir, hand_right_dir;
    root/<pose_dir>/<id>.npy    (T, 33, 3) float (x, y, z; NaN where not detected)
    root/meta.csv               id + sentence: ``id;texto`` (the guide) or ``id,text``; the
                                separator and the columns are detected, UTF-8, any language;
                                an optional ``split`` column
    root/train.csv, val.csv, test.csv   split index files (a CSV with an ``id`` column)

Per-stream folders are ``data.face_dir`` etc. (relative to the root, or absolute); without
them a ``root/<stream>/`` folder is used when there is no ``rois/`` cache. ``data.metadata``
and ``data.train_index``/``val_index``/``test_index`` override the file names.

Missing data never crashes: a listed id with none of its streams (or an unreadable file)
is skipped and counted; a sample that lacks some streams keeps its place and the missing
stream is fed as zeros with an all-False mask (the model ignores it), also counted.
``slr data check`` (:func:`check`) reports both per split and per stream.

Items hold the crops as uint8 (``(L, S, S, 3)``, 4x less to move than float; the model
normalises on its device), ``<stream>_mask`` (L,) per stream, ``frame_mask`` (L,), the
``text`` and the usual ``id``/``index``. ``L = data.sequence_length``: longer samples are
resampled uniformly (with a small seeded jitter when augmenting), shorter ones padded.
``data.mix_streams`` (``{hand_left: 0.2}``) is a batch-level training augmentation: each
training sample's stream is replaced with that probability by another sample's of the same
batch. The draws come from the sample's seeded generator (``(seed, epoch, index)``), so a
resumed run mixes exactly as an uninterrupted one. Torch is imported inside functions only.
"""

from __future__ import annotations

import csv
import functools
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from engine.config import DataOptions
from engine.data import roi_cache
from engine.data.dataset import SampleDataset
from engine.errors import DataError

if TYPE_CHECKING:
    from engine.config import RunConfig
    from engine.data.base import DataBundle

log = logging.getLogger("engine")

Stream = Literal["face", "hand_left", "hand_right", "pose"]
STREAMS: tuple[str, ...] = roi_cache.STREAMS
IMAGE_STREAMS: tuple[str, ...] = roi_cache.IMAGE_STREAMS
SPLITS = ("train", "val", "test")
ID_COLUMNS = ("id", "video_id", "sample_id", "name", "file")
TEXT_COLUMNS = ("texto", "text", "sentence", "translation", "transcript", "transcription", "frase")


class TranslationData(DataOptions):
    """``data.*`` of the ``translation`` source (subclassed by ``synthetic_translation``)."""

    source: Literal["translation"] = "translation"
    metadata: str | None = Field(
        None,
        description="Metadata CSV (id and sentence; default root/meta.csv). Separator "
        "(; , tab |) and columns (id; texto/text/sentence) are detected.",
    )
    text_column: str | None = Field(None, description="The sentence column (null: detected).")
    train_index: str | None = Field(None, description="Train ids CSV (default root/train.csv).")
    val_index: str | None = Field(None, description="Val ids CSV (default root/val.csv).")
    test_index: str | None = Field(None, description="Test ids CSV (default root/test.csv).")
    face_dir: str | None = Field(None, description="Per-stream folder of <id>.npy face crops.")
    hand_left_dir: str | None = Field(None, description="Per-stream folder of left-hand crops.")
    hand_right_dir: str | None = Field(None, description="Per-stream folder of right-hand crops.")
    pose_dir: str | None = Field(None, description="Per-stream folder of (T, 33, 3) pose arrays.")
    streams: list[Stream] = Field(
        default_factory=lambda: list(STREAMS), description="The streams the model sees."
    )
    sequence_length: int = Field(
        64, ge=1, description="Frames per sample: longer resampled uniformly, shorter padded."
    )
    max_target_length: int = Field(
        64, ge=2, description="Tokens per target sentence (bos/eos included); longer cut."
    )
    crop_size: int | None = Field(
        None,
        ge=8,
        description="Crops are resized to this size in the loader (null: as stored, e.g. "
        "the ROI cache's 112; the guide trains on 224).",
    )
    mean: tuple[float, float, float] = Field(
        (0.485, 0.456, 0.406), description="Per-channel normalisation mean (RGB, 0..1)."
    )
    std: tuple[float, float, float] = Field(
        (0.229, 0.224, 0.225), description="Per-channel normalisation std (RGB, 0..1)."
    )
    mix_streams: dict[str, float] = Field(
        default_factory=dict,
        description="Training: {stream: p}, each sample's stream replaced with probability p "
        "by another sample's in the batch (the guide's --mix-stream STREAM:P).",
    )

    @field_validator("streams")
    @classmethod
    def _some_streams(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one of face, hand_left, hand_right, pose")
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _mix_known(self) -> TranslationData:
        for s, p in self.mix_streams.items():
            if s not in STREAMS:
                raise ValueError(f"mix_streams: '{s}' is not one of {', '.join(STREAMS)}")
            if not 0 <= p <= 1:
                raise ValueError(f"mix_streams: {s} probability {p} is not in [0, 1]")
        return self


# --------------------------------------------------------------------------- reading the layout


def _path(root: Path, value: str | None, default: str) -> Path:
    p = Path(value) if value else Path(default)
    return p if p.is_absolute() else root / p


def _delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in (";", "\t", "|", ",")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a UTF-8 CSV whose separator (; tab | ,) is detected from the
    header line (a sentence may hold commas; the header does not)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path} not found") from None
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise DataError(f"{path} is empty: expected a header line (e.g. id;texto)")
    rows = list(csv.reader(io.StringIO(text), delimiter=_delimiter(lines[0])))
    header = [h.strip() for h in rows[0]]
    return header, [r for r in rows[1:] if any(c.strip() for c in r)]


def _find(header: list[str], names: tuple[str, ...]) -> int | None:
    low = [h.lower() for h in header]
    for n in names:
        if n in low:
            return low.index(n)
    return None


def read_metadata(path: Path, text_column: str | None = None) -> tuple[dict[str, str], dict]:
    """``({id: sentence}, {id: split})`` from the metadata CSV (split: where it has one)."""
    header, rows = read_csv(path)
    i_id = _find(header, ID_COLUMNS)
    if i_id is None:
        i_id = 0
    if text_column:
        if text_column not in header:
            raise DataError(f"{path}: no column '{text_column}' (columns: {', '.join(header)})")
        i_text = header.index(text_column)
    else:
        i_text = _find(header, TEXT_COLUMNS)
        others = [i for i in range(len(header)) if i != i_id and header[i].lower() != "split"]
        if i_text is None and len(others) == 1:
            i_text = others[0]
        if i_text is None:
            raise DataError(
                f"{path}: cannot tell the sentence column among {', '.join(header)}; "
                "name it texto or text, or set data.text_column"
            )
    i_split = _find(header, ("split",))
    texts: dict[str, str] = {}
    splits: dict[str, str] = {}
    for r in rows:
        if len(r) <= max(i_id, i_text):
            continue
        sid = r[i_id].strip()
        if not sid:
            continue
        texts[sid] = r[i_text].strip()
        if i_split is not None and len(r) > i_split and r[i_split].strip():
            splits[sid] = r[i_split].strip().lower()
    if not texts:
        raise DataError(f"{path}: no rows with an id and a sentence")
    return texts, splits


def read_index(path: Path) -> list[str]:
    """The ids of a split index file (its ``id`` column, else its first column)."""
    header, rows = read_csv(path)
    i = _find(header, ID_COLUMNS)
    if i is None:  # no header: the first line is an id too
        return [header[0], *(r[0].strip() for r in rows if r)]
    return [r[i].strip() for r in rows if len(r) > i and r[i].strip()]


@dataclass
class Layout:
    """Where each stream of each id lives: the ROI cache and/or per-stream folders."""

    root: Path
    cache: Path | None  # root/rois when it is used
    folders: dict[str, Path]  # stream -> folder of <id>.npy
    streams: tuple[str, ...]

    def source_of(self, stream: str) -> str:
        return "folder" if stream in self.folders else "cache"

    def available(self, sid: str) -> tuple[set[str], bool]:
        """(streams present for ``sid``, unreadable): cheap, from headers only."""
        present: set[str] = set()
        unreadable = False
        want_cache = [s for s in self.streams if s not in self.folders]
        if want_cache and self.cache is not None:
            path = self.cache / f"{sid}.npz"
            if path.is_file():
                try:
                    shapes = roi_cache.npz_shapes(path)
                    present |= {s for s in want_cache if s in shapes}
                except Exception:  # noqa: BLE001 - a torn or foreign file is counted
                    unreadable = True
        for s, folder in self.folders.items():
            if (folder / f"{sid}.npy").is_file():
                present.add(s)
        return present, unreadable


def layout_of(cfg_data: Any, root: Path) -> Layout:
    streams = tuple(cfg_data.streams)
    folders: dict[str, Path] = {}
    for s in streams:
        value = getattr(cfg_data, f"{s}_dir", None)
        if value:
            folders[s] = _path(root, value, s)
    cache = root / roi_cache.ROIS
    has_cache = cache.is_dir()
    if not has_cache:
        for s in streams:
            if s not in folders and (root / s).is_dir():
                folders[s] = root / s
    if not has_cache and not folders:
        raise DataError(
            f"{root}: no ROI cache ({roi_cache.ROIS}/<id>.npz) and no per-stream folders "
            "(set data.face_dir, data.hand_left_dir, data.hand_right_dir, data.pose_dir)"
        )
    return Layout(root, cache if has_cache else None, folders, streams)


def split_ids(cfg_data: Any, root: Path, texts: dict[str, str], meta_splits: dict) -> dict:
    """``{split: [ids]}`` from the index files, else the metadata's split column."""
    out: dict[str, list[str]] = {}
    for split in SPLITS:
        path = _path(root, getattr(cfg_data, f"{split}_index"), f"{split}.csv")
        if path.is_file():
            out[split] = read_index(path)
        elif getattr(cfg_data, f"{split}_index"):
            raise DataError(f"data.{split}_index: {path} not found")
    if not out and meta_splits:
        aliases = {"validation": "val", "dev": "val", "valid": "val", "training": "train"}
        for sid, s in meta_splits.items():
            s = aliases.get(s, s)
            if s in SPLITS:
                out.setdefault(s, []).append(sid)
    if "train" not in out or "val" not in out:
        raise DataError(
            f"{root}: no train/val split: add train.csv and val.csv (an id column) or a "
            "split column in the metadata"
        )
    return out


# --------------------------------------------------------------------------- samples


def frame_indices(t: int, length: int, rng: np.random.Generator | None) -> np.ndarray:
    """``length`` frame indices spread uniformly over ``t`` frames (all of them, in order,
    when ``t <= length``); training jitters each by up to half a step."""
    if t <= length:
        return np.arange(t)
    pos = np.linspace(0, t - 1, length)
    if rng is not None:
        step = (t - 1) / max(length - 1, 1)
        pos = pos + rng.uniform(-0.5, 0.5, length) * step
    return np.clip(np.round(pos), 0, t - 1).astype(np.int64)


def _resize(frames: np.ndarray, size: int | None) -> np.ndarray:
    if size is None or frames.shape[1] == size:
        return frames
    import cv2

    interp = cv2.INTER_AREA if frames.shape[1] > size else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (size, size), interpolation=interp) for f in frames])


class TranslationDataset(SampleDataset):
    """One split: per id its streams (ROI cache or folders) and its sentence. An array of
    the wrong shape (a grey or RGBA crop, 2-d pose) is fed like a missing stream."""

    def __init__(
        self,
        ids: list[str],
        texts: list[str],
        present: list[set[str]],
        layout: Layout,
        cfg_data: Any,
        image_size: int,
        *,
        augment: bool,
    ):
        super().__init__(ids, [0] * len(ids), augment=augment, seed=cfg_data.seed)
        self.texts = list(texts)
        self.present = present
        self.layout = layout
        self.length = int(cfg_data.sequence_length)
        self.size = int(image_size)
        self.streams = layout.streams
        self.mix = {s: float(p) for s, p in cfg_data.mix_streams.items() if s in self.streams}

    def _raw(self, index: int) -> dict[str, np.ndarray]:
        sid, have = self.ids[index], self.present[index]
        arrays: dict[str, np.ndarray] = {}
        cached = [s for s in self.streams if s in have and self.layout.source_of(s) == "cache"]
        if cached:
            arrays.update(roi_cache.load_sample(self.layout.cache / f"{sid}.npz", cached))
        for s in self.streams:
            if s in have and self.layout.source_of(s) == "folder":
                arr = np.load(self.layout.folders[s] / f"{sid}.npy", allow_pickle=False)
                arrays[s] = arr
                if s in IMAGE_STREAMS:
                    arrays[roi_cache.mask_key(s)] = np.ones(len(arr), bool)
        return arrays

    def load(self, index: int, rng: np.random.Generator | None) -> dict[str, Any]:
        try:
            arrays = self._raw(index)
        except Exception as exc:  # noqa: BLE001 - a file that went bad after the scan
            log.warning("cannot read %s (%s); its streams are masked", self.ids[index], exc)
            arrays = {}
        lengths = [len(arrays[s]) for s in self.streams if s in arrays]
        t = max(lengths) if lengths else 1
        idx = frame_indices(t, self.length, rng)
        n = len(idx)
        L, S = self.length, self.size
        item: dict[str, Any] = {"text": self.texts[index]}
        frame_mask = np.zeros(L, bool)
        frame_mask[:n] = True
        item["frame_mask"] = frame_mask
        for s in self.streams:
            arr = arrays.get(s)
            m = np.zeros(L, bool)
            if s == "pose":
                out = np.zeros((L, roi_cache.POSE_POINTS, 3), np.float32)
                if arr is not None and arr.ndim == 3 and arr.shape[-1] >= 3 and len(arr):
                    sel = np.asarray(arr[np.minimum(idx, len(arr) - 1), :, :3], np.float32)
                    ok = np.isfinite(sel).all(-1)  # (n, 33)
                    sel = np.where(ok[..., None], sel, 0.0)
                    out[:n, : sel.shape[1]] = sel[:, : roi_cache.POSE_POINTS]
                    m[:n] = ok.any(-1)
            else:
                out = np.zeros((L, S, S, 3), np.uint8)
                if arr is not None and arr.ndim == 4 and arr.shape[-1] == 3 and len(arr):
                    j = np.minimum(idx, len(arr) - 1)
                    out[:n] = _resize(np.asarray(arr[j], np.uint8), S)
                    mk = arrays.get(roi_cache.mask_key(s))
                    m[:n] = np.asarray(mk, bool)[j] if mk is not None else True
            item[s] = out
            item[f"{s}_mask"] = m
        if rng is not None and self.mix:
            # per mixed stream: (draw, partner draw); used by collate within the batch
            item["mix_draws"] = rng.random((len(self.mix), 2))
        return item


def translation_collate(items: list[dict[str, Any]], mix: dict[str, float] | None = None):
    """Stack the items (crops stay uint8); with ``mix``, replace stream ``s`` of sample i
    by sample j's when i's draw is below ``mix[s]`` (j drawn among the others)."""
    import torch

    batch: dict[str, Any] = {
        "text": [it["text"] for it in items],
        "id": [it["id"] for it in items],
        "index": torch.tensor([it["index"] for it in items], dtype=torch.long),
        "frame_mask": torch.from_numpy(np.stack([it["frame_mask"] for it in items])),
    }
    streams = [s for s in STREAMS if s in items[0]]
    for s in streams:
        batch[s] = torch.from_numpy(np.stack([it[s] for it in items]))
        batch[f"{s}_mask"] = torch.from_numpy(np.stack([it[f"{s}_mask"] for it in items]))
    b = len(items)
    mixed = {}
    if mix and b > 1 and all("mix_draws" in it for it in items):
        for k, (s, p) in enumerate(mix.items()):
            if s not in batch:
                continue
            src = np.arange(b)
            for i, it in enumerate(items):
                u, v = it["mix_draws"][k]
                if u < p:
                    j = int(v * (b - 1))
                    src[i] = j if j < i else j + 1  # any other sample
            if (src != np.arange(b)).any():
                sel = torch.from_numpy(src)
                batch[s] = batch[s][sel]
                batch[f"{s}_mask"] = batch[f"{s}_mask"][sel]
            mixed[s] = torch.from_numpy(src != np.arange(b))
    if mixed:
        batch["mixed"] = mixed  # per stream, (B,) True where the stream came from another
    return batch


# --------------------------------------------------------------------------- the bundle


@functools.cache
def bundle_class() -> type:
    """The :class:`DataBundle` subclass of this source (made on first use: base imports torch)."""
    from engine.data.base import DataBundle

    @dataclass
    class TranslationBundle(DataBundle):
        """A :class:`DataBundle` for translation: no classes; ``run_dir`` is set by the
        trainer so the model can save (or reload) its tokenizer there."""

        run_dir: Path | None = None

        @property
        def task(self) -> str:
            return "translation"

    return TranslationBundle


def _scan(layout: Layout, ids: list[str], texts: dict[str, str]) -> dict[str, Any]:
    """Per id: present streams; counts of listed/present/missing/unreadable and per stream."""
    keep, present = [], []
    counts = {"listed": len(ids), "present": 0, "missing": 0, "unreadable": 0, "no_text": 0}
    per_stream = {s: 0 for s in layout.streams}
    for sid in ids:
        if sid not in texts:
            counts["no_text"] += 1
            counts["missing"] += 1
            continue
        have, bad = layout.available(sid)
        if bad:
            counts["unreadable"] += 1
        if not have:
            if not bad:
                counts["missing"] += 1
            continue
        for s in layout.streams:
            if s not in have:
                per_stream[s] += 1
        counts["present"] += 1
        keep.append(sid)
        present.append(have)
    counts["missing_streams"] = per_stream
    return {"ids": keep, "present": present, "counts": counts}


def _image_size(cfg_data: Any, layout: Layout, scans: dict[str, Any]) -> int:
    if cfg_data.crop_size:
        return int(cfg_data.crop_size)
    meta = roi_cache.read_dataset_json(layout.root) or {}
    if meta.get("roi_size"):
        return int(meta["roi_size"])
    for scan in scans.values():  # the first sample with an image stream
        for sid, have in zip(scan["ids"], scan["present"], strict=True):
            for s in IMAGE_STREAMS:
                if s not in have:
                    continue
                if s in layout.folders:
                    arr = np.load(layout.folders[s] / f"{sid}.npy", mmap_mode="r")
                    return int(arr.shape[1])
                return int(roi_cache.npz_shapes(layout.cache / f"{sid}.npz")[s][1])
    return roi_cache.DEFAULT_ROI_SIZE


def _read(cfg: RunConfig, root: Path) -> tuple[Layout, dict[str, Any]]:
    d = cfg.data
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data.root {root} is not a folder")
    layout = layout_of(d, root)
    texts, meta_splits = read_metadata(_path(root, d.metadata, "meta.csv"), d.text_column)
    splits = split_ids(d, root, texts, meta_splits)
    scans = {s: _scan(layout, ids, texts) for s, ids in splits.items()}
    return layout, {"texts": texts, "scans": scans}


def build_root(cfg: RunConfig, root: Path) -> DataBundle:
    """The bundle of the dataset at ``root`` (the layout in the module docstring), with
    everything else from ``cfg.data``."""
    from functools import partial

    d = cfg.data
    layout, got = _read(cfg, root)
    texts, scans = got["texts"], got["scans"]
    size = _image_size(d, layout, scans)
    datasets = {}
    for split, scan in scans.items():
        datasets[split] = TranslationDataset(
            scan["ids"],
            [texts[i] for i in scan["ids"]],
            scan["present"],
            layout,
            d,
            size,
            augment=d.augment and split == "train",
        )
        c = scan["counts"]
        if c["missing"] or c["unreadable"] or any(c["missing_streams"].values()):
            short = {s: n for s, n in c["missing_streams"].items() if n}
            log.warning(
                "%s: %d listed, %d skipped (missing), %d unreadable; samples with a stream "
                "masked: %s",
                split,
                c["listed"],
                c["missing"],
                c["unreadable"],
                short or "none",
            )
    if len(datasets["train"]) == 0:
        raise DataError(f"{root}: no training sample has its streams and a sentence")
    mix = {s: p for s, p in d.mix_streams.items() if s in layout.streams}
    info = {
        "root": str(Path(root).resolve()),
        "task": "translation",
        "streams": list(layout.streams),
        "stream_sources": {s: layout.source_of(s) for s in layout.streams},
        "image_size": size,
        "sequence_length": d.sequence_length,
        "pose_points": roi_cache.POSE_POINTS,
        "per_split": {s: len(ds) for s, ds in datasets.items()},
        "missing": sum(sc["counts"]["missing"] for sc in scans.values()),
        "unreadable": sum(sc["counts"]["unreadable"] for sc in scans.values()),
        "missing_streams": {
            s: sum(sc["counts"]["missing_streams"][s] for sc in scans.values())
            for s in layout.streams
        },
    }
    return bundle_class()(
        train=datasets["train"],
        val=datasets["val"],
        test=datasets.get("test"),
        class_names=[],
        input_dim=None,
        collate_fn=partial(translation_collate, mix=mix),
        info=info,
    )


def _root(cfg: RunConfig) -> Path:
    if not cfg.data.root:
        raise DataError(
            "data.root is not set; point it at a folder with meta.csv, train/val index files "
            "and rois/ (or per-stream folders)"
        )
    return Path(cfg.data.root).expanduser()


def build(cfg: RunConfig) -> DataBundle:
    """The ``translation`` source: ``data.root`` holds the layout of the module docstring."""
    return build_root(cfg, _root(cfg))


def check(cfg: RunConfig, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """``slr data check``: per split the listed, present, missing (skipped) and unreadable
    ids, and per stream the samples that lack it (they train with it masked)."""
    root = _root(cfg)
    layout, got = _read(cfg, root)
    report: dict[str, Any] = {"source": cfg.data.source, "root": str(root), "num_classes": 0}
    total = len(got["scans"])
    for k, split in enumerate(SPLITS):
        scan = got["scans"].get(split)
        c = scan["counts"] if scan else {"listed": 0, "present": 0, "missing": 0}
        report[split] = {key: c.get(key, 0) for key in ("listed", "present", "missing")}
        report[split]["unreadable"] = c.get("unreadable", 0)
        report[split]["missing_streams"] = dict(c.get("missing_streams", {}))
        report[split]["no_text"] = c.get("no_text", 0)
        if progress is not None and scan:
            progress(k + 1, total)
    report["streams"] = list(layout.streams)
    report["stream_sources"] = {s: layout.source_of(s) for s in layout.streams}
    report["sentences"] = len(got["texts"])
    return report
