"""``multistream_seq2seq``: sign language translation, a signed sentence in and a written
sentence out (the ``translation`` source's batches).

The encoder sees each stream on its own: the face and hand crops (uint8 (B, L, S, S, 3),
normalised here, on the model's device) through a small CNN each (or one shared DINOv2
backbone, ``model.image_backbone``), the pose (B, L, 33, 3) through an MLP; each stream is
projected to ``projector_dim``, a frame where the stream is missing gets a learned
"missing" vector instead, the streams are fused (concatenated or averaged) into
``d_model``, and a temporal Transformer encoder with learned positions runs over the real
frames. The decoder is a HuggingFace seq2seq model's decoder fed with that memory as
``encoder_outputs`` (T5 by default, tiny and random-init; a checkpoint with
``decoder_model``; another config with ``decoder_config``) or a decoder class of the user's
(``decoder_class``). Training is teacher forcing with token cross-entropy (label
smoothing); generation is greedy or beam search, written here over the decoder's logits so
that every decoder kind decodes the same way.

A user decoder class is built as ``Class(vocab_size=V, pad_token_id=P, **decoder_kwargs)``;
it exposes ``d_model`` (int) and ``forward(decoder_input_ids, encoder_hidden_states,
encoder_attention_mask) -> logits (B, T, V)``. It is imported because the config names it
(the user's own code); nothing a data file names is ever imported.

The tokenizer is the model's (see :mod:`engine.tokenization`): built from the bundle's
training sentences on the first build and saved in the run folder, loaded from there on
resume.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engine import tokenization
from engine.errors import ModelError
from engine.models.base import ExportSpec, SLRModel

log = logging.getLogger(__name__)

IMAGE_STREAMS = ("face", "hand_left", "hand_right")
POSE_POINTS = 33
IGNORE = -100


# --------------------------------------------------------------------------- stream encoders


class SmallCnn(nn.Module):
    """Stride-2 conv blocks (BatchNorm, GELU), global average pool, a linear projection.

    BatchNorm, not a per-image norm (GroupNorm/InstanceNorm): those subtract each crop's
    own mean, and a crop's overall colour and brightness (a hand's shade against the
    background) is signal. Only real frames are encoded, so padding never enters the
    batch statistics."""

    def __init__(self, channels: list[int], out_dim: int):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for c in channels:
            layers += [
                nn.Conv2d(c_in, c, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c),
                nn.GELU(),
            ]
            c_in = c
        self.body = nn.Sequential(*layers)
        self.proj = nn.Linear(c_in, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, S, S) -> (N, out_dim)
        return self.proj(self.body(x).mean(dim=(2, 3)))


def _load_backbone(name: str) -> tuple[nn.Module, int]:
    from transformers import AutoModel

    try:
        backbone = AutoModel.from_pretrained(name)
    except Exception as exc:  # noqa: BLE001 - offline, a typo, a folder without weights
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"model.image_backbone '{name}' cannot be loaded: {line}") from None
    hidden = getattr(backbone.config, "hidden_size", None)
    if not isinstance(hidden, int):
        raise ModelError(f"model.image_backbone '{name}' has no hidden_size (not a DINOv2 model?)")
    return backbone, hidden


class MultistreamEncoder(nn.Module):
    """Streams -> (B, L, d_model) memory over the real frames (see the module docstring)."""

    def __init__(self, opts: Any, streams: list[str], data: Any):
        super().__init__()
        p = opts.projector_dim
        self.streams = list(streams)
        self.image_streams = [s for s in self.streams if s in IMAGE_STREAMS]
        self.backbone: nn.Module | None = None
        self.image_encoders = nn.ModuleDict()
        if self.image_streams:
            if opts.image_backbone:
                backbone, hidden = _load_backbone(opts.image_backbone)
                self.backbone = backbone  # one backbone for every crop stream
                for s in self.image_streams:
                    self.image_encoders[s] = nn.Linear(hidden, p)
            elif opts.share_image_encoder:
                shared = SmallCnn(list(opts.cnn_channels), p)
                for s in self.image_streams:
                    self.image_encoders[s] = shared
            else:
                for s in self.image_streams:
                    self.image_encoders[s] = SmallCnn(list(opts.cnn_channels), p)
        self.pose = None
        if "pose" in self.streams:
            self.pose = nn.Sequential(
                nn.Linear(POSE_POINTS * 3, opts.pose_hidden),
                nn.GELU(),
                nn.Dropout(opts.encoder_dropout),
                nn.Linear(opts.pose_hidden, p),
            )
        self.missing = nn.Parameter(torch.zeros(len(self.streams), p))
        self.fusion = opts.fusion
        fused_in = p * len(self.streams) if opts.fusion == "concat" else p
        self.fuse = nn.Sequential(nn.LayerNorm(fused_in), nn.Linear(fused_in, opts.d_model))
        self.max_len = int(data.sequence_length)
        self.pos = nn.Embedding(self.max_len, opts.d_model)
        self.drop = nn.Dropout(opts.encoder_dropout)
        self.temporal = None
        if opts.temporal_layers:
            layer = nn.TransformerEncoderLayer(
                opts.d_model,
                opts.temporal_heads,
                dim_feedforward=4 * opts.d_model,
                dropout=opts.encoder_dropout,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )
            self.temporal = nn.TransformerEncoder(
                layer, opts.temporal_layers, enable_nested_tensor=False
            )
        self.norm = nn.LayerNorm(opts.d_model)
        self.register_buffer("mean", torch.tensor(data.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(data.std).view(1, 3, 1, 1), persistent=False)

    def _image(self, s: str, crops: torch.Tensor, use: torch.Tensor, dense: bool) -> torch.Tensor:
        """(B, L, S, S, 3) uint8 -> (B, L, P); only frames in ``use`` are encoded (all of
        them when ``dense``: a traced graph cannot index by a mask)."""
        b, t = crops.shape[:2]
        enc = self.image_encoders[s]
        if self.backbone is not None:
            backbone, proj = self.backbone, enc

            def enc(x):
                out = backbone(pixel_values=x)
                feat = getattr(out, "pooler_output", None)
                return proj(feat if feat is not None else out.last_hidden_state[:, 0])

        def prep(x: torch.Tensor) -> torch.Tensor:
            x = x.permute(0, 3, 1, 2).float().div(255.0)
            return (x - self.mean) / self.std

        if dense:
            flat = crops.reshape(b * t, *crops.shape[2:])
            return enc(prep(flat)).reshape(b, t, -1)
        out = torch.zeros(b, t, self.missing.shape[1], device=crops.device)
        if bool(use.any()):
            feats = enc(prep(crops[use]))
            out = out.to(feats.dtype)
            out[use] = feats
        return out

    def forward(
        self, batch: dict[str, Any], dense: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        frame_mask = batch["frame_mask"].bool()
        b, t = frame_mask.shape
        feats, masks = [], []
        for k, s in enumerate(self.streams):
            m = batch[f"{s}_mask"].bool() & frame_mask
            if s == "pose":
                f = self.pose(batch["pose"].float().reshape(b, t, -1))
            else:
                f = self._image(s, batch[s], m, dense)
            f = torch.where(m[..., None], f, self.missing[k].to(f.dtype))
            feats.append(f)
            masks.append(m)
        if self.fusion == "concat":
            x = torch.cat(feats, dim=-1)
        else:
            w = torch.stack(masks, -1).to(feats[0].dtype)  # (B, L, n)
            stacked = torch.stack(feats, -2)  # (B, L, n, P)
            x = (stacked * w[..., None]).sum(-2) / w.sum(-1, keepdim=True).clamp(min=1)
        x = self.fuse(x)
        pos = torch.arange(t, device=x.device).clamp(max=self.max_len - 1)
        x = self.drop(x + self.pos(pos)[None])
        if self.temporal is not None:
            x = self.temporal(x, src_key_padding_mask=~frame_mask)
        return self.norm(x), frame_mask


# --------------------------------------------------------------------------- decoders


class HfDecoder(nn.Module):
    """The decoder of a HuggingFace seq2seq model, fed the memory as ``encoder_outputs``."""

    def __init__(self, hf: nn.Module):
        super().__init__()
        self.hf = hf
        self.d_model = int(hf.config.d_model)

    def forward(self, decoder_input_ids, encoder_hidden_states, encoder_attention_mask):
        from transformers.modeling_outputs import BaseModelOutput

        out = self.hf(
            encoder_outputs=BaseModelOutput(last_hidden_state=encoder_hidden_states),
            attention_mask=encoder_attention_mask.long(),
            decoder_input_ids=decoder_input_ids,
            use_cache=False,
        )
        return out.logits


def _tiny_config(opts: Any, tok: tokenization.TextTokenizer, max_len: int) -> Any:
    """The default random-init decoder (T5, or ``decoder_config.model_type``) with
    ``decoder_config``'s fields over tiny defaults; d_model as the encoder's."""
    from transformers import AutoConfig

    fields = dict(opts.decoder_config)
    kind = str(fields.pop("model_type", "t5")).lower()
    d = int(fields.get("d_model", opts.d_model))
    ids = {
        "vocab_size": tok.vocab_size,
        "pad_token_id": tok.pad_id,
        "eos_token_id": tok.eos_id,
        "bos_token_id": tok.bos_id,
        "decoder_start_token_id": tok.bos_id,
    }
    if kind == "t5":
        heads = int(fields.get("num_heads", 4))
        base = {
            "d_model": d,
            "d_kv": max(d // heads, 8),
            "d_ff": 2 * d,
            "num_layers": 1,  # the T5 encoder is unused (our encoder feeds the decoder)
            "num_decoder_layers": 2,
            "num_heads": heads,
            "dropout_rate": 0.1,
            "feed_forward_proj": "gated-gelu",
        }
    elif kind == "bart":
        heads = int(fields.get("decoder_attention_heads", 4))
        base = {
            "d_model": d,
            "encoder_layers": 1,
            "decoder_layers": 2,
            "encoder_attention_heads": heads,
            "decoder_attention_heads": heads,
            "encoder_ffn_dim": 2 * d,
            "decoder_ffn_dim": 2 * d,
            "max_position_embeddings": max(max_len + 8, 64),
            "dropout": 0.1,
            "scale_embedding": True,
        }
    else:
        base = {"d_model": d}
    try:
        return AutoConfig.for_model(kind, **{**base, **fields, **ids})
    except Exception as exc:  # noqa: BLE001 - an unknown model_type or a bad field
        raise ModelError(f"model.decoder_config cannot build a '{kind}' decoder: {exc}") from None


def _build_decoder(
    opts: Any, tok: tokenization.TextTokenizer, max_len: int
) -> tuple[nn.Module, str]:
    """(decoder, what it is, for the error lines)."""
    if opts.decoder_class:
        spec = opts.decoder_class
        if ":" not in spec:
            raise ModelError(f"model.decoder_class '{spec}' is not package.module:Class")
        from engine.catalog import load_attr

        try:
            cls = load_attr(spec)
        except (ImportError, AttributeError) as exc:
            raise ModelError(f"model.decoder_class '{spec}' cannot be imported: {exc}") from None
        try:
            dec = cls(vocab_size=tok.vocab_size, pad_token_id=tok.pad_id, **opts.decoder_kwargs)
        except TypeError as exc:
            raise ModelError(f"model.decoder_class '{spec}': {exc}") from None
        d = getattr(dec, "d_model", None) or getattr(getattr(dec, "config", None), "d_model", None)
        if not isinstance(d, int):
            raise ModelError(f"model.decoder_class '{spec}' has no int d_model attribute")
        dec.d_model = d
        return dec, f"decoder_class {spec}"
    from transformers import AutoModelForSeq2SeqLM

    if opts.decoder_model:
        try:
            hf = AutoModelForSeq2SeqLM.from_pretrained(opts.decoder_model)
        except Exception as exc:  # noqa: BLE001
            line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(
                f"model.decoder_model '{opts.decoder_model}' cannot be loaded: {line}"
            ) from None
        if hf.get_input_embeddings().num_embeddings < tok.vocab_size:
            hf.resize_token_embeddings(tok.vocab_size)
        return HfDecoder(hf), f"decoder_model {opts.decoder_model}"
    hf = AutoModelForSeq2SeqLM.from_config(_tiny_config(opts, tok, max_len))
    return HfDecoder(hf), f"decoder_config ({hf.config.model_type})"


def _decoder_start(name: str) -> int | None:
    """A checkpoint's ``decoder_start_token_id`` (T5: pad, BART: eos), read from its config
    only; None when the config cannot be read (the load of the weights says why)."""
    from transformers import AutoConfig

    try:
        start = AutoConfig.from_pretrained(name).decoder_start_token_id
    except Exception:  # noqa: BLE001 - reported by the weights' load, one line
        return None
    return int(start) if isinstance(start, int) else None


# --------------------------------------------------------------------------- the model


class EncoderGraph(nn.Module):
    """The encoder as a module of plain tensors, for ONNX export: ``names`` in order."""

    def __init__(self, encoder: MultistreamEncoder, names: list[str]):
        super().__init__()
        self.encoder = encoder
        self.names = names

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        memory, _ = self.encoder(dict(zip(self.names, tensors, strict=True)), dense=True)
        return memory


class MultistreamSeq2Seq(SLRModel):
    task = "translation"

    def __init__(self, opts: Any, data: Any, tok: tokenization.TextTokenizer):
        super().__init__()
        if opts.d_model % opts.temporal_heads:
            raise ModelError(
                f"model.d_model {opts.d_model} is not a multiple of model.temporal_heads "
                f"{opts.temporal_heads}"
            )
        self.tokenizer = tok
        self.streams = list(data.streams)
        self.max_target_length = int(data.max_target_length)
        self.max_new_tokens = int(opts.max_new_tokens or data.max_target_length)
        self.encoder = MultistreamEncoder(opts, self.streams, data)
        self.decoder, what = _build_decoder(
            opts, tok, max(self.max_target_length, self.max_new_tokens)
        )
        if self.decoder.d_model != opts.d_model:
            raise ModelError(
                f"d_model mismatch: the encoder's model.d_model is {opts.d_model} but the "
                f"{what} has d_model {self.decoder.d_model}; set model.d_model: "
                f"{self.decoder.d_model} (or a decoder of width {opts.d_model})"
            )

    # ---- targets ------------------------------------------------------------------

    def targets(self, texts: list[str], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher forcing: decoder inputs ``<s> w1..wn`` and labels ``w1..wn </s>``
        (padding: pad / -100), cut to ``data.max_target_length`` tokens."""
        tok = self.tokenizer
        seqs = [tok.encode(t)[: self.max_target_length - 1] for t in texts]
        n = max(len(s) for s in seqs) + 1
        dec = torch.full((len(seqs), n), tok.pad_id, dtype=torch.long)
        lab = torch.full((len(seqs), n), IGNORE, dtype=torch.long)
        for i, s in enumerate(seqs):
            dec[i, 0] = tok.bos_id
            dec[i, 1 : len(s) + 1] = torch.tensor(s, dtype=torch.long)
            lab[i, : len(s)] = torch.tensor(s, dtype=torch.long)
            lab[i, len(s)] = tok.eos_id
        return dec.to(device), lab.to(device)

    # ---- the trainer's hooks ------------------------------------------------------

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        memory, mask = self.encoder(batch)
        dec, labels = self.targets(batch["text"], memory.device)
        logits = self.decoder(dec, memory, mask)
        # the memory too: evaluation decodes from it without running the encoder again
        return {"logits": logits, "labels": labels, "memory": memory, "memory_mask": mask}

    def compute_loss(self, out, batch, class_weight=None, label_smoothing: float = 0.0):
        """Token cross-entropy of the teacher-forced logits (padding ignored)."""
        logits = out["logits"].float()
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]),
            out["labels"].reshape(-1),
            ignore_index=IGNORE,
            label_smoothing=label_smoothing,
        )

    def token_sums(self, out: dict[str, torch.Tensor]) -> tuple[float, int, int]:
        """(summed token NLL, tokens, correct argmax tokens) of a teacher-forced output."""
        logits, labels = out["logits"].float(), out["labels"]
        keep = labels != IGNORE
        nll = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]),
            labels.reshape(-1),
            ignore_index=IGNORE,
            reduction="sum",
        )
        correct = ((logits.argmax(-1) == labels) & keep).sum()
        return float(nll), int(keep.sum()), int(correct)

    def class_scores(self, out, batch):
        raise ModelError("a translation model has no class scores (task 'translation')")

    def backbone_parameters(self) -> Iterator[nn.Parameter]:
        if self.encoder.backbone is not None:
            yield from self.encoder.backbone.parameters()

    # ---- generation -------------------------------------------------------------------

    @torch.no_grad()
    def generate(
        self,
        batch: dict[str, Any],
        num_beams: int = 1,
        max_new_tokens: int | None = None,
        encoded: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> list[str]:
        """The sentences the model writes for ``batch``: greedy (``num_beams`` 1) or beam
        search (length-normalised scores). ``encoded``: the (memory, mask) of a forward
        pass over this batch in eval mode, reused."""
        memory, mask = encoded if encoded is not None else self.encoder(batch)
        steps = int(max_new_tokens or self.max_new_tokens)
        if num_beams <= 1:
            ids = self._greedy(memory, mask, steps)
        else:
            ids = self._beam(memory, mask, steps, num_beams)
        return [self.tokenizer.decode(row) for row in ids]

    def _greedy(self, memory, mask, steps: int) -> list[list[int]]:
        tok, b = self.tokenizer, memory.shape[0]
        seq = torch.full((b, 1), tok.bos_id, dtype=torch.long, device=memory.device)
        done = torch.zeros(b, dtype=torch.bool, device=memory.device)
        for _ in range(steps):
            nxt = self.decoder(seq, memory, mask)[:, -1].float().argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, tok.pad_id), nxt)
            seq = torch.cat([seq, nxt[:, None]], 1)
            done |= nxt == tok.eos_id
            if bool(done.all()):
                break
        return [self._cut(r) for r in seq[:, 1:].tolist()]

    def _beam(self, memory, mask, steps: int, k: int) -> list[list[int]]:
        tok, (b, t, d) = self.tokenizer, memory.shape
        dev = memory.device
        mem = memory[:, None].expand(b, k, t, d).reshape(b * k, t, d)
        msk = mask[:, None].expand(b, k, t).reshape(b * k, t)
        seq = torch.full((b * k, 1), tok.bos_id, dtype=torch.long, device=dev)
        scores = torch.full((b, k), float("-inf"), device=dev)
        scores[:, 0] = 0.0
        lengths = torch.zeros(b, k, device=dev)
        done = torch.zeros(b, k, dtype=torch.bool, device=dev)
        for _ in range(steps):
            logp = self.decoder(seq, mem, msk)[:, -1].float().log_softmax(-1)  # (bk, V)
            v = logp.shape[-1]
            logp = logp.view(b, k, v)
            # a finished beam only extends with pad, at no cost
            frozen = torch.full((v,), float("-inf"), device=dev)
            frozen[tok.pad_id] = 0.0
            logp = torch.where(done[..., None], frozen, logp)
            cand = (scores[..., None] + logp).view(b, k * v)
            top, flat = cand.topk(k, dim=-1)
            beam, token = flat // v, flat % v
            rows = (torch.arange(b, device=dev)[:, None] * k + beam).view(-1)
            seq = torch.cat([seq[rows], token.view(-1, 1)], 1)
            was_done = done.gather(1, beam)
            lengths = lengths.gather(1, beam) + (~was_done).float()
            done = was_done | (token == tok.eos_id)
            scores = top
            if bool(done.all()):
                break
        normed = scores / lengths.clamp(min=1)
        best = normed.argmax(-1)
        rows = torch.arange(b, device=dev) * k + best
        return [self._cut(r) for r in seq[rows, 1:].tolist()]

    def _cut(self, ids: list[int]) -> list[int]:
        eos = self.tokenizer.eos_id
        return ids[: ids.index(eos)] if eos in ids else ids

    # ---- export ---------------------------------------------------------------------

    def onnx_export(self, batch: dict[str, Any]) -> ExportSpec:
        """The encoder: crops (uint8), masks and pose in, memory (B, L, d_model) out."""
        names = ["frame_mask"]
        for s in self.streams:
            names += [s, f"{s}_mask"]
        inputs = tuple(batch[n] for n in names)
        axes = {n: {0: "batch", 1: "time"} for n in names}
        axes["memory"] = {0: "batch", 1: "time"}
        return ExportSpec(
            EncoderGraph(self.encoder, names), inputs, names, ["memory"], axes, "encoder"
        )


def build(cfg: Any, bundle: Any) -> MultistreamSeq2Seq:
    """The model for a ``translation`` bundle; its tokenizer from the run folder
    (``bundle.run_dir``, set by the trainer) or made and saved there."""
    from engine.data.translation import TranslationData

    data = cfg.data
    if not isinstance(data, TranslationData):
        raise ModelError(
            f"model '{cfg.model.name}' translates: it needs data.source translation "
            f"(or synthetic_translation), not {data.source}"
        )
    start = None
    if cfg.model.decoder_model and not cfg.model.decoder_class:
        start = _decoder_start(cfg.model.decoder_model)
    run_dir = getattr(bundle, "run_dir", None)
    texts = list(bundle.train.texts)
    tok = tokenization.resolve(cfg.model, texts, run_dir, bos_id=start)
    _warn_truncation(texts, tok, data.max_target_length)
    return MultistreamSeq2Seq(cfg.model, data, tok)


def _warn_truncation(texts: list[str], tok: tokenization.TextTokenizer, limit: int) -> int:
    """Log how many training sentences are longer than ``data.max_target_length`` tokens
    (with ``</s>``): those are cut, so the model can never produce their end (a byte-level
    BPE whose vocabulary is too small to learn merges makes every character a token).
    Returns the count."""
    lengths = [len(tok.encode(t)) + 1 for t in texts]
    cut = sum(n > limit for n in lengths)
    if cut:
        log.warning(
            "%d of %d training sentences are longer than data.max_target_length=%d tokens "
            "(longest %d) and are cut; raise data.max_target_length or the tokenizer's "
            "vocabulary size",
            cut,
            len(texts),
            limit,
            max(lengths),
        )
    return cut
