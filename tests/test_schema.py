"""The run folder's schema (engine.schema): the real trainer writes only keys it declares,
the writers refuse the ones it does not, the fixtures hold what the trainer writes, and the
readers' key lists come from it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import orjson
import pytest

from engine import runs, schema
from tests.conftest import tiny_cfg
from tests.fixtures_runs import build_runs, metric_rows


def _raw_rows(path: Path) -> list[dict]:
    """Every line as written, not cleaned by a reader."""
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def check_folder(run_dir: Path) -> list[dict]:
    """run.json, metrics.jsonl and system.jsonl fit the schema, and every record carries
    its ``always`` keys; returns the metrics rows."""
    meta = runs.read_json(run_dir / runs.RUN_JSON)
    schema.check_run_fields(meta)
    assert schema.always(schema.RunMeta) <= set(meta)
    if meta.get("last_metrics"):  # the latest epoch row, without t and kind
        schema.check_metric_row({"kind": "epoch", **meta["last_metrics"]})
    rows = _raw_rows(run_dir / runs.METRICS)
    for row in rows:
        schema.check_metric_row(row)
        lacking = schema.always(schema.METRIC_ROWS[row["kind"]]) - set(row)
        assert not lacking, (row["kind"], lacking)
    for row in _raw_rows(run_dir / runs.SYSTEM):
        schema.check_system_row(row)
        assert schema.always(schema.SystemRow) <= set(row)
        for gpu in row["gpus"]:
            assert schema.always(schema.GpuReading) <= set(gpu)
    return rows


# --------------------------------------------------------------------------- the real trainer


def test_the_trainer_writes_only_what_the_schema_declares(finished_run):
    rows = check_folder(finished_run)
    assert {r["kind"] for r in rows} == {"step", "epoch", "eval"}
    assert runs.read_json(finished_run / runs.RUN_JSON)["status"] == "finished"


def test_a_binary_ctc_run_s_extra_figures_are_declared_too(tmp_path):
    """The keys only some runs write: binary AUCs, CTC blank shares."""
    from engine.train import EXIT_OK, run_training

    cfg = tiny_cfg("data.synthetic.num_classes=2", "model.name=ctc", "training.max_epochs=1")
    assert run_training(cfg, tmp_path / "r") == EXIT_OK
    rows = check_folder(tmp_path / "r")
    evals = [r for r in rows if r["kind"] == "eval"]
    assert evals and all({"roc_auc", "pr_auc", "blank_share"} <= set(r) for r in evals)
    assert all("val_blank_share" in r for r in rows if r["kind"] == "epoch")


def test_summarize_gives_exactly_a_split_s_figures():
    from engine import evaluate

    y = np.array([0, 1, 2, 0])
    probs = np.full((4, 3), 1 / 3)
    assert set(evaluate.summarize(y, probs, ["a", "b", "c"])) == set(schema.REPORT_FIGURES) - set(
        schema.BINARY_SCORES
    )
    binary = evaluate.summarize(np.array([0, 1]), np.array([[0.7, 0.3], [0.2, 0.8]]), ["a", "b"])
    assert set(binary) == set(schema.REPORT_FIGURES)


# --------------------------------------------------------------------------- the fixtures


def test_the_fixtures_hold_what_the_trainer_writes(tmp_path):
    for run_dir in build_runs(tmp_path).values():
        check_folder(run_dir)
    for row in metric_rows(2):
        schema.check_metric_row(row)


# --------------------------------------------------------------------------- the writers


def _epoch_row(**extra) -> dict:
    return {"t": 1.0, "kind": "epoch", "epoch": 1, "step": 4, "val_acc": 0.5, **extra}


def test_a_metrics_row_with_an_unknown_key_is_refused_and_nothing_written(tmp_path):
    path = tmp_path / runs.METRICS
    runs.append_jsonl(path, _epoch_row())
    with pytest.raises(runs.SchemaError, match="unknown key 'val_accuracy'"):
        runs.append_jsonl(path, _epoch_row(val_accuracy=0.5))
    with pytest.raises(runs.SchemaError, match="unknown key 'step_in_epoch'"):
        runs.append_rows(path, [_epoch_row(), _epoch_row(step_in_epoch=1)])
    assert len(_raw_rows(path)) == 1


@pytest.mark.parametrize(
    "row, why",
    [
        (_epoch_row(epoch="1"), "epoch is str, not int"),
        (_epoch_row(epoch=1.0), "epoch is float, not int"),
        (_epoch_row(best=1), "best is int, not bool"),
        (_epoch_row(val_acc=True), "val_acc is bool, not float"),
        ({"t": 1.0, "kind": "epochs"}, "kind 'epochs'"),
        ({"t": 1.0}, "kind None"),
        ([1, 2], "not an object"),
    ],
)
def test_a_metrics_row_of_the_wrong_shape_is_refused(tmp_path, row, why):
    with pytest.raises(runs.SchemaError, match=why):
        runs.append_jsonl(tmp_path / runs.METRICS, row)


def test_nulls_and_numpy_numbers_fit(tmp_path):
    path = tmp_path / runs.METRICS
    runs.append_jsonl(path, _epoch_row(val_loss=None, lr=np.float32(0.5), step=np.int64(3)))
    assert runs.read_jsonl(path)[0]["step"] == 3
    runs.append_jsonl(path, {"kind": "step", "step": 1})  # a row may leave keys out


def test_system_rows_are_checked_other_jsonl_files_are_free_form(tmp_path):
    gpu = {"index": 0, "name": "H100", "temp_c": 40.0, "util_pct": 9.0}
    runs.append_jsonl(tmp_path / runs.SYSTEM, {"t": 1.0, "gpus": [gpu], "proc_peak_mem_mb": 2.0})
    with pytest.raises(runs.SchemaError, match="unknown key 'fan_pct'"):
        runs.append_jsonl(tmp_path / runs.SYSTEM, {"t": 1.0, "gpus": [{**gpu, "fan_pct": 3}]})
    runs.append_jsonl(tmp_path / "progress.jsonl", {"video": "a.mp4", "done": 1})
    assert runs.read_jsonl(tmp_path / "progress.jsonl") == [{"video": "a.mp4", "done": 1}]


def test_run_json_writers_check_the_fields_they_write(tmp_path):
    path = tmp_path / runs.RUN_JSON
    runs.write_run_json(path, {"id": "r", "status": "running", "epoch": 1, "pid": None})
    with pytest.raises(runs.SchemaError, match="unknown key 'epochs'"):
        runs.write_run_json(path, {"id": "r", "epochs": 1})
    with pytest.raises(runs.SchemaError, match="status is 'unreadable', not one of"):
        runs.write_run_json(path, {"id": "r", "status": "unreadable"})
    with pytest.raises(runs.SchemaError, match="best_metric is str, not float"):
        runs.update_run_json(tmp_path, {"best_metric": "0.5"})
    assert runs.read_json(path) == {"id": "r", "status": "running", "epoch": 1, "pid": None}


def test_update_run_json_keeps_what_is_on_disk_as_it_is(tmp_path):
    """Keys of another version or a hand edit are not this writer's to refuse."""
    runs.atomic_write_json(tmp_path / runs.RUN_JSON, {"id": "r", "note": "by hand", "epoch": "x"})
    meta = runs.update_run_json(tmp_path, {"status": "stopped"})
    assert meta["note"] == "by hand" and meta["epoch"] == "x" and meta["status"] == "stopped"


# --------------------------------------------------------------------------- the schema itself


@pytest.mark.parametrize(
    "record", [schema.RunMeta, schema.SystemRow, schema.GpuReading, *schema.METRIC_ROWS.values()]
)
def test_every_key_is_documented_and_nullable(record):
    for f in dataclasses.fields(record):
        assert f.metadata["doc"].strip(), f.name
        assert f.default is None, f.name
    assert record() is not None  # every key may be left out


def test_keys_refuse_a_name_the_schema_does_not_know():
    assert schema.keys(schema.EpochRow, "val_acc", "best") == ("val_acc", "best")
    with pytest.raises(schema.SchemaError, match="EpochRow has no key val_accuracy"):
        schema.keys(schema.EpochRow, "val_acc", "val_accuracy")


def test_readers_take_their_key_lists_from_the_schema():
    from slr_tui.screens import compare
    from slr_tui.widgets import _series

    assert set(_series.EPOCH_KEYS) <= set(schema.specs(schema.EpochRow))
    assert set(compare.METRICS) <= set(_series.CURVES) <= set(_series.EPOCH_KEYS)
    assert set(runs._META_FIELDS) == set(schema.specs(schema.RunMeta))
    # a figure of any row kind that is not a number becomes null; a bad position drops the row
    for key in ("num_classes_present", "blank_share", "val_blank_share", "proc_peak_mem_mb"):
        assert runs.clean_row({"kind": "eval", key: "x"}) == {"kind": "eval", key: None}
    assert runs.clean_row({"kind": "step", "step_in_epoch": "x"}) is None
    meta, why = runs.check_meta({"id": "r", "passes_per_epoch": "x"})
    assert (
        why == "run.json: passes_per_epoch is 'x', not an integer"
        and "passes_per_epoch" not in meta
    )
