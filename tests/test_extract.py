"""`slr extract`: MediaPipe Holistic landmarks from videos into a landmark cache.

The videos show a real person (scikit-image's astronaut photograph, drifting and zooming);
tests that run Holistic skip when mediapipe or scikit-image is not installed."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from engine import config as cfgmod
from engine.data.landmark_cache import complete_frames
from engine.data.landmarks import build_from_root
from engine.data.video_records import VideoRecord
from engine.extract import (
    ExtractError,
    ExtractSettings,
    ensure_pose_model,
    extract,
    select,
)
from engine.holistic import POSE_MODELS
from slr_tui.cli.data import extract as extract_command

LAYOUT = {"train": {"nod": 1, "wave": 2}, "val": {"nod": 1, "wave": 1}}
FRAMES = 16

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
app.command()(extract_command)


@app.command()
def other() -> None:  # a second command, so `extract` is a subcommand as in `slr`
    pass


runner = CliRunner()


def invoke(*args):
    res = runner.invoke(app, ["extract", *(str(a) for a in args)])
    res.text = " ".join(res.output.split())  # rich wraps long lines
    return res


def folder_cfg(root: Path, *sets: str) -> cfgmod.RunConfig:
    return cfgmod.resolve(sets=["data.source=video_folder", f"data.root={root}", *sets])


def manifest_ids(out: Path) -> list[str]:
    with open(out / "manifest.csv", newline="") as fh:
        return [row["id"] for row in csv.DictReader(fh)]


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """Five clips of the astronaut: train nod 1, wave 2; val nod 1, wave 1."""
    pytest.importorskip("mediapipe")
    pytest.importorskip("skimage")
    from tests.pose_fixture import make_astronaut_folder

    root = tmp_path_factory.mktemp("astronaut")
    make_astronaut_folder(root, LAYOUT, frames=FRAMES)
    return root


@pytest.fixture(scope="module")
def extracted(videos, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("cache") / "landmarks-cache"
    return out, extract(folder_cfg(videos), out)


# --------------------------------------------------------------------------- Holistic


def test_extraction_finds_the_pose_and_the_face(extracted):
    out, summary = extracted
    assert summary["extracted"] == 5 and summary["failed"] == 0 and not summary["failures"]
    assert summary["frames"] == 5 * FRAMES
    assert summary["detection"]["pose"] >= 0.7 and summary["detection"]["face"] >= 0.7
    for sid in manifest_ids(out):
        with np.load(out / "landmarks" / f"{sid}.npz") as z:
            pose, face = z["pose"], z["face"]
            assert pose.shape == (FRAMES, 33, 4) and pose.dtype == np.float32
            assert face.shape == (FRAMES, 468, 3)
            assert z["left_hand"].shape == z["right_hand"].shape == (FRAMES, 21, 3)
            assert np.array_equal(z["frame_indices"], np.arange(FRAMES))
            assert float(z["fps"]) == pytest.approx(25.0)
        seen = np.isfinite(pose).all(axis=(1, 2))
        assert seen.mean() >= 0.7 and np.isfinite(face).all(axis=(1, 2)).mean() >= 0.7
        p = pose[seen]
        assert (p[..., 3].max(axis=1) > 0.5).all()  # some points visible in every frame
        nose, shoulders = p[:, 0, :2], p[:, [11, 12], :2]
        assert (nose[:, 1] < shoulders[:, :, 1].min(axis=1)).mean() >= 0.9  # head above
        between = (shoulders[:, :, 0].min(axis=1) < nose[:, 0]) & (
            nose[:, 0] < shoulders[:, :, 0].max(axis=1)
        )
        assert between.mean() >= 0.9


def test_the_cache_is_a_landmark_dataset(extracted):
    out, _ = extracted
    assert (out / "classes.txt").read_text().split() == ["nod", "wave"]
    assert sorted(manifest_ids(out)) == sorted(
        f"{split}/{name}/clip{k}"
        for split, c in LAYOUT.items()
        for name, n in c.items()
        for k in range(n)
    )
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["format"] == "slr-landmarks" and meta["version"] == 1
    assert meta["generator"]["name"] == "mediapipe-holistic"
    assert meta["generator"]["model_complexity"] == 1 and meta["samples"] == 5
    assert not list(out.rglob("*.tmp"))
    cfg = cfgmod.resolve(preset="phase1-ctc20", sets=[f"data.root={out}"])
    bundle = build_from_root(out, cfg)
    assert (len(bundle.train), len(bundle.val)) == (3, 2)
    assert bundle.input_dim == (33 + 21 + 21) * 2 + 3
    x = bundle.val[0]["x"]
    assert x.shape == (FRAMES, bundle.input_dim) and np.isfinite(x).all()
    with_face = cfgmod.resolve(
        preset="phase1-ctc20", sets=[f"data.root={out}", "data.parts=[pose, face]"]
    )
    assert build_from_root(out, with_face).input_dim == (33 + 468) * 2 + 2


def test_an_interrupted_extraction_resumes(videos, tmp_path):
    out = tmp_path / "cache"
    res = invoke(
        "--set", "data.source=video_folder", "--data-root", videos, "--out", out, "--limit", 1
    )
    assert res.exit_code == 0, res.output
    assert "4 videos still to extract" in res.text
    first = manifest_ids(out)
    assert len(first) == 1
    first_npz = out / "landmarks" / f"{first[0]}.npz"
    stamp = first_npz.stat().st_mtime_ns
    # a killed write leaves a temp file; a damaged npz is not a finished one
    leftover = out / "landmarks" / "train" / "wave" / ".clip0.npz.k1ll3d.tmp"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_bytes(b"PK\x03\x04 half an npz")
    damaged = out / "landmarks" / "val" / "nod" / "clip0.npz"
    damaged.parent.mkdir(parents=True, exist_ok=True)
    damaged.write_bytes(b"not an npz")
    assert complete_frames(damaged, 468) is None

    res = invoke(
        "--set", "data.source=video_folder", "--data-root", videos, "--out", out, "--workers", 2
    )
    assert res.exit_code == 0, res.output
    assert "1 already in the cache, 4 to extract" in res.text
    assert f"next: slr run --preset phase1-ctc20 --set data.root={out}" in res.text
    assert first_npz.stat().st_mtime_ns == stamp  # not extracted again
    assert not leftover.exists() and complete_frames(damaged, 468) == FRAMES
    assert len(manifest_ids(out)) == 5
    for sid in manifest_ids(out):
        assert complete_frames(out / "landmarks" / f"{sid}.npz", 468) == FRAMES
    build_from_root(out, cfgmod.resolve(preset="phase1-ctc20", sets=[f"data.root={out}"]))


def test_ctrl_c_leaves_a_valid_cache(videos, tmp_path):
    out = tmp_path / "cache"

    def stop_after_one(done, total, frames, fps):
        if done == 1:
            raise KeyboardInterrupt

    summary = extract(folder_cfg(videos), out, on_progress=stop_after_one)
    assert summary["interrupted"] and summary["extracted"] == 1 and summary["remaining"] == 4
    assert len(manifest_ids(out)) == 1 and not list(out.rglob("*.tmp"))
    settings = ExtractSettings(stride=2)
    with pytest.raises(ExtractError, match="other settings .*stride 1 there, 2 here"):
        extract(folder_cfg(videos), out, settings)


def test_stride_max_size_and_face_subset(videos, tmp_path):
    out = tmp_path / "cache"
    settings = ExtractSettings(stride=3, max_size=128, face_indices=(1, 13, 14))
    summary = extract(folder_cfg(videos), out, settings, limit=1)
    assert summary["extracted"] == 1
    (sid,) = manifest_ids(out)
    with np.load(out / "landmarks" / f"{sid}.npz") as z:
        assert np.array_equal(z["frame_indices"], np.arange(0, FRAMES, 3))
        assert z["face"].shape == (6, 3, 3) and z["pose"].shape == (6, 33, 4)
        assert np.isfinite(z["pose"]).all(axis=(1, 2)).mean() >= 0.7
    assert json.loads((out / "dataset.json").read_text())["face_indices"] == [1, 13, 14]


def test_max_glosses_keeps_the_most_frequent(videos, tmp_path):
    out = tmp_path / "cache"
    summary = extract(folder_cfg(videos), out, max_glosses=1, samples_per_gloss=2, limit=1)
    assert (out / "classes.txt").read_text() == "wave\n"  # 3 videos against nod's 2
    assert summary["selected"] == 2 and summary["classes"] == 1
    assert summary["remaining"] == 1 and manifest_ids(out) == ["train/wave/clip0"]


def test_complexity_2_without_the_model_file_says_why(videos, tmp_path):
    from engine.holistic import mediapipe_dir

    if (mediapipe_dir() / "modules" / "pose_landmark" / POSE_MODELS[2]).is_file():
        pytest.skip("this mediapipe has the heavy pose model")
    res = invoke(
        "--set", "data.source=video_folder", "--data-root", videos, "--out", tmp_path / "c",
        "--model-complexity", 2,
    )  # fmt: skip
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "pose_landmark_heavy.tflite" in lines[0]
    assert "offline" in lines[0] and "--model-file" in lines[0]
    assert not (tmp_path / "c").exists()


def test_wlasl_segments_signers_and_bbox(tmp_path):
    pytest.importorskip("mediapipe")
    from tests.wlasl_fixture import LEAD, make_wlasl_root

    fx = make_wlasl_root(tmp_path / "wlasl", glosses=2, per_split=(2, 1, 1), frames=8, corrupt=0)
    cfg = cfgmod.resolve(sets=["data.source=wlasl", f"data.root={fx.root}", "data.crop_bbox=true"])
    summary = extract(cfg, tmp_path / "cache")
    assert (summary["listed"], summary["missing"], summary["extracted"]) == (8, 1, 7)
    assert summary["failures"] == [{"id": fx.missing[0], "reason": "missing"}]
    meta = json.loads((tmp_path / "cache" / "dataset.json").read_text())
    assert meta["extraction"]["crop_bbox"] and meta["source"]["source"] == "wlasl"
    with open(tmp_path / "cache" / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 7 and all(r["signer"].isdigit() and r["frames"] == "8" for r in rows)
    for r in rows:
        lead = LEAD if (int(r["id"]) - 10000) % 3 == 2 else 0  # a segment inside a longer video
        with np.load(tmp_path / "cache" / "landmarks" / f"{r['id']}.npz") as z:
            assert np.array_equal(z["frame_indices"], np.arange(lead, lead + 8))


def test_no_usable_video_is_one_line(tmp_path):
    pytest.importorskip("mediapipe")
    for rel in ("train/a/x.mp4", "val/a/y.mp4"):
        (tmp_path / "videos" / rel).parent.mkdir(parents=True)
        (tmp_path / "videos" / rel).write_bytes(b"not a video" * 40)
    res = invoke(
        "--set",
        "data.source=video_folder",
        "--data-root",
        tmp_path / "videos",
        "--out",
        tmp_path / "c",
    )
    assert res.exit_code == 2
    assert "no usable videos (2 listed, 0 missing, 2 unreadable)" in res.text
    assert not (tmp_path / "c").exists()


# --------------------------------------------------------------------------- without Holistic


def test_a_provided_model_file_is_installed(tmp_path):
    package = tmp_path / "mediapipe"
    (package / "modules" / "pose_landmark").mkdir(parents=True)
    with pytest.raises(ExtractError, match="does not ship.*--model-file"):
        ensure_pose_model(0, package_dir=package)
    fake = tmp_path / "lite.tflite"
    fake.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(64))
    target = ensure_pose_model(0, fake, package_dir=package)
    assert target == package / "modules" / "pose_landmark" / "pose_landmark_lite.tflite"
    assert target.read_bytes() == fake.read_bytes() and target.stat().st_mode & 0o044
    assert ensure_pose_model(0, package_dir=package) == target
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ExtractError, match="not a TFLite model"):
        ensure_pose_model(2, tmp_path / "notes.txt", package_dir=package)
    with pytest.raises(ExtractError, match="no such file"):
        ensure_pose_model(2, tmp_path / "absent.tflite", package_dir=package)
    with pytest.raises(ExtractError, match="0, 1 or 2"):
        ensure_pose_model(3, package_dir=package)
    with pytest.raises(ExtractError, match="ships with mediapipe"):  # never replaced
        ensure_pose_model(1, fake, package_dir=package)


def _rec(i: int, label: int, split: str) -> VideoRecord:
    return VideoRecord(f"v{i:03d}", Path(f"v{i:03d}.mp4"), label, split)


def test_select_most_frequent_glosses_in_class_order():
    counts = {0: 2, 1: 5, 2: 3, 3: 5, 4: 1}  # class 1 and 3 tie: class order decides
    rows, i = [], 0
    for label, n in counts.items():
        for k in range(n):
            rows.append(_rec(i, label, "val" if k == 0 else "train"))
            i += 1
    kept, classes = select(rows, 5, max_glosses=3)
    assert classes == [1, 2, 3]
    assert [r.id for r in kept] == [r.id for r in rows if r.label in (1, 2, 3)]
    assert select(rows, 5, max_glosses=2)[1] == [1, 3]
    assert select(list(reversed(rows)), 5, max_glosses=2)[1] == [1, 3]
    assert select(rows, 5) == (rows, [0, 1, 2, 3, 4])
    assert select(rows, 7, max_glosses=10)[1] == [0, 1, 2, 3, 4]  # never a gloss without videos
    assert select([], 3, max_glosses=2) == ([], [])


def test_samples_per_gloss_keeps_each_split_in_proportion():
    splits = ["train"] * 14 + ["val"] * 4 + ["test"] * 2
    rows = [_rec(i, 0, s) for i, s in enumerate(splits)]
    rows += [_rec(100 + i, 1, "train") for i in range(3)]
    kept, classes = select(rows, 2, samples_per_gloss=10)
    mine = [r for r in kept if r.label == 0]
    assert [r.split for r in mine].count("train") == 7
    assert [r.split for r in mine].count("val") == 2
    assert [r.split for r in mine].count("test") == 1
    assert [r.id for r in mine if r.split == "train"] == [f"v{i:03d}" for i in range(7)]
    assert len([r for r in kept if r.label == 1]) == 3 and classes == [0, 1]
    few = select(rows, 2, samples_per_gloss=3)[0]
    assert sorted(r.split for r in few if r.label == 0) == ["test", "train", "val"]


def test_out_must_be_a_cache_of_slr_extract(tmp_path):
    cfg = folder_cfg(tmp_path / "videos")
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "manifest.csv").write_text("path,label,split\n")
    with pytest.raises(ExtractError, match="not empty and is no landmark cache"):
        extract(cfg, foreign)
    assert (foreign / "manifest.csv").read_text() == "path,label,split\n"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExtractError, match="is a file"):
        extract(cfg, tmp_path / "file")
    with pytest.raises(ExtractError, match="--stride"):
        extract(cfg, tmp_path / "new", ExtractSettings(stride=0))
    with pytest.raises(ExtractError, match="face indices"):
        extract(cfg, tmp_path / "new", ExtractSettings(face_indices=(0, 468)))


def test_the_command_has_its_options():
    res = runner.invoke(app, ["extract", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    for opt in (
        "--preset", "--config", "--set", "--data-root", "--out", "--workers", "--max-glosses",
        "--samples-per-gloss", "--stride", "--max-size", "--model-complexity", "--model-file",
        "--limit",
    ):  # fmt: skip
        assert opt in res.output, opt
    res = invoke("--data-root", "/nowhere")
    assert res.exit_code == 2 and "--out" in res.output
