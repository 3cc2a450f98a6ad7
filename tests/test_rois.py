"""`slr extract --rois`: face and hand crops around the Holistic landmarks, into an ROI cache.

The box, smoothing, hold and crop functions of engine/rois.py on synthetic landmark tracks;
then the extraction end to end on short videos of a real person (scikit-image's astronaut
photograph, see tests/pose_fixture.py), skipped when mediapipe or scikit-image is missing."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from engine import config as cfgmod
from engine.data import landmark_cache as lc
from engine.data import roi_cache as rc
from engine.extract import ExtractError, ExtractSettings, extract
from engine.rois import (
    FACE_FROM_POSE,
    HAND_FROM_POSE,
    RoiOptions,
    box_tracks,
    crop_square,
    face_box,
    hand_box,
    hold_track,
    plan_boxes,
    smooth_track,
    square_box,
)
from slr_tui.cli import data as cli_data
from slr_tui.screens import extract as extract_screen

W, H = 200, 100  # a wide frame: boxes must be square in pixels, not in normalised units


def pose_frame(visible: float = 1.0) -> np.ndarray:
    """(33, 4) pose: face points around (0.5, 0.3), left wrist 15 at (0.7, 0.8), right 16
    at (0.3, 0.8), knuckles 0.05 above each wrist (normalised)."""
    p = np.full((33, 4), np.nan, np.float32)
    p[:, 3] = visible
    p[:11, :2] = [[0.5 + 0.02 * np.cos(k), 0.3 + 0.02 * np.sin(k)] for k in range(11)]
    p[:11, 2] = 0
    for wrist, x in ((15, 0.7), (16, 0.3)):
        p[wrist, :3] = (x, 0.8, 0)
        for k in (wrist + 2, wrist + 4, wrist + 6):  # pinky, index, thumb
            p[k, :3] = (x, 0.75, 0)
    return p


def hand_points(cx: float, cy: float, r: float = 0.05) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, 21, endpoint=False)
    return np.stack([cx + r * np.cos(a), cy + r * np.sin(a), np.zeros(21)], 1).astype(np.float32)


# --------------------------------------------------------------------------- boxes


def test_square_box_is_the_long_side_plus_the_margin():
    box = square_box(np.array([[10, 20], [50, 30]]), margin=0.25)
    assert box == pytest.approx([30, 25, 40 * 1.5])
    assert np.isnan(square_box(np.array([[10, 20], [np.nan, 1]]), 0.2)).all()  # one point
    assert np.isnan(square_box(np.array([[10, 20], [11, 20]]), 0.0)).all()  # degenerate


def test_face_box_from_the_mesh_else_from_the_pose():
    mesh = np.stack([np.linspace(0.4, 0.6, 468), np.linspace(0.1, 0.5, 468), np.zeros(468)], 1)
    # mesh 0.2 x 0.4 normalised = 40 x 40 px on a 200 x 100 frame: a square, side 40 * 1.4
    assert face_box(mesh, pose_frame(), W, H, 0.2) == pytest.approx([100, 30, 56])
    from_pose = face_box(np.full((468, 3), np.nan), pose_frame(), W, H, 0.2)
    span = square_box(pose_frame()[:11, :2] * (W, H), 0.0)[2]
    assert from_pose[:2] == pytest.approx([100, 30], abs=1)
    assert from_pose[2] == pytest.approx(span * FACE_FROM_POSE * 1.4)
    assert np.isnan(face_box(None, pose_frame(visible=0.1), W, H, 0.2)).all()
    assert np.isnan(face_box(None, None, W, H, 0.2)).all()


def test_hand_box_from_its_points_else_from_the_pose_wrist():
    box = hand_box(hand_points(0.7, 0.8), pose_frame(), "hand_left", W, H, 0.2)
    # circle radius 0.05: 20 px wide, 10 px high -> side 20 * 1.4, centred on the points
    assert box == pytest.approx([140, 80, 28], abs=0.5)
    left = hand_box(None, pose_frame(), "hand_left", W, H, 0.2)
    right = hand_box(np.full((21, 3), np.nan), pose_frame(), "hand_right", W, H, 0.2)
    # centred on the knuckles, 0.05 * 100 = 5 px from the wrist
    assert left == pytest.approx([140, 75, 5 * HAND_FROM_POSE * 1.4])
    assert right == pytest.approx([60, 75, 5 * HAND_FROM_POSE * 1.4])
    assert np.isnan(hand_box(None, pose_frame(visible=0.2), "hand_left", W, H, 0.2)).all()


def test_box_tracks_use_holistics_left_hand_for_hand_left():
    t = 3
    lms = {
        "pose": np.repeat(pose_frame()[None], t, 0),
        "face": np.full((t, 468, 3), np.nan, np.float32),
        "left_hand": np.repeat(hand_points(0.9, 0.5)[None], t, 0),
        "right_hand": np.full((t, 21, 3), np.nan, np.float32),
    }
    tracks = box_tracks(lms, W, H, 0.2)
    assert set(tracks) == set(rc.IMAGE_STREAMS)
    assert tracks["hand_left"][:, 0] == pytest.approx(
        [180] * t, abs=0.5
    )  # its points, not the pose
    assert tracks["hand_right"][:, 0] == pytest.approx([60] * t)  # pose wrist 16
    assert np.isfinite(tracks["face"]).all()


# --------------------------------------------------------------------------- time


def test_smoothing_calms_jitter_and_keeps_gaps():
    rng = np.random.default_rng(0)
    track = np.tile([50.0, 40.0, 20.0], (40, 1)) + rng.normal(0, 2, (40, 3))
    track[10:13] = np.nan
    out = smooth_track(track, 2)
    ok = np.isfinite(track).all(axis=1)
    assert np.array_equal(np.isfinite(out).all(axis=1), ok)  # no box invented
    assert np.std(out[ok, 0]) < 0.6 * np.std(track[ok, 0])
    assert np.allclose(smooth_track(track, 0)[ok], track[ok])
    ramp = np.stack([np.arange(10.0)] * 3, 1)
    assert smooth_track(ramp, 2)[2:8] == pytest.approx(ramp[2:8])  # centred: no lag


def test_a_lost_hand_keeps_its_last_box_then_is_masked():
    track = np.tile([10.0, 10.0, 8.0], (14, 1))
    track[:2] = np.nan  # not found yet: nothing to hold
    track[4:6] = np.nan  # a short loss, held
    track[7, :] = (30.0, 30.0, 8.0)
    track[8:14] = np.nan  # a long loss: held 3 frames, then masked
    boxes, mask = hold_track(track, 3)
    assert mask.tolist() == [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0]
    assert boxes[4] == pytest.approx([10, 10, 8]) and boxes[10] == pytest.approx([30, 30, 8])
    assert np.isnan(boxes[~mask]).all()
    assert hold_track(track, 0)[1].tolist() == np.isfinite(track).all(axis=1).tolist()


def test_plan_boxes_smooths_then_holds():
    t = 12
    pose = np.repeat(pose_frame(visible=0.0)[None], t, 0)  # no pose fallback
    left = np.stack([hand_points(0.2 + 0.05 * i, 0.5) for i in range(t)])
    left[5:7] = np.nan
    left[9:] = np.nan
    lms = {"pose": pose, "left_hand": left, "right_hand": np.full_like(left, np.nan)}
    plan = plan_boxes(lms, W, H, RoiOptions(margin=0.2, hold=2, smooth=1))
    boxes, mask = plan["hand_left"]
    assert mask.tolist() == [1] * 11 + [0]
    assert boxes[5] == pytest.approx(boxes[4])  # held, not interpolated
    assert boxes[3, 0] == pytest.approx((0.2 + 0.05 * 3) * W, abs=0.5)  # centred: no lag
    assert not plan["hand_right"][1].any() and not plan["face"][1].any()


# --------------------------------------------------------------------------- crops


def test_crops_are_square_sized_and_padded_at_the_edge():
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[40:60, 90:110] = (255, 0, 0)
    crop = crop_square(frame, np.array([100.0, 50.0, 40.0]), 16)
    assert crop.shape == (16, 16, 3) and crop.dtype == np.uint8
    assert crop[4:12, 4:12, 0].min() == 255 and crop[0, 0].max() == 0  # red in the middle
    frame[:] = 200
    edge = crop_square(frame, np.array([0.0, 0.0, 40.0]), 40)  # centred on the corner
    assert (edge[20:, 20:] == 200).all() and (edge[:20] == 0).all() and (edge[:, :20] == 0).all()
    assert crop_square(frame, np.array([-500.0, -500.0, 40.0]), 8).max() == 0
    up = crop_square(frame, np.array([100.0, 50.0, 10.0]), 64)  # enlarged
    assert up.shape == (64, 64, 3) and (up == 200).all()


def test_defaults_agree_between_the_cli_the_screen_and_the_engine():
    opts, s = RoiOptions(), ExtractSettings(rois=True)
    assert (cli_data.ROI_MARGIN, cli_data.ROI_HOLD) == (opts.margin, opts.hold)
    assert extract_screen.ROI_SIZE == opts.size == s.roi_size == rc.DEFAULT_ROI_SIZE
    assert s.roi_options == opts
    # a landmark cache records no ROI settings, so one written before they existed resumes
    assert not any(k.startswith("roi") for k in ExtractSettings().to_json())
    assert ExtractSettings(rois=True).to_json()["roi_size"] == 112


def test_bad_roi_settings_are_one_line(tmp_path):
    cfg = cfgmod.resolve(sets=["data.source=video_folder", f"data.root={tmp_path}"])
    for settings, match in (
        (ExtractSettings(rois=True, roi_size=8), "--roi-size must be 16 to 1024"),
        (ExtractSettings(rois=True, roi_margin=-0.1), "--roi-margin"),
        (ExtractSettings(rois=True, roi_hold=-1), "--roi-hold"),
        (ExtractSettings(rois=True, face_indices=(1, 2)), "--face-indices is for the landmark"),
    ):
        with pytest.raises(ExtractError, match=match):
            extract(cfg, tmp_path / "out", settings)
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- end to end

FRAMES, SIZE = 10, 48
LAYOUT = {"train": {"nod": 1}, "val": {"wave": 1}}

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
app.command()(cli_data.extract)


@app.command()
def other() -> None:  # a second command, so `extract` is a subcommand as in `slr`
    pass


def manifest_rows(out: Path) -> list[dict[str, str]]:
    with open(out / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    pytest.importorskip("mediapipe")
    pytest.importorskip("skimage")
    from tests.pose_fixture import make_astronaut_folder

    root = tmp_path_factory.mktemp("astronaut")
    make_astronaut_folder(root, LAYOUT, frames=FRAMES, width=160, height=160)
    return root


def skin(crop: np.ndarray) -> bool:
    """The middle of a crop has the astronaut's skin tone (R > G > B, G/R 0.7-0.95): her
    face, not the orange suit (G/R about 0.4), the grey wall or the flag."""
    r, g, b = crop[crop.shape[0] // 3 : 2 * crop.shape[0] // 3].reshape(-1, 3).mean(0)
    return bool(r > g > b and 0.7 < g / r < 0.95)


def test_rois_of_a_real_person_resume_and_pass_the_format(videos, tmp_path):
    out = tmp_path / "rois"
    cfg = cfgmod.resolve(sets=["data.source=video_folder", f"data.root={videos}"])
    # not the defaults: the CLI run below must pass each through to resume this cache
    settings = ExtractSettings(rois=True, roi_size=SIZE, roi_margin=0.3, roi_hold=2)
    first = extract(cfg, out, settings, limit=1)
    assert first["extracted"] == 1 and first["remaining"] == 1 and first["cache"] == "rois"
    assert first["detection"]["face"] >= 0.8 and first["detection"]["pose"] >= 0.8

    # the rest through the CLI (launch -> python -m engine extract --rois ...), resuming
    (done,) = [r["id"] for r in manifest_rows(out)]
    stamp = rc.npz_path(out, done).stat().st_mtime_ns
    leftover = out / "rois" / "val" / "wave" / ".clip0.npz.k1ll3d.tmp"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_bytes(b"PK\x03\x04 half an npz")
    res = CliRunner().invoke(
        app,
        ["extract", "--set", "data.source=video_folder", "--data-root", str(videos)]
        + ["--out", str(out), "--rois", "--roi-size", str(SIZE)]
        + ["--roi-margin", "0.3", "--roi-hold", "2"],
        env={"COLUMNS": "200"},
    )
    text = " ".join(res.output.split())
    assert res.exit_code == 0, res.output
    assert "1 already in the cache, 1 to extract" in text and "ROI cache" in text
    assert f"slr run --preset slt-multistream --set data.root={out}" in text
    assert (Path(__file__).parents[1] / "presets" / "slt-multistream.yaml").is_file()
    assert rc.npz_path(out, done).stat().st_mtime_ns == stamp  # not extracted again
    assert not leftover.exists()

    rows = manifest_rows(out)
    assert [(r["id"], r["frames"], r["label"], r["split"]) for r in rows] == [
        ("train/nod/clip0", str(FRAMES), "nod", "train"),
        ("val/wave/clip0", str(FRAMES), "wave", "val"),
    ]
    meta = rc.read_dataset_json(out)
    assert meta is not None and meta["roi_size"] == SIZE and meta["samples"] == 2
    assert meta["extraction"]["rois"] is True and meta["extraction"]["roi_hold"] == 2
    face_found, skin_tone = [], []
    for r in rows:
        path = rc.npz_path(out, r["id"])
        assert rc.complete_frames(path) == FRAMES
        z = rc.load_sample(path)
        for s in rc.IMAGE_STREAMS:
            assert z[s].shape == (FRAMES, SIZE, SIZE, 3) and z[s].dtype == np.uint8
            assert (z[s][~z[rc.mask_key(s)]] == 0).all()  # no crop: zeros
        assert z["pose"].shape == (FRAMES, 33, 3) and z["pose"].dtype == np.float32
        assert np.isfinite(z["pose"]).all(axis=(1, 2)).mean() >= 0.8
        with np.load(path) as raw:
            assert np.array_equal(raw["frame_indices"], np.arange(FRAMES))
            assert float(raw["fps"]) == pytest.approx(25.0)
        face_found += z["face_mask"].tolist()
        skin_tone += [skin(c) for c in z["face"][z["face_mask"]]]
    assert np.mean(face_found) >= 0.8
    assert np.mean(skin_tone) >= 0.8  # the crop holds the face

    # the same folder without --rois, or with another size, is refused in one line
    with pytest.raises(ExtractError, match="it is an ROI cache: add --rois to resume it"):
        extract(cfg, out)
    landmarks = tmp_path / "landmarks"
    lc.write_dataset_json(landmarks, {"generator": {"name": "mediapipe-holistic"}})
    with pytest.raises(ExtractError, match="a landmark cache: leave out --rois"):
        extract(cfg, landmarks, settings)
    with pytest.raises(ExtractError, match="roi_size 48 there, 64 here"):
        extract(cfg, out, ExtractSettings(rois=True, roi_size=64, roi_margin=0.3, roi_hold=2))
    again = extract(cfg, out, settings)
    assert again["skipped"] == 2 and again["extracted"] == 0 and again["remaining"] == 0


def test_the_command_has_the_roi_options():
    res = CliRunner().invoke(app, ["extract", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    for opt in ("--rois", "--roi-size", "--roi-margin", "--roi-hold"):
        assert opt in res.output, opt
    res = CliRunner().invoke(app, ["extract", "--out", "/tmp/x", "--rois", "--face-indices", "1,2"])
    assert res.exit_code == 2 and "--face-indices is for the landmark cache" in res.output
    res = CliRunner().invoke(app, ["extract", "--out", "/tmp/x", "--rois", "--roi-size", "8"])
    assert res.exit_code == 2


# --------------------------------------------------------------------------- the screen


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_the_screen_toggle_passes_rois_and_size(tmp_path, monkeypatch):
    from textual.app import App
    from textual.widgets import Checkbox, Input

    seen: dict = {}

    def fake_start(cfg, out, job_dir=None, **options):
        seen.update(options, out=out)
        raise OSError("no engine in this test")

    monkeypatch.setattr(extract_screen.launch, "start_extract", fake_start)
    root = str(tmp_path / "clips")
    screen = extract_screen.ExtractScreen("wlasl100-conservative", root, [])

    class Host(App):
        def on_mount(self) -> None:
            self.push_screen(screen)

    async with Host().run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        out = screen.query_one("#ex-out", Input)
        assert out.value == root + "-landmarks"
        screen.query_one("#ex-rois", Checkbox).value = True
        await pilot.pause()
        assert out.value == root + "-rois"  # the default follows the kind of cache
        screen.query_one("#ex-roi-size", Input).value = "8"
        screen.action_start()
        await pilot.pause()
        assert "ROI size: give 16 to 1024" in str(screen.query_one("#ex-status").render())
        screen.query_one("#ex-roi-size", Input).value = "64"
        screen.action_start()
        for _ in range(50):
            await pilot.pause(0.05)
            if seen:
                break
        assert seen["rois"] is True and seen["roi_size"] == 64 and seen["out"] == root + "-rois"
        await pilot.pause(0.2)
        assert "no engine in this test" in str(screen.query_one("#ex-status").render())


def test_rois_module_needs_no_torch():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['torch'] = None; import engine.rois, engine.holistic; print('ok')"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.stdout.strip() == "ok", res.stderr
