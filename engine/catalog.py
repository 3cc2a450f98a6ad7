"""The catalog: every data source and model family by name, in one place, without torch.

This is the one registry. ``engine.data`` and ``engine.models`` build from it, the config
validates ``data``/``model`` against the options model named here, and the CLI and the TUI
read names, descriptions and root hints from it without importing any torch module.

A new data source is one module under ``engine/data/`` (its options model, subclass of
``engine.config.DataOptions`` or of one of its family bases there, plus
``build(cfg) -> DataBundle``) and one line in :data:`SOURCES`; the module must import
without torch (import torch inside ``build``), since every config that names the source
loads it. A new model family is one module under ``engine/models/`` (a subclass of
``engine.models.base.SLRModel`` plus ``build(cfg, bundle)``), its options model in
``engine/models/options.py`` (torch-free, so configs load without torch) and one line in
:data:`MODELS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any


@dataclass(frozen=True)
class Source:
    module: str  # the module with build(cfg) (and optionally check(cfg, progress))
    options: str  # "module:Class" of its pydantic options model (torch-free)
    description: str
    root_hint: str | None = None  # what data.root must be (None: no root needed)
    videos: bool = False  # `slr extract` reads its videos


@dataclass(frozen=True)
class Model:
    module: str  # the module with build(cfg, bundle) -> SLRModel
    options: str  # "module:Class" of its pydantic options model (torch-free)
    description: str


SOURCES: dict[str, Source] = {
    "synthetic": Source(
        "engine.data.synthetic",
        "engine.data.synthetic:SyntheticData",
        "built-in synthetic landmark 'signs' (no download)",
    ),
    "landmarks": Source(
        "engine.data.landmarks",
        "engine.data.landmarks:LandmarksData",
        "MediaPipe Holistic landmark cache",
        root_hint="a landmark cache made by `slr extract`",
    ),
    "wlasl": Source(
        "engine.data.wlasl",
        "engine.data.wlasl:WlaslData",
        "WLASL videos with the official metadata JSON",
        root_hint="the folder with the WLASL metadata JSON and videos/",
        videos=True,
    ),
    "video_folder": Source(
        "engine.data.video_folder",
        "engine.data.video_folder:VideoFolderData",
        "videos in class folders or listed in a manifest CSV",
        root_hint="root/{train,val,test}/<class>/*.mp4, or a folder with a manifest CSV",
        videos=True,
    ),
    "sequences_csv": Source(
        "engine.data.sequences_csv",
        "engine.data.sequences_csv:SequencesCsvData",
        "one CSV of per-frame features per recording",
        root_hint="a folder of per-recording CSV files",
    ),
    "features": Source(
        "engine.data.features",
        "engine.data.features:FeaturesData",
        "pre-extracted feature arrays with labels.csv",
        root_hint="a folder with labels.csv and one .npy/.npz per sample",
    ),
    "translation": Source(
        "engine.data.translation",
        "engine.data.translation:TranslationData",
        "signed sentences (face/hand crops + pose) with their written sentence",
        root_hint="a folder with meta.csv (id;texto), train/val/test.csv and rois/",
    ),
    "synthetic_translation": Source(
        "engine.data.synthetic_translation",
        "engine.data.synthetic_translation:SyntheticTranslationData",
        "built-in synthetic signed sentences (ROI crops + pose, Spanish text; no download)",
    ),
}

_M = "engine.models.options"
MODELS: dict[str, Model] = {
    "lstm": Model("engine.models.recurrent", f"{_M}:RecurrentOptions", "LSTM"),
    "bilstm": Model("engine.models.recurrent", f"{_M}:RecurrentOptions", "bidirectional LSTM"),
    "gru": Model("engine.models.recurrent", f"{_M}:RecurrentOptions", "GRU"),
    "bigru": Model("engine.models.recurrent", f"{_M}:RecurrentOptions", "bidirectional GRU"),
    "lstm_stack": Model(
        "engine.models.recurrent", f"{_M}:LstmStackOptions", "stacked LSTMs + dense (Keras recipe)"
    ),
    "transformer": Model(
        "engine.models.transformer", f"{_M}:TransformerOptions", "Transformer encoder"
    ),
    "mlp": Model("engine.models.mlp", f"{_M}:MlpOptions", "MLP on pooled features"),
    "videomae": Model("engine.models.videomae", f"{_M}:VideoMAEOptions", "VideoMAE fine-tune"),
    "ctc": Model("engine.models.ctc", f"{_M}:CtcOptions", "BiLSTM + CTC with a blank penalty"),
    "temporal_cnn": Model(
        "engine.models.temporal_cnn", f"{_M}:TemporalCnnOptions", "residual temporal CNN"
    ),
    "tcn_attention": Model(
        "engine.models.tcn_attention", f"{_M}:TcnAttentionOptions", "dilated TCN + attention"
    ),
    "minirocket": Model(
        "engine.models.minirocket", f"{_M}:MiniRocketOptions", "MiniRocket + ridge (closed form)"
    ),
    "multistream_seq2seq": Model(
        "engine.models.multistream_seq2seq",
        f"{_M}:MultistreamSeq2SeqOptions",
        "multi-stream encoder + seq2seq decoder (translation)",
    ),
}


def load_attr(spec: str) -> Any:
    """``"package.module:Name"`` -> the object."""
    module, _, name = spec.partition(":")
    return getattr(import_module(module), name)


def find_source(name: object) -> Source | None:
    """The entry ``data.source`` names (None: not a source)."""
    return SOURCES.get(name) if isinstance(name, str) else None


def find_model(name: object) -> Model | None:
    """The entry ``model.name`` names, in any case (None: not a model family)."""
    return MODELS.get(name.lower()) if isinstance(name, str) else None


def unknown_source(name: object, key: str | None = None) -> str:
    """The line for a ``data.source`` the catalog does not have (``key``: where it was)."""
    where = f" ({key})" if key else ""
    return f"unknown data source '{name}'{where}; available: {', '.join(SOURCES)}"


def unknown_model(name: object, key: str | None = None) -> str:
    """The line for a ``model.name`` the catalog does not have (``key``: where it was)."""
    where = f" ({key})" if key else ""
    return f"unknown model '{name}'{where}; available: {', '.join(MODELS)}"


def source_names() -> list[str]:
    return list(SOURCES)


def model_names() -> list[str]:
    return list(MODELS)


def root_hint(source: str) -> str:
    entry = SOURCES.get(source)
    return (entry.root_hint if entry else None) or "the dataset folder"


def video_sources() -> list[str]:
    return [name for name, s in SOURCES.items() if s.videos]
