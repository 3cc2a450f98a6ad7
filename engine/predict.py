"""Classify a new recording with a trained run (``slr predict RUN FILE.csv``).

The run folder holds everything needed: ``config.json`` (how windows are cut),
``data.json`` (the label encoder, feature columns and standardisation fitted on training)
and ``best.pt`` (loaded with ``weights_only``; no accelerate, no training code). Class
probabilities come from the model's ``class_scores``, as in the trainer's evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine import runs
from engine.checkpoint import load_weights
from engine.config import load_file, validate
from engine.data.base import pad_collate
from engine.errors import DataError
from engine.models import build_model


@dataclass
class _Classes:
    class_names: list[str]
    input_dim: int | None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def load_trained(run_dir: str | Path) -> tuple[Any, torch.nn.Module, dict[str, Any]]:
    """(config, model with best.pt weights in eval mode, data.json)."""
    run_dir = Path(run_dir)
    cfg = validate(load_file(run_dir / runs.CONFIG_JSON), str(run_dir / runs.CONFIG_JSON))
    data = runs.read_json(run_dir / runs.DATA_JSON)
    ckpt_path = run_dir / "best.pt"
    if data is None or not ckpt_path.is_file():
        raise DataError(f"run {run_dir.name} has no trained model yet (best.pt and data.json)")
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
    load_weights(model, ckpt_path)  # weights_only: a crafted best.pt runs no code
    model.eval()
    return cfg, model, data


@torch.no_grad()
def predict_recording(
    run_dir: str | Path, file: str | Path, batch_size: int = 64
) -> dict[str, Any]:
    """Per-window predictions and an overall label (the mean of the window probabilities)."""
    cfg, model, data = load_trained(run_dir)
    if cfg.data.source != "sequences_csv":
        raise DataError(
            f"slr predict classifies CSV recordings; this run trained on '{cfg.data.source}' data"
        )
    from engine.data.sequences_csv import windows_for_file

    windows, starts = windows_for_file(file, data["info"], cfg)
    names = data["class_names"]
    probs_parts = []
    for i in range(0, len(windows), batch_size):
        items = [
            {"x": np.asarray(w, dtype=np.float32), "label": 0, "id": str(j), "index": j}
            for j, w in enumerate(windows[i : i + batch_size], start=i)
        ]
        batch = pad_collate(items)
        probs_parts.append(model.class_scores(model(batch), batch))
    probs = torch.cat(probs_parts).numpy()
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
    mean = probs.mean(0)
    order = np.argsort(-mean)
    votes = np.bincount(probs.argmax(1), minlength=len(names))
    return {
        "file": str(file),
        "windows": rows,
        "overall": {
            "label": names[int(order[0])],
            "confidence": float(mean[order[0]]),
            "top": [{"label": names[int(i)], "probability": float(mean[i])} for i in order[:5]],
            "votes": {names[i]: int(v) for i, v in enumerate(votes) if v},
        },
    }
