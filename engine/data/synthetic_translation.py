"""A synthetic translation dataset: signed sentences rendered into ROI streams.

Sentences come from a tiny grammar. The signer signs ``SUBJECT OBJECT VERB [NO]`` (sign
order, with a negation sign at the end), a yes/no question is marked only on the face
(raised eyebrows over the whole sentence), a negation also by a head shake and a frown; the
written text is Spanish in its own order, with the verb conjugated for the subject and the
question marks of Spanish::

    glosses  TÚ LECHE QUERER NO   (face: question)
    text     ¿tú no quieres la leche?

Each content word is one of the landmark 'signs' of :mod:`engine.data.synthetic` (the wrist
motion, hand shape, orientation and other hand of its class), signed one after the other
by one simulated signer. Every frame is rendered into the streams of the ROI cache
(:mod:`engine.data.roi_cache`): ``pose`` (the 33 body points), ``hand_left`` and
``hand_right`` (the hand's skeleton drawn skin-coloured in a box around it, so the crop
shows the hand shape and its orientation; zeros and a False mask where the hand is not
detected) and ``face`` (a schematic face from the face points: mouthing, eyebrows, eyes,
frown). Signers differ in body, skin and background colours; samples add tracking jitter of
the boxes, lighting changes and pixel noise.

Written in the layout the ``translation`` source reads (:mod:`engine.data.translation`):
``rois/<id>.npz``, ``manifest.csv`` (the glosses as label), ``dataset.json``, ``meta.csv``
(``id;texto``, UTF-8) and ``train.csv``/``val.csv``/``test.csv`` (column ``id``).
Everything is deterministic from :class:`SyntheticTranslationConfig`.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from engine.config import Section, SyntheticConfig
from engine.data import roi_cache as rc
from engine.data.synthetic import (
    _sample,
    _signer,
    _signs,
    generated_root,
    replaceable,
    write_once,
)
from engine.data.translation import TranslationData
from engine.errors import DataError
from engine.runs import atomic_write_bytes

if TYPE_CHECKING:
    from engine.config import RunConfig
    from engine.data.base import DataBundle

GENERATOR = {"name": "synthetic_translation", "version": 1}
FPS = 25.0
SPLITS = ("train", "val", "test")
META_CSV = "meta.csv"

# --------------------------------------------------------------------------- the grammar

# (gloss, written form, person): person indexes the conjugation (yo, tú, él/ella, nosotros,
# ellos)
SUBJECTS = (
    ("YO", "yo", 0),
    ("TÚ", "tú", 1),
    ("ÉL", "él", 2),
    ("ELLA", "ella", 2),
    ("NOSOTROS", "nosotros", 3),
    ("ELLOS", "ellos", 4),
)
VERBS = (
    ("QUERER", ("quiero", "quieres", "quiere", "queremos", "quieren")),
    ("TENER", ("tengo", "tienes", "tiene", "tenemos", "tienen")),
    ("VER", ("veo", "ves", "ve", "vemos", "ven")),
    ("COMPRAR", ("compro", "compras", "compra", "compramos", "compran")),
    ("BUSCAR", ("busco", "buscas", "busca", "buscamos", "buscan")),
    ("NECESITAR", ("necesito", "necesitas", "necesita", "necesitamos", "necesitan")),
    ("TRAER", ("traigo", "traes", "trae", "traemos", "traen")),
    ("PEDIR", ("pido", "pides", "pide", "pedimos", "piden")),
)
OBJECTS = (
    ("PAN", "el pan"),
    ("LECHE", "la leche"),
    ("LIBRO", "el libro"),
    ("PIÑA", "la piña"),
    ("CAFÉ", "el café"),
    ("MÚSICA", "la música"),
    ("NIÑO", "el niño"),
    ("CANCIÓN", "la canción"),
    ("TÉ", "el té"),
    ("AGUA", "el agua"),
)
NEGATION = "NO"
LEXICON = len(SUBJECTS) + len(VERBS) + len(OBJECTS)


class SyntheticTranslationConfig(Section):
    """What the synthetic translation demo generates (``data.synthetic_sentences``)."""

    seed: int = Field(0, description="Generator seed: same seed, same dataset.")
    train_sentences: int = Field(480, ge=1, description="Signed sentences in the train split.")
    val_sentences: int = Field(60, ge=1, description="Signed sentences in the val split.")
    test_sentences: int = Field(60, ge=1, description="Signed sentences in the test split.")
    vocabulary: int = Field(
        LEXICON,
        ge=3,
        le=LEXICON,
        description=f"Content signs used (subjects, verbs and objects in turn; at most {LEXICON}).",
    )
    negation_prob: float = Field(
        0.3, ge=0, le=1, description="Share of sentences with the sign NO (4 signs, not 3)."
    )
    question_prob: float = Field(
        0.3, ge=0, le=1, description="Share of yes/no questions (marked on the face)."
    )
    min_frames_per_sign: int = Field(6, ge=3, description="Shortest sign (frames).")
    max_frames_per_sign: int = Field(9, ge=3, description="Longest sign (frames).")
    roi_size: int = Field(32, ge=8, le=256, description="Side of the face and hand crops (px).")
    num_signers: int = Field(8, ge=1, description="Distinct simulated signers.")
    noise: float = Field(6.0, ge=0, description="Std of the pixel noise (0..255 levels).")
    landmark_noise: float = Field(
        0.004, ge=0, description="Std of the pose jitter (normalised units)."
    )
    missing_hand_prob: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Chance per sign that a hand is undetected for a run of frames.",
    )

    @model_validator(mode="after")
    def _frames_in_order(self) -> SyntheticTranslationConfig:
        if self.min_frames_per_sign > self.max_frames_per_sign:
            raise ValueError(
                f"min_frames_per_sign ({self.min_frames_per_sign}) is above "
                f"max_frames_per_sign ({self.max_frames_per_sign})"
            )
        return self


class SyntheticTranslationData(TranslationData):
    """``data.*`` of the ``synthetic_translation`` source: the translation options (it is
    read as a translation dataset) and ``data.synthetic_sentences``, what to generate."""

    source: Literal["synthetic_translation"] = "synthetic_translation"
    # not ``synthetic``: that key is the landmark source's (another schema), and a shared
    # name would be carried over when a config switches between the two sources
    synthetic_sentences: SyntheticTranslationConfig = Field(
        default_factory=SyntheticTranslationConfig
    )


@dataclass(frozen=True)
class Sentence:
    subject: int
    verb: int
    obj: int
    negated: bool
    question: bool

    def glosses(self) -> list[str]:
        g = [SUBJECTS[self.subject][0], OBJECTS[self.obj][0], VERBS[self.verb][0]]
        return g + [NEGATION] if self.negated else g

    def text(self) -> str:
        _, subject, person = SUBJECTS[self.subject]
        words = [subject, "no"] if self.negated else [subject]
        body = " ".join([*words, VERBS[self.verb][1][person], OBJECTS[self.obj][1]])
        return f"¿{body}?" if self.question else f"{body}."

    def signs(self) -> list[int]:
        """Indices into the synthetic signs: subjects, verbs, objects, then NO."""
        s = [self.subject, len(SUBJECTS) + len(VERBS) + self.obj, len(SUBJECTS) + self.verb]
        return s + [LEXICON] if self.negated else s


def used_words(cfg: SyntheticTranslationConfig) -> tuple[list[int], list[int], list[int]]:
    """The subjects, verbs and objects of a vocabulary of ``cfg.vocabulary`` content signs
    (taken from the three lists in turn)."""
    pools = [list(range(len(SUBJECTS))), list(range(len(VERBS))), list(range(len(OBJECTS)))]
    used: list[list[int]] = [[], [], []]
    n, k = 0, 0
    while n < cfg.vocabulary:
        if pools[k % 3]:
            used[k % 3].append(pools[k % 3].pop(0))
            n += 1
        k += 1
    return used[0], used[1], used[2]


def sentences(cfg: SyntheticTranslationConfig, split: str) -> list[Sentence]:
    """The sentences of one split (drawn uniformly from the grammar, independently per
    split: a val sentence may also occur in train, most do not)."""
    subj, verbs, objs = used_words(cfg)
    count = {"train": cfg.train_sentences, "val": cfg.val_sentences, "test": cfg.test_sentences}
    r = np.random.default_rng([cfg.seed, 11, SPLITS.index(split)])
    return [
        Sentence(
            subject=int(r.choice(subj)),
            verb=int(r.choice(verbs)),
            obj=int(r.choice(objs)),
            negated=bool(r.random() < cfg.negation_prob),
            question=bool(r.random() < cfg.question_prob),
        )
        for _ in range(count[split])
    ]


def plan(cfg: SyntheticTranslationConfig) -> list[tuple[str, str, Sentence]]:
    """(id, split, sentence) of every sample."""
    return [
        (f"{split}_{i:05d}", split, s)
        for split in SPLITS
        for i, s in enumerate(sentences(cfg, split))
    ]


def default_root(cfg: SyntheticTranslationConfig) -> Path:
    return generated_root("synthetic-translation", GENERATOR, cfg)


# --------------------------------------------------------------------------- rendering

_BONES = [(0, 1), (1, 2), (2, 3), (3, 4)] + [
    (a, b) for f in range(4) for a, b in ((0, 5 + 4 * f), (5 + 4 * f, 6 + 4 * f),
                                          (6 + 4 * f, 7 + 4 * f), (7 + 4 * f, 8 + 4 * f))
]  # fmt: skip
_PALM = [0, 1, 5, 9, 13, 17]
_MOUTH = [17, 23, 19, 24, 18, 26, 20, 25]  # outer lip contour in the 27 face points


def _looks(seed: int, j: int) -> dict[str, np.ndarray]:
    """A signer's colours (RGB): skin, background, clothing, lips."""
    r = np.random.default_rng([seed, 12, j])
    tone = r.uniform(0.35, 1.0)
    skin = np.array([235, 190, 160]) * tone + np.array([40, 25, 15]) * (1 - tone)
    return {
        "skin": skin,
        "background": r.uniform(20, 200, 3),
        "clothing": r.uniform(10, 230, 3),
        "lips": skin * np.array([0.75, 0.45, 0.45]),
    }


def _box(points: np.ndarray, side: float, jitter: np.ndarray) -> tuple[np.ndarray, float]:
    """Top-left corner and side (normalised units) of a square crop around ``points``."""
    centre = (np.nanmin(points[:, :2], 0) + np.nanmax(points[:, :2], 0)) / 2
    centre = centre + jitter[:2] * side
    side = side * (1 + jitter[2])
    return centre - side / 2, side


def _canvas(size: int, colour: np.ndarray, r: np.random.Generator) -> np.ndarray:
    """A background with a soft vertical gradient (float RGB)."""
    grad = np.linspace(-18, 18, size)[:, None, None] * r.uniform(-1, 1)
    return np.broadcast_to(colour, (size, size, 3)) + grad


def _px(points: np.ndarray, corner: np.ndarray, side: float, size: int) -> np.ndarray:
    """Normalised image points -> crop pixels, 4 bits of sub-pixel precision for cv2."""
    return np.round((points[:, :2] - corner) / side * size * 16).astype(np.int32)


def _draw_body(
    img: np.ndarray, body: np.ndarray, face: np.ndarray, corner: np.ndarray, side: float,
    look: dict[str, np.ndarray],
) -> None:  # fmt: skip
    """What is behind a hand: the torso (clothing) and the head, so a hand crop shows
    where the hand is (at the chin, on the chest, beside the body)."""
    import cv2

    size = img.shape[0]
    b = _px(body, corner, side, size)
    cv2.fillPoly(img, [b[[11, 12, 24, 23]]], tuple(float(c) for c in look["clothing"]),
                 cv2.LINE_AA, 4)  # fmt: skip
    f = _px(face, corner, side, size)
    s = size * 16 / side
    width = float(np.linalg.norm(face[4, :2] - face[3, :2]))
    height = float(np.linalg.norm(face[2, :2] - face[1, :2]))
    centre = (f[1] + f[2]) // 2
    axes = (int(0.55 * width * s), int(0.55 * height * s))
    skin = tuple(float(c) * 0.9 for c in look["skin"])
    cv2.ellipse(img, tuple(centre), axes, 0, 0, 360, skin, -1, cv2.LINE_AA, 4)


def _draw_hand(
    pts: np.ndarray, body: np.ndarray, face: np.ndarray, size: int,
    look: dict[str, np.ndarray], jitter: np.ndarray, r: np.random.Generator,
) -> np.ndarray:  # fmt: skip
    import cv2

    palm = float(np.linalg.norm(pts[9] - pts[0]))  # wrist to middle knuckle, 3-D
    corner, side = _box(pts, 3.0 * palm, jitter)
    img = np.ascontiguousarray(_canvas(size, look["background"], r), dtype=np.float32)
    _draw_body(img, body, face, corner, side, look)
    p = _px(pts, corner, side, size)
    width = max(1, int(round(size / 14)))
    skin = tuple(float(c) for c in look["skin"])
    shade = tuple(float(c) * 0.7 for c in look["skin"])
    cv2.fillPoly(img, [p[_PALM]], skin, cv2.LINE_AA, shift=4)
    for a, b in _BONES:
        colour = shade if pts[b, 2] > pts[0, 2] else skin  # fingers pointing away: darker
        cv2.line(img, tuple(p[a]), tuple(p[b]), colour, width, cv2.LINE_AA, shift=4)
    for tip in (4, 8, 12, 16, 20):
        cv2.circle(img, tuple(p[tip]), 16 * max(1, width // 2 + 1), skin, -1, cv2.LINE_AA, 4)
    return img


def _draw_face(
    pts: np.ndarray, size: int, look: dict[str, np.ndarray], jitter: np.ndarray,
    question: float, frown: float, r: np.random.Generator,
) -> np.ndarray:  # fmt: skip
    """The face crop from the 27 face points; ``question`` raises the eyebrows and opens the
    eyes, ``frown`` lowers and draws in the eyebrows and turns the mouth corners down."""
    import cv2

    width_face = float(np.linalg.norm(pts[4] - pts[3]))  # cheek to cheek, 3-D
    unit = width_face / 0.4  # face points are in units of 0.4 per cheek-to-cheek
    pts = pts.copy()
    brows = [13, 14, 15, 16]
    pts[brows, 1] -= (0.09 * question - 0.035 * frown) * unit
    pts[[13, 16], 0] += np.array([1, -1]) * 0.02 * frown * unit
    pts[[17, 18], 1] += 0.03 * frown * unit
    corner, side = _box(pts[[1, 2, 3, 4]], 1.6 * width_face, jitter)
    img = np.ascontiguousarray(_canvas(size, look["background"], r), dtype=np.float32)
    p = _px(pts, corner, side, size)
    s = size * 16 / side  # pixels (x16) per normalised unit
    skin = tuple(float(c) for c in look["skin"])
    dark = (30.0, 25.0, 25.0)
    centre = ((p[3] + p[4]) // 2 + (p[1] + p[2]) // 2) // 2
    axes = (int(0.55 * width_face * s), int(0.55 * float(np.linalg.norm(pts[2] - pts[1])) * s))
    cv2.ellipse(img, tuple(centre), axes, 0, 0, 360, skin, -1, cv2.LINE_AA, 4)
    thick = max(1, int(round(size / 20)))
    cv2.line(img, tuple(p[13]), tuple(p[14]), dark, thick, cv2.LINE_AA, 4)
    cv2.line(img, tuple(p[15]), tuple(p[16]), dark, thick, cv2.LINE_AA, 4)
    eye_r = int((0.02 + 0.02 * question) * unit * s)
    for eye in ([5, 6, 7, 8], [9, 10, 11, 12]):
        c = p[eye].mean(0).astype(np.int32)
        cv2.ellipse(img, tuple(c), (int(0.04 * unit * s), max(16, eye_r)), 0, 0, 360,
                    (240.0, 240.0, 240.0), -1, cv2.LINE_AA, 4)  # fmt: skip
        cv2.circle(img, tuple(c), max(16, int(0.018 * unit * s)), dark, -1, cv2.LINE_AA, 4)
    cv2.fillPoly(img, [p[_MOUTH]], tuple(float(c) for c in look["lips"]), cv2.LINE_AA, 4)
    return img


def _finish(img: np.ndarray, gain: float, bias: float, noise: float, r: np.random.Generator):
    out = img * gain + bias
    if noise:
        out = out + r.normal(0, noise, out.shape)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


@dataclass
class Cast:
    """What every sample of one dataset shares: the signs, the signers and their looks."""

    signs: list[Any]
    signers: list[dict[str, Any]]
    looks: list[dict[str, np.ndarray]]


def cast(cfg: SyntheticTranslationConfig) -> Cast:
    return Cast(
        signs=_signs(_landmark_config(cfg)),
        signers=[_signer(cfg.seed, j) for j in range(cfg.num_signers)],
        looks=[_looks(cfg.seed, j) for j in range(cfg.num_signers)],
    )


def render(
    sentence: Sentence,
    who: int,
    cfg: SyntheticTranslationConfig,
    r: np.random.Generator,
    cast: Cast,
) -> dict[str, np.ndarray]:
    """The ROI arrays of one signed sentence."""
    return render_signs(sentence.signs(), sentence.question, sentence.negated, who, cfg, r, cast)


def render_signs(
    sign_ids: list[int],
    question: bool,
    negated: bool,
    who: int,
    cfg: SyntheticTranslationConfig,
    r: np.random.Generator,
    cast: Cast,
) -> dict[str, np.ndarray]:
    """The ROI arrays of signs ``sign_ids`` (see :meth:`Sentence.signs`) signed in a row by
    signer ``who``; ``question`` marks all frames, ``negated`` the third sign on."""
    syn = _landmark_config(cfg)
    signs, signers, looks = cast.signs, cast.signers, cast.looks
    question_level = 1.0 if question else 0.0
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("pose", "left", "right", "face")}
    frown: list[np.ndarray] = []
    for k, sign in enumerate(sign_ids):
        frames = int(r.integers(cfg.min_frames_per_sign, cfg.max_frames_per_sign + 1))
        a = _sample(signs[sign], signers[who], frames, syn, r)
        pose = a["pose"][..., :3].astype(np.float64)
        negating = negated and k >= 2  # the verb and NO: frown and head shake
        if negating:
            shake = 0.012 * np.sin(np.linspace(0, 4 * np.pi, frames))
            pose[:, :11, 0] += shake[:, None]
            a["face"][..., 0] += shake[:, None].astype(np.float32)
        parts["pose"].append(pose)
        parts["left"].append(a["left_hand"])
        parts["right"].append(a["right_hand"])
        parts["face"].append(a["face"])
        frown.append(np.full(frames, 1.0 if negating else 0.0))
    frames = sum(len(p) for p in parts["pose"])
    pose = np.concatenate(parts["pose"])
    face_pts = np.concatenate(parts["face"])
    frown_t = np.concatenate(frown)
    look = looks[who]
    size = cfg.roi_size
    gain, bias = r.uniform(0.8, 1.2), r.uniform(-20, 20)
    arrays: dict[str, np.ndarray] = {"pose": pose.astype(np.float32)}
    for stream, key in (("hand_left", "left"), ("hand_right", "right")):
        pts_t = np.concatenate(parts[key])
        crops = np.zeros((frames, size, size, 3), np.uint8)
        mask = ~np.isnan(pts_t).any(axis=(1, 2))
        for t in np.flatnonzero(mask):
            jitter = r.normal(0, [0.04, 0.04, 0.05])
            crops[t] = _finish(_draw_hand(pts_t[t], pose[t], face_pts[t], size, look, jitter, r), gain, bias,
                               cfg.noise, r)  # fmt: skip
        arrays[stream], arrays[rc.mask_key(stream)] = crops, mask
    faces = np.zeros((frames, size, size, 3), np.uint8)
    for t in range(frames):
        jitter = r.normal(0, [0.03, 0.03, 0.04])
        img = _draw_face(face_pts[t], size, look, jitter, question_level, frown_t[t], r)
        faces[t] = _finish(img, gain, bias, cfg.noise, r)
    arrays["face"], arrays[rc.mask_key("face")] = faces, np.ones(frames, bool)
    arrays["frame_indices"] = np.arange(frames, dtype=np.int64)
    arrays["fps"] = np.float32(FPS)
    return arrays


def _landmark_config(cfg: SyntheticTranslationConfig) -> SyntheticConfig:
    """The settings of the underlying landmark signs: one class per lexicon word plus NO."""
    return SyntheticConfig(
        num_classes=LEXICON + 1,
        num_signers=cfg.num_signers,
        noise=cfg.landmark_noise,
        missing_hand_prob=cfg.missing_hand_prob,
        seed=cfg.seed,
    )


# --------------------------------------------------------------------------- writing


def _csv(rows: list[list[str]], delimiter: str = ",") -> bytes:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode("utf-8")


def _write(
    cfg: SyntheticTranslationConfig, out: Path, progress: Callable[[int, int], None] | None
) -> None:
    """Fill ``out`` (a temp folder that :func:`generate` renames into place)."""
    everyone = cast(cfg)
    samples = plan(cfg)
    manifest, meta = [], [["id", "texto"]]
    ids: dict[str, list[list[str]]] = {s: [["id"]] for s in SPLITS}
    for done, (sid, split, sentence) in enumerate(samples, 1):
        r = np.random.default_rng([cfg.seed, 13, SPLITS.index(split), done])
        who = int(r.integers(cfg.num_signers))
        arrays = render(sentence, who, cfg, r, everyone)
        rc.write_sample(rc.npz_path(out, sid), arrays)
        glosses = " ".join(sentence.glosses()) + (" (?)" if sentence.question else "")
        manifest.append((sid, len(arrays["pose"]), glosses, split, who))
        meta.append([sid, sentence.text()])
        ids[split].append([sid])
        if progress:
            progress(done, len(samples))
    rc.write_manifest(out, manifest)
    atomic_write_bytes(out / META_CSV, _csv(meta, ";"))
    for split in SPLITS:
        atomic_write_bytes(out / f"{split}.csv", _csv(ids[split]))
    rc.write_dataset_json(
        out,
        {
            "roi_size": cfg.roi_size,
            "generator": GENERATOR,
            "settings": cfg.model_dump(mode="json"),
            "fps": FPS,
            "samples": len(samples),
        },
    )


def _matches(root: Path, cfg: SyntheticTranslationConfig) -> bool:
    meta = rc.read_dataset_json(root)
    return (
        meta is not None
        and meta.get("generator") == GENERATOR
        and meta.get("settings") == cfg.model_dump(mode="json")
        and all((root / f).is_file() for f in (rc.MANIFEST, META_CSV, "train.csv", "val.csv"))
    )


def generate(
    cfg: SyntheticTranslationConfig,
    root: Path,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write the dataset to ``root`` (atomically); a no-op if it already holds these settings."""
    root = Path(root).expanduser()
    if _matches(root, cfg):
        return root
    if not replaceable(root, rc.read_dataset_json(root), GENERATOR["name"]):
        raise DataError(
            f"{root} exists and is not a synthetic translation dataset; "
            "set data.root to another folder"
        )
    return write_once(
        root,
        "synthetic translation dataset",
        lambda r: _matches(r, cfg),
        lambda out: _write(cfg, out, progress),
    )


def _generated(cfg: RunConfig) -> Path:
    syn = cfg.data.synthetic_sentences
    root = Path(cfg.data.root).expanduser() if cfg.data.root else default_root(syn)
    return generate(syn, root)


def build(cfg: RunConfig) -> DataBundle:
    """Generate the dataset if needed and read it as a translation dataset."""
    from engine.data.translation import build_root

    bundle = build_root(cfg, _generated(cfg))
    bundle.info["generator"] = GENERATOR
    return bundle


def check(cfg: RunConfig, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """``slr data check``: generate if needed, then the ``translation`` source's report."""
    from engine.data import translation

    data = cfg.data.model_copy(update={"root": str(_generated(cfg))})
    return translation.check(cfg.model_copy(update={"data": data}), progress)


# --------------------------------------------------------------------------- the baseline


def read_texts(root: Path) -> dict[str, str]:
    """``meta.csv`` of a generated dataset: id -> text."""
    with open(Path(root) / META_CSV, encoding="utf-8", newline="") as fh:
        return {row["id"]: row["texto"] for row in csv.DictReader(fh, delimiter=";")}


def read_split(root: Path, split: str) -> list[str]:
    with open(Path(root) / f"{split}.csv", encoding="utf-8", newline="") as fh:
        return [row["id"] for row in csv.DictReader(fh)]


def majority_baseline(root: Path, split: str = "val") -> dict[str, Any]:
    """Copy the most frequent training sentence for every sample of ``split``: its corpus
    BLEU-4 (sacrebleu, default 13a tokenisation) and chrF, the floor a model must beat."""
    import sacrebleu

    texts = read_texts(root)
    train = [texts[i] for i in read_split(root, "train")]
    refs = [texts[i] for i in read_split(root, split)]
    top, count = Counter(train).most_common(1)[0]
    hyps = [top] * len(refs)
    return {
        "split": split,
        "sentence": top,
        "train_count": count,
        "bleu4": sacrebleu.corpus_bleu(hyps, [refs]).score,
        "chrf": sacrebleu.corpus_chrf(hyps, [refs]).score,
    }
