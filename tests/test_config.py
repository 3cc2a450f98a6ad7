import json

import pytest
import yaml

from engine import config as c
from engine.config import ConfigError

GUIDE = {
    # preset: batch, max epochs, lr, weight decay, label smoothing, class-weighted, warmup, patience, clip
    "wlasl100-conservative": (16, 30, 1e-4, 0.05, 0.1, True, 0.1, 5, 1.0),
    "wlasl100-aggressive": (12, 50, 5e-5, 0.1, 0.15, True, 0.15, 7, 0.5),
    "wlasl300-recommended": (12, 50, 5e-5, 0.08, 0.15, True, 0.15, 7, 1.0),
    "wlasl300-optimistic": (16, 70, 8e-5, 0.06, 0.12, True, 0.12, 10, 1.5),
}


@pytest.mark.parametrize("name", sorted(GUIDE))
def test_wlasl_presets_match_the_guide(name):
    p = c.resolve(preset=name)
    got = (
        p.data.batch_size,
        p.training.max_epochs,
        p.optim.lr,
        p.optim.weight_decay,
        p.training.label_smoothing,
        p.training.class_weighted,
        p.optim.warmup_ratio,
        p.training.patience,
        p.training.grad_clip,
    )
    assert got == GUIDE[name]
    assert p.data.source == "wlasl" and p.model.name == "videomae"
    assert p.data.subset == int(name[5:8])


def test_every_preset_validates_and_has_a_description():
    names = c.preset_names()
    assert {"demo", *GUIDE} <= set(names)
    for p in c.presets():
        assert p.description and "\n" not in p.description


def test_precedence_preset_file_set(tmp_path):
    f = tmp_path / "over.yaml"
    f.write_text(
        yaml.safe_dump({"optim": {"lr": 0.5, "weight_decay": 0.2}, "data": {"batch_size": 3}})
    )
    cfg = c.resolve(preset="demo", config_file=f, sets=["optim.lr=0.25"])
    assert cfg.optim.lr == 0.25  # --set beats the file
    assert cfg.optim.weight_decay == 0.2  # the file beats the preset
    assert cfg.data.batch_size == 3
    assert cfg.model.name == "bigru"  # the preset fills the rest
    assert cfg.name == "demo"


def test_set_values_parse_as_yaml():
    cfg = c.resolve(
        preset="demo",
        sets=[
            "training.patience=null",
            "data.augment=false",
            "data.parts=[pose, right_hand]",
            "model.name=videomae",  # the family with config_overrides
            "model.config_overrides={hidden_size: 32, num_layers: 1}",
            "optim.lr=1e-4",
        ],
    )
    assert cfg.training.patience is None
    assert cfg.data.augment is False
    assert cfg.data.parts == ["pose", "right_hand"]
    assert cfg.model.config_overrides == {"hidden_size": 32, "num_layers": 1}
    assert cfg.optim.lr == pytest.approx(1e-4)


def test_unknown_key_names_key_and_valid_keys():
    with pytest.raises(ConfigError) as e:
        c.resolve(preset="demo", sets=["optim.lrr=0.1"])
    msg = str(e.value)
    assert "optim.lrr" in msg and "weight_decay" in msg and "\n" not in msg


def test_unknown_section_lists_sections(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("trainin:\n  max_epochs: 3\n")
    with pytest.raises(ConfigError) as e:
        c.resolve(config_file=f)
    assert "trainin" in str(e.value) and "training" in str(e.value)


def test_wrong_type_names_key():
    with pytest.raises(ConfigError) as e:
        c.resolve(preset="demo", sets=["data.batch_size=many"])
    msg = str(e.value)
    assert "data.batch_size" in msg and "many" in msg and "num_workers" in msg


def test_nested_unknown_key():
    with pytest.raises(ConfigError) as e:
        c.resolve(preset="demo", sets=["data.synthetic.colour=red"])
    assert "data.synthetic.colour" in str(e.value) and "num_classes" in str(e.value)


def test_missing_preset_lists_available():
    with pytest.raises(ConfigError) as e:
        c.resolve(preset="wlasl9000")
    assert "wlasl9000" in str(e.value) and "demo" in str(e.value)


def test_bad_set_syntax_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="section.key=value"):
        c.resolve(preset="demo", sets=["lr"])
    with pytest.raises(ConfigError, match="not found"):
        c.resolve(config_file=tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot parse"):
        c.resolve(config_file=bad)


def test_saved_config_json_reproduces_exactly(tmp_path):
    cfg = c.resolve(preset="demo", sets=["optim.lr=0.002", "data.synthetic.num_classes=4"])
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg.to_dict()))
    again = c.resolve(config_file=p)
    assert again == cfg


def test_flatten():
    assert c.flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}
