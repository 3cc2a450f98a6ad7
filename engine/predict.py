"""A trained run on new inputs: ``slr predict RUN FILE...`` and ``slr eval RUN``.

The run folder holds everything needed: ``config.json`` (how samples are made),
``data.json`` (the classes, feature columns and standardisation fitted on training) and
``best.pt`` / ``last.pt`` (loaded with ``weights_only``; no accelerate, no training code).
Class probabilities come from the model's ``class_scores``, as in the trainer's evaluation.

:func:`predict_files` reads each file the way the run's source reads a sample (dispatch on
``data.source``): a CSV recording cut into windows (``sequences_csv``), a features array
``.npy``/``.npz`` standardised with the training statistics (``features``), a landmark
``.npz`` through the landmark features (``landmarks``, ``synthetic``), or a video decoded
and transformed as in evaluation (``wlasl``, ``video_folder``). A file of another kind is
one line naming what the run takes.

:func:`evaluate_run` scores a run's checkpoint on its own splits or other data with the
trainer's evaluation pass (:func:`engine.inference.evaluate_split`) and writes
``RUN/eval-<name>/`` with :func:`engine.evaluate.write_eval`, the files of ``eval/``.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine import runs
from engine.checkpoint import CheckpointError, _first_detail, load_checkpoint, model_state
from engine.config import LandmarkOptions, RunConfig, VideoOptions, load_file, validate
from engine.data.base import pad_collate
from engine.errors import DataError
from engine.models import build_model

CHECKPOINTS = {"best": "best.pt", "last": "last.pt"}


@dataclass
class _Classes:
    class_names: list[str]
    input_dim: int | None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _is_translation(cfg: RunConfig) -> bool:
    from engine.data.translation import TranslationData

    return isinstance(cfg.data, TranslationData)


def load_trained(
    run_dir: str | Path, checkpoint: str = "best.pt", state: dict[str, Any] | None = None
) -> tuple[Any, torch.nn.Module, dict[str, Any]]:
    """(config, model with the ``checkpoint`` weights in eval mode, data.json). ``state``,
    when given, receives the checkpoint's plain ``epoch`` and ``global_step``."""
    run_dir = Path(run_dir)
    cfg = validate(load_file(run_dir / runs.CONFIG_JSON), str(run_dir / runs.CONFIG_JSON))
    data = runs.read_json(run_dir / runs.DATA_JSON)
    ckpt_path = run_dir / checkpoint
    if data is None or not ckpt_path.is_file():
        raise DataError(f"run {run_dir.name} has no trained model yet ({checkpoint} and data.json)")
    if _is_translation(cfg):
        raise DataError(
            f"run {run_dir.name} is a translation run: slr predict and slr eval score "
            "classifiers (its BLEU/chrF/WER are in eval/, see `slr show`)"
        )
    names = data.get("class_names")
    dim = data.get("input_dim")
    if (
        not isinstance(names, list)
        or not names
        or not isinstance(data.get("info"), dict)
        or not (dim is None or (isinstance(dim, int) and dim > 0))
    ):
        raise DataError(f"{run_dir / runs.DATA_JSON} is damaged (class_names, input_dim, info)")
    model = build_model(cfg, _Classes([str(n) for n in names], dim))
    ckpt = load_checkpoint(ckpt_path)  # weights_only: a crafted checkpoint runs no code
    try:
        model.load_state_dict(model_state(ckpt, ckpt_path), strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"checkpoint {ckpt_path} does not fit this run's model ({_first_detail(exc)})"
        ) from None
    if state is not None:
        for key in ("epoch", "global_step"):
            v = ckpt.get(key)
            state[key] = v if type(v) is int else None
    model.eval()
    return cfg, model, data


# --------------------------------------------------------------------------- predict


#: what each kind of run reads, for the error line of a wrong file
EXPECTS = {
    "recording": "a CSV recording (.csv, one row per frame)",
    "features": "a features array (.npy or .npz, (T, D) or (D,))",
    "landmarks": "a landmark .npz (pose, left_hand, right_hand, face arrays, as slr extract writes)",
    "video": "a video file (.mp4, .avi, .mov, .mkv, .webm, ...)",
}


def input_kind(cfg: RunConfig) -> str | None:
    """What a new sample of this run is: recording, features, landmarks or video."""
    if cfg.data.source == "sequences_csv":
        return "recording"
    if cfg.data.source == "features":
        return "features"
    if isinstance(cfg.data, LandmarkOptions):
        return "landmarks"
    if isinstance(cfg.data, VideoOptions):
        return "video"
    return None


def _suffixes(kind: str) -> tuple[str, ...]:
    if kind == "video":
        from engine.data.decode import VIDEO_SUFFIXES

        return VIDEO_SUFFIXES
    return {"recording": (".csv",), "features": (".npy", ".npz"), "landmarks": (".npz",)}[kind]


def _check_file(path: Path, kind: str, cfg: RunConfig, run_name: str) -> None:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.suffix.lower() not in _suffixes(kind):
        what = f"a {path.suffix} file" if path.suffix else "a file without an extension"
        raise DataError(
            f"{path} is {what}; run {run_name} trained on '{cfg.data.source}' data and "
            f"takes {EXPECTS[kind]}"
        )


def _top(probs: np.ndarray, names: list[str], k: int) -> dict[str, Any]:
    order = np.argsort(-probs, kind="stable")
    return {
        "label": names[int(order[0])],
        "confidence": float(probs[order[0]]),
        "top": [{"label": names[int(i)], "probability": float(probs[i])} for i in order[:k]],
    }


def _scores(model: torch.nn.Module, batch: dict[str, Any]) -> np.ndarray:
    with torch.no_grad():
        return model.class_scores(model(batch), batch).float().numpy().astype(np.float64)


def _one(x: np.ndarray) -> dict[str, Any]:
    return pad_collate([{"x": np.asarray(x, dtype=np.float32), "label": 0, "id": "0", "index": 0}])


def landmark_sample(path: Path, cfg: RunConfig, input_dim: int | None) -> np.ndarray:
    """A landmark .npz as the run's landmark dataset reads an evaluation sample: (T, D)."""
    import zipfile

    from engine.data.landmark_cache import POINTS, load_npz, npz_shapes
    from engine.data.landmarks import FeatureSpec, _check, features

    d = cfg.data
    parts = tuple(dict.fromkeys(d.parts))
    coords = 3 if d.use_z else 2
    try:
        shapes = npz_shapes(path)
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read {path} ({exc}); expected {EXPECTS['landmarks']}") from None
    why = _check(shapes, parts, coords)
    if why is not None:
        raise DataError(
            f"{path} is not a landmark file this run reads ({why}); expected {EXPECTS['landmarks']}"
        )
    face = shapes["face"][1] if "face" in parts else 0
    spec = FeatureSpec(
        parts=parts,
        points=tuple(POINTS[p] or face for p in parts),
        coords=coords,
        max_frames=d.max_frames,
        normalize=d.normalize,
    )
    if input_dim is not None and spec.dim != input_dim:
        raise DataError(
            f"{path} gives {spec.dim} features per frame; the run's model takes {input_dim} "
            "(another number of face points?)"
        )
    read = tuple(dict.fromkeys(parts + ("pose", "left_hand", "right_hand")))
    return features(load_npz(path, read), spec)


def video_batch(path: Path, cfg: RunConfig) -> dict[str, Any]:
    """A whole video as the video sources make an evaluation clip: ``num_frames`` frames
    spread uniformly over it, short-side resize, centre crop, normalisation."""
    from engine.data.video import (
        base_frames,
        clip_spec,
        decode,
        open_video,
        require_video_libs,
        sample_indices,
        transform,
        video_collate,
    )

    require_video_libs()
    spec = clip_spec(cfg)
    try:
        frames = len(open_video(path))
        if frames < 1:
            raise ValueError("no frames")
        idx = sample_indices(frames, spec.num_frames, None)
        clip = transform(base_frames(decode(path, idx), None, spec.short_side), spec, None)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - decord's errors are of its own types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot decode video {path} ({first[:160]})") from None
    return video_collate([{"pixel_values": clip, "label": 0, "index": 0, "id": path.stem}])


def _predict_recording(
    path: Path, cfg: RunConfig, model: Any, data: dict[str, Any], top: int, batch_size: int
) -> dict[str, Any]:
    from engine.data.sequences_csv import windows_for_file

    windows, starts = windows_for_file(path, data["info"], cfg)
    names = [str(n) for n in data["class_names"]]
    parts = []
    for i in range(0, len(windows), batch_size):
        items = [
            {"x": np.asarray(w, dtype=np.float32), "label": 0, "id": str(j), "index": j}
            for j, w in enumerate(windows[i : i + batch_size], start=i)
        ]
        parts.append(_scores(model, pad_collate(items)))
    probs = np.concatenate(parts)
    window_len = cfg.data.window_size
    rows = [
        {
            "start": int(s),
            "end": int(s + (window_len or len(windows[k]))),
            "label": names[int(p.argmax())],
            "confidence": float(p.max()),
        }
        for k, (s, p) in enumerate(zip(starts, probs, strict=True))
    ]
    votes = np.bincount(probs.argmax(1), minlength=len(names))
    overall = _top(probs.mean(0), names, top)
    overall["votes"] = {names[i]: int(v) for i, v in enumerate(votes) if v}
    return {"file": str(path), "kind": "recording", "windows": rows, "overall": overall}


def predict_files(
    run_dir: str | Path,
    files: list[str | Path],
    *,
    top: int = 5,
    batch_size: int = 64,
    on_file: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """One result per file: ``{"file", "kind", "overall": {"label", "confidence", "top":
    [{"label", "probability"}] (the ``top`` most likely classes)}}``; a recording adds
    ``windows`` (per window: start, end, label, confidence) and ``overall.votes`` (windows
    per predicted class), its overall probabilities being the mean over its windows."""
    run_dir = Path(run_dir)
    cfg, model, data = load_trained(run_dir)
    kind = input_kind(cfg)
    if kind is None:
        raise DataError(f"slr predict cannot read new samples of '{cfg.data.source}' runs")
    top = max(1, int(top))
    names = [str(n) for n in data["class_names"]]
    out = []
    for i, f in enumerate(files, 1):
        path = Path(f)
        _check_file(path, kind, cfg, run_dir.name)
        if kind == "recording":
            out.append(_predict_recording(path, cfg, model, data, top, batch_size))
        else:
            if kind == "features":
                from engine.data.features import array_for_file

                batch = _one(array_for_file(path, data["info"]))
            elif kind == "landmarks":
                batch = _one(landmark_sample(path, cfg, data.get("input_dim")))
            else:
                batch = video_batch(path, cfg)
            probs = _scores(model, batch)[0]
            out.append({"file": str(path), "kind": kind, "overall": _top(probs, names, top)})
        if on_file is not None:
            on_file(i, len(files))
    return out


def predict_recording(
    run_dir: str | Path, file: str | Path, batch_size: int = 64, top: int = 5
) -> dict[str, Any]:
    """Per-window predictions and an overall label (the mean of the window probabilities)
    of one CSV recording."""
    cfg, _, _ = load_trained(run_dir)
    if cfg.data.source != "sequences_csv":
        raise DataError(
            f"predict_recording reads CSV recordings; this run trained on '{cfg.data.source}' data"
        )
    return predict_files(run_dir, [file], top=top, batch_size=batch_size)[0]


# --------------------------------------------------------------------------- evaluate


class _Remapped:
    """An evaluation split with its labels in the run's class indices, optionally without
    the samples whose label the run does not know (``keep``); items are indexed anew."""

    def __init__(self, ds: Any, keep: np.ndarray, labels: np.ndarray) -> None:
        self.ds = ds
        self.keep = [int(i) for i in keep]
        self.labels = np.asarray(labels, dtype=np.int64)
        self.ids = [ds.ids[i] for i in self.keep]

    def __len__(self) -> int:
        return len(self.keep)

    def __getitem__(self, key: Any) -> dict[str, Any]:
        i = int(key[0] if isinstance(key, tuple) else key)
        item = self.ds[self.keep[i]]
        item.update(label=int(self.labels[i]), index=i, id=self.ids[i])
        return item


class _Counted:
    """A loader that reports each batch it hands out (``on_batch()``)."""

    def __init__(self, loader: Any, on_batch: Callable[[], None]) -> None:
        self.loader, self.dataset, self.on_batch = loader, loader.dataset, on_batch

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            yield batch
            self.on_batch()


def same_family(a: RunConfig, b: RunConfig) -> bool:
    """Whether data of ``b``'s source makes the samples a model of ``a``'s source takes."""
    if a.data.source == b.data.source:
        return True
    for family in (LandmarkOptions, VideoOptions):
        if isinstance(a.data, family) and isinstance(b.data, family):
            return True
    return False


def _standardize_like_run(bundle: Any, datasets: list[Any], cfg: RunConfig, info: dict) -> None:
    """The samples standardised with the run's training statistics (data.json), not with
    statistics of the data being scored (the bundle is built with ``standardize: false``)."""
    mean, std = info.get("feature_mean"), info.get("feature_std")
    if cfg.data.source == "features":
        for ds in datasets:
            ds.mean, ds.std = mean, std
        return
    if cfg.data.source != "sequences_csv" or mean is None or std is None:
        return
    from engine.data import sequences_csv as sc

    files = sc.find_recordings(Path(bundle.info["root"]))
    # whole recordings are averaged down to data.downsample_to as the source does
    frames = cfg.data.downsample_to if cfg.data.window_size is None else None
    columns = list(bundle.info["feature_columns"])
    done: set[int] = set()
    for ds in datasets:
        for (r, _, _), sid in zip(ds.refs, ds.ids, strict=True):
            if r in done:
                continue
            name = sid.rsplit("@", 1)[0] if cfg.data.window_size is not None else sid
            x, _ = sc.read_recording(files[name], cfg.data.label_column, columns)
            x = sc.standardize(x, mean, std)
            ds.recordings[r] = sc.shorten(x, frames)
            done.add(r)


def eval_data_config(run_cfg: RunConfig, data_cfg: RunConfig, info: dict[str, Any]) -> RunConfig:
    """The config the scored data is built with: ``data_cfg``'s data section (the run's
    model, optim and training), never augmented, standardised later with the run's
    statistics, with the run's feature columns unless the data section names its own."""
    update: dict[str, Any] = {"augment": False}
    if data_cfg.data.source in ("features", "sequences_csv"):
        update["standardize"] = False
    if data_cfg.data.source == "sequences_csv" and not data_cfg.data.feature_columns:
        update["feature_columns"] = info.get("feature_columns")
    raw = run_cfg.to_dict()
    raw["data"] = {**data_cfg.data.model_dump(mode="json"), **update}
    return validate(raw, "the eval data")


def evaluate_run(
    run_dir: str | Path,
    data_cfg: RunConfig,
    *,
    name: str,
    checkpoint: str = "best",
    splits: list[str] | None = None,
    skip_unknown: bool = False,
    overwrite: bool = False,
    aggregate: str | None = None,
    device: str = "auto",
    on_stage: Callable[[str], None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Score the run's ``checkpoint`` (best or last) on the data of ``data_cfg`` (only its
    data section is used) and write ``RUN/eval-<name>/``. Returns ``{"eval_dir", "name",
    "report", "skipped_unknown"}``.

    ``splits``: of train, val, test (default: val and test, those the data has). Labels
    are matched to the run's classes by name; samples of a class the run does not know are
    a DataError unless ``skip_unknown`` (then left out and counted). The folder is written
    under a temporary name and renamed when complete: a stop leaves no partial folder, and
    an existing one is replaced only with ``overwrite``."""
    from engine import evaluate
    from engine.data import build_data
    from engine.evaluate import EVAL_NAME, EVAL_PREFIX
    from engine.inference import eval_loader, evaluate_split, sample_groups

    run_dir = Path(run_dir)
    if not EVAL_NAME.match(name):
        raise DataError(
            f"eval name '{name}': use letters, digits, '.', '_' and '-' (at most 64, "
            "starting with a letter or digit)"
        )
    if checkpoint not in CHECKPOINTS:
        raise DataError(f"checkpoint '{checkpoint}': choose best or last")
    out_dir = run_dir / f"{EVAL_PREFIX}{name}"
    if out_dir.exists() and not overwrite:
        raise DataError(f"{out_dir} exists; pass --overwrite to replace it or --name another")
    stage = on_stage or (lambda _s: None)
    stage("loading the model")
    ckpt_state: dict[str, Any] = {}
    run_cfg, model, data = load_trained(run_dir, CHECKPOINTS[checkpoint], ckpt_state)
    if not same_family(run_cfg, data_cfg):
        raise DataError(
            f"the data is '{data_cfg.data.source}' data but run {run_dir.name} trained on "
            f"'{run_cfg.data.source}' data"
        )
    run_names = [str(n) for n in data["class_names"]]
    cfg = eval_data_config(run_cfg, data_cfg, data["info"])
    stage("reading the data")
    bundle = build_data(cfg)
    dim = data.get("input_dim")
    if dim is not None and bundle.input_dim is not None and bundle.input_dim != dim:
        raise DataError(
            f"the data gives {bundle.input_dim} input features per frame; the run's model "
            f"takes {dim} (data.json input_dim)"
        )
    have = [s for s in ("train", "val", "test") if getattr(bundle, s) is not None]
    if splits == ["all"]:
        wanted = have
    else:
        wanted = list(splits) if splits else [s for s in ("val", "test") if s in have]
    for s in wanted:
        if s not in ("train", "val", "test"):
            raise DataError(f"split '{s}': choose train, val, test or all")
        if s not in have:
            raise DataError(f"the data has no {s} split (it has {', '.join(have)})")
    datasets = {s: getattr(bundle, s) for s in wanted}
    for ds in datasets.values():
        ds.augment = False
    _standardize_like_run(bundle, list(datasets.values()), cfg, data["info"])

    index = {n: i for i, n in enumerate(run_names)}
    code = np.asarray([index.get(str(n), -1) for n in bundle.class_names], dtype=np.int64)
    remapped, unknown, unknown_names = {}, 0, set()
    for s, ds in datasets.items():
        mapped = code[ds.labels] if len(ds.labels) else np.zeros(0, dtype=np.int64)
        bad = mapped < 0
        unknown += int(bad.sum())
        unknown_names |= {str(bundle.class_names[c]) for c in ds.labels[bad]}
        keep = np.flatnonzero(~bad)
        remapped[s] = _Remapped(ds, keep, mapped[keep])
    if unknown and not skip_unknown:
        shown = ", ".join(sorted(unknown_names)[:5]) + (", ..." if len(unknown_names) > 5 else "")
        raise DataError(
            f"{unknown} samples have labels run {run_dir.name} does not know ({shown}); "
            "pass --skip-unknown to leave them out"
        )
    for s, ds in remapped.items():
        if not len(ds):
            raise DataError(f"the {s} split holds no sample of run {run_dir.name}'s classes")

    from accelerate import Accelerator

    from engine.train import resolve_precision

    want_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if want_cuda and not torch.cuda.is_available():
        raise DataError("--device cuda but no CUDA device is available")
    acc = Accelerator(cpu=not want_cuda, mixed_precision=resolve_precision(run_cfg, want_cuda))
    from engine.threads import apply_budget

    workers = apply_budget(run_cfg.training.num_threads, cfg.data.num_workers)[
        "loader_workers"
    ]  # as the trainer does
    model = acc.prepare(model)
    batch_size = cfg.data.eval_batch_size or 2 * cfg.data.batch_size
    loaders = {
        s: eval_loader(ds, bundle.collate_fn, batch_size, acc, workers)
        for s, ds in remapped.items()
    }
    total, done = sum(len(dl) for dl in loaders.values()), 0

    def tick() -> None:
        nonlocal done
        done += 1
        if on_batch is not None:
            on_batch(done, total)

    stage("evaluating")
    results: dict[str, dict[str, Any]] = {}
    for s, dl in loaders.items():
        _, probs, labels, ids = evaluate_split(model, _Counted(dl, tick), acc, run_names)
        results[s] = {"ids": ids, "y_true": labels, "probs": probs}
        groups = sample_groups(cfg, bundle, remapped[s])
        if groups is not None:
            results[s]["groups"] = groups

    t = run_cfg.training
    root = cfg.data.root if cfg.data.root else bundle.info.get("root")
    meta: dict[str, Any] = {
        "eval_name": name,
        "checkpoint": CHECKPOINTS[checkpoint],
        "checkpoint_epoch": ckpt_state.get("epoch"),
        "checkpoint_step": ckpt_state.get("global_step"),
        "monitor": t.monitor,
        "data_source": cfg.data.source,
        "data_root": str(root) if root else None,
        "dataset": cfg.dataset_label(),
        "data": data_cfg.data.model_dump(mode="json"),
        "skipped_unknown": unknown,
        "evaluated_at": time.time(),
    }
    own = runs.read_json(run_dir / runs.EVAL_DIR / evaluate.REPORT_FILE)
    own_cal = (runs.clean_report(own) or {}).get("calibration")
    if own_cal:
        cal = evaluate.fixed_calibration(
            results,
            own_cal["threshold"],
            own_cal["default_threshold"],
            f"{own_cal.get('rule', 'calibrated')}, from the run's eval/",
        )
        if cal is not None:
            meta["calibration"] = cal
    thresholds = evaluate.default_thresholds(t.threshold_start, t.threshold_stop, t.threshold_step)

    stage("writing")
    tmp = run_dir / f".{EVAL_PREFIX}{name}.tmp"
    old = run_dir / f".{EVAL_PREFIX}{name}.old"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        report = evaluate.write_eval(
            tmp,
            results,
            run_names,
            thresholds,
            meta,
            group_aggregate=aggregate or t.group_aggregate,
        )
        if out_dir.exists():  # overwrite: swap, then drop the old folder
            shutil.rmtree(old, ignore_errors=True)
            out_dir.rename(old)
        tmp.rename(out_dir)
    finally:
        if old.exists() and not out_dir.exists():  # the swap failed half-way: put it back
            old.rename(out_dir)
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return {"eval_dir": str(out_dir), "name": name, "report": report, "skipped_unknown": unknown}
