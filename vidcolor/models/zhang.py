"""``eccv16`` and ``siggraph17``: Zhang et al.'s released colorization networks.

For users who own the authors' weight files (``colorization_release_v2-9b330a0b.pth``,
``siggraph17-df00044c.pth``): ``vidcolor film.mp4 --model eccv16 --weights FILE.pth``.
Nothing is downloaded; the file is read with ``torch.load(..., weights_only=True)``
(no pickled code runs) and every key and shape is checked against the
architecture, which is written here after the published model definitions
(layout: ``../shared/reference/zhang_state_dicts.md``).

- ECCV16 (Zhang, Isola, Efros, "Colorful Image Colorization"): L at 256 x 256,
  (L - 50) / 100 in; logits over 313 ab bins at 64 x 64, softmax (with an
  optional temperature: 1 is what the released code does), the expectation
  over the bin centres held in ``model_out`` (x 110).
- SIGGRAPH17 (Zhang, Zhu, Isola et al., "Real-Time User-Guided Image
  Colorization"): L, ab hints and a hint mask in (all empty here: automatic),
  a/b regressed at 256 x 256 (tanh x 110).

Both run at a fixed square working size (the images are squeezed to it, as
the authors' demo does); their a/b come back to the frame's size by the fast
guided filter, guided by the full-size L.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ZhangConfig
from ..errors import ModelError
from .registry import Colorizer, register_colorizer

__all__ = ["ECCV16", "SIGGRAPH17", "load_zhang_state", "ZhangColorizer", "ECCV16Colorizer", "SIGGRAPH17Colorizer"]

L_CENT, L_NORM, AB_NORM = 50.0, 100.0, 110.0


def _convs(cin: int, cout: int, n: int, *, last_stride: int = 1, dilation: int = 1, bn: bool = True) -> nn.Sequential:
    """n x (3x3 conv + ReLU), then BatchNorm: keys .0 .2 .4 ... and the BN last."""
    layers: list[nn.Module] = []
    for i in range(n):
        stride = last_stride if i == n - 1 else 1
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, stride=stride, padding=dilation, dilation=dilation),
                   nn.ReLU(inplace=True)]
    if bn:
        layers.append(nn.BatchNorm2d(cout))
    return nn.Sequential(*layers)


class ECCV16(nn.Module):
    """The ECCV16 network; ``state_dict()`` keys and shapes are the released file's.

    ``forward(L)``: (N, 1, H, W) L in [0, 100] -> (N, 313, H/4, W/4) logits;
    :meth:`ab` turns them into a/b.
    """

    def __init__(self):
        super().__init__()
        self.model1 = _convs(1, 64, 2, last_stride=2)
        self.model2 = _convs(64, 128, 2, last_stride=2)
        self.model3 = _convs(128, 256, 3, last_stride=2)
        self.model4 = _convs(256, 512, 3)
        self.model5 = _convs(512, 512, 3, dilation=2)
        self.model6 = _convs(512, 512, 3, dilation=2)
        self.model7 = _convs(512, 512, 3)
        self.model8 = nn.Sequential(
            nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 313, 1))
        self.model_out = nn.Conv2d(313, 2, 1, bias=False)

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        x = (L - L_CENT) / L_NORM
        for m in (self.model1, self.model2, self.model3, self.model4, self.model5, self.model6, self.model7,
                  self.model8):
            x = m(x)
        return x

    def ab(self, logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """(N, 313, h, w) logits -> (N, 2, h, w) a/b: the (annealed) mean over the bins."""
        return self.model_out(torch.softmax(logits / temperature, dim=1)) * AB_NORM


class SIGGRAPH17(nn.Module):
    """The SIGGRAPH17 network; ``state_dict()`` keys and shapes are the released file's.

    ``forward(L, ab_hint=None, mask=None)``: (N, 1, H, W) L in [0, 100] (H, W
    multiples of 8), hints (N, 2, H, W) a/b and (N, 1, H, W) mask, zero when
    None -> (N, 2, H, W) a/b.
    """

    def __init__(self):
        super().__init__()
        self.model1 = _convs(4, 64, 2)
        self.model2 = _convs(64, 128, 2)
        self.model3 = _convs(128, 256, 3)
        self.model4 = _convs(256, 512, 3)
        self.model5 = _convs(512, 512, 3, dilation=2)
        self.model6 = _convs(512, 512, 3, dilation=2)
        self.model7 = _convs(512, 512, 3)
        self.model8up = nn.Sequential(nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1))
        self.model3short8 = nn.Sequential(nn.Conv2d(256, 256, 3, padding=1))
        self.model8 = nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True),
                                    nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.BatchNorm2d(256))
        self.model9up = nn.Sequential(nn.ConvTranspose2d(256, 128, 4, stride=2, padding=1))
        self.model2short9 = nn.Sequential(nn.Conv2d(128, 128, 3, padding=1))
        self.model9 = nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(128, 128, 3, padding=1), nn.ReLU(inplace=True),
                                    nn.BatchNorm2d(128))
        self.model10up = nn.Sequential(nn.ConvTranspose2d(128, 128, 4, stride=2, padding=1))
        self.model1short10 = nn.Sequential(nn.Conv2d(64, 128, 3, padding=1))
        self.model10 = nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(128, 128, 3, padding=1), nn.LeakyReLU(0.2))
        self.model_class = nn.Sequential(nn.Conv2d(256, 529, 1))  # unused at inference; kept for the keys
        self.model_out = nn.Sequential(nn.Conv2d(128, 2, 1), nn.Tanh())

    def forward(self, L: torch.Tensor, ab_hint: torch.Tensor | None = None, mask: torch.Tensor | None = None):
        if ab_hint is None:
            ab_hint = L.new_zeros(L.shape[0], 2, *L.shape[-2:])
        if mask is None:
            mask = L.new_zeros(L.shape[0], 1, *L.shape[-2:])
        c1 = self.model1(torch.cat(((L - L_CENT) / L_NORM, ab_hint / AB_NORM, mask), dim=1))
        c2 = self.model2(c1[:, :, ::2, ::2])
        c3 = self.model3(c2[:, :, ::2, ::2])
        c7 = self.model7(self.model6(self.model5(self.model4(c3[:, :, ::2, ::2]))))
        c8 = self.model8(self.model8up(c7) + self.model3short8(c3))
        c9 = self.model9(self.model9up(c8) + self.model2short9(c2))
        c10 = self.model10(self.model10up(c9) + self.model1short10(c1))
        return self.model_out(c10) * AB_NORM


ARCHITECTURES = {"eccv16": ECCV16, "siggraph17": SIGGRAPH17}


def load_zhang_state(net: nn.Module, path: str | Path, name: str) -> nn.Module:
    """Load the released file at ``path`` into ``net``, checking every key and
    shape first; a mismatch is one ModelError naming the file and the first
    key that differs."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{name} weights not found", path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001  (not a torch file, or it needs pickled code)
        raise ModelError(f"cannot read {name} weights with torch.load(weights_only=True) "
                         f"({type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''})", path) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"not a {name} state dict (expected a mapping of parameter names to tensors)", path)
    expected = net.state_dict()
    for key, ref in expected.items():
        if key not in state:
            raise ModelError(f"not the {name} layout: key '{key}' is missing", path)
        if tuple(state[key].shape) != tuple(ref.shape):
            raise ModelError(f"not the {name} layout: key '{key}' has shape {list(state[key].shape)}, "
                             f"expected {list(ref.shape)}", path)
    extra = [k for k in state if k not in expected]
    if extra:
        raise ModelError(f"not the {name} layout: unexpected key '{extra[0]}'", path)
    net.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)
    return net


class ZhangColorizer(Colorizer):
    """A released Zhang et al. network as a colorizer (automatic, no reference)."""

    needs_reference = False
    chroma = "lab"
    arch = ""

    def __init__(self, *, device: torch.device, config: ZhangConfig | None = None):
        super().__init__(device)
        self.cfg = config or ZhangConfig()
        if not self.cfg.weights:
            raise ModelError(f"the {self.arch} colorizer needs the authors' released weights: "
                             f"--model {self.arch} --weights FILE.pth (they are not shipped with vidcolor)")
        net = load_zhang_state(ARCHITECTURES[self.arch](), self.cfg.weights, self.arch)
        self.net = net.eval().requires_grad_(False).to(device)

    def begin_shot(self, reference: torch.Tensor | None, choice=None) -> None:
        """Nothing to prepare: the reference (if any) is not used."""

    def predict(self, Lw: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.inference_mode()
    def colorize(self, L: torch.Tensor) -> torch.Tensor:
        from .exemplar import guided_upsample

        if L.dim() != 4 or L.shape[1] != 1:
            raise ValueError(f"L must have a shape of (N, 1, H, W). Got {tuple(L.shape)}")
        L = L.to(self.device, torch.float32)
        s = self.cfg.work_size
        Lw = F.interpolate(L, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        ab = self.predict(Lw)
        L_lo = F.interpolate(L, size=ab.shape[-2:], mode="bilinear", align_corners=False, antialias=True)
        return guided_upsample(ab.contiguous(), L_lo.contiguous(), L)


@register_colorizer("eccv16", config=ZhangConfig)
class ECCV16Colorizer(ZhangColorizer):
    arch = "eccv16"

    def predict(self, Lw: torch.Tensor) -> torch.Tensor:
        return self.net.ab(self.net(Lw), self.cfg.temperature)


@register_colorizer("siggraph17", config=ZhangConfig)
class SIGGRAPH17Colorizer(ZhangColorizer):
    arch = "siggraph17"

    def predict(self, Lw: torch.Tensor) -> torch.Tensor:
        return self.net(Lw)
