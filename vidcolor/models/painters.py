"""The colorizers a run paints with, one per kind of :class:`~vidcolor.references.ShotChoice`."""
from __future__ import annotations

import logging

import torch

from ..color import YCbCrSpec
from ..config import Config
from ..errors import ConfigError, ModelError
from ..references import ReferenceSchedule, ShotChoice
from ..runtime import precision
from .blend import BlendColorizer
from .registry import Colorizer, build_colorizer, needs_reference

__all__ = ["Painters", "AUTOMATIC"]

log = logging.getLogger("vidcolor")

AUTOMATIC = "auto"  # the colorizer for shots without a still


class Painters:
    """The colorizers a run paints with, one per kind of :class:`ShotChoice`.

    ``primary`` colours shots from their still (``exemplar`` kind); the
    automatic colorizer is built up front when the run cannot do without it
    (no still at all: a clear error if it cannot be; a map row with no
    still), otherwise the first time a shot needs it (when it cannot be, such
    shots stay black and white, with one warning). The blends (a still that
    matches partly; a gallery still) are built the first time they are
    needed, and so is the keyframe colorizer.
    """

    def __init__(self, cfg: Config, schedule: ReferenceSchedule, device: torch.device):
        self.cfg, self.device = cfg, device
        self.amp = precision(cfg, device)
        self.spec: YCbCrSpec | None = None
        self._built: list[Colorizer] = []
        self._auto: Colorizer | None = None
        self._auto_error: str | None = None
        self._blends: dict[str, BlendColorizer] = {}
        self._keyframes: Colorizer | None = None
        name = cfg.colorizer
        if name == "gallery":  # automatic colour helped by the gallery (as --gallery with no still)
            if not cfg.gallery:
                raise ConfigError("the gallery colorizer needs a gallery: --gallery DIR (or gallery: in the config)")
            name = AUTOMATIC
        if not needs_reference(name):  # a colorizer that takes no still colours every shot
            self.primary = self._auto = self._build(name)
        elif not schedule.references:  # no still at all: automatic colour, which must be had
            self.primary = self._auto = self._build(AUTOMATIC)
        else:
            self.primary = self._build(name)
            if schedule.needs_automatic:
                self._auto = self._build(AUTOMATIC)

    def _build(self, name: str) -> Colorizer:
        c = build_colorizer(name, self.cfg, device=self.device)
        self._adopt(c)
        return c

    def _adopt(self, c: Colorizer) -> None:
        c.set_precision(self.amp)
        if self.spec is not None:
            c.set_ycbcr(self.spec)
        self._built.append(c)

    def set_ycbcr(self, spec: YCbCrSpec) -> None:
        """The output's Y'CbCr, for every colorizer built and to be built."""
        self.spec = spec
        for c in self._built:
            c.set_ycbcr(spec)

    @property
    def auto(self) -> Colorizer | None:
        """The automatic colorizer (None: it cannot be built, e.g. no trained weights)."""
        if self._auto is None and self._auto_error is None:
            try:
                self._auto = self._build(AUTOMATIC)
            except ModelError as e:
                self._auto_error = str(e)
                log.warning("no automatic colour for shots without a still (%s): they stay black and white", e)
        return self._auto

    def _blend(self, kind: str) -> BlendColorizer | None:
        if kind not in self._blends:
            auto = self.auto
            if auto is None:
                return None
            exemplar = self.primary if self.primary.name == "exemplar" else self._build("exemplar")
            b = BlendColorizer(device=self.device, auto=auto, exemplar=exemplar, full=kind == "blend",
                               name=None if kind == "blend" else "gallery")
            self._adopt(b)
            self._blends[kind] = b
        return self._blends[kind]

    def for_choice(self, choice: ShotChoice) -> Colorizer | None:
        """The colorizer for a shot so chosen; None: the shot stays black and white."""
        if choice.kind == "exemplar":
            return self.primary
        if choice.kind == "blend":  # without automatic colour: the still's colour alone, faded by the gate
            return (self._blend("blend") if self.primary.name == "exemplar" else None) or self.primary
        if choice.kind == "gallery":
            return self._blend("gallery")
        if choice.kind == "keyframes":
            return self.keyframes
        if choice.kind == "auto":
            return self.auto
        return None

    @property
    def keyframes(self) -> Colorizer:
        """The colorizer of shots with keyframes (built the first time one needs it)."""
        if self._keyframes is None:
            from .keyframes import KeyframeColorizer

            self._keyframes = KeyframeColorizer(device=self.device, config=self.cfg.exemplar,
                                                attend=self.cfg.keyframes.attend)
            self._adopt(self._keyframes)
        return self._keyframes
