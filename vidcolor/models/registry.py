"""Colorizers register by name; the pipeline builds them by name."""
from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from ..color import BT709, YCbCrSpec
from ..errors import ModelError
from ..registry import Registry

if TYPE_CHECKING:
    from ..references import ShotChoice

__all__ = ["Colorizer", "ShotStats", "register_colorizer", "get_colorizer", "build_colorizer", "list_colorizers",
           "needs_reference"]


@dataclass
class ShotStats:
    """What a colorizer says about the shot it has just coloured (:meth:`Colorizer.end_shot`).

    ``prealigned``: frames whose still was brought onto them before the flow
    (the exemplar; None: not tried); ``reference_flow_seconds``: spent in
    flows to the still; ``extra``: colorizer-specific figures for the report's
    shot entry (JSON values).
    """

    prealigned: int | None = None
    reference_flow_seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    def merge(self, other: "ShotStats") -> "ShotStats":
        pre = (None if self.prealigned is None and other.prealigned is None
               else (self.prealigned or 0) + (other.prealigned or 0))
        return ShotStats(pre, self.reference_flow_seconds + other.reference_flow_seconds,
                         {**self.extra, **other.extra})


class Colorizer(ABC):
    """Predicts chroma from luminance, one shot at a time.

    The pipeline calls ``begin_shot(reference, choice)`` at every shot start
    (the reference is (1, 3, H, W) RGB in [0, 1], or None for automatic
    colour; ``choice`` the :class:`~vidcolor.references.ShotChoice` that
    chose it: its score and gate, decided once, outside the colorizer), then
    ``colorize(L)`` with batches of that shot's frames, then ``end_shot()``
    for the shot's :class:`ShotStats`. L is
    (N, 1, H, W) in [0, 100] at the size the pipeline chose; the result is
    (N, 2, H, W) a/b in about [-128, 127] at the same size.

    A colorizer whose ``chroma`` is ``"cbcr"`` returns Cb/Cr instead, in
    [-0.5, 0.5], for the video's own Y'CbCr matrix (given by the pipeline
    through :meth:`set_ycbcr` before the first shot): the colour of a pixel
    whose luma Y' stays the input's, which is exactly how a black-and-white
    video and its colour original relate. (Lab a/b put on a luma-derived L
    are off for saturated colours, where Y' and Lab L disagree.)
    """

    #: name in the registry
    name: str = ""
    #: True when the colorizer cannot work without a reference still
    needs_reference: bool = True
    #: what colorize() returns: "lab" (a/b) or "cbcr" (Cb/Cr of ``self.ycbcr``)
    chroma: str = "lab"
    #: True: colorize() gets L at the luma's full size (and may answer at that size), not
    #: at the chroma planes' size; the pipeline brings the answer to the chroma size
    full_luma: bool = False
    #: set by the pipeline before colorize() for a ``full_luma`` colorizer: the size its answer is
    #: wanted at (the chroma planes'), or None (L's own). It may answer there directly (its last,
    #: full-size steps at a quarter of the pixels on 4:2:0); any other size is brought to it.
    out_size: tuple[int, int] | None = None
    #: set by the pipeline before colorize() where temporal smoothing runs: per frame of the batch,
    #: its :class:`~vidcolor.temporal.Motion` to the frame before (or a Future of it; None at a
    #: shot's first frame), the smoother's frame-to-frame flow, which a colorizer may build on
    motions: list | None = None
    #: set by the pipeline before colorize(): whether the shot's print is grainy (its grain filter,
    #: ``temporal.degrain``, is on): a colorizer may then match on smoothed copies of frame and still
    grainy: bool = False
    #: after colorize(): None, or (N, 1, h, w) in (0, 1], how far each pixel's colour can be
    #: trusted (any size; the pipeline resizes it). Temporal smoothing lets sure colour
    #: outweigh colour carried from frames that were less sure.
    confidence: torch.Tensor | None = None
    #: None, or settings temporal smoothing takes for this colorizer's shots over the config's
    #: (:meth:`~vidcolor.temporal.TemporalSmoother.begin_shot`: mode, strength, fb_sigma, ...;
    #: ``follow_exposure``: its chroma follows each frame's exposure, as :attr:`follows_exposure` says)
    temporal: dict | None = None
    #: after colorize(): None, or a bool per frame: True where the chroma is given, not guessed (a
    #: keyframe's own frame takes its still's colour): temporal smoothing leaves such a frame as it is
    pinned: list[bool] | None = None
    #: after colorize(): None, or per frame its exposure against the still (an
    #: :class:`~vidcolor.ops.Exposure`, or None: the still's): the answer is the still's colour at the
    #: still's exposure, and whoever writes it gives each frame its own with :meth:`expose`, after
    #: temporal smoothing, which so steadies the colour, not the print's light
    exposure: list | None = None
    #: set by the pipeline (runtime.precision): float16/bfloat16 for the networks on a GPU, or None
    amp: torch.dtype | None = None

    @property
    def follows_exposure(self) -> bool:
        """Its chroma follows each frame's exposure (a dimmer frame, proportionally less chroma):
        whatever changes the luma's exposure after it (``--deflicker``) scales the chroma too."""
        return bool((self.temporal or {}).get("follow_exposure"))

    def expose(self, chroma: torch.Tensor, L: torch.Tensor, fits: list) -> torch.Tensor:
        """(N, 2, h, w) chroma of frames at the still's exposure (this colorizer's answers) at each
        frame's own, ``fits`` the frames' :attr:`exposure` entries; ``L``: the frames' L as
        :meth:`colorize` got it. Colorizers that report no exposure answer at the frame's already."""
        return chroma

    def __init__(self, device: torch.device):
        self.device = device
        self.ycbcr = YCbCrSpec(BT709, True, 8)

    @classmethod
    def from_config(cls, config, *, device: torch.device) -> "Colorizer":
        """The colorizer with its config section (the dataclass it was registered with:
        ``register_colorizer(name, config=...)``), as :func:`build_colorizer` builds it."""
        return cls(device=device, config=config)

    def set_precision(self, amp: torch.dtype | None) -> None:
        """Mixed precision for the networks on a GPU (runtime.precision), or None for float32."""
        self.amp = amp

    def autocast(self):
        """Context for the networks' forward passes: mixed precision on a GPU when ``amp``
        is set (convolutions and matrix products in ``amp``, the rest float32)."""
        if self.amp is None or self.device.type != "cuda":
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=self.amp)

    def set_ycbcr(self, spec: YCbCrSpec) -> None:
        """The Y'CbCr matrix the output uses (only its Kr/Kb matter here)."""
        self.ycbcr = spec

    @abstractmethod
    def begin_shot(self, reference: torch.Tensor | None, choice: "ShotChoice | None" = None) -> None: ...

    def end_shot(self) -> ShotStats:
        """The shot is over: what the report says about how it was coloured."""
        return ShotStats()

    @abstractmethod
    def colorize(self, L: torch.Tensor) -> torch.Tensor: ...


_REGISTRY: Registry[Colorizer] = Registry("colorizer")
#: ``@register_colorizer(name, config=SomeConfig)``: a colorizer, with the dataclass of its config
#: section (the config file's section ``name``, built-in or not); without ``config``: no section
register_colorizer = _REGISTRY.register
list_colorizers = _REGISTRY.names


def get_colorizer(name: str, *, device: torch.device, **kwargs) -> Colorizer:
    return _REGISTRY.get(name, device=device, **kwargs)


def build_colorizer(name: str, config, *, device: torch.device) -> Colorizer:
    """The colorizer ``name`` with its section of ``config`` (a :class:`~vidcolor.config.Config`)."""
    return _REGISTRY.build(name, config, device=device)


def needs_reference(name: str) -> bool:
    """Whether the colorizer registered as ``name`` needs a reference still (unknown names: True)."""
    try:
        builder = _REGISTRY.builder(name)
    except ModelError:
        return True
    return bool(getattr(builder, "needs_reference", True))
