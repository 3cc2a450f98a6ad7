"""`slr predict` on every kind of input: a landmark .npz, a features .npy, a CSV recording
and a video, each read the way the run's own evaluation read it (the probabilities match
the run's eval/predictions.npz for the same sample); a file of the wrong kind is one line
naming what the run takes. Also `slr eval` of a CSV run on new recordings: standardised
with the run's statistics (the same window probabilities as `slr predict`), and grouped by
recording."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from engine import config as cfgmod
from engine import evaluate as ev
from engine import runs
from engine.errors import DataError
from engine.train import EXIT_OK, run_training
from slr_tui.cli import app
from tests.seq_fixtures import make_activity_csvs, make_feature_set

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def stored_probs(run_dir, split="val"):
    ids, _, probs, names = ev.load_predictions(run_dir / "eval", split)
    return dict(zip(ids, probs, strict=True)), names


def check_top(result, probs, names, k):
    """The result's top-k is the stored probability row, sorted."""
    order = np.argsort(-probs, kind="stable")[:k]
    top = result["overall"]["top"]
    assert [t["label"] for t in top] == [names[i] for i in order]
    np.testing.assert_allclose([t["probability"] for t in top], probs[order], atol=1e-5)
    assert result["overall"]["label"] == names[order[0]]


def test_landmark_npz_and_wrong_kinds(finished_run, tmp_path):
    run = tmp_path / "runs" / finished_run.name
    shutil.copytree(finished_run, run)
    stored, names = stored_probs(run)
    root = runs.read_json(run / "data.json")["info"]["root"]
    sid = sorted(stored)[0]
    npz = tmp_path / "sample.npz"
    shutil.copy(f"{root}/landmarks/{sid}.npz", npz)
    res = invoke("predict", run, npz, "--json", "--top", "3")
    assert res.exit_code == 0, res.output
    [result] = json.loads(res.output)
    assert result["kind"] == "landmarks" and len(result["overall"]["top"]) == 3
    check_top(result, stored[sid], names, 3)
    res = invoke("predict", run, npz)
    assert res.exit_code == 0 and "top 5" not in res.output and "probability" in res.output

    # a file of another kind: one line saying what this run takes
    np.save(tmp_path / "x.npy", np.zeros((4, 8), dtype=np.float32))
    res = invoke("predict", run, tmp_path / "x.npy")
    assert res.exit_code == 2, res.output
    assert res.output.count("error:") == 1 and "landmark .npz" in res.output
    assert "Traceback" not in res.output
    from engine.predict import predict_files

    np.savez(tmp_path / "feat.npz", features=np.zeros((4, 8), dtype=np.float32))
    with pytest.raises(DataError, match="not a landmark file"):
        predict_files(run, [tmp_path / "feat.npz"])
    (tmp_path / "rec.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=r"\.csv file; run .* takes a landmark \.npz"):
        predict_files(run, [tmp_path / "rec.csv"])
    res = invoke("predict", "no-such-run", npz, "--runs-dir", tmp_path / "runs")
    assert res.exit_code == 2 and "no-such-run" in res.output
    res = invoke("predict", run, tmp_path / "missing.npz")
    assert res.exit_code == 2 and "no such file" in res.output


def test_features_npy(tmp_path):
    make_feature_set(tmp_path / "feat", binary=False, samples_per_class=12, dim=6, seed=2)
    cfg = cfgmod.resolve(
        preset="error-recognition-mlp",
        sets=[
            f"data.root={tmp_path / 'feat'}",
            "data.batch_size=8",
            "training.max_epochs=2",
            "training.min_epoch_steps=0",
            "training.device=cpu",
        ],
    )
    run = tmp_path / "runs" / "feat"
    assert run_training(cfg, run) == EXIT_OK
    stored, names = stored_probs(run)
    sids = sorted(stored)[:2]
    files = [tmp_path / "feat" / f"{s}.npy" for s in sids]
    res = invoke("predict", run, *files, "--json")
    assert res.exit_code == 0, res.output
    results = json.loads(res.output)
    assert [r["kind"] for r in results] == ["features", "features"]
    for sid, result in zip(sids, results, strict=True):
        check_top(result, stored[sid], names, 3)  # 3 classes: top 5 lists all 3


def test_csv_recording_and_eval_on_new_recordings(tmp_path):
    make_activity_csvs(tmp_path / "data", recordings_per_activity=4, seed=1)
    cfg = cfgmod.resolve(
        preset="activity-lstm",
        sets=[
            f"data.root={tmp_path / 'data'}",
            "model.hidden_sizes=[16]",
            "model.dense_size=8",
            "training.max_epochs=2",
            "training.min_epoch_steps=0",
            "training.device=cpu",
        ],
    )
    run = tmp_path / "runs" / "act"
    assert run_training(cfg, run) == EXIT_OK
    # grouped metrics at the end of training: the windows of a recording form a group
    own = runs.read_json(run / "eval" / "report.json")
    assert (
        own["grouped"]["val"]["num_groups"]
        == runs.read_json(run / "data.json")["info"]["recordings_per_split"]["val"]
    )

    # new recordings on another scale (standardising them with their own statistics
    # would hide that): scored with the run's statistics by eval and by predict alike
    new = make_activity_csvs(
        tmp_path / "new", recordings_per_activity=3, seed=9, nested=False,
        splits={f"rec{i:03d}": ("train", "val", "test")[i % 3] for i in range(9)},
    )  # fmt: skip
    for rec in new["recordings"].values():
        text = rec["path"].read_text().splitlines()
        header, rows = text[0].split(","), [line.split(",") for line in text[1:]]
        for r in rows:
            for c, col in enumerate(header):
                if col.startswith("ch"):
                    r[c] = str(float(r[c]) * 3 + 1)
        rec["path"].write_text("\n".join([text[0], *(",".join(r) for r in rows)]) + "\n")
    from engine.predict import evaluate_run

    data_cfg = cfgmod.validate(
        {**cfg.to_dict(), "data": {**cfg.data.model_dump(), "root": str(tmp_path / "new")}}
    )
    result = evaluate_run(run, data_cfg, name="new")
    report = result["report"]
    assert report["grouped"]["val"]["aggregate"] == "mean"
    assert report["grouped"]["val"]["num_groups"] == 3
    ids, _, probs, names = ev.load_predictions(run / "eval-new", "val")
    groups = ev.load_groups(run / "eval-new", "val")
    assert groups == [i.rsplit("@", 1)[0] for i in ids]

    name = groups[0]
    res = invoke("predict", run, new["recordings"][name]["path"], "--json")
    assert res.exit_code == 0, res.output
    [pred] = json.loads(res.output)
    assert pred["kind"] == "recording"
    by_id = dict(zip(ids, probs, strict=True))
    for w in pred["windows"]:
        p = by_id.get(f"{name}@{w['start']}")
        if p is not None:  # label-pure windows only are samples of the eval
            assert w["label"] == names[int(p.argmax())]
            assert w["confidence"] == pytest.approx(float(p.max()), abs=1e-5)
    mean = np.mean([by_id[i] for i in ids if i.startswith(f"{name}@")], axis=0)
    if len(pred["windows"]) == sum(i.startswith(f"{name}@") for i in ids):
        check_top(pred, mean, names, 3)
    res = invoke("predict", run, new["recordings"][name]["path"])
    assert res.exit_code == 0 and "per window" in res.output


def test_video(tmp_path):
    pytest.importorskip("decord")
    pytest.importorskip("transformers")
    from tests.test_videomae_e2e import TINY_VIDEOMAE
    from tests.wlasl_fixture import make_wlasl_root

    make_wlasl_root(tmp_path / "wlasl", glosses=3, per_split=(2, 1, 1), missing=0, corrupt=0)
    sets = [s for s in TINY_VIDEOMAE if not s.startswith(("training.max_epochs", "data.subset"))]
    cfg = cfgmod.resolve(
        preset="wlasl100-conservative",
        sets=[
            *sets,
            f"data.root={tmp_path / 'wlasl'}",
            "data.subset=3",
            "training.max_epochs=1",
            "data.crop_bbox=false",
        ],
    )
    run = tmp_path / "runs" / "video"
    assert run_training(cfg, run) == EXIT_OK
    stored, names = stored_probs(run)
    stored.update(stored_probs(run, "test")[0])
    # a clip listed over its whole video (the fixture's every third one): what a new video is
    sid = next(s for s in sorted(stored) if (int(s) - 10000) % 3 == 0)
    video = tmp_path / "wlasl" / "videos" / f"{sid}.mp4"
    res = invoke("predict", run, video, "--json", "--top", "2")
    assert res.exit_code == 0, res.output
    [result] = json.loads(res.output)
    assert result["kind"] == "video"
    check_top(result, stored[sid], names, 2)
    res = invoke("predict", run, tmp_path / "wlasl" / "WLASL_v0.3.json")
    assert res.exit_code == 2 and "video file" in res.output
    # `slr eval`'s job body on a video run: the trainer's figures again
    from engine.predict import evaluate_run

    report = evaluate_run(run, cfg, name="rescore")["report"]
    assert (
        report["val"]["accuracy"] == runs.read_json(run / "eval" / "report.json")["val"]["accuracy"]
    )
    a, b = (
        ev.load_predictions(run / "eval-rescore", "val"),
        ev.load_predictions(run / "eval", "val"),
    )
    assert a[0] == b[0]
    np.testing.assert_allclose(a[2], b[2], atol=1e-5)
