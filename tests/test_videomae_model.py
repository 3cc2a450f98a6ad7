"""The VideoMAE wrapper: a tiny model from a config; uint8 clips are normalised on the
model's device exactly as the float pipeline normalises them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import config as cfgmod
from engine.errors import ModelError
from engine.models import build_model

pytest.importorskip("transformers")
pytest.importorskip("cv2")

TINY = [
    "model.pretrained=null",
    "model.config_overrides={hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 2, "
    "intermediate_size: 64, patch_size: 8, tubelet_size: 2}",
    "data.image_size=32",
    "data.num_frames=4",
]


class _Bundle:
    class_names = ["a", "b", "c"]
    num_classes = 3
    input_dim = None


def test_uint8_clips_match_float_clips():
    from engine.data import video

    cfg = cfgmod.resolve(preset="wlasl100-conservative", sets=TINY)
    assert cfg.data.uint8_clips  # the WLASL presets move uint8 clips
    model = build_model(cfg, _Bundle()).eval()
    base = np.random.default_rng(0).integers(0, 256, (4, 40, 48, 3), dtype=np.uint8)
    spec = video.clip_spec(cfg)
    as_uint8 = video.transform(base, spec, None)
    assert as_uint8.dtype == torch.uint8 and as_uint8.shape == (4, 3, 32, 32)
    as_float = video.transform(base, video.ClipSpec(**{**spec.__dict__, "uint8": False}), None)
    assert as_float.dtype == torch.float32
    with torch.no_grad():
        a = model({"pixel_values": as_uint8[None]})
        b = model({"pixel_values": as_float[None]})
    assert a.shape == (1, 3)
    assert torch.allclose(a, b, atol=1e-5)
    assert not any("_scale" in k or "_shift" in k for k in model.state_dict())


def test_bad_patch_size_is_one_line():
    cfg = cfgmod.resolve(
        preset="wlasl100-conservative",
        sets=[*TINY, "model.config_overrides={hidden_size: 32, patch_size: 7}"],
    )
    with pytest.raises(ModelError, match="divisible"):
        build_model(cfg, _Bundle())
