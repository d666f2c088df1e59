"""The still's chroma follows the frame's exposure (a print's flicker, a vignette): a darker frame of
the still's scene is given proportionally less chroma, as a darker print of that scene shows
(vidcolor.models.align.exposure_gain, exemplar.follow_exposure)."""
from __future__ import annotations

import numpy as np
import torch

from test_exemplar import cbcr, colorizer, red_square_scene, to_t
from vidcolor.color import BT709, YCbCrSpec, gray_to_l, rgb_to_luma
from vidcolor.models.align import exposure_gain
from vidcolor.models.exemplar import l8_of

SPEC = YCbCrSpec(BT709, True, 8)


def exposed(rgb: np.ndarray, gain) -> np.ndarray:
    """The picture under ``gain`` (a number or an (H, W) field): R'G'B' scaled, as a print's light scales it."""
    g = np.asarray(gain, np.float32)
    return np.clip(np.rint(rgb.astype(np.float32) * (g[..., None] if g.ndim else g)), 0, 255).astype(np.uint8)


def l8(rgb: np.ndarray) -> np.ndarray:
    return l8_of(gray_to_l(rgb_to_luma(to_t(rgb), SPEC)))[0]


def vignette(h: int, w: int, depth: float = 0.4) -> np.ndarray:
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    return 1 - depth * np.clip(((gx / w - 0.5) ** 2 + (gy / h - 0.5) ** 2) / 0.5, 0, 1)


def test_the_gain_is_the_exposure_of_the_frame_against_the_still():
    ref = red_square_scene()
    h, w = ref.shape[:2]
    conf = np.ones((h, w), np.float32)
    assert exposure_gain(l8(ref), l8(ref).astype(np.float32), conf) is None  # the still's own exposure
    g = exposure_gain(l8(exposed(ref, 0.7)), l8(ref).astype(np.float32), conf)
    assert abs(float(np.median(g)) - 0.7) < 0.03 and float(g.std()) < 0.03
    v = vignette(h, w)
    g = exposure_gain(l8(exposed(ref, v)), l8(ref).astype(np.float32), conf)
    assert abs(float(g[h // 2, w // 2]) - v[h // 2, w // 2]) < 0.08  # bright in the middle ...
    assert abs(float(g[4, 4]) - v[4, 4]) < 0.13  # ... dark in the corners (averaged over a span: a little less)
    assert float(g[h // 2, w // 2] - g[4, 4]) > 0.2


def test_where_nothing_is_matched_there_is_no_gain():
    ref = red_square_scene()
    none = np.zeros(ref.shape[:2], np.float32)
    assert exposure_gain(l8(exposed(ref, 0.6)), l8(ref).astype(np.float32), none) is None


def test_a_dimmer_frame_of_the_scene_gets_proportionally_less_chroma():
    ref = red_square_scene()
    frame = exposed(red_square_scene(dx=6, dy=4), 0.7)
    got = {}
    for follow in (True, False):
        c = colorizer(follow_exposure=follow)
        c.begin_shot(to_t(ref))
        got[follow] = c.colorize(gray_to_l(rgb_to_luma(to_t(frame), SPEC)))[0]
    true = cbcr(frame)  # the dimmer scene's own colour: 0.7 of the still's chroma
    square = (slice(50, 88), slice(62, 100))
    cr = {k: float(v[1][square].mean()) for k, v in got.items()}
    assert abs(cr[True] / float(true[1][square].mean()) - 1) < 0.08
    assert cr[False] / cr[True] > 1.3  # off: the still's chroma as it is, too vivid for the dimmer frame
    assert (got[True] - true).abs().mean() < (got[False] - true).abs().mean()


def test_a_still_of_the_frames_own_exposure_is_unchanged():
    ref = red_square_scene()
    frame = red_square_scene(dx=6, dy=4)
    outs = []
    for follow in (True, False):
        c = colorizer(follow_exposure=follow)
        c.begin_shot(to_t(ref))
        outs.append(c.colorize(gray_to_l(rgb_to_luma(to_t(frame), SPEC))))
    assert torch.allclose(outs[0], outs[1], atol=0.01)
