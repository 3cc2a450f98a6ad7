"""`slr eval`: a trained run scored on other data into RUN/eval-<name>/, its own eval/
left byte-identical; re-scoring its own data reproduces the trainer's figures; bad input
is one line and exit 2; a stop leaves no partial folder."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from engine import config as cfgmod
from engine import evaluate as ev
from engine import runs
from slr_tui.cli import app

runner = CliRunner()
EVAL_FILES = {"report.json", "predictions.npz", "per_class.csv", "confusion.csv", "thresholds.csv"}


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def one_error_line(res, *words: str) -> None:
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, res.output
    assert "Traceback" not in res.output
    for w in words:
        assert w in errors[0], res.output


def test_help():
    for cmd in ("eval", "predict"):
        res = invoke(cmd, "--help")
        assert res.exit_code == 0 and "Usage" in res.output
    res = invoke("--help")
    assert "eval" in res.output


def test_eval_on_another_data_root_leaves_eval_untouched(run_copy, tmp_path):
    run, other = run_copy, tmp_path / "other-signers"
    before = hashes(run / "eval")
    top_before = {p.name for p in run.iterdir()}
    res = invoke(
        "eval", run.name, "--runs-dir", run.parent,
        "--data-root", other, "--set", "data.synthetic.seed=5",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "accuracy" in res.output and "eval-other-signers" in res.output
    out = run / "eval-other-signers"
    assert (
        {p.name for p in out.iterdir()} == EVAL_FILES == {p.name for p in (run / "eval").iterdir()}
    )
    assert hashes(run / "eval") == before
    assert {p.name for p in run.iterdir()} == top_before | {out.name}  # nothing else, no temp
    report = json.loads((out / "report.json").read_text())
    assert report["data_root"] == str(other) and report["data_source"] == "synthetic"
    assert report["checkpoint"] == "best.pt"
    assert report["checkpoint_epoch"] == runs.read_meta(run)["best_epoch"]
    assert isinstance(report["evaluated_at"], float) and report["eval_name"] == "other-signers"
    assert report["splits"] == ["val", "test"]
    # the figures are those of the stored predictions, of other samples than the run's own
    ids, y, probs, names = ev.load_predictions(out, "val")
    own_probs = ev.load_predictions(run / "eval", "val")[2]
    assert names == runs.read_json(run / "data.json")["class_names"]
    assert report["val"]["accuracy"] == pytest.approx(float((probs.argmax(1) == y).mean()))
    assert ids and set(ids) <= {p.stem for p in (other / "landmarks").iterdir()}
    assert probs.shape != own_probs.shape or not np.allclose(probs, own_probs)

    # an existing folder is replaced only with --overwrite
    again = invoke("eval", run.name, "--runs-dir", run.parent, "--data-root", other,
                   "--set", "data.synthetic.seed=5")  # fmt: skip
    one_error_line(again, "eval-other-signers", "--overwrite")
    res = invoke(
        "eval", run.name, "--runs-dir", run.parent, "--data-root", other,
        "--set", "data.synthetic.seed=5", "--overwrite", "--checkpoint", "last", "--json",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    result = json.loads(res.output)
    assert result["report"]["checkpoint"] == "last.pt"
    assert json.loads((out / "report.json").read_text())["checkpoint"] == "last.pt"
    assert hashes(run / "eval") == before


def test_rescore_reproduces_the_trainers_figures(run_copy):
    run = run_copy
    res = invoke("eval", run.name, "--runs-dir", run.parent, "--split", "all", "--json")
    assert res.exit_code == 0, res.output
    result = json.loads(res.output)
    assert result["name"] == "rescore" and Path(result["eval_dir"]) == run / "eval-rescore"
    mine, own = result["report"], runs.read_json(run / "eval" / "report.json")
    assert mine["splits"] == ["train", "val", "test"]
    for split in ("val", "test"):
        for key in ("accuracy", "macro_f1", "weighted_f1", "nll", "num_samples"):
            assert mine[split][key] == pytest.approx(own[split][key], abs=1e-6), (split, key)
    a = ev.load_predictions(run / "eval-rescore", "val")
    b = ev.load_predictions(run / "eval", "val")
    assert a[0] == b[0]
    np.testing.assert_allclose(a[2], b[2], atol=1e-6)
    # `slr show` lists it with its headline figure; the tolerant reader keeps train
    res = invoke("show", run.name, "--runs-dir", run.parent)
    assert res.exit_code == 0 and "rescore" in res.output and "other evaluations" in res.output
    assert runs.clean_report(mine)["train"]["num_samples"] > 0


def test_bad_inputs_are_one_line(run_copy, tmp_path):
    run, root = run_copy, run_copy.parent
    one_error_line(invoke("eval", run.name, "--runs-dir", root, "--set", "model.hidden_size=8"),
                   "--set model.hidden_size=8", "data")  # fmt: skip
    one_error_line(invoke("eval", "no-such-run", "--runs-dir", root), "no-such-run")
    one_error_line(invoke("eval", run.name, "--runs-dir", root, "--split", "dev"), "--split")
    one_error_line(invoke("eval", run.name, "--runs-dir", root, "--name", "../x"), "--name")
    one_error_line(
        invoke("eval", run.name, "--runs-dir", root, "--set", "data.batch_size=-1"), "batch_size"
    )
    # a translation run (as its report says): refused in one line, nothing started
    fake = tmp_path / "runs" / "translation"
    fake.mkdir(parents=True)
    (fake / "run.json").write_text(json.dumps({"id": "translation", "status": "finished"}))
    (fake / "eval").mkdir()
    (fake / "eval" / "report.json").write_text(json.dumps({"task": "translation"}))
    one_error_line(invoke("eval", fake), "translation run")
    # another class set: a fifth class the run does not know
    five = ["--data-root", tmp_path / "five", "--set", "data.synthetic.num_classes=5"]
    one_error_line(invoke("eval", run.name, "--runs-dir", root, *five), "--skip-unknown")
    assert not [p for p in run.iterdir() if p.name.startswith((".eval-", "eval-"))]
    # --skip-unknown (in-process here, the same job body) leaves them out and counts them
    from engine.predict import evaluate_run

    base = cfgmod.validate(cfgmod.load_file(run / "config.json"), "run", saved=True)
    raw = base.to_dict()
    raw["data"]["root"] = str(tmp_path / "five")
    raw["data"]["synthetic"]["num_classes"] = 5
    result = evaluate_run(run, cfgmod.validate(raw), name="five", skip_unknown=True)
    skipped = result["skipped_unknown"]
    assert skipped > 0 and result["report"]["skipped_unknown"] == skipped
    ids, y, _, names = ev.load_predictions(run / "eval-five", "val")
    assert len(names) == 4 and y.max() < 4
    assert result["report"]["val"]["num_samples"] == len(ids)


def test_a_stop_leaves_no_partial_folder(run_copy):
    from engine.predict import evaluate_run

    run = run_copy
    cfg = cfgmod.validate(cfgmod.load_file(run / "config.json"), "run", saved=True)

    def stop(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate_run(run, cfg, name="stopped", on_batch=stop)
    assert not [p for p in run.iterdir() if "stopped" in p.name]
    # and one that fails while writing keeps an earlier folder as it was
    evaluate_run(run, cfg, name="kept")
    before = hashes(run / "eval-kept")
    with pytest.raises(KeyboardInterrupt):
        evaluate_run(run, cfg, name="kept", overwrite=True, on_batch=stop)
    assert hashes(run / "eval-kept") == before
    assert sorted(p.name for p in run.iterdir() if "kept" in p.name) == ["eval-kept"]
