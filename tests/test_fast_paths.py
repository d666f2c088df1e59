"""The CPU's faster routes give the very floats of the plain ones they replace (outputs unchanged)."""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.color import BT709, YCbCrSpec
from vidcolor.colorist import FrameColorist
from vidcolor.models import get_colorizer
from vidcolor.ops import area_resize, pixel_grid, resize_flow
from vidcolor.temporal.smooth import warp


def test_area_resize_halving_is_adaptive_pooling_bit_for_bit():
    g = torch.Generator().manual_seed(0)
    for shape in [(2, 1, 480, 854), (1, 2, 6, 10), (3, 3, 2, 2)]:
        t = torch.randn(shape, generator=g) * 37.0 + 50.0
        size = (shape[2] // 2, shape[3] // 2)
        assert torch.equal(area_resize(t, size), F.adaptive_avg_pool2d(t, size))
    # other ratios take the pooling itself
    t = torch.randn(1, 1, 7, 9, generator=g)
    assert torch.equal(area_resize(t, (3, 4)), F.adaptive_avg_pool2d(t, (3, 4)))
    assert area_resize(t, (3, 4)).shape == (1, 1, 3, 4)


def test_resize_flow_scales_each_component_as_numpy_does():
    rng = np.random.default_rng(1)
    flow = rng.normal(0, 4, (37, 53, 2)).astype(np.float32)
    for size, interp in [((111, 200), cv2.INTER_LINEAR), ((20, 31), cv2.INTER_AREA)]:
        want = cv2.resize(flow, size[::-1], interpolation=interp) * np.float32([size[1] / 53, size[0] / 37])
        got = resize_flow(flow, size, interp)
        assert got.dtype == np.float32 and np.array_equal(got, want)
    assert resize_flow(flow, (37, 53)) is flow


def test_pixel_grid_is_made_once_and_read_only():
    a = pixel_grid(5, 7)
    assert a is pixel_grid(5, 7) and not a.flags.writeable
    assert a[4, 6].tolist() == [6.0, 4.0]


def test_warp_with_the_whole_map_equals_the_split_one():
    rng = np.random.default_rng(2)
    img = rng.normal(0, 30, (40, 60, 2)).astype(np.float32)
    flow = rng.normal(0, 6, (40, 60, 2)).astype(np.float32)  # some positions fall outside: replicated border
    pos = pixel_grid(40, 60) + flow
    want = cv2.remap(img, np.ascontiguousarray(pos[..., 0]), np.ascontiguousarray(pos[..., 1]), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)
    assert np.array_equal(warp(img, flow), want)


def test_colorist_lut_lookup_equals_the_gather():
    spec = YCbCrSpec(BT709, False, 8)
    fc = FrameColorist(get_colorizer("transfer", device=torch.device("cpu")), torch.device("cpu"), spec, spec,
                       (12, 16), (24, 32))
    luma = np.random.default_rng(3).integers(0, 256, (3, 24, 32), dtype=np.uint8)
    want = fc.lut[torch.from_numpy(luma.astype(np.int64))].unsqueeze(1)
    for full in (True, False):
        got = fc._luma_to_l(luma, full=full)
        if not full:
            small = np.stack([cv2.resize(f, (16, 12), interpolation=cv2.INTER_AREA) for f in luma])
            want_small = fc.lut[torch.from_numpy(small.astype(np.int64))].unsqueeze(1)
            assert torch.equal(got, want_small)
        else:
            assert torch.equal(got, want)


def test_smoother_step_and_fuse_give_the_broadcast_formula():
    from vidcolor.temporal.smooth import NumpyOps

    rng = np.random.default_rng(4)
    h, w = 30, 50
    state = (rng.normal(0, 0.1, (h, w, 2)).astype(np.float32), rng.uniform(0, 5, (h, w)).astype(np.float32))
    fresh = rng.normal(0, 0.1, (h, w, 2)).astype(np.float32)
    weight = rng.uniform(0.2, 4, (h, w)).astype(np.float32)
    flow = rng.normal(0, 2, (h, w, 2)).astype(np.float32)
    conf = rng.uniform(0, 1, (h, w)).astype(np.float32)
    (out, total), (colour, prec) = NumpyOps().step(state, fresh, weight, flow, conf, 0.5)
    assert np.array_equal(out, fresh + (prec / np.maximum(total, 1e-6))[..., None] * (colour - fresh))
    f_prec = rng.uniform(0, 3, (h, w)).astype(np.float32)
    fused = NumpyOps().fuse(fresh, f_prec, colour, prec)
    assert np.array_equal(fused, fresh + (prec / np.maximum(f_prec + prec, 1e-6))[..., None] * (colour - fresh))
