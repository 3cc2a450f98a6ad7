"""Running a model over data, and what the loop takes across processes.

:func:`predict` is the evaluation pass of each epoch's validation, the final evaluation
and a classical model's training score, gathered across processes into dataset order.
Class probabilities always come from the model's own
:meth:`~engine.models.base.SLRModel.class_scores` (softmax of logits, or CTC's vote over
frames), the same call ``engine.predict`` makes on a recording.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from engine import evaluate


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """The batch with its tensors on ``device`` (other entries, such as ids, as they are)."""
    return {
        k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
        for k, v in batch.items()
    }


@torch.no_grad()
def predict(
    model: nn.Module,
    loader: DataLoader,
    accelerator,
    n_total: int,
) -> tuple[np.ndarray, np.ndarray, list[str], dict[str, float]]:
    """Probabilities (N, C), labels (N,) and ids in dataset order, gathered across
    processes (each sample once, though shards may repeat or pad), plus the summed
    ``frame_stats`` of the model (empty for most)."""
    model.eval()
    net = accelerator.unwrap_model(model)
    idx_parts, prob_parts = [], []
    stats: dict[str, float] = {}
    for batch in loader:
        batch = to_device(batch, accelerator.device)
        with accelerator.autocast():
            out = model(batch)
        idx_parts.append(batch["index"])
        prob_parts.append(net.class_scores(out, batch).float())
        for k, v in net.frame_stats(out, batch).items():
            stats[k] = stats.get(k, 0.0) + v
    dev = accelerator.device
    idx = torch.cat(idx_parts) if idx_parts else torch.zeros(0, dtype=torch.long, device=dev)
    probs = torch.cat(prob_parts) if prob_parts else torch.zeros(0, 1, device=dev)
    if accelerator.num_processes > 1:
        idx, probs, stats = _gather(accelerator, idx, probs, stats)
    idx, probs = _in_dataset_order(idx.cpu().numpy(), probs.cpu())
    if len(idx) != n_total:
        raise RuntimeError(f"evaluation gathered {len(idx)} of {n_total} samples")
    labels = loader.dataset.labels[idx]
    ids = [loader.dataset.ids[i] for i in idx]
    return probs.numpy().astype(np.float64), labels, ids, stats


def evaluate_split(
    model: nn.Module, loader: DataLoader, accelerator, class_names: list[str]
) -> tuple[dict[str, Any], np.ndarray, np.ndarray, list[str]]:
    """One split's summary (:func:`engine.evaluate.summarize`, plus the blank share of
    models that count blank frames), probabilities, labels and ids."""
    probs, labels, ids, stats = predict(model, loader, accelerator, len(loader.dataset))
    summary = evaluate.summarize(labels, probs, class_names)
    if stats.get("frames"):
        summary["blank_share"] = stats["blank_frames"] / stats["frames"]
    return summary, probs, labels, ids


def eval_loader(ds, collate_fn, batch_size: int, accelerator, num_workers: int = 0) -> DataLoader:
    """The loader of an evaluation split as the trainer makes it: in dataset order, sharded
    across processes (:func:`predict` gathers the shards), never augmented."""
    from engine.data.base import EpochSampler

    sampler = EpochSampler(
        len(ds),
        shuffle=False,
        rank=accelerator.process_index,
        world_size=accelerator.num_processes,
    )
    return DataLoader(
        ds,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=collate_fn,
        num_workers=num_workers,
        pin_memory=accelerator.device.type == "cuda",
        persistent_workers=num_workers > 0,
        prefetch_factor=4 if num_workers > 0 else None,
    )


def sample_groups(cfg: Any, bundle: Any, ds: Any) -> list[str] | None:
    """The group of each sample of ``ds`` (in dataset order) for grouped metrics, or None
    when the source has none or every group holds one sample:

    - ``sequences_csv`` with windows: a window's recording (ids are ``recording@start``);
    - ``features``: the ``group`` column of labels.csv (a sample without one is its own);
    - a video source: the video id (several clips of one video form a group).
    """
    source = getattr(cfg.data, "source", None)
    ids = [str(i) for i in ds.ids]
    groups: list[str] | None = None
    if source == "sequences_csv":
        if getattr(cfg.data, "window_size", None) is not None:
            groups = [i.rsplit("@", 1)[0] for i in ids]
    elif source == "features":
        from pathlib import Path

        from engine.data.features import LABELS_FILE, read_labels

        root = bundle.info.get("root")
        if root:
            rows = read_labels(Path(root) / LABELS_FILE)
            if "group" in rows[0]:
                group_of = {r["id"]: r.get("group") or f"id:{r['id']}" for r in rows}
                groups = [group_of.get(i, f"id:{i}") for i in ids]
    else:
        from engine.config import VideoOptions

        if isinstance(cfg.data, VideoOptions):
            groups = ids  # WLASL lists a video id once: groups only where one has several
    if groups is None or len(set(groups)) == len(groups):
        return None
    return groups


def score_sums(probs: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """The training sums of an epoch (``loss_sum``: summed NLL, ``correct``, ``seen``)
    from probabilities, for a model scored rather than trained by steps."""
    n = len(labels)
    p_true = np.clip(probs[np.arange(n), labels], 1e-12, 1.0)
    return {
        "loss_sum": float(-np.log(p_true).sum()),
        "correct": int((probs.argmax(1) == labels).sum()),
        "seen": n,
    }


def _gather(
    accelerator, idx: torch.Tensor, probs: torch.Tensor, stats: dict[str, float]
) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """Every process's indices and probabilities (shards padded to one length, the padding
    marked by index -1) and the frame statistics summed over processes."""
    idx = accelerator.pad_across_processes(idx, dim=0, pad_index=-1)
    probs = accelerator.pad_across_processes(probs, dim=0)
    idx, probs = accelerator.gather(idx), accelerator.gather(probs)
    if stats:
        keys = sorted(stats)
        values = torch.tensor(
            [stats[k] for k in keys], dtype=torch.float64, device=accelerator.device
        )
        stats = dict(zip(keys, accelerator.reduce(values, "sum").tolist(), strict=True))
    return idx, probs, stats


def _in_dataset_order(idx: np.ndarray, probs: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
    """Drop padding (index -1), sort by index and keep one row per index."""
    keep = idx >= 0
    idx, probs = idx[keep], probs[torch.from_numpy(keep)]
    order = np.argsort(idx, kind="stable")
    idx, probs = idx[order], probs[torch.from_numpy(order)]
    _, first = np.unique(idx, return_index=True)
    return idx[first], probs[torch.from_numpy(first)]


# --------------------------------------------------------------------------- across processes


def sum_over_processes(accelerator, sums: dict[str, float]) -> dict[str, float]:
    """An epoch's training sums (``loss_sum``, ``correct``, ``seen``) over every process,
    with this process's own count as ``seen_local``; as they are in one process."""
    if accelerator.num_processes == 1:
        return dict(sums)
    keys = ("loss_sum", "correct", "seen")
    t = torch.tensor([float(sums[k]) for k in keys], dtype=torch.float64, device=accelerator.device)
    out = dict(zip(keys, accelerator.reduce(t, reduction="sum").tolist(), strict=True))
    out["seen_local"] = sums["seen"]
    return out


def any_process(accelerator, flag: bool) -> bool:
    """True on every process when ``flag`` is set on any (so all stop at the same step)."""
    if accelerator.num_processes == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=accelerator.device)
    return bool(accelerator.reduce(t, reduction="sum").item() > 0)


def param_spread(accelerator, model: nn.Module) -> float:
    """Largest difference between processes of a parameter checksum (0 when in step)."""
    if accelerator.num_processes == 1:
        return 0.0
    with torch.no_grad():
        s = sum(p.detach().double().sum() for p in accelerator.unwrap_model(model).parameters())
    spread = accelerator.gather(s.reshape(1).to(accelerator.device))
    return float(spread.max() - spread.min())
