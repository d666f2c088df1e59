"""The temporal smoother's torch backend (the one a GPU run uses) against its numpy backend (the CPU's).

There may be no GPU: the torch backend is forced on CPU tensors, which runs the same code.
The two differ by float rounding and by cv2.remap's 1/32-pixel interpolation steps (grid_sample
interpolates exactly): measured on these clips, the final 8-bit codes differ by at most 1
(2 on one pixel in millions) on a few percent of pixels, mean difference under 0.05 codes.
"""
import av
import cv2
import numpy as np
import pytest
import torch

from synth_shots import write_video
from vidcolor import load_config
from vidcolor.color import YCbCrSpec, quantize_chroma
from vidcolor.models.registry import Colorizer, register_colorizer
from vidcolor.pipeline import colorize_video
from vidcolor.temporal import TemporalSmoother

H, W = 96, 160
SPEC = YCbCrSpec(1, False, 8)  # BT.709, limited range, 8 bit: 224 codes over Cb/Cr's [-0.5, 0.5]


def _clip(n=20, seed=0):
    """A textured picture panning right and down with a bright square moving left; chroma that
    moves with it (a smooth colour field, the square its own colour), a colour cast per frame
    and per-pixel noise."""
    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur(rng.uniform(0, 255, (H * 2, W * 3)).astype(np.float32), (0, 0), 3)
    tex = np.clip((tex - tex.mean()) * 3 + 120, 10, 245).astype(np.uint8)
    col = cv2.GaussianBlur(rng.uniform(-0.4, 0.4, (H * 2, W * 3, 2)).astype(np.float32), (0, 0), 4) * 3
    luma, chroma = [], []
    for t in range(n):
        y, x = 5 + t // 2, 5 + 2 * t
        f, c = tex[y:y + H, x:x + W].copy(), col[y:y + H, x:x + W].copy()
        s = W - 30 - 3 * t
        f[30:54, s:s + 24], c[30:54, s:s + 24] = 235, (0.3, -0.2)
        luma.append(f)
        chroma.append(c.transpose(2, 0, 1))
    chroma = np.stack(chroma) + rng.normal(0, 0.04, (n, 2, 1, 1)) + rng.normal(0, 0.02, (n, 2, H, W))
    return np.stack(luma), np.clip(chroma, -0.5, 0.5).astype(np.float32)


def _run(sm, luma, chroma, conf=None, pinned=None, batch=5, device="cpu"):
    """The clip through ``sm`` in batches; (N, 2, h, w) numpy, and the device of what came back."""
    out = []
    for a in range(0, len(luma), batch):
        m = sm.motion(luma[a:a + batch], chroma.shape[-2:])
        c = torch.from_numpy(chroma[a:a + batch]).to(device)  # as the colorizer gives it: a tensor on its device
        out += sm.push(list(range(a, min(a + batch, len(luma)))), c, m,
                       None if conf is None else torch.from_numpy(conf[a:a + batch]).to(device),
                       None if pinned is None else pinned[a:a + batch])
    out += sm.end_shot()
    assert [i for i, _ in out] == list(range(len(luma)))
    kinds = {c.device.type if isinstance(c, torch.Tensor) else "numpy" for _, c in out}
    return np.stack([c.cpu().numpy() if isinstance(c, torch.Tensor) else c for _, c in out]), kinds


def _codes(chroma):
    return quantize_chroma(torch.from_numpy(np.ascontiguousarray(chroma)), SPEC).numpy().astype(np.int16)


def _assert_close(a, b):
    d = np.abs(_codes(a) - _codes(b))
    assert d.max() <= 2, d.max()
    assert np.mean(d <= 1) >= 0.999, np.mean(d <= 1)
    assert d.mean() < 0.1, d.mean()
    assert np.abs(a - b).mean() < 5e-4, np.abs(a - b).mean()  # chroma units: 224 codes per 1


CASES = [  # mode, detail (chroma pixels), confidence and a pinned frame, chroma subsampled (motion resized)
    ("forward", 0.0, False, 1),
    ("forward", 2.0, True, 2),
    ("bidirectional", 2.0, True, 1),
    ("bidirectional", 0.0, False, 2),
]


def _inputs(detail_conf, sub):
    luma, chroma = _clip()
    chroma = np.ascontiguousarray(chroma[:, :, ::sub, ::sub])
    if not detail_conf:
        return luma, chroma, None, None
    rng = np.random.default_rng(3)
    conf = np.stack([cv2.GaussianBlur(rng.uniform(0, 1, chroma.shape[-2:]).astype(np.float32), (0, 0), 3)
                     for _ in range(len(luma))])
    return luma, chroma, np.clip(conf * 2 - 0.5, 0, 1), [t == 8 for t in range(len(luma))]


@pytest.mark.parametrize("mode,detail,conf,sub", CASES)
def test_the_torch_backend_matches_the_numpy_one(mode, detail, conf, sub):
    luma, chroma, confidence, pinned = _inputs(conf, sub)
    kw = dict(mode=mode, detail=detail, flow_size=256, threaded=False)
    want, kinds = _run(TemporalSmoother(**kw), luma, chroma, confidence, pinned)
    assert kinds == {"numpy"}
    got, kinds = _run(TemporalSmoother(backend="torch", **kw), luma, chroma, confidence, pinned)
    assert kinds == {"cpu"}  # tensors all the way
    _assert_close(got, want)
    if pinned is not None:  # a pinned frame is its fresh colour, in both
        assert np.allclose(got[8], chroma[8], atol=1e-5) and np.allclose(want[8], chroma[8], atol=1e-5)
    # and the smoothing did something: both are far from the fresh colour where the noise was
    assert np.abs(got - chroma).mean() > 20 * np.abs(got - want).mean()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("mode,detail,conf,sub", CASES[1:3])
def test_on_cuda_the_chroma_stays_on_the_device_and_matches_the_cpu(mode, detail, conf, sub):
    luma, chroma, confidence, pinned = _inputs(conf, sub)
    kw = dict(mode=mode, detail=detail, flow_size=256, threaded=False)
    sm = TemporalSmoother(device="cuda", **kw)
    assert sm.backend == "torch"
    got, kinds = _run(sm, luma, chroma, confidence, pinned, device="cuda")
    assert kinds == {"cuda"}
    _assert_close(got, _run(TemporalSmoother(**kw), luma, chroma, confidence, pinned)[0])


def test_the_backend_follows_the_device():
    assert TemporalSmoother(threaded=False).backend == "numpy"
    assert TemporalSmoother(device=torch.device("cpu"), threaded=False).backend == "numpy"
    assert TemporalSmoother(device="cuda:0", threaded=False).backend == "torch"  # nothing touches the GPU yet
    assert TemporalSmoother(device="cpu", backend="torch", threaded=False).backend == "torch"
    with pytest.raises(ValueError, match="unknown backend 'jax'"):
        TemporalSmoother(backend="jax")


# -- through the pipeline: the torch backend forced on a CPU run ---------------------------------------------


@register_colorizer("test-texture")
class _Texture(Colorizer):
    """Cb/Cr that follow the picture (from its luma), with a random colour cast per frame."""

    chroma = "cbcr"

    def __init__(self, *, device):
        super().__init__(device)
        self.rng = np.random.default_rng(0)

    def colorize(self, L):
        n = L.shape[0]
        x = L / 100.0 - 0.5
        ab = torch.cat((0.6 * x, 0.4 * x * x - 0.1), 1)
        return ab + torch.from_numpy(self.rng.normal(0, 0.04, (n, 2, 1, 1)).astype(np.float32))


def _chroma_planes(path):
    with av.open(str(path)) as c:
        out = []
        for f in c.decode(video=0):
            p = f.to_ndarray()  # yuv420p: (H * 3/2, W)
            h, w = f.height, f.width
            out.append(np.stack((p[h:h + h // 4].reshape(h // 2, w // 2), p[h + h // 4:].reshape(h // 2, w // 2))))
    return np.stack(out).astype(np.int16)


def test_a_run_with_the_torch_backend_writes_what_the_numpy_one_does(tmp_path, monkeypatch):
    """Bidirectional: the frames come back from the smoother in runs that span batches."""
    luma, _ = _clip(n=24)
    src = write_video(tmp_path / "pan.mp4", list(luma))
    cfg = load_config(overrides={"colorizer": "test-texture", "temporal.mode": "bidirectional", "temporal.window": 6,
                                 "temporal.overlap": 4, "shots.detector": "off", "encode.crf": 0,
                                 "runtime.batch_size": 5})
    colorize_video(src, tmp_path / "numpy.mp4", config=cfg)
    made = []

    def torch_backend(cls, t, bits=8, device=None):
        made.append(cls(t, bits=bits, backend="torch"))
        return made[-1]

    monkeypatch.setattr(TemporalSmoother, "from_config", classmethod(torch_backend))
    colorize_video(src, tmp_path / "torch.mp4", config=cfg)
    assert [s.backend for s in made] == ["torch"]
    want, got = _chroma_planes(tmp_path / "numpy.mp4"), _chroma_planes(tmp_path / "torch.mp4")
    assert got.shape == want.shape == (24, 2, H // 2, W // 2)
    d = np.abs(got - want)
    assert d.max() <= 2 and np.mean(d <= 1) >= 0.999 and d.mean() < 0.1, (d.max(), d.mean())
    assert np.abs(np.diff(got.mean((2, 3)), axis=0)).mean() > 0  # (a coloured film, not a constant)
