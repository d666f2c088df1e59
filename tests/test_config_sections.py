"""Each component owns its config section: a colorizer registered from outside the package
gets its own, read from the config file and checked there; renamed keys still work; the
shot detectors' settings reach the detector."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pytest
import torch

import synth_shots as ss
from vidcolor import ConfigError, colorize_video, load_config
from vidcolor.config import Config, HistogramConfig
from vidcolor.models.registry import Colorizer, register_colorizer
from vidcolor.settings import setting
from vidcolor.shots import detector_from_config


@dataclass(frozen=True)
class TintConfig:
    """The colour every pixel gets, as Cb/Cr in [-0.5, 0.5]."""

    cb: float = setting(0.0, ge=-0.5, le=0.5)
    cr: float = setting(0.0, ge=-0.5, le=0.5)


@register_colorizer("test-tint", config=TintConfig)
class _Tint(Colorizer):
    needs_reference = False
    chroma = "cbcr"

    def __init__(self, *, device, config: TintConfig):
        super().__init__(device)
        self.cfg = config

    def begin_shot(self, reference, choice=None):
        pass

    def colorize(self, L):
        n, _, h, w = L.shape
        return torch.tensor([self.cfg.cb, self.cfg.cr]).view(1, 2, 1, 1).expand(n, 2, h, w).clone()


def _clip(tmp_path):
    frames, _ = ss.cuts(lengths=(12, 12), seed=3, means=(80, 170))  # two shots, a hard cut at 12
    return ss.write_video(tmp_path / "two.mp4", frames)


def test_an_outside_colorizer_gets_its_section_from_the_config_file(tmp_path):
    p = tmp_path / "tint.yaml"
    p.write_text("colorizer: test-tint\ntest-tint:\n  cb: 0.2\n  cr: -0.1\nshots:\n  detector: histogram\n")
    cfg = load_config(p)
    assert cfg.extra["test-tint"] == TintConfig(0.2, -0.1)
    assert cfg.to_dict()["test-tint"] == {"cb": 0.2, "cr": -0.1}  # under its own key, as written
    assert Config.from_dict(cfg.to_dict()) == cfg
    report = colorize_video(_clip(tmp_path), tmp_path / "out.mp4", config=cfg)
    assert report.colorizer == "test-tint"
    codes = ss.chroma_means(tmp_path / "out.mp4")
    assert np.allclose(codes[:, 0], 128 + 224 * 0.2, atol=1.5), codes[:, 0]  # limited range: 224 codes per unit
    assert (codes[:, 1] < 128 - 224 * 0.05).all(), codes[:, 1]  # less red: as far as the gamut allows
    # without a section in the file it gets the section's defaults: no colour
    codes = ss.chroma_means(colorize_video(tmp_path / "two.mp4", tmp_path / "plain.mp4",
                                         config=load_config(overrides={"colorizer": "test-tint"})).output)
    assert np.allclose(codes, 128, atol=1.5)


@pytest.mark.parametrize("text, match", [
    ("test-tint:\n  cb: 0.7\n", r"^{path}: test-tint.cb must be in \[-0.5, 0.5\], got 0.7$"),
    ("test-tint:\n  cbb: 0.1\n", r"^{path}: unknown key 'test-tint.cbb' \(valid: test-tint.cb, test-tint.cr\)$"),
    ("test-tint:\n  cb: red\n", r"^{path}: test-tint.cb must be a number, got 'red'$"),
    ("test-tnit:\n  cb: 0.1\n", r"^{path}: unknown key 'test-tnit' \(valid: colorizer, .*test-tint"),
])
def test_an_outside_section_is_checked_like_a_built_in_one(tmp_path, text, match):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    import re

    assert re.search(match.format(path=re.escape(str(p))), str(e.value)), str(e.value)


@pytest.mark.parametrize("section, new", [("exemplar", "l_sigma_lab"), ("temporal", "l_sigma_8bit")])
def test_the_old_l_sigma_key_still_works_and_warns(tmp_path, caplog, section, new):
    p = tmp_path / "old.yaml"
    p.write_text(f"{section}:\n  l_sigma: 12.5\n")
    with caplog.at_level(logging.WARNING, logger="vidcolor"):
        cfg = load_config(p)
    assert getattr(getattr(cfg, section), new) == 12.5
    assert cfg != Config()
    warned = [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]
    assert warned == [f"{p}: {section}.l_sigma is deprecated: it is now {section}.{new} (same meaning and units); "
                      "the old key will go"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="vidcolor"):  # the command line's dotted keys too
        assert getattr(getattr(load_config(overrides={f"{section}.l_sigma": 9.0}), section), new) == 9.0
    assert any(f"{section}.l_sigma is deprecated" in r.getMessage() for r in caplog.records)
    p.write_text(f"{section}:\n  l_sigma: 12.5\n  {new}: 10.0\n")
    with pytest.raises(ConfigError, match=f"{section}.l_sigma and {section}.{new} are the same setting"):
        load_config(p)
    p.write_text(f"{section}:\n  l_sigma: -1\n")  # checked under its new name
    with pytest.raises(ConfigError, match=rf"{section}.{new} must be > 0, got -1"):
        load_config(p)


def test_the_temporal_l_sigma_in_8bit_codes_reaches_the_smoother():
    from vidcolor.temporal import TemporalSmoother

    sm = TemporalSmoother.from_config(load_config(overrides={"temporal.l_sigma_8bit": 11.0}).temporal)
    assert sm.l_sigma == 11.0
    sm.close()


def test_a_histogram_setting_from_the_file_reaches_the_detector(tmp_path):
    frames, expected = ss.cuts((20, 20, 20), seed=5)
    thumbs = [np.ascontiguousarray(f[::4, ::4]) for f in frames]
    cpu = torch.device("cpu")
    default = detector_from_config(load_config().shots, cpu)
    assert [t.boundary for t in default.detect(thumbs)] == [t.boundary for t in expected]
    p = tmp_path / "strict.yaml"
    p.write_text("shots:\n  detector: histogram\n  histogram:\n    min_score: 100.0\n    bins: 16\n")
    det = detector_from_config(load_config(p).shots, cpu)
    assert (det.min_score, det.bins, det.threshold) == (100.0, 16, HistogramConfig().threshold)
    assert det.detect(thumbs) == []  # no change scores 100: no cut


def test_a_detector_setting_reaches_the_pipeline(tmp_path):
    src = _clip(tmp_path)
    base = {"colorizer": "test-tint", "shots.detector": "histogram"}
    assert len(colorize_video(src, tmp_path / "a.mp4", config=load_config(overrides=base)).shots) == 2
    strict = load_config(overrides={**base, "shots.histogram.min_score": 100.0})
    assert len(colorize_video(src, tmp_path / "b.mp4", config=strict).shots) == 1


def test_transnet_settings_from_the_file_reach_the_detector(tmp_path, monkeypatch):
    import vidcolor.shots.transnet as tn

    monkeypatch.setattr(tn, "load_model", lambda device="cpu": torch.nn.Identity())  # no weights needed here
    p = tmp_path / "t.yaml"
    p.write_text("shots:\n  detector: transnet\n  transnet:\n    threshold: 0.7\n    low_threshold: 0.1\n"
                 "    cross_check: false\n    max_span: 12\n")
    det = detector_from_config(load_config(p).shots, torch.device("cpu"))
    assert isinstance(det, tn.TransNetDetector)
    assert (det.threshold, det.low_threshold, det.cross_check, det.max_span) == (0.7, 0.1, False, 12)
    assert (det.rule.threshold, det.rule.max_span) == (0.7, 12)
