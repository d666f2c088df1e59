import pytest
import torch

from vidcolor import ModelError
from vidcolor.color import rgb_to_lab
from vidcolor.config import TransferConfig
from vidcolor.models import get_colorizer, list_colorizers
from vidcolor.models.registry import register_colorizer
from vidcolor.models.transfer import local_std

CPU = torch.device("cpu")


def _two_tone_reference():
    """Dark half blue, bright half orange."""
    ref = torch.zeros(1, 3, 64, 64)
    ref[..., :32] = torch.tensor([0.1, 0.15, 0.5]).view(1, 3, 1, 1)
    ref[..., 32:] = torch.tensor([0.95, 0.6, 0.2]).view(1, 3, 1, 1)
    return ref


def test_colour_follows_luminance():
    ref = _two_tone_reference()
    lab = rgb_to_lab(ref)
    col = get_colorizer("transfer", device=CPU, config=TransferConfig(remap_luminance=False))
    col.begin_shot(ref)
    L = torch.zeros(2, 1, 16, 16)
    L[..., :8] = lab[0, 0, 0, 0]  # the blue's L
    L[..., 8:] = lab[0, 0, 0, -1]  # the orange's L
    ab = col.colorize(L)
    assert ab.shape == (2, 2, 16, 16)
    dark, bright = ab[0, :, 8, 2], ab[0, :, 8, 13]
    assert dark[1] < -20, "dark pixels should be blue (b < 0)"
    assert bright[1] > 30 and bright[0] > 5, "bright pixels should be orange (a, b > 0)"
    assert torch.allclose(dark, lab[0, 1:, 0, 0], atol=6)
    assert torch.allclose(bright, lab[0, 1:, 0, -1], atol=6)


def test_constant_reference_gives_its_colour_everywhere():
    ref = torch.tensor([0.2, 0.6, 0.3]).view(1, 3, 1, 1).expand(1, 3, 32, 32).clone()
    col = get_colorizer("transfer", device=CPU)
    col.begin_shot(ref)
    ab = col.colorize(torch.rand(1, 1, 20, 20) * 100)
    assert torch.allclose(ab, rgb_to_lab(ref)[0, 1:, 0, 0].view(1, 2, 1, 1).expand_as(ab), atol=0.5)


def test_statistics_fixed_per_shot_and_reset_by_next_shot():
    col = get_colorizer("transfer", device=CPU)
    col.begin_shot(_two_tone_reference())
    L = torch.rand(1, 1, 16, 16) * 100
    first = col.colorize(L)
    col.colorize(L * 0.3)  # a later, darker batch of the same shot does not refit
    assert torch.equal(col.colorize(L), first)
    col.begin_shot(torch.tensor([0.2, 0.6, 0.3]).view(1, 3, 1, 1).expand(1, 3, 8, 8).clone())
    assert not torch.allclose(col.colorize(L), first, atol=1)


def test_needs_a_reference():
    col = get_colorizer("transfer", device=CPU)
    with pytest.raises(ModelError, match="needs a reference"):
        col.begin_shot(None)
    with pytest.raises(ModelError, match="before begin_shot"):
        col.colorize(torch.zeros(1, 1, 4, 4))


def test_unknown_colorizer_lists_valid_names():
    with pytest.raises(ModelError, match=r"unknown colorizer 'nope' \(valid: .*transfer"):
        get_colorizer("nope", device=CPU)
    assert "transfer" in list_colorizers()


def test_registry_refuses_duplicates():
    with pytest.raises(ValueError, match="already registered"):
        register_colorizer("transfer")(object)


def test_local_std():
    L = torch.zeros(1, 1, 9, 9)
    assert local_std(L, 5).abs().max() == 0
    L[..., ::2, :] = 10  # stripes: std 5 away from borders
    s = local_std(L, 5)
    assert abs(float(s[0, 0, 4, 4]) - 4.9) < 0.1
