"""The ``sequences_csv`` source: one CSV per recording, one row per frame (activity-LSTM guide).

Layout::

    root/**/<recording>.csv   one row per frame: numeric feature columns and a label column
                              (data.label_column); other non-numeric columns are ignored
    root/splits.csv           optional: recording,split (recording = the CSV's stem;
                              split: train/val/test); recordings it does not list are skipped

Without ``splits.csv`` the recordings are split with a seed, stratified by each recording's
most frequent label (``data.split_val_fraction``, ``data.split_test_fraction``). Splits are
by recording, so windows of one recording never land on both sides.

Samples are sliding windows of ``data.window_size`` frames every ``data.stride`` frames,
kept only where every frame has the same label; with ``data.window_size: null`` each whole
recording (one label) is one sample of its own length (averaged down to at most
``data.downsample_to`` frames when that is set), padded and masked by pad_collate.
Features are the columns of ``data.feature_columns`` (default: every numeric column but the
label), z-scored with the training split's mean and std when ``data.standardize``; missing
values become 0 after that (the training mean). Training adds Gaussian noise
(``data.noise_std``) when ``data.augment``.

``info`` carries what ``slr predict`` needs to read a new recording the same way
(:func:`windows_for_file`): ``label_encoder``, ``feature_columns``, ``feature_mean``,
``feature_std``, ``label_column``, ``window_size``, ``stride``.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from engine.config import TableOptions
from engine.data.dataset import SampleDataset
from engine.data.splits import SPLITS, check_fractions, class_order, natural_sorted, split_groups
from engine.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from engine.config import RunConfig
    from engine.data.base import DataBundle

log = logging.getLogger(__name__)


class SequencesCsvData(TableOptions):
    """``data.*`` of the ``sequences_csv`` source: columns and windows of the recordings."""

    source: Literal["sequences_csv"] = "sequences_csv"
    label_column: str = Field("label", description="The column holding each frame's class label.")
    feature_columns: list[str] | None = Field(
        None, description="Feature columns (null: every numeric column but the label)."
    )
    window_size: int | None = Field(
        30, ge=1, description="Frames per sliding window (null: each recording is one sample)."
    )
    stride: int = Field(15, ge=1, description="Frames between window starts.")
    downsample_to: int | None = Field(
        None,
        ge=2,
        description="With window_size null: a recording longer than this is averaged down "
        "to at most this many frames (means of blocks of ceil(T / downsample_to) frames); "
        "null: every recording at its full length.",
    )


SPLITS_FILE = "splits.csv"


# --------------------------------------------------------------------------- reading


def find_recordings(root: Path) -> dict[str, Path]:
    """``{recording: path}`` for every CSV under ``root`` (any depth) but ``splits.csv``."""
    paths = sorted(p for p in root.rglob("*.csv") if p.is_file() and p != root / SPLITS_FILE)
    if not paths:
        raise DataError(
            f"no CSV recordings found under {root}; put one CSV per recording there (any depth)"
        )
    out: dict[str, Path] = {}
    for p in paths:
        if p.stem in out:
            raise DataError(
                f"two recordings are named '{p.stem}' ({out[p.stem]}, {p}); recordings are "
                "known by file name, so rename one"
            )
        out[p.stem] = p
    return out


def read_table(path: Path) -> pd.DataFrame:
    import pandas as pd  # here: the options above load (with every config) without pandas

    try:
        return pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot read {path}: {first}; fix or remove the file") from None


def numeric_columns(df: pd.DataFrame, label_column: str) -> list[str]:
    """The numeric columns of a table, in file order, without the label column."""
    import pandas as pd

    return [
        str(c)
        for c in df.columns
        if c != label_column and pd.api.types.is_numeric_dtype(df[c].dtype)
    ]


def _columns_text(df: pd.DataFrame) -> str:
    names = [str(c) for c in df.columns]
    return ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")


def label_strings(series: pd.Series) -> np.ndarray:
    """Labels as strings (object array), None where missing; 1.0 reads as "1"."""
    import pandas as pd

    missing = series.isna().to_numpy()
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        ok = values[~missing]
        if np.all(ok == np.round(ok)):
            text = [str(int(v)) if not m else None for v, m in zip(values, missing, strict=True)]
        else:
            text = [repr(float(v)) if not m else None for v, m in zip(values, missing, strict=True)]
        return np.asarray(text, dtype=object)
    out = np.empty(len(series), dtype=object)
    for i, (v, m) in enumerate(zip(series.tolist(), missing, strict=True)):
        s = None if m else str(v).strip()
        out[i] = s or None
    return out


def frame_arrays(
    df: pd.DataFrame,
    path: Path,
    *,
    label_column: str,
    feature_columns: list[str],
    require_label: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(T, D) float32 features (NaN where missing) and the per-frame labels (None if the
    table has no label column and ``require_label`` is False)."""
    import pandas as pd

    if require_label and label_column not in df.columns:
        raise DataError(
            f"{path}: no label column '{label_column}' (columns: {_columns_text(df)}); "
            "set data.label_column"
        )
    missing = [c for c in feature_columns if c not in df.columns]
    if missing:
        raise DataError(
            f"{path}: no feature column(s) {', '.join(missing[:10])} (columns: {_columns_text(df)}); "
            "every recording needs the same feature columns (see data.feature_columns)"
        )
    cols = []
    for c in feature_columns:
        try:
            cols.append(pd.to_numeric(df[c], errors="raise").to_numpy(np.float64, na_value=np.nan))
        except (ValueError, TypeError):
            raise DataError(
                f"{path}: column '{c}' holds non-numeric values; fix the file or leave the "
                "column out of data.feature_columns"
            ) from None
    x = np.stack(cols, axis=1) if cols else np.zeros((len(df), 0))
    labels = label_strings(df[label_column]) if label_column in df.columns else None
    return x.astype(np.float32), labels


def read_recording(
    path: str | Path, label_column: str, feature_columns: list[str], require_label: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """One recording's (T, D) float32 features (NaN where missing) and labels (or None)."""
    path = Path(path)
    return frame_arrays(
        read_table(path),
        path,
        label_column=label_column,
        feature_columns=feature_columns,
        require_label=require_label,
    )


def read_splits(path: Path, recordings: set[str]) -> dict[str, str]:
    """``{recording: split}`` from ``splits.csv``; every listed recording must exist."""
    out: dict[str, str] = {}
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        cols = [c.strip() for c in reader.fieldnames or []]
        if "recording" not in cols or "split" not in cols:
            raise DataError(
                f"{path}: expected columns recording,split (has: {', '.join(cols) or 'none'})"
            )
        for line, row in enumerate(reader, 2):
            row = {str(k).strip(): (v or "").strip() for k, v in row.items() if k is not None}
            name, split = row["recording"].removesuffix(".csv"), row["split"].lower()
            if not name:
                continue
            if split not in SPLITS:
                raise DataError(
                    f"{path} line {line}: split '{row['split']}' is not one of train, val, test"
                )
            if name not in recordings:
                raise DataError(
                    f"{path} line {line}: recording '{name}' has no CSV under {path.parent}; "
                    "add the file or remove the line"
                )
            if out.get(name, split) != split:
                raise DataError(f"{path} line {line}: recording '{name}' is listed in two splits")
            out[name] = split
    if not out:
        raise DataError(f"{path} lists no recordings; fill it in or remove it")
    return out


# --------------------------------------------------------------------------- windows


def window_starts(frames: int, window: int, stride: int) -> np.ndarray:
    """Starts of every full window of ``window`` frames, ``stride`` apart."""
    if frames < window:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, frames - window + 1, stride, dtype=np.int64)


def pure_windows(codes: np.ndarray, window: int, stride: int) -> tuple[np.ndarray, int, int]:
    """Starts of the windows whose frames share one label (code >= 0), and how many
    windows were dropped for mixed labels and for unlabelled frames."""
    starts = window_starts(len(codes), window, stride)
    if not len(starts):
        return starts, 0, 0
    changes = np.concatenate([[0], np.cumsum(codes[1:] != codes[:-1])])
    unlabelled = np.concatenate([[0], np.cumsum(codes < 0)])
    has_gap = unlabelled[starts + window] - unlabelled[starts] > 0
    mixed = (changes[starts + window - 1] - changes[starts] > 0) & ~has_gap
    return starts[~has_gap & ~mixed], int(mixed.sum()), int(has_gap.sum())


def standardize(x: np.ndarray, mean: Any, std: Any) -> np.ndarray:
    """Z-score with saved stats (None: unchanged); NaN becomes 0 afterwards."""
    x = np.asarray(x, dtype=np.float32)
    if mean is not None and std is not None:
        x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def shorten(x: np.ndarray, max_frames: int | None) -> np.ndarray:
    """(T, D) averaged over blocks of ``ceil(T / max_frames)`` frames when T is longer than
    ``max_frames`` (NaN frames are left out of their block's mean), else ``x`` itself."""
    if max_frames is None or len(x) <= max_frames:
        return x
    k = -(-len(x) // max_frames)
    rest = (-len(x)) % k
    padded = np.concatenate([x, np.full((rest, x.shape[1]), np.nan, x.dtype)]) if rest else x
    blocks = padded.reshape(-1, k, x.shape[1])
    finite = np.isfinite(blocks)
    n = finite.sum(1)
    total = np.where(finite, blocks, 0).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1), np.nan).astype(x.dtype)


def fit_standardizer(arrays: list[np.ndarray], dim: int) -> tuple[list[float], list[float]]:
    """Per-feature mean and std over all frames (NaN ignored; std 1 where constant)."""
    total = np.zeros(dim)
    sq = np.zeros(dim)
    n = np.zeros(dim)
    for a in arrays:
        a = a.astype(np.float64).reshape(-1, dim)
        ok = np.isfinite(a)
        v = np.where(ok, a, 0.0)
        total += v.sum(0)
        sq += (v * v).sum(0)
        n += ok.sum(0)
    mean = np.divide(total, n, out=np.zeros(dim), where=n > 0)
    var = np.divide(sq, n, out=np.ones(dim), where=n > 0) - np.where(n > 0, mean**2, 0)
    std = np.sqrt(np.maximum(var, 0))
    std = np.where(std > 1e-8, std, 1.0)
    return mean.tolist(), std.tolist()


def windows_for_file(
    path: str | Path, info: dict[str, Any], cfg: RunConfig
) -> tuple[np.ndarray | list[np.ndarray], np.ndarray]:
    """A new recording read the way the run was trained (for ``slr predict``).

    Returns ``(windows, starts)``: windows (N, W, D) float32 of every window (no label
    needed), or with ``data.window_size: null`` a list holding the whole (T, D) recording,
    with ``starts`` [0]. Uses the saved ``feature_columns``, ``feature_mean`` and
    ``feature_std`` from the run's ``info``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"recording {path} not found")
    columns = info.get("feature_columns")
    if not columns:
        raise DataError("the run's data info has no feature_columns; was it a sequences_csv run?")
    x, _ = read_recording(
        path, info.get("label_column", cfg.data.label_column), list(columns), require_label=False
    )
    x = standardize(x, info.get("feature_mean"), info.get("feature_std"))
    window = cfg.data.window_size
    if window is None:
        if not len(x):
            raise DataError(f"{path} has no frames")
        return [shorten(x, cfg.data.downsample_to)], np.zeros(1, dtype=np.int64)
    starts = window_starts(len(x), window, cfg.data.stride)
    if not len(starts):
        raise DataError(
            f"{path} has {len(x)} frames, fewer than data.window_size ({window}); "
            "a recording needs at least one full window"
        )
    return np.stack([x[s : s + window] for s in starts]), starts


# --------------------------------------------------------------------------- dataset & bundle


class WindowDataset(SampleDataset):
    """Windows (or whole recordings) cut from standardised recordings held in memory."""

    def __init__(
        self,
        recordings: list[np.ndarray],
        refs: list[tuple[int, int, int]],
        ids: list[str],
        labels: list[int],
        *,
        noise_std: float,
        augment: bool,
        seed: int,
    ):
        super().__init__(ids, labels, augment=augment, seed=seed)
        self.recordings = recordings
        self.refs = list(refs)  # (recording index, start, frames)
        self.noise_std = float(noise_std)

    def load(self, index: int, rng: np.random.Generator | None) -> dict[str, Any]:
        r, start, frames = self.refs[index]
        x = np.array(self.recordings[r][start : start + frames], dtype=np.float32)
        if rng is not None and self.noise_std > 0:
            x += rng.normal(0.0, self.noise_std, x.shape).astype(np.float32)
        return {"x": x}


def _samples(
    codes: np.ndarray, window: int | None, stride: int, counts: dict[str, int]
) -> list[tuple[int, int, int]]:
    """(start, frames, code) of one recording's samples; ``counts`` gathers the drops."""
    if window is None:
        labelled = np.unique(codes[codes >= 0])
        if len(codes) == 0:
            counts["short_recordings"] += 1
        elif len(labelled) == 0:
            counts["unlabelled_recordings"] += 1
        elif len(labelled) > 1:
            counts["mixed_recordings"] += 1
        else:
            return [(0, len(codes), int(labelled[0]))]
        return []
    if len(codes) < window:
        counts["short_recordings"] += 1
        return []
    starts, mixed, gaps = pure_windows(codes, window, stride)
    counts["dropped_mixed_windows"] += mixed
    counts["dropped_unlabelled_windows"] += gaps
    return [(int(s), window, int(codes[s])) for s in starts]


def build_from_root(root: str | Path, cfg: RunConfig) -> DataBundle:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"recordings folder {root} does not exist; set data.root")
    d = cfg.data
    check_fractions(d.split_val_fraction, d.split_test_fraction)
    files = find_recordings(root)

    columns = list(d.feature_columns) if d.feature_columns else None
    raw: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, path in files.items():
        df = read_table(path)
        if d.label_column not in df.columns:
            raise DataError(
                f"{path}: no label column '{d.label_column}' (columns: {_columns_text(df)}); "
                "set data.label_column"
            )
        if columns is None:
            columns = numeric_columns(df, d.label_column)
            if not columns:
                raise DataError(
                    f"{path}: no numeric feature columns besides '{d.label_column}' "
                    f"(columns: {_columns_text(df)}); recordings need numeric features"
                )
        x, labels = frame_arrays(df, path, label_column=d.label_column, feature_columns=columns)
        raw[name] = (x, labels)
    assert columns is not None

    # samples per recording, with provisional label codes
    names = natural_sorted({lab for _, labels in raw.values() for lab in labels if lab is not None})
    if not names:
        raise DataError(f"{root}: no frame has a label in column '{d.label_column}'")
    code_of = {n: i for i, n in enumerate(names)}
    counts = dict.fromkeys(
        (
            "short_recordings",
            "unlabelled_recordings",
            "mixed_recordings",
            "dropped_mixed_windows",
            "dropped_unlabelled_windows",
        ),
        0,
    )
    samples: dict[str, list[tuple[int, int, int]]] = {}
    for name, (_, labels) in raw.items():
        codes = np.array([-1 if lab is None else code_of[lab] for lab in labels], dtype=np.int64)
        found = _samples(codes, d.window_size, d.stride, counts)
        if found:
            samples[name] = found
    if not samples:
        what = "whole recordings with one label" if d.window_size is None else "label-pure windows"
        raise DataError(
            f"{root}: no {what} (window_size {d.window_size}, {sum(counts.values())} dropped); "
            "check data.window_size and data.label_column"
        )

    # splits by recording
    split_file = root / SPLITS_FILE
    unlisted = 0
    if split_file.is_file():
        split_of = read_splits(split_file, set(files))
        unlisted = sum(1 for n in samples if n not in split_of)
        samples = {n: s for n, s in samples.items() if n in split_of}
        split_source = SPLITS_FILE
    else:
        strata = {}
        for n, found in samples.items():
            codes = np.array([c for _, _, c in found])
            strata[n] = names[int(np.bincount(codes).argmax())]
        split_of = split_groups(
            strata,
            val_fraction=d.split_val_fraction,
            test_fraction=d.split_test_fraction,
            seed=d.seed,
            strict=True,
            what="recordings",
            where=str(root),
            hint=f"list the splits in {split_file} (recording,split)",
        )
        split_source = "stratified"

    classes = class_order(
        {names[c] for found in samples.values() for _, _, c in found},
        d.positive_label,
        where=str(root),
    )
    final = {names.index(n): i for i, n in enumerate(classes)}
    order = sorted(samples)
    by_split = {s: [n for n in order if split_of[n] == s] for s in SPLITS}
    for split in ("train", "val"):
        if not by_split[split]:
            raise DataError(
                f"{root}: no {split} recordings with samples; fix {SPLITS_FILE} or add recordings"
            )

    dim = len(columns)
    mean = std = None
    if d.standardize:
        mean, std = fit_standardizer([raw[n][0] for n in by_split["train"]], dim)
    nan_values = int(sum(np.isnan(raw[n][0]).sum() for n in order))
    recordings = [standardize(raw[n][0], mean, std) for n in order]
    if d.window_size is None and d.downsample_to is not None:  # whole recordings, averaged down
        recordings = [shorten(x, d.downsample_to) for x in recordings]
    index_of = {n: i for i, n in enumerate(order)}

    def dataset(split: str, augment: bool) -> WindowDataset:
        refs, ids, labels = [], [], []
        for n in by_split[split]:
            for start, frames, code in samples[n]:
                refs.append((index_of[n], start, frames))
                ids.append(n if d.window_size is None else f"{n}@{start}")
                labels.append(final[code])
        return WindowDataset(
            recordings, refs, ids, labels, noise_std=d.noise_std, augment=augment, seed=d.seed
        )

    datasets = {
        "train": dataset("train", d.augment),
        "val": dataset("val", False),
        "test": dataset("test", False) if by_split["test"] else None,
    }
    info: dict[str, Any] = {
        "root": str(root),
        "label_column": d.label_column,
        "label_encoder": {"classes": classes},
        "feature_columns": columns,
        "standardize": d.standardize,
        "feature_mean": mean,
        "feature_std": std,
        "window_size": d.window_size,
        "stride": d.stride,
        "downsample_to": d.downsample_to,
        "split_source": split_source,
        "recordings": len(files),
        "recordings_per_split": {s: len(by_split[s]) for s in SPLITS},
        "per_split": {s: len(ds) if ds is not None else 0 for s, ds in datasets.items()},
        **counts,
        "unlisted_recordings": unlisted,
        "nan_values": nan_values,
    }
    dropped = counts["dropped_mixed_windows"] + counts["dropped_unlabelled_windows"]
    if dropped or counts["short_recordings"] or counts["mixed_recordings"] or unlisted:
        log.warning(
            "%s: dropped %d mixed/unlabelled windows, %d short and %d mixed-label recordings, "
            "%d recordings not in %s",
            root,
            dropped,
            counts["short_recordings"],
            counts["mixed_recordings"],
            unlisted,
            SPLITS_FILE,
        )
    from engine.data.base import DataBundle

    return DataBundle(
        train=datasets["train"],
        val=datasets["val"],
        test=datasets["test"],
        class_names=classes,
        input_dim=dim,
        info=info,
    )


def build(cfg: RunConfig) -> DataBundle:
    """The ``sequences_csv`` source: ``data.root`` is a folder of per-recording CSVs."""
    if not cfg.data.root:
        raise DataError(
            "data.root is not set; point it at a folder of CSV recordings (one row per frame)"
        )
    return build_from_root(cfg.data.root, cfg)
