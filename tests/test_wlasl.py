"""The WLASL source: metadata parsing (both formats), discovery, the real files' counts,
missing and unreadable videos, the probe cache, frame ranges and bboxes."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.config import RunConfig
from engine.data import build_data, video_probe, wlasl
from engine.data.base import DataError

DATA = Path(__file__).parent / "data"
REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "wlasl"
HAVE_VIDEO = all(importlib.util.find_spec(m) for m in ("decord", "cv2"))
needs_video = pytest.mark.skipif(not HAVE_VIDEO, reason="needs decord and opencv")


def config(root: Path | None = None, **data) -> RunConfig:
    base = {"source": "wlasl", "root": root and str(root), "num_frames": 4, "image_size": 32}
    return RunConfig.model_validate({"data": {**base, **data}})


# --------------------------------------------------------------------------- parsing


def test_parse_wlasl_schema():
    meta = wlasl.read_metadata(DATA / "wlasl_mini.json")
    assert meta.format == "wlasl"
    assert meta.class_names == ["book", "drink", "computer"]
    assert meta.counts() == {"train": 7, "val": 4, "test": 3}
    by_id = {e.video_id: e for e in meta.entries}
    e = by_id["70212"]  # a segment of a long video
    assert (e.label, e.split, e.frame_start, e.frame_end) == (0, "val", 2150, 2249)
    assert e.bbox == (110, 25, 274, 240)
    assert by_id["69241"].frame_end == -1
    assert {by_id[v].label for v in ("65539", "70173")} == {1}
    assert by_id["12306"].label == 2


def test_subset_keeps_first_glosses():
    meta = wlasl.read_metadata(DATA / "wlasl_mini.json", subset=2)
    assert meta.class_names == ["book", "drink"]
    assert {e.label for e in meta.entries} == {0, 1}
    assert len(meta.entries) == 10
    with pytest.raises(DataError, match="holds 3 glosses"):
        wlasl.read_metadata(DATA / "wlasl_mini.json", subset=100)


def test_parse_nslt_with_and_without_class_list(tmp_path):
    meta = wlasl.read_metadata(DATA / "nslt_mini.json", class_list=DATA / "wlasl_class_list.txt")
    assert meta.format == "nslt"
    assert meta.class_names == ["book", "drink", "computer", "before", "chair"]
    assert len(meta.entries) == 16
    e = {x.video_id: x for x in meta.entries}["70173"]
    assert (e.label, e.split, e.frame_start, e.frame_end) == (1, "val", 5710, 5831)
    shutil.copy(DATA / "nslt_mini.json", tmp_path / "nslt_mini.json")  # no class list beside it
    three = wlasl.read_metadata(tmp_path / "nslt_mini.json", subset=3)
    assert three.class_names == ["class_0", "class_1", "class_2"]
    assert len(three.entries) == 14
    # agrees with the WLASL-schema excerpt of the same videos
    asl = wlasl.read_metadata(DATA / "wlasl_mini.json")
    assert {(x.video_id, x.label, x.split) for x in three.entries} == {
        (x.video_id, x.label, x.split) for x in asl.entries
    }


def test_bad_metadata_is_one_line(tmp_path):
    bad = tmp_path / "asl100.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="cannot read WLASL metadata"):
        wlasl.read_metadata(bad)
    bad.write_text(json.dumps([{"gloss": "a", "instances": [{"video_id": "1", "split": "dev"}]}]))
    with pytest.raises(DataError, match="split 'dev'"):
        wlasl.read_metadata(bad)


def test_find_metadata_order(tmp_path):
    root = tmp_path / "r"
    root.mkdir()
    with pytest.raises(DataError, match="no WLASL metadata"):
        wlasl.find_metadata(root, 100)
    shutil.copy(DATA / "nslt_mini.json", root / "nslt_300.json")
    assert wlasl.find_metadata(root, 100).name == "nslt_300.json"
    for n in (100, 300, 1000):
        shutil.copy(DATA / "wlasl_mini.json", root / f"asl{n}.json")
    assert wlasl.find_metadata(root, 100).name == "asl100.json"
    assert wlasl.find_metadata(root, 200).name == "asl300.json"
    assert wlasl.find_metadata(root, None).name == "asl1000.json"
    with pytest.raises(DataError, match="covering data.subset 2000"):
        wlasl.find_metadata(root, 2000)
    shutil.copy(DATA / "wlasl_mini.json", root / "WLASL_v0.3.json")
    assert wlasl.find_metadata(root, 100).name == "WLASL_v0.3.json"
    assert wlasl.find_metadata(root, 100, "asl300.json") == root / "asl300.json"
    with pytest.raises(DataError, match="data.metadata"):
        wlasl.find_metadata(root, 100, "nope.json")


@pytest.mark.skipif(not (REAL / "asl100.json").is_file(), reason="no ../shared WLASL metadata")
def test_real_metadata_counts():
    asl100 = wlasl.read_metadata(REAL / "asl100.json", subset=100)
    assert len(asl100.entries) == 2038
    assert asl100.counts() == {"train": 1442, "val": 338, "test": 258}
    asl300 = wlasl.read_metadata(REAL / "asl300.json", subset=300)
    assert len(asl300.entries) == 5117
    assert asl300.counts() == {"train": 3549, "val": 900, "test": 668}
    # the first 100 glosses of a larger file are WLASL100
    from300 = wlasl.read_metadata(REAL / "asl1000.json", subset=100)
    assert [(e.video_id, e.label, e.split) for e in from300.entries] == [
        (e.video_id, e.label, e.split) for e in asl100.entries
    ]
    nslt100 = wlasl.read_metadata(REAL / "nslt_100.json")
    assert len(nslt100.entries) == 2038 and nslt100.counts() == asl100.counts()
    assert nslt100.class_names == asl100.class_names  # from wlasl_class_list.txt
    assert {(e.video_id, e.label, e.split) for e in nslt100.entries} == {
        (e.video_id, e.label, e.split) for e in asl100.entries
    }
    # nslt_2000 cut to 100 classes is WLASL100 again
    cut = wlasl.read_metadata(REAL / "nslt_2000.json", subset=100)
    assert cut.counts() == asl100.counts()
    # nslt_300 lists one video more than asl300 (20065, val): the files differ upstream
    nslt300 = wlasl.read_metadata(REAL / "nslt_300.json")
    assert nslt300.counts() == {"train": 3549, "val": 901, "test": 668}


@pytest.mark.skipif(not (REAL / "asl100.json").is_file(), reason="no ../shared WLASL metadata")
def test_real_root_discovery_without_videos(tmp_path):
    root = tmp_path / "wlasl"
    shutil.copytree(REAL, root, ignore=shutil.ignore_patterns("*.pdf", "*.txt", "*.md"))
    _, meta, rows = wlasl.records(config(root, subset=300))
    assert meta.path.name == "asl300.json" and len(rows) == 5117
    _, meta, rows = wlasl.records(config(root, subset=2000))
    assert meta.path.name == "nslt_2000.json" and meta.class_names[0] == "class_0"
    assert all(r.path.parent == root for r in rows[:3])  # no videos/ folder: the root


# --------------------------------------------------------------------------- with videos


def _count_probes(monkeypatch) -> list[Path]:
    probed: list[Path] = []
    real = video_probe.probe_video

    def counting(path):
        probed.append(path)
        return real(path)

    monkeypatch.setattr(video_probe, "probe_video", counting)
    return probed


@pytest.fixture
def wl_root(tmp_path):
    pytest.importorskip("decord")
    pytest.importorskip("cv2")
    from tests.wlasl_fixture import make_wlasl_root

    return make_wlasl_root(tmp_path / "wlasl", glosses=4, per_split=(3, 1, 1))


@needs_video
def test_check_counts(wl_root):
    calls = []
    rep = wlasl.check(config(wl_root.root), progress=lambda d, n: calls.append((d, n)))
    assert rep["train"] == {
        "listed": 12,
        "present": 11,
        "missing": 1,
        "unreadable": 1,
        "usable": 10,
    }
    assert rep["val"] == {"listed": 4, "present": 4, "missing": 0, "unreadable": 0, "usable": 4}
    assert rep["test"]["usable"] == 4
    assert rep["num_classes"] == 4
    c = rep["classes"]
    assert (c["per_class_min"], c["per_class_mean"], c["per_class_max"]) == (2, 2.5, 3)
    assert c["imbalance_ratio"] == 1.5 and c["without_train"] == []
    assert rep["train_per_class"] == {"sign0": 2, "sign1": 3, "sign2": 3, "sign3": 2}
    assert rep["missing_ids"] == wl_root.missing
    assert list(rep["unreadable_ids"]) == wl_root.corrupt
    assert calls[-1] == (19, 19)
    assert rep["format"] == "wlasl" and rep["metadata"].endswith("WLASL_v0.3.json")


@needs_video
def test_check_reports_classes_without_training_videos(tmp_path):
    from tests.wlasl_fixture import make_wlasl_root

    fx = make_wlasl_root(tmp_path / "w", glosses=3, per_split=(1, 1, 0), missing=1, corrupt=1)
    rep = wlasl.check(config(fx.root))
    assert rep["classes"]["without_train"] == ["sign0", "sign2"]
    assert rep["classes"]["per_class_min"] == 1 and rep["classes"]["imbalance_ratio"] == 1.0


@needs_video
def test_build_skips_and_records_counts(wl_root):
    b = build_data(config(wl_root.root))
    assert b.class_names == wl_root.class_names
    assert b.info["missing"] == {"train": 1, "val": 0, "test": 0}
    assert b.info["unreadable"] == {"train": 1, "val": 0, "test": 0}
    assert b.info["per_split"] == {"train": 10, "val": 4, "test": 4}
    assert b.train.ids == wl_root.usable("train")
    assert list(b.val.labels) == [0, 1, 2, 3]
    item = b.train[(0, 0)]
    assert item["pixel_values"].shape == (4, 3, 32, 32) and "x" not in item
    batch = b.collate_fn([b.val[i] for i in range(len(b.val))])
    assert batch["pixel_values"].shape == (4, 4, 3, 32, 32)
    assert batch["label"].tolist() == [0, 1, 2, 3] and batch["id"] == wl_root.ids["val"]


@needs_video
def test_frame_ranges_and_bbox(wl_root):
    b = wlasl.build(config(wl_root.root, crop_bbox=True))
    refs = {i: r for i, r in zip(b.train.ids, b.train.refs, strict=True)}
    meta = {
        inst["video_id"]: inst
        for g in json.loads(wl_root.metadata.read_text())
        for inst in g["instances"]
    }
    inner = [v for v in refs if meta[v]["frame_start"] == 5]
    assert inner, "the fixture has segments inside longer videos"
    for vid, ref in refs.items():
        m = meta[vid]
        assert ref.bbox == tuple(m["bbox"])
        if m["frame_start"] == 5:
            assert (ref.start, ref.end) == (4, 28)  # 1-based 5..28 in a 32-frame video
        else:
            assert (ref.start, ref.end) == (0, 24)
    ds = b.train
    ref = refs[inner[0]]
    frames = ds.frames(ref, np.arange(ref.length))  # every frame of the segment
    assert frames.reshape(len(frames), -1).mean(1).max() < 100  # no grey lead-in/out frames
    assert wlasl.build(config(wl_root.root)).train.refs[0].bbox is None


@needs_video
def test_subset_and_explicit_metadata(wl_root):
    b = wlasl.build(config(wl_root.root, subset=2))
    assert b.class_names == ["sign0", "sign1"] and set(b.train.labels) == {0, 1}
    with pytest.raises(DataError, match="holds 4 glosses"):
        wlasl.build(config(wl_root.root, subset=5))
    shutil.copy(wl_root.metadata, wl_root.root / "mine.json")
    wl_root.metadata.unlink()
    assert wlasl.build(config(wl_root.root, metadata="mine.json")).num_classes == 4


@needs_video
def test_probe_cache_makes_second_build_cheap(wl_root, monkeypatch):
    wlasl.build(config(wl_root.root))
    store = json.loads((wl_root.root / video_probe.PROBE_FILE).read_text())
    assert len(store["entries"]) == 19
    probed = _count_probes(monkeypatch)
    b = wlasl.build(config(wl_root.root))
    assert b.info["per_split"]["train"] == 10 and probed == []
    victim = wl_root.root / "videos" / f"{b.val.ids[0]}.mp4"
    victim.write_bytes(b"garbage")  # a changed file is probed again
    b = wlasl.build(config(wl_root.root))
    assert probed == [victim] and b.info["unreadable"]["val"] == 1


@needs_video
def test_probe_cache_falls_back_when_root_is_read_only(wl_root, monkeypatch, tmp_path):
    real = video_probe.atomic_write_bytes

    def guarded(path, data):
        if Path(path).parent == wl_root.root:
            raise PermissionError("read-only")
        real(path, data)

    monkeypatch.setattr(video_probe, "atomic_write_bytes", guarded)
    monkeypatch.setenv("SLR_CACHE_DIR", str(tmp_path / "cache"))
    wlasl.build(config(wl_root.root))
    assert not (wl_root.root / video_probe.PROBE_FILE).exists()
    saved = list((tmp_path / "cache" / "probe").glob("*.json"))
    assert len(saved) == 1
    probed = _count_probes(monkeypatch)
    assert wlasl.build(config(wl_root.root)).info["per_split"]["val"] == 4
    assert probed == []


@needs_video
def test_decode_failure_mid_epoch_gives_zero_clip(wl_root, caplog):
    b = wlasl.build(config(wl_root.root, augment=False))
    ds = b.train
    (wl_root.root / "videos" / f"{ds.ids[0]}.mp4").write_bytes(b"broken since")
    (wl_root.root / "videos" / f"{ds.ids[1]}.mp4").unlink()
    with caplog.at_level("WARNING"):
        a, c, ok = ds[0], ds[1], ds[2]
    assert float(a["pixel_values"].abs().sum()) == 0 and float(c["pixel_values"].abs().sum()) == 0
    assert float(ok["pixel_values"].abs().sum()) > 0
    assert ds.failures == 2
    assert sum("zero clip" in r.message for r in caplog.records) == 1


def test_errors_for_people(tmp_path):
    with pytest.raises(DataError, match="data.root is not set"):
        wlasl.build(config(None))
    with pytest.raises(DataError, match="does not exist"):
        wlasl.build(config(tmp_path / "nope"))
    with pytest.raises(DataError, match="no WLASL metadata"):
        wlasl.build(config(tmp_path))
