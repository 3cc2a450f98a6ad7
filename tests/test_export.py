"""`slr export --onnx` (engine.export) and `slr check-metrics` (slr_tui.cli.metrics)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from engine import runs
from slr_tui.cli import app
from slr_tui.cli.metrics import BadReference, parse_reference
from tests.conftest import tiny_cfg

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_error_line(res) -> str:
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1, res.output
    assert lines[0].startswith("error: "), res.output
    return lines[0]


@pytest.fixture(scope="module")
def transformer_run(tmp_path_factory):
    """A tiny transformer run: its attention reshapes are what the TorchScript tracer
    freezes at the example's batch and length."""
    from engine.train import run_training

    run_dir = tmp_path_factory.mktemp("export-runs") / "transformer"
    assert run_training(tiny_cfg("model.name=transformer", "training.max_epochs=1"), run_dir) == 0
    return run_dir


# --------------------------------------------------------------------------- export


def test_export_matches_pytorch_on_other_batch_sizes_and_lengths(finished_run, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    import torch

    from engine.data import build_data
    from engine.export import export_onnx
    from engine.predict import load_trained

    res = export_onnx(finished_run, tmp_path)  # a folder: model.onnx inside it
    out = tmp_path / "model.onnx"
    assert res["ok"] and res["exporter"] == "torchscript", res
    assert 0 <= res["max_abs_diff"] <= res["limit"] == pytest.approx(1e-4)
    assert out.is_file() and not (finished_run / "export").exists()
    example = res["checks"][0]["shapes"]["x"]
    # the graph declares the batch and time axes dynamic
    assert res["graph"]["inputs"][0] == ["x", ["batch", "time", example[2]]]
    assert res["graph"]["inputs"][1] == ["mask", ["batch", "time"]]
    assert res["graph"]["outputs"][0][1][0] == "batch"
    # the checks covered other sizes and lengths than the traced example
    shapes = [tuple(c["shapes"]["x"][:2]) for c in res["checks"]]
    assert len({s[0] for s in shapes}) >= 3 and len({s[1] for s in shapes}) >= 2

    # and independently of engine.export: a batch of 3 test samples cut to 5 frames
    cfg, model, _ = load_trained(finished_run)
    bundle = build_data(cfg)
    batch = bundle.collate_fn([bundle.test[i] for i in range(3)])
    x, mask = batch["x"][:, :5].contiguous(), batch["mask"][:, :5].contiguous()
    assert (x.shape[0], x.shape[1]) != tuple(example[:2])
    with torch.no_grad():
        want = model({"x": x, "mask": mask}).numpy()
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (got,) = session.run(["logits"], {"x": x.numpy(), "mask": mask.numpy()})
    assert got.shape == want.shape == (3, len(bundle.class_names))
    assert np.abs(got - want).max() < 1e-4
    # a wrong graph would not pass: logits differ across samples by far more than that
    assert np.abs(want - want[::-1]).max() > 1e-3


@pytest.mark.parametrize("input_norm", ["instance_auto", "instance_rank"])
def test_the_sequence_classifier_exports_at_any_length(tmp_path, input_norm):
    """The whole-recording preset's network (per-recording ranks, recording statistics
    and their differences, frames halved between blocks) traces into a graph that holds
    for other batch sizes and lengths, odd ones included."""
    pytest.importorskip("onnxruntime")
    from engine.export import export_onnx
    from engine.train import run_training
    from tests.seq_fixtures import tiny_sequence_classifier

    cfg = tiny_sequence_classifier(
        tmp_path,
        "training.max_epochs=1",
        "model.recording_stats_diff=true",
        f"model.input_norm={input_norm}",
    )
    assert cfg.model.pool == 2
    assert run_training(cfg, tmp_path / "run") == 0
    res = export_onnx(tmp_path / "run", tmp_path / "out")
    assert res["ok"] and res["exporter"] == "torchscript", res
    lengths = {c["shapes"]["x"][1] for c in res["checks"]}
    assert any(n % 2 for n in lengths) and len(lengths) >= 2, lengths


def test_frozen_shapes_fail_the_check_and_auto_falls_back_to_dynamo(transformer_run, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from engine.export import export_onnx

    frozen = export_onnx(transformer_run, tmp_path / "ts.onnx", exporter="torchscript")
    assert not frozen["ok"] and frozen["max_abs_diff"] is None
    assert "onnxruntime" in frozen["error"] and "\n" not in frozen["error"]

    res = export_onnx(transformer_run, tmp_path / "auto.onnx")
    assert res["ok"] and res["exporter"] == "dynamo", res
    assert [t["exporter"] for t in res["tried"]] == ["torchscript", "dynamo"]
    assert res["max_abs_diff"] <= 1e-4
    # the dynamo graph's symbolic axes carry the names of dynamic_axes
    assert res["graph"]["inputs"][1] == ["mask", ["batch", "time"]]


def test_translation_run_exports_its_encoder(tmp_path):
    """A translation model overrides the hook: its encoder (crops, pose, masks -> memory)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("transformers")
    from engine.export import export_onnx
    from engine.train import run_training
    from tests.test_translation import cfg_for, make_root

    root = tmp_path / "d"
    make_root(root, 12)
    run_dir = tmp_path / "runs" / "translation"
    assert run_training(cfg_for(root, "training.max_epochs=1"), run_dir) == 0
    res = export_onnx(run_dir)
    assert res["ok"], res
    assert res["onnx"] == str(run_dir / "export" / "encoder.onnx")
    assert res["max_abs_diff"] <= res["limit"]
    outputs = dict(res["graph"]["outputs"])
    assert outputs["memory"][:2] == ["batch", "time"]
    assert len({c["shapes"]["frame_mask"][1] for c in res["checks"]}) >= 2  # another length


def test_cli_export_prints_the_max_abs_difference(run_copy):
    pytest.importorskip("onnxruntime")
    res = invoke("export", run_copy, "--onnx")
    assert res.exit_code == 0, res.output
    assert "max abs difference" in res.output and ": ok" in res.output
    assert (run_copy / "export" / "model.onnx").is_file()
    assert "x[batch, time, " in res.output  # the dynamic axes, shown
    assert re.search(r"batch 8  time \d+", res.output)  # the sizes of the traced example

    res = invoke("export", run_copy, "--onnx", "--json", "--batches", "2")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["ok"] and data["max_abs_diff"] < data["limit"]
    assert len(data["checks"]) == 3  # two real batches and the shortened one


def test_cli_export_out_of_tolerance_exits_1(transformer_run, tmp_path):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "t.onnx"
    res = invoke("export", transformer_run, "--onnx", out, "--exporter", "torchscript")
    assert res.exit_code == 1, res.output
    assert "the ONNX graph does not run" in res.output
    # an absurdly tight tolerance: the difference is printed, the exit is 1
    res = invoke("export", transformer_run, "--onnx", out, "--atol", "1e-12", "--batches", "1")
    assert res.exit_code == 1, res.output
    assert "max abs difference" in res.output and "OUT of tolerance" in res.output
    assert "ONNX differs from PyTorch by" in res.output


def test_a_model_that_cannot_export_is_one_line_and_exit_2(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("aeon")
    from engine.train import run_training

    run_dir = tmp_path / "runs" / "rocket"
    cfg = tiny_cfg("model.name=minirocket", "model.num_kernels=84", "training.max_epochs=1")
    assert run_training(cfg, run_dir) == 0
    res = invoke("export", run_dir, "--onnx")
    assert res.exit_code == 2, res.output
    line = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(line) == 1 and "cannot be exported to ONNX" in line[0], res.output
    assert "Traceback" not in res.output
    assert not (run_dir / "export" / "model.onnx").exists()


def test_export_bad_arguments_are_one_line(run_copy):
    assert "choose the format: --onnx" in one_error_line(invoke("export", run_copy))
    one_error_line(invoke("export", run_copy, "--onnx", "--exporter", "nope"))
    one_error_line(invoke("export", run_copy, "--onnx", "--atol", "0"))
    one_error_line(invoke("export", "no-such-run", "--onnx"))
    res = invoke("export", "--help")
    assert res.exit_code == 0 and "--atol" in res.output and "onnxruntime" in res.output


def test_no_trained_model_is_one_line_exit_2(run_copy):
    pytest.importorskip("onnxruntime")
    (run_copy / "best.pt").unlink()
    res = invoke("export", run_copy, "--onnx")
    assert res.exit_code == 2, res.output
    line = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert line == [f"error: run {run_copy.name} has no trained model yet (best.pt)"]


def test_default_hook_names_inputs_and_axes():
    import torch
    from torch import nn

    from engine.errors import ModelError
    from engine.models.base import SLRModel

    class PerFrame(SLRModel):  # (B, T, C) out, as CTC
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 5)

        def forward(self, batch):
            return self.fc(batch["x"]) * batch["mask"].unsqueeze(-1)

    class Clip(SLRModel):  # pixel_values in, (B, C) out, as VideoMAE
        def forward(self, batch):
            return batch["pixel_values"].float().mean((1, 2, 3, 4)).unsqueeze(1).repeat(1, 4)

    x = torch.randn(2, 7, 3)
    spec = PerFrame().onnx_export({"x": x, "label": torch.zeros(2)})  # no mask: all frames
    assert spec.input_names == ["x", "mask"] and spec.output_names == ["logits"]
    assert spec.inputs[1].dtype == torch.bool and bool(spec.inputs[1].all())
    assert spec.dynamic_axes["logits"] == {0: "batch", 1: "time"}
    assert torch.equal(
        spec.module(*spec.inputs),
        PerFrame.forward(spec.module.model, {"x": x, "mask": spec.inputs[1]}),
    )
    spec = Clip().onnx_export({"pixel_values": torch.rand(2, 4, 3, 8, 8)})
    assert spec.input_names == ["pixel_values"]
    assert spec.dynamic_axes == {"pixel_values": {0: "batch"}, "logits": {0: "batch"}}
    with pytest.raises(ModelError, match="override onnx_export"):
        Clip().onnx_export({"label": torch.zeros(2)})


# --------------------------------------------------------------------------- check-metrics


def _ref(tmp_path, obj, name="ref.json"):
    p = tmp_path / name
    p.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    return p


def _figures(run_dir):
    report = runs.load_run(run_dir).report()
    last = list(runs.iter_epochs(runs.read_jsonl(run_dir / runs.METRICS)))[-1]
    return report, last


def test_check_metrics_passes_in_range(finished_run, tmp_path):
    report, last = _figures(finished_run)
    acc, nll = report["test"]["accuracy"], report["val"]["nll"]
    ref = _ref(
        tmp_path,
        {
            "test.accuracy": {"value": acc + 0.01, "tolerance": 0.02},
            "val.nll": {"max": nll + 0.5},
            "epoch.val_loss": {"min": 0.0, "max": last["val_loss"]},  # bounds are inclusive
        },
    )
    res = invoke("check-metrics", finished_run, "--reference", ref)
    assert res.exit_code == 0, res.output
    assert "all 3 metrics within the reference" in res.output
    assert "OUT" not in res.output and "missing" not in res.output

    res = invoke("check-metrics", finished_run, "--reference", ref, "--json")
    data = json.loads(res.output)
    assert res.exit_code == 0 and data["ok"]
    assert [r["actual"] for r in data["metrics"]] == [acc, nll, last["val_loss"]]


def test_check_metrics_fails_out_of_tolerance_and_on_a_missing_metric(finished_run, tmp_path):
    report, _ = _figures(finished_run)
    acc = report["test"]["accuracy"]
    ref = _ref(tmp_path, {"test.accuracy": {"value": acc + 0.1, "tolerance": 0.02}})
    res = invoke("check-metrics", finished_run, "--reference", ref)
    assert res.exit_code == 1, res.output
    assert "OUT" in res.output and "off by 0.1" in res.output
    assert "1 of 1 metrics out of the reference" in res.output

    ref = _ref(tmp_path, {"test.accuracy": {"min": 0.0}, "test.bleu9": {"min": 0.1}})
    res = invoke("check-metrics", finished_run, "--reference", ref, "--json")
    assert res.exit_code == 1, res.output
    rows = {r["metric"]: r for r in json.loads(res.output)["metrics"]}
    assert rows["test.accuracy"]["ok"] and not rows["test.bleu9"]["ok"]
    assert rows["test.bleu9"]["actual"] is None
    assert "no 'bleu9' in test" in rows["test.bleu9"]["why"]
    assert "accuracy" in rows["test.bleu9"]["why"]  # what the split does have


def test_check_metrics_without_a_report_names_the_reason(run_copy, tmp_path):
    (run_copy / "eval" / "report.json").unlink()
    ref = _ref(tmp_path, {"test.accuracy": {"min": 0.0}, "epoch.val_acc": {"min": 0.0}})
    res = invoke("check-metrics", run_copy, "--reference", ref, "--json")
    assert res.exit_code == 1, res.output
    rows = json.loads(res.output)["metrics"]
    assert "no eval/report.json" in rows[0]["why"]
    assert rows[1]["ok"]  # the epoch rows are still there


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "is not valid JSON (line 1"),
        ("[1, 2]", "must hold a JSON object"),
        ("{}", "names no metrics"),
        ('{"test.accuracy": 0.9}', "must be an object"),
        ('{"test.accuracy": {"value": 0.9, "tol": 0.1}}', "unknown key 'tol'"),
        ('{"test.accuracy": {"tolerance": 0.1}}', "needs value (with tolerance), min or max"),
        ('{"test.accuracy": {"value": "high"}}', "must be a finite number"),
        ('{"test.accuracy": {"min": 0.9, "max": 0.1}}', "is above max"),
        ('{"test.accuracy": {"value": 0.9, "tolerance": -1}}', "must not be negative"),
    ],
)
def test_bad_reference_is_one_line_exit_2(finished_run, tmp_path, text, says):
    res = invoke("check-metrics", finished_run, "--reference", _ref(tmp_path, text))
    assert res.exit_code == 2, res.output
    assert says in one_error_line(res)


def test_missing_reference_file_and_help(finished_run, tmp_path):
    res = invoke("check-metrics", finished_run, "--reference", tmp_path / "nope.json")
    assert res.exit_code == 2 and "no reference file at" in one_error_line(res)
    res = invoke("check-metrics", "--help")
    assert res.exit_code == 0
    for word in ("tolerance", "min", "max", "epoch.FIELD", "eval/report.json"):
        assert word in res.output


def test_reference_checks_are_inclusive_and_combine():
    (r,) = parse_reference({"m": {"value": 1.0, "tolerance": 0.5, "min": 0.8}})
    assert r.check(1.5) == (True, None)
    assert r.check(0.7)[0] is False  # within the tolerance, below min
    assert r.check(1.6)[0] is False
    with pytest.raises(BadReference):
        parse_reference({"m": {"value": True}})
