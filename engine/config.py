"""Run configuration: the pydantic schema, file loading, presets and ``--set`` overrides.

Precedence: preset < ``--config FILE`` < ``--set section.key=value``. Unknown keys and
wrong types raise :class:`ConfigError` with one line that names the key and lists the
valid keys of its section. This module imports no torch, so viewers can use it.

``data`` and ``model`` are unions: ``data.source`` picks the data source's options model
and ``model.name`` the model family's (both named in :mod:`engine.catalog`). The shared
bases are here: :class:`DataOptions` (what every source takes) with its families
:class:`LandmarkOptions`, :class:`VideoOptions` and :class:`TableOptions`, and
:class:`Section`, the base of every section. Each source's own model lives in its module
under ``engine/data/``, each family's in ``engine/models/options.py``; all of them import
without torch.

Configs of the old flat layout (one bag of every source's and every model's keys) still
load: see :func:`upgrade`.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from engine import catalog
from engine.errors import ConfigError

SECTIONS = ("data", "model", "optim", "training")


MAX_BATCH = 65536  # a batch larger than this is a typo (1e12), not a plan


class Section(BaseModel):
    """The base of every config section: unknown keys are errors, so are inf and nan."""

    # allow_inf_nan=False: `--set optim.lr=.inf` is an error naming the key, not a null
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class SyntheticConfig(Section):
    """The built-in synthetic 'signs' (landmark sequences shaped like MediaPipe Holistic)."""

    num_classes: int = Field(10, ge=2, description="How many sign classes to generate.")
    samples_per_class: int = Field(
        60, ge=3, description="Samples of the most frequent class (others have fewer)."
    )
    imbalance: float = Field(
        0.5, gt=0, le=1, description="Samples of the rarest class / samples of the most frequent."
    )
    min_frames: int = Field(24, ge=4, description="Shortest sequence (frames).")
    max_frames: int = Field(48, ge=4, description="Longest sequence (frames).")
    num_signers: int = Field(12, ge=1, description="Distinct simulated signers.")
    noise: float = Field(0.01, ge=0, description="Std of per-landmark jitter (normalised units).")
    missing_hand_prob: float = Field(
        0.05, ge=0, le=1, description="Chance that a hand is undetected in a frame run."
    )
    val_fraction: float = Field(0.15, gt=0, lt=1)
    test_fraction: float = Field(0.15, gt=0, lt=1)
    seed: int = Field(0, description="Generator seed: same seed, same dataset.")

    @model_validator(mode="after")
    def _fractions_leave_a_train_split(self) -> SyntheticConfig:
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(
                f"val_fraction + test_fraction = {self.val_fraction + self.test_fraction:g} "
                "leaves no training samples (must be below 1)"
            )
        return self


# --------------------------------------------------------------------------- data options


class DataOptions(Section):
    """What every data source takes. A source's options model subclasses this (or one of
    the family bases below), sets ``source`` to a ``Literal`` of its name, and is named in
    :data:`engine.catalog.SOURCES`."""

    source: str = Field("synthetic", description=f"Data source: {', '.join(catalog.SOURCES)}.")
    root: str | None = Field(
        None,
        description="Dataset root (metadata, videos or cache). Synthetic: where it is written.",
    )
    batch_size: int = Field(16, ge=1, le=MAX_BATCH)
    eval_batch_size: int | None = Field(
        None, ge=1, le=MAX_BATCH, description="Default: 2 x batch_size."
    )
    num_workers: int | None = Field(
        None,
        ge=0,
        description="DataLoader worker processes (null: none on fewer than 4 cores, else a "
        "quarter of the cores this run may use, at most 4; see log.txt).",
    )
    prefetch_batches: int = Field(
        2,
        ge=0,
        le=64,
        description="Without loader workers: training batches made ahead in a background "
        "thread while the model steps (0: none; the batches are the same either way).",
    )
    augment: bool = Field(True, description="Augment training samples.")
    seed: int = Field(0, description="Seed for splits and augmentation.")


class LandmarkOptions(DataOptions):
    """Landmark sequences (``synthetic``, ``landmarks``): features and augmentation."""

    max_frames: int = Field(64, ge=1, description="Longer sequences are resampled to this length.")
    parts: list[Literal["pose", "left_hand", "right_hand", "face"]] = Field(
        default_factory=lambda: ["pose", "left_hand", "right_hand", "face"],
        description="Landmark parts used as features.",
    )
    use_z: bool = Field(False, description="Include the z coordinate.")
    normalize: bool = Field(
        True, description="Centre on the shoulders' midpoint, scale by shoulder width."
    )
    noise_std: float = Field(0.01, ge=0, description="Augment: Gaussian noise std.")
    speed_range: tuple[float, float] = Field(
        (0.8, 1.2), description="Augment: temporal resampling factor range."
    )
    rotate_deg: float = Field(8.0, ge=0, description="Augment: max in-plane rotation (degrees).")
    scale_range: tuple[float, float] = Field((0.9, 1.1), description="Augment: scale range.")
    mirror: bool = Field(False, description="Augment: mirror x and swap hands (off: handedness).")
    cache_mb: int = Field(
        1024,
        ge=0,
        description="MiB of decoded samples each split keeps in memory, per process: a file "
        "is read once per run and augmentation runs on the cached arrays (0: read every time).",
    )


class VideoOptions(DataOptions):
    """Video clips (``wlasl``, ``video_folder``): sampling, crops, normalisation, cache."""

    num_frames: int = Field(16, ge=1, description="Frames sampled per clip.")
    image_size: int = Field(224, ge=8, description="Crop size in pixels.")
    crop_bbox: bool = Field(
        False,
        description="Crop each video to its signer bbox (WLASL metadata has them; "
        "video_folder videos have none).",
    )
    short_side: int | None = Field(
        None,
        ge=8,
        description="Frames are resized to this short side before cropping "
        "(default: image_size * 256/224).",
    )
    crop_scale: tuple[float, float] = Field(
        (0.5, 1.0), description="Training: random resized crop area (share of the frame)."
    )
    temporal_scale: tuple[float, float] = Field(
        (0.8, 1.0),
        description="Training: share of the segment a clip spans (random offset, jitter).",
    )
    hflip: bool = Field(False, description="Training: random horizontal flip (off: handedness).")
    mean: tuple[float, float, float] = Field(
        (0.485, 0.456, 0.406), description="Per-channel normalisation mean (RGB, 0..1)."
    )
    std: tuple[float, float, float] = Field(
        (0.229, 0.224, 0.225), description="Per-channel normalisation std (RGB, 0..1)."
    )
    uint8_clips: bool = Field(
        False,
        description="Clips travel as uint8 and the model normalises them on its device "
        "(4x less to move from loader workers; the WLASL presets turn it on).",
    )
    frame_cache: str | None = Field(
        None,
        description="Folder for a one-time cache of decoded, resized frames "
        "('auto': under $SLR_CACHE_DIR; null: decode every time).",
    )
    frame_cache_format: Literal["npy", "jpeg"] = Field(
        "npy", description="Frame cache: raw uint8 (fastest, large) or JPEG (~10x smaller)."
    )


class TableOptions(DataOptions):
    """Tabular features (``sequences_csv``, ``features``): splits, scaling, binary labels."""

    noise_std: float = Field(0.01, ge=0, description="Augment: Gaussian noise std.")
    split_val_fraction: float = Field(
        0.15, gt=0, lt=1, description="Validation share when the data fixes no splits."
    )
    split_test_fraction: float = Field(
        0.15,
        ge=0,
        lt=1,
        description="Test share when the data fixes no splits (0: no test).",
    )
    standardize: bool = Field(
        True, description="z-score each feature with training-split mean/std."
    )
    positive_label: str | bool | int | None = Field(
        None,
        description="Binary: the label given class index 1 (null: detect 1/true/error-like "
        "labels, else sorted order).",
    )

    @model_validator(mode="after")
    def _split_fractions_leave_a_train_split(self) -> TableOptions:
        total = self.split_val_fraction + self.split_test_fraction
        if total >= 1:
            raise ValueError(
                f"split_val_fraction + split_test_fraction = {total:g} leaves no training "
                "samples (must be below 1)"
            )
        return self


# --------------------------------------------------------------------------- model options


class ModelOptions(Section):
    """What every model family takes. A family's options model subclasses this in
    ``engine/models/options.py``, gives ``name`` its default, and is named in
    :data:`engine.catalog.MODELS` (for each name it serves). Names are case-insensitive."""

    name: str = Field("bigru", description=f"Model family: {', '.join(catalog.MODELS)} (any case).")

    @field_validator("name")
    @classmethod
    def _a_name_of_this_family(cls, value: str) -> str:
        if cls is ModelOptions:
            return value
        spec = f"{cls.__module__}:{cls.__qualname__}"
        served = [n for n, m in catalog.MODELS.items() if m.options == spec]
        if value.lower() not in served:
            raise ValueError(f"'{value}' is not one of {', '.join(served)}")
        return value


# --------------------------------------------------------------------------- optim, training


class OptimConfig(Section):
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    scheduler: Literal["cosine", "steplr", "plateau", "none"] = "cosine"
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Cosine: linear warm-up share.")
    min_lr_ratio: float = Field(0.0, ge=0, le=1, description="Cosine: floor as a share of lr.")
    step_size: int = Field(10, ge=1, description="StepLR: epochs between decays.")
    gamma: float = Field(0.1, gt=0, description="StepLR: decay factor.")
    plateau_factor: float = Field(0.5, gt=0, lt=1, description="Plateau: decay factor.")
    plateau_patience: int = Field(2, ge=0, description="Plateau: epochs without improvement.")


class TrainingConfig(Section):
    max_epochs: int = Field(20, ge=1)
    patience: int | None = Field(
        5, ge=1, description="Early stopping: epochs without improvement (null: off)."
    )
    monitor: str = Field("val_acc", description="Metric for best.pt and early stopping.")
    monitor_mode: Literal["auto", "max", "min"] = Field(
        "auto", description="auto: min for *loss, max otherwise."
    )
    monitor_tie_break: str | None = Field(
        "val_loss",
        description="When the monitored metric ties its best (common on a small val split, "
        "where accuracy moves in steps of 1/n), a better value of this metric counts as an "
        "improvement (null: ties never improve).",
    )
    min_epoch_steps: int = Field(
        20,
        ge=0,
        description="An epoch makes at least this many optimiser steps: a training split too "
        "small for that is passed over several times per epoch, so patience, plateau and "
        "warm-up (counted in epochs) keep their meaning on small data (0: one pass).",
    )
    min_steps: int = Field(
        500,
        ge=0,
        description="Early stopping never ends a run before this many optimiser steps.",
    )
    num_threads: int | None = Field(
        None,
        ge=1,
        description="torch intra-op threads (null: the cores this run may use, divided by the "
        "runs sharing them, less its DataLoader workers; see log.txt).",
    )
    target_metric: float | None = Field(
        None, description="Stop once the monitored metric reaches this value."
    )
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    num_beams: int = Field(
        4, ge=1, description="Translation: beam width of the final evaluation's beam search."
    )
    num_examples: int = Field(
        5, ge=0, description="Translation: example translations recorded per epoch."
    )
    class_weighted: bool = Field(False, description="Cross-entropy weighted by 1/class count.")
    grad_clip: float | None = Field(None, gt=0, description="Max gradient norm (null: off).")
    seed: int = 42
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "bf16", "fp16", "no"] = Field(
        "auto", description="CUDA mixed precision (auto: bf16 where supported, else fp16)."
    )
    log_every_steps: int = Field(10, ge=1)
    threshold_start: float = Field(0.05, ge=0, le=1)
    threshold_stop: float = Field(0.95, ge=0, le=1)
    threshold_step: float = Field(0.05, ge=0.001, le=1, description="At least 0.001.")
    telemetry_interval_s: float = Field(5.0, gt=0)
    eval_test: bool = Field(True, description="Evaluate best.pt on test at the end.")
    tensorboard: bool = Field(False, description="Write TensorBoard event files into the run.")
    wandb: str | None = Field(None, description="Weights & Biases project to log to.")
    default_threshold: float = Field(
        0.5, ge=0, le=1, description="Binary: the uncalibrated decision threshold."
    )
    threshold_rule: Literal["best_f1", "best_accuracy", "default"] = Field(
        "best_f1", description="Binary: how the threshold is calibrated on val."
    )
    group_aggregate: Literal["mean", "max", "vote"] = Field(
        "mean",
        description="Grouped metrics (the windows of a recording, a features group): how "
        "the samples of a group are combined: mean of their probabilities, max (then "
        "renormalised) or a majority vote of their predictions (ties: higher mean).",
    )

    @model_validator(mode="after")
    def _threshold_range(self) -> TrainingConfig:
        if self.threshold_start > self.threshold_stop:
            raise ValueError("threshold_start must not exceed threshold_stop")
        return self


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    name: str = Field("custom", description="Preset or experiment name.")
    description: str = ""
    # SerializeAsAny: a section dumps every field of its source's (family's) options model
    data: SerializeAsAny[DataOptions] = Field(default_factory=lambda: _default("data"))
    model: SerializeAsAny[ModelOptions] = Field(default_factory=lambda: _default("model"))
    optim: OptimConfig = Field(default_factory=OptimConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)

    @field_validator("data", "model", mode="before")
    @classmethod
    def _options_by_name(cls, value: Any, info: Any) -> Any:
        """A mapping is validated by the options model its ``source`` (``name``) picks."""
        if not isinstance(value, dict):
            return value  # an options model already, or a wrong type the base refuses
        section = info.field_name
        key, default = UNION_KEYS[section]
        name = value.get(key, default)
        klass = options_class(section, name)
        if klass is None:
            raise ValidationError.from_exception_data(
                section,
                [
                    {
                        "type": PydanticCustomError(
                            "unknown_name", "{message}", {"message": _unknown(section, name)}
                        ),
                        "loc": (key,),
                        "input": name,
                    }
                ],
            )
        return klass.model_validate(value)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def dataset_label(self) -> str:
        """A short name for the data: wlasl100, synthetic10, landmarks, ..."""
        d = self.data
        if d.source == "wlasl":
            return f"wlasl{d.subset}" if d.subset else "wlasl"
        if d.source == "synthetic":
            return f"synthetic{d.synthetic.num_classes}"
        return d.source


# --------------------------------------------------------------------------- the unions

# section -> (the key that picks its options model, its default)
UNION_KEYS: dict[str, tuple[str, str]] = {
    "data": ("source", "synthetic"),
    "model": ("name", "bigru"),
}


def options_class(section: str, name: Any) -> type[BaseModel] | None:
    """The options model ``data.source`` (``section="data"``) or ``model.name`` picks; None
    for a name the catalog does not have."""
    entry = catalog.find_source(name) if section == "data" else catalog.find_model(name)
    return None if entry is None else catalog.load_attr(entry.options)


def _unknown(section: str, name: Any) -> str:
    if section == "data":
        return catalog.unknown_source(name, "data.source")
    return catalog.unknown_model(name, "model.name")


def _default(section: str) -> BaseModel:
    klass = options_class(section, UNION_KEYS[section][1])
    assert klass is not None
    return klass()


# --------------------------------------------------------------------------- errors


def _concrete(model: type[BaseModel], raw: Any) -> type[BaseModel]:
    """The member of a union section (``data``, ``model``) that ``raw`` validates with."""
    for section, base in (("data", DataOptions), ("model", ModelOptions)):
        if model is base:
            key, default = UNION_KEYS[section]
            name = raw.get(key, default) if isinstance(raw, dict) else default
            return options_class(section, name) or model
    return model


def _model_at(path: tuple[Any, ...], raw: Any = None) -> type[BaseModel] | None:
    """The section model at ``path`` (the options model of the raw config's source or
    model family for ``data``/``model``); None where ``path`` is not a section."""
    model: type[BaseModel] = RunConfig
    node = raw
    for part in path:
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        node = node.get(part) if isinstance(node, dict) else None
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = _concrete(ann, node)
        else:
            return None
    return model


def _section_keys(path: tuple[Any, ...], raw: Any = None) -> tuple[str, str]:
    """(section label, comma list of valid keys) for the section holding ``path``."""
    parent = path[:-1]
    model = _model_at(parent, raw) or RunConfig
    label = ".".join(str(p) for p in parent) or "top level"
    if len(parent) == 1 and model not in (DataOptions, ModelOptions):
        union = UNION_KEYS.get(str(parent[0]))
        if union is not None:  # data (source wlasl), model (name videomae)
            section = raw.get(parent[0]) if isinstance(raw, dict) else None
            name = section.get(union[0], union[1]) if isinstance(section, dict) else union[1]
            label += f" ({union[0]} {name})"
    return label, ", ".join(model.model_fields)


def _describe(err: ValidationError, raw: Any = None) -> str:
    """One line for the first error; ``raw`` (the config validated) tells which source's or
    model family's keys to list."""
    e = err.errors()[0]
    loc = tuple(p for p in e["loc"] if not isinstance(p, int)) or ("?",)
    key = ".".join(str(p) for p in loc)
    if e["type"] == "unknown_name":
        return str(e["msg"])
    label, valid = _section_keys(loc, raw)
    if e["type"] == "extra_forbidden":
        return f"unknown key '{key}'; valid keys of {label}: {valid}"
    if _model_at(loc, raw) is not None:  # a rule across keys of one section
        msg = str(e["msg"]).removeprefix("Value error, ")
        return f"bad values in '{key}': {msg}"
    value = _short_repr(e.get("input"))
    return f"bad value for '{key}' ({value}): {e['msg']}; valid keys of {label}: {valid}"


def _short_repr(value: Any) -> str:
    """repr of a bad value, bounded: a YAML alias bomb must not become a gigabyte line."""
    import reprlib

    r = reprlib.Repr()
    r.maxlevel, r.maxlist, r.maxdict, r.maxstring, r.maxother = 3, 6, 6, 60, 60
    return r.repr(value)


def validate(raw: dict[str, Any], source: str = "config", *, saved: bool = False) -> RunConfig:
    """The config ``raw`` describes, strictly; ``saved``: ``raw`` is a saved run's
    config.json, which may be of the old flat layout (:func:`upgrade`)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of sections {', '.join(SECTIONS)}")
    if saved:
        raw = upgrade(raw, saved=True)
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(f"{source}: {_describe(err, raw)}") from None


# --------------------------------------------------------------------------- the old flat layout

# Every key of the flat ``data``/``model`` sections before options per source and per model
# (one bag for all of them), with its default then. Frozen: this is what old files hold.
FLAT_DEFAULTS: dict[str, dict[str, Any]] = {
    "data": {
        "root": None,
        "subset": None,
        "batch_size": 16,
        "eval_batch_size": None,
        "num_workers": 0,
        "max_frames": 64,
        "num_frames": 16,
        "image_size": 224,
        "parts": ["pose", "left_hand", "right_hand", "face"],
        "use_z": False,
        "normalize": True,
        "augment": True,
        "noise_std": 0.01,
        "speed_range": [0.8, 1.2],
        "rotate_deg": 8.0,
        "scale_range": [0.9, 1.1],
        "mirror": False,
        "seed": 0,
        "metadata": None,
        "crop_bbox": False,
        "short_side": None,
        "crop_scale": [0.5, 1.0],
        "temporal_scale": [0.8, 1.0],
        "hflip": False,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "uint8_clips": False,
        "frame_cache": None,
        "frame_cache_format": "npy",
        "label_column": "label",
        "feature_columns": None,
        "window_size": 30,
        "stride": 15,
        "split_val_fraction": 0.15,
        "split_test_fraction": 0.15,
        "standardize": True,
        "positive_label": None,
        "synthetic": {
            "num_classes": 10,
            "samples_per_class": 60,
            "imbalance": 0.5,
            "min_frames": 24,
            "max_frames": 48,
            "num_signers": 12,
            "noise": 0.01,
            "missing_hand_prob": 0.05,
            "val_fraction": 0.15,
            "test_fraction": 0.15,
            "seed": 0,
        },
    },
    "model": {
        "hidden_size": 128,
        "num_layers": 2,
        "dropout": 0.3,
        "num_heads": 4,
        "ff_size": None,
        "pooling": "mean",
        "hidden_sizes": [128, 64],
        "dense_size": 32,
        "dense_dropout": 0.2,
        "pretrained": None,
        "config_overrides": {},
        "blank_penalty": 0.0,
        "freeze_backbone_epochs": 0,
        "gradient_checkpointing": False,
        "channels": None,
        "kernel_sizes": [7, 5, 3],
        "kernel_size": 3,
        "norm": "batch",
        "input_norm": "none",
        "block_dropout": 0.0,
        "augment_scale": 0.0,
        "augment_shift": 0.0,
        "pool": 1,
        "cnn_pooling": "mean",
        "num_kernels": 10_000,
        "max_dilations_per_kernel": 32,
        "classifier": "ridge",
        "max_length": None,
    },
}


def _is_default(value: Any, default: Any) -> bool:
    """``value`` (from YAML or JSON) equals the old default; a mapping when each key it sets
    does."""
    if isinstance(default, dict):
        return isinstance(value, dict) and all(
            k in default and _is_default(v, default[k]) for k, v in value.items()
        )
    if isinstance(default, list):
        return (
            isinstance(value, list | tuple)
            and len(value) == len(default)
            and all(map(_is_default, value, default))
        )
    if isinstance(value, bool) or isinstance(default, bool):
        return value is default  # True is not 1
    return value == default  # 8 is 8.0


def _section_name(raw: Any, section: str, base: Any) -> Any:
    """``data.source`` (``model.name``) of ``raw``, else of ``base``, else the default."""
    key, default = UNION_KEYS[section]
    for layer in (raw, base):
        sec = layer.get(section) if isinstance(layer, dict) else None
        if isinstance(sec, dict) and key in sec:
            return sec[key]
    return default


def upgrade(raw: Any, *, saved: bool = False, base: Any = None) -> Any:
    """``raw`` without the leftovers of the old flat layout.

    Before options per source and per model, ``data`` and ``model`` were one bag each, and
    a saved config.json held every key of it. Such a key that the section's source (model
    family) does not have is *foreign*: it never had an effect. A foreign key at its old
    default is dropped (so an old dump or a file copied from one loads); with ``saved``
    (a saved run's config.json) every foreign key of the old layout is dropped, whatever
    its value. Any other key stays, so a typo is still an error. ``base``: the layers
    below ``raw``, whose ``data.source``/``model.name`` apply when ``raw`` sets none.
    Never raises: what it cannot read it leaves as it is."""
    if not isinstance(raw, dict):
        return raw
    out = dict(raw)
    for section, flat in FLAT_DEFAULTS.items():
        sec = raw.get(section)
        if not isinstance(sec, dict):
            continue
        try:
            klass = options_class(section, _section_name(raw, section, base))
        except Exception:  # noqa: BLE001 - an options module that fails to import: strict
            klass = None
        if klass is None:
            continue
        known = klass.model_fields
        drop = {
            k
            for k, v in sec.items()
            if k not in known and k in flat and (saved or _is_default(v, flat[k]))
        }
        if drop:
            out[section] = {k: v for k, v in sec.items() if k not in drop}
    return out


# a folder with one of these is a run folder (see engine.runs, which this module cannot import)
RUN_CONFIG = "config.json"
_RUN_MARKERS = ("run.json", "metrics.jsonl", "last.pt", "best.pt")


def is_saved_run_config(path: str | Path) -> bool:
    """``path`` is a run folder's config.json (written by the engine, maybe long ago)."""
    p = Path(path)
    return p.name == RUN_CONFIG and any((p.parent / m).exists() for m in _RUN_MARKERS)


# --------------------------------------------------------------------------- presets


def _preset_dir() -> Any:
    return resources.files("engine.presets")


def preset_names() -> list[str]:
    return sorted(
        p.name[: -len(".yaml")] for p in _preset_dir().iterdir() if p.name.endswith(".yaml")
    )


def load_preset_raw(name: str) -> dict[str, Any]:
    names = preset_names()
    if name not in names:
        raise ConfigError(f"no preset named '{name}'; available: {', '.join(names)}")
    text = (_preset_dir() / f"{name}.yaml").read_text()
    raw = yaml.safe_load(text) or {}
    raw.setdefault("name", name)
    return raw


def presets() -> list[RunConfig]:
    return [validate(load_preset_raw(n), f"preset {n}") for n in preset_names()]


# --------------------------------------------------------------------------- files & overrides


def load_file(path: str | Path) -> dict[str, Any]:
    """The mapping a YAML or JSON config file holds. A run folder's config.json
    (:func:`is_saved_run_config`) comes upgraded from the old flat layout (:func:`upgrade`
    with ``saved``); any other file as written."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        text = p.read_text(encoding="utf-8")
        raw = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except UnicodeDecodeError:
        raise ConfigError(f"cannot parse {p}: not a text file (YAML or JSON, UTF-8)") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {p}: {exc.strerror or exc}") from None
    except RecursionError:
        raise ConfigError(f"cannot parse {p}: nested too deeply") from None
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot parse {p}: {first}") from None
    if raw is None:
        raise ConfigError(f"{p} is empty: expected a mapping of sections {', '.join(SECTIONS)}")
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: expected a mapping of sections {', '.join(SECTIONS)}")
    return upgrade(raw, saved=True) if is_saved_run_config(p) else raw


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Merge ``over`` into a copy of ``base``; nested mappings merge key by key, except
    ``config_overrides`` style free-form dicts, which merge too (later keys win)."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def merge_layer(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """:func:`deep_merge` of one layer (preset < file < flags < each ``--set``) over the
    layers below. A layer that switches ``data.source`` (``model.name`` to a family with
    other options) first drops the keys of the layers below that the new options model
    does not have, so ``--preset demo --set data.source=sequences_csv`` works; the keys of
    the switching layer itself, and of every later one, stay strict."""
    out = dict(base)
    for section, (key, default) in UNION_KEYS.items():
        new, old = over.get(section), base.get(section)
        if not (isinstance(new, dict) and key in new and isinstance(old, dict)):
            continue
        klass = options_class(section, new[key])
        if klass is None or klass is options_class(section, old.get(key, default)):
            continue  # an unknown name fails validation; the same options keep every key
        out[section] = {k: v for k, v in old.items() if k in klass.model_fields}
    return deep_merge(out, over)


def parse_set(item: str) -> dict[str, Any]:
    """``a.b.c=value`` -> ``{"a": {"b": {"c": value}}}`` with value parsed as YAML."""
    if "=" not in item:
        raise ConfigError(f"--set '{item}': expected section.key=value")
    key, _, text = item.partition("=")
    key = key.strip()
    parts = key.split(".")
    if len(parts) < 2 or not all(parts):
        raise ConfigError(
            f"--set '{item}': expected section.key=value with a section among {', '.join(SECTIONS)}"
        )
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        value = text
    out: dict[str, Any] = {}
    cur = out
    for p in parts[:-1]:
        cur[p] = {}
        cur = cur[p]
    cur[parts[-1]] = value
    return out


def resolve(
    preset: str | None = None,
    config_file: str | Path | None = None,
    sets: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> RunConfig:
    """The effective config: preset < config file < ``extra`` (CLI flags) < ``--set``.

    Each layer merges with :func:`merge_layer` (a switch of source or model family drops
    the keys below that the new one does not have); a config file's leftovers of the old
    flat layout at their old defaults are dropped first (:func:`upgrade`)."""
    raw: dict[str, Any] = {}
    source = "config"
    if preset:
        raw = load_preset_raw(preset)
        source = f"preset {preset}"
    if config_file:
        raw = merge_layer(raw, upgrade(load_file(config_file), base=raw))
        source = str(config_file)
    if extra:
        raw = merge_layer(raw, extra)
    for item in sets or []:
        raw = merge_layer(raw, parse_set(item))
        source = "--set"
    if not preset and not config_file:
        raw.setdefault("name", "custom")
    return validate(raw, source)


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (for comparing configs)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out
