"""Translation runs in the viewers: the torch-free readers keep (and clean) BLEU/chrF/WER,
`slr show`/`compare`/`runs`/`thresholds` on them, and the TUI's live, runs, thresholds and
new-run screens. The runs are real: the trainer trains a tiny translation model on a tiny
dataset (tests/test_translation.py's helpers) once per module."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from textual.widgets import Static
from typer.testing import CliRunner

from engine import runs
from slr_tui.cli import app as cli_app
from slr_tui.cli import render
from slr_tui.screens.live import LiveRunScreen
from slr_tui.screens.new_run import TRANSLATION_DEMO_KEY, NewRunScreen
from slr_tui.screens.thresholds import ThresholdsScreen
from slr_tui.widgets._series import RunSeries, read_initial
from slr_tui.widgets.metric_plot import MetricPlot
from slr_tui.widgets.sortable_table import SortableTable
from tests.fixtures_runs import build_runs, make_app, to_row, until

GOOD, SHORT = "20260101-000000-slt-a", "20260101-000100-slt-b"
CLASSIFICATION = "20250101-090000-demo"  # a run of tests/fixtures_runs.py

runner = CliRunner()


@pytest.fixture
def anyio_backend():
    return "asyncio"


# --------------------------------------------------------------------------- the real runs


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """Two finished translation runs: GOOD (12 epochs, best.pt by val BLEU-4, beam 2) and
    SHORT (2 epochs, the default monitor: val loss). Returns their runs folder."""
    from engine.train import EXIT_OK, run_training
    from tests.test_translation import cfg_for, make_root

    base = tmp_path_factory.mktemp("translation")
    root = base / "data"
    make_root(root, 16, fill_by_index=True, fill_step=15)
    out = base / "runs"
    good = cfg_for(root, "training.max_epochs=12", "training.monitor=val_bleu4", "optim.lr=3e-3")
    assert run_training(good, out / GOOD) == EXIT_OK
    assert run_training(cfg_for(root, "training.max_epochs=2"), out / SHORT) == EXIT_OK
    return out


@pytest.fixture
def store(tmp_path, monkeypatch, trained) -> Path:
    """./runs with the fixed classification runs and the two translation runs, settings in
    ./config.yaml, the working directory at tmp_path (make_app's relative paths)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLR_CONFIG", str(tmp_path / "config.yaml"))
    monkeypatch.setenv("SLR_RUNS_DIR", str(tmp_path / "runs"))
    build_runs(tmp_path / "runs")
    for rid in (GOOD, SHORT):
        shutil.copytree(trained / rid, tmp_path / "runs" / rid)
    return tmp_path / "runs"


def invoke(*args, width: int = 200):
    old = render.console._width
    render.console._width = width  # wide enough that no label wraps
    try:
        return runner.invoke(cli_app, [str(a) for a in args])
    finally:
        render.console._width = old


# --------------------------------------------------------------------------- the readers


def test_clean_report_keeps_translation_figures_and_nulls_garbage():
    raw = {
        "task": "translation",
        "num_beams": 2,
        "monitor": "val_bleu4",
        "val": {"bleu4": 12.5, "chrf": "high", "wer": 0.4, "token_accuracy": [1], "nll": 2.0},
        "test": "not a split",
        "beam": {
            "val": {"bleu4": 13.0, "bleu1": None, "wer": True, "num_beams": 2},
            "test": 7,
        },
    }
    rep = runs.clean_report(raw)
    assert rep["task"] == "translation" and rep["num_beams"] == 2
    assert rep["val"] == {
        "bleu4": 12.5,
        "chrf": None,
        "wer": 0.4,
        "token_accuracy": None,
        "nll": 2.0,
    }
    assert "test" not in rep
    assert rep["beam"] == {"val": {"bleu4": 13.0, "bleu1": None, "wer": None, "num_beams": 2}}
    bad = runs.clean_report({"task": 3, "num_beams": "4", "beam": [1, 2], "val": {"bleu4": "x"}})
    assert bad == {"val": {"bleu4": None}}
    # a classification report is left as it was
    cls = {"val": {"accuracy": 0.5, "macro_f1": "x"}, "num_classes": 3}
    assert runs.clean_report(cls) == {"val": {"accuracy": 0.5, "macro_f1": None}, "num_classes": 3}


def test_clean_row_nulls_bad_translation_figures_and_cleans_examples():
    row = runs.clean_row(
        {"kind": "epoch", "epoch": 2, "val_bleu4": "NaN", "val_chrf": 31.5, "val_wer": [0.2]}
    )
    assert row["val_bleu4"] is None and row["val_chrf"] == 31.5 and row["val_wer"] is None
    ex = runs.clean_row(
        {
            "kind": "examples",
            "epoch": 1,
            "split": "val",
            "examples": [
                {"id": "v1", "reference": "hola", "hypothesis": "hola"},
                "junk",
                {"id": 3, "reference": ["x"], "hypothesis": "adiós"},
            ],
        }
    )
    assert ex["examples"] == [
        {"id": "v1", "reference": "hola", "hypothesis": "hola"},
        {"id": None, "reference": None, "hypothesis": "adiós"},
    ]
    assert runs.clean_row({"kind": "examples", "epoch": 1, "examples": "x"})["examples"] is None
    # the viewers' store keeps only a usable examples row
    s = RunSeries()
    s.add_rows([runs.clean_row({"kind": "examples", "epoch": 1, "examples": "x"})])
    assert s.examples is None
    s.add_rows([ex, {"kind": "epoch", "epoch": 1, "val_bleu4": 3.0}])
    assert s.examples is ex and s.translation and s.curve("val_bleu4")[1] == [3.0]


def test_a_translation_run_is_told_from_its_files(trained, tmp_path):
    good = runs.load_run(trained / GOOD)
    assert good.translation and good.task() == "translation"
    assert good.meta["monitor"] == "val_bleu4"
    short = runs.load_run(trained / SHORT)
    assert short.translation and short.meta["monitor"] == "val_loss"
    # before its first epoch only the config tells
    early = tmp_path / "early"
    early.mkdir()
    shutil.copy(trained / SHORT / runs.CONFIG_JSON, early / runs.CONFIG_JSON)
    info = runs.load_run(early)  # no run.json: rebuilt, and its monitor is val_loss
    assert not info.translation and info.task() == "translation"
    assert info.meta["monitor"] == "val_loss" and info.meta["monitor_mode"] == "min"
    assert (
        runs.translation_meta({"monitor": "val_acc", "results": {"val": {"accuracy": 1}}}) is False
    )


def test_read_translations_tolerates_damaged_files(trained, tmp_path):
    rows, why = runs.read_translations(trained / GOOD / runs.EVAL_DIR, "test")
    assert why is None and len(rows) == 4 and {r["split"] for r in rows} == {"test"}
    assert set(rows[0]) == {"split", "id", "reference", "hypothesis", "hypothesis_beam"}
    assert runs.read_translations(tmp_path) == ([], "missing")
    (tmp_path / runs.TRANSLATIONS_CSV).write_text("a,b\n1,2\n")
    rows, why = runs.read_translations(tmp_path)
    assert rows == [] and "no split, reference, hypothesis column" in why
    (tmp_path / runs.TRANSLATIONS_CSV).write_bytes(b"split,reference,hypothesis\nval,\xff\xfe,x\n")
    rows, why = runs.read_translations(tmp_path)
    assert rows == [] and why.startswith("cannot read")


# --------------------------------------------------------------------------- the CLI


def test_slr_show_of_a_translation_run(store):
    res = invoke("show", GOOD)
    assert res.exit_code == 0, res.output
    out = res.output
    for text in ("BLEU-4", "BLEU-1", "chrF", "WER (lower is better)", "token accuracy"):
        assert text in out, text
    for col in ("val greedy", "val beam 2", "test greedy", "test beam 2"):
        assert col in out, col
    assert "tok acc" in out and "val acc" not in out  # the epochs table's columns
    assert "translations (test)" in out and "hypothesis (beam)" in out
    assert "el niño come manzanas" in out or "mañana voy a la escuela" in out
    assert "per-class" not in out and "threshold" not in out
    best = runs.load_run(store / GOOD).best_metric
    assert f"best val_bleu4 {best:.2f} (epoch" in out


def test_slr_compare_runs_and_thresholds_on_translation_runs(store):
    res = invoke("compare", GOOD, SHORT)
    assert res.exit_code == 0, res.output
    for label in ("val BLEU-4", "val chrF", "val WER", "test BLEU-4", "val BLEU-4 (beam)"):
        assert label in res.output, label
    assert "val accuracy" not in res.output
    rep = {rid: runs.load_run(store / rid).report() for rid in (GOOD, SHORT)}
    good, short = rep[GOOD]["val"]["bleu4"], rep[SHORT]["val"]["bleu4"]
    line = next(x for x in res.output.splitlines() if "val BLEU-4 " in x and "beam" not in x)
    assert f"{good:.2f}" in line and f"{short:.2f}" in line
    if good != short:  # the better one is starred
        assert f"{max(good, short):.2f} *" in line

    res = invoke("runs")
    assert res.exit_code == 0, res.output
    rows = {x.split()[1]: x for x in res.output.splitlines() if x.startswith("│")}
    best = runs.load_run(store / GOOD).best_metric
    assert f"{best:.2f} BLEU-4" in rows[GOOD]
    loss = runs.load_run(store / SHORT).best_metric
    assert f"{loss:.4f} loss" in rows[SHORT]
    assert " acc" in rows[CLASSIFICATION] and "best val acc" not in res.output

    res = invoke("thresholds", GOOD)
    assert res.exit_code != 0
    assert "is a translation run: thresholds are for classification runs" in res.output


def test_slr_runs_of_classification_runs_alone_is_unchanged(tmp_path, monkeypatch):
    build_runs(tmp_path / "runs")
    monkeypatch.setenv("SLR_RUNS_DIR", str(tmp_path / "runs"))
    res = invoke("runs")
    assert res.exit_code == 0, res.output
    assert "best val acc" in res.output and " acc │" not in res.output


# --------------------------------------------------------------------------- the TUI


async def _open_live(pilot, key: str) -> LiveRunScreen:
    await to_row(pilot, key)
    await pilot.press("enter")
    screen = pilot.app.screen
    assert isinstance(screen, LiveRunScreen)
    await until(pilot, lambda: screen.loaded)
    await pilot.pause(0.2)
    return screen


def _view_text(screen: LiveRunScreen) -> str:
    """What the translations tab shows, as plain text."""
    from rich.console import Console

    with open(os.devnull, "w") as sink:
        console = Console(width=120, record=True, file=sink)
        console.print(screen.query_one("#translations-view", Static).content)
        return console.export_text()


def _footer_keys(screen) -> dict[str, str]:
    return {k: b.binding.description for k, b in screen.active_bindings.items() if b.binding.show}


@pytest.mark.anyio
async def test_live_screen_of_a_finished_translation_run(store):
    rows = runs.read_jsonl(store / GOOD / runs.METRICS)
    last_examples = [r for r in rows if r["kind"] == "examples"][-1]
    epochs = list(runs.iter_epochs(rows))
    async with make_app().run_test(size=(120, 40)) as pilot:
        live = await _open_live(pilot, GOOD)
        assert live.translation
        plot = live.query_one("#acc-plot", MetricPlot)
        assert plot.plot_title == "BLEU / chrF"
        assert [c.label for c in plot.curves] == ["val BLEU-4", "val chrF"]
        assert list(plot.curves[0].ys) == [r["val_bleu4"] for r in epochs]
        table = live.query_one("#epoch-table", SortableTable)
        labels = [c.label for c in table.cols]
        assert "BLEU-4" in labels and "chrF" in labels and "WER" in labels
        assert "val acc" not in labels and table.row_count == len(epochs)
        tabs = [str(t.label) for t in live.query("ContentTab")]
        assert "translations" in " ".join(tabs) and "per-class" not in " ".join(tabs)
        keys = _footer_keys(live)
        assert keys.get("3") == "translations" and "4" not in keys
        assert "t" not in keys and "v" not in keys

        await pilot.press("3")
        await until(pilot, lambda: bool(live.query("#translations-view")))
        await pilot.pause(0.1)
        text = _view_text(live)
        assert f"epoch {last_examples['epoch']}" in text
        for e in last_examples["examples"]:
            assert e["reference"] in text
        assert f"slr show {GOOD}" in text  # the final translations are there

        seen: list[str] = []
        live.notify = lambda message, **kw: seen.append(str(message))
        await pilot.press("t")
        await pilot.pause(0.1)
        assert seen == [f"thresholds are for classification runs: {GOOD} is a translation run"]
        assert isinstance(pilot.app.screen, LiveRunScreen)


@pytest.mark.anyio
async def test_live_screen_of_a_classification_run_keeps_its_tabs(store):
    async with make_app().run_test(size=(120, 40)) as pilot:
        live = await _open_live(pilot, CLASSIFICATION)
        assert not live.translation
        assert live.query_one("#acc-plot", MetricPlot).plot_title == "accuracy"
        keys = _footer_keys(live)
        assert keys.get("3") == "per-class" and keys.get("4") == "confused"
        assert keys.get("t") == "thresholds"


@pytest.mark.anyio
async def test_live_screen_follows_a_growing_translation_run(store):
    """A run that is still training: step rows first (nothing tells it translates but its
    config), then epoch and examples rows arrive; the plot and the tab follow."""
    path = store / "20260101-000200-slt-live"
    shutil.copytree(store / GOOD, path)
    shutil.rmtree(path / runs.EVAL_DIR)
    rows = runs.read_jsonl(path / runs.METRICS)
    first_epoch = next(i for i, r in enumerate(rows) if r["kind"] == "epoch")
    (path / runs.METRICS).unlink()
    runs.append_rows(path / runs.METRICS, rows[:first_epoch])
    meta = runs.read_json(path / runs.RUN_JSON)
    for key in ("last_metrics", "results", "best_metric", "best_epoch", "stop_reason"):
        meta.pop(key, None)
    meta.update(id=path.name, status="running", pid=os.getpid(), epoch=0, host=runs.hostname())
    meta["monitor"] = "val_loss"  # so run.json alone does not tell
    runs.write_run_json(path / runs.RUN_JSON, meta)
    async with make_app(live_poll_s=0.05).run_test(size=(120, 40)) as pilot:
        live = await _open_live(pilot, path.name)
        assert live.translation  # from its config
        await pilot.press("3")
        await until(pilot, lambda: bool(live.query("#translations-view")))
        await pilot.pause(0.1)
        assert "no example translations yet" in _view_text(live)
        plot = live.query_one("#acc-plot", MetricPlot)
        assert not plot.has_data
        upto = next(i for i, r in enumerate(rows) if r["kind"] == "examples" and r["epoch"] == 2)
        runs.append_rows(path / runs.METRICS, rows[first_epoch : upto + 1])
        await until(pilot, lambda: len(plot.curves[0].xs) == 2, what="two BLEU points")
        await until(
            pilot,
            lambda: "epoch 2" in _view_text(live),
            what="the epoch-2 examples",
        )
        assert live.query_one("#epoch-table", SortableTable).row_count == 2


@pytest.mark.anyio
async def test_runs_screen_labels_best_and_refuses_thresholds_for_translation(store):
    async with make_app().run_test(size=(120, 40)) as pilot:
        screen = pilot.app.screen
        await until(pilot, lambda: GOOD in screen.table.shown_keys)
        table = screen.table
        assert table.labelled and "best" in [c.label for c in table.cols]
        rows = {r["key"]: r for r in table.rows_data}
        best = runs.load_run(store / GOOD).best_metric
        assert rows[GOOD]["best_s"] == f"{best:.2f} BLEU-4"
        assert rows[SHORT]["best_s"].endswith(" loss")
        assert rows[CLASSIFICATION]["best_s"].endswith(" acc")
        seen: list[str] = []
        screen.notify = lambda message, **kw: seen.append(str(message))
        await to_row(pilot, GOOD)
        await pilot.press("t")
        await pilot.pause(0.1)
        assert seen == [f"thresholds are for classification runs: {GOOD} is a translation run"]
        assert pilot.app.screen is screen


@pytest.mark.anyio
async def test_thresholds_screen_says_one_line_for_a_translation_run(store):
    async with make_app().run_test(size=(100, 30)) as pilot:
        pilot.app.push_screen(ThresholdsScreen(store / GOOD))
        await pilot.pause(0.2)
        screen = pilot.app.screen
        await until(
            pilot, lambda: "translation run" in str(screen.query_one("#thr-title").render())
        )
        assert not screen.loaded


@pytest.mark.anyio
async def test_new_run_offers_the_translation_presets(store, tmp_path):
    roi = tmp_path / "my-signs"
    (roi / "rois").mkdir(parents=True)
    (tmp_path / "config.yaml").write_text(f"dataset_roots:\n  mysigns: {roi}\n")
    async with make_app().run_test(size=(120, 40)) as pilot:
        await pilot.press("n")
        nr = pilot.app.screen
        assert isinstance(nr, NewRunScreen)
        await until(pilot, lambda: len(nr.datasets) >= 3 and nr.presets)
        demo = next(d for d in nr.datasets if d["key"] == TRANSLATION_DEMO_KEY)
        assert [p["name"] for p in nr.fitting_presets(demo)] == ["translation-demo"]
        mine = next(d for d in nr.datasets if d["label"] == "mysigns")
        assert mine["source"] == "translation"
        fit = [p["name"] for p in nr.fitting_presets(mine)]
        assert fit == ["slt-multistream", "translation-demo"]
        classic = next(d for d in nr.datasets if d["key"] == "demo")
        assert "translation-demo" not in [p["name"] for p in nr.fitting_presets(classic)]

        nr.query_one("#dataset-list").highlighted = nr.datasets.index(mine)
        await until(pilot, lambda: nr.preset is not None and nr.preset["name"] == "slt-multistream")
        sets, extra = nr.overrides()
        assert extra == {"data": {"root": str(roi)}}
        nr.query_one("#preset-list").highlighted = 1
        await until(pilot, lambda: nr.preset["name"] == "translation-demo")
        sets, extra = nr.overrides()
        assert extra == {}  # the demo makes its own data: the user's root is left alone
        await pilot.pause(0.4)
        await until(
            pilot, lambda: "synthetic_translation" in str(nr.query_one("#preview").render())
        )
        assert not nr.preview_error


def test_read_initial_keeps_the_examples_of_a_long_file(trained, tmp_path):
    """A long metrics.jsonl is sampled on the first read: examples rows are kept."""
    rows = runs.read_jsonl(trained / GOOD / runs.METRICS)
    steps = [r for r in rows if r["kind"] == "step"]
    padded = [*(steps * (3000 // len(steps) + 1))[:3000], *rows]
    path = tmp_path / runs.METRICS
    runs.append_rows(path, padded)
    series, _ = read_initial(path, keep_steps=500, tail_lines=10)
    assert series.sampled_out > 0 and series.translation
    assert series.examples is not None
    assert series.examples["epoch"] == [r for r in rows if r["kind"] == "examples"][-1]["epoch"]
    assert json.dumps(series.examples)  # plain data


@pytest.mark.anyio
async def test_compare_screen_of_translation_runs_plots_bleu(store):
    from slr_tui.screens.compare import CompareScreen

    async with make_app().run_test(size=(120, 40)) as pilot:
        await to_row(pilot, SHORT)
        await pilot.press("space", "space", "c")
        screen = pilot.app.screen
        assert isinstance(screen, CompareScreen)
        await until(pilot, lambda: screen.loads >= 1)
        await pilot.pause(0.1)
        assert screen.metric == "val_bleu4"
        plot = screen.query_one("#compare-plot", MetricPlot)
        assert plot.plot_title == "val BLEU-4" and sorted(len(c.xs) for c in plot.curves) == [2, 12]
        table = screen.query_one("#summary-table")
        labels = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert "val BLEU-4" in labels and "test WER" in labels and "val accuracy" not in labels


def test_slr_run_of_a_translation_config_ends_with_its_bleu_table(trained, tmp_path):
    """`slr run` through the engine process: its closing results table is the translation
    one (greedy beside beam search)."""
    from tests.test_translation import cfg_for

    cfg = cfg_for(trained.parent / "data", "training.max_epochs=1").to_dict()
    path = tmp_path / "slt.json"
    path.write_text(json.dumps(cfg))
    res = invoke("run", "--config", path, "--runs-dir", tmp_path / "runs", "--quiet")
    assert res.exit_code == 0, res.output
    assert "BLEU-4" in res.output and "val beam 2" in res.output and "finished" in res.output
