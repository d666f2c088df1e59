import kornia
import numpy as np
import pytest
import torch

from vidcolor.color import (YCbCrSpec, gray_to_l, lab_to_chroma_codes, lab_to_rgb, luma_lut, mean_chroma,
                            rgb_to_lab)


def _in_gamut_lab(n=2, h=20, w=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    rgb = torch.rand(n, 3, h, w, generator=g) * 0.9 + 0.05
    return kornia.color.rgb_to_lab(rgb), rgb


def test_lab_round_trip():
    lab, rgb = _in_gamut_lab()
    assert torch.allclose(lab_to_rgb(lab), rgb, atol=1e-3)


def test_cpu_fast_path_matches_kornia():
    lab, _ = _in_gamut_lab(seed=1)
    fast = lab_to_rgb(lab)
    ref = kornia.color.lab_to_rgb(lab, clip=True)
    assert (fast - ref).abs().max() < 1e-3


def test_shape_errors_name_the_shape():
    with pytest.raises(ValueError, match=r"\(2, 4, 5, 5\)"):
        lab_to_rgb(torch.zeros(2, 4, 5, 5))


@pytest.mark.parametrize("spec", [YCbCrSpec(6, False, 8), YCbCrSpec(1, True, 10), YCbCrSpec(9, False, 10)])
def test_chroma_codes_cpu_and_tensor_routes_agree(spec):
    lab, _ = _in_gamut_lab(seed=2)
    fast = lab_to_chroma_codes(lab, spec).astype(int)
    slow = lab_to_chroma_codes(lab.clone().requires_grad_(), spec).astype(int)
    assert fast.shape == (2, 2, 20, 30)
    assert np.abs(fast - slow).max() <= 1


@pytest.mark.parametrize("spec", [YCbCrSpec(6, False, 8), YCbCrSpec(1, True, 8), YCbCrSpec(1, False, 10)])
def test_gray_gives_neutral_chroma(spec):
    lab = torch.zeros(1, 3, 4, 4)
    lab[:, 0] = torch.linspace(0, 100, 16).view(4, 4)
    codes = lab_to_chroma_codes(lab, spec)
    assert (codes == 128 << (spec.bits - 8)).all()


def test_known_colour_to_cbcr():
    # pure red in BT.601 limited range: Cb 90, Cr 240 (ITU-R BT.601 tables)
    lab = rgb_to_lab(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1))
    cb, cr = lab_to_chroma_codes(lab, YCbCrSpec(6, False, 8)).ravel()
    assert abs(int(cb) - 90) <= 1 and abs(int(cr) - 240) <= 1


def test_luma_lut_limited_and_full_range():
    lim = luma_lut(YCbCrSpec(6, False, 8)).tolist()
    full = luma_lut(YCbCrSpec(6, True, 8)).tolist()
    assert lim[16] == pytest.approx(0, abs=1e-3) and lim[235] == pytest.approx(100, abs=1e-2)
    assert full[0] == pytest.approx(0, abs=1e-3) and full[255] == pytest.approx(100, abs=1e-2)
    assert all(b > a for a, b in zip(lim[16:235], lim[17:236]))
    ten = luma_lut(YCbCrSpec(6, False, 10)).tolist()
    assert len(ten) == 1024 and ten[64] == pytest.approx(0, abs=1e-3) and ten[940] == pytest.approx(100, abs=1e-2)
    # the same gray at 8 and 10 bits has the same L
    assert ten[4 * 128] == pytest.approx(lim[128], abs=1e-3)


def test_gray_to_l_matches_lab_of_gray():
    g = torch.rand(1, 1, 5, 5)
    assert torch.allclose(gray_to_l(g), rgb_to_lab(g.expand(1, 3, 5, 5))[:, :1])


def test_mean_chroma_tells_gray_from_colour():
    gray = torch.rand(1, 1, 16, 16).expand(1, 3, 16, 16)
    colour = torch.rand(1, 3, 16, 16)
    assert mean_chroma(gray) < 1 < 10 < mean_chroma(colour)
