"""The gallery: a still retrieved per shot from a gallery by the chooser, exemplar blended with
auto by the exemplar's confidence (CPU, synthetic stills)."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from synth import make_clip, make_still
from vidcolor import colorize_video, load_config
from vidcolor.cli import main
from vidcolor.color import BT601, BT709, YCbCrSpec, gray_to_l, lab_to_chroma_codes, quantize_chroma, rgb_to_cbcr, rgb_to_lab, rgb_to_luma
from vidcolor.color import luma_lut
from vidcolor.config import AutoConfig
from vidcolor.errors import ConfigError, InputError
from vidcolor.models import get_colorizer
from vidcolor.models.blend import BlendColorizer, lab_to_cbcr
from vidcolor.models.registry import Colorizer
from vidcolor.references import ReferenceSchedule, ReferenceStore
from vidcolor.references.choose import BUILTIN_GALLERY, Chooser, gallery_folder

CPU = torch.device("cpu")
SPEC = YCbCrSpec(BT709, True, 8)


def textured(h=128, w=160, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.uniform(0, 1, (h, w)).astype(np.float32), (0, 0), 2.0)
    noise = (noise - noise.min()) / (noise.max() - noise.min())
    return np.stack([90 + 60 * noise, 130 + 60 * noise, 80 + 60 * noise], axis=-1).clip(0, 255).astype(np.uint8)


def red_square_scene(dx=0, dy=0) -> np.ndarray:
    img = textured()
    cv2.rectangle(img, (50 + dx, 40 + dy), (100 + dx, 90 + dy), (200, 30, 30), -1)
    cv2.rectangle(img, (60 + dx, 50 + dy), (66 + dx, 56 + dy), (240, 120, 120), -1)
    return img


def rings() -> np.ndarray:
    y, x = np.mgrid[0:128, 0:160]
    g = (128 + 100 * np.sin(np.hypot(x - 80, y - 64) / 2.5)).astype(np.uint8)
    return np.stack([g, 255 - g, np.full_like(g, 200)], axis=-1)


def stripes() -> np.ndarray:
    _, x = np.mgrid[0:128, 0:160]
    on = (x // 8) % 2 == 0
    return np.where(on[..., None], np.uint8([40, 60, 220]), np.uint8([240, 220, 30])).astype(np.uint8)


def to_t(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255


def L_of(rgb: np.ndarray) -> torch.Tensor:
    """L of the picture's luma: what a black-and-white film of it gives a colorizer."""
    return gray_to_l(rgb_to_luma(to_t(rgb), SPEC))


def write(folder, **images):
    folder.mkdir(exist_ok=True)
    for name, rgb in images.items():
        cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return folder


@pytest.fixture
def auto(auto_weights):
    return get_colorizer("auto", device=CPU, config=AutoConfig(weights=str(auto_weights)))


def auto_cbcr(auto, L):
    """What auto alone puts in the file, as Cb/Cr."""
    return lab_to_cbcr(L, auto.colorize(L), SPEC)


# -- the conversion ---------------------------------------------------------------------------
def test_lab_to_cbcr_is_the_pipelines_conversion():
    """auto's a/b reach the blend as the Cb/Cr the pipeline would write for them."""
    rgb = torch.rand(2, 3, 16, 20, generator=torch.Generator().manual_seed(0))
    lab = rgb_to_lab(rgb)
    for spec in (SPEC, YCbCrSpec(BT601, False, 8)):
        # an in-gamut colour comes back as its own Cb/Cr
        assert torch.allclose(lab_to_cbcr(lab[:, :1], lab[:, 1:], spec), rgb_to_cbcr(rgb, spec), atol=2e-3)
        # auto's a/b on a frame's L: the same codes as the pipeline's Lab route, to a code
        L = gray_to_l(rgb_to_luma(rgb, spec))
        ab = lab[:, 1:] * 1.3
        ours = quantize_chroma(lab_to_cbcr(L, ab, spec), spec).numpy().astype(int)
        theirs = lab_to_chroma_codes(torch.cat((L, ab), 1), spec).astype(int)
        assert np.abs(ours - theirs).max() <= 1


# -- retrieval and blending -------------------------------------------------------------------
def gallery_chooser(folder, **retrieval):
    """The chooser of a run with no still and ``folder`` as its gallery."""
    cfg = load_config(overrides={"gallery": str(folder), **{f"retrieval.{k}": v for k, v in retrieval.items()}})
    return Chooser(cfg, ReferenceSchedule.automatic(), ReferenceStore(CPU), luma_lut(SPEC, CPU))


def gallery_blend(auto, exemplar=None):
    b = BlendColorizer(device=CPU, auto=auto, exemplar=exemplar or get_colorizer("exemplar", device=CPU), full=False,
                       name="gallery")
    b.set_ycbcr(SPEC)
    return b


def test_a_matching_still_lands_its_colour(tmp_path, auto, monkeypatch):
    folder = write(tmp_path / "gallery", match=red_square_scene(), rings=rings(), stripes=stripes())
    frame = red_square_scene(dx=8, dy=5)
    L = L_of(frame).repeat(2, 1, 1, 1)
    choice = gallery_chooser(folder).choose_image(L[:1], "frame")
    assert choice.kind == "gallery" and choice.still.name == "match.png"
    assert choice.score >= 0.5 and choice.gate == 1.0  # over gate_high: full colour
    # the still is gated by the score the chooser chose it by: nothing is scored again
    import vidcolor.references.retrieval as retrieval

    monkeypatch.setattr(retrieval, "ReferenceIndex", lambda *a, **k: pytest.fail("scored again"))
    g = gallery_blend(auto)
    g.begin_shot(ReferenceStore(CPU).get(choice.still), choice)
    out = g.colorize(L)
    assert g.exemplar.score == choice.score and g.exemplar.gate == 1.0
    assert out.shape == (2, 2, 128, 160) and torch.isfinite(out).all()
    true = rgb_to_cbcr(to_t(frame), SPEC)[0]
    square = (slice(None), slice(50, 88), slice(64, 102))
    got = out[0][square].mean(dim=(1, 2))
    assert got[1] > 0.2  # red: Cr strongly positive, from the still
    assert (out[0][square] - true[square]).abs().mean() < 0.03
    # the exemplar is trusted where its flow holds: most of the frame, weight near 1 there
    assert g.weight is not None and (g.weight > 0.8).float().mean() > 0.5
    # and the result is not auto's (random weights here: wrong colours)
    assert (out - auto_cbcr(auto, L)).abs().mean() > 0.01


def test_an_unrelated_gallery_gives_autos_colour_exactly(tmp_path, auto, monkeypatch):
    folder = write(tmp_path / "gallery", rings=rings(), stripes=stripes())
    L = L_of(red_square_scene(dx=3)).repeat(3, 1, 1, 1)
    choice = gallery_chooser(folder).choose_image(L[:1], "frame")
    assert choice.kind == "auto" and choice.still is None
    assert choice.report["unmatched"] and choice.report["score"] < 0.5
    g = gallery_blend(auto)
    painted = []
    monkeypatch.setattr(g.exemplar, "colorize", lambda L: painted.append(L) or torch.zeros(1))
    g.begin_shot(None, choice)
    out = g.colorize(L)
    assert not painted  # no still's colour anywhere
    assert torch.equal(out, auto_cbcr(auto, L))
    assert g.confidence is None and g.weight is None


class _Const(Colorizer):
    """A stub: constant chroma, and (as exemplar) a chosen confidence map and gate."""

    needs_reference = False

    def __init__(self, value, chroma="cbcr", confidence=None, gate=1.0):
        super().__init__(CPU)
        self.value, self.chroma, self.conf, self.gate = torch.tensor(value), chroma, confidence, gate

    def begin_shot(self, reference, choice=None):  # the gate stays the one the test chose
        self.reference = reference

    def colorize(self, L):
        self.confidence = None if self.conf is None else self.conf.expand(L.shape[0], -1, -1, -1)
        return self.value.view(1, 2, 1, 1).expand(L.shape[0], 2, *L.shape[-2:]) * self.gate


@pytest.mark.parametrize("gate", [1.0, 0.5])
def test_blend_weights_follow_the_exemplars_confidence(gate):
    conf = torch.linspace(0.2, 1.0, 8).view(1, 1, 1, 8).expand(1, 1, 4, 8)  # working size: half the frame's
    ex = _Const([-0.1, 0.3], confidence=conf, gate=gate)
    auto = _Const([0.0, 0.0], chroma="lab")  # gray
    g = gallery_blend(auto, ex)
    g.begin_shot(to_t(stripes()))
    L = torch.full((2, 1, 8, 16), 50.0)
    out = g.colorize(L)
    assert ex.reference is not None  # the still went to the exemplar
    w = torch.nn.functional.interpolate(gate * conf, size=(8, 16), mode="bilinear", align_corners=False)
    assert torch.allclose(out[:, 1:], 0.3 * w.expand(2, -1, -1, -1), atol=1e-5)
    assert torch.allclose(out[:, :1], -0.1 * w.expand(2, -1, -1, -1), atol=1e-5)
    # the exemplar's colour where it is sure (and the gate is open), auto's (gray) where it is not
    assert out[0, 1, :, -1].mean() > out[0, 1, :, 0].mean() * 3
    assert torch.allclose(g.weight, gate * conf.expand(2, -1, -1, -1))
    assert torch.allclose(g.confidence, 1 - gate * conf * (1 - conf))


@pytest.mark.parametrize("gate", [1.0, 0.5, 0.0])
def test_a_given_still_blends_with_auto_by_its_gate(gate):
    """A still given for the shot (not retrieved): at full match the exemplar's colour everywhere, as the
    exemplar alone; a partial match mixes in automatic colour, more of it where the exemplar is less sure,
    smoothly down to automatic colour alone (gate 0); never faded toward gray."""
    conf = torch.linspace(0.2, 1.0, 8).view(1, 1, 1, 8).expand(1, 1, 4, 8)
    ex = _Const([-0.1, 0.3], confidence=conf, gate=gate)
    auto = _Const([0.05, -0.2])  # already Cb/Cr
    b = BlendColorizer(device=CPU, auto=auto, exemplar=ex)
    assert b.name == f"{ex.name}+{auto.name}"
    b.set_ycbcr(SPEC)
    still = torch.rand(1, 3, 8, 16)
    b.begin_shot(still)
    assert ex.reference is still and b.needs_reference
    L = torch.full((2, 1, 8, 16), 50.0)
    out = b.colorize(L)
    w = gate * (conf + gate * (1 - conf))
    up = torch.nn.functional.interpolate(w, size=(8, 16), mode="bilinear", align_corners=False)
    want = torch.tensor([-0.1, 0.3]).view(1, 2, 1, 1) * up + torch.tensor([0.05, -0.2]).view(1, 2, 1, 1) * (1 - up)
    if gate == 0.0:
        assert torch.equal(out, auto.colorize(L)) and b.confidence is None
        return
    assert torch.allclose(out, want.expand(2, -1, -1, -1), atol=1e-6)
    if gate == 1.0:  # the exemplar alone, its confidence unchanged
        assert torch.allclose(out, torch.tensor([-0.1, 0.3]).view(1, 2, 1, 1).expand(2, 2, 8, 16), atol=1e-6)
        assert torch.allclose(b.confidence, conf.expand(2, -1, -1, -1))
    else:  # auto's colour fills in most where the exemplar is least sure
        assert b.weight[0, 0, 0, 0] < b.weight[0, 0, 0, -1] <= gate + 1e-6
        assert (out[:, 1] - 0.3).abs().max() > 0.1 and (out[:, 1] - (-0.2)).abs().min() > 0.1
    # no still for a shot: automatic colour
    b.begin_shot(None)
    assert torch.equal(b.colorize(L), auto.colorize(L)) and b.weight is None


def test_a_closed_gate_gives_autos_colour():
    ex = _Const([-0.1, 0.3], confidence=None, gate=0.0)
    auto = _Const([5.0, 20.0], chroma="lab")
    g = gallery_blend(auto, ex)
    g.begin_shot(to_t(stripes()))
    L = torch.full((1, 1, 8, 16), 50.0)
    assert torch.equal(g.colorize(L), lab_to_cbcr(L, auto.colorize(L), SPEC))


# -- configuration, package, pipeline ---------------------------------------------------------
def test_gallery_folder_and_builtin():
    assert gallery_folder("builtin") == BUILTIN_GALLERY
    stills = sorted(p.name for p in BUILTIN_GALLERY.glob("*.jpg"))
    assert len(stills) >= 3 and (BUILTIN_GALLERY / "SOURCES.md").is_file()
    sources = (BUILTIN_GALLERY / "SOURCES.md").read_text()
    assert all(name in sources for name in stills)  # every shipped still has its source and licence
    assert sum(p.stat().st_size for p in BUILTIN_GALLERY.glob("*.jpg")) < 400_000


def test_bad_gallery_is_one_clear_error(tmp_path):
    L = torch.full((1, 1, 32, 32), 50.0)
    with pytest.raises(InputError, match="gallery folder not found"):
        gallery_chooser(tmp_path / "nope").choose_image(L, "frame")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images"):
        gallery_chooser(tmp_path / "empty").choose_image(L, "frame")
    from vidcolor.pipeline import Painters

    with pytest.raises(ConfigError, match="--gallery"):
        Painters(load_config(overrides={"colorizer": "gallery"}), ReferenceSchedule.automatic(), CPU)


def test_video_with_a_gallery(tmp_path, auto_weights):
    """No reference and --gallery: the shot gets its gallery still (reported), luma kept;
    the config key works as the option does."""
    src = make_clip(tmp_path / "clip.mp4", n=16, w=96, h=64)
    gallery = tmp_path / "gallery"
    gallery.mkdir()
    make_still(gallery / "scene.png", w=96, h=64)
    write(gallery, rings=cv2.resize(rings(), (96, 64)))
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(f"gallery: {gallery}\nauto:\n  weights: {auto_weights}\nshots:\n  detector: \"off\"\n")
    res = CliRunner().invoke(main, [str(src), "-o", str(tmp_path / "out.mp4"), "-c", str(cfg_file),
                                    "--report", str(tmp_path / "r.json"), "-q"])
    assert res.exit_code == 0, res.output
    shots = json.loads((tmp_path / "r.json").read_text())["shots"]
    assert [s["colorizer"] for s in shots] == ["gallery"]
    assert shots[0]["reference"].endswith("scene.png") and shots[0]["score"] >= 0.5
    # --gallery on the command line; an unrelated gallery: auto's colour, reported unmatched
    cfg = load_config(overrides={"auto.weights": str(auto_weights), "shots.detector": "off", "temporal.mode": "off"})
    plain = colorize_video(src, tmp_path / "auto.mp4", config=cfg)
    other = write(tmp_path / "other", rings=rings(), stripes=stripes())
    res = CliRunner().invoke(main, [str(src), "-o", str(tmp_path / "g.mp4"), "--gallery", str(other), "-c",
                                    str(cfg_file), "--temporal", "off", "--report", str(tmp_path / "g.json"), "-q"])
    assert res.exit_code == 0, res.output
    shot = json.loads((tmp_path / "g.json").read_text())["shots"][0]
    assert shot["unmatched"] and shot["reference"] is None
    assert plain.shots[0]["colorizer"] == "auto"
    a, b = _chroma(tmp_path / "auto.mp4"), _chroma(tmp_path / "g.mp4")
    assert np.abs(a - b).mean() < 1.0  # auto alone in both (pooled after vs before the conversion)


def _chroma(path) -> np.ndarray:
    import av

    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray()[f.height:].astype(np.float32) for f in c.decode(video=0)])
