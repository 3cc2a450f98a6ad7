"""The ``model.*`` options of each model family, torch-free (a config loads without torch).

``model.name`` picks one of these through :data:`engine.catalog.MODELS`; each holds the
keys its family's ``build(cfg, bundle)`` reads, and no other. The defaults are those of the
one flat ``model`` section they replace, so a config means what it meant before.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from engine.config import ModelOptions

#: the per-recording input normalisations of the convolutional families
InstanceNorm = Literal["none", "instance", "instance_stats", "instance_rank", "instance_auto"]


class _Dropout(ModelOptions):
    dropout: float = Field(0.3, ge=0, lt=1, description="Dropout rate.")


class _Encoder(_Dropout):
    """A width, a depth and an input normalisation (the sequence encoders)."""

    hidden_size: int = Field(128, ge=1)
    num_layers: int = Field(2, ge=1)
    input_norm: Literal["none", "layer"] = Field(
        "none",
        description="layer = LayerNorm across each frame's features (it erases a shift shared "
        "by all features and, with one channel, the whole signal; the sources already "
        "standardise each feature); none = off.",
    )


class RecurrentOptions(_Encoder):
    """``lstm``, ``bilstm``, ``gru``, ``bigru``: a recurrent encoder, pooled."""

    name: str = Field("bigru", description="lstm, bilstm, gru or bigru (any case).")
    pooling: Literal["mean", "last", "max"] = Field("mean", description="Sequence pooling.")


class LstmStackOptions(_Dropout):
    """``lstm_stack``: stacked LSTMs of their own widths, then a dense layer."""

    name: str = Field("lstm_stack", description="lstm_stack (any case).")
    hidden_sizes: list[int] = Field(
        default_factory=lambda: [128, 64], description="Widths of the stacked LSTM layers."
    )
    dense_size: int = Field(32, ge=1, description="Width of the dense layer.")
    dense_dropout: float = Field(0.2, ge=0, lt=1, description="Dropout after the dense layer.")
    input_norm: Literal["none", "instance", "instance_stats", "instance_rank"] = Field(
        "none",
        description="none = the frames as the data source standardised them (the guide); "
        "instance / instance_stats / instance_rank = per-recording normalisations as for "
        "temporal_cnn (instance_stats keeps each channel's level and scale as extra "
        "channels: whole recordings with a wide range of levels).",
    )


class TransformerOptions(_Encoder):
    """``transformer``: a Transformer encoder with learned positions, pooled."""

    name: str = Field("transformer", description="transformer (any case).")
    num_heads: int = Field(4, ge=1, description="Attention heads.")
    ff_size: int | None = Field(None, ge=1, description="Feed-forward width (null: 4 x hidden).")
    pooling: Literal["mean", "last", "max"] = Field("mean", description="Sequence pooling.")


class MlpOptions(_Encoder):
    """``mlp``: an MLP on the pooled sequence (or on one feature vector)."""

    name: str = Field("mlp", description="mlp (any case).")
    pooling: Literal["mean", "last", "max"] = Field("mean", description="Sequence pooling.")


class CtcOptions(_Encoder):
    """``ctc``: a BiLSTM with a CTC head over the classes plus blank."""

    name: str = Field("ctc", description="ctc (any case).")
    blank_penalty: float = Field(
        0.0, ge=0, description="Subtracted from the blank logit while training."
    )


class _Convolutional(_Encoder):
    """The convolutional families: blocks, normalisation and training-time augmentation."""

    input_norm: InstanceNorm = Field(  # type: ignore[assignment]
        "none",
        description="instance = z-score each channel over each recording's real frames before "
        "the first convolution; instance_stats = that, plus each channel's mean and log std "
        "(the level and scale it took away) as constant channels and head inputs; "
        "instance_rank = instance_stats plus each channel's per-recording mid-ranks scaled to "
        "[-1, 1] (robust to spikes and to the scale of the values); instance_auto = "
        "instance_stats, plus the ranks of the channels whose training recordings are "
        "heavy-tailed (median IQR / 1.349 std below 0.8, decided once before training and "
        "written to log.txt); none = off.",
    )
    channels: list[int] | None = Field(
        None,
        description="Width of each convolutional block (null: hidden_size for each of "
        "num_layers blocks).",
    )
    norm: Literal["batch", "layer", "none"] = Field(
        "batch",
        description="batch (BatchNorm over real frames only), layer (each frame over "
        "channels) or none.",
    )
    block_dropout: float = Field(0.0, ge=0, lt=1, description="Dropout after each block.")
    recording_stats: int = Field(
        0,
        ge=0,
        description="Width of a hidden layer over each recording's per-channel value "
        "distribution (quantiles, mean, log std, each mapped through its training-set "
        "quantiles), joined to the pooled features before the head; 0: off.",
    )
    recording_stats_diff: bool = Field(
        False,
        description="With recording_stats: the same statistics of each channel's first "
        "difference too (how sharply a recording moves).",
    )
    ensemble: int = Field(
        1,
        ge=1,
        le=16,
        description="Train this many independently initialised copies together and average "
        "their class probabilities (a deep ensemble: steadier on small data, K times the "
        "compute).",
    )
    augment_scale: float = Field(
        0.0, ge=0, lt=1, description="Training: random gain per recording in [1-s, 1+s]."
    )
    augment_shift: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Training: random circular shift of each recording's frames by up to "
        "this share of its length.",
    )


class TemporalCnnOptions(_Convolutional):
    """``temporal_cnn``: residual blocks of 'same' convolutions (time-series ResNet)."""

    name: str = Field("temporal_cnn", description="temporal_cnn (any case).")
    kernel_sizes: list[int] = Field(
        default_factory=lambda: [7, 5, 3],
        description="Kernel sizes of the convolutions inside each residual block.",
    )
    pool: int = Field(
        1,
        ge=1,
        description="Average-pool frames by this factor between blocks (1: off; 2 halves the "
        "frames before each block after the first).",
    )
    cnn_pooling: Literal["mean", "max", "meanmax"] = Field(
        "mean",
        description="Pooling over real frames before the head (meanmax: both, concatenated).",
    )


class TcnAttentionOptions(_Convolutional):
    """``tcn_attention``: dilated convolutions and attention pooling."""

    name: str = Field("tcn_attention", description="tcn_attention (any case).")
    kernel_size: int = Field(3, ge=1, description="Kernel size of the dilated convolutions.")


class VideoMAEOptions(ModelOptions):
    """``videomae``: a VideoMAE fine-tune (HuggingFace transformers) on video clips."""

    name: str = Field("videomae", description="videomae (any case).")
    pretrained: str | None = Field(
        None, description="Hub id or local directory of weights (null: random init)."
    )
    config_overrides: dict[str, Any] = Field(
        default_factory=dict, description="Fields changed in the model's own config."
    )
    freeze_backbone_epochs: int = Field(
        0, ge=0, description="Epochs the backbone stays fixed (only the head trains)."
    )
    gradient_checkpointing: bool = Field(False, description="Trade compute for memory.")


class MiniRocketOptions(ModelOptions):
    """``minirocket``: MiniRocket features and a closed-form classifier (no gradients)."""

    name: str = Field("minirocket", description="minirocket (any case).")
    num_kernels: int = Field(
        10_000, ge=84, description="Convolution kernels (features), a multiple of 84."
    )
    max_dilations_per_kernel: int = Field(32, ge=1, description="Dilations per kernel.")
    classifier: Literal["ridge", "logistic"] = Field(
        "ridge",
        description="RidgeClassifierCV (alphas logspace(-3, 3, 10)) or logistic regression on "
        "the scaled features.",
    )
    max_length: int | None = Field(
        None,
        ge=9,
        description="Recordings are zero-padded to this many frames (null: the longest "
        "training recording); longer ones are transformed at their own length.",
    )


class MultistreamSeq2SeqOptions(ModelOptions):
    """``multistream_seq2seq``: per-stream encoders (CNN or DINOv2 for crops, MLP for
    pose), fused, a temporal Transformer, and a HuggingFace seq2seq decoder (translation)."""

    name: str = Field("multistream_seq2seq", description="multistream_seq2seq (any case).")
    image_backbone: str | None = Field(
        None,
        description="Hub id or local folder of a DINOv2 model (transformers AutoModel) for "
        "the crops (null: a small CNN per stream, trained from scratch).",
    )
    cnn_channels: list[int] = Field(
        default_factory=lambda: [16, 32, 64, 128],
        description="The small CNN: channels of its stride-2 conv blocks.",
    )
    share_image_encoder: bool = Field(
        False, description="One image encoder for face and both hands (fewer parameters)."
    )
    freeze_backbone_epochs: int = Field(
        0, ge=0, description="Epochs the image backbone (DINOv2) stays fixed."
    )
    pose_hidden: int = Field(128, ge=1, description="Hidden width of the pose MLP.")
    projector_dim: int = Field(128, ge=1, description="Each stream is projected to this width.")
    fusion: Literal["concat", "sum"] = Field(
        "concat", description="Fuse streams by concatenation or by a masked sum."
    )
    d_model: int = Field(128, ge=8, description="Width of the temporal encoder (and decoder).")
    temporal_layers: int = Field(2, ge=0, description="Temporal Transformer encoder layers.")
    temporal_heads: int = Field(4, ge=1, description="Attention heads of the temporal encoder.")
    encoder_dropout: float = Field(
        0.1, ge=0, lt=1, description="Dropout in the pose MLP and the temporal encoder."
    )
    decoder_model: str | None = Field(
        None,
        description="Hub id or local folder of a T5/BART checkpoint: its decoder is used "
        "(d_model must match).",
    )
    decoder_config: dict[str, Any] = Field(
        default_factory=dict,
        description="A random-init decoder: model_type (t5 or bart, default t5) and config "
        "fields (default: a tiny one, d_model as the encoder).",
    )
    decoder_class: str | None = Field(
        None,
        description="package.module:Class of your own decoder, built with decoder_kwargs "
        "(your code, imported because your config names it).",
    )
    decoder_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Keyword arguments of decoder_class."
    )
    tokenizer: str | None = Field(
        None,
        description="Hub id or local folder of a tokenizer (null: train one on the training "
        "sentences, saved as RUN/tokenizer.json).",
    )
    tokenizer_type: Literal["bpe", "wordpiece", "unigram", "word"] = Field(
        "bpe", description="The trained tokenizer's model (tokenizers library)."
    )
    vocab_size: int = Field(
        1000, ge=16, description="The trained tokenizer's vocabulary size at most."
    )
    max_new_tokens: int | None = Field(
        None, ge=1, description="Generation length (null: data.max_target_length)."
    )
