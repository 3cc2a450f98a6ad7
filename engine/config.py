"""Run configuration: the pydantic schema, file loading, presets and ``--set`` overrides.

Precedence: preset < ``--config FILE`` < ``--set section.key=value``. Unknown keys and
wrong types raise :class:`ConfigError` with one line that names the key and lists the
valid keys of its section. This module imports no torch, so viewers can use it.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

SECTIONS = ("data", "model", "optim", "training")


MAX_BATCH = 65536  # a batch larger than this is a typo (1e12), not a plan


class ConfigError(Exception):
    """A bad preset, config file, key or value. The message is one line meant for people."""


class _Section(BaseModel):
    # allow_inf_nan=False: `--set optim.lr=.inf` is an error naming the key, not a null
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class SyntheticConfig(_Section):
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


class DataConfig(_Section):
    source: str = Field(
        "synthetic",
        description="Data source: synthetic, landmarks, wlasl, video_folder, sequences_csv, features.",
    )
    root: str | None = Field(
        None,
        description="Dataset root (metadata, videos or cache). Synthetic: where it is written.",
    )
    subset: int | None = Field(None, description="WLASL: keep the first N glosses (100, 300, ...).")
    batch_size: int = Field(16, ge=1, le=MAX_BATCH)
    eval_batch_size: int | None = Field(
        None, ge=1, le=MAX_BATCH, description="Default: 2 x batch_size."
    )
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes.")
    max_frames: int = Field(64, ge=1, description="Longer sequences are resampled to this length.")
    num_frames: int = Field(16, ge=1, description="Video: frames sampled per clip.")
    image_size: int = Field(224, ge=8, description="Video: crop size in pixels.")
    parts: list[Literal["pose", "left_hand", "right_hand", "face"]] = Field(
        default_factory=lambda: ["pose", "left_hand", "right_hand", "face"],
        description="Landmark parts used as features.",
    )
    use_z: bool = Field(False, description="Landmarks: include the z coordinate.")
    normalize: bool = Field(
        True, description="Landmarks: centre on the shoulders' midpoint, scale by shoulder width."
    )
    augment: bool = Field(True, description="Augment training samples.")
    noise_std: float = Field(0.01, ge=0, description="Augment: Gaussian noise std.")
    speed_range: tuple[float, float] = Field(
        (0.8, 1.2), description="Augment: temporal resampling factor range."
    )
    rotate_deg: float = Field(8.0, ge=0, description="Augment: max in-plane rotation (degrees).")
    scale_range: tuple[float, float] = Field((0.9, 1.1), description="Augment: scale range.")
    mirror: bool = Field(False, description="Augment: mirror x and swap hands (off: handedness).")
    seed: int = Field(0, description="Seed for splits and augmentation.")
    metadata: str | None = Field(
        None,
        description="WLASL: metadata JSON (a name in data.root or a path); video_folder: a CSV "
        "manifest (path,label,split). Default: found in data.root.",
    )
    crop_bbox: bool = Field(False, description="WLASL: crop each video to its signer bbox.")
    short_side: int | None = Field(
        None,
        ge=8,
        description="Video: frames are resized to this short side before cropping "
        "(default: image_size * 256/224).",
    )
    crop_scale: tuple[float, float] = Field(
        (0.5, 1.0), description="Video training: random resized crop area (share of the frame)."
    )
    temporal_scale: tuple[float, float] = Field(
        (0.8, 1.0),
        description="Video training: share of the segment a clip spans (random offset, jitter).",
    )
    hflip: bool = Field(
        False, description="Video training: random horizontal flip (off: handedness)."
    )
    mean: tuple[float, float, float] = Field(
        (0.485, 0.456, 0.406), description="Video: per-channel normalisation mean (RGB, 0..1)."
    )
    std: tuple[float, float, float] = Field(
        (0.229, 0.224, 0.225), description="Video: per-channel normalisation std (RGB, 0..1)."
    )
    uint8_clips: bool = Field(
        False,
        description="Video: clips travel as uint8 and the model normalises them on its device "
        "(4x less to move from loader workers; the WLASL presets turn it on).",
    )
    frame_cache: str | None = Field(
        None,
        description="Video: folder for a one-time cache of decoded, resized frames "
        "('auto': under $SLR_CACHE_DIR; null: decode every time).",
    )
    frame_cache_format: Literal["npy", "jpeg"] = Field(
        "npy", description="Video frame cache: raw uint8 (fastest, large) or JPEG (~10x smaller)."
    )
    label_column: str = Field(
        "label", description="sequences_csv: the column holding each frame's class label."
    )
    feature_columns: list[str] | None = Field(
        None,
        description="sequences_csv: feature columns (null: every numeric column but the label).",
    )
    window_size: int | None = Field(
        30,
        ge=1,
        description="sequences_csv: frames per sliding window (null: each recording is one sample).",
    )
    stride: int = Field(15, ge=1, description="sequences_csv: frames between window starts.")
    split_val_fraction: float = Field(
        0.15,
        gt=0,
        lt=1,
        description="sequences_csv, features: validation share when the data fixes no splits.",
    )
    split_test_fraction: float = Field(
        0.15,
        ge=0,
        lt=1,
        description="sequences_csv, features: test share when the data fixes no splits (0: no test).",
    )
    standardize: bool = Field(
        True,
        description="sequences_csv, features: z-score each feature with training-split mean/std.",
    )
    positive_label: str | bool | int | None = Field(
        None,
        description="Binary sequences_csv/features: the label given class index 1 (null: detect "
        "1/true/error-like labels, else sorted order).",
    )
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)

    @model_validator(mode="after")
    def _split_fractions_leave_a_train_split(self) -> DataConfig:
        total = self.split_val_fraction + self.split_test_fraction
        if total >= 1:
            raise ValueError(
                f"split_val_fraction + split_test_fraction = {total:g} leaves no training "
                "samples (must be below 1)"
            )
        return self


class ModelConfig(_Section):
    name: str = Field(
        "bigru",
        description="Model family: lstm, bilstm, gru, bigru, lstm_stack, transformer, mlp, ctc, "
        "videomae, temporal_cnn, tcn_attention, minirocket.",
    )
    hidden_size: int = Field(128, ge=1)
    num_layers: int = Field(2, ge=1)
    dropout: float = Field(0.3, ge=0, lt=1)
    num_heads: int = Field(4, ge=1, description="Transformer: attention heads.")
    ff_size: int | None = Field(None, ge=1, description="Transformer: feed-forward width.")
    pooling: Literal["mean", "last", "max"] = Field("mean", description="Sequence pooling.")
    hidden_sizes: list[int] = Field(
        default_factory=lambda: [128, 64],
        description="lstm_stack: widths of the stacked LSTM layers.",
    )
    dense_size: int = Field(32, ge=1, description="lstm_stack: width of the dense layer.")
    dense_dropout: float = Field(0.2, ge=0, lt=1, description="lstm_stack: dense dropout.")
    pretrained: str | None = Field(None, description="Hub id or local directory of weights.")
    config_overrides: dict[str, Any] = Field(
        default_factory=dict, description="Fields changed in the model's own config."
    )
    blank_penalty: float = Field(
        0.0, ge=0, description="CTC: subtracted from the blank logit while training."
    )
    freeze_backbone_epochs: int = Field(0, ge=0)
    gradient_checkpointing: bool = False
    channels: list[int] | None = Field(
        None,
        description="temporal_cnn, tcn_attention: width of each convolutional block "
        "(null: hidden_size for each of num_layers blocks).",
    )
    kernel_sizes: list[int] = Field(
        default_factory=lambda: [7, 5, 3],
        description="temporal_cnn: kernel sizes of the convolutions inside each residual block.",
    )
    kernel_size: int = Field(
        3, ge=1, description="tcn_attention: kernel size of the dilated convolutions."
    )
    norm: Literal["batch", "layer", "none"] = Field(
        "batch",
        description="temporal_cnn, tcn_attention: batch (BatchNorm over real frames only), "
        "layer (each frame over channels) or none.",
    )
    input_norm: Literal["none", "layer", "instance", "instance_stats", "instance_rank"] = Field(
        "none",
        description="Input normalisation. bigru/bilstm/gru/lstm/transformer/ctc/mlp: layer = "
        "LayerNorm across each frame's features (it erases a shift shared by all features and, "
        "with one channel, the whole signal; the sources already standardise each feature). "
        "temporal_cnn, tcn_attention: instance = z-score each channel over each recording's "
        "real frames before the first convolution; instance_stats = that, plus each channel's "
        "mean and log std (the level and scale it took away) as constant channels and head "
        "inputs; instance_rank = instance_stats plus each channel's per-recording mid-ranks "
        "scaled to [-1, 1] (robust to spikes and to the scale of the values).",
    )
    block_dropout: float = Field(
        0.0, ge=0, lt=1, description="temporal_cnn, tcn_attention: dropout after each block."
    )
    augment_scale: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="temporal_cnn, tcn_attention training: random gain per recording in "
        "[1-s, 1+s].",
    )
    augment_shift: float = Field(
        0.0,
        ge=0,
        le=1,
        description="temporal_cnn, tcn_attention training: random circular shift of each "
        "recording's frames by up to this share of its length.",
    )
    pool: int = Field(
        1,
        ge=1,
        description="temporal_cnn: average-pool frames by this factor between blocks "
        "(1: off; 2 halves the frames before each block after the first).",
    )
    cnn_pooling: Literal["mean", "max", "meanmax"] = Field(
        "mean",
        description="temporal_cnn: pooling over real frames before the head (meanmax: both, "
        "concatenated).",
    )
    num_kernels: int = Field(
        10_000, ge=84, description="minirocket: convolution kernels (features), a multiple of 84."
    )
    max_dilations_per_kernel: int = Field(32, ge=1, description="minirocket: dilations per kernel.")
    classifier: Literal["ridge", "logistic"] = Field(
        "ridge",
        description="minirocket: RidgeClassifierCV (alphas logspace(-3, 3, 10)) or logistic "
        "regression on the scaled features.",
    )
    max_length: int | None = Field(
        None,
        ge=9,
        description="minirocket: recordings are zero-padded to this many frames (null: the "
        "longest training recording); longer ones are transformed at their own length.",
    )


class OptimConfig(_Section):
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


class TrainingConfig(_Section):
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

    @model_validator(mode="after")
    def _threshold_range(self) -> TrainingConfig:
        if self.threshold_start > self.threshold_stop:
            raise ValueError("threshold_start must not exceed threshold_stop")
        return self


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    name: str = Field("custom", description="Preset or experiment name.")
    description: str = ""
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)

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


# --------------------------------------------------------------------------- errors


def _model_at(path: tuple[Any, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = RunConfig
    for part in path:
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            return None
    return model


def _section_keys(path: tuple[Any, ...]) -> tuple[str, str]:
    """(section label, comma list of valid keys) for the section holding ``path``."""
    parent = path[:-1]
    model = _model_at(parent) or RunConfig
    label = ".".join(str(p) for p in parent) or "top level"
    return label, ", ".join(model.model_fields)


def _describe(err: ValidationError) -> str:
    e = err.errors()[0]
    loc = tuple(p for p in e["loc"] if not isinstance(p, int)) or ("?",)
    key = ".".join(str(p) for p in loc)
    label, valid = _section_keys(loc)
    if e["type"] == "extra_forbidden":
        return f"unknown key '{key}'; valid keys of {label}: {valid}"
    if _model_at(loc) is not None:  # a rule across keys of one section
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


def validate(raw: dict[str, Any], source: str = "config") -> RunConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of sections {', '.join(SECTIONS)}")
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(f"{source}: {_describe(err)}") from None


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
    return raw


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
    """The effective config: preset < config file < ``extra`` (CLI flags) < ``--set``."""
    raw: dict[str, Any] = {}
    source = "config"
    if preset:
        raw = load_preset_raw(preset)
        source = f"preset {preset}"
    if config_file:
        raw = deep_merge(raw, load_file(config_file))
        source = str(config_file)
    if extra:
        raw = deep_merge(raw, extra)
    for item in sets or []:
        raw = deep_merge(raw, parse_set(item))
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
