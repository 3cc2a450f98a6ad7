"""Options per data source and per model family: the unions, their errors, switching source
or family between layers, the old flat layout, and the catalog as the one registry."""

from __future__ import annotations

import inspect
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from engine import catalog
from engine import config as c
from engine.config import ConfigError, DataOptions, ModelOptions

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[1]
LEGACY_DEFAULT = DATA / "legacy_config_default.json"
LEGACY_WLASL = DATA / "legacy_config_wlasl_videomae.json"
LEGACY_MINIROCKET = DATA / "legacy_config_minirocket.json"


def in_run_folder(tmp_path: Path, fixture: Path) -> Path:
    """``fixture`` as the config.json of a run folder (one with run.json)."""
    run = tmp_path / "20240101-000000-old"
    run.mkdir()
    shutil.copy(fixture, run / "config.json")
    (run / "run.json").write_text('{"id": "20240101-000000-old", "status": "completed"}')
    return run / "config.json"


# --------------------------------------------------------------------------- the catalog


@pytest.mark.parametrize("name", catalog.source_names())
def test_each_source_names_its_own_options_model(name):
    klass = c.options_class("data", name)
    assert issubclass(klass, DataOptions)
    assert catalog.SOURCES[name].options == f"{catalog.SOURCES[name].module}:{klass.__name__}"
    assert klass().source == name  # it defaults to its own source


@pytest.mark.parametrize("name", catalog.model_names())
def test_each_model_names_its_options_model(name):
    klass = c.options_class("model", name)
    assert issubclass(klass, ModelOptions) and klass.__module__ == "engine.models.options"
    assert c.options_class("model", klass().name) is klass  # its default name is its own
    cfg = c.validate({"model": {"name": name.upper()}})
    assert type(cfg.model) is klass and cfg.model.name == name.upper()


def test_source_modules_and_options_import_without_torch():
    modules = [s.module for s in catalog.SOURCES.values()]
    code = "import sys; sys.modules['torch'] = None\n" + "\n".join(
        f"import {m}" for m in [*modules, "engine.models.options", "engine.config"]
    )
    code += "\nfrom engine import config\nfor s in config.catalog.SOURCES:\n"
    code += "    config.validate({'data': {'source': s}})\n"
    code += "for m in config.catalog.MODELS:\n    config.validate({'model': {'name': m}})\n"
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


# defaults changed since the flat sections, on purpose (a saved run's config.json holds every
# key, num_workers: 0 included, so an old run still means what it meant)
CHANGED_ON_PURPOSE = {("data", "num_workers")}  # null: the thread budget picks (issue 14)


def test_the_old_flat_keys_all_still_exist_with_their_old_defaults():
    """Behaviour-preserving: every key of the flat sections lives on in at least one source
    (family) with the same default, and the frozen table is what the old code wrote."""
    old = json.loads(LEGACY_DEFAULT.read_text())
    for section, key in (("data", "source"), ("model", "name")):
        assert c.FLAT_DEFAULTS[section] == {k: v for k, v in old[section].items() if k != key}
        names = catalog.source_names() if section == "data" else catalog.model_names()
        owners: dict[str, list[str]] = {}
        for name in names:
            dumped = c.options_class(section, name)().model_dump(mode="json")
            for k, v in dumped.items():
                if k in c.FLAT_DEFAULTS[section]:
                    if (section, k) not in CHANGED_ON_PURPOSE:
                        assert v == c.FLAT_DEFAULTS[section][k], (section, name, k)
                    owners.setdefault(k, []).append(name)
        assert set(owners) == set(c.FLAT_DEFAULTS[section]), section


def test_a_key_lives_only_where_it_is_read():
    assert "window_size" not in c.options_class("data", "wlasl").model_fields
    assert "subset" in c.options_class("data", "wlasl").model_fields
    assert "num_frames" not in c.options_class("data", "landmarks").model_fields
    assert "parts" in c.options_class("data", "synthetic").model_fields
    assert "synthetic" not in c.options_class("data", "landmarks").model_fields
    video = c.options_class("model", "videomae").model_fields
    assert {"pretrained", "freeze_backbone_epochs", "config_overrides"} <= set(video)
    assert "dropout" not in video and "input_norm" not in video
    for name in catalog.model_names():
        if name not in ("videomae", "multistream_seq2seq"):  # the families with a backbone
            fields = c.options_class("model", name).model_fields
            assert "pretrained" not in fields and "freeze_backbone_epochs" not in fields
    assert "input_norm" not in c.options_class("model", "minirocket").model_fields
    assert "dropout" not in c.options_class("model", "minirocket").model_fields


# --------------------------------------------------------------------------- errors


def test_an_unknown_key_lists_the_keys_of_that_source():
    with pytest.raises(ConfigError) as e:
        c.resolve(preset="wlasl100-conservative", sets=["data.window_size=30"])
    msg = str(e.value)
    assert "unknown key 'data.window_size'; valid keys of data (source wlasl): " in msg
    valid = msg.split(": ")[-1].split(", ")
    assert {"subset", "num_frames", "batch_size"} <= set(valid) and "window_size" not in valid


def test_an_unknown_key_lists_the_keys_of_that_model():
    with pytest.raises(ConfigError) as e:
        c.resolve(preset="wlasl100-conservative", sets=["model.hidden_size=8"])
    msg = str(e.value)
    assert "unknown key 'model.hidden_size'; valid keys of model (name videomae): " in msg
    assert "pretrained" in msg and "\n" not in msg


def test_a_bad_value_lists_the_keys_of_that_source():
    with pytest.raises(ConfigError) as e:
        c.resolve(preset="activity-lstm", sets=["data.stride=often"])
    msg = str(e.value)
    assert "data.stride" in msg and "(source sequences_csv)" in msg and "window_size" in msg


@pytest.mark.parametrize(
    "sets,words",
    [
        (["data.source=webcam"], ["'webcam'", "data.source", *catalog.source_names()]),
        (["model.name=resnet"], ["'resnet'", "model.name", *catalog.model_names()]),
    ],
)
def test_an_unknown_name_lists_the_catalog(sets, words):
    with pytest.raises(ConfigError) as e:
        c.resolve(preset="demo", sets=sets)
    msg = str(e.value)
    assert all(w in msg for w in words) and "\n" not in msg


def test_model_names_are_case_insensitive():
    cfg = c.resolve(preset="demo", sets=["model.name=BiLSTM"])
    assert cfg.model.name == "BiLSTM" and type(cfg.model).__name__ == "RecurrentOptions"
    assert cfg.model.hidden_size == 64  # the preset's, kept: the same options model
    with pytest.raises(ValueError, match="not one of"):
        c.options_class("model", "mlp")(name="bigru")


# --------------------------------------------------------------------------- switching


def test_a_later_set_switches_the_source():
    cfg = c.resolve(preset="demo", sets=["data.source=sequences_csv", "data.root=/data/x"])
    assert cfg.data.source == "sequences_csv" and cfg.data.root == "/data/x"
    assert cfg.data.batch_size == 16  # a key both have stays
    assert "synthetic" not in cfg.to_dict()["data"] and "max_frames" not in cfg.to_dict()["data"]
    assert cfg.model.hidden_size == 64  # the model section is untouched


def test_keys_after_the_switch_stay_strict():
    with pytest.raises(ConfigError, match=r"'data.max_frames'.*\(source sequences_csv\)"):
        c.resolve(preset="demo", sets=["data.source=sequences_csv", "data.max_frames=32"])
    with pytest.raises(ConfigError, match=r"'data.window_size'.*\(source synthetic\)"):
        c.resolve(preset="activity-lstm", sets=["data.source=synthetic", "data.window_size=9"])


def test_a_config_file_switches_the_source_over_a_preset(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text(yaml.safe_dump({"data": {"source": "wlasl", "root": "/v", "subset": 100}}))
    cfg = c.resolve(preset="demo", config_file=f)
    assert (
        cfg.data.source == "wlasl" and cfg.data.subset == 100 and cfg.dataset_label() == "wlasl100"
    )
    # keys in the same layer as the switch stay strict
    f.write_text(yaml.safe_dump({"data": {"source": "wlasl", "parts": ["pose"]}}))
    with pytest.raises(ConfigError, match=r"unknown key 'data.parts'.*\(source wlasl\)"):
        c.resolve(preset="demo", config_file=f)


def test_a_later_layer_switches_the_model_family():
    cfg = c.resolve(preset="sequence-classifier", sets=["model.name=minirocket"])
    assert type(cfg.model).__name__ == "MiniRocketOptions"  # the CNN's keys are gone
    cfg = c.resolve(preset="sequence-classifier", sets=["model.name=tcn_attention"])
    assert cfg.model.channels == [32, 64, 64] and cfg.model.input_norm == "instance_auto"
    with pytest.raises(ConfigError, match=r"'model.hidden_size'.*\(name minirocket\)"):
        c.resolve(preset="demo", sets=["model.name=minirocket", "model.hidden_size=8"])


def test_a_switch_by_cli_flags_and_sets_keeps_the_flags(tmp_path):
    """``--preset wlasl... --set data.source=video_folder --data-root X`` (flags < --set)."""
    cfg = c.resolve(
        preset="wlasl100-conservative",
        sets=["data.source=video_folder"],
        extra={"data": {"root": str(tmp_path)}},
    )
    assert cfg.data.source == "video_folder" and cfg.data.root == str(tmp_path)
    assert cfg.data.uint8_clips is True  # a video key of the preset, kept
    assert "subset" not in cfg.to_dict()["data"]


def test_a_sweep_over_model_families_keeps_what_each_has(tmp_path):
    from slr_tui import sweep

    plan = sweep.plan(
        "demo", None, ["model.hidden_size=8"], ["model.name=bigru,minirocket"], {}, tmp_path
    )
    got = {m.cfg.model.name: m.cfg.model for m in plan.members}
    assert (
        got["bigru"].hidden_size == 8 and "hidden_size" not in type(got["minirocket"]).model_fields
    )


# --------------------------------------------------------------------------- the old layout


def test_an_old_flat_config_json_in_a_run_folder_loads(tmp_path):
    path = in_run_folder(tmp_path, LEGACY_DEFAULT)
    assert c.is_saved_run_config(path)
    cfg = c.validate(c.load_file(path), str(path))
    # today's defaults, but for what the old file says explicitly of a default changed since
    now = c.RunConfig()
    want = now.model_copy(update={"data": now.data.model_copy(update={"num_workers": 0})})
    assert cfg == want and cfg.to_dict() == want.to_dict()


def test_an_old_wlasl_videomae_config_json_loads(tmp_path):
    path = in_run_folder(tmp_path, LEGACY_WLASL)
    cfg = c.validate(c.load_file(path), str(path))
    assert cfg == c.resolve(preset="wlasl100-conservative")
    assert cfg.model.pretrained == "MCG-NJU/videomae-base-finetuned-kinetics"
    assert cfg.dataset_label() == "wlasl100"
    again = c.resolve(config_file=path)  # `slr run --config runs/X/config.json`
    assert again == cfg


def test_an_old_run_with_foreign_keys_off_their_defaults_loads(tmp_path):
    """A real benchmark run: minirocket over a preset's CNN keys (no effect then either)."""
    path = in_run_folder(tmp_path, LEGACY_MINIROCKET)
    cfg = c.validate(c.load_file(path), str(path))
    assert type(cfg.model).__name__ == "MiniRocketOptions" and cfg.data.window_size is None
    assert cfg.data.noise_std == 0.0 and cfg.data.standardize is False
    raw = json.loads(LEGACY_MINIROCKET.read_text())
    assert c.validate(raw, "x", saved=True) == cfg
    assert "channels" not in c.upgrade(raw, saved=True)["model"]


def test_a_user_file_with_foreign_keys_off_their_defaults_stays_strict(tmp_path):
    f = tmp_path / "mine.json"  # the same file, outside a run folder: written by someone
    shutil.copy(LEGACY_MINIROCKET, f)
    with pytest.raises(ConfigError, match=r"unknown key 'model\.\w+'.*\(name minirocket\)"):
        c.resolve(config_file=f)
    f = tmp_path / "config.json"  # named like one, but not in a run folder
    shutil.copy(LEGACY_MINIROCKET, f)
    assert not c.is_saved_run_config(f)
    with pytest.raises(ConfigError, match="unknown key"):
        c.resolve(config_file=f)


def test_a_flat_user_file_loads_when_its_foreign_keys_are_at_their_old_defaults(tmp_path):
    f = tmp_path / "mine.yaml"
    old = json.loads(LEGACY_DEFAULT.read_text())  # e.g. `slr presets show` of an old version
    old["data"].update(source="sequences_csv", root="/d", window_size=None)
    old["model"].update(name="temporal_cnn", channels=[8, 8])
    f.write_text(yaml.safe_dump(old))
    cfg = c.resolve(config_file=f)
    assert cfg.data.window_size is None and cfg.model.channels == [8, 8]
    assert (
        "max_frames" not in cfg.to_dict()["data"] and "hidden_sizes" not in cfg.to_dict()["model"]
    )
    # over a preset of another source: its own layer decides which keys are foreign
    assert c.resolve(preset="demo", config_file=f).data == cfg.data
    # a foreign key off its old default is an error, and so is a key nobody ever had
    for bad in ({"rotate_deg": 3.0}, {"window_sise": 30}):
        f.write_text(yaml.safe_dump({"data": {"source": "wlasl", **bad}}))
        with pytest.raises(ConfigError, match=f"unknown key 'data.{next(iter(bad))}'"):
            c.resolve(config_file=f)


def test_set_stays_strict_even_at_an_old_default():
    with pytest.raises(ConfigError, match="unknown key 'data.window_size'"):
        c.resolve(preset="wlasl100-conservative", sets=["data.window_size=30"])


def test_old_defaults_compare_by_value_not_by_loose_equality():
    assert c._is_default([0.8, 1.2], [0.8, 1.2]) and c._is_default(8, 8.0)
    assert not c._is_default(1, True) and not c._is_default(True, 1)
    assert c._is_default({"num_classes": 10}, c.FLAT_DEFAULTS["data"]["synthetic"])
    assert not c._is_default({"num_classes": 4}, c.FLAT_DEFAULTS["data"]["synthetic"])
    assert c.upgrade("not a mapping") == "not a mapping"
    assert c.upgrade({"data": {"source": 3, "window_size": 30}}) == {
        "data": {"source": 3, "window_size": 30}
    }


def test_viewers_read_an_old_run_config_per_source(tmp_path):
    """tables/compare and `slr show` read config.json through runs.clean_config."""
    from engine import runs

    path = in_run_folder(tmp_path, LEGACY_WLASL)
    flat = c.flatten(runs.clean_config(json.loads(path.read_text())))
    assert flat["data.subset"] == 100 and "data.window_size" not in flat
    assert "model.hidden_size" not in flat and flat["model.name"] == "videomae"
    meta = runs.rebuild_meta(path.parent)
    assert meta is not None and meta.get("dataset") == "wlasl100"


# --------------------------------------------------------------------------- extension


def test_a_new_source_is_one_module_and_one_catalog_line(tmp_path, monkeypatch):
    (tmp_path / "tiny_source.py").write_text(
        textwrap.dedent(
            """
            from typing import Literal

            from engine.config import DataOptions


            class TinyData(DataOptions):
                source: Literal["tiny"] = "tiny"
                rows: int = 3


            def build(cfg):
                return ("built", cfg.data.rows)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    sources = {
        **catalog.SOURCES,
        "tiny": catalog.Source("tiny_source", "tiny_source:TinyData", "t"),
    }
    monkeypatch.setattr(catalog, "SOURCES", sources)
    cfg = c.resolve(preset="demo", sets=["data.source=tiny", "data.rows=5"])
    assert cfg.data.rows == 5 and cfg.to_dict()["data"]["rows"] == 5

    from engine.data import build_data

    assert build_data(cfg) == ("built", 5)
    with pytest.raises(ConfigError, match=r"valid keys of data \(source tiny\): .*rows"):
        c.resolve(sets=["data.source=tiny", "data.cols=5"])


# --------------------------------------------------------------------------- model classes


def _fake_bundle(num_classes=3, input_dim=6):
    from types import SimpleNamespace

    names = [f"c{i}" for i in range(num_classes)]
    train = SimpleNamespace(texts=["una frase", "otra frase"])  # a translation tokenizer's
    return SimpleNamespace(
        num_classes=num_classes, input_dim=input_dim, class_names=names, train=train
    )


@pytest.mark.parametrize("name", catalog.model_names())
def test_every_family_builds_an_slr_model(name):
    pytest.importorskip("torch")
    from engine.models import build_model
    from engine.models.base import SLRModel

    sets = [f"model.name={name}"]
    if name == "minirocket":
        pytest.importorskip("aeon")
        sets.append("model.num_kernels=84")
    if name == "videomae":
        pytest.importorskip("transformers")
        sets = [
            "data.source=wlasl",
            "data.num_frames=2",
            "data.image_size=32",
            *sets,
            "model.config_overrides={hidden_size: 32, num_hidden_layers: 1, "
            "num_attention_heads: 2, intermediate_size: 64, patch_size: 16, tubelet_size: 2}",
        ]
    if name == "multistream_seq2seq":
        sets = ["data.source=translation", *sets]
    cfg = c.resolve(preset="demo", sets=sets)
    model = build_model(cfg, _fake_bundle())
    assert isinstance(model, SLRModel)
    assert model.is_classical == (name == "minirocket")


def test_videomae_on_landmarks_is_a_model_error():
    pytest.importorskip("transformers")
    from engine.models import ModelError, build_model

    cfg = c.resolve(preset="demo", sets=["model.name=videomae"])
    with pytest.raises(ModelError, match="video clips"):
        build_model(cfg, _fake_bundle())


def test_ctc_hooks_take_the_base_signatures():
    pytest.importorskip("torch")
    from engine.models.base import SLRModel
    from engine.models.ctc import CTCClassifier

    for hook in ("compute_loss", "class_scores", "frame_stats"):
        ours = list(inspect.signature(getattr(CTCClassifier, hook)).parameters)
        assert ours == list(inspect.signature(getattr(SLRModel, hook)).parameters), hook


def test_ctc_loss_takes_class_weight_and_label_smoothing():
    torch = pytest.importorskip("torch")
    from engine.models.ctc import CTCClassifier

    model = CTCClassifier(4, 3, hidden_size=8, blank_penalty=0.1)
    batch = {"x": torch.randn(2, 5, 4), "mask": torch.ones(2, 5, dtype=torch.bool)}
    batch["label"] = torch.tensor([0, 2])
    out = model(batch)
    plain = model.compute_loss(out, batch)
    weighted = model.compute_loss(out, batch, class_weight=torch.tensor([1.0, 1.0, 1.0]))
    smoothed = model.compute_loss(out, batch, None, 0.1)  # no smoothing for CTC
    assert torch.allclose(plain, weighted) and torch.allclose(plain, smoothed)
