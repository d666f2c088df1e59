"""``gallery``: automatic colour helped by a gallery of colour stills.

Automatic reference, as in Deep Exemplar-based Colorization (He et al. 2018,
section 4): a shot with no still of its own gets the best still of a gallery
folder (:class:`vidcolor.retrieval.ReferenceIndex`, ranked on the shot's
first frames), is coloured both by ``exemplar`` from that still and by
``auto``, and the two are blended per pixel by the exemplar's confidence::

    w = gate * confidence                     (exemplar's shot gate and confidence)
    out = w * exemplar + (1 - w) * auto

so the exemplar's colour is kept where it is sure of it (the still's colour
carried by a flow that holds) and ``auto``'s elsewhere. A shot whose best
still scores under ``retrieval.threshold`` gets ``auto`` alone: an unrelated
still paints no colour.

``auto`` answers in Lab a/b on the frame's L, ``exemplar`` in the video's
Cb/Cr; the blend is in Cb/Cr (``chroma = "cbcr"``): ``auto``'s a/b go through
R'G'B' (clipped to the gamut) to Cb/Cr with the video's matrix, exactly the
way the pipeline writes ``auto``'s colour to the file, so a shot coloured by
``auto`` alone reaches the file as it would without a gallery.

The same blend (:class:`BlendColorizer`) colours a shot whose own still (given,
not retrieved) matches it only partly: a score between ``exemplar.gate_low``
and ``gate_high`` weighs the still's colour down by the gate, and automatic
colour, not gray, fills in the rest.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ..color import lab_to_rgb, rgb_to_cbcr
from ..config import RetrievalConfig
from ..errors import ConfigError, InputError
from .registry import Colorizer, get_colorizer, register_colorizer

if TYPE_CHECKING:
    from ..config import Config
    from ..retrieval import Match

__all__ = ["BlendColorizer", "GalleryColorizer", "BUILTIN_GALLERY", "gallery_folder", "gallery_from_config", "lab_to_cbcr"]

log = logging.getLogger("vidcolor")

#: The small gallery shipped in the package (``--gallery builtin``): public-domain/CC0 photographs.
BUILTIN_GALLERY = Path(__file__).resolve().parent.parent / "gallery"


def gallery_folder(name: str) -> Path:
    """The folder a ``gallery`` setting names: ``builtin`` is the packaged gallery."""
    return BUILTIN_GALLERY if name == "builtin" else Path(name).expanduser()


def lab_to_cbcr(L: torch.Tensor, ab: torch.Tensor, spec) -> torch.Tensor:
    """L (N, 1, H, W) in [0, 100] and a/b (N, 2, H, W) -> (N, 2, H, W) Cb/Cr in [-0.5, 0.5]
    of ``spec``'s matrix, through R'G'B' clipped to the gamut."""
    return rgb_to_cbcr(lab_to_rgb(torch.cat((L, ab.to(L.dtype)), dim=1)), spec)


class BlendColorizer(Colorizer):
    """``exemplar``'s colour where it is sure of it, ``auto``'s elsewhere (see the module docstring).

    The shot's still is given to :meth:`begin_shot` (and its match score, when
    the caller has it, to :meth:`set_match`); per pixel
    ``out = w * exemplar + (1 - w) * auto``, ``w`` from the exemplar's shot gate and confidence.
    ``full``: how a still that matches fully (gate 1) is taken. True (a still
    given for the shot): everywhere, as the exemplar alone would colour the
    shot; under full match ``w = gate * (confidence + gate * (1 - confidence))``,
    so that automatic colour fills in as the match gets poorer, smoothly from
    the exemplar alone (gate 1) to automatic colour alone (gate 0). False (a
    still retrieved for the shot, the gallery): ``w = gate * confidence``, the
    still's colour only where the exemplar is sure of it. The pipeline blends
    a given still this way when it matches its shot only partly (a score
    between ``exemplar.gate_low`` and ``gate_high``), rather than fading its
    colour toward gray. ``auto`` may be any colorizer that takes no still
    (Lab or Cb/Cr).
    """

    needs_reference = True
    chroma = "cbcr"
    full_luma = True  # the exemplar's flow sees the frame's own detail

    def __init__(self, *, device: torch.device, auto: Colorizer, exemplar: Colorizer, full: bool = True,
                 name: str | None = None):
        super().__init__(device)
        self.auto, self.exemplar, self.full = auto, exemplar, full
        self.name = name or f"{exemplar.name}+{auto.name}"  # as the run's report names it
        self.weight: torch.Tensor | None = None  # the last blend weight w, (N, 1, h, w)
        self._still = False  # the exemplar has a still for this shot

    def set_ycbcr(self, spec) -> None:
        super().set_ycbcr(spec)
        self.auto.set_ycbcr(spec)
        self.exemplar.set_ycbcr(spec)

    def set_precision(self, amp) -> None:
        super().set_precision(amp)
        self.auto.set_precision(amp)
        self.exemplar.set_precision(amp)

    def begin_shot(self, reference: torch.Tensor | None) -> None:
        self.auto.begin_shot(None)
        self.weight = self.confidence = None
        self._still = reference is not None
        if self._still:
            self.exemplar.begin_shot(reference)

    def set_match(self, score: float) -> None:
        """The still's match score with the shot: it gates the exemplar (see ExemplarColorizer.set_match)."""
        self.exemplar.set_match(score)

    @torch.inference_mode()
    def colorize(self, L: torch.Tensor) -> torch.Tensor:
        if L.dim() != 4 or L.shape[1] != 1:
            raise ValueError(f"L must have a shape of (N, 1, H, W). Got {tuple(L.shape)}")
        L = L.to(self.device, torch.float32)
        out = self.auto.colorize(L)
        if self.auto.chroma == "lab":
            out = lab_to_cbcr(L, out, self.ycbcr)
        self.weight = self.confidence = None
        if not self._still:
            return out
        ex = self.exemplar.colorize(L)
        conf, gate = self.exemplar.confidence, self.exemplar.gate or 0.0
        if conf is None or gate <= 0.0:
            return out
        conf = conf.to(out.dtype).clamp(0, 1)
        self.weight = gate * (conf + gate * (1 - conf)) if self.full else gate * conf
        # the exemplar's colour at full strength (its gate is in w already)
        w = F.interpolate(self.weight, size=out.shape[-2:], mode="bilinear", align_corners=False)
        out = out + w * (ex / gate - out)
        # the mixture's confidence: auto's colour counts as sure as auto alone (1)
        self.confidence = 1.0 - self.weight * (1.0 - conf)
        return out


@register_colorizer("gallery")
class GalleryColorizer(BlendColorizer):
    """``auto`` blended with ``exemplar`` from each shot's best gallery still (see the module docstring).

    ``folder``: the gallery; ``auto``, ``exemplar``: the two colorizers
    (built with their defaults when not given); ``retrieval``: threshold,
    frames and candidates of the choice. After a shot's first batch,
    ``match`` is the still it got (None: no still scored over the threshold),
    and ``entry`` (a dict the pipeline may set per shot) holds it for the
    report.
    """

    needs_reference = False

    def __init__(self, *, device: torch.device, folder: str | os.PathLike, auto: Colorizer | None = None,
                 exemplar: Colorizer | None = None, retrieval: RetrievalConfig | None = None):
        from ..references import ReferenceStore
        from ..retrieval import ReferenceIndex

        super().__init__(device=device, auto=auto if auto is not None else get_colorizer("auto", device=device),
                         exemplar=exemplar if exemplar is not None else get_colorizer("exemplar", device=device),
                         full=False, name=type(self).name)
        self.folder = Path(folder)
        self.retrieval = retrieval or RetrievalConfig()
        self._store = ReferenceStore(device)  # holds only the stills shots get
        self.index = ReferenceIndex(_Stills(self.folder, device), device, top_k=self.retrieval.top_k,
                                    threshold=self.retrieval.threshold)
        self.match: Match | None = None
        self.entry: dict | None = None
        self._chosen = False

    def begin_shot(self, reference: torch.Tensor | None) -> None:
        """A new shot: its still is chosen on its first batch (a reference given here is not used)."""
        super().begin_shot(None)
        self.match = None
        self._chosen = False

    def _choose(self, L: torch.Tensor) -> None:
        n = L.shape[0]
        pick = L[torch.linspace(0, n - 1, min(self.retrieval.frames, n)).round().long()]
        best = self.index.rank(pick)[0]
        entry = self.entry if self.entry is not None else {}
        entry["score"] = round(float(best.score), 4)
        if best.score >= self.retrieval.threshold:
            self.match = best
            self.exemplar.begin_shot(self._store.get(best.path))
            self.exemplar.set_match(best.score)  # gated by the score it was chosen by, not scored again
            self._still = True
            entry["reference"] = os.fspath(best.path)
            log.info("gallery: %s for this shot (score %.2f)", best.path.name, best.score)
        else:
            entry["unmatched"] = True
            log.info("gallery: no still matches this shot (best %s, score %.2f < %.2f): automatic colour",
                     best.path.name, best.score, self.retrieval.threshold)
        self._chosen = True

    @torch.inference_mode()
    def colorize(self, L: torch.Tensor) -> torch.Tensor:
        if L.dim() != 4 or L.shape[1] != 1:
            raise ValueError(f"L must have a shape of (N, 1, H, W). Got {tuple(L.shape)}")
        if not self._chosen:
            self._choose(L.to(self.device, torch.float32))
        return super().colorize(L)


class _Stills(Sequence):
    """A gallery's (path, still) pairs, each loaded when asked for and not kept: indexing a
    large gallery holds its features, not its pictures."""

    def __init__(self, folder: Path, device: torch.device):
        from ..references import list_images

        if not folder.is_dir():
            raise InputError("gallery folder not found" if not folder.exists() else "the gallery is not a folder",
                             folder)
        self.paths = list_images(folder)
        if not self.paths:
            raise InputError("the gallery folder has no images", folder)
        self.device = device

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i):
        from ..references import ReferenceStore

        return self.paths[i], ReferenceStore(self.device).get(self.paths[i])


def gallery_from_config(cfg: "Config", device: torch.device) -> GalleryColorizer:
    """The ``gallery`` colorizer of ``cfg.gallery``, with ``auto`` and ``exemplar`` built from their configs."""
    if not cfg.gallery:
        raise ConfigError("the gallery colorizer needs a gallery: --gallery DIR (or gallery: in the config)")
    return GalleryColorizer(device=device, folder=gallery_folder(cfg.gallery),
                            auto=get_colorizer("auto", device=device, config=cfg.auto),
                            exemplar=get_colorizer("exemplar", device=device, config=cfg.exemplar),
                            retrieval=cfg.retrieval)
