"""Issue 13 item 9, the new-run screen: the summary line and the config preview are of the
resolved config (the overrides applied, what changed first and highlighted), an override
error is shown whole, a features root gets only the features presets (and a preset that
validates is preselected), the data check counts arrays (not videos) for features, focus
shows, and no edit is lost (typed and launched at once; kept across a preset switch)."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console
from textual.geometry import Region
from textual.widgets import Input

from engine import runs
from slr_tui import launch
from slr_tui.screens.live import LiveRunScreen
from slr_tui.screens.new_run import (
    CHANGED_STYLE,
    NewRunScreen,
    config_changes,
    sample_noun,
    sniff_source,
)
from slr_tui.settings import Settings, save_settings
from slr_tui.widgets.data_check import DataCheckPanel, report_view
from tests.fixtures_runs import fixed_runs, make_app, until
from tests.seq_fixtures import make_feature_set

pytestmark = pytest.mark.anyio

NARROW, WIDE = (80, 24), (200, 60)


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def fx(tmp_path, monkeypatch):
    with fixed_runs(tmp_path, monkeypatch) as paths:
        yield paths


@pytest.fixture
def features_root(fx, tmp_path):
    """A binary features folder named so that its name says nothing of its source."""
    root = tmp_path / "binary-clips"
    make_feature_set(root, binary=True, samples_per_class=10)
    save_settings(Settings(dataset_roots={"binary-clips": str(root)}), tmp_path / "config.yaml")
    return root


def style_at(text, needle: str, value: str) -> str:
    """The styles over ``value`` where it ends the first ``needle`` of a rich Text."""
    at = text.plain.index(needle) + len(needle) - len(value)
    return " ".join(str(s.style) for s in text.spans if s.start <= at < s.end)


def line_with(text, needle: str):
    """The rich Text line (of a multi-line Text) holding ``needle``."""
    return next(line for line in text.split("\n") if needle in line.plain)


async def open_new_run(pilot) -> NewRunScreen:
    await pilot.press("n")
    nr = pilot.app.screen
    assert isinstance(nr, NewRunScreen)
    await until(pilot, lambda: nr.preset is not None, what="the presets")
    return nr


async def pick(pilot, nr: NewRunScreen, label: str) -> None:
    await until(pilot, lambda: any(d["label"] == label for d in nr.datasets))
    ds = next(d for d in nr.datasets if d["label"] == label)
    nr.query_one("#dataset-list").highlighted = nr.datasets.index(ds)
    await until(pilot, lambda: nr.dataset is ds and nr.preset is not None)


async def previewed(pilot, nr: NewRunScreen, cond) -> None:
    await until(pilot, lambda: cond() and nr._preview_timer is None, what="the preview")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause(0.05)


def visible_text(widget) -> str:
    """What a widget draws, line by line, as plain text."""
    lines = widget.render_lines(Region(0, 0, *widget.outer_size))
    return "\n".join(s.text for s in lines)


# --------------------------------------------------------------------------- summary, preview


async def test_summary_and_preview_show_the_overrides(fx):
    async with make_app().run_test(size=WIDE) as pilot:
        nr = await open_new_run(pilot)
        assert nr.preset["name"] == "demo"
        nr.query_one("#ov-epochs", Input).value = "3"
        nr.query_one("#ov-sets", Input).value = "model.hidden_size=32 optim.lr=0.01"
        await previewed(pilot, nr, lambda: "model.hidden_size" in nr.changed)

        # what resolves as `slr run --preset demo --set ...` would resolve it
        assert nr.effective["training"]["max_epochs"] == 3
        assert nr.effective["model"]["hidden_size"] == 32
        assert set(nr.changed) == {"training.max_epochs", "model.hidden_size", "optim.lr"}
        assert nr.changed["training.max_epochs"] == (12, 3)

        # the summary line: the effective values, the overridden ones highlighted
        summary = nr.summary_text
        assert "epochs 3" in summary.plain and "lr 0.01 " in summary.plain
        assert "epochs 12" not in summary.plain
        assert CHANGED_STYLE in style_at(summary, "epochs 3", "3")
        assert CHANGED_STYLE in style_at(summary, "lr 0.01", "0.01")
        assert CHANGED_STYLE not in style_at(summary, "batch 16", "16")
        assert "also model.hidden_size=32" in summary.plain
        assert "epochs 3" in str(nr.query_one("#preset-info").render())

        # the preview: what changed first (preset -> effective), then the YAML with those
        # keys highlighted and the rest plain
        preview = nr.preview_text
        lines = preview.plain.splitlines()
        assert lines[0] == "changed from preset demo (3):"
        assert "  training.max_epochs: 12 -> 3" in lines[1:4]
        assert "  model.hidden_size: 64 -> 32" in lines[1:4]
        assert lines.index("effective config:") == 4
        assert CHANGED_STYLE in str(line_with(preview, "  max_epochs: 3").spans[0].style)
        plain_line = line_with(preview, "  batch_size: 16")
        assert not any(CHANGED_STYLE in str(s.style) for s in plain_line.spans)
        shown = visible_text(nr.query_one("#preview"))
        assert shown.startswith("changed from preset demo (3):")


async def test_clearing_the_overrides_leaves_the_preset(fx):
    async with make_app().run_test(size=NARROW) as pilot:
        nr = await open_new_run(pilot)
        nr.query_one("#ov-sets", Input).value = "training.patience=2"
        await previewed(pilot, nr, lambda: "training.patience" in nr.changed)
        nr.query_one("#ov-sets", Input).value = ""
        await previewed(pilot, nr, lambda: not nr.changed and nr.effective is not None)
        assert nr.preview_text.plain.startswith("as preset demo (no overrides)")
        assert config_changes(nr.preset, nr.effective) == {}


async def test_a_long_override_error_is_shown_whole(fx):
    async with make_app().run_test(size=NARROW) as pilot:
        nr = await open_new_run(pilot)
        nr.query_one("#ov-epochs", Input).value = "4"
        nr.query_one("#ov-sets", Input).value = "optim.lrr=1 training.patience=2"
        await until(pilot, lambda: nr.preview_error is not None and nr.not_applied)
        await pilot.pause(0.1)
        error = nr.preview_error
        assert "optim.lrr" in error and len(error) > 2 * 80  # longer than two lines
        box = nr.query_one("#nr-error")
        assert box.size.height >= len(error) // 80 + 1  # wrapped, not cut to one line
        assert box.region.bottom <= pilot.app.screen.size.height - 1  # above the footer
        drawn = "".join(visible_text(box).split())
        assert drawn == "".join(error.split())
        # what the other overrides make is still shown; the item that fails is named
        assert nr.not_applied == ["optim.lrr=1"] and nr.effective is None
        assert set(nr.changed) == {"training.max_epochs", "training.patience"}
        assert nr.preview_text.plain.startswith("not applied (see the error below): optim.lrr=1")
        assert "epochs 4" in nr.summary_text.plain
        await pilot.press("ctrl+l")  # nothing launches
        await pilot.pause(0.2)
        assert isinstance(pilot.app.screen, NewRunScreen) and not nr.launching


# --------------------------------------------------------------------------- features data


def test_sniff_source_and_sample_nouns(tmp_path):
    make_feature_set(tmp_path / "f", samples_per_class=2)
    make_feature_set(tmp_path / "g", samples_per_class=2, subfolder=True)
    (tmp_path / "empty").mkdir()
    (tmp_path / "lm").mkdir()
    (tmp_path / "lm" / "dataset.json").write_text('{"format": "slr-landmarks", "version": 1}')
    assert sniff_source(tmp_path / "f") == "features"
    assert sniff_source(tmp_path / "g") == "features"
    assert sniff_source(tmp_path / "lm") == "landmarks"
    assert sniff_source(tmp_path / "empty") is None
    assert sniff_source(tmp_path / "nowhere") is None
    assert sample_noun({"source": "wlasl"}) == "videos"
    assert sample_noun({"source": "video_folder"}) == "videos"
    assert sample_noun({"source": "features"}) == "arrays"
    assert sample_noun({"source": "landmarks"}) == "recordings"
    assert sample_noun({"source": "sequences_csv", "window_size": None}) == "recordings"
    assert sample_noun({"source": "sequences_csv", "window_size": 30}) == "windows"


def plain(renderable) -> str:
    console = Console(width=60, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def test_per_class_wording_follows_the_source():
    report = {
        "num_classes": 2,
        "train": {"listed": 4, "present": 4, "missing": 0, "unreadable": 0},
        "classes": {"per_class_min": 2, "per_class_mean": 2.0, "per_class_max": 2},
    }
    assert "train arrays per class" in plain(report_view({**report, "source": "features"}))
    assert "train videos per class" in plain(report_view({**report, "source": "wlasl"}))
    shown = plain(report_view({**report, "source": "landmarks"}))
    assert "train recordings per class" in shown and "videos" not in shown
    assert "every class has training recordings" in shown
    gap = {**report, "classes": {**report["classes"], "without_train": ["b"]}}
    assert "no training array (1): b" in plain(report_view(gap, "arrays"))
    assert "train windows per class" in plain(report_view(report, "windows"))


async def test_features_root_gets_the_features_presets_and_a_valid_one(fx, features_root):
    async with make_app().run_test(size=WIDE) as pilot:
        nr = await open_new_run(pilot)
        await until(pilot, lambda: any(d["label"] == "binary-clips" for d in nr.datasets))
        ds = next(d for d in nr.datasets if d["label"] == "binary-clips")
        assert ds["source"] == "features"  # from its files: the name says nothing
        names = [p["name"] for p in nr.fitting_presets(ds)]
        assert names == ["error-recognition-bigru", "error-recognition-mlp"]

        await pick(pilot, nr, "binary-clips")
        assert nr.preset["name"] == "error-recognition-bigru"  # the first: it validates
        pl = nr.query_one("#preset-list")
        assert [pl.get_option_at_index(i).id for i in range(pl.option_count)] == names
        assert pl.get_option_at_index(pl.highlighted).id == nr.preset["name"]
        await previewed(pilot, nr, lambda: nr.effective is not None)
        assert nr.preview_error is None
        assert nr.effective["data"]["root"] == str(features_root)

        # the data check of a features root counts arrays, not videos
        panel = nr.query_one("#data-check", DataCheckPanel)
        await until(pilot, lambda: panel.state in ("ok", "error"), timeout=60, what="check")
        assert panel.state == "ok", panel.error
        assert panel.noun == "arrays"
        drawn = visible_text(panel)
        assert "train arrays per class" in drawn and "videos" not in drawn


async def test_a_preset_that_does_not_validate_is_not_preselected(fx, tmp_path):
    """The first fitting preset fails with the form's overrides (a key of the temporal CNN
    only): the next one, which validates, is offered; the first when none does."""
    from tests.seq_fixtures import make_activity_csvs

    root = tmp_path / "walks"
    make_activity_csvs(root, recordings_per_activity=2, frames=(40, 50))
    save_settings(
        Settings(dataset_roots={"sequences_csv-walks": str(root)}), tmp_path / "config.yaml"
    )
    async with make_app().run_test(size=WIDE) as pilot:
        nr = await open_new_run(pilot)
        await until(pilot, lambda: any(d["label"] == "sequences_csv-walks" for d in nr.datasets))
        ds = next(d for d in nr.datasets if d["label"] == "sequences_csv-walks")
        names = [p["name"] for p in nr.fitting_presets(ds)]
        assert names == ["activity-lstm", "sequence-classifier"]
        nr.query_one("#ov-sets", Input).value = "model.channels=[16,32,32]"
        await pick(pilot, nr, "sequences_csv-walks")
        assert nr.preset["name"] == "sequence-classifier"
        pl = nr.query_one("#preset-list")
        assert pl.get_option_at_index(pl.highlighted).id == "sequence-classifier"
        await previewed(pilot, nr, lambda: nr.effective is not None)
        assert nr.preview_error is None and nr.effective["model"]["channels"] == [16, 32, 32]

        # an override no preset takes: the first is offered, with the error
        await pick(pilot, nr, "demo")
        nr.query_one("#ov-sets", Input).value = "model.nonsense=1"
        await pick(pilot, nr, "sequences_csv-walks")
        assert nr.preset["name"] == "activity-lstm"
        await until(pilot, lambda: nr.preview_error is not None)
        assert "model.nonsense" in nr.preview_error


async def test_quick_dataset_moves_leave_list_and_preset_agreeing(fx, features_root):
    """Two datasets highlighted before the screen handles either: the preset list is
    refilled twice, and the event of the first refill's preset (now gone) must not pick
    a preset the list does not show."""
    async with make_app().run_test(size=NARROW) as pilot:
        nr = await open_new_run(pilot)
        await until(pilot, lambda: len(nr.datasets) >= 3)
        pl = nr.query_one("#preset-list")
        picked = []
        pick_preset = nr._pick_preset

        def spy(p):
            shown = pl.get_option_at_index(pl.highlighted).id if pl.option_count else None
            picked.append((p["name"], shown))
            pick_preset(p)

        nr._pick_preset = spy
        ol = nr.query_one("#dataset-list")
        ol.highlighted = 1  # translation demo
        ol.highlighted = 2  # binary-clips
        await until(pilot, lambda: nr.dataset["label"] == "binary-clips")
        await pilot.pause(0.3)
        assert picked and all(name == shown for name, shown in picked), picked
        assert nr.preset["name"] == pl.get_option_at_index(pl.highlighted).id
        assert nr.preset["data"]["source"] == "features"


# --------------------------------------------------------------------------- focus


async def test_focus_is_easy_to_see(fx):
    async with make_app().run_test(size=NARROW) as pilot:
        nr = await open_new_run(pilot)
        epochs, lr = nr.query_one("#ov-epochs", Input), nr.query_one("#ov-lr", Input)
        boxes = nr.query_one("#nr-overrides"), nr.query_one("#nr-datasets")
        nr.query_one("#dataset-list").focus()
        await pilot.pause(0.1)
        idle_input, idle_box = epochs.styles.background, boxes[0].styles.border_top
        focus_box = boxes[1].styles.border_top
        epochs.focus()
        await pilot.pause(0.1)
        assert epochs.styles.background != lr.styles.background
        assert epochs.styles.background != idle_input
        assert boxes[0].styles.border_top != idle_box  # the panel that holds the focus
        assert boxes[1].styles.border_top != focus_box
        label = epochs.parent.query_one(".field-label")
        other = lr.parent.query_one(".field-label")
        assert label.styles.color != other.styles.color

        # the device select and the lists show their focus too
        from textual.widgets._select import SelectCurrent

        current = nr.query_one("#ov-device").query_one(SelectCurrent)
        idle_select = current.styles.background
        nr.query_one("#ov-device").focus()
        await pilot.pause(0.1)
        assert current.styles.background != idle_select
        presets = nr.query_one("#preset-list")
        idle_list = presets.get_component_styles("option-list--option-highlighted").background
        presets.focus()
        await pilot.pause(0.1)
        focused = presets.get_component_styles("option-list--option-highlighted").background
        assert focused != idle_list


# --------------------------------------------------------------------------- no edit lost


@pytest.fixture
def fake_start(monkeypatch):
    """launch.start_run making the real run folder (config.json as the engine would get
    it) without starting a training."""
    started = []

    def start_run(cfg, runs_root, **kw):
        run_dir = launch.prepare_run(cfg, runs_root)
        started.append(run_dir)
        return launch.RunHandle(run_dir, None)

    monkeypatch.setattr(launch, "start_run", start_run)
    return started


async def test_typing_then_launching_at_once_keeps_the_edit(fx, fake_start):
    async with make_app().run_test(size=NARROW) as pilot:
        nr = await open_new_run(pilot)
        nr.query_one("#ov-epochs", Input).focus()
        await pilot.pause()
        # no pause between the last key and the launch key: the field is still focused and
        # the debounced preview has not run
        await pilot.press("end", *["backspace"] * 4, "7", "ctrl+l")
        await until(pilot, lambda: isinstance(pilot.app.screen, LiveRunScreen), what="launch")
        assert len(fake_start) == 1
        cfg = json.loads((fake_start[0] / runs.CONFIG_JSON).read_text())
        assert cfg["training"]["max_epochs"] == 7

        # and a free-form override typed in the last field, launched at once
        await pilot.press("escape")
        nr = await open_new_run(pilot)
        nr.query_one("#ov-sets", Input).focus()
        await pilot.press(*"training.patience=2", "ctrl+l")
        await until(pilot, lambda: len(fake_start) == 2, what="the second launch")
        cfg = json.loads((fake_start[1] / runs.CONFIG_JSON).read_text())
        assert cfg["training"]["patience"] == 2 and cfg["training"]["max_epochs"] == 12


async def test_an_edited_field_survives_a_preset_switch(fx, features_root):
    async with make_app().run_test(size=WIDE) as pilot:
        nr = await open_new_run(pilot)
        await pick(pilot, nr, "binary-clips")
        assert nr.preset["name"] == "error-recognition-bigru"
        epochs, batch = nr.query_one("#ov-epochs", Input), nr.query_one("#ov-batch", Input)
        assert (epochs.value, batch.value) == ("25", "8")
        epochs.value = "7"  # edited; batch size left as the preset has it
        nr.query_one("#preset-list").highlighted = 1
        await until(pilot, lambda: nr.preset["name"] == "error-recognition-mlp")
        assert epochs.value == "7"  # kept
        assert batch.value == "1"  # the MLP preset's
        assert nr.overrides()[0] == ["training.max_epochs=7"]
        # the catalog arriving again (after the settings screen) keeps it too
        nr.load_catalog()
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.2)
        assert epochs.value == "7" and nr.preset["name"] == "error-recognition-mlp"
        # even while an override does not resolve: the preset picked is not swapped
        nr.query_one("#ov-sets", Input).value = "model.nonsense=1"
        nr.load_catalog()
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.2)
        assert nr.preset["name"] == "error-recognition-mlp"
        assert nr.query_one("#ov-sets", Input).value == "model.nonsense=1"


# --------------------------------------------------------------------------- snapshots


async def _typed_overrides(pilot) -> None:
    nr = await open_new_run(pilot)
    nr.query_one("#ov-epochs", Input).value = "3"
    nr.query_one("#ov-sets", Input).value = "model.hidden_size=32"
    await previewed(pilot, nr, lambda: "model.hidden_size" in nr.changed)
    nr.query_one("#ov-sets", Input).focus()
    for inp in nr.query(Input):
        inp.cursor_blink = False
    await pilot.pause(0.2)


@pytest.mark.parametrize("size", [NARROW, WIDE], ids=["80x24", "200x60"])
def test_snapshot_new_run_with_overrides(fx, snap_compare, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=_typed_overrides)


def test_snapshot_new_run_error_narrow(fx, snap_compare):
    async def before(pilot):
        nr = await open_new_run(pilot)
        nr.query_one("#ov-sets", Input).value = "optim.lrr=1"
        await until(pilot, lambda: nr.preview_error is not None)
        for inp in nr.query(Input):
            inp.cursor_blink = False
        await pilot.pause(0.2)

    assert snap_compare(make_app(), terminal_size=NARROW, run_before=before)
