"""LSTM / BiLSTM / GRU / BiGRU sequence classifiers with padding masks."""

from __future__ import annotations

import torch
from torch import nn

from engine.models.base import SLRModel
from engine.models.common import (
    Head,
    NormFirst,
    batch_mask,
    keras_init_,
    masked_pool,
    require_input_dim,
    run_packed,
)
from engine.models.temporal_cnn import (
    InstanceFloor,
    check_input_norm,
    input_channels,
    input_transform,
    zero_pad,
)


class RecurrentClassifier(SLRModel):
    def __init__(
        self,
        input_dim: int,
        num_classes: int,
        *,
        cell: str = "gru",
        bidirectional: bool = True,
        hidden_size: int = 128,
        num_layers: int = 2,
        dropout: float = 0.3,
        pooling: str = "mean",
        input_norm: str = "none",
    ):
        super().__init__()
        rnn_cls = {"gru": nn.GRU, "lstm": nn.LSTM}[cell]
        self.proj = NormFirst(input_dim, input_norm, nn.Linear(input_dim, hidden_size))
        self.rnn = rnn_cls(
            hidden_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.pooling = pooling
        out = hidden_size * (2 if bidirectional else 1)
        self.head = Head(out, num_classes, dropout)

    def forward(self, batch: dict) -> torch.Tensor:
        x = batch["x"]
        mask = batch_mask(batch)
        h = torch.relu(self.proj(x))
        out = run_packed(self.rnn, h, mask)
        return self.head(masked_pool(out, mask, self.pooling))


class StackedLSTM(SLRModel):
    """LSTM -> LSTM -> dense -> classes (the activity-LSTM guide: 128 -> 64 -> 32), each
    LSTM followed by dropout; the last LSTM's output at the last real frame feeds the dense
    layer. ``input_norm`` (``model.input_norm``) normalises each recording's channels over
    its own real frames first, as the convolutional families do (none: the guide's input,
    standardised by the data source only)."""

    def __init__(
        self,
        input_dim: int,
        num_classes: int,
        *,
        hidden_sizes: list[int],
        dense_size: int = 32,
        dropout: float = 0.3,
        dense_dropout: float = 0.2,
        input_norm: str = "none",
    ):
        super().__init__()
        self.input_norm = input_norm
        dims = [input_channels(input_dim, input_norm), *hidden_sizes]
        self.rnns = nn.ModuleList(
            keras_init_(nn.LSTM(a, b, batch_first=True))
            for a, b in zip(dims[:-1], dims[1:], strict=True)
        )
        self.drop = nn.Dropout(dropout)
        self.dense = nn.Sequential(
            nn.Linear(dims[-1], dense_size), nn.ReLU(), nn.Dropout(dense_dropout)
        )
        self.out = nn.Linear(dense_size, num_classes)
        self.floor = InstanceFloor()

    def forward(self, batch: dict) -> torch.Tensor:
        x = batch["x"]
        mask = batch_mask(batch)
        h = x
        if self.input_norm != "none":  # per recording, over its real frames
            h = zero_pad(x.float().transpose(1, 2), mask)
            h = input_transform(h, mask, self.input_norm, floor=self.floor)[0].transpose(1, 2)
        for rnn in self.rnns:
            h = self.drop(run_packed(rnn, h, mask))
        return self.out(self.dense(masked_pool(h, mask, "last")))


def build(cfg, bundle) -> SLRModel:
    name = cfg.model.name.lower()
    m = cfg.model
    if name == "lstm_stack":
        check_input_norm(m, name)
        return StackedLSTM(
            require_input_dim(bundle, name),
            bundle.num_classes,
            hidden_sizes=m.hidden_sizes,
            dense_size=m.dense_size,
            dropout=m.dropout,
            dense_dropout=m.dense_dropout,
            input_norm=m.input_norm,
        )
    return RecurrentClassifier(
        require_input_dim(bundle, name),
        bundle.num_classes,
        cell="lstm" if "lstm" in name else "gru",
        bidirectional=name.startswith("bi"),
        hidden_size=m.hidden_size,
        num_layers=m.num_layers,
        dropout=m.dropout,
        pooling=m.pooling,
        input_norm=m.input_norm,
    )
