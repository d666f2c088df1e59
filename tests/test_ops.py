"""Shared operations (vidcolor.ops) that several stages call."""
from __future__ import annotations

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
