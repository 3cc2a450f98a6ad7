"""VideoMAE video classifier (HuggingFace transformers).

``model.pretrained`` is a hub id (fetched on the user's machine) or a local directory;
``null`` builds a randomly initialised model from the config. ``model.config_overrides``
changes config fields (tests build a tiny model this way). The classification head is
resized to the dataset's classes. ``model.freeze_backbone_epochs`` keeps the backbone
fixed for the first epochs (the trainer drops its gradients), and
``model.gradient_checkpointing`` trades compute for memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from engine.errors import ModelError
from engine.models.base import SLRModel

DEFAULT_HUB_ID = "MCG-NJU/videomae-base-finetuned-kinetics"


class VideoMAEClassifier(SLRModel):
    """Wraps ``VideoMAEForVideoClassification`` to take the batch dict. uint8 clips
    (``data.uint8_clips``) are normalised here, on the model's device."""

    def __init__(
        self,
        net: nn.Module,
        mean: tuple[float, float, float] = (0.485, 0.456, 0.406),
        std: tuple[float, float, float] = (0.229, 0.224, 0.225),
    ):
        super().__init__()
        self.net = net
        # (x / 255 - mean) / std as one multiply-add; not saved in checkpoints
        std_t = torch.tensor(std, dtype=torch.float32).view(1, 1, 3, 1, 1)
        mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 1, 3, 1, 1)
        self.register_buffer("_scale", 1.0 / (255.0 * std_t), persistent=False)
        self.register_buffer("_shift", -mean_t / std_t, persistent=False)

    def forward(self, batch: dict) -> torch.Tensor:
        pv = batch["pixel_values"]
        if pv.dtype == torch.uint8:
            pv = pv.float() * self._scale + self._shift
        return self.net(pixel_values=pv).logits

    def backbone_parameters(self) -> Iterator[nn.Parameter]:
        return self.net.videomae.parameters()


def _load_error(name: str, exc: Exception) -> ModelError:
    local = Path(name).expanduser()
    if local.exists():
        return ModelError(
            f"cannot load VideoMAE weights from {local}: {str(exc).splitlines()[0][:200]} "
            "(the folder needs config.json and model.safetensors or pytorch_model.bin)"
        )
    return ModelError(
        f"cannot fetch pretrained weights '{name}': no local folder of that name and the hub "
        "is unreachable. Run once with network access (the hub id is cached), or download the "
        "model and set model.pretrained=/path/to/folder, or model.pretrained=null for random init"
    )


def build(cfg, bundle) -> SLRModel:
    try:
        from transformers import VideoMAEConfig, VideoMAEForVideoClassification
    except ImportError:
        raise ModelError(
            "the videomae model needs transformers: pip install 'slr-tui[video]'"
        ) from None

    from engine.config import VideoOptions

    m, d = cfg.model, cfg.data
    if not isinstance(d, VideoOptions):
        raise ModelError(
            f"the videomae model takes video clips; data.source '{d.source}' has none "
            "(use wlasl or video_folder)"
        )
    num_classes = bundle.num_classes
    labels = {
        "num_labels": num_classes,
        "id2label": dict(enumerate(bundle.class_names)),
        "label2id": {n: i for i, n in enumerate(bundle.class_names)},
    }
    overrides = dict(m.config_overrides)
    if m.pretrained:
        try:
            net = VideoMAEForVideoClassification.from_pretrained(
                str(Path(m.pretrained).expanduser())
                if Path(m.pretrained).expanduser().exists()
                else m.pretrained,
                ignore_mismatched_sizes=True,  # a new head for this dataset's classes
                **labels,
                **overrides,
            )
        except (OSError, ValueError) as exc:
            raise _load_error(m.pretrained, exc) from None
        if net.config.num_frames != d.num_frames or net.config.image_size != d.image_size:
            raise ModelError(
                f"'{m.pretrained}' expects {net.config.num_frames} frames of "
                f"{net.config.image_size}px; set data.num_frames={net.config.num_frames} "
                f"data.image_size={net.config.image_size}"
            )
    else:
        fields = {"num_frames": d.num_frames, "image_size": d.image_size, **overrides, **labels}
        try:
            config = VideoMAEConfig(**fields)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"model.config_overrides: {exc}") from None
        if config.image_size % config.patch_size or config.num_frames % config.tubelet_size:
            raise ModelError(
                f"VideoMAE needs image_size ({config.image_size}) divisible by patch_size "
                f"({config.patch_size}) and num_frames ({config.num_frames}) divisible by "
                f"tubelet_size ({config.tubelet_size})"
            )
        net = VideoMAEForVideoClassification(config)
    if m.gradient_checkpointing:
        net.gradient_checkpointing_enable()
    return VideoMAEClassifier(net, mean=tuple(d.mean), std=tuple(d.std))
