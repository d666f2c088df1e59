"""The auto colorizer: ab bins, annealed mean, rebalancing, the network, weights,
a tiny training run, the palette, config and CLI options (CPU, synthetic, seconds)."""
from __future__ import annotations

import csv
import dataclasses
import json

import cv2
import numpy as np
import pytest
import torch

from vidcolor import ConfigError, ModelError, load_config
from vidcolor.config import AutoConfig, Config
from vidcolor.models import get_colorizer
from vidcolor.models.auto import (AutoColorizer, AutoNet, ab_bins, annealed_mean, load_auto, rebalance_weights,
                                  save_auto, smooth_prior, soft_encode)
from vidcolor.models.palette import Palette, match_palette, weighted_quantiles

CPU = torch.device("cpu")


# -- bins ------------------------------------------------------------------------------------
def test_bins_are_the_srgb_gamut_on_a_grid_of_10():
    bins = ab_bins()
    # 262, not Zhang et al.'s 313: theirs were taken from data and also keep cells that
    # only out-of-gamut a/b reach; the bounding box is the same (a -90..100, b -110..90).
    assert bins.shape == (262, 2)
    assert torch.equal(bins, ab_bins())  # deterministic
    assert torch.all(bins % 10 == 0)
    assert bins[:, 0].min() == -90 and bins[:, 0].max() == 100
    assert bins[:, 1].min() == -110 and bins[:, 1].max() == 90
    assert (bins == 0).all(dim=1).any()  # gray
    # every colour of a random sample of the sRGB cube falls in a bin, and the corners are all used
    rng = np.random.default_rng(0)
    rgb = rng.uniform(0, 1, (1, 20000, 3)).astype(np.float32)
    cube = np.array([[[r, g, b] for r in (0, 1) for g in (0, 1) for b in (0, 1)]], dtype=np.float32)
    ab = cv2.cvtColor(np.concatenate([rgb, cube], axis=1), cv2.COLOR_RGB2Lab)[0, :, 1:]
    q = {tuple(v) for v in (np.round(ab / 10) * 10).astype(int).tolist()}
    have = {tuple(v) for v in bins.int().tolist()}
    assert q <= have
    # and a cell far outside the gamut is not a bin: saturated green-blue (a -90, b -110) does not exist
    assert (-90, -110) not in have and (100, -110) not in have


def test_annealed_mean_mean_at_1_mode_towards_0():
    bins = ab_bins()
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, bins.shape[0], 3, 4, generator=g) * 0.5
    logits.scatter_add_(1, torch.randint(0, bins.shape[0], (2, 1, 3, 4), generator=g), torch.full((2, 1, 3, 4), 5.0))
    mean = torch.einsum("nqhw,qc->nchw", torch.softmax(logits, 1), bins)
    assert torch.allclose(annealed_mean(logits, bins, 1.0), mean, atol=1e-4)
    mode = bins[logits.argmax(1)].permute(0, 3, 1, 2)
    assert torch.allclose(annealed_mean(logits, bins, 0.01), mode, atol=1e-2)
    # in between, more saturated than the mean (colour is not averaged to brown)
    chroma = lambda ab: ab.norm(dim=1).mean()  # noqa: E731
    assert chroma(mean) < chroma(annealed_mean(logits, bins, 0.38)) <= chroma(mode) + 1e-3
    with pytest.raises(ValueError, match="temperature"):
        annealed_mean(logits, bins, 0.0)


def test_rebalancing_weights_have_expectation_1_under_the_prior():
    bins = ab_bins()
    counts = torch.zeros(bins.shape[0])
    counts[(bins == 0).all(1)] = 1000  # lots of gray
    counts[10] = 5  # a rare colour
    prior = smooth_prior(counts, bins, 5.0)
    assert prior.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert (prior > 0).sum() > 2  # smoothing spreads the mass to neighbouring bins
    w = rebalance_weights(prior, 0.5)
    assert (prior * w).sum().item() == pytest.approx(1.0, abs=1e-5)
    gray = int((bins == 0).all(1).nonzero())
    assert w[10] > w[gray]  # rare colours weigh more
    assert w.max() / w.min() <= 2 * bins.shape[0]  # lambda bounds the ratio: (1-l)p + l/Q >= l/Q
    assert torch.allclose(rebalance_weights(prior, 1.0), torch.ones_like(w))  # lambda 1: no rebalancing


def test_soft_encoding():
    bins = ab_bins()
    ab = torch.tensor([[23.0, -41.0], [0.0, 0.0]]).T.reshape(1, 2, 1, 2)
    t = soft_encode(ab, bins)
    assert t.shape == (1, bins.shape[0], 1, 2)
    assert torch.allclose(t.sum(1), torch.ones(1, 1, 2))
    assert ((t > 0).sum(1) == 5).all()
    assert bins[t[0, :, 0, 0].argmax()].tolist() == [20.0, -40.0]


# -- network, colorizer, weights -------------------------------------------------------------
def tiny_net(seed=0) -> AutoNet:
    torch.manual_seed(seed)
    return AutoNet(width=48, bins=ab_bins().shape[0]).eval()


def test_random_net_runs_on_a_tiny_frame():
    c = AutoColorizer(device=CPU, config=AutoConfig(work_size=48), net=tiny_net())
    assert not c.needs_reference and c.chroma == "lab"
    c.begin_shot(None)
    c.begin_shot(torch.rand(1, 3, 20, 30))  # a reference is accepted and ignored
    L = torch.rand(2, 1, 72, 100) * 100
    ab = c.colorize(L)
    assert ab.shape == (2, 2, 72, 100) and ab.dtype == torch.float32
    assert torch.isfinite(ab).all() and ab.abs().max() < 128
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        c.colorize(torch.rand(1, 3, 8, 8))


def test_weights_round_trip_and_missing_weights(tmp_path):
    net = tiny_net(1)
    prior = torch.full((net.config["bins"],), 1.0 / net.config["bins"])
    path = tmp_path / "auto.safetensors"
    save_auto(net, path, prior, {"steps": 7})
    loaded = load_auto(path)
    assert loaded.meta == {"steps": 7} and torch.allclose(loaded.prior, prior)
    c = get_colorizer("auto", device=CPU, config=AutoConfig(weights=str(path), work_size=48))
    ref = AutoColorizer(device=CPU, config=AutoConfig(work_size=48), net=net)
    L = torch.rand(1, 1, 48, 64) * 100
    assert torch.allclose(c.colorize(L), ref.colorize(L), atol=0.5)  # weights stored as float16
    with pytest.raises(ModelError, match="not found"):
        load_auto(tmp_path / "nope.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ModelError, match="cannot load auto colorizer weights"):
        load_auto(tmp_path / "bad.safetensors")


def test_no_packaged_weights_says_what_to_do(monkeypatch, tmp_path):
    import dataclasses

    from vidcolor.weights import WEIGHTS

    monkeypatch.setitem(WEIGHTS, "auto", dataclasses.replace(WEIGHTS["auto"], file=tmp_path / "auto.safetensors"))
    with pytest.raises(ModelError, match="vidcolor train auto"):
        get_colorizer("auto", device=CPU, config=AutoConfig())


def test_still_image_keeps_its_luminance(tmp_path):
    import vidcolor

    net = tiny_net(2)
    path = tmp_path / "w.safetensors"
    save_auto(net, path, torch.full((net.config["bins"],), 1.0 / net.config["bins"]), {})
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.uniform(0, 255, (60, 80, 3)).astype(np.uint8), (0, 0), 3)
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), img)
    cfg = dataclasses.replace(Config(colorizer="auto", auto=AutoConfig(weights=str(path), work_size=48)),
                              runtime=dataclasses.replace(Config().runtime, device="cpu"))
    out = vidcolor.colorize_image(src, tmp_path / "out.png", reference=src, config=cfg)  # reference ignored
    res = cv2.imread(out.output)
    assert res.shape == img.shape
    L_in = cv2.cvtColor(img, cv2.COLOR_BGR2LAB)[..., 0].astype(int)
    L_out = cv2.cvtColor(res, cv2.COLOR_BGR2LAB)[..., 0].astype(int)
    assert np.abs(L_in - L_out).mean() < 2.5  # a/b changed, L kept (up to gamut clipping and rounding)
    # the report says how much colour auto gave the photograph
    assert 0 <= out.shots[0]["auto_confidence"] <= 1 and out.shots[0]["auto_chroma"] >= 0


# -- training --------------------------------------------------------------------------------
def test_tiny_training_run_lowers_the_loss(tmp_path):
    from vidcolor.train.auto import TrainAutoConfig, export_auto, load_train_config, train_auto

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):  # sky over grass, with a red or yellow blob: colour that luminance predicts
        img = np.zeros((96, 128, 3), np.uint8)
        img[:48] = (235, 170, 120)  # BGR: sky blue
        img[48:] = (40, 150, 60)  # grass green
        cv2.circle(img, (int(rng.integers(20, 108)), 48), 14, (40, 40, 220) if i % 2 else (40, 220, 230), -1)
        cv2.imwrite(str(photos / f"p{i}.png"), img)
    cfg = TrainAutoConfig(data=[str(photos)], out=str(tmp_path / "run"), test=1, val=1, exclude=["p4.png"], size=64,
                          pool=48, val_pool=8, steps=40, batch=8, lr=3e-3, width=48, checkpoint_every=20, threads=0)
    weights = train_auto(cfg)
    rows = list(csv.DictReader(open(tmp_path / "run" / "loss.csv")))
    ce = [float(r["ce"]) for r in rows]
    assert len(ce) == 40
    assert np.mean(ce[-8:]) < np.mean(ce[:4]) - 0.5
    net = load_auto(weights)
    assert net.meta["steps"] == 40 and net.meta["photos"] == 2 and net.meta["held_out"] == 2
    splits = net.meta["splits"]
    assert sorted(splits["train"] + splits["val"] + splits["test"]) == ["p0.png", "p1.png", "p2.png", "p3.png"]
    assert json.loads((tmp_path / "run" / "splits.json").read_text()) == splits
    assert net.prior.sum().item() == pytest.approx(1.0, abs=1e-4)
    # every checkpoint's decoder is kept, and any can be exported (picked on validation)
    assert (tmp_path / "run" / "step_20.pt").is_file() and (tmp_path / "run" / "step_40.pt").is_file()
    assert load_auto(export_auto(cfg, which="step_20")).meta["steps"] == 20
    # resuming a finished run trains no further and exports again
    assert train_auto(cfg) == weights
    # the shipped-config loader resolves paths and refuses typos
    (tmp_path / "configs").mkdir()
    y = tmp_path / "configs" / "t.yaml"
    y.write_text("steps: 5\nout: runs/x\n")
    assert load_train_config(y).out == str(tmp_path / "runs" / "x")
    y.write_text("stepz: 5\n")
    with pytest.raises(ConfigError, match="unknown key 'stepz'"):
        load_train_config(y)


# -- palette ---------------------------------------------------------------------------------
def _polar(ab):
    return np.hypot(ab[..., 0], ab[..., 1]), np.arctan2(ab[..., 1], ab[..., 0])


def test_palette_moves_the_chroma_and_hue_quantiles_to_the_target():
    rng = np.random.default_rng(0)
    # output: dull, brownish (hue about 60 deg); target: vivid blues and reds
    c = rng.gamma(2.0, 4.0, 5000)
    h = np.deg2rad(60 + rng.normal(0, 10, 5000))
    src = np.stack((c * np.cos(h), c * np.sin(h)), -1).reshape(50, 100, 2)
    tc = rng.uniform(20, 60, 3000)
    th = np.deg2rad(np.where(rng.random(3000) < 0.5, -100, 30) + rng.normal(0, 8, 3000))
    tgt = np.stack((tc * np.cos(th), tc * np.sin(th)), -1)
    out = match_palette(src, tgt)
    assert out.shape == src.shape
    oc, oh = _polar(out.reshape(-1, 2))
    levels = np.linspace(0.05, 0.95, 19)
    assert np.allclose(weighted_quantiles(oc, None, levels), weighted_quantiles(tc, None, levels), atol=1.5)
    before = np.abs(weighted_quantiles(c, None, levels) - weighted_quantiles(tc, None, levels)).mean()
    assert before > 15
    # hue: the share of (chroma-weighted) output near each target hue mode matches the target's
    near = lambda hue, deg: np.abs(np.angle(np.exp(1j * (hue - np.deg2rad(deg))))) < np.deg2rad(30)  # noqa: E731
    assert np.average(near(oh, -100), weights=oc) == pytest.approx(0.5, abs=0.06)
    assert np.average(near(oh, 30), weights=oc) == pytest.approx(0.5, abs=0.06)
    # pixel order is kept: the most saturated input pixel is the most saturated output pixel
    assert np.argmax(c) == np.argmax(oc)


def test_palette_from_image(tmp_path):
    p = tmp_path / "still.png"
    img = np.zeros((40, 40, 3), np.uint8)
    img[:, :20] = (200, 60, 20)  # BGR: blue
    img[:, 20:] = (20, 60, 200)  # red
    cv2.imwrite(str(p), img)
    pal = Palette.from_image(p)
    ab = torch.randn(1, 2, 8, 8) * 3
    out = pal.apply(ab)
    assert out.shape == ab.shape and out.norm(dim=1).mean() > 30
    gray = tmp_path / "gray.png"
    cv2.imwrite(str(gray), np.full((10, 10, 3), 128, np.uint8))
    with pytest.raises(Exception, match="no colour"):
        Palette.from_image(gray)


# -- config and command line -------------------------------------------------------------------
def test_auto_config_validation(tmp_path):
    assert load_config().auto == AutoConfig()
    p = tmp_path / "c.yaml"
    for text, match in [("auto:\n  temperature: 0\n", "auto.temperature"), ("auto:\n  work_size: 8\n", "auto.work_size"),
                        ("auto:\n  temprature: 0.3\n", "unknown key 'auto.temprature'"),
                        ("eccv16:\n  work_size: 100\n", "eccv16.work_size")]:
        p.write_text(text)
        with pytest.raises(ConfigError, match=match):
            load_config(p)


def test_cli_model_options_become_config_overrides():
    from vidcolor.cli.colorize import model_overrides as _model_overrides

    name, o = _model_overrides(None, None, "eccv16", "x.pth", 0.5, None)
    cfg = load_config(None, {**o, "colorizer": name})
    assert cfg.colorizer == "eccv16" and cfg.eccv16.weights == "x.pth" and cfg.eccv16.temperature == 0.5
    name, o = _model_overrides(None, "auto", None, None, 0.2, "pal.png")
    cfg = load_config(None, {**o, "colorizer": name})
    assert cfg.auto.temperature == 0.2 and cfg.auto.palette == "pal.png" and cfg.eccv16.temperature == 1.0
    import click

    with pytest.raises(click.BadParameter, match="disagree"):
        _model_overrides(None, "auto", "eccv16", None, None, None)
