"""The exemplar colorizer: alignment, fusion, guided upsampling, weights, training (CPU, synthetic)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from vidcolor.color import BT709, YCbCrSpec, gray_to_l, rgb_to_cbcr, rgb_to_lab, rgb_to_luma
from vidcolor.config import ExemplarConfig
from vidcolor.errors import ConfigError, ModelError
from vidcolor.models import get_colorizer
from vidcolor.models.exemplar import ExemplarColorizer, GlobalAlign, flow_align, guided_upsample
from vidcolor.models.fusion import FusionNet, RuleFusion, load_fusion, save_fusion
from vidcolor.ops import dis_flow


def textured(h=128, w=160, seed=0) -> np.ndarray:
    """A gray-green textured background (uint8 RGB) that optical flow and features can lock on to."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.uniform(0, 1, (h, w)).astype(np.float32), (0, 0), 2.0)
    noise = (noise - noise.min()) / (noise.max() - noise.min())
    base = np.stack([90 + 60 * noise, 130 + 60 * noise, 80 + 60 * noise], axis=-1)
    return base.clip(0, 255).astype(np.uint8)


def red_square_scene(dx=0, dy=0, seed=0) -> np.ndarray:
    img = textured(seed=seed)
    cv2.rectangle(img, (50 + dx, 40 + dy), (100 + dx, 90 + dy), (200, 30, 30), -1)
    cv2.rectangle(img, (60 + dx, 50 + dy), (66 + dx, 56 + dy), (240, 120, 120), -1)  # a mark inside, for flow
    return img


def to_t(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255


def colorizer(**kw) -> ExemplarColorizer:
    return get_colorizer("exemplar", device=torch.device("cpu"), config=ExemplarConfig(**kw))


def cbcr(rgb: np.ndarray) -> torch.Tensor:
    """(2, H, W) Cb/Cr in [-0.5, 0.5] (BT.709, as the colorizer's default matrix)."""
    return rgb_to_cbcr(to_t(rgb), YCbCrSpec(BT709, True, 8))[0]


def L_of(rgb: np.ndarray) -> torch.Tensor:
    """(1, 1, H, W) L of the picture's luma: what a black-and-white film of it gives the colorizer."""
    return gray_to_l(rgb_to_luma(to_t(rgb), YCbCrSpec(BT709, True, 8)))


def test_shapes_ranges_and_determinism():
    ref = to_t(red_square_scene())
    L = L_of(red_square_scene(dx=4, dy=2)).repeat(3, 1, 1, 1)
    outs = []
    for _ in range(2):
        c = colorizer()
        c.begin_shot(ref)
        outs.append(c.colorize(L))
    ab = outs[0]
    assert ab.shape == (3, 2, 128, 160) and ab.dtype == torch.float32
    assert torch.isfinite(ab).all() and ab.abs().max() <= 0.5
    assert torch.equal(outs[0], outs[1])


def test_colour_lands_on_the_square_not_the_background():
    """A red square in the reference colours the (moved) square in the frame, and only it."""
    ref = red_square_scene()
    frame = red_square_scene(dx=10, dy=6, seed=0)
    c = colorizer()
    c.begin_shot(to_t(ref))
    got = c.colorize(L_of(frame))[0]
    true = cbcr(frame)
    inside = got[:, 52:90, 66:104].mean(dim=(1, 2))
    outside = got[:, 100:, :].mean(dim=(1, 2))
    assert inside[1] > 0.2  # red: Cr strongly positive
    assert (outside - true[:, 100:, :].mean(dim=(1, 2))).abs().max() < 0.03  # the background stays green-gray
    assert (got - true).abs().mean() < 0.02


def test_attention_prefers_reference_cells_of_the_frame_cells_tone():
    """Features alike (a flat red and a flat green patch look the same to a gray backbone's
    semantics here: identical features), tones apart: with the tone term each frame cell takes
    the colour of the reference cells of its own mean luminance; without it, their average."""
    from vidcolor.models.exemplar import FeatureMatcher

    m = FeatureMatcher(torch.device("cpu"), temperature=0.04, tone_weight=1.0)
    q = torch.nn.functional.normalize(torch.ones(1, 8, 1, 2), dim=1)  # two frame cells
    k = torch.nn.functional.normalize(torch.ones(1, 8, 1, 2), dim=1)  # two reference cells, same features
    ab = torch.tensor([[20.0, -20.0], [-10.0, 10.0]]).view(1, 2, 1, 2)  # cell 0 one colour, cell 1 another
    q_tone, k_tone = torch.tensor([[0.3, 0.7]]), torch.tensor([[0.3, 0.7]])
    got, best = m.attend(q, k, ab, q_tone, k_tone)
    assert torch.allclose(got[0, :, 0, 0], ab[0, :, 0, 0], atol=0.5)  # dark cell: the dark cell's colour
    assert torch.allclose(got[0, :, 0, 1], ab[0, :, 0, 1], atol=0.5)
    assert torch.allclose(best, torch.ones_like(best))  # the confidence is the features' similarity alone
    m.tone_weight = 0.0
    plain, _ = m.attend(q, k, ab, q_tone, k_tone)
    assert torch.allclose(plain[0, :, 0, 0], ab[0].mean(dim=(1, 2)), atol=1e-4)


def test_a_grainy_print_s_features_are_matched_on_blurred_copies():
    """Grain reads as texture to the backbone: a grainy frame's cells match the clean still's poorly.
    Told the print is grainy (``grainy``: the pipeline's grain filter is on), the attention takes the
    features of frame and still from copies blurred by ``grain_blur``: they match better; untold, or
    with ``grain_blur`` 0, the features are the frame's own."""
    ref, frame = red_square_scene(), red_square_scene(dx=4, dy=2)
    L = L_of(frame)
    g = torch.from_numpy(cv2.GaussianBlur(np.random.default_rng(0).normal(0, 1, L.shape[-2:]).astype(np.float32),
                                          (0, 0), 0.7))
    L = (L + 4.0 * g / g.std()).clamp(0, 100)  # grain of 4 L units (about 10 codes)
    sims = {}
    for blur in (2.0, 0.0):
        c = colorizer(grain_blur=blur)
        c.begin_shot(to_t(ref))
        c.colorize(L)
        Lw = c._working(L)
        for grainy in (False, True):
            c.grainy = grainy
            _, sim = c.attention(Lw, c._still)
            sims[blur, grainy] = float(sim.mean())
        assert c._still.feat_at(0.0) is c._still.feat
        if blur:
            assert c._still.feat_at(blur) is c._still.feat_at(blur)  # made once
    assert sims[2.0, True] > sims[2.0, False] + 0.04, sims  # 0.55 against 0.48
    assert sims[0.0, True] == sims[0.0, False] == sims[2.0, False], sims


def test_reference_is_prepared_once_per_shot(monkeypatch):
    c = colorizer()
    calls = []
    real = c.matcher.features
    monkeypatch.setattr(c.matcher, "features", lambda L: calls.append(L.shape[0]) or real(L))
    L = L_of(red_square_scene(dx=3))
    c.begin_shot(to_t(red_square_scene()))
    for _ in range(3):
        c.colorize(L)
    assert calls == [1, 1, 1, 1]  # the reference once, then one frame per batch
    c.begin_shot(to_t(red_square_scene(seed=1)))
    c.colorize(L)
    assert calls == [1, 1, 1, 1, 1, 1]


def test_the_choice_gate_sets_the_share_of_the_stills_colour():
    """The exemplar gives ``choice.gate`` of its still's colour (decided outside, by the chooser): none at 0,
    half at 0.5, all at 1; it scores nothing itself."""
    from vidcolor.references import ShotChoice

    c = colorizer()
    L = L_of(red_square_scene(dx=3))
    full = None
    for gate in (1.0, 0.5, 0.0):
        c.begin_shot(to_t(red_square_scene()), ShotChoice("exemplar", Path("still.png"), 0.5, gate))
        ab = c.colorize(L)
        assert c.gate == gate
        if full is None:
            full = ab
            assert ab.abs().max() > 0.05
        else:
            assert torch.allclose(ab, full * gate, atol=1e-5)


def moved_pair():
    """flow_align's inputs for the red-square scene moved by (5, 3): the still's uint8 L and a/b, the
    moved frame's Lab (3, H, W) and uint8 L."""
    lab = rgb_to_lab(to_t(red_square_scene()))[0]
    ref_l8 = (lab[0].numpy() * 2.55).round().astype(np.uint8)
    ref_ab = np.ascontiguousarray(lab[1:].permute(1, 2, 0).numpy())
    moved = rgb_to_lab(to_t(red_square_scene(dx=5, dy=3)))[0]
    return ref_l8, ref_ab, moved, (moved[0].numpy() * 2.55).round().astype(np.uint8)


def test_flow_align_confident_where_the_view_holds():
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    ref_l8, ref_ab, moved, tgt_l8 = moved_pair()
    ab, conf, _ = flow_align(tgt_l8, ref_l8, ref_ab, dis)
    err = np.abs(ab - moved[1:].permute(1, 2, 0).numpy()).mean(-1)
    assert np.median(conf) > 0.5
    assert err[conf > 0.5].mean() < 4
    mirrored = np.ascontiguousarray(ref_l8[:, ::-1])  # another view: flow cannot hold everywhere
    _, conf_m, _ = flow_align(mirrored, ref_l8, ref_ab, dis)
    assert conf_m.mean() < conf.mean()


def test_the_backward_flow_only_checks_and_may_be_coarser():
    """flow_align's backward pass (still -> frame) runs on ``check``; the colour follows the forward flow.
    The colorizer builds its check flow from exemplar.check_preset (none apart when it is flow_preset)."""
    calls = []

    class Rec:
        def __init__(self, name, preset):
            self.name, self.dis = name, cv2.DISOpticalFlow_create(preset)

        def calc(self, a, b, flow):
            calls.append(self.name)
            return self.dis.calc(a, b, flow)

    ref_l8, ref_ab, _, tgt_l8 = moved_pair()
    fwd = Rec("forward", cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    ab, conf, _ = flow_align(tgt_l8, ref_l8, ref_ab, fwd, check=Rec("check", cv2.DISOPTICAL_FLOW_PRESET_FAST))
    assert calls == ["forward", "check"]
    ab1, conf1, _ = flow_align(tgt_l8, ref_l8, ref_ab, fwd)
    assert calls[2:] == ["forward", "forward"]
    assert np.array_equal(ab, ab1)  # the colour is the forward flow's either way
    assert np.median(conf) > 0.5 and abs(float(conf.mean()) - float(conf1.mean())) < 0.1
    assert colorizer(check_preset="fast")._check is not None
    assert colorizer(check_preset="medium")._check is None
    with pytest.raises(ConfigError, match="exemplar.check_preset must be one of ultrafast, fast, medium, fine"):
        colorizer(check_preset="slow")


def pushed_in(zoom=2.0, x0=60.0, y0=40.0, seed=4):
    """A wide still (256 x 320: a textured scene with a red square) and a frame that pushes in on part
    of it (``zoom`` x, the crop's corner at (x0, y0) in the still): both RGB, and the true (2, 3) map
    from frame pixels to still pixels."""
    still = textured(256, 320, seed=seed)
    cv2.rectangle(still, (110, 80), (190, 150), (200, 30, 30), -1)
    cv2.rectangle(still, (130, 95), (140, 105), (240, 120, 120), -1)
    true = np.float64([[1 / zoom, 0, x0], [0, 1 / zoom, y0]])
    frame = cv2.warpAffine(still, true, (320, 256), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP)
    return still, frame, true


def l8(rgb: np.ndarray) -> np.ndarray:
    return (rgb_to_lab(to_t(rgb))[0, 0].numpy() * 2.55).round().astype(np.uint8)


def test_global_align_finds_a_pushed_in_frame_in_its_still_and_nothing_where_no_map_holds():
    still, frame, true = pushed_in()
    found = GlobalAlign(l8(still))(l8(frame))
    assert found is not None
    corners = np.float32([[0, 0], [319, 0], [0, 255], [319, 255]])
    moved = cv2.perspectiveTransform(corners[:, None], found)[:, 0]
    assert np.abs(moved - (corners @ true[:, :2].T + true[:, 2])).max() < 2.0  # pixels of the still
    mirrored = np.ascontiguousarray(l8(frame)[:, ::-1])  # another view: no affine map moves it onto the still
    assert GlobalAlign(l8(still))(mirrored) is None
    assert GlobalAlign(l8(still))(l8(textured(256, 320, seed=9))) is None  # an unrelated scene
    # refit: the frames between fits take the last answer
    align = GlobalAlign(l8(still), refit=3)
    answers = [align(f) for f in (l8(frame), mirrored, mirrored, mirrored)]
    assert answers[1] is answers[0] and answers[2] is answers[0] and answers[3] is None


def test_only_a_reframing_counts_as_a_map():
    """Zoom, shift and another aspect ratio are re-framings; a mirror, a quarter turn, a collapse are not
    (fits like these on a road or a sky can match the luminance better than the still as it is)."""
    assert GlobalAlign.plausible(np.array([[0.99, 0.01], [-0.01, 0.56]]))  # a square photo for a 16:9 push-in
    assert GlobalAlign.plausible(np.array([[2.0, 0.0], [0.0, 2.0]]))
    for a in ([[-1.2, -0.14], [-0.24, 1.04]], [[0.42, -1.89], [-0.18, 0.67]], [[0.0, 1.0], [-1.0, 0.0]],
              [[0.05, 0.0], [0.0, 0.05]], [[3.0, 0.0], [0.0, 0.5]]):
        assert not GlobalAlign.plausible(np.array(a))


def test_a_prealigned_flow_colours_a_pushed_in_frame_where_the_plain_flow_cannot():
    still, frame, _ = pushed_in()
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    lab = rgb_to_lab(to_t(still))[0]
    ref_ab = np.ascontiguousarray(lab[1:].permute(1, 2, 0).numpy())
    truth = rgb_to_lab(to_t(frame))[0, 1:].permute(1, 2, 0).numpy()
    tgt = l8(frame)
    plain_ab, plain_conf, _ = flow_align(tgt, l8(still), ref_ab, dis, fb_sigma=5.0, l_sigma=15.0)
    ab, conf, flow = flow_align(tgt, l8(still), ref_ab, dis, fb_sigma=5.0, l_sigma=15.0,
                                prealign=GlobalAlign(l8(still))(tgt))
    err = np.abs(ab - truth).mean(-1)
    assert np.median(conf) > 0.5 and err[conf > 0.5].mean() < 4
    assert np.median(plain_conf) < 0.2 and np.abs(plain_ab - truth).mean() > 2 * err.mean()
    # the flow returned includes the map: frame pixel (100, 100) lies at (110, 90) in the still
    assert np.allclose(flow[100, 100] + [100, 100], [110, 90], atol=1.5)
    square = (slice(110, 180), slice(110, 240))  # the red square, pushed in
    assert ab[square][..., 0].mean() > 40  # a*: red


def test_the_colorizer_prealigns_a_still_framed_wider_than_the_shot():
    still, frame, _ = pushed_in()
    truth = cbcr(frame)
    err = {}
    for prealign in (True, False):
        c = colorizer(prealign=prealign, work_size=256)
        c.begin_shot(to_t(still))
        err[prealign] = float((c.colorize(L_of(frame))[0] - truth).abs().mean())
        assert (c._still.aligner is not None) == prealign
    assert err[True] < 0.5 * err[False]


def test_flow_align_carries_the_stills_edge_colour_past_its_edge():
    """A pan: the frame shows 12 columns the still does not. Past the still's edge its edge colour
    goes on (a blue wall stays blue), trusted less the farther out; with outside_sigma 0 nothing."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    wide = textured(128, 200, seed=3)
    wide[:, 120:] = (wide[:, 120:].astype(np.float32) * [0.4, 0.6, 1.6]).clip(0, 255).astype(np.uint8)  # bluish
    lab = rgb_to_lab(to_t(wide))[0]
    l8 = (lab[0].numpy() * 2.55).round().astype(np.uint8)
    ab = np.ascontiguousarray(lab[1:].permute(1, 2, 0).numpy())
    ref_l8, ref_ab = np.ascontiguousarray(l8[:, :160]), np.ascontiguousarray(ab[:, :160])
    tgt_l8, tgt_ab = np.ascontiguousarray(l8[:, 12:172]), ab[:, 12:172]  # 12 px to the right
    out, conf, _ = flow_align(tgt_l8, ref_l8, ref_ab, dis, fb_sigma=5.0, l_sigma=15.0, outside_sigma=16.0)
    _, conf0, _ = flow_align(tgt_l8, ref_l8, ref_ab, dis, fb_sigma=5.0, l_sigma=15.0, outside_sigma=0.0)
    band = np.s_[8:-8, -10:]  # the frame's columns the still does not show
    assert conf0[band].max() == 0
    assert conf[band].mean() > 0.3
    assert conf[band].mean() < conf[8:-8, 60:100].mean()  # less sure than inside
    err = np.abs(out[band] - tgt_ab[band]).mean()
    assert err < 0.25 * np.abs(tgt_ab[band] - ref_ab[:, :100].reshape(-1, 2).mean(0)).mean()


@pytest.mark.parametrize("seed", [0, 1])
def test_fine_flow_is_sharper_at_motion_boundaries_than_medium(seed):
    """A textured square moving 7 px over a background moving 2 px: the `fine` preset (DIS carried
    on to full resolution) errs less around the square's edge than OpenCV's medium preset."""
    def tex(h, w, s):
        n = cv2.GaussianBlur(np.random.default_rng(s).uniform(0, 255, (h, w)).astype(np.float32), (0, 0), 1.5)
        return cv2.normalize(n, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)

    bg, fg = tex(160, 200, seed), tex(60, 60, seed + 10)
    a = bg.copy()
    a[50:110, 60:120] = fg
    b = np.roll(bg, 2, axis=1).copy()
    b[50:110, 67:127] = fg
    truth = np.zeros((160, 200, 2), np.float32)
    truth[..., 0] = 2
    truth[50:110, 60:120, 0] = 7
    ring = np.zeros((160, 200), bool)
    ring[42:118, 52:128] = True
    ring[58:102, 68:112] = False
    err = {p: np.sqrt(((dis_flow(p).calc(a, b, None) - truth) ** 2).sum(-1))[ring].mean() for p in ("medium", "fine")}
    assert err["fine"] < 0.85 * err["medium"], err


def test_guided_upsample_follows_the_guide_edges():
    H, W = 64, 64
    L_hi = torch.full((1, 1, H, W), 30.0)
    L_hi[..., :, 33:] = 70.0  # an edge between columns 32 and 33
    ab_hi = torch.where(L_hi > 50, 40.0, -40.0).repeat(1, 2, 1, 1)
    L_lo = torch.nn.functional.interpolate(L_hi, size=(16, 16), mode="area")
    ab_lo = torch.nn.functional.interpolate(ab_hi, size=(16, 16), mode="area")
    up = guided_upsample(ab_lo, L_lo, L_hi, radius=1, eps=1e-4)
    bil = torch.nn.functional.interpolate(ab_lo, size=(H, W), mode="bilinear", align_corners=False)
    assert (up - ab_hi).abs().mean() < 0.5 * (bil - ab_hi).abs().mean()
    same = guided_upsample(ab_hi, L_hi, L_hi, radius=1, eps=1e-4)
    assert (same - ab_hi).abs().mean() < 2


def test_saturation_scales_chroma():
    ref, L = to_t(red_square_scene()), L_of(red_square_scene(dx=2))
    c1, c2 = colorizer(), colorizer(saturation=0.5)
    for c in (c1, c2):
        c.begin_shot(ref)
    assert torch.allclose(c2.colorize(L), 0.5 * c1.colorize(L), atol=1e-4)


def test_weights_round_trip_without_pickle(tmp_path):
    net = FusionNet(width=8, depth=2)
    with torch.no_grad():
        net.out.weight.normal_()
    path = tmp_path / "w.safetensors"
    save_fusion(net, path, {"steps": 7})
    assert path.read_bytes()[:8] != b"\x80\x04\x95"[:8]  # not a pickle
    loaded = load_fusion(str(path), torch.device("cpu"))
    assert loaded.meta == {"steps": 7} and loaded.config == net.config
    for k, v in net.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not weights")
    with pytest.raises(ModelError, match="cannot load exemplar weights"):
        load_fusion(str(bad), torch.device("cpu"))
    with pytest.raises(ModelError, match="not found"):
        load_fusion(str(tmp_path / "missing.safetensors"), torch.device("cpu"))
    assert isinstance(load_fusion("rule", torch.device("cpu")), RuleFusion)


def test_untrained_net_is_the_rule():
    x = {"L": torch.rand(2, 1, 20, 28) * 100, "ab_flow": torch.randn(2, 2, 20, 28) * 30,
         "conf_flow": torch.rand(2, 1, 20, 28), "ab_att": torch.randn(2, 2, 20, 28) * 30,
         "sim": torch.rand(2, 1, 20, 28)}
    assert torch.allclose(FusionNet(width=8, depth=3)(**x), RuleFusion()(**x), atol=1e-5)


def test_tiny_training_run_lowers_its_loss(tmp_path):
    from vidcolor.train.exemplar import TrainExemplarConfig, train_exemplar

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(4):
        img = red_square_scene(dx=8 * i, seed=i)
        img[:, :, i % 3] //= 2
        cv2.imwrite(str(photos / f"p{i}.png"), cv2.cvtColor(cv2.resize(img, (320, 256)), cv2.COLOR_RGB2BGR))
    cfg = TrainExemplarConfig(data=[str(photos)], out=str(tmp_path / "run"), size=64, pool=24, steps=120, batch=8,
                              lr=3e-3, width=8, depth=2, checkpoint_every=20, seed=1,
                              kinds={"keyframe": 0.5, "view": 0.5})
    weights = train_exemplar(cfg)
    rows = (tmp_path / "run" / "loss.csv").read_text().splitlines()[1:]
    assert len(rows) == 120
    net = load_fusion(str(weights), torch.device("cpu"))
    assert net.meta["steps"] == 120
    # on the whole pool, the trained net's a/b error is below the untrained rule's it started as
    pool = torch.load(tmp_path / "run" / "pool.pt", weights_only=True)
    x = {k: pool[k].float() for k in ("L", "ab_flow", "conf_flow", "ab_att", "sim")}
    with torch.no_grad():
        err_net = torch.nn.functional.smooth_l1_loss(net(**x), pool["ab"].float(), beta=2.0).item()
        err_rule = torch.nn.functional.smooth_l1_loss(RuleFusion()(**x), pool["ab"].float(), beta=2.0).item()
    assert err_net < 0.9 * err_rule, (err_net, err_rule)
    # resume: a finished run does no more steps, a longer one continues from the checkpoint
    longer = TrainExemplarConfig(**{**cfg.__dict__, "steps": 130})
    train_exemplar(longer)
    rows = (tmp_path / "run" / "loss.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(1, 131))



def test_motion_examples_move_objects_of_other_photos_over_a_keyframe(tmp_path):
    """``motion`` training pairs: the target's background with objects cut from other photos on it,
    the reference the same background with the same objects somewhere else (occlusion, disocclusion)."""
    import random

    from vidcolor.train.exemplar import make_example

    colours = [(200, 30, 30), (30, 30, 200)]  # flat photos: the background is red, every object blue
    paths = []
    for i, c in enumerate(colours):
        p = tmp_path / f"p{i}.png"
        cv2.imwrite(str(p), np.full((120, 160, 3), c[::-1], np.uint8))
        paths.append(p)
    moved = 0
    for seed in range(8):
        rng = random.Random(seed)
        while True:  # a target on the red photo (the photo is drawn at random)
            state = rng.getstate()
            if rng.randrange(len(paths)) == 0:
                break
        rng.setstate(state)
        target, ref = make_example(paths, 64, "motion", rng)
        assert target.shape == ref.shape == (64, 64, 3) and target.dtype == np.uint8
        blue_t = target[..., 2] > target[..., 0]
        blue_r = ref[..., 2] > ref[..., 0]
        assert (~blue_t).mean() > 0.3 and (~blue_r).mean() > 0.3  # both show the red photo behind the objects
        assert blue_t.any() or blue_r.any()  # an object is in view in at least one of them
        moved += (blue_t != blue_r).mean() > 0.02
    assert moved >= 6  # the objects move between the two


def test_the_report_says_on_how_many_frames_of_a_shot_the_still_was_prealigned(tmp_path):
    import json

    import av
    from click.testing import CliRunner

    from vidcolor.cli import main

    still, _, _ = pushed_in()
    cv2.imwrite(str(tmp_path / "still.png"), cv2.cvtColor(still, cv2.COLOR_RGB2BGR))
    clip = tmp_path / "push.mp4"
    with av.open(str(clip), "w") as c:
        s = c.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = 320, 256, "yuv420p"
        for i in range(12):  # pushing in on the still, drifting right
            _, frame, _ = pushed_in(x0=60.0 + i)
            yuv = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="yuv420p").to_ndarray()
            yuv[256:] = 128  # black and white
            c.mux(s.encode(av.VideoFrame.from_ndarray(yuv, format="yuv420p")))
        c.mux(s.encode(None))
    (tmp_path / "off.yaml").write_text("exemplar:\n  prealign: false\n")
    shots = {}
    for name, extra in (("on", []), ("off", ["-c", str(tmp_path / "off.yaml")])):
        rep = tmp_path / f"{name}.json"
        r = CliRunner().invoke(main, [str(clip), "-r", str(tmp_path / "still.png"), "-o", str(tmp_path / f"{name}.mp4"),
                                      "--detector", "off", "--report", str(rep), "-q", *extra])
        assert r.exit_code == 0, r.output
        shots[name] = json.loads(rep.read_text())["shots"]
    assert len(shots["on"]) == 1 and shots["on"][0]["prealigned"] == 12
    assert "prealigned" not in shots["off"][0]


def sharp_scene(dx: int = 0, dy: int = 0, seed: int = 0, h: int = 128, w: int = 160) -> np.ndarray:
    """Fine texture (0.8 px) and hard-edged patches of many colours: a sharp still's detail."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.uniform(0, 1, (h + 40, w + 40)).astype(np.float32), (0, 0), 0.8)
    noise = (noise - noise.min()) / (noise.max() - noise.min())
    img = np.stack([90 + 70 * noise, 120 + 70 * noise, 80 + 70 * noise], -1)
    rng = np.random.default_rng(seed + 1)
    for _ in range(14):
        x, y = int(rng.integers(0, w + 20)), int(rng.integers(0, h + 20))
        col = tuple(float(c) for c in rng.integers(20, 235, 3))
        cv2.rectangle(img, (x, y), (x + int(rng.integers(6, 24)), y + int(rng.integers(6, 24))), col, -1)
    return np.clip(img[20 + dy:20 + dy + h, 20 + dx:20 + dx + w], 0, 255).astype(np.uint8)


def test_a_still_is_softened_as_much_as_the_print_is_soft():
    from vidcolor.models.align import Softened

    still = cv2.cvtColor(sharp_scene(), cv2.COLOR_RGB2GRAY)
    soft = Softened(still)
    for sigma, want in ((0.7, 0.7), (1.4, 1.4), (2.5, 2.4), (4.0, 4.0)):
        got = soft.at(cv2.GaussianBlur(still, (0, 0), sigma))
        assert np.array_equal(got, cv2.GaussianBlur(still, (0, 0), want)), sigma
    assert soft.at(still) is still  # a print as sharp as the still: the still itself
    grainy = np.clip(still + np.random.default_rng(0).normal(0, 8, still.shape), 0, 255).astype(np.uint8)
    assert soft.at(grainy) is still  # grain is no softness


def test_a_soft_print_gets_its_still_s_colour(monkeypatch):
    """A print out of focus (a 2.5 px blur) of a sharp colour still's scene, moved: the still softened
    as much before the flow and its luminance check carries its colour where a sharp still's edges,
    in other places to the flow and of other luminance to the check, lost it (twice the chroma error)."""
    frame = sharp_scene(dx=5, dy=3)
    err = _chroma_error_softened_or_not(monkeypatch, sharp_scene(), [cv2.GaussianBlur(frame, (0, 0), 2.5)], [frame])
    assert err[True] < 0.6 * err[False], err


def _chroma_error_softened_or_not(monkeypatch, ref: np.ndarray, prints: list, truths: list, skip: int = 0) -> dict:
    """The colorizer's mean chroma error over ``prints`` (a shot's frames, in order, coloured from
    ``ref``) against ``truths``, the first ``skip`` frames not counted: ``True`` with the flows' still
    softened as the print (:class:`~vidcolor.models.align.Softened`), ``False`` with it left sharp."""
    import vidcolor.models.align as align

    err = {}
    for softened in (False, True):
        with monkeypatch.context() as m:
            if not softened:
                m.setattr(align, "SOFT_SIGMAS", (0.0,))
            c = colorizer()
            c.begin_shot(to_t(ref))
            got = [c.colorize(L_of(p))[0] for p in prints]
            err[softened] = float(np.mean([(g - cbcr(f)).abs().mean() for g, f in list(zip(got, truths))[skip:]]))
    return err


def test_a_grainy_soft_print_s_blur_is_found_by_the_flow():
    """A soft print (2 px) that is also grainy reads as sharp as the still (its grain is fine detail),
    so the sharpness alone leaves the still as it is; the still carried onto the frame by a flow that
    holds differs least from it under the print's own blur, grain or not, and that is what
    :meth:`Softened.refine` picks."""
    from vidcolor.models.align import SOFT_SIGMAS, Softened
    from vidcolor.ops import pixel_grid

    still = cv2.cvtColor(sharp_scene(), cv2.COLOR_RGB2GRAY)
    grain = np.random.default_rng(0).normal(0, 10, still.shape)
    frame = np.clip(cv2.GaussianBlur(still, (0, 0), 2.0) + grain, 0, 255).astype(np.uint8)
    soft = Softened(still)
    assert soft.at(frame) is still  # grain reads as detail
    pos, conf = pixel_grid(*still.shape), np.ones(still.shape, np.float32)  # the flow: in place
    soft.refine(frame, pos, conf)
    assert SOFT_SIGMAS[soft.level] in (1.7, 2.0, 2.4), SOFT_SIGMAS[soft.level]
    assert np.array_equal(soft.at(frame), cv2.GaussianBlur(still, (0, 0), SOFT_SIGMAS[soft.level]))
    sharp = Softened(still)
    sharp.refine(np.clip(still + grain, 0, 255).astype(np.uint8), pos, conf)
    assert SOFT_SIGMAS[sharp.level] <= 0.5  # a grainy print as sharp as the still: (next to) none


def test_a_grainy_soft_print_gets_its_still_s_colour(monkeypatch):
    """The same through the colorizer, frame by frame (a batch of four, the print moved a little each
    frame): once the first flow has found the blur, the later frames' chroma error is two thirds of
    what it is with the still left sharp (as the sharpness alone leaves it for a grainy print)."""
    rng = np.random.default_rng(1)
    frames = [sharp_scene(dx=4 + k, dy=2) for k in range(4)]
    prints = [np.clip(cv2.GaussianBlur(f, (0, 0), 2.5).astype(np.float32) + rng.normal(0, 8, f.shape[:2])[..., None],
                      0, 255).astype(np.uint8) for f in frames]
    err = _chroma_error_softened_or_not(monkeypatch, sharp_scene(), prints, frames, skip=1)
    assert err[True] < 0.75 * err[False], err
