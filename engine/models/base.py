"""What the trainer, evaluation and ``predict`` ask of a model: :class:`SLRModel`.

Every model family subclasses :class:`SLRModel` (an ``nn.Module``) and implements
``forward(batch) -> output``. The other methods are the trainer's hooks; their defaults
here fit a plain classifier that returns logits ``(B, C)``, and a family overrides only
what differs (CTC returns per-frame logits and has its own loss and class scores;
VideoMAE names its backbone so it can be frozen; MiniRocket is fitted in closed form).
The trainer calls these methods directly: there is no ``hasattr`` probing.

``batch`` is the dict a data source's collate builds: at least ``label`` (B,) and
``index`` (B,), plus the inputs (``x`` (B, T, F) with ``lengths``/``mask`` for
sequences, ``pixel_values`` for video clips).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ExportSpec:
    """What :meth:`SLRModel.onnx_export` hands ``slr export``: the graph to trace and how.

    ``module(*inputs)`` must run with plain tensors (no dicts) and return one tensor or a
    tuple of tensors, one per name in ``output_names``; ``dynamic_axes`` maps an input or
    output name to ``{axis: "name"}`` (the ONNX graph takes any size there: ``{0:
    "batch", 1: "time"}`` for ``x`` (B, T, F)). The same ``inputs`` are the example the
    exporter traces, and ``engine.export`` feeds them to onnxruntime and to ``module``
    to compare the two. ``name`` names the file by default (``RUN/export/NAME.onnx``):
    ``"encoder"`` for a translation model that exports its encoder.
    """

    module: nn.Module
    inputs: tuple[torch.Tensor, ...]
    input_names: list[str]
    output_names: list[str]
    dynamic_axes: dict[str, dict[int, str]]
    name: str = "model"


class _BatchInputs(nn.Module):
    """``model(dict(zip(names, tensors)))`` as a module of tensors, for the exporter."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.names = list(names)

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.model(dict(zip(self.names, tensors, strict=True)))


class SLRModel(nn.Module):
    """The base of every model family (see the module docstring for the contract)."""

    #: True for a model fitted in closed form by :meth:`fit_batches` (no optimiser, one
    #: "epoch"); the trainer then skips gradient steps.
    is_classical: bool = False

    #: "classification" (labels, accuracy, class weights, thresholds) or "translation"
    #: (a sentence out: token loss, BLEU/chrF/WER, engine.translation_eval); the trainer
    #: picks its evaluation and its epoch-row figures by it.
    task: str = "classification"

    def compute_loss(
        self,
        out: torch.Tensor,
        batch: dict[str, Any],
        class_weight: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> torch.Tensor:
        """The training loss of one batch (default: cross-entropy on logits (B, C))."""
        return F.cross_entropy(
            out.float(), batch["label"], weight=class_weight, label_smoothing=label_smoothing
        )

    def class_scores(self, out: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        """(B, C) class probabilities from the model's output (default: softmax)."""
        return torch.softmax(out.float(), dim=-1)

    def frame_stats(self, out: torch.Tensor, batch: dict[str, Any]) -> dict[str, float]:
        """Sums over the batch that evaluation reports next to accuracy (CTC: blank
        frames). The default reports nothing."""
        return {}

    def backbone_parameters(self) -> Iterator[nn.Parameter]:
        """The parameters ``model.freeze_backbone_epochs`` keeps fixed (default: none)."""
        return iter(())

    @property
    def fits_input_stats(self) -> bool:
        """True when the model fits statistics of its inputs once before training
        (:meth:`input_stats` of every training batch, in order and without augmentation,
        then :meth:`fit_input_stats`); the trainer does so on a new run, not on resume
        (the fitted buffers are in last.pt)."""
        return False

    def input_stats(self, batch: dict[str, Any]) -> torch.Tensor:
        """(B, F) statistics of one training batch, for :meth:`fit_input_stats`."""
        raise NotImplementedError(f"{type(self).__name__} fits no input statistics")

    def fit_input_stats(self, stats: torch.Tensor) -> None:
        """Fit on the (N, F) statistics of the whole training split."""
        raise NotImplementedError(f"{type(self).__name__} fits no input statistics")

    def fit_batches(self, batches: Iterable[dict[str, Any]]) -> None:
        """Fit a classical model (``is_classical``) on the training split, in closed form."""
        raise NotImplementedError(f"{type(self).__name__} is trained by gradient steps")

    def onnx_export(self, batch: dict[str, Any]) -> ExportSpec:
        """What ``slr export --onnx`` writes, for one collated ``batch`` of the run's data.

        The default fits every model whose ``forward`` reads only tensors of the batch:

        - sequence models: ``x`` (B, T, F) float and ``mask`` (B, T) bool become the ONNX
          inputs ``x`` and ``mask``, both with dynamic axes ``{0: "batch", 1: "time"}``;
        - video clips: ``pixel_values`` (B, T, C, H, W), dynamic in ``batch`` only (a
          clip model's frame count is fixed by its position embeddings).

        The output is ``logits``, dynamic in ``batch``, and also in ``time`` when it is
        3-D (per-frame logits (B, T, C), as CTC returns). A family whose graph differs
        overrides this (a translation model exports its encoder: ``module`` its encoder
        wrapped to take tensors, ``output_names`` e.g. ``["memory"]`` with axes
        ``{0: "batch", 1: "time"}``); one that cannot be exported raises
        :class:`engine.errors.ModelError` with one line saying why (a classical model
        raises it here by default).

        ``engine.export`` runs the TorchScript exporter (``torch.onnx.export(...,
        dynamo=False)``) first: offline, fast, it takes ``dynamic_axes`` as given and
        handles the packed RNNs here. Its trace freezes shapes that Python code computes
        (``nn.MultiheadAttention`` reshapes), so the export is checked on batches of
        other sizes and lengths, and on a mismatch it exports again with ``dynamo=True``
        (torch.export, ``Dim.AUTO`` on the same axes). So ``module`` must be traceable
        by at least one of the two; nothing here needs to pick the exporter.
        """
        from engine.errors import ModelError

        if self.is_classical:
            raise ModelError(
                f"{type(self).__name__} is a classical model (fitted outside torch's graph): "
                "it cannot be exported to ONNX"
            )
        if isinstance(batch.get("x"), torch.Tensor):
            x = batch["x"].float()
            mask = batch.get("mask")
            if not isinstance(mask, torch.Tensor):
                mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
            names = ["x", "mask"]
            inputs: tuple[torch.Tensor, ...] = (x, mask.bool())
            axes = {n: {0: "batch", 1: "time"} for n in names}
        elif isinstance(batch.get("pixel_values"), torch.Tensor):
            names = ["pixel_values"]
            inputs = (batch["pixel_values"],)
            axes = {"pixel_values": {0: "batch"}}
        else:
            raise ModelError(
                f"{type(self).__name__}: the batch has neither 'x' nor 'pixel_values' "
                "tensors to export with; the family must override onnx_export"
            )
        module = _BatchInputs(self, names)
        with torch.no_grad():
            out = module(*inputs)
        if not isinstance(out, torch.Tensor):
            raise ModelError(
                f"{type(self).__name__} returns {type(out).__name__}, not a tensor: "
                "the family must override onnx_export"
            )
        axes["logits"] = {0: "batch", 1: "time"} if out.dim() == 3 else {0: "batch"}
        return ExportSpec(module, inputs, names, ["logits"], axes)
