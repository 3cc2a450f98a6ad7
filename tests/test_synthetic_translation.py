"""The synthetic translation demo: a deterministic generator in the translation layout whose
streams all carry signal, and a small model that learns it far above the
copy-the-most-frequent-sentence baseline."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from engine import catalog
from engine import config as cfgmod
from engine.data import roi_cache as rc
from engine.data import synthetic_translation as st

TINY = {"train_sentences": 12, "val_sentences": 4, "test_sentences": 3, "roi_size": 16}


def _tiny(**kw) -> st.SyntheticTranslationConfig:
    return st.SyntheticTranslationConfig(**{**TINY, **kw})


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _arrays(root: Path) -> dict[str, dict[str, np.ndarray]]:
    return {p.stem: rc.load_sample(p) for p in sorted((root / rc.ROIS).glob("*.npz"))}


def test_grammar_text_and_glosses():
    s = st.Sentence(subject=1, verb=0, obj=1, negated=True, question=True)
    assert s.glosses() == ["TÚ", "LECHE", "QUERER", "NO"]
    assert s.text() == "¿tú no quieres la leche?"
    s = st.Sentence(subject=4, verb=6, obj=3, negated=False, question=False)
    assert s.text() == "nosotros traemos la piña."
    assert len(s.signs()) == 3 and len(set(s.signs())) == 3
    # a smaller vocabulary draws only its words
    subj, verbs, objs = st.used_words(_tiny(vocabulary=5))
    assert (len(subj), len(verbs), len(objs)) == (2, 2, 1)
    for sent in st.sentences(_tiny(vocabulary=5, train_sentences=50), "train"):
        assert sent.subject in subj and sent.verb in verbs and sent.obj in objs


def test_same_seed_same_files_other_seed_other_data(tmp_path):
    a = st.generate(_tiny(), tmp_path / "a")
    b = st.generate(_tiny(), tmp_path / "b")
    c = st.generate(_tiny(seed=1), tmp_path / "c")
    da, db = _digest(a), _digest(b)
    assert da == db and len(da) == 19 + 6  # 19 samples + manifest, meta, dataset.json, 3 splits
    assert st.read_texts(a) != st.read_texts(c)
    # a second call with the same settings reuses the folder (nothing rewritten)
    mtime = (a / "meta.csv").stat().st_mtime_ns
    assert st.generate(_tiny(), a) == a and (a / "meta.csv").stat().st_mtime_ns == mtime
    # other settings replace an older dataset of this generator, never a foreign folder
    st.generate(_tiny(noise=0.0), a)
    assert json.loads((a / "dataset.json").read_text())["settings"]["noise"] == 0.0
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "x.txt").write_text("mine")
    with pytest.raises(st.DataError, match="not a synthetic translation dataset"):
        st.generate(_tiny(), foreign)
    assert not list(tmp_path.glob(".*.tmp-*"))  # no temp folder left behind


def test_layout_is_a_valid_translation_dataset(tmp_path):
    cfg = _tiny()
    root = st.generate(cfg, tmp_path / "ds")
    meta = rc.read_dataset_json(root)
    assert meta["roi_size"] == 16 and meta["generator"] == st.GENERATOR
    raw = (root / "meta.csv").read_bytes().decode("utf-8")  # UTF-8, `id;texto`
    assert raw.splitlines()[0] == "id;texto"
    texts = st.read_texts(root)
    splits = {s: st.read_split(root, s) for s in st.SPLITS}
    assert [len(splits[s]) for s in st.SPLITS] == [12, 4, 3]
    every = [i for ids in splits.values() for i in ids]
    assert len(set(every)) == len(every) == len(texts)  # disjoint, each with a sentence
    for sid in every:
        path = rc.npz_path(root, sid)
        frames = rc.complete_frames(path)
        assert frames is not None and 18 <= frames <= 4 * 9
        a = rc.load_sample(path)
        assert a["face"].shape == (frames, 16, 16, 3) and a["face"].dtype == np.uint8
        assert a["pose"].shape == (frames, 33, 3) and np.isfinite(a["pose"]).all()
        for s in rc.IMAGE_STREAMS:  # masked frames are zeros, real frames are drawn
            m = a[rc.mask_key(s)]
            assert not a[s][~m].any() and (a[s][m].reshape(m.sum(), -1).std(1) > 0).all()
        text = texts[sid]
        assert text.endswith("?") == text.startswith("¿") and text[-1] in ".?"
    with open(root / rc.MANIFEST, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["id"] for r in rows} == set(every)
    assert all(int(r["frames"]) == rc.complete_frames(rc.npz_path(root, r["id"])) for r in rows)
    # what the source sees: the catalog, the config and the translation source's reader
    assert catalog.find_source("synthetic_translation").options.endswith(
        ":SyntheticTranslationData"
    )
    run = cfgmod.resolve(
        sets=[
            "data.source=synthetic_translation",
            f"data.root={root}",
            *[f"data.synthetic_sentences.{k}={v}" for k, v in TINY.items()],
            "data.sequence_length=16",
        ]
    )
    assert isinstance(run.data, st.SyntheticTranslationData)
    report = st.check(run)
    assert [report[s]["present"] for s in st.SPLITS] == [12, 4, 3]
    bundle = st.build(run)
    assert len(bundle.train) == 12 and len(bundle.val) == 4
    item = bundle.val[0]
    assert item["text"] == texts[splits["val"][0]] and item["face"].shape == (16, 16, 16, 3)


def _probe(features: np.ndarray, labels: np.ndarray) -> float:
    """Leave-one-out nearest-centroid accuracy (a weak probe: the signal must be plain)."""
    hits = 0
    for j in range(len(labels)):
        keep = np.arange(len(labels)) != j
        classes = np.unique(labels)
        cents = np.stack([features[keep & (labels == c)].mean(0) for c in classes])
        hits += classes[np.argmin(((cents - features[j]) ** 2).sum(1))] == labels[j]
    return hits / len(labels)


def _clips(words, n, question=lambda i: False, signer=None):
    """n single-sign clips per word, noise (and the signer, unless given) drawn per clip."""
    cfg = st.SyntheticTranslationConfig()
    everyone = st.cast(cfg)
    out, labels = [], []
    for w in words:
        for i in range(n):
            r = np.random.default_rng([7, w, i])
            who = int(r.integers(cfg.num_signers)) if signer is None else signer
            out.append(st.render_signs([w], question(i), False, who, cfg, r, everyone))
            labels.append(w)
    return out, np.array(labels)


def _image_feature(a: np.ndarray) -> np.ndarray:
    t = np.linspace(0, len(a) - 1, 5).astype(int)[1:-1]  # the sign, not the rests
    x = a[t].astype(np.float32).reshape(3, 8, 4, 8, 4, 3).mean((2, 4))
    return (x - x.mean((1, 2, 3), keepdims=True)).ravel()


def test_every_stream_carries_signal():
    objects = list(range(len(st.SUBJECTS) + len(st.VERBS), st.LEXICON))[:5]
    clips, labels = _clips(objects, 8)
    chance = 1 / len(objects)
    pose = np.stack(
        [
            (c["pose"][:, :, :2] - c["pose"][:, [11, 12], :2].mean(1, keepdims=True))[
                np.linspace(0, len(c["pose"]) - 1, 6).astype(int)
            ].ravel()
            for c in clips
        ]
    )
    assert _probe(pose, labels) > 2.5 * chance  # across signers
    # the crops of one signer: the hand shape, its orientation and what is behind it
    clips, labels = _clips(objects, 8, signer=0)
    for stream in ("hand_right", "hand_left"):
        feats = np.stack([_image_feature(c[stream]) for c in clips])
        assert _probe(feats, labels) > 2 * chance, stream
    # the face tells a question from a statement (raised eyebrows, wider eyes)
    clips, _ = _clips(objects[:2], 12, question=lambda i: i % 2 == 1, signer=0)
    q = np.array([i % 2 for _ in range(2) for i in range(12)])
    faces = np.stack([_image_feature(c["face"]) for c in clips])
    assert _probe(faces, q) > 0.75
    # and the same clip with and without the question cue differs only in the face
    cfg = st.SyntheticTranslationConfig(noise=0.0)
    everyone = st.cast(cfg)
    a = st.render_signs([0, 14, 6], False, False, 0, cfg, np.random.default_rng(3), everyone)
    b = st.render_signs([0, 14, 6], True, False, 0, cfg, np.random.default_rng(3), everyone)
    assert np.array_equal(a["pose"], b["pose"]) and np.array_equal(a["hand_right"], b["hand_right"])
    assert not np.array_equal(a["face"], b["face"])


def test_baseline_is_the_most_frequent_training_sentence(tmp_path):
    root = st.generate(_tiny(vocabulary=3, negation_prob=0, question_prob=0), tmp_path / "ds")
    # one subject, verb and object: every sentence is the same, the baseline is perfect
    base = st.majority_baseline(root)
    assert base["sentence"] == "yo quiero el pan." and base["train_count"] == 12
    assert base["bleu4"] == pytest.approx(100.0)
    root = st.generate(_tiny(train_sentences=40, val_sentences=20), tmp_path / "full")
    assert st.majority_baseline(root)["bleu4"] < 20


#: the translation-demo preset scaled down: 9 content signs (108 possible sentences), 400
#: training sentences, 16 px crops, 16 frames, a 32-wide encoder and decoder
TINY_RUN = [
    "data.synthetic_sentences.vocabulary=9",
    "data.synthetic_sentences.train_sentences=400",
    "data.synthetic_sentences.val_sentences=40",
    "data.synthetic_sentences.test_sentences=10",
    "data.synthetic_sentences.roi_size=16",
    "data.synthetic_sentences.min_frames_per_sign=4",
    "data.synthetic_sentences.max_frames_per_sign=6",
    "data.synthetic_sentences.num_signers=4",
    "data.sequence_length=16",
    "model.cnn_channels=[8,16]",
    "model.pose_hidden=32",
    "model.projector_dim=32",
    "model.d_model=32",
    "model.temporal_layers=1",
    "model.temporal_heads=2",
    "training.max_epochs=25",
    "training.num_beams=1",
]


def test_a_small_model_learns_it_far_above_the_baseline(tmp_path):
    """The real trainer on the demo (scaled down): val BLEU-4 far above copying the most
    frequent training sentence (about 40 s on one CPU core)."""
    from engine.train import run_training

    cfg = cfgmod.resolve(preset="translation-demo", sets=TINY_RUN)
    assert isinstance(cfg.data, st.SyntheticTranslationData)
    run = tmp_path / "20250101-000000-translation-demo"
    assert run_training(cfg, run) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    bleu = [r["val_bleu4"] for r in rows if r.get("kind") == "epoch"]
    assert len(bleu) == 25
    base = st.majority_baseline(st.default_root(cfg.data.synthetic_sentences))["bleu4"]
    assert 5 < base < 25  # the floor is not zero: most sentences share words with it
    assert max(bleu) > max(3 * base, 50), (base, bleu)
    assert bleu[-1] > 2 * base, (base, bleu)
