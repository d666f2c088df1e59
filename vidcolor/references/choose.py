"""The one decision per shot: which still colours it, and how (:class:`ShotChoice`).

This module alone scores a still for a shot and compares a score with a
gate; colorizers receive the choice and never score.

- A still named for the shot (``--reference``, a map row) is scored against
  the shot's first frames, as retrieval scores a still (when the reference
  colorizer is the exemplar, whose colour depends on the match). Under
  ``references.match: normal`` (the default) a score under
  ``exemplar.gate_low`` gives the shot automatic colour instead, a score
  between ``gate_low`` and ``gate_high`` blends the still's colour with
  automatic colour in proportion, and a higher one is the still's colour
  alone; ``strict`` takes only a still over ``gate_high``; ``force`` takes
  every given still at full strength and scores nothing. A still that scores
  under ``gate_high`` is also looked for in the shot by the exemplar's flow
  (:func:`~vidcolor.models.exemplar.still_view`): one found over most of the
  shot's first frames (``view`` over :data:`VIEW`) is a view of the shot,
  given in full however grainy, dark or soft the print that lowered its score
  (old film), where another picture or another view is scored as before;
  so is a folder's best still under ``retrieval.threshold``. The still named for
  a single photograph, or for a film of one shot (shot detection off and one
  still), is always used: the user has said what it is (a warning when it
  scores low).
- A folder of stills (``--reference DIR``): the best still of the folder
  for the shot (:mod:`.retrieval`); under ``retrieval.threshold``, automatic
  colour (``force``: the best still all the same).
- A shot left to automatic colour, with a gallery (``--gallery``): the best
  gallery still, blended with automatic colour where the exemplar is sure of
  it; none over ``retrieval.threshold``: automatic colour alone.
"""
from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from ..color import BT709, YCbCrSpec
from ..config import Config
from ..errors import ConfigError, InputError
from ..shots.split import Shot, ShotSplitter
from .choice import ShotChoice, gate_of
from .stills import ReferenceSchedule, ReferenceStore, list_images

__all__ = ["Chooser", "shot_l", "gallery_folder", "BUILTIN_GALLERY", "SHOT_CONTEXT", "MATCH_CONTEXT",
           "MAX_SHOT_WARNINGS"]

#: Steps (L units of :func:`vidcolor.references.retrieval.grain_sigma`) in which a still is given
#: a shot's extra grain before it is scored.
GRAIN_STEP = 0.25
#: A shot with less fine detail than this share of its still's is softer than the still: the still is
#: blurred as much before it is scored (the share leaves a still of another moment of the shot alone).
SOFTER = 0.8
#: A still's ``view`` of the shot (:func:`~vidcolor.models.exemplar.still_view`) under the first gives it
#: nothing, over the second all its colour, in between in proportion (the higher of this and the score's
#: gate): on the development clips and their old-film copies (up to twice the benchmark's strengths) a
#: shot's own still 0.55-0.94, another picture or another view of the scene at most 0.20.
VIEW = (0.3, 0.5)

log = logging.getLogger("vidcolor")

SHOT_CONTEXT = 24  # frames of a shot's start that choosing its still from a folder may look at
MATCH_CONTEXT = 7  # ... and scoring its one still (the first 8 frames: what the exemplar's first batch sees)
MAX_SHOT_WARNINGS = 5  # shots named in a warning each when no still matches them; the rest are counted

#: The small gallery shipped in the package (``--gallery builtin``): public-domain/CC0 photographs.
BUILTIN_GALLERY = Path(__file__).resolve().parent.parent / "gallery"

Sample = Callable[[int], "torch.Tensor | None"]  # count -> (N, 1, h, w) L of the shot's first frames, or None


def gallery_folder(name: str) -> Path:
    """The folder a ``gallery`` setting names: ``builtin`` is the packaged gallery."""
    return BUILTIN_GALLERY if name == "builtin" else Path(name).expanduser()


def shot_l(frames: Sequence, count: int, lut: torch.Tensor, side: int = 256) -> torch.Tensor:
    """L of up to ``count`` frames spread over ``frames`` (luma frames), short side ``side``: (N, 1, h, w)."""
    pick = [frames[round(i)] for i in np.linspace(0, len(frames) - 1, min(count, len(frames)))]
    h, w = pick[0].luma.shape
    s = min(1.0, side / min(h, w))
    size = (max(1, round(w * s)), max(1, round(h * s)))
    small = np.stack([cv2.resize(f.luma, size, interpolation=cv2.INTER_AREA) for f in pick]).astype(np.int64)
    return lut.cpu()[torch.from_numpy(small)].unsqueeze(1)


class _Stills(Sequence):
    """A gallery's (path, still) pairs, each loaded when asked for and not kept: indexing a
    large gallery holds its features, not its pictures."""

    def __init__(self, folder: Path, device: torch.device):
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
        return self.paths[i], ReferenceStore(self.device).get(self.paths[i])


class Chooser:
    """Chooses each shot's still (see the module docstring) and says why in the choice's report.

    ``schedule``: the stills given; ``store``: where they are loaded;
    ``lut``: luma code -> L of the film; ``ycbcr``: the film's :class:`~vidcolor.color.YCbCrSpec` (a
    still's luma is made as the film's is; None: BT.709); ``origin``: the film's first
    frame's time (None: the first frame seen); ``single``: the input is one
    picture or one shot, whose named still is always used.
    """

    def __init__(self, cfg: Config, schedule: ReferenceSchedule, store: ReferenceStore, lut: torch.Tensor, *,
                 ycbcr: YCbCrSpec | None = None, origin: float | None = None, single: bool = False):
        self.cfg, self.schedule, self.store, self.lut = cfg, schedule, store, lut
        self.ycbcr = ycbcr or YCbCrSpec(BT709, False, 8)
        self.policy = cfg.references.match
        self.single = single
        self._origin = origin
        self._last_row = None
        self._scorers: dict = {}  # (still, grain added, blur, grain's scale) -> its index
        self._gallery = None
        # the exemplar's colour depends on how well its still matches: scored (not under force)
        self.scores = cfg.colorizer == "exemplar" and self.policy != "force" and (cfg.exemplar.gate_high > 0)
        self.index = None
        if schedule.folder_images:
            from .retrieval import ReferenceIndex

            self.index = ReferenceIndex.from_folder(Path(schedule.origin), store, store.device,
                                                    top_k=cfg.retrieval.top_k)
        self.unmatched = 0  # shots no still matched (coloured automatically)

    # -- where shots start -----------------------------------------------------------
    def row_for(self, index: int, seconds: float):
        row = self.schedule.lookup(index, seconds)
        if row is None:
            raise InputError(f"no row covers frame {index} ({seconds:.3f} s); the first row should start at 0",
                             self.schedule.origin or None)
        return row

    def _row_starts(self, frame) -> bool:
        if self._origin is None:
            self._origin = frame.time
        key = self.row_for(frame.index, frame.time - self._origin).key
        changed, self._last_row = key != self._last_row, key
        return changed

    @property
    def context(self) -> int:
        """Frames of each shot's start the choice looks at (the splitter holds them)."""
        if self.index is not None or self.cfg.gallery:
            return SHOT_CONTEXT
        return MATCH_CONTEXT if self.scores else 0

    def splitter(self, detector, spec) -> ShotSplitter:
        return ShotSplitter(detector, spec, forced=self._row_starts if len(self.schedule.rows) > 1 else None,
                            context=self.context, origin=self._origin)

    # -- choosing --------------------------------------------------------------------
    def choose(self, shot: Shot) -> ShotChoice:
        """The choice for ``shot`` (its ``ahead`` frames are what it is scored on)."""
        lut = self.lut

        def sample(n: int):
            return shot_l(shot.ahead, n, lut) if shot.ahead else None

        height = shot.ahead[0].luma.shape[0] if shot.ahead else None
        return self._choose(shot.first_frame, shot.start_time, sample, f"shot {shot.index} (frame {shot.first_frame})",
                            height)

    def choose_image(self, L: torch.Tensor, name: str) -> ShotChoice:
        """The choice for a photograph, given as (1, 1, h, w) L in [0, 100]."""
        return self._choose(0, 0.0, lambda n: L, name, L.shape[-2])

    def _choose(self, first_frame: int, seconds: float, sample: Sample, what: str,
                height: int | None = None) -> ShotChoice:
        """``height``: the film's frame height in pixels (the scale of its grain; None: ``sample``'s)."""
        cfg = self.cfg
        report: dict = {}
        if self.index is not None:
            L = sample(cfg.retrieval.frames)
            if L is None:
                raise InputError(f"{what}: no frame to choose a still from the folder by", self.schedule.origin)
            matches = self.index.rank(L)
            best = matches[0]
            report["score"] = round(float(best.score), 4)
            report["candidates"] = [{"reference": os.fspath(m.path), "score": round(float(m.score), 4)}
                                    for m in matches[:3]]
            if (best.score < cfg.retrieval.threshold and self.policy != "force"
                    and gate_of(self._view_of(best.path, sample, report) or 0.0, *VIEW) == 0.0):
                # a poor reference paints wrong colours: the shot gets automatic colour instead (unless
                # the flow finds the best still in the shot: a keyframe of an old print scores low)
                self._unmatched(report, "%s: no still in %s matches it (best %s, score %.2f < %.2f); coloured "
                                "automatically instead: add a still or use --reference-map", what,
                                self.schedule.origin, best.path.name, best.score, cfg.retrieval.threshold)
                return self._automatic(sample, report)
            return self._given(best.path, float(best.score), report, what, sample)
        row = self.row_for(first_frame, seconds)
        report["row"] = row.source
        if row.reference is None:
            return self._automatic(sample, report)
        score = None
        if self.scores:
            L = sample(3)
            if L is not None:
                score = self._score(row.reference, L, height)
                report["score"] = round(score, 4)
        return self._given(row.reference, score, report, what, sample)

    def _score(self, path: Path, L: torch.Tensor, height: int | None = None) -> float:
        """How well the still ``path`` matches the frames ``L`` (retrieval's score); ``height``: the
        film's frame height (``L`` may be a smaller copy), the pixel size of the grain it is given."""
        from .retrieval import BLURS, WORK_SIZE, ReferenceIndex, working_shape, grain_sigma, working_l

        work = working_shape(*L.shape[-2:], WORK_SIZE)[0]  # the height the frames are scored at
        scale = round(work / (height or L.shape[-2]), 2)  # working pixels per film pixel

        def index(extra: float, blur: float = 0.0) -> ReferenceIndex:
            key = (path, extra, blur, scale if extra else None)
            if key not in self._scorers:
                self._scorers[key] = ReferenceIndex([(path, self.store.get(path))], self.store.device, grain=extra,
                                                    grain_scale=scale, blur=blur, soften=not extra and not blur)
            return self._scorers[key]

        plain = index(0.0)
        own = plain.grains[0]  # the still's own fine detail, at the working size
        shot = float(grain_sigma(working_l(L.cpu().float())).median())
        if shot < SOFTER * own:
            # a print softer than the still: the still blurred by the least of BLURS that makes it as soft,
            # as long as blurring it lowers its fine detail at all (in a picture of flat areas and sharp
            # edges it raises it: such a still is scored as it is)
            blur, last = 0.0, own
            for b, fine in zip(BLURS, plain.softened[0]):
                if fine >= last:
                    break
                blur, last = b, fine
                if fine <= shot:
                    break
            if blur and (last <= shot or blur == BLURS[-1]):
                return float(index(0.0, blur).rank(L)[0].score)
        # the grain the shot has beyond the still's (a clean still for a grainy print), in steps of
        # GRAIN_STEP L units so that a film's shots share an index; none under one step
        extra = math.sqrt(max(shot ** 2 - own ** 2, 0.0))
        return float(index(GRAIN_STEP * math.floor(extra / GRAIN_STEP)).rank(L)[0].score)

    def _view(self, path: Path, L: torch.Tensor) -> float:
        """How far the still ``path`` is a view of the frames ``L`` (:func:`~vidcolor.models.exemplar.still_view`)."""
        from ..models.exemplar import still_view

        return still_view(self.store.get(path), L, self.cfg.exemplar, self.ycbcr)

    def _view_of(self, path: Path, sample: Sample, report: dict) -> float | None:
        """The still's view of the shot, looked for once (the report's ``view``); None where it is not
        looked for (``exemplar.view_check`` off, no flow, a colour that does not depend on the match)."""
        if "view" not in report:
            ex = self.cfg.exemplar
            L = sample(3) if self.scores and ex.flow and ex.view_check else None
            if L is None:
                return None
            report["view"] = round(self._view(path, L), 3)
        return report["view"]

    def _given(self, path: Path, score: float | None, report: dict, what: str, sample: Sample) -> ShotChoice:
        """A still given for (or retrieved for) the shot, with its match score (None: not scored)."""
        if score is None or not self.scores:  # a colour that does not depend on the match (or force)
            return ShotChoice("exemplar", path, score, 1.0, report)
        lo, hi = self.cfg.exemplar.gate_low, self.cfg.exemplar.gate_high
        gate = gate_of(score, lo, hi)
        view = self._view_of(path, sample, report) if gate < 1.0 else None
        if view is not None:  # scored short: is it a view of the shot all the same (an old print's)?
            gate = max(gate, gate_of(view, *VIEW))
        if self.single:
            if gate < 1.0:
                log.warning("%s: %s matches it poorly (score %.2f < exemplar.gate_high %.2f); used all the same, as "
                            "the still named for it", what, path.name, score, hi)
            return ShotChoice("exemplar", path, score, 1.0, report)
        if gate == 0.0 or (self.policy == "strict" and gate < 1.0):
            limit, name = (lo, "gate_low") if gate == 0.0 else (hi, "gate_high")
            self._unmatched(report, "%s: %s does not match it (score %.2f < exemplar.%s %.2f); coloured "
                            "automatically instead", what, path.name, score, name, limit)
            return self._automatic(sample, report)
        if gate < 1.0:
            return ShotChoice("blend", path, score, gate, report)
        return ShotChoice("exemplar", path, score, 1.0, report)

    def _automatic(self, sample: Sample | None, report: dict) -> ShotChoice:
        """Automatic colour for the shot, helped by the gallery's best still where one matches."""
        if not self.cfg.gallery:
            return ShotChoice("auto", report=report)
        L = sample(self.cfg.retrieval.frames)
        if L is None:
            return ShotChoice("auto", report=report)
        best = self._gallery_index().rank(L)[0]
        report["score"] = round(float(best.score), 4)
        if best.score < self.cfg.retrieval.threshold:
            report["unmatched"] = True
            log.info("gallery: no still matches this shot (best %s, score %.2f < %.2f): automatic colour",
                     best.path.name, best.score, self.cfg.retrieval.threshold)
            return ShotChoice("auto", report=report)
        log.info("gallery: %s for this shot (score %.2f)", best.path.name, best.score)
        gate = gate_of(best.score, self.cfg.exemplar.gate_low, self.cfg.exemplar.gate_high)
        return ShotChoice("gallery", best.path, float(best.score), gate, report)

    def _gallery_index(self):
        if self._gallery is None:
            from .retrieval import ReferenceIndex

            if not self.cfg.gallery:
                raise ConfigError("the gallery colorizer needs a gallery: --gallery DIR (or gallery: in the config)")
            stills = _Stills(gallery_folder(self.cfg.gallery), self.store.device)
            self._gallery = ReferenceIndex(stills, self.store.device, top_k=self.cfg.retrieval.top_k,
                                           threshold=self.cfg.retrieval.threshold)
        return self._gallery

    def _unmatched(self, report: dict, message: str, *args) -> None:
        """A warning for each of the first MAX_SHOT_WARNINGS shots no still matches; then :meth:`summary`."""
        report["unmatched"] = True
        self.unmatched += 1
        if self.unmatched <= MAX_SHOT_WARNINGS:
            log.warning(message, *args)
        elif self.unmatched == MAX_SHOT_WARNINGS + 1:
            log.warning("more shots match no still: counted at the end (--report lists them, 'unmatched')")

    def summary(self, shots: int) -> None:
        if self.unmatched > MAX_SHOT_WARNINGS:
            log.warning("%d of %d shots matched no still and were coloured automatically", self.unmatched, shots)
