"""Tokenizers for translation targets: one small interface over a tokenizer trained here
(the ``tokenizers`` library, offline) or a HuggingFace one (``model.tokenizer``).

Why train one: a user's sentences (Spanish in the guide) and a random-init decoder need
no hub; a small vocabulary fitted on the *training* sentences (never val/test) is enough
and makes tiny runs learn fast. It is saved as ``RUN/tokenizer.json`` when the run is
built, and a resumed run (or an evaluation of it) loads that file instead of training
again, so token ids never move under a checkpoint. A HuggingFace tokenizer is saved to
``RUN/tokenizer/`` for the same reason.

Special tokens of a trained tokenizer: ``<pad>`` 0, ``<s>`` 1 (decoder start), ``</s>`` 2,
``<unk>`` 3. The default ``bpe`` is byte-level, so any UTF-8 text round-trips exactly;
``word`` (whole words and punctuation marks) learns fastest on a small vocabulary but
decodes with a space between every token ("hola , ¿ qué tal ?"), and ``wordpiece`` and
``unigram`` map a character they never saw to ``<unk>``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from engine.errors import ModelError

log = logging.getLogger("engine")

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
SPECIALS = [PAD, BOS, EOS, UNK]
TOKENIZER_JSON = "tokenizer.json"
HF_TOKENIZER_DIR = "tokenizer"


class TextTokenizer:
    """``encode(text) -> ids`` (no specials), ``decode(ids) -> text`` (specials dropped),
    and the ids of pad, bos (decoder start), eos."""

    def __init__(self, backend: Any, *, hf: bool, bos_id: int | None = None):
        self.backend = backend
        self.hf = hf
        if hf:
            self.pad_id = backend.pad_token_id if backend.pad_token_id is not None else 0
            self.eos_id = backend.eos_token_id if backend.eos_token_id is not None else self.pad_id
            self.bos_id = (
                bos_id
                if bos_id is not None
                else backend.bos_token_id
                if backend.bos_token_id is not None
                else self.pad_id  # T5 starts decoding from pad
            )
            self.vocab_size = len(backend)
        else:
            self.pad_id = backend.token_to_id(PAD)
            self.bos_id = backend.token_to_id(BOS)
            self.eos_id = backend.token_to_id(EOS)
            self.vocab_size = backend.get_vocab_size()
        self._cache: dict[str, list[int]] = {}

    def encode(self, text: str) -> list[int]:
        ids = self._cache.get(text)
        if ids is None:
            if self.hf:
                ids = list(self.backend(text, add_special_tokens=False)["input_ids"])
            else:
                ids = list(self.backend.encode(text, add_special_tokens=False).ids)
            if len(self._cache) < 100_000:
                self._cache[text] = ids
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        special = {self.pad_id, self.bos_id, self.eos_id}
        kept = [int(i) for i in ids if int(i) not in special]
        if self.hf:
            return self.backend.decode(kept, skip_special_tokens=True).strip()
        return self.backend.decode(kept, skip_special_tokens=True).strip()

    def save(self, run_dir: Path) -> None:
        """Into the run folder (atomically for the trained one)."""
        from engine.runs import atomic_write_bytes

        run_dir = Path(run_dir)
        if self.hf:
            self.backend.save_pretrained(str(run_dir / HF_TOKENIZER_DIR))
        else:
            atomic_write_bytes(run_dir / TOKENIZER_JSON, self.backend.to_str().encode())


def train_tokenizer(texts: list[str], kind: str = "bpe", vocab_size: int = 1000) -> TextTokenizer:
    """A tokenizer fitted on ``texts`` (the training sentences), deterministic."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    texts = [t for t in texts if t]
    if not texts:
        raise ModelError("no training sentences to train a tokenizer on (set model.tokenizer)")
    if kind == "bpe":
        tok = Tokenizer(models.BPE(unk_token=UNK))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer: Any = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=SPECIALS,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
    elif kind == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token=UNK))
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()  # "¿yo" stays one word
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size, special_tokens=SPECIALS, show_progress=False
        )
    elif kind == "unigram":
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size, special_tokens=SPECIALS, unk_token=UNK, show_progress=False
        )
    elif kind == "word":
        tok = Tokenizer(models.WordLevel(unk_token=UNK))
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()  # "¿yo" stays one word
        tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
        trainer = trainers.WordLevelTrainer(
            vocab_size=vocab_size, special_tokens=SPECIALS, show_progress=False
        )
    else:
        raise ModelError(
            f"model.tokenizer_type '{kind}' is not one of bpe, wordpiece, unigram, word"
        )
    tok.train_from_iterator(sorted(texts), trainer=trainer)
    return TextTokenizer(tok, hf=False)


def load_saved(run_dir: Path, bos_id: int | None = None) -> TextTokenizer | None:
    """The tokenizer a run folder holds (trained or HuggingFace); None when it has none."""
    run_dir = Path(run_dir)
    if (run_dir / TOKENIZER_JSON).is_file():
        from tokenizers import Tokenizer

        return TextTokenizer(Tokenizer.from_file(str(run_dir / TOKENIZER_JSON)), hf=False)
    if (run_dir / HF_TOKENIZER_DIR).is_dir():
        return load_hf(str(run_dir / HF_TOKENIZER_DIR), bos_id=bos_id)
    return None


def load_hf(name: str, bos_id: int | None = None) -> TextTokenizer:
    """A HuggingFace tokenizer by hub id or local folder (one line when it cannot load)."""
    from transformers import AutoTokenizer

    try:
        backend = AutoTokenizer.from_pretrained(name)
    except Exception as exc:  # noqa: BLE001 - offline, a typo, a folder without files
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"model.tokenizer '{name}' cannot be loaded: {line}") from None
    return TextTokenizer(backend, hf=True, bos_id=bos_id)


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "spiece.model", "vocab.json")


def _checkpoint_tokenizer(name: str, bos_id: int | None) -> TextTokenizer | None:
    """The tokenizer stored with a decoder checkpoint (a local folder with tokenizer
    files, or a hub id that loads); None when it has none (one is trained instead)."""
    folder = Path(name).expanduser()
    if folder.is_dir() and not any((folder / f).is_file() for f in TOKENIZER_FILES):
        return None
    try:
        return load_hf(name, bos_id=bos_id)
    except ModelError as exc:
        log.warning("%s; training a tokenizer on the training sentences instead", exc)
        return None


def resolve(
    opts: Any, texts: list[str], run_dir: Path | None, bos_id: int | None = None
) -> TextTokenizer:
    """The run's tokenizer: the one saved in ``run_dir`` (resume, evaluation), else
    ``model.tokenizer``, else the tokenizer of ``model.decoder_model`` when it has one
    (its vocabulary is what the checkpoint's embeddings mean), else one trained on
    ``texts``; saved into ``run_dir`` when new. ``bos_id``: the decoder's start token
    (a checkpoint's ``decoder_start_token_id``) for a HuggingFace tokenizer."""
    if run_dir is not None:
        saved = load_saved(run_dir, bos_id)
        if saved is not None:
            return saved
    tok = None
    if opts.tokenizer:
        tok = load_hf(opts.tokenizer, bos_id=bos_id)
    elif getattr(opts, "decoder_model", None):
        tok = _checkpoint_tokenizer(opts.decoder_model, bos_id)
    if tok is None:
        tok = train_tokenizer(texts, opts.tokenizer_type, opts.vocab_size)
    if run_dir is not None:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        tok.save(run_dir)
    return tok
