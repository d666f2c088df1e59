from pathlib import Path

import pytest

from vidcolor import ConfigError, load_config
from vidcolor.config import Config

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def test_defaults():
    cfg = load_config()
    assert cfg == Config()
    assert cfg.encode.codec == "libx264" and cfg.runtime.device == "auto"


@pytest.mark.parametrize("path", sorted(p for p in CONFIGS.glob("*.yaml") if not p.name.startswith("train-")),
                         ids=lambda p: p.name)
def test_shipped_configs_load(path):
    load_config(path)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("train-*.yaml")), ids=lambda p: p.name)
def test_shipped_training_configs_load(path):
    import importlib

    kind = path.stem.removeprefix("train-")  # train-NAME.yaml is read by vidcolor.train.NAME
    cfg = importlib.import_module(f"vidcolor.train.{kind}").load_train_config(path)
    assert cfg.steps > 0 and Path(cfg.out).is_absolute()


def test_training_config_rejects_unknown_keys(tmp_path):
    from vidcolor.train.exemplar import load_train_config

    (tmp_path / "configs").mkdir()
    bad = tmp_path / "configs" / "train-x.yaml"
    bad.write_text("stepz: 10\n")
    with pytest.raises(ConfigError, match="unknown key 'stepz'"):
        load_train_config(bad)
    bad.write_text("exemplar: {temprature: 0.1}\n")
    with pytest.raises(ConfigError, match="exemplar.temprature"):
        load_train_config(bad)


def test_default_yaml_spells_out_the_defaults():
    assert load_config(CONFIGS / "default.yaml") == Config()


def test_file_then_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("encode:\n  crf: 20\n  preset: slow\nruntime:\n  batch_size: 4\n")
    cfg = load_config(p, {"encode.crf": 12, "runtime.batch_size": None})
    assert cfg.encode.crf == 12  # the command line wins
    assert cfg.encode.preset == "slow"
    assert cfg.runtime.batch_size == 4  # unset options keep the file's value


@pytest.mark.parametrize("text, match", [
    ("encode:\n  crff: 3\n", r"unknown key 'encode.crff' \(valid: encode.codec"),
    ("colourizer: x\n", "unknown key 'colourizer'"),
    ("encode:\n  crf: high\n", "encode.crf must be an integer"),
    ("runtime:\n  batch_size: -1\n", r"runtime.batch_size must be in \[0, 1024\], got -1"),
    ("runtime: 3\n", "runtime must be a mapping"),
    ("encode: [1, 2\n", "not valid YAML"),
    ("transfer:\n  window: 4\n", "window must be a positive odd"),
    ("runtime:\n  device: tpu\n", "runtime.device must be"),
    ("exemplar:\n  flow_preset: slow\n", "exemplar.flow_preset must be one of ultrafast, fast, medium, fine"),
    ("exemplar:\n  check_preset: slow\n", "exemplar.check_preset must be one of ultrafast, fast, medium, fine"),
    ("temporal:\n  flow_preset: finer\n", "temporal.flow_preset must be one of ultrafast, fast, medium, fine"),
    ("temporal:\n  mode: both\n", "temporal.mode must be one of off, forward, bidirectional, got 'both'"),
    ("temporal:\n  strength: 1.0\n", r"temporal.strength must be in \[0, 1\), got 1.0"),
    ("exemplar:\n  gate_low: 0.6\n", "exemplar.gate_low must be at most exemplar.gate_high, got 0.6 > 0.45"),
    ("auto:\n  temperature: 0\n", r"auto.temperature must be in \(0, 10\], got 0.0"),
    ("shots:\n  histogram:\n    window: 9\n", r"shots.histogram.window must be in \[1, 8\], got 9"),
    ("shots:\n  transnet:\n    threshold: 0.3\n    low_threshold: 0.4\n",
     "shots.transnet.low_threshold must be at most shots.transnet.threshold"),
    ("shots:\n  histogramm: {}\n", r"unknown key 'shots.histogramm' \(valid: shots.detector, shots.histogram, "),
])
def test_bad_configs_name_file_and_key(tmp_path, text, match):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=match) as e:
        load_config(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)  # one line, naming the file


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_config_is_frozen():
    cfg = load_config()
    with pytest.raises(Exception):
        cfg.encode.crf = 3


def test_every_flow_preset_a_config_accepts_makes_a_dis_flow():
    from vidcolor.config import FLOW_PRESETS
    from vidcolor.ops import dis_flow

    for name in FLOW_PRESETS:
        assert dis_flow(name) is not None
    with pytest.raises(ValueError, match="unknown DIS preset"):
        dis_flow("slow")
