"""Sign language translation: the ``translation`` source (ROI cache, per-stream folders,
metadata detection, missing streams, mix_streams), the tokenizer, the
``multistream_seq2seq`` model (custom decoder class, d_model mismatch, learning) and the
trainer's translation path (metrics, eval/, exact resume). Tiny data made here; no hub."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from engine import config, runs
from engine.data import roi_cache
from engine.data.translation import build_root, check, read_metadata
from engine.errors import DataError, ModelError

SENTENCES = [
    "el niño come manzanas",
    "mañana voy a la escuela",
    "¿dónde está el baño?",
    "hola, ¿qué tal?",
]
S = 8  # crop size


def _sample(rng, t: int, value: int | None = None) -> dict[str, np.ndarray]:
    """One sample's arrays; ``value`` fills every crop (so a test can tell samples apart)."""
    arrays: dict[str, np.ndarray] = {}
    for s in roi_cache.IMAGE_STREAMS:
        crop = rng.integers(0, 255, (t, S, S, 3), dtype=np.uint8)
        if value is not None:
            crop[:] = value
        arrays[s] = crop
    arrays["pose"] = rng.random((t, roi_cache.POSE_POINTS, 3)).astype(np.float32)
    return arrays


def make_root(
    root: Path,
    n: int = 8,
    *,
    folders: bool = False,
    texts: list[str] | None = None,
    meta: str = "id;texto",
    frames: tuple[int, int] = (5, 20),
    fill_by_index: bool = False,
    fill_step: int = 1,
) -> list[str]:
    """A dataset root: n samples (cache or per-stream folders), meta.csv, train/val/test."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    ids = [f"v{i:03d}" for i in range(n)]
    texts = texts or SENTENCES
    for i, sid in enumerate(ids):
        t = int(rng.integers(*frames))
        arrays = _sample(rng, t, value=i * fill_step if fill_by_index else None)
        if folders:
            for s, arr in arrays.items():
                (root / f"{s}_crops").mkdir(exist_ok=True)
                np.save(root / f"{s}_crops" / f"{sid}.npy", arr)
        else:
            roi_cache.write_sample(roi_cache.npz_path(root, sid), arrays, compress=False)
    sep = ";" if meta.startswith("id;") else ","
    with open(root / "meta.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter=sep)
        w.writerow(meta.split(sep))
        for i, sid in enumerate(ids):
            w.writerow([sid, texts[i % len(texts)]])
    n_val = max(n // 4, 1)
    splits = {"train": ids[: n - 2 * n_val], "val": ids[n - 2 * n_val : n - n_val]}
    splits["test"] = ids[n - n_val :]
    for split, members in splits.items():
        (root / f"{split}.csv").write_text("id\n" + "".join(f"{i}\n" for i in members))
    return ids


def cfg_for(root: Path | None = None, *sets: str, **data) -> config.RunConfig:
    raw = {
        "data": {"source": "translation", "sequence_length": 12, "batch_size": 2, **data},
        "model": {
            "name": "multistream_seq2seq",
            "d_model": 32,
            "projector_dim": 16,
            "pose_hidden": 16,
            "cnn_channels": [8, 16],
            "temporal_layers": 1,
            "temporal_heads": 2,
            "decoder_config": {"num_decoder_layers": 1},
        },
        "training": {"device": "cpu", "min_epoch_steps": 0, "num_beams": 2, "num_threads": 1},
    }
    if root is not None:
        raw["data"]["root"] = str(root)
    cfg = config.validate(raw)
    return config.resolve(config_file=None, sets=list(sets), extra=cfg.to_dict()) if sets else cfg


# --------------------------------------------------------------------------- the source


def test_source_reads_a_roi_cache_and_counts_a_missing_stream_and_id(tmp_path):
    root = tmp_path / "d"
    ids = make_root(root, 8)
    # one sample without its left hand (another tool's cache), one listed id with no file
    arrays = _sample(np.random.default_rng(1), 7)
    del arrays["hand_left"]
    np.savez(roi_cache.npz_path(root, ids[1]), **arrays)
    (root / "train.csv").write_text((root / "train.csv").read_text() + "ghost\n")
    cfg = cfg_for(root)
    bundle = build_root(cfg, root)
    assert len(bundle.train) == 4 and len(bundle.val) == 2 and len(bundle.test) == 2
    assert bundle.info["missing"] == 1 and bundle.info["missing_streams"]["hand_left"] == 1
    item = bundle.train[(1, 0)]
    assert item["hand_left"].dtype == np.uint8 and item["hand_left"].shape == (12, S, S, 3)
    assert not item["hand_left_mask"].any() and item["face_mask"][:7].all()
    assert item["frame_mask"].sum() == 7 and item["text"] == SENTENCES[1]
    report = check(cfg)
    assert report["train"]["listed"] == 5 and report["train"]["present"] == 4
    assert report["train"]["missing"] == 1 and report["train"]["missing_streams"]["hand_left"] == 1
    assert report["val"]["missing"] == 0


def test_source_reads_per_stream_folders_and_resamples(tmp_path):
    root = tmp_path / "d"
    ids = make_root(root, 8, folders=True, frames=(20, 40))
    (root / "pose_crops" / f"{ids[0]}.npy").unlink()
    dirs = {f"{s}_dir": f"{s}_crops" for s in roi_cache.STREAMS}
    cfg = cfg_for(root, **dirs, crop_size=16)
    bundle = build_root(cfg, root)
    assert bundle.info["stream_sources"] == dict.fromkeys(roi_cache.STREAMS, "folder")
    assert bundle.info["missing_streams"]["pose"] == 1
    item = bundle.val[0]
    assert item["face"].shape == (12, 16, 16, 3)  # resized to data.crop_size
    assert item["frame_mask"].all()  # 20+ frames resampled to 12
    first = bundle.train[0]
    assert not first["pose_mask"].any() and first["face_mask"].all()
    batch = bundle.collate_fn([bundle.train[i] for i in range(3)])
    assert batch["face"].dtype == torch.uint8 and batch["pose"].shape == (3, 12, 33, 3)
    assert batch["text"] == SENTENCES[:3]


@pytest.mark.parametrize(
    "header,sep", [("id;texto", ";"), ("id,text", ","), ("ID\tSentence", "\t")]
)
def test_metadata_columns_and_separator_are_detected(tmp_path, header, sep):
    path = tmp_path / "meta.csv"
    rows = [["a1", "Él come, y ella duerme."], ["a2", "¿Cuántos años tienes, señor?"]]
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter=sep)
        w.writerow(header.split(sep))
        w.writerows(rows)
    texts, splits = read_metadata(path)
    assert texts == dict(map(tuple, rows)) and splits == {}


def test_a_split_column_replaces_index_files_and_bad_layouts_are_one_line(tmp_path):
    root = tmp_path / "d"
    ids = make_root(root, 8)
    for split in ("train", "val", "test"):
        (root / f"{split}.csv").unlink()
    lines = ["id;texto;split"] + [
        f"{sid};frase {i};{'train' if i < 5 else 'validation' if i < 7 else 'test'}"
        for i, sid in enumerate(ids)
    ]
    (root / "meta.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    bundle = build_root(cfg_for(root), root)
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (5, 2, 1)
    with pytest.raises(DataError, match="no ROI cache"):
        build_root(cfg_for(tmp_path), tmp_path)
    (root / "meta.csv").write_text("id;a;b\nx;1;2\n")
    with pytest.raises(DataError, match="sentence column"):
        build_root(cfg_for(root), root)


def test_mix_streams_swaps_at_the_given_rate(tmp_path):
    root = tmp_path / "d"
    n = 48
    make_root(root, n, fill_by_index=True, frames=(3, 5))
    cfg = cfg_for(root, mix_streams={"hand_left": 0.3})
    bundle = build_root(cfg, root)
    train, b = bundle.train, 6
    swapped = total = 0
    for epoch in range(40):
        order = np.random.default_rng(epoch).permutation(len(train))
        for k in range(0, len(order) - b + 1, b):
            items = [train[(int(i), epoch)] for i in order[k : k + b]]
            batch = bundle.collate_fn(items)
            own = batch["index"].numpy()
            left = batch["hand_left"][:, 0, 0, 0, 0].numpy()
            face = batch["face"][:, 0, 0, 0, 0].numpy()
            assert (face == own).all()  # other streams stay
            swapped += int((left != own).sum())
            total += len(own)
            assert (batch["mixed"]["hand_left"].numpy() == (left != own)).all()
    assert total == 960 and abs(swapped / total - 0.3) < 0.05, swapped / total
    # evaluation batches never mix, and the same (index, epoch) mixes the same way
    val = bundle.collate_fn([bundle.val[i] for i in range(len(bundle.val))])
    assert "mixed" not in val
    again = bundle.collate_fn([train[(i, 3)] for i in range(b)])
    again2 = bundle.collate_fn([train[(i, 3)] for i in range(b)])
    assert torch.equal(again["hand_left"], again2["hand_left"])


# --------------------------------------------------------------------------- tokenizer


def test_the_offline_tokenizer_round_trips_text_and_reloads_from_the_run(tmp_path):
    from engine import tokenization

    opts = cfg_for().model
    tok = tokenization.resolve(opts, SENTENCES * 3, tmp_path)
    assert (tmp_path / "tokenizer.json").is_file()
    for text in [*SENTENCES, "pingüino, ñandú y 20 €"]:  # byte-level: unseen letters too
        ids = tok.encode(text)
        assert all(i not in (tok.pad_id, tok.bos_id, tok.eos_id) for i in ids)
        assert tok.decode(ids) == text
    again = tokenization.resolve(opts, ["other texts entirely"], tmp_path)  # the saved one
    assert again.encode(SENTENCES[0]) == tok.encode(SENTENCES[0])
    word = tokenization.train_tokenizer(SENTENCES, "word", 100)
    assert word.decode(word.encode("el niño come")) == "el niño come"


# --------------------------------------------------------------------------- the model


class TinyDecoder(nn.Module):
    """A user decoder class (``tests.test_translation:TinyDecoder``): a GRU over the
    target embeddings, initialised from the mean memory, plus attention-free output."""

    def __init__(self, vocab_size: int, pad_token_id: int, width: int = 32):
        super().__init__()
        self.d_model = width
        self.embed = nn.Embedding(vocab_size, width, padding_idx=pad_token_id)
        self.gru = nn.GRU(width, width, batch_first=True)
        self.out = nn.Linear(width, vocab_size)

    def forward(self, decoder_input_ids, encoder_hidden_states, encoder_attention_mask):
        m = encoder_attention_mask.float()[..., None]
        h0 = (encoder_hidden_states * m).sum(1) / m.sum(1).clamp(min=1)
        y, _ = self.gru(self.embed(decoder_input_ids), h0[None].contiguous())
        return self.out(y)


def _bundle(tmp_path: Path, **data):
    root = tmp_path / "d"
    make_root(root, 8)
    cfg = cfg_for(root, **data)
    return cfg, build_root(cfg, root)


def test_a_custom_decoder_class_loads_and_decodes(tmp_path):
    from engine.models import build_model

    cfg, bundle = _bundle(tmp_path)
    model_raw = {**cfg.model.model_dump(), "decoder_class": "tests.test_translation:TinyDecoder"}
    model_raw["decoder_kwargs"] = {"width": 32}
    cfg = cfg.model_copy(update={"model": type(cfg.model).model_validate(model_raw)})
    model = build_model(cfg, bundle)
    assert isinstance(model.decoder, TinyDecoder) and model.task == "translation"
    batch = bundle.collate_fn([bundle.train[(i, 0)] for i in range(2)])
    loss = model.compute_loss(model(batch), batch, None, 0.1)
    assert torch.isfinite(loss)
    model.eval()
    out = model.generate(batch, num_beams=2, max_new_tokens=5)
    assert len(out) == 2 and all(isinstance(s, str) for s in out)


@pytest.mark.parametrize(
    "change",
    [
        {"decoder_config": {"d_model": 48}},
        {"decoder_class": "tests.test_translation:TinyDecoder", "decoder_kwargs": {"width": 24}},
    ],
)
def test_a_d_model_mismatch_is_one_clear_line(tmp_path, change):
    from engine.models import build_model

    cfg, bundle = _bundle(tmp_path)
    model_opts = type(cfg.model).model_validate({**cfg.model.model_dump(), **change})
    with pytest.raises(ModelError) as err:
        build_model(cfg.model_copy(update={"model": model_opts}), bundle)
    line = str(err.value)
    assert "\n" not in line and "d_model mismatch" in line and "32" in line


def test_bad_decoder_class_is_one_line(tmp_path):
    from engine.models import build_model

    cfg, bundle = _bundle(tmp_path)
    for spec, why in [("nope.module:Class", "cannot be imported"), ("justaname", "package.module")]:
        opts = type(cfg.model).model_validate({**cfg.model.model_dump(), "decoder_class": spec})
        with pytest.raises(ModelError, match=why):
            build_model(cfg.model_copy(update={"model": opts}), bundle)


def test_a_tiny_model_learns_its_sentences(tmp_path):
    """Teacher forcing drives the loss down and greedy decoding then writes the training
    sentences back (each sample's crops and pose are distinct, so it can tell them apart)."""
    from engine.models import build_model

    torch.manual_seed(0)
    root = tmp_path / "d"
    make_root(root, 8, fill_by_index=True, fill_step=30)
    cfg = cfg_for(root, "data.augment=false", "model.encoder_dropout=0.0")
    bundle = build_root(cfg, root)
    model = build_model(cfg, bundle)
    batch = bundle.collate_fn([bundle.train[i] for i in range(4)])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(120):
        model.train()
        loss = model.compute_loss(model(batch), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.15 * losses[0], losses[::10]
    model.eval()
    assert model.generate(batch) == batch["text"]
    assert model.generate(batch, num_beams=3) == batch["text"]


# --------------------------------------------------------------------------- training


def _epochs(run: Path) -> list[tuple]:
    rows = [r for r in runs.read_jsonl(run / "metrics.jsonl") if r["kind"] == "epoch"]
    keys = ("epoch", "train_loss", "val_loss", "val_bleu4", "val_chrf", "val_wer", "lr")
    return [tuple(r[k] for k in keys) for r in rows]


def test_training_writes_translation_metrics_and_resumes_exactly(tmp_path):
    from engine.train import EXIT_OK, EXIT_STOPPED, StopFlag, run_training
    from tests.test_schema import check_folder

    root = tmp_path / "d"
    make_root(root, 12)
    cfg = cfg_for(
        root, "training.max_epochs=3", "model.encoder_dropout=0.2", mix_streams={"hand_right": 0.5}
    )
    a, b = tmp_path / "a", tmp_path / "b"
    assert run_training(cfg, a) == EXIT_OK
    rows = check_folder(a)
    assert {r["kind"] for r in rows} == {"step", "epoch", "examples", "eval"}
    epochs = [r for r in rows if r["kind"] == "epoch"]
    for key in ("val_loss", "val_bleu1", "val_bleu4", "val_chrf", "val_wer", "train_token_acc"):
        assert all(isinstance(r[key], float) for r in epochs), key
    examples = [r for r in rows if r["kind"] == "examples"]
    assert len(examples) == 3 and examples[0]["examples"][0]["reference"] in SENTENCES
    evals = {(r["split"], r["decoding"]) for r in rows if r["kind"] == "eval"}
    assert evals == {("val", "greedy"), ("val", "beam"), ("test", "greedy"), ("test", "beam")}
    report = runs.read_json(a / "eval" / "report.json")
    assert report["task"] == "translation" and report["monitor"] == "val_loss"
    assert {"bleu4", "chrf", "wer", "nll"} <= set(report["val"]) and "test" in report["beam"]
    with open(a / "eval" / "translations.csv", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 6 and {"id", "reference", "hypothesis"} <= set(table[0])
    assert {r["reference"] for r in table} <= set(SENTENCES)
    assert (a / "tokenizer.json").is_file()
    results = runs.read_json(a / "run.json")["results"]
    assert set(results["val"]) == {"bleu4", "chrf", "wer", "nll"}

    stop = StopFlag()

    def stop_mid_epoch_two(trainer):
        if trainer.epoch == 1 and trainer.step_in_epoch == 2:
            stop.set("test")

    assert run_training(cfg, b, stop=stop, on_step=stop_mid_epoch_two) == EXIT_STOPPED
    assert run_training(cfg, b, resume=True) == EXIT_OK
    assert _epochs(a) == _epochs(b)
    rb = runs.read_json(b / "eval" / "report.json")
    assert report["val"] == rb["val"] and report["beam"] == rb["beam"]


def test_bleu_monitor_and_a_classifier_on_translation_data_is_refused(tmp_path):
    from engine.train import EXIT_BAD_INPUT, EXIT_OK, run_training

    root = tmp_path / "d"
    make_root(root, 8)
    cfg = cfg_for(root, "training.max_epochs=1", "training.monitor=val_bleu4")
    assert run_training(cfg, tmp_path / "r") == EXIT_OK
    assert runs.read_json(tmp_path / "r" / "run.json")["monitor"] == "val_bleu4"
    bad = cfg_for(root, "training.max_epochs=1", "model.name=bigru")
    assert run_training(bad, tmp_path / "bad") == EXIT_BAD_INPUT
    error = runs.read_json(tmp_path / "bad" / "run.json")["error"]
    assert "bigru" in error and "\n" not in error


def test_a_local_dinov2_backbone_and_t5_checkpoint_load(tmp_path):
    """``model.image_backbone`` and ``model.decoder_model`` as local folders (made here
    from tiny configs): the backbone is what freeze_backbone_epochs freezes."""
    from transformers import AutoModelForSeq2SeqLM, Dinov2Config, Dinov2Model, T5Config

    from engine.models import build_model

    Dinov2Model(
        Dinov2Config(
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            image_size=8,
            patch_size=4,
        )
    ).save_pretrained(tmp_path / "dino")
    t5 = T5Config(
        vocab_size=300, d_model=32, d_kv=8, d_ff=64, num_layers=1, num_decoder_layers=1, num_heads=2
    )
    AutoModelForSeq2SeqLM.from_config(t5).save_pretrained(tmp_path / "t5")
    from transformers import PreTrainedTokenizerFast

    from engine import tokenization

    trained = tokenization.train_tokenizer(SENTENCES, "bpe", 300).backend
    PreTrainedTokenizerFast(
        tokenizer_object=trained, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    ).save_pretrained(tmp_path / "t5")  # the checkpoint's own tokenizer
    cfg, bundle = _bundle(tmp_path)
    bundle.run_dir = tmp_path / "run"
    change = {"image_backbone": str(tmp_path / "dino"), "decoder_model": str(tmp_path / "t5")}
    opts = type(cfg.model).model_validate({**cfg.model.model_dump(), **change})
    model = build_model(cfg.model_copy(update={"model": opts}), bundle)
    tok = model.tokenizer
    assert tok.hf and tok.bos_id == tok.pad_id == 0  # T5 starts from pad
    assert (tmp_path / "run" / "tokenizer").is_dir()
    assert tok.decode(tok.encode(SENTENCES[1])) == SENTENCES[1]
    backbone = list(model.backbone_parameters())
    assert backbone and all(any(p is q for q in model.parameters()) for p in backbone)
    batch = bundle.collate_fn([bundle.train[(i, 0)] for i in range(2)])
    assert torch.isfinite(model.compute_loss(model(batch), batch))
    wide = type(cfg.model).model_validate({**opts.model_dump(), "d_model": 64})
    with pytest.raises(ModelError, match="d_model mismatch"):
        build_model(cfg.model_copy(update={"model": wide}), bundle)


@pytest.mark.parametrize("kind", ["bpe", "word", "wordpiece", "unigram"])
def test_every_tokenizer_kind_round_trips_punctuated_sentences(kind):
    """Punctuation glued to a word ("¿tú", "leche?") comes back glued: a tokenizer that
    decoded "¿ tú" would cost BLEU on every question."""
    from engine import tokenization

    texts = ["¿tú no quieres la leche?", "yo quiero el pan.", "¿él come?"] * 4
    tok = tokenization.train_tokenizer(texts, kind, 200)
    for text in texts[:3]:
        assert tok.decode(tok.encode(text)) == text


def test_sentences_longer_than_max_target_length_are_reported(caplog):
    """A target cut at data.max_target_length cannot be learned whole: say so at build."""
    from engine import tokenization
    from engine.models import multistream_seq2seq as ms

    texts = ["uno dos tres cuatro cinco seis", "uno"]
    tok = tokenization.train_tokenizer(texts, "word", 50)
    with caplog.at_level("WARNING", logger=ms.__name__):
        assert ms._warn_truncation(texts, tok, 4) == 1
    assert "1 of 2 training sentences are longer than data.max_target_length=4" in caplog.text
    assert ms._warn_truncation(texts, tok, 7) == 0


def _root_without_a_left_hand(tmp_path: Path) -> Path:
    """A translation root whose second sample has no left-hand crops."""
    root = tmp_path / "d"
    ids = make_root(root, 8)
    arrays = _sample(np.random.default_rng(1), 7)
    del arrays["hand_left"]
    np.savez(roi_cache.npz_path(root, ids[1]), **arrays)
    return root


def test_slr_data_check_shows_missing_streams_and_sentences(tmp_path):
    """`slr data check` on a translation root: the missing stream is in the table."""
    import io

    from rich.console import Console

    from slr_tui.tables import data_check_tables

    root = _root_without_a_left_hand(tmp_path)
    buf = io.StringIO()
    Console(file=buf, width=140).print(data_check_tables(check(cfg_for(root))))
    text = buf.getvalue()
    assert "no hand left" in text and "no text" in text and "sentences: 8" in text
    train = next(line for line in text.splitlines() if line.strip("│ ").startswith("train"))
    cells = [c.strip() for c in train.strip("│").split("│")]
    header = next(line for line in text.splitlines() if "no hand left" in line)
    names = [c.strip() for c in header.strip("┃").split("┃")]
    assert cells[names.index("no hand left")] == "1" and cells[names.index("no face")] == "0"


def test_the_tui_data_check_panel_shows_what_translation_samples_lack(tmp_path):
    import io

    from rich.console import Console

    from slr_tui.widgets.data_check import report_view

    root = _root_without_a_left_hand(tmp_path)
    buf = io.StringIO()
    Console(file=buf, width=100).print(report_view(check(cfg_for(root))))
    assert "train: 1 without hand_left" in buf.getvalue() and "sentences 8" in buf.getvalue()
