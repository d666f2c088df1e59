"""The auto colorizer's calibrated decoding, its consensus pooling, its per-shot
statistics, the photo splits and the old-film augmentation (CPU, synthetic, seconds)."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from vidcolor.config import AutoConfig
from vidcolor.models.auto import AutoColorizer, AutoNet, ab_bins, annealed_mean
from vidcolor.models.auto_decode import LEGACY, Decoding, decode, hue_gain
from vidcolor.models.consensus import POOLS, pool_chroma
from vidcolor.train.auto import old_film, split_photos

CPU = torch.device("cpu")


def logits_for(peaks: list[tuple[float, float]], sharp: float = 12.0, h: int = 4, w: int = 4) -> torch.Tensor:
    """(1, Q, h, w) logits with a peak at each of the ab points ``peaks`` (the same in every cell)."""
    bins = ab_bins()
    z = torch.zeros(bins.shape[0])
    for a, b in peaks:
        z[torch.cdist(torch.tensor([[float(a), float(b)]]), bins).argmin()] = sharp
    return z[None, :, None, None].expand(1, -1, h, w).clone()


# -- decoding --------------------------------------------------------------------------------
def test_legacy_decoding_is_the_annealed_mean():
    bins = ab_bins()
    z = torch.randn(2, bins.shape[0], 5, 6, generator=torch.Generator().manual_seed(0)) * 2
    ab, conf = decode(z, bins, torch.full((2, 1, 5, 6), 50.0), LEGACY)
    assert torch.allclose(ab, annealed_mean(z, bins, 0.38), atol=1e-5)
    assert torch.equal(conf, torch.ones_like(conf))


def test_a_sure_distribution_keeps_its_colour_an_unsure_one_goes_toward_neutral():
    bins = ab_bins()
    L = torch.full((1, 1, 4, 4), 60.0)
    dec = Decoding(temperature=0.38, spread=15.0)
    sure = logits_for([(-10, -40)])  # sky blue, one peak
    torn = logits_for([(-10, -40), (-40, 40)])  # sky blue or grass green: two equal peaks
    ab_sure, c_sure = decode(sure, bins, L, dec)
    ab_torn, c_torn = decode(torn, bins, L, dec)
    assert c_sure.mean() > 0.7 and c_torn.mean() < 0.1
    assert ab_sure[0, :, 0, 0].tolist() == pytest.approx([-10, -40], abs=3)
    # the legacy decoding paints the torn cells as vividly as the sure ones; the calibrated one does not
    legacy_torn, _ = decode(torn, bins, L, LEGACY)
    assert legacy_torn.norm(dim=1).mean() > 20
    assert ab_torn.norm(dim=1).mean() < 0.2 * legacy_torn.norm(dim=1).mean()


def test_a_colour_that_changes_with_the_second_view_loses_confidence():
    bins = ab_bins()
    L = torch.full((1, 1, 4, 4), 60.0)
    dec = Decoding(spread=15.0, agree=10.0)
    z = logits_for([(-10, -40)])
    _, same = decode(z, bins, L, dec, z.clone())
    ab, other = decode(z, bins, L, dec, logits_for([(40, 40)]))
    assert same.mean() > 0.7 and other.mean() < 0.05
    assert ab.norm(dim=1).max() < 5


def test_gain_and_power_shape_the_chroma():
    bins = ab_bins()
    L = torch.full((1, 1, 4, 4), 60.0)
    z = logits_for([(30, 30), (30, 10)])
    base, conf = decode(z, bins, L, Decoding(spread=20.0))
    assert 0.05 < conf.mean() < 0.95
    more, _ = decode(z, bins, L, Decoding(spread=20.0, gain=1.5))
    assert torch.allclose(more, 1.5 * base, atol=1e-4)
    softer, _ = decode(z, bins, L, Decoding(spread=20.0, power=0.5))
    assert softer.norm(dim=1).mean() > base.norm(dim=1).mean()  # c ** 0.5 > c for c < 1


def test_cast_takes_away_that_share_of_the_pictures_mean_colour():
    bins = ab_bins()
    L = torch.full((1, 1, 4, 6), 60.0)
    # a picture-wide warm cast: every cell sure of (30, 20), but the left half sure of (-20, 20)
    z = torch.cat((logits_for([(-20, 20)], h=4, w=3), logits_for([(30, 20)], h=4, w=3)), dim=3)
    base, _ = decode(z, bins, L, Decoding(spread=20.0))
    half, _ = decode(z, bins, L, Decoding(spread=20.0, cast=0.5))
    full, _ = decode(z, bins, L, Decoding(spread=20.0, cast=1.0))
    mean = base.mean(dim=(2, 3), keepdim=True)
    assert mean.abs().max() > 5  # there is a cast to take
    assert torch.allclose(half, base - 0.5 * mean, atol=1e-4)
    assert torch.allclose(full.mean(dim=(2, 3)), torch.zeros(1, 2), atol=1e-4)  # gray world
    assert torch.allclose(full[..., 3:] - full[..., :3], base[..., 3:] - base[..., :3], atol=1e-4)  # contrast kept
    with pytest.raises(ValueError):
        Decoding(cast=1.5).validate()


def test_hue_gains_scale_each_hue_and_interpolate_between_sectors():
    # four sectors: +a (red) 0 deg, +b (yellow) 90, -a (green) 180, -b (blue) 270
    gains = (1.5, 0.5, 0.0, 1.0)
    ab = torch.tensor([[30.0, 0.0], [0.0, 30.0], [-30.0, 0.0], [0.0, -30.0], [20.0, 20.0], [-20.0, -20.0]])
    ab = ab.T[None, :, :, None]  # (1, 2, 6, 1)
    g = hue_gain(ab, gains)[0, 0, :, 0]
    assert torch.allclose(g, torch.tensor([1.5, 0.5, 0.0, 1.0, 1.0, 0.5]), atol=1e-5)  # 45 deg: halfway
    bins = ab_bins()
    L = torch.full((1, 1, 2, 2), 60.0)
    z = torch.cat((logits_for([(40, 10)], h=2, w=1), logits_for([(-30, 30)], h=2, w=1)), dim=3)
    base, _ = decode(z, bins, L, Decoding(spread=20.0))
    out, _ = decode(z, bins, L, Decoding(spread=20.0, hue=gains))
    assert torch.allclose(out, base * hue_gain(base, gains), atol=1e-4)
    assert out[0, :, :, 0].norm(dim=0).min() > base[0, :, :, 0].norm(dim=0).min()  # the red kept and raised
    assert out[0, :, :, 1].norm(dim=0).max() < 0.5 * base[0, :, :, 1].norm(dim=0).min()  # the green (135 deg) lowered
    assert torch.allclose(decode(z, bins, L, Decoding(spread=20.0, hue=(1.0,) * 8))[0], base, atol=1e-5)
    with pytest.raises(ValueError):
        Decoding(hue=(1.0, -0.5, 1.0)).validate()
    assert Decoding.from_dict(Decoding(hue=gains).to_dict() | {"hue": list(gains)}) == Decoding(hue=gains)


# -- consensus -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(POOLS))
def test_consensus_gives_one_colour_per_region_of_even_luminance(kind):
    g = torch.Generator().manual_seed(1)
    h, w = 40, 60
    L = torch.full((1, 1, h, w), 30.0)
    L[..., : h // 2, :] = 85.0  # a bright sky over a dark field
    ab = torch.zeros(1, 2, h, w)
    ab[:, 0, : h // 2], ab[:, 1, : h // 2] = -10.0, -35.0
    ab[:, 0, h // 2:], ab[:, 1, h // 2:] = -30.0, 30.0
    noisy = ab + torch.randn(1, 2, h, w, generator=g) * 15  # hue patches
    conf = torch.rand(1, 1, h, w, generator=g)
    out, c = pool_chroma(kind, noisy, conf, L, cell=4, lum=5.0)
    assert out.shape == ab.shape and c.shape == conf.shape
    inner = (slice(None), slice(None), slice(3, h // 2 - 3), slice(3, w - 3))  # away from the edge and border
    assert out[inner].std(dim=(2, 3)).max() < 0.35 * noisy[inner].std(dim=(2, 3)).min()
    # the two regions keep their own colours: the edge of luminance stops the pooling
    sky, field = out[0, :, 2: h // 2 - 2].mean(dim=(1, 2)), out[0, :, h // 2 + 2: -2].mean(dim=(1, 2))
    assert sky.tolist() == pytest.approx([-10, -35], abs=4)
    assert field.tolist() == pytest.approx([-30, 30], abs=4)
    assert 0.3 < c.mean() < 0.7  # the region's mean confidence


def test_consensus_weighs_by_confidence_and_off_is_identity():
    h, w = 24, 24
    L = torch.full((1, 1, h, w), 50.0)
    ab = torch.zeros(1, 2, h, w)
    ab[:, 0] = 40.0
    ab[:, 0, :, : w // 2] = -40.0  # half says green, half red, at one luminance
    conf = torch.full((1, 1, h, w), 0.05)
    conf[..., : w // 2] = 1.0  # but only the green half is sure
    out, _ = pool_chroma("grid", ab, conf, L, cell=8, lum=10.0)
    assert (out[:, 0] < -25).float().mean() > 0.9
    same, c = pool_chroma("off", ab, conf, L)
    assert same is ab and c is conf
    with pytest.raises(ValueError, match="unknown consensus"):
        pool_chroma("blobs", ab, conf, L)


# -- the colorizer: decoding from the weights, per-shot statistics ---------------------------------
def colorizer(fitted: Decoding | None = None, **cfg) -> AutoColorizer:
    torch.manual_seed(0)
    net = AutoNet(width=48, bins=ab_bins().shape[0]).eval()
    net.meta = {"decoding": fitted.to_dict()} if fitted else {}
    return AutoColorizer(device=CPU, config=AutoConfig(work_size=48, **cfg), net=net)


def test_the_decoding_comes_from_the_weights_and_the_temperature_overrides_it():
    dec = Decoding(temperature=0.6, spread=20.0, consensus="grid")
    assert colorizer(dec).decoding == dec
    assert colorizer(dec, temperature=0.2).decoding == dec.with_(temperature=0.2)
    assert colorizer(dec, decoding="legacy").decoding == LEGACY
    assert colorizer().decoding == LEGACY  # weights with no fitted decoding: as before


def test_shot_statistics_and_the_shot_factor():
    L = torch.rand(3, 1, 64, 80) * 100
    c = colorizer(Decoding(spread=80.0, agree=40.0, consensus="superpixel"))  # a random net is unsure
    c.begin_shot(None)
    assert c.end_shot().extra == {}  # no frame yet
    c.begin_shot(None)
    ab = c.colorize(L)
    assert ab.shape == (3, 2, 64, 80) and torch.isfinite(ab).all()
    stats = c.end_shot().extra
    assert set(stats) == {"auto_confidence", "auto_chroma"}
    assert 0 <= stats["auto_confidence"] <= 1 and stats["auto_chroma"] >= 0
    assert c.end_shot().extra == {}  # taken: the next shot starts afresh
    # a shot it is unsure of stays closer to black and white when the shot factor is on
    c.decoding = c.decoding.with_(shot=2.0, reference=1.0)
    c.begin_shot(None)
    damped = c.colorize(L)
    assert damped.norm(dim=1).mean() < ab.norm(dim=1).mean()
    assert c.end_shot().extra["auto_chroma"] < stats["auto_chroma"]


# -- splits and augmentation -----------------------------------------------------------------
def test_splits_are_disjoint_deterministic_and_leave_out_the_excluded():
    photos = [Path(f"/p/photo_{i:03d}.jpg") for i in range(60)]
    s = split_photos(photos, 12, 10, exclude=["photo_007.jpg", "photo_033.jpg"])
    assert (len(s["test"]), len(s["val"]), len(s["train"])) == (12, 10, 36)
    sets = [set(v) for v in s.values()]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    assert not any(p.name in ("photo_007.jpg", "photo_033.jpg") for v in s.values() for p in v)
    shuffled = photos[::-1]
    t = split_photos(shuffled, 12, 10, exclude=["photo_007.jpg", "photo_033.jpg"])
    assert {k: set(v) for k, v in t.items()} == {k: set(v) for k, v in s.items()}  # order does not matter
    # a photo added to the folder does not move the others from test to train
    more = split_photos(photos + [Path("/p/new.jpg")], 12, 10)
    assert len(set(more["test"]) & set(split_photos(photos, 12, 10)["test"])) >= 11


def test_folds_hold_out_each_non_test_photo_once_and_keep_the_test_split():
    photos = [Path(f"/p/photo_{i:03d}.jpg") for i in range(60)]
    plain = split_photos(photos, 12, 10, exclude=["photo_007.jpg"])
    held = []
    for k in range(5):
        s = split_photos(photos, 12, 6, exclude=["photo_007.jpg"], folds=5, fold=k)
        assert set(s["test"]) == set(plain["test"])  # cross-fitting never touches the test photos
        assert len(s["val"]) == 6 and len(s["fold"]) in (9, 10)
        sets = [set(v) for v in s.values()]
        assert sum(map(len, sets)) == len(set().union(*sets)) == 59  # disjoint, every photo but the excluded
        held += s["fold"]
    assert sorted(held) == sorted(plain["val"] + plain["train"])  # each non-test photo in exactly one fold
    assert "fold" not in plain


def test_old_film_augmentation_stays_in_range_and_changes_the_picture():
    L = np.tile(np.linspace(0, 100, 64, dtype=np.float32), (48, 1))
    outs = [old_film(L, random.Random(i)) for i in range(20)]
    for o in outs:
        assert o.shape == L.shape and o.dtype == np.float32 and o.min() >= 0 and o.max() <= 100
    assert np.mean([np.abs(o - L).mean() for o in outs]) > 2
    assert np.array_equal(old_film(L, random.Random(3)), outs[3])  # reproducible from the seed
