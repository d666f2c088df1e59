"""Shared operations (vidcolor.ops) that several stages call."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.ops import gaussian_blur


def test_gaussian_blur_answers_for_the_values_it_is_given_now():
    # the same tensor, changed in place, is blurred afresh (no answer kept from an earlier call)
    t = torch.rand(1, 2, 24, 30, generator=torch.Generator().manual_seed(0))
    first = gaussian_blur(t, 1.5)
    t.mul_(3.0).add_(1.0)
    again = gaussian_blur(t, 1.5)
    r = 4  # ceil(2.5 * 1.5)
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / 1.5) ** 2)
    k = (k / k.sum())
    kernel = (k[:, None] * k[None, :]).expand(2, 1, -1, -1)
    want = F.conv2d(F.pad(t, (r, r, r, r)), kernel, groups=2)
    assert torch.allclose(again, want, atol=1e-5)
    assert not torch.allclose(again, first)


def test_flat_noise_reads_the_grain_not_the_pictures_detail():
    """The s.d. of the fine detail in the flattest blocks: a picture three quarters sharp texture, a quarter
    smooth reads near zero (a whole-picture measure reads its texture), grain on it reads in proportion
    to the grain, and a picture too small for blocks reads zero."""
    import cv2
    from vidcolor.ops import flat_noise
    from vidcolor.references.retrieval import grain_sigma

    rng = np.random.default_rng(1)
    pic = cv2.GaussianBlur(rng.uniform(20, 80, (96, 128)).astype(np.float32), (0, 0), 6)
    pic[:, :96] += rng.uniform(-15, 15, (96, 96)).astype(np.float32)  # sharp texture on three quarters
    L = torch.from_numpy(pic)[None, None]
    assert float(flat_noise(L)) < 0.05 and float(grain_sigma(L)) > 3
    grain = [float(flat_noise(L + s * torch.randn(1, 1, 96, 128, generator=torch.Generator().manual_seed(2))))
             for s in (1.0, 2.0)]
    assert 0.5 < grain[0] < 1.2 and abs(grain[1] / grain[0] - 2) < 0.2
    assert float(flat_noise(torch.rand(1, 1, 12, 12) * 100)) == 0.0
