"""Video clips: segments, temporal sampling, crops, normalisation, the frame cache and the
video-folder source."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.config import RunConfig
from engine.data import build_data, decode, frame_cache, video, video_folder
from engine.data.base import DataError
from engine.data.video import ClipSpec, VideoClipDataset, VideoRef

HAVE_VIDEO = all(importlib.util.find_spec(m) for m in ("decord", "cv2"))
needs_video = pytest.mark.skipif(not HAVE_VIDEO, reason="needs decord and opencv")
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def config(source: str, root: Path | None, **data) -> RunConfig:
    base = {"source": source, "root": root and str(root), "num_frames": 4, "image_size": 32}
    return RunConfig.model_validate({"data": {**base, **data}})


# --------------------------------------------------------------------------- time


def test_segment():
    assert video.segment(1, -1, 50) == (0, 50)
    assert video.segment(5, 28, 32) == (4, 28)
    assert video.segment(1, 60, 60) == (0, 60)
    assert video.segment(2150, 2249, 100) == (0, 100)  # a file already cut to the segment
    assert video.segment(1, 60, 58) == (0, 58)


def test_uniform_eval_indices():
    idx = video.sample_indices(64, 16)
    assert idx.tolist() == list(range(2, 64, 4))
    idx = video.sample_indices(24, 4)
    assert idx.tolist() == [3, 9, 15, 21]
    short = video.sample_indices(5, 16)  # short segments repeat frames, in order
    assert sorted(short.tolist()) == short.tolist() and set(short.tolist()) == set(range(5))


def test_training_jitter_is_deterministic_per_rng():
    def draw(seed):
        return video.sample_indices(60, 16, np.random.default_rng(seed), (0.8, 1.0))

    assert np.array_equal(draw(1), draw(1))
    assert not all(np.array_equal(draw(1), draw(s)) for s in range(2, 6))
    for s in range(50):
        idx = draw(s)
        assert idx.min() >= 0 and idx.max() < 60
        assert np.all(np.diff(idx) >= 0)
        assert idx.max() - idx.min() >= 0.8 * 60 * 15 / 16 - 2  # spans most of the segment
    assert len({tuple(draw(s)) for s in range(20)}) > 10  # offsets and jitter vary


# --------------------------------------------------------------------------- space


def test_base_frames_short_side_and_bbox():
    pytest.importorskip("cv2")
    frames = np.zeros((3, 48, 64, 3), np.uint8)
    assert video.base_frames(frames, None, 24).shape == (3, 24, 32, 3)
    assert video.base_frames(frames, None, 48).shape == (3, 48, 64, 3)
    assert video.base_frames(frames, (10, 4, 30, 44), 20).shape == (3, 40, 20, 3)
    assert video.base_frames(frames, (-5, -5, 500, 500), 48).shape == (3, 48, 64, 3)  # clamped
    assert video.base_frames(frames, (10, 10, 10, 30), 48).shape == (3, 48, 64, 3)  # degenerate


def test_centre_crop_and_normalisation():
    pytest.importorskip("cv2")
    base = np.zeros((2, 40, 60, 3), np.uint8)
    base[:, 10:30, 20:40] = 255  # the central 20 x 20 square
    spec = ClipSpec(num_frames=2, image_size=20, short_side=40)
    clip = video.transform(base, spec, None)
    assert clip.shape == (2, 3, 20, 20) and clip.dtype == torch.float32
    assert clip.is_contiguous()
    white = (1 - torch.tensor(MEAN)) / torch.tensor(STD)
    assert torch.allclose(clip[0, :, 5, 5], white)
    flat = video.normalize(np.full((1, 2, 2, 3), 51, np.uint8), MEAN, STD)
    assert torch.allclose(flat[0, :, 0, 0], (0.2 - torch.tensor(MEAN)) / torch.tensor(STD))


def test_random_resized_crop_and_flip():
    pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    for _ in range(100):
        y, x, h, w = video.random_box(48, 64, (0.5, 1.0), rng)
        assert 0 <= y and y + h <= 48 and 0 <= x and x + w <= 64
        assert 0.45 * 48 * 64 <= h * w <= 48 * 64
    base = np.zeros((2, 32, 32, 3), np.uint8)
    base[:, :, :16] = 255  # the signer's left half is bright
    spec = ClipSpec(num_frames=2, image_size=16, short_side=32, crop_scale=(1.0, 1.0))
    for seed in range(10):  # no flip by default: left stays left
        clip = video.transform(base, spec, np.random.default_rng(seed))
        assert clip[0, 0, :, :4].mean() > clip[0, 0, :, -4:].mean()
    flip = ClipSpec(num_frames=2, image_size=16, short_side=32, crop_scale=(1.0, 1.0), hflip=True)
    flipped = [
        bool(
            (c := video.transform(base, flip, np.random.default_rng(s)))[0, 0, :, :4].mean()
            < c[0, 0, :, -4:].mean()
        )
        for s in range(20)
    ]
    assert any(flipped) and not all(flipped)


def test_config_fields_and_clip_spec():
    cfg = config("wlasl", None, image_size=224)
    spec = video.clip_spec(cfg)
    assert spec.short_side == 256 and spec.hflip is False
    assert spec.mean == MEAN and spec.std == STD
    assert cfg.data.frame_cache is None and cfg.data.crop_bbox is False
    with pytest.raises(DataError, match="short_side"):
        video.clip_spec(config("wlasl", None, image_size=224, short_side=200))
    with pytest.raises(DataError, match="crop_scale"):
        video.clip_spec(config("wlasl", None, crop_scale=(0.0, 1.0)))


# --------------------------------------------------------------------------- decoding


@pytest.fixture
def index_video(tmp_path) -> VideoRef:
    pytest.importorskip("decord")
    pytest.importorskip("cv2")
    from tests.wlasl_fixture import index_frames, write_video

    path = write_video(tmp_path / "idx.mp4", index_frames(24))
    st = path.stat()
    return VideoRef(path, start=4, end=20, stamp=(st.st_size, st.st_mtime_ns))


def dataset(ref: VideoRef, augment: bool, cache=None, n: int = 4) -> VideoClipDataset:
    spec = ClipSpec(num_frames=n, image_size=48, short_side=48)  # the video's own size
    return VideoClipDataset([ref], ["v"], [0], spec, augment=augment, seed=3, cache=cache)


@needs_video
def test_eval_clip_is_uniform_within_the_frame_range(index_video):
    from tests.wlasl_fixture import frame_index

    ds = dataset(index_video, augment=False)
    idx = video.sample_indices(index_video.length, 4)
    got = [frame_index(f) for f in ds.frames(index_video, idx)]
    assert got == [4 + i for i in idx.tolist()] == [6, 10, 14, 18]
    item = ds[0]
    assert item["pixel_values"].shape == (4, 3, 48, 48)
    assert set(item) == {"pixel_values", "label", "id", "index"}


@needs_video
def test_training_clips_repeat_per_epoch_and_stay_in_range(index_video):
    from tests.wlasl_fixture import frame_index

    ds = dataset(index_video, augment=True, n=8)
    assert torch.equal(ds[(0, 1)]["pixel_values"], ds[(0, 1)]["pixel_values"])
    assert any(
        not torch.equal(ds[(0, 1)]["pixel_values"], ds[(0, e)]["pixel_values"]) for e in (2, 3)
    )
    for seed in range(10):
        idx = video.sample_indices(16, 8, np.random.default_rng(seed))
        got = [frame_index(f) for f in ds.frames(index_video, idx)]
        assert all(4 <= g < 20 for g in got) and got == sorted(got)


@needs_video
def test_missing_video_gives_zero_clip(tmp_path, caplog):
    ds = dataset(VideoRef(tmp_path / "gone.mp4", 0, 10), augment=True)
    with caplog.at_level("WARNING"):
        a, b = ds[(0, 0)], ds[(0, 1)]
    assert a["pixel_values"].shape == (4, 3, 48, 48)
    assert float(a["pixel_values"].abs().sum()) == 0 == float(b["pixel_values"].abs().sum())
    assert ds.failures == 2 and len(caplog.records) == 1


class _BrokenTail:
    """A reader that counts 10 frames but cannot decode the last 3."""

    def __len__(self) -> int:
        return 10

    def get_batch(self, ids):
        if max(ids) >= 7:
            raise RuntimeError("cannot decode")
        frames = np.stack([np.full((2, 2, 3), i, np.uint8) for i in ids])
        return type("Batch", (), {"asnumpy": lambda self: frames})()


def test_decode_segment_keeps_the_frames_before_a_broken_tail(monkeypatch):
    monkeypatch.setattr(decode, "open_video", lambda path: _BrokenTail())
    got: list[np.ndarray] = []
    assert video.decode_segment("x.mp4", 2, 10, got.append, chunk=4) == 5
    assert [int(f[0, 0, 0]) for c in got for f in c] == [2, 3, 4, 5, 6]
    with pytest.raises(RuntimeError):
        video.decode_segment("x.mp4", 8, 10, got.append)


# --------------------------------------------------------------------------- frame cache


@pytest.fixture
def motion_ref(tmp_path) -> VideoRef:
    pytest.importorskip("decord")
    pytest.importorskip("cv2")
    from tests.wlasl_fixture import motion_frames, write_video

    clip = motion_frames(1, 4, 40, (160, 120), np.random.default_rng(0))
    path = write_video(tmp_path / "m.mp4", clip)
    st = path.stat()
    return VideoRef(path, 2, 38, bbox=(8, 4, 152, 116), stamp=(st.st_size, st.st_mtime_ns))


def _clips(ds: VideoClipDataset, reps: int) -> tuple[float, torch.Tensor]:
    t0 = time.perf_counter()
    for _ in range(reps):
        clip = ds[0]["pixel_values"]
    return time.perf_counter() - t0, clip


@needs_video
@pytest.mark.parametrize("fmt,tol", [("npy", 0.0), ("jpeg", 0.1)])
def test_frame_cache_matches_direct_decoding_and_is_faster(tmp_path, motion_ref, fmt, tol):
    spec = ClipSpec(num_frames=16, image_size=56, short_side=64)
    cache = frame_cache.FrameCache(tmp_path / "fc", spec.short_side, fmt)
    direct = VideoClipDataset([motion_ref], ["m"], [0], spec, augment=False, seed=0)
    cached = VideoClipDataset([motion_ref], ["m"], [0], spec, augment=False, seed=0, cache=cache)
    a, b = direct[0]["pixel_values"], cached[0]["pixel_values"]  # fills the entry
    assert cache.path(motion_ref).is_file()
    # within rounding (npy: identical frames; jpeg: lossy, about 1% of the range on average)
    assert float((a - b).abs().mean()) <= tol * float(a.abs().mean()) + 1e-6
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a DataLoader worker; a busy box makes thread pools stall
    try:
        t_direct = min(_clips(direct, 5)[0] for _ in range(3))
        t_cached = min(_clips(cached, 5)[0] for _ in range(3))
    finally:
        torch.set_num_threads(threads)
    assert t_cached < t_direct
    # training clips from the cache equal training clips decoded directly (same rng)
    aug = [
        VideoClipDataset([motion_ref], ["m"], [0], spec, augment=True, seed=0, cache=c)
        for c in (None, cache)
    ]
    x, y = aug[0][(0, 4)]["pixel_values"], aug[1][(0, 4)]["pixel_values"]
    assert float((x - y).abs().mean()) <= tol * float(x.abs().mean()) + 1e-6


@needs_video
def test_build_frame_cache(tmp_path):
    from tests.wlasl_fixture import make_wlasl_root

    fx = make_wlasl_root(tmp_path / "w", glosses=3, per_split=(2, 1, 1))
    cfg = config("wlasl", fx.root, frame_cache=str(tmp_path / "fc"))
    calls = []
    stats = frame_cache.build_frame_cache(cfg, lambda d, n: calls.append((d, n)))
    usable = sum(len(fx.usable(s)) for s in ("train", "val", "test"))
    assert stats["videos"] == stats["written"] == usable and stats["failed"] == 0
    assert stats["bytes"] > 0 and calls[-1] == (usable, usable)
    again = frame_cache.build_frame_cache(cfg)
    assert again["already"] == usable and again["written"] == 0
    b = build_data(cfg)
    assert b.info["frame_cache"] == str(tmp_path / "fc")
    assert b.train[(0, 0)]["pixel_values"].shape == (4, 3, 32, 32)
    with pytest.raises(DataError, match="frame_cache is not set"):
        frame_cache.build_frame_cache(config("wlasl", fx.root))


@needs_video
def test_unwritable_cache_falls_back_to_decoding(tmp_path, motion_ref, monkeypatch):
    cache = frame_cache.FrameCache(tmp_path / "fc", 64)

    def refuse(ref):
        raise PermissionError("read-only")

    monkeypatch.setattr(cache, "fill", refuse)
    spec = ClipSpec(num_frames=4, image_size=56, short_side=64)
    ds = VideoClipDataset([motion_ref], ["m"], [0], spec, augment=False, seed=0, cache=cache)
    assert float(ds[0]["pixel_values"].abs().sum()) > 0
    assert ds.cache is None and ds.failures == 0


# --------------------------------------------------------------------------- video folder


@needs_video
def test_video_folder_layout(tmp_path):
    from tests.wlasl_fixture import make_video_folder

    ids = make_video_folder(tmp_path / "vf", per_split=(2, 1, 1), corrupt=1)
    rep = video_folder.check(config("video_folder", tmp_path / "vf"))
    assert rep["train"] == {"listed": 6, "present": 6, "missing": 0, "unreadable": 1, "usable": 5}
    assert rep["num_classes"] == 3 and rep["layout"] == "folders"
    b = build_data(config("video_folder", tmp_path / "vf"))
    assert b.class_names == ["hello", "thanks", "yes"]  # sorted
    assert b.val.ids == ids["val"] and list(b.val.labels) == [0, 1, 2]
    assert b.info["unreadable"]["train"] == 1
    assert b.collate_fn([b.test[0], b.test[1]])["pixel_values"].shape == (2, 4, 3, 32, 32)


@needs_video
def test_video_folder_csv_manifest(tmp_path):
    from tests.wlasl_fixture import make_video_folder

    root = tmp_path / "vf"
    make_video_folder(root, layout="csv", per_split=(2, 1, 1), missing=2)
    (root / "classes.txt").write_text("yes\nthanks\nhello\n")
    rep = video_folder.check(config("video_folder", root))
    assert rep["train"]["missing"] == 2 and rep["train"]["usable"] == 4
    assert rep["classes"]["without_train"] == []
    b = video_folder.build(config("video_folder", root))
    assert b.class_names == ["yes", "thanks", "hello"]
    assert b.val.ids == ["clips/hello_val_0", "clips/thanks_val_0", "clips/yes_val_0"]
    assert list(b.val.labels) == [2, 1, 0]
    (root / "manifest.csv").rename(root / "list.csv")
    assert video_folder.build(config("video_folder", root, metadata="list.csv")).num_classes == 3
    (root / "list.csv").write_text("path,label,split\nclips/a.mp4,hello,dev\n")
    with pytest.raises(DataError, match="split 'dev'"):
        video_folder.build(config("video_folder", root, metadata="list.csv"))


def test_missing_libraries_are_one_line(tmp_path, monkeypatch):
    import sys

    monkeypatch.setattr(decode, "_DECORD", None)
    monkeypatch.setitem(sys.modules, "decord", None)
    with pytest.raises(DataError, match="decord is not installed"):
        video.require_video_libs()
    (tmp_path / "train" / "a").mkdir(parents=True)
    (tmp_path / "train" / "a" / "x.mp4").write_bytes(b"")
    with pytest.raises(DataError, match=r"slr-tui\[video\]"):
        video_folder.check(config("video_folder", tmp_path))


def test_video_folder_errors(tmp_path):
    with pytest.raises(DataError, match="data.root is not set"):
        video_folder.build(config("video_folder", None))
    with pytest.raises(DataError, match="neither train/"):
        video_folder.build(config("video_folder", tmp_path))
