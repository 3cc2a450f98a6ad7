"""The runs filter (slr_tui/filters.py): each form, ANDs, negation, bad input as one line."""

from __future__ import annotations

import pytest

from slr_tui.filters import FilterError, parse, run_fields


def row(rid, status="finished", preset="demo", tags=(), **figs):
    meta = {"id": rid, "preset": preset, "dataset": f"{preset} data", "status": status}
    meta.update(figs.pop("meta", {}))
    cfg = figs.pop("config", {"optim": {"lr": 3e-4}, "data": {"batch_size": 32}})
    r = run_fields(meta, status=status, config=cfg, tags=list(tags))
    r["metrics"].update(figs)
    return r


ROWS = [
    row("r1-demo", tags=["baseline"], val_acc=0.9, test_acc=0.85, epoch=12),
    row("r2-demo", status="failed", tags=["old"], val_acc=0.4, epoch=3),
    row("r3-wlasl", preset="wlasl100-conservative", tags=["baseline", "wlasl"], val_acc=0.6),
    row("r4-ctc", status="running", preset="phase1-ctc20", epoch=5),
]


def kept(text):
    f = parse(text)
    return [r["id"] for r in ROWS if f is None or f(r)]


def test_empty_is_no_filter():
    assert parse("") is None and parse("   ") is None
    assert kept("") == ["r1-demo", "r2-demo", "r3-wlasl", "r4-ctc"]


def test_plain_text_matches_id_status_preset_dataset_and_tags():
    assert kept("demo") == ["r1-demo", "r2-demo"]
    assert kept("FAIL") == ["r2-demo"]  # status, case-insensitive
    assert kept("conserv") == ["r3-wlasl"]  # preset
    assert kept("wlasl") == ["r3-wlasl"]
    assert kept("baseline") == ["r1-demo", "r3-wlasl"]  # a tag


def test_field_terms_use_wildcards():
    assert kept("tag:baseline") == ["r1-demo", "r3-wlasl"]
    assert kept("tag:base*") == ["r1-demo", "r3-wlasl"]
    assert kept("tag:base") == []  # a pattern, not a substring
    assert kept("preset:wlasl*") == ["r3-wlasl"]
    assert kept("preset:WLASL*") == ["r3-wlasl"]
    assert kept("status:finished") == ["r1-demo", "r3-wlasl"]
    assert kept("status:run*") == ["r4-ctc"]
    assert kept("id:r?-demo") == ["r1-demo", "r2-demo"]


def test_comparisons_on_figures():
    assert kept("val_acc>0.5") == ["r1-demo", "r3-wlasl"]
    assert kept("val_acc>=0.6") == ["r1-demo", "r3-wlasl"]
    assert kept("val_acc>0.6") == ["r1-demo"]
    assert kept("test_acc>=0.8") == ["r1-demo"]  # a run without test_acc never matches
    assert kept("epoch<10") == ["r2-demo", "r3-wlasl", "r4-ctc"]  # r3: no epoch is epoch 0
    assert kept("epoch=12") == ["r1-demo"] == kept("epoch==12")
    assert kept("epoch!=12") == ["r2-demo", "r3-wlasl", "r4-ctc"]
    assert kept("val_acc > 50%") == ["r1-demo", "r3-wlasl"]  # spaces around op, percent
    assert kept("lr<=1e-3") == kept("batch_size=32") == [r["id"] for r in ROWS]
    assert kept("lr<1e-4") == []


def test_terms_are_anded_and_can_be_negated():
    assert kept("val_acc>0.5 preset:wlasl*") == ["r3-wlasl"]
    assert kept("tag:baseline demo") == ["r1-demo"]
    assert kept("!tag:baseline") == ["r2-demo", "r4-ctc"]
    assert kept("demo !status:failed val_acc>0.1") == ["r1-demo"]


def test_archived_keyword():
    archived = dict(row("r5-demo"), archived=True)
    f = parse("archived")
    assert f.wants_archived and f(archived) and not f(ROWS[0])
    g = parse("!archived demo")
    assert not g.wants_archived and not g(archived) and g(ROWS[0])


def test_missing_figures_are_named():
    f = parse("val_ac>0.5 val_acc>0")
    assert f.figures == ("val_ac", "val_acc")
    assert f.missing_figures(ROWS) == ["val_ac"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("val_acc>", "needs a number after >"),
        (">0.5", "needs a figure before >"),
        ("val_acc>abc", "'abc' is not a number"),
        ("val_acc>nan", "not a finite number"),
        ("foo:bar", "unknown filter 'foo:'"),
        ("tag:", "needs a value"),
        ("!", "'!' must come before a term"),
        ('note:"open', "cannot read the filter"),
        ("demo epoch<=x1", "'x1' is not a number"),
    ],
)
def test_bad_input_is_one_line(text, says):
    with pytest.raises(FilterError) as exc:
        parse(text)
    line = str(exc.value)
    assert says in line and "\n" not in line


def test_run_fields_from_run_json():
    meta = {
        "id": "x",
        "preset": "demo",
        "epoch": 7,
        "max_epochs": 10,
        "best_metric": 0.7,
        "best_val_acc": 0.72,
        "last_metrics": {"val_acc": 0.65, "val_loss": 1.2, "lr": 1e-5, "note": "n/a"},
        "results": {"test": {"accuracy": 0.8, "macro_f1": 0.75}, "val": {"accuracy": 0.71}},
        "sweep": "sw1",
    }
    cfg = {"optim": {"lr": 3e-4}, "data": {"batch_size": 16}, "model": {"name": "bigru"}}
    r = run_fields(meta, status="finished", config=cfg, tags=["a"], note="hi", duration=61.0)
    m = r["metrics"]
    assert m["epoch"] == 7 and m["max_epochs"] == 10 and m["best"] == 0.7
    assert m["val_acc"] == 0.71  # the final evaluation's, over the best so far and the last
    assert m["test_acc"] == 0.8 and m["test_f1"] == 0.75 and m["val_loss"] == 1.2
    assert m["lr"] == 3e-4  # the config's, not the scheduled one at the last epoch
    assert m["batch_size"] == 16 and m["duration"] == 61.0
    assert "note" not in m
    assert (r["model"], r["sweep"], r["lr"], r["batch"], r["test_acc"]) == (
        "bigru",
        "sw1",
        3e-4,
        16,
        0.8,
    )
    assert parse("model:bi* sweep:sw1 note:h*")(r)
