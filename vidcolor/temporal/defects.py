"""Dust and scratches on an old print, found as temporal outliers; the colour-side luma filled over them.

Dust and scratches are on the film, not in the scene: a speck of dust is a
small blob far brighter or darker than what is around it, there for a frame
or three; a scratch is a thin vertical line, brighter or darker than the
picture on either side of it, there for a few frames at (nearly) the same
place whatever the picture does. Left in the luminance the colorizer sees,
colour is painted along them: the guided filters that make colour follow
the frame's edges follow the scratch too.

:class:`DefectFinder` is fed a shot's frames in order (the first frame of a
shot has nothing to be compared with: none are found there). A pixel is

- a **speck** when it is in a small blob (at least ``min_area`` pixels, no
  wider nor taller than ``dust_size`` + ``blob_slack``) of the white (or
  black) top-hat over ``dust_contrast`` 8-bit codes (a square of
  ``dust_size``), and either new: its top-hat and its brightness both exceed
  anything within ``reach`` pixels of it a frame ago (the previous frame
  brought to this one's exposure, film flicker being no news) by
  ``novelty``, and where the blob's surroundings best match the previous
  frame (within ``search`` pixels, the blob itself left out), what was under
  it was not as bright (a small thing that moved, a walker's head, is no
  speck); where the surroundings are not found there (the picture around it
  moved or changed), only an even blob (its s.d. at most ``flat`` x its
  top-hat: dirt is opaque, or a clear hole) not itself found within
  ``search`` pixels a frame ago; or it was a speck a frame ago, in place,
  for under ``dust_life`` frames; or, the same tests the other way in time,
  **gone** by the next frame of the batch (an even blob only), or a frame
  before one that is: a speck that came where something as dark had just
  been (so was no news coming) is found as it goes. A speck that touches
  something as bright (a white speck on the edge of a white post) has no
  top-hat where it touches: its blob takes in the pixels joined to it that
  are ``dust_contrast`` brighter than the same pixel of the other frame,
  while it stays speck-sized (``touching``; where the picture moved, the
  moving edge joins it and only its free side is judged, as before); it
  lives on where it is as bright as it was;
- a **scratch** when its horizontal top-hat (``scratch_width``) is over
  ``scratch_contrast`` along at least ``scratch_cover`` of a vertical run of
  ``scratch_run`` x the frame's height (a line of at least two runs in a
  column carried on along that column over gaps of up to half a run: where
  it crosses an edge of the picture it is no line of its own), and either
  that run's mean top-hat exceeds anything within ``line_reach`` pixels
  across a frame ago by ``scratch_contrast`` (a scratch found a frame ago
  counts there only a pixel either side: it is no picture a new scratch
  beside it could have moved in from), or it was a scratch a frame
  ago within a pixel across (a scratch drifts a little), for under
  ``max_age`` frames (its age the youngest found near it: a new scratch
  beside an older line is not given up on with that line), or it came a
  frame ago, too broken there to be a line (over ``scratch_cover`` / 2 of a
  run, new, where no line was near), and is new against what it came over.
  A scratch ``max_age`` old lives on where it covers ``renew_span`` of the
  frame's height in its column (a pixel either side): a projector's
  scratch runs down the whole print through a shot, where a line of the
  picture once taken for one seldom runs so far so straight, and what came
  beside a scratch or is left where one went is in pieces. A line as long
  that is none of these is a scratch where it held still against a frame
  before (the nearest of 2 and 4 frames before where the picture moved
  ``held_near`` pixels, else ``held_back`` before where it moved
  ``held_shift``; its top-hat then, at the same pixels, at least 0.6 of
  its top-hat now; where the picture under it was then, at most half
  that) while the picture on both sides of it (other lines left out)
  moved across the same way, within ``held_agree`` of that shift of each
  other: a projector's scratch there since the shot began (it runs across
  the cut) is never new, but the picture moves under it. On a picture
  that held still across over ``held_back`` frames (a tripod shot) it is
  not told from a line of the picture that way: there it is a scratch only
  where it is a line down ``whole_span`` of the height in one column (a
  line of the picture seldom runs from the frame's top to its bottom
  unbroken; a pole that does is taken for a scratch, its colour then
  taken from beside it).
  Where a scratch crosses a part of the picture near black (white for a
  bright one) it is clipped there and fainter than ``scratch_contrast``: a
  scratch found along half a run of a column is carried on along it over
  pixels at the film's black (white) a sixth of that contrast darker
  (brighter) than either side.

A real detail is rarely both: the thresholds are conservative and a small
thing that moved is told by the motion check, so on a clean film almost
nothing is found (about 2 pixels in 10,000 on the development clips, the
heads and feet of walkers). The film's own luma is never altered: the
finder's :meth:`DefectFinder.fill` gives the colour side (colorizer, temporal
smoother, the codes) a copy with the defects filled: a speck, and each
stretch of ``scratch_tile`` rows of a scratch, with what the previous frame
(as filled) showed where its surroundings are found there (the picture
moves; a scratch stays on the film), otherwise from the pixels around it (a
scratch from either side of it), so flows, matches and guided filters see
the picture, not the dirt, and the defect gets its surroundings' colour.
A scratch's stretches overlap by half and each of its rows takes the shift
interpolated between the stretches' middles (the picture under a long
scratch does not move as one: a head turns; ``glide``). A
speck or a scratch's stretch is matched to a fraction of a pixel and its
picture sampled once from the frame it was last seen in (the previous
frame's fill followed back to where it came from, :class:`_Origin`): whole
pixels copied frame after frame from the copy before are off by up to half
a pixel each time the picture moves, and a copy at a fraction of a pixel
blurs it a little more every frame (on the old-film benchmark's scratched
copies the fill is 29% closer to the clean picture on montage, 8% on
carphone, as close on street: ``benchmarks/bench_defects.py --clean``).
What a scratch hides changes while it lives (a face talks under it), so a
fill from before alone is the further off the older the scratch: each of a
scratch's pixels is also looked for in the first of the ``fill_ahead``
frames after it where the scratch has gone (no line across there, the
stretch matched as in the frame before), and a pixel seen ``a`` frames
before and ``b`` after takes ``(b * before + a * after) / (a + b)``
(:meth:`DefectFinder._from_after`; the pipeline holds those frames back). A
shot's first frame is compared with the frame after it, after its next
``look_back`` frames (beyond its first batch: the pipeline holds them back)
were walked backwards to it: a scratch or speck already there when the shot
starts is new against a later frame it has left, and is found from the first
frame on. A speck in a batch's last frame goes against the frame after the
batch (held back too).

A colour reference still made from a scratched print carries the scratch too,
and its colour along it is not the picture's (a dark line under a saturated
colour is clipped in R'G'B'), which the exemplar then carries onto every
frame that matches the still: :func:`clean_still` fills a still's scratches,
found by their look alone (:func:`still_scratches`, stricter: thinner,
starker, straighter), from either side of them.
"""
from __future__ import annotations

import collections
import functools
from collections.abc import Callable, Iterable

import cv2
import numpy as np

from ..ops import apply_exposure, fit_exposure, match_exposure

__all__ = ["DefectFinder", "clean_still", "fill_masked", "still_scratches"]

_HATS = ((1, cv2.MORPH_TOPHAT), (-1, cv2.MORPH_BLACKHAT))  # bright defects' top-hat, dark ones'


def _ellipse(d: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (d, d))


def _components(on: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """8-connected components of a (sparse, not empty) bool mask: count, labels, stats (OpenCV's),
    labelled only inside the box that holds them."""
    rows, cols = np.flatnonzero(on.any(axis=1)), np.flatnonzero(on.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    n, part, stats, _ = cv2.connectedComponentsWithStats(on[r0:r1, c0:c1].view(np.uint8), connectivity=8)
    labels = np.zeros(on.shape, np.int32)
    labels[r0:r1, c0:c1] = part
    stats[:, cv2.CC_STAT_LEFT] += c0
    stats[:, cv2.CC_STAT_TOP] += r0
    return n, labels, stats


SCRATCH_FAINT = 1 / 6  # a found scratch carried on along its column where clipped, its contrast a sixth of a scratch's
SUBPIXEL_GAIN = 0.9  # a defect's match is taken to a fraction of a pixel only where that fits 10% better


def _vertex(cost: np.ndarray, inside: bool) -> float:
    """The offset (within half a pixel) of the lowest point of the parabola through three costs
    (``cost[1]`` the least; ``inside``: ``cost`` starts one before it); 0 at the search's edge."""
    if not inside or len(cost) < 3:
        return 0.0
    a, b, c = (float(v) for v in cost)
    den = a - 2 * b + c
    return float(np.clip(0.5 * (a - c) / den, -0.5, 0.5)) if den > 1e-6 else 0.0


class _Origin:
    """Where a frame's defect pixels filled from the frame before came from: for each, the frame it
    was last seen in (one of ``frames``: each as filled then, with the gain and offset that bring it
    to this frame's exposure) and its sub-pixel position there. A
    scratch lives on for frames (a speck for a few) while the picture under it moves; each frame's fill is sampled
    once from the frame the picture was last seen in, not copied from a copy of a copy (a copy at
    a fraction of a pixel blurs it a little more every frame). ``frames``: (frame, gain, offset,
    frames back from this one). ``slot``: (H, W) per pixel its entry
    in ``index``, ``source``, ``ys``, ``xs``, or -1 (the frame's own value: seen, or filled from
    around it); shared from frame to frame, each frame's entries cleared as the next is made."""

    def __init__(self, slot: np.ndarray, index: np.ndarray, source: np.ndarray, ys: np.ndarray, xs: np.ndarray,
                 frames: list[tuple[np.ndarray, float, float, int]]):
        self.slot, self.index, self.source, self.ys, self.xs, self.frames = slot, index, source, ys, xs, frames

    def ages(self) -> np.ndarray:
        """Per entry, how many frames back its picture was last seen."""
        return np.asarray([f[3] for f in self.frames], np.float32)[self.source]

    def follow(self, ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions (``ys``, ``xs``) in the frame before (as filled), each taken back to where its
        picture was last seen: (source, ys, xs), ``source`` -1 for the frame before itself."""
        h, w = self.slot.shape
        ry, rx = np.clip(np.rint(ys), 0, h - 1).astype(np.intp), np.clip(np.rint(xs), 0, w - 1).astype(np.intp)
        at = self.slot[ry, rx]
        hit = at >= 0
        src = np.full(len(ys), -1, np.int32)
        if hit.any():
            e = at[hit]
            src[hit] = self.source[e]
            ys, xs = ys.copy(), xs.copy()  # the remainder past the pixel's centre carried on to its origin
            ys[hit] = self.ys[e] + (ys[hit] - ry[hit])
            xs[hit] = self.xs[e] + (xs[hit] - rx[hit])
        return src, ys, xs


def _sample_at(frame: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """``frame`` at the sub-pixel positions (``ys``, ``xs``; float32, not empty), bilinear, float32; only the
    part of the frame they fall in is read."""
    h, w = frame.shape
    y0, x0 = max(0, int(ys.min()) - 1), max(0, int(xs.min()) - 1)
    crop = frame[y0:min(h, int(ys.max()) + 3), x0:min(w, int(xs.max()) + 3)].astype(np.float32)
    return cv2.remap(crop, (xs - x0)[None], (ys - y0)[None], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[0]


class _Later:
    """The frames a batch's scratches look ahead at (the batch's own and those after it, in order),
    each one's lines across (either sign's horizontal top-hat, a pixel either side) made once."""

    def __init__(self, frames: list[np.ndarray], hline: np.ndarray, across: np.ndarray,
                 y8: Callable[[np.ndarray], np.ndarray]):
        self.frames, self._hline, self._across, self._y8, self._lines = frames, hline, across, y8, {}

    def lines(self, k: int) -> np.ndarray:
        """Frame ``k``'s lines across, in 8-bit codes (``y8``: a deeper film's frame in 8-bit codes)."""
        if k not in self._lines:
            f = self._y8(self.frames[k])
            self._lines[k] = cv2.dilate(cv2.max(*(cv2.morphologyEx(f, op, self._hline) for _, op in _HATS)),
                                        self._across)
        return self._lines[k]


def fill_masked(luma: np.ndarray, mask: np.ndarray, sigma: tuple[float, float] = (1.5, 1.0)) -> np.ndarray:
    """``luma`` (H, W) with the ``mask`` pixels replaced by the normalised convolution of the others
    (a Gaussian of ``sigma`` = (x, y) pixels, wider across than along: a vertical scratch is filled
    from either side of it); a larger Gaussian where the first has no unmasked pixel in reach."""
    if not mask.any():
        return luma
    keep = (~mask).astype(np.float32)
    y = luma.astype(np.float32)
    out = y.copy()
    todo = mask.copy()
    for sx, sy in (sigma, (3 * sigma[0], 3 * sigma[1]), (12 * sigma[0], 12 * sigma[1])):
        num = cv2.GaussianBlur(y * keep, (0, 0), sigmaX=sx, sigmaY=sy, borderType=cv2.BORDER_REFLECT)
        den = cv2.GaussianBlur(keep, (0, 0), sigmaX=sx, sigmaY=sy, borderType=cv2.BORDER_REFLECT)
        ok = todo & (den > 1e-3)
        out[ok] = num[ok] / den[ok]
        todo &= ~ok
        if not todo.any():
            break
    if np.issubdtype(luma.dtype, np.integer):
        out = np.clip(np.rint(out), 0, np.iinfo(luma.dtype).max)
    return out.astype(luma.dtype)


def _stark_line(luma: np.ndarray, op: int, run: int, contrast: float = 24.0, width: int = 4,
                cover: float = 0.85, edge: int = 8) -> np.ndarray:
    """(H, W) bool: the pixels of thin lines (under ``width`` pixels across) brighter (``op``
    MORPH_TOPHAT; MORPH_BLACKHAT: darker) than either side by ``contrast`` codes along ``cover`` of a
    vertical ``run`` of pixels, in one column, not within ``edge`` pixels of a side (a frame line):
    a scratch, told by its look alone."""
    on = (cv2.morphologyEx(luma, op, np.ones((1, width), np.uint8)) > contrast).view(np.uint8)
    on[:, :edge] = on[:, -edge:] = 0
    return _vertical_runs(on, np.ones((run, 1), np.uint8), cover)


def _vertical_runs(on: np.ndarray, column: np.ndarray, cover: float) -> np.ndarray:
    """(H, W) bool: the pixels of ``on`` (uint8 0/1) where at least ``cover`` of the vertical run
    ``column`` (a (run, 1) kernel) around them is on, and on along that run to the line's ends."""
    frac = cv2.blur(on * np.uint8(255), (1, column.shape[0]), borderType=cv2.BORDER_REFLECT)
    line = (frac >= 255 * cover).view(np.uint8) & on
    if not line.any():
        return line.view(bool)
    return (cv2.dilate(line, column) > 0) & (on > 0)


def _along(line: np.ndarray, on: np.ndarray, run: int) -> np.ndarray:
    """``line`` (bool, not empty) carried on down and up each of its columns over the pixels of ``on``
    (uint8 0/1) that continue it there and over gaps of up to ``run`` // 2 rows in them, as far as a
    ``run`` beyond its ends: a scratch's stretch that crosses an edge of the picture (a bright line
    beside a bright region is no top-hat there) or fades near the frame's top or bottom is the same
    scratch, in the same place. Column by column: nothing spreads sideways."""
    long = line & (line.sum(axis=0) >= 2 * run)  # a long line: a scratch is, a strand of hair rarely
    if not long.any():
        return line
    gap = max(3, run // 2) | 1
    near = cv2.dilate(long.view(np.uint8), np.ones((2 * run + 1, 1), np.uint8))
    bridged = (cv2.morphologyEx(on & near, cv2.MORPH_CLOSE, np.ones((gap, 1), np.uint8)) & near).view(bool) | line
    cols = np.flatnonzero(long.any(axis=0))
    part = bridged[:, cols]  # the vertical runs of the line's columns, each run a number of its own
    start = part & ~np.vstack([np.zeros((1, part.shape[1]), bool), part[:-1]])
    run_id = np.cumsum(start, axis=0) * part.shape[1] + np.arange(part.shape[1])
    keep = np.isin(run_id, run_id[long[:, cols]]) & part
    out = line.copy()
    out[:, cols] |= keep
    return out


def _carried(age: np.ndarray, faint: np.ndarray, run: int) -> np.ndarray:
    """A frame's scratch ages (uint8, some > 0) carried on up and down each column they run at least
    ``run`` // 2 rows down, over the pixels of ``faint`` (uint8 0/1: at the film's black, or white,
    and darker, or brighter, than either side by less than a scratch's contrast but more than a
    picture's grain) that continue them, over gaps of up to ``run`` // 8 rows: where a scratch
    crosses a dark (bright) part of the picture it is clipped at the film's black (white), its
    contrast only the picture's there, and it is the same scratch. Each vertical run so joined takes
    the youngest age on it. Column by column: nothing spreads sideways."""
    cols = np.flatnonzero((age > 0).sum(axis=0) >= run // 2)  # a line, half a run long at least
    if not len(cols):
        return age
    a = age[:, cols]
    gap = max(3, run // 8) | 1
    part = cv2.morphologyEx((faint[:, cols] | (a > 0)).view(np.uint8), cv2.MORPH_CLOSE,
                            np.ones((gap, 1), np.uint8)).view(bool)
    start = part & ~np.vstack([np.zeros((1, part.shape[1]), bool), part[:-1]])
    run_id = np.where(part, np.cumsum(start, axis=0) * part.shape[1] + np.arange(part.shape[1]), 0)
    on = a > 0
    young = np.full(int(run_id.max()) + 1, 255, np.uint8)  # the youngest age on each run
    np.minimum.at(young, run_id[on], a[on])
    young[np.bincount(run_id[on], minlength=len(young)) == 0] = 0  # a run of faint pixels alone: none
    out = age.copy()
    out[:, cols] = np.where(part, young[run_id], 0)
    return out


def still_scratches(luma: np.ndarray, *, run: float = 0.25, grow: int = 1) -> np.ndarray:
    """(H, W) bool: the scratches of one still picture (``luma``: 8-bit codes), widened by ``grow``
    pixels: lines at most 3 pixels across, brighter or darker than either side by 24 codes along
    85% of a vertical run of ``run`` x the height, in one column, away from the sides. With nothing
    to compare a still with, stricter than :class:`DefectFinder` (a thin line that long and that
    straight is rarely the picture's: on the development clips' clean stills about 4 pixels in
    10,000, a thin pole)."""
    n = max(15, round(run * luma.shape[0])) | 1
    out = _stark_line(luma, cv2.MORPH_TOPHAT, n) | _stark_line(luma, cv2.MORPH_BLACKHAT, n)
    if grow and out.any():
        out = cv2.dilate(out.view(np.uint8), _ellipse(2 * grow + 1)) > 0
    return out


def clean_still(rgb: np.ndarray) -> np.ndarray:
    """A colour reference still (H, W, 3) R'G'B' (uint8, uint16 or float in [0, 1]) with those of its
    scratches (:func:`still_scratches`) that lost their colour filled from either side of them,
    channel by channel; ``rgb`` itself where there are none. A keyframe coloured from a scratched
    print carries the scratch, and where R'G'B' could not hold its colour on the scratch's luma (a
    dark line under a saturated colour: a channel clipped at 0 or full scale along it) that colour
    is not the picture's. Only a line with a clipped pixel is filled: a thin pole of the picture
    keeps its colour (on the development clips' clean stills nothing is filled)."""
    peak = 255.0 if rgb.dtype == np.uint8 else 65535.0 if rgb.dtype == np.uint16 else 1.0
    y = rgb.astype(np.float32) @ np.float32([0.299, 0.587, 0.114]) * np.float32(255.0 / peak)
    lines = still_scratches(np.clip(np.rint(y), 0, 255).astype(np.uint8), grow=0)
    lost = ((rgb <= 0.004 * peak) | (rgb >= 0.996 * peak)).any(axis=-1) & lines
    if not lost.any():
        return rgb
    _, labels = cv2.connectedComponents(lines.view(np.uint8), connectivity=8)
    mask = cv2.dilate(np.isin(labels, np.unique(labels[lost])).view(np.uint8), _ellipse(3)) > 0
    return np.stack([fill_masked(rgb[..., c], mask) for c in range(3)], axis=-1)


class DefectFinder:
    """Finds dust and scratches frame by frame inside a shot; see the module docstring.

    ``find(luma)`` -> (H, W) bool mask of one frame (in order; :meth:`reset` at every
    shot start: the first frame of a shot has nothing to compare with and gets none).
    ``fill(luma)`` -> (N, H, W) luma of a batch with its defects filled (the finder's state moves
    on by N frames). Levels are in 8-bit codes; ``bits``: the film's luma depth. ``pad``: pixels of
    surroundings matched around a speck; ``fit_rms``: the most they may differ from their match
    (8-bit codes) for the speck to be judged, or a speck or stretch of a scratch to be filled from
    the previous frame (else it is left alone, or filled from around it); ``grow``: pixels the found
    mask is widened by (a defect's soft edge); ``flat``: how even a speck judged without its
    surroundings (or found as it goes) must be; ``temporal_fill`` / ``temporal_scratch``: specks /
    scratches filled from the previous frame where they can be (else from around them only);
    ``look_back``: frames after a shot's first frame walked backwards to it (a scratch already there
    when the shot starts is found if it has gone within them); ``touching``: a speck touching something
    as bright (dark) found whole (see the module docstring); ``subpixel``: a speck or a scratch's stretch
    matched to a fraction of a pixel and sampled once from the frame its picture was last seen in (else copied
    whole pixels from the previous frame as filled); ``glide`` (with ``subpixel``): a scratch's stretches
    overlap by half and each row takes the shift interpolated between them (else each stretch shifted whole);
    ``fresh_lines``: a scratch that comes in too broken to be a line is found a frame later, when it is one;
    ``renew_span``: a scratch past ``max_age`` lives on in a column where it covers that share of the height (0: none);
    ``held_back``: the most frames back a line that share of the height long is matched against, found where it held
    still while the picture beside it moved ``held_shift`` pixels across (0: none); ``held_near``: the shift
    the picture must have made to be judged against a nearer frame (2 or 4 back); ``held_agree``: how far apart
    (a share of their shift) the two sides' shifts may be; ``whole_span``: on a picture that held still, the
    share of the height a line must run down in one column to be a scratch (0: none); ``fill_ahead``: the most
    frames after a scratch's frame looked at for where its picture is seen again, its fill then blended
    from before and after by how long ago and how far ahead that is (0: from before only; see :meth:`_from_after`);
    ``min_stretch``: a scratch's stretch whose surroundings are not found as one is matched again as two halves,
    down to stretches this many rows long (0: not split; see :meth:`_glide`); ``side_rms``: a stretch of that
    length still not found is matched on each side of the scratch apart, each side taken where it fits within
    ``side_rms`` * ``fit_rms`` (0: not). ``fill`` takes the frames after its batch (``ahead``): :meth:`ahead`
    says how many it uses.
    """

    def __init__(self, *, bits: int = 8, dust_contrast: float = 20.0, novelty: float = 15.0, reach: int = 3,
                 dust_size: int = 11, blob_slack: int = 4, min_area: int = 4, dust_life: int = 3, search: int = 16,
                 pad: int = 6, fit_rms: float = 14.0, scratch_contrast: float = 18.0, scratch_width: int = 9,
                 scratch_run: float = 0.25, scratch_cover: float = 0.7, line_reach: int = 6, max_age: int = 16,
                 grow: int = 1, temporal_fill: bool = True, temporal_scratch: bool = True, scratch_tile: int = 24,
                 edge: int = 1, look_back: int = 15, flat: float = 0.1, touching: bool = True, subpixel: bool = True,
                 glide: bool = True, fresh_lines: bool = True, renew_span: float = 0.75, held_back: int = 8,
                 held_shift: float = 1.5, held_near: float = 3.0, held_agree: float = 0.5, whole_span: float = 0.95,
                 fill_ahead: int = 16, min_stretch: int = 6, side_rms: float = 0.6):
        self.scale = 1.0 / (1 << max(0, bits - 8))
        self._top = (1 << max(8, bits)) - 1  # the film's highest luma code
        self.dust_contrast, self.scratch_contrast, self.novelty = dust_contrast, scratch_contrast, novelty
        self.reach, self.scratch_run, self.scratch_cover = reach, scratch_run, scratch_cover
        self.max_age, self.dust_life, self.grow, self.temporal_fill = max_age, dust_life, grow, temporal_fill
        self.temporal_scratch, self.scratch_tile = temporal_scratch, max(4, scratch_tile)
        self.edge = max(1, edge)  # pixels at the frame's edge where no speck is new (the picture comes in there)
        self.dust_size, self.blob_slack = dust_size, blob_slack
        self.look_back = max(1, look_back)
        self.flat = flat
        self.touching = touching
        self.subpixel = subpixel
        self.glide = glide
        self.fresh_lines = fresh_lines
        self.renew_span = renew_span
        self.held_back, self.held_shift = held_back, held_shift
        self.held_near, self.held_agree, self.whole_span = held_near, held_agree, whole_span
        self.fill_ahead = max(0, fill_ahead)
        self.min_stretch, self.side_rms = max(0, min_stretch), side_rms
        self.search, self.pad, self.fit_rms, self.min_area = search, pad, fit_rms, min_area
        self._disc = np.ones((dust_size, dust_size), np.uint8)
        self._hline = np.ones((1, scratch_width), np.uint8)
        self._near = _ellipse(2 * reach + 1)
        self._wide = np.ones((1, 2 * line_reach + 1), np.uint8)
        self._across = np.ones((1, 3), np.uint8)  # a pixel either side: a scratch drifts a little
        self._line_margin = line_reach + 2
        self._tall: np.ndarray | None = None  # (run, 3): a scratch drifts a little sideways
        self._column: np.ndarray | None = None  # (run, 1)
        self._step = np.ones((3, 3), np.uint8)
        self.reset()

    def reset(self) -> None:
        """A new shot: nothing before it is compared with."""
        self._prev: np.ndarray | None = None  # the previous frame (8-bit codes)
        self._last: np.ndarray | None = None  # the previous frame as filled
        self._res: dict | None = None  # the previous frame's spatial residuals (dust, line), per sign
        self._speck: dict = {}  # per sign (+1 bright, -1 dark): per pixel, frames it has been a speck (uint8)
        self._scratch: dict = {}  # ... a scratch
        self._fresh: dict = {}  # per sign: pixels of a line new a frame ago but too broken there to be found,
        # and what it was new against (the residuals near by two frames ago)
        self._moved: np.ndarray | None = None  # this frame's blobs judged to have moved in (while finding)
        self._past: collections.deque = collections.deque(maxlen=max(1, self.held_back))  # the frames found before
        self._clock = 0  # the frame's place in the shot (the frames walked back at its start count down)
        self._origin: _Origin | None = None  # where the previous frame's fill from before came from

    @property
    def _big(self) -> int:
        """The most pixels a speck spans across or down."""
        return self.dust_size + self.blob_slack

    def _speck_sized(self, stats: np.ndarray) -> np.ndarray:
        """Per component (connectedComponentsWithStats' rows): no wider nor taller than a speck can be."""
        return (stats[:, cv2.CC_STAT_WIDTH] <= self._big) & (stats[:, cv2.CC_STAT_HEIGHT] <= self._big)

    def _blobs(self, on: np.ndarray, y: np.ndarray, resid: np.ndarray | None):
        """8-connected blobs of ``on`` (not empty): count, labels, stats, which are speck-sized (no wider
        nor taller than a speck can be, not under ``min_area``) and which are even inside: their s.d.
        in ``y`` at most ``flat`` x their mean ``resid`` (the top-hat: their contrast with what is around
        them). Dirt is opaque (or a clear hole), unlike most of a picture's small detail."""
        n, labels, stats = _components(on)
        ok = self._speck_sized(stats) & (stats[:, cv2.CC_STAT_AREA] >= self.min_area)
        ok[0] = False
        even = np.zeros(n, bool)
        if resid is not None:
            lab, v = labels[on], y[on].astype(np.float64)
            cnt = np.maximum(np.bincount(lab, minlength=n), 1)
            mean = np.bincount(lab, v, n) / cnt
            sd = np.sqrt(np.maximum(np.bincount(lab, v * v, n) / cnt - mean ** 2, 0.0))
            even = sd <= self.flat * np.bincount(lab, resid[on].astype(np.float64), n) / cnt
        return n, labels, stats, ok, even

    def _small(self, on: np.ndarray, y: np.ndarray | None = None, p: np.ndarray | None = None,
               sign: int = 1, resid: np.ndarray | None = None) -> np.ndarray:
        """The parts of ``on`` that are small blobs (:meth:`_blobs`); given this frame ``y`` and the
        previous ``p``, only those that did not come from near by: where the blob's surroundings best
        match the previous frame (within ``search`` pixels), what was under it was not as bright
        (``sign`` -1: as dark); where they are not found, an even blob (``resid``: :meth:`_blobs`)
        not itself found near by in ``p``. A small thing that moved is no speck."""
        if not on.any():
            return on
        n, labels, stats, ok, even = self._blobs(on, y, resid)
        if p is not None:
            moved = np.zeros(n, bool)
            for i in np.flatnonzero(ok):
                ok[i] = self._moved_in(labels, i, stats[i], y, p, sign, bool(even[i])) is False
                moved[i] = not ok[i]
            if self._moved is not None and moved.any():  # judged to have moved in: not judged again going back
                self._moved[on] |= moved[labels[on]]
        out = np.zeros(on.shape, bool)
        out[on] = ok[labels[on]]
        return out

    def _match(self, y: np.ndarray, p: np.ndarray, box: tuple[int, int, int, int],
               blob: np.ndarray, fine: bool = False, side: int = 0) -> tuple | None:
        """Where the region ``box`` = (x0, y0, x1, y1) of ``y``, without ``blob`` (a bool mask of the
        region) and a pixel around it, best matches ``p`` within ``search`` pixels: the match's top
        left corner in ``p`` and the root mean square difference there (in 8-bit codes, whatever the
        film's depth: ``y`` and ``p`` in its own); None: too little around. ``fine``: also the match's
        sub-pixel remainder (dy, dx), each within half a pixel (a parabola through the match's cost and
        its neighbours'), kept only where ``p`` shifted by it fits the surroundings :data:`SUBPIXEL_GAIN`
        better than the whole-pixel match (else (0, 0)). ``side`` -1 / 1: only the surroundings left / right
        of the blob's columns matched."""
        h, w = y.shape
        ax, ay, bx, by = box
        r = self.search
        sx, sy, ex, ey = max(0, ax - r), max(0, ay - r), min(w, bx + r), min(h, by + r)
        tpl = y[ay:by, ax:bx].astype(np.float32)
        around = cv2.dilate(blob.view(np.uint8), self._step) == 0
        if side:
            cols = np.flatnonzero(blob.any(axis=0))
            if not len(cols):
                return None
            x = np.arange(blob.shape[1])[None, :]
            around &= (x < cols[0]) if side < 0 else (x > cols[-1])
        if around.sum() < 8:
            return None
        fit = cv2.matchTemplate(p[sy:ey, sx:ex].astype(np.float32), tpl, cv2.TM_SQDIFF,
                                mask=around.astype(np.float32))
        _, _, (mx, my), _ = cv2.minMaxLoc(fit)
        oy, ox = sy + my, sx + mx
        under = p[oy:oy + (by - ay), ox:ox + (bx - ax)].astype(np.float32)
        rms = float(np.sqrt(((tpl - under)[around] ** 2).mean()))
        to8 = 1.0 if y.dtype == np.uint8 else self.scale
        if not fine:
            return oy, ox, rms * to8
        dy, dx = _vertex(fit[max(0, my - 1):my + 2, mx], my > 0), _vertex(fit[my, max(0, mx - 1):mx + 2], mx > 0)
        if dy or dx:
            cy, cx = max(0, oy - 1), max(0, ox - 1)  # the match and a pixel around it
            shift = np.float32([[1, 0, ox - cx + dx], [0, 1, oy - cy + dy]])
            shifted = cv2.warpAffine(p[cy:oy + (by - ay) + 1, cx:ox + (bx - ax) + 1].astype(np.float32), shift,
                                     (bx - ax, by - ay), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                     borderMode=cv2.BORDER_REPLICATE)
            if np.sqrt(((tpl - shifted)[around] ** 2).mean()) > SUBPIXEL_GAIN * rms:
                dy = dx = 0.0
        return oy, ox, rms * to8, dy, dx

    def _box(self, stat: np.ndarray, shape: tuple[int, int]) -> tuple[int, int, int, int]:
        """A component's bounding box (connectedComponentsWithStats' row) with ``pad`` pixels around it."""
        x0, y0, bw, bh = (int(v) for v in stat[:4])
        pad, (h, w) = self.pad, shape
        return max(0, x0 - pad), max(0, y0 - pad), min(w, x0 + bw + pad), min(h, y0 + bh + pad)

    def _moved_in(self, labels: np.ndarray, i: int, stat: np.ndarray, y: np.ndarray, p: np.ndarray,
                  sign: int, even: bool = False) -> bool:
        """Whether blob ``i`` was near by in ``p``: its surroundings' best match in ``p`` has it too;
        where they are not found (the picture around it moved or changed), unknown unless the blob is
        ``even`` (as dirt is) and not itself found near by in ``p``."""
        ax, ay, bx, by = box = self._box(stat, y.shape)
        blob = labels[ay:by, ax:bx] == i
        got = self._match(y, p, box, blob)
        if got is None or got[2] > self.fit_rms:
            return not even or self._near_before(y, p, box, blob)
        oy, ox, _ = got
        # what was there, give or take a pixel (the match is to the pixel, the motion is not)
        wide = np.pad(p, 1, mode="edge")[oy:oy + (by - ay) + 2, ox:ox + (bx - ax) + 2]
        wide = (cv2.dilate if sign > 0 else cv2.erode)(wide, self._step)[1:-1, 1:-1].astype(np.float32)
        tpl = y[ay:by, ax:bx].astype(np.float32)
        return float((sign * (tpl - wide))[blob].mean()) < self.novelty

    def _near_before(self, y: np.ndarray, p: np.ndarray, box: tuple[int, int, int, int], blob: np.ndarray) -> bool:
        """Whether the blob itself is found in ``p`` within ``search`` pixels: somewhere its pixels
        are matched to within ``novelty`` (root mean square), a small thing that may have moved in."""
        h, w = y.shape
        ax, ay, bx, by = box
        rows, cols = np.flatnonzero(blob.any(axis=1)), np.flatnonzero(blob.any(axis=0))
        inside = blob[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        y0, x0 = ay + rows[0], ax + cols[0]
        y1, x1 = y0 + inside.shape[0], x0 + inside.shape[1]
        r = self.search
        sx, sy, ex, ey = max(0, x0 - r), max(0, y0 - r), min(w, x1 + r), min(h, y1 + r)
        fit = cv2.matchTemplate(p[sy:ey, sx:ex].astype(np.float32), y[y0:y1, x0:x1].astype(np.float32),
                                cv2.TM_SQDIFF, mask=inside.astype(np.float32))
        return float(fit.min()) < self.novelty ** 2 * float(inside.sum())

    def _grown(self, ages: Iterable[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
        """(H, W) bool: where any of ``ages`` (per-pixel ages of found defects) is on, widened by
        ``grow`` pixels (a defect's soft edge, and the encoder's ringing, with it)."""
        mask = np.zeros(shape, np.uint8)
        for v in ages:
            mask |= (v > 0).view(np.uint8)
        if self.grow and mask.any():
            mask = cv2.dilate(mask, _ellipse(2 * self.grow + 1))
        return mask.view(bool)

    def _from_before(self, frame: np.ndarray, filled: np.ndarray, specks: list[np.ndarray],
                     scratches: list[np.ndarray]) -> np.ndarray:
        """``filled`` (``frame`` with its defects filled from around them) with each speck's pixels,
        and each ``scratch_tile`` rows of a scratch, taken instead from the previous frame (as filled),
        where their surroundings are found there: what the defect hides was seen a frame ago.
        Each is matched to a fraction of a pixel (``subpixel``) and sampled from the
        frame its picture was last seen in (:class:`_Origin`), brought to this frame's exposure.
        ``specks``, ``scratches``: the frame's found ages (none empty). Sets :attr:`_origin`."""
        last, origin = self._last, self._origin
        self._origin = None
        if last is None or not (specks or scratches):
            return filled
        fit = fit_exposure(last, frame)
        p = apply_exposure(last, *fit, top=self._top)
        taken = []  # pixels filled from before: (flat index, source, y, x), source -1 = last

        def take(qy: np.ndarray, qx: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> None:
            """Pixels (rows ``qy``, columns ``qx``) to be filled from ``ys``, ``xs`` in the frame before,
            followed back to where their picture was last seen."""
            src = np.full(len(qy), -1, np.int32)
            if origin is not None:
                src, ys, xs = origin.follow(ys, xs)
            taken.append((qy * frame.shape[1] + qx, src, ys, xs))

        for found, tile in ((specks, 0), (scratches, self.scratch_tile)):
            if not found or (tile == 0 and not self.temporal_fill) or (tile and not self.temporal_scratch):
                continue
            n, labels, stats = _components(self._grown(found, frame.shape))
            for i in range(1, n):
                x0, y0, bw, bh = (int(v) for v in stats[i][:4])
                if tile and self.subpixel and self.glide:
                    got = self._glide(frame, p, labels, i, (x0, y0, bw, bh), tile)
                    if got is not None:
                        take(*got)
                    continue
                step = tile or bh  # a scratch runs far: each stretch of it matched on its own (the picture moves)
                for top in range(y0, y0 + bh, step):
                    rows = min(step, y0 + bh - top)
                    ax, ay, bx, by = box = self._box((x0, top, bw, rows), frame.shape)
                    blob = labels[ay:by, ax:bx] == i  # all of it in the box is left out of the match
                    got = self._match(frame, p, box, blob, fine=self.subpixel)
                    if got is None or got[2] > self.fit_rms:
                        continue
                    oy, ox = got[:2]
                    part = blob.copy()  # ... and only this stretch of it filled
                    part[:top - ay] = part[top - ay + rows:] = False
                    if not self.subpixel:
                        filled[ay:by, ax:bx][part] = p[oy:oy + (by - ay), ox:ox + (bx - ax)][part]
                        continue
                    qy, qx = np.nonzero(part)
                    take(qy + ay, qx + ax, (qy + oy + got[3]).astype(np.float32), (qx + ox + got[4]).astype(np.float32))
        if taken:
            self._origin = self._sample(filled, last, fit, origin, *(np.concatenate(t) for t in zip(*taken)))
        return filled

    def _glide(self, frame: np.ndarray, p: np.ndarray, labels: np.ndarray, i: int,
               stat: tuple[int, int, int, int], tile: int):
        """A scratch (component ``i`` of ``labels``, bounding box ``stat``) matched in ``p`` stretch by
        stretch, ``tile`` rows each, the stretches overlapping by half; each row of it takes the shift
        interpolated between the matched stretches' middles (the picture under a long scratch does not
        move as one: a face turns, a body bends), where a matched stretch covers it. A stretch not matched
        is matched again as two halves, down to ``min_stretch`` rows (a jaw moves, the cheek above it
        does not); one that short still not matched, on each side of the scratch apart (``side_rms``:
        a scratch on the edge of a face, the window behind it moving the other way), each of its
        pixels then taking the shift of its own side of the scratch's middle (the other side's where
        only that one is matched). -> (rows, cols, ys, xs) of its pixels so taken and where they are in
        ``p``, or None: no stretch matched."""
        x0, y0, bw, bh = stat
        half = max(2, tile // 2)
        sides = ([], []), ([], [])  # left, right: (the stretch's middle row, dy, dx), (first row, end row)
        tried = set()  # (a half of one stretch is a half of the stretch overlapping it)

        def stretch(top: int, rows: int) -> None:
            if (top, rows) in tried:
                return
            tried.add((top, rows))
            ax, ay, bx, by = box = self._box((x0, top, bw, rows), frame.shape)
            blob = labels[ay:by, ax:bx] == i

            def add(k: int, got: tuple) -> None:  # a match's shift, for side ``k``
                sides[k][0].append((top + (rows - 1) / 2.0, got[0] - ay + got[3], got[1] - ax + got[4]))
                sides[k][1].append((top, top + rows))

            got = self._match(frame, p, box, blob, fine=True)
            if got is not None and got[2] <= self.fit_rms:
                add(0, got)
                add(1, got)
            elif self.min_stretch and rows >= 2 * self.min_stretch:
                stretch(top, rows // 2)
                stretch(top + rows // 2, rows - rows // 2)
            elif self.side_rms > 0:
                for k, side in ((0, -1), (1, 1)):
                    got = self._match(frame, p, box, blob, fine=True, side=side)
                    if got is not None and got[2] <= self.fit_rms * self.side_rms:
                        add(k, got)

        top = y0
        while True:
            rows = min(tile, y0 + bh - top)
            stretch(top, rows)
            if top + rows >= y0 + bh:
                break
            top += half
        if not sides[0][0] and not sides[1][0]:
            return None
        own = labels[y0:y0 + bh, x0:x0 + bw] == i
        qy, qx = np.nonzero(own)
        middle = (own * np.arange(bw)).sum(axis=1) / np.maximum(own.sum(axis=1), 1)  # per row
        cover, dy, dx = np.zeros((2, len(qy)), bool), np.zeros((2, len(qy))), np.zeros((2, len(qy)))
        for k, (shifts, spans) in enumerate(sides):
            if not shifts:
                continue
            covered = np.zeros(bh, bool)  # per row of the box
            for a, b in spans:
                covered[a - y0:b - y0] = True
            cover[k] = covered[qy]
            mids, sy, sx = np.asarray(sorted(shifts)).T
            dy[k], dx[k] = np.interp(qy + y0, mids, sy), np.interp(qy + y0, mids, sx)
        # each pixel its own side (0 left, 1 right of its row's middle) where that is matched, else the other's
        side = np.where(qx > middle[qy], cover[1], ~cover[0]).astype(np.intp)
        at = np.arange(len(qy))
        keep = cover[side, at]
        dy, dx = dy[side, at][keep], dx[side, at][keep]
        qy, qx = qy[keep] + y0, qx[keep] + x0
        return qy, qx, (qy + dy).astype(np.float32), (qx + dx).astype(np.float32)

    def _sample(self, filled: np.ndarray, last: np.ndarray, fit: tuple[float, float], origin: _Origin | None,
                index: np.ndarray, source: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> _Origin:
        """``filled``'s pixels ``index`` (flat) sampled from where their picture was last seen
        (``source``: an entry of ``origin.frames``, -1 for ``last``; ``ys``, ``xs``: the position
        there), each such frame brought to this frame's exposure (``fit``: gain and offset from
        ``last``'s, after each frame's own to ``last``'s); their :class:`_Origin`, the frames no longer
        seen dropped."""
        g1, o1 = fit
        _, back = np.unique(index[::-1], return_index=True)  # a speck on a scratch: the scratch's (the later)
        if len(back) < len(index):
            at = len(index) - 1 - back
            index, source, ys, xs = index[at], source[at], ys[at], xs[at]
        frames = [] if origin is None else origin.frames
        used = np.unique(source)
        keep = [(last.copy(), g1, o1, 1) if k < 0 else (frames[k][0], g1 * frames[k][1], g1 * frames[k][2] + o1,
                                                         frames[k][3] + 1) for k in used]
        source = np.searchsorted(used, source).astype(np.int32)  # renumbered over the frames kept
        flat = filled.reshape(-1)
        for k, (f, g, o, _) in enumerate(keep):
            on = source == k
            flat[index[on]] = np.clip(np.rint(_sample_at(f, ys[on], xs[on]) * g + o), 0, self._top).astype(flat.dtype)
        if origin is None:
            slot = np.full(last.shape, -1, np.int32)
        else:
            slot = origin.slot
            slot.reshape(-1)[origin.index] = -1
        slot.reshape(-1)[index] = np.arange(len(index), dtype=np.int32)
        return _Origin(slot, index, source, ys, xs, keep)

    def _from_after(self, frame: np.ndarray, filled: np.ndarray, scratches: list[np.ndarray],
                    later: _Later, first: int) -> np.ndarray:
        """``filled`` (``frame`` with its defects filled, from before where it could be: :meth:`_from_before`)
        with each scratch's pixels blended with what the first of the ``fill_ahead`` frames after it to
        show their picture again shows: each ``scratch_tile`` rows of a scratch matched there
        as :meth:`_glide` matches them in the frame before, a pixel taken where that frame has no line
        across (of either sign: the scratch has gone from it) at the matched place. A pixel seen ``a``
        frames before and ``b`` after gets ``(b * before + a * after) / (a + b)``: a scratch hides a
        picture that changes under it (a face talks), and a fill from one side alone is the further off
        the longer the scratch has lived. A pixel not filled from before takes what is after alone.
        ``scratches``: the frame's found scratch ages; ``later``: the frames of the batch and after it, the
        frame's own at ``first`` - 1."""
        if (first >= len(later.frames)
                or not (self.temporal_scratch and self.subpixel and self.glide)):
            return filled
        h, w = frame.shape
        n, labels, stats = _components(self._grown(scratches, frame.shape))
        before = np.zeros(h * w, np.float32)  # per pixel, frames since its picture was seen (0: not filled from before)
        if self._origin is not None:
            before[self._origin.index] = self._origin.ages()
        flat = filled.reshape(-1)
        pending = list(range(1, n))
        for b in range(1, min(self.fill_ahead, len(later.frames) - first) + 1):
            if not pending:
                break
            fut, lines = later.frames[first + b - 1], later.lines(first + b - 1)
            gone = lines <= self.scratch_contrast
            fit = p = None
            left = []
            for i in pending:
                x0, y0, bw, bh = (int(v) for v in stats[i][:4])
                own = labels[y0:y0 + bh, x0:x0 + bw] == i
                if not gone[y0:y0 + bh, x0:x0 + bw][own].mean() > 0.5:  # still there (or a line of the picture)
                    left.append(i)
                    continue
                if p is None:  # the frame brought to this one's exposure, once one of its scratches has gone there
                    fit = fit_exposure(fut, frame)
                    p = apply_exposure(fut, *fit, top=self._top)
                got = self._glide(frame, p, labels, i, (x0, y0, bw, bh), self.scratch_tile)
                if got is None:
                    continue  # the picture around it is not found there: no later frame is tried
                qy, qx, ys, xs = got
                seen = gone[np.clip(np.rint(ys), 0, h - 1).astype(np.intp), np.clip(np.rint(xs), 0, w - 1).astype(np.intp)]
                if not seen.any():
                    left.append(i)
                    continue
                qy, qx = qy[seen], qx[seen]
                v = _sample_at(fut, ys[seen], xs[seen]) * fit[0] + fit[1]
                at = qy * w + qx
                a = before[at]
                mix = np.where(a > 0, (b * flat[at].astype(np.float32) + a * v) / (a + b), v)
                flat[at] = np.clip(np.rint(mix), 0, self._top).astype(flat.dtype)
            pending = left
        return filled

    def _new_specks(self, y8: np.ndarray, cand: np.ndarray, p: np.ndarray, sign: int,
                    resid: np.ndarray | None = None) -> np.ndarray:
        """Of the candidate pixels ``cand`` (some), those brighter (``sign`` -1: darker) than anything
        near them in ``p`` (the previous frame brought to ``y8``'s exposure), in small blobs that did
        not come from near by."""
        if sign > 0:
            cand &= cv2.subtract(y8, cv2.dilate(p, self._near)) > self.novelty
        else:
            cand &= cv2.subtract(cv2.erode(p, self._near), y8) > self.novelty
        if not cand.any():
            return cand
        if self.touching:
            cand, resid = self._whole(y8, cand, p, sign, resid)
        return self._small(cand, y8, p, sign, resid)

    def _whole(self, y8: np.ndarray, cand: np.ndarray, p: np.ndarray, sign: int,
               resid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        """``cand`` grown over the pixels joined to it that are ``dust_contrast`` brighter (``sign`` -1:
        darker) than the same pixel of ``p``: the whole of a speck that touches something as bright.
        The opening that makes the top-hat keeps the two as one (the speck has no top-hat where it
        touches), and "brighter than anything near it" swallows its pixels next to the other thing;
        pixel by pixel against the frame before, where the picture held still, it stands out whole
        (where the picture moved, the moving edge joins it and makes it too big to be a speck: then
        ``cand`` alone, as before). ``resid`` then takes that contrast too (the evenness test). Neither
        is written: where nothing grows, they are returned as they are; else copies."""
        h, w = y8.shape
        m, big = self.edge, self._big
        n, labels, stats = _components(cand)
        out = None  # copies of cand and resid, made when a speck first grows
        for i in range(1, n):  # each candidate in a window a pixel wider than any speck holding it could reach
            x0, y0, bw, bh = (int(v) for v in stats[i][:4])  # (the whole frame's pixels: 3x the time on a clean film)
            if bw > big or bh > big:
                continue
            ax, ay = max(m, x0 + bw - big - 1), max(m, y0 + bh - big - 1)
            bx, by = min(w - m, x0 + big + 1), min(h - m, y0 + big + 1)
            if ax >= bx or ay >= by:
                continue
            a, b = y8[ay:by, ax:bx], p[ay:by, ax:bx]
            jump = cv2.subtract(a, b) if sign > 0 else cv2.subtract(b, a)
            here = labels[ay:by, ax:bx] == i
            more = (jump > self.dust_contrast) & ~here
            if not (cv2.dilate(here.view(np.uint8), self._step).view(bool) & more).any():
                continue  # nothing joins it
            k, lab, st = _components(here | more)
            keep = np.zeros(k, bool)
            keep[lab[here]] = True
            whole = (keep & self._speck_sized(st))[lab]
            if not whole.any():
                continue
            if out is None:
                out, resid = cand.copy(), (np.zeros(y8.shape, np.uint8) if resid is None else resid.copy())
            out[ay:by, ax:bx] |= whole
            r = resid[ay:by, ax:bx]
            np.maximum(r, np.where(whole, jump, 0).astype(r.dtype), out=r)
        return (cand, resid) if out is None else (out, resid)

    def _speck_ages(self, y8: np.ndarray, dust: np.ndarray, other: np.ndarray, sign: int, was: np.ndarray | None,
                    exposure: Callable[[], np.ndarray], judged: np.ndarray | None = None) -> np.ndarray:
        """One sign's specks of ``y8`` (``dust``: its top-hat) against a neighbouring frame (``other``:
        that frame's top-hat; ``exposure()``: that frame brought to ``y8``'s exposure), as per-pixel ages:
        a small strong blob, new against it, or where one was in that frame (``was``: its ages), in place,
        for under ``dust_life`` frames (dust lives a few frames and cannot grow). ``judged``: going back
        in time, the pixels judged going forward (left alone), and only even blobs are new."""
        m = self.edge  # the picture coming in at a side is no news
        new = cv2.subtract(dust, cv2.dilate(other, self._near))  # more so than anything near it there
        new[:, :m] = new[:, -m:] = new[:m] = new[-m:] = 0
        blob = dust > self.dust_contrast
        hit = blob & (new > self.novelty)
        if judged is not None:
            hit &= ~judged
            if hit.any():  # only even blobs (as dirt is): a cheap look before anything is matched
                _, labels, _, ok, even = self._blobs(hit, y8, dust)
                hit[hit] = (ok & even)[labels[hit]]
        if hit.any():
            hit = self._new_specks(y8, hit, exposure(), sign, dust)
        age = hit.view(np.uint8).copy()
        if was is not None:
            kept = (was > 0) & (was < self.dust_life)
            if self.touching and kept.any():  # in place: as the top-hat says, or as bright as it was there
                kept &= blob | (cv2.absdiff(y8, exposure()) <= self.novelty)
            else:
                kept &= blob
            age[kept] = was[kept] + 1
        return age

    def _line(self, resid: np.ndarray) -> np.ndarray:
        """Pixels of ``resid`` (a horizontal top-hat) over the scratch contrast along most of a vertical
        run, and on to the line's ends, across gaps of up to half a run (:func:`_along`)."""
        on = (resid > self.scratch_contrast).view(np.uint8)
        line = _vertical_runs(on, self._column, self.scratch_cover)
        return _along(line, on, self._run) if line.any() else line

    def find(self, luma: np.ndarray) -> np.ndarray:
        """One frame's (H, W) defect mask; the frame becomes the one the next is compared with."""
        y8 = self._y8(luma)
        run = max(15, round(self.scratch_run * y8.shape[0])) | 1  # a scratch runs down much of the frame
        if self._tall is None or self._tall.shape[0] != run:
            self._run, self._tall, self._column = run, np.ones((run, 3), np.uint8), np.ones((run, 1), np.uint8)
        prev, self._prev = self._prev, y8
        self._moved = np.zeros(y8.shape, bool)
        res, specks, scratches, fresh_d = {}, {}, {}, {}
        # the previous frame at this one's exposure: fitted once, when a sign first needs it
        exposure = functools.cache(lambda: match_exposure(prev, y8))
        for sign, op in _HATS:  # brighter than the background (a disc's, or across a line): the white top-hats
            dust = cv2.morphologyEx(y8, op, self._disc)
            line = cv2.morphologyEx(y8, op, self._hline)
            along = cv2.blur(line, (1, self._run), borderType=cv2.BORDER_REFLECT)  # a line's, down its run
            res[sign] = dust, along
            if self._res is None:
                continue
            # and more so than anything near it a frame ago: what moved a little is no news
            dust0, along0 = self._res[sign]
            specks[sign] = self._speck_ages(y8, dust, dust0, sign, self._speck.get(sign), exposure)
            was, (fresh, before) = self._scratch.get(sign), self._fresh.get(sign, (None, None))
            if was is not None or fresh is not None:  # a scratch found (or fresh) a frame ago is no picture:
                # a new one beside it is news
                mark = np.zeros(y8.shape, np.uint8) if was is None else (was > 0).view(np.uint8)
                mark = cv2.dilate(mark if fresh is None else mark | fresh, self._across) > 0
                old = cv2.max(cv2.dilate(np.where(mark, 0, along0), self._wide),
                              cv2.dilate(np.where(mark, along0, 0), self._across))  # but for its own drift
            else:
                old = cv2.dilate(along0, self._wide)
            new_line = cv2.subtract(along, old)
            ml = self._line_margin  # the picture coming in at a side is no news
            new_line[:, :ml] = new_line[:, -ml:] = 0
            # a scratch: a line, new along most of its run, or along one found a frame ago (it drifts a little)
            line_c = self._line(line)
            novel = new_line > self.scratch_contrast
            if line_c.any():
                hit = line_c & novel
                if fresh is not None:  # new a frame ago, where it was too broken to be a line: new still
                    hit |= (line_c & (cv2.dilate(fresh, self._tall) > 0)
                            & (cv2.subtract(along, before) > self.scratch_contrast))
                age = hit.view(np.uint8).copy()
                if was is not None:  # the youngest near by: a new scratch beside an old line is not given its age
                    live = np.where(was < self.max_age, was, 0).astype(np.uint8)
                    if self.renew_span and (was >= self.max_age).any():  # a projector's scratch, running on
                        live[self._running(was)] = self.max_age - 1
                    near = cv2.dilate(np.where(live > 0, 255 - live, 0).astype(np.uint8), self._tall)
                    kept = line_c & (near > 0) & ~hit
                    age[kept] = 256 - near[kept].astype(np.int32)
                if self.held_back and len(self._past) > 1:  # a long line that held still while the picture moved
                    held = self._held(line_c & (age == 0), line_c, y8, line, op)
                    if held is not None:
                        age[held] = 1
                if age.any():  # on along its column where it is clipped at the film's black (white), so fainter
                    clipped = y8 <= int(y8.min()) + 2 if sign < 0 else y8 >= int(y8.max()) - 2
                    faint = clipped & (line > self.scratch_contrast * SCRATCH_FAINT)
                    age = _carried(age, faint.view(np.uint8), self._run)
                scratches[sign] = age
            if self.fresh_lines:  # a line where there was none near a frame ago, too broken (so far) to be one:
                fresh_now = novel & (line > self.scratch_contrast) & (old <= self.scratch_contrast)
                if sign in scratches:
                    fresh_now &= scratches[sign] == 0
                if fresh_now.any():  # along half as much of a run as a line
                    fresh_now = _vertical_runs(fresh_now.view(np.uint8), self._column, self.scratch_cover / 2)
                if fresh_now.any():  # looked for again a frame on, against what it was new against
                    fresh_d[sign] = fresh_now.view(np.uint8), old
        first = self._res is None
        self._res = res
        if self.held_back:
            self._past.append((self._clock, y8))
        self._clock += 1
        self._speck = {k: v for k, v in specks.items() if v.any()}
        self._scratch = {k: v for k, v in scratches.items() if v.any()}
        self._fresh = fresh_d
        if first:
            return np.zeros(y8.shape, bool)
        return self._grown((*self._speck.values(), *self._scratch.values()), y8.shape)

    def _tall_columns(self, on: np.ndarray) -> np.ndarray:
        """(W,) bool: the columns where ``on`` (bool, a pixel either side) covers ``renew_span`` of the height."""
        cols = cv2.dilate(on.view(np.uint8), self._across).sum(axis=0)
        return cols >= self.renew_span * on.shape[0]

    def _moved_beside(self, y8: np.ndarray, old: np.ndarray, lines: np.ndarray, c0: int, c1: int,
                      rows: np.ndarray) -> np.ndarray | None:
        """How far the picture on both sides of a line (columns [c0, c1), down ``rows``) moved, ``old`` to
        ``y8``: (N, 2) float32 (dy, dx) per ``scratch_tile`` stretch where its left and its right
        (``3 * pad`` px each, ``lines`` and a pixel around them left out) both matched and moved as one
        (within 1 px, or the same way within ``held_agree`` of their shift); None: under 3 such."""
        h, w = y8.shape
        shifts = []
        for top in range(int(rows[0]), int(rows[-1]) + 1, self.scratch_tile):
            bot = min(h, top + self.scratch_tile)
            sides = []  # how far the picture moved, old to now, on the line's left and on its right
            for ax, bx in ((max(0, c0 - 3 * self.pad), c1), (c0, min(w, c1 + 3 * self.pad))):
                blob = lines[top:bot, ax:bx].copy()
                blob[:, c0 - ax:c1 - ax] = True
                got = self._match(y8, old, (ax, top, bx, bot), blob, fine=True)
                if got is not None and got[2] <= self.fit_rms:
                    sides.append((top - (got[0] + got[3]), ax - (got[1] + got[4])))
            if len(sides) < 2:
                continue
            lx, rx = sides[0][1], sides[1][1]
            apart = abs(lx - rx)  # (not a frame's edge with a view moving beyond it: one side holds still)
            if apart <= 1.0 or (lx * rx > 0 and apart <= self.held_agree * max(abs(lx), abs(rx))):
                shifts.append(np.mean(sides, axis=0))
        return np.array(shifts, np.float32) if len(shifts) >= 3 else None

    def _held(self, cand: np.ndarray, lines: np.ndarray, y8: np.ndarray, line: np.ndarray,
              op: int) -> np.ndarray | None:
        """Of ``cand`` (line pixels not found), those of a line down ``renew_span`` of the height that held
        still against a frame before while the picture on both sides of it moved across: its top-hat
        then, at the same pixels, at least 0.6 of its top-hat now, and where the picture under it was
        then at most half that: on the film, not in the picture.
        The frame before is the nearest of 2 and 4 frames before where the picture moved ``held_near``
        pixels, else the oldest kept (``held_back`` before) where it moved ``held_shift``: a fast pan
        goes further than a match looks in 8 frames, and a small shift seen near is no test (the picture
        a dark scratch makes a bright line of holds still with it for a few frames). Both sides must have
        moved the same way, within ``held_agree`` of their shift of each other (1 px at least): a
        smooth picture is matched loosely, and a view moving beyond a still frame's edge is not that.
        A projector's scratch that was there when the shot began (it runs across the cut) is never new;
        on a picture that moves under it, it is told by that. Where the picture held still across over
        ``held_back`` frames (by the frames' places in the shot), a line down ``whole_span`` of the height
        in one column (its top-hat over ``scratch_contrast``) is one. ``lines``: every line pixel, found or not
        (left out of the picture matched beside a line: a second scratch there holds still too);
        ``line``: ``y8``'s horizontal top-hat (``op``). -> bool mask, or None: none."""
        if not self.renew_span or not cand.any():
            return None
        tall = self._tall_columns(cand)
        ml = self._line_margin  # (a frame's side: the picture coming in there holds no line still)
        tall[:ml] = tall[-ml:] = False
        if not tall.any():
            return None
        kept = len(self._past)
        backs = sorted({min(k, kept) for k in (2, 4, self.held_back)})
        olds: dict = {}  # per frames back: that frame at this one's exposure, and its top-hat once a line is judged
        edges = np.flatnonzero(np.diff(np.r_[0, tall.view(np.int8), 0]))  # runs of tall columns: [c0, c1)
        out = None
        for c0, c1 in zip(edges[::2], edges[1::2]):
            c0, c1 = c0 - 1, c1 + 1  # (a pixel either side: what makes them tall; within the margin of a side)
            band = cand[:, c0:c1]
            rows = np.flatnonzero(band.any(axis=1))
            if not len(rows):
                continue
            ys, xs = np.nonzero(band)
            xs += c0
            now = float(line[ys, xs].mean())
            still, scratch = False, False  # (the picture beside it held still too; a scratch)
            for back in backs:
                if back not in olds:
                    olds[back] = [match_exposure(self._past[-back][1], y8), None]
                old = olds[back][0]
                moves = self._moved_beside(y8, old, lines, c0, c1, rows)
                if moves is None:
                    continue  # (too little picture matched: further back)
                dy, dx = np.median(moves, axis=0)
                if abs(dx) < (self.held_shift if back == backs[-1] else self.held_near):
                    still = abs(dx) < 0.5 and abs(self._clock - self._past[-back][0]) >= self.held_back
                    # (held still across, over ``held_back`` frames: a walk back's frames come in again)
                    continue  # (too little motion yet: further back)
                if np.mean(np.abs(moves[:, 1] - dx) <= 1.0) < 2 / 3:
                    continue
                if olds[back][1] is None:
                    olds[back][1] = cv2.morphologyEx(old, op, self._hline)
                old_line = olds[back][1]
                fx, fy = xs.astype(np.float32), ys.astype(np.float32)
                on_film = cv2.remap(old_line, fx[None], fy[None], cv2.INTER_LINEAR)[0].mean()  # the line then, still
                in_picture = cv2.remap(old_line, (fx - dx)[None], (fy - dy)[None], cv2.INTER_LINEAR,
                                       borderMode=cv2.BORDER_REPLICATE)[0].mean()  # ... or moved with the picture
                scratch = on_film >= 0.6 * now and in_picture <= 0.5 * on_film
                break  # judged
            else:  # never judged by motion: where the picture held still, a line down the whole height
                scratch = bool(still and self.whole_span
                               and (line[:, c0:c1] > self.scratch_contrast).mean(axis=0).max() >= self.whole_span)
            if scratch:
                if out is None:
                    out = np.zeros(cand.shape, bool)
                out[:, c0:c1] = band
        return out

    def _running(self, was: np.ndarray) -> np.ndarray:
        """(H, W) bool: the pixels of scratches ``max_age`` old (``was``: a frame ago's ages) in a column
        (a pixel either side) where they cover ``renew_span`` of the frame's height: a scratch the print
        carries down its whole height lives on (a line of the picture, once taken for one, seldom runs
        so far so straight; a line that came beside a scratch, or is left where one went, is in pieces)."""
        old = was >= self.max_age
        return old & self._tall_columns(old)[None, :]

    def _gone(self, seen: list[tuple[np.ndarray, dict]], known: list[np.ndarray]) -> list[dict]:
        """Per frame of a batch (``seen``: each frame's 8-bit luma and spatial residuals, in order),
        its specks found from the frame after it: new against that frame (gone by then, the same
        tests as :meth:`find`'s, the other way in time), or one found so a frame later, in place,
        for under ``dust_life`` frames. The last of ``seen`` has no frame after it: none (fill's ``seen``
        ends with the frame after the batch, where the shot has one)."""
        out: list[dict] = [{} for _ in seen]
        was: dict = {}
        for i in range(len(seen) - 2, -1, -1):
            (y8, res), (nxt, res_n) = seen[i], seen[i + 1]
            exposure = functools.cache(lambda nxt=nxt, y8=y8: match_exposure(nxt, y8))
            found = {}
            for sign in (1, -1):
                age = self._speck_ages(y8, res[sign][0], res_n[sign][0], sign, was.get(sign), exposure, known[i])
                if age.any():
                    found[sign] = age
            out[i] = was = found
        return out

    def ahead(self, n: int) -> int:
        """How many frames after a batch of ``n`` :meth:`fill` uses (``ahead``): at a shot's start, up to
        ``look_back`` after its first frame (walked backwards to it); then one (a speck going); and
        ``fill_ahead`` (where a scratch's picture is seen again)."""
        return max(max(1, self.look_back + 1 - n) if self._prev is None else 1, self.fill_ahead)

    def _y8(self, luma: np.ndarray) -> np.ndarray:
        return luma if luma.dtype == np.uint8 else np.clip(luma * self.scale, 0, 255).astype(np.uint8)

    def fill(self, luma: np.ndarray, ahead: Iterable[np.ndarray] = ()) -> np.ndarray:
        """(N, H, W) luma -> the same with each frame's defects filled from around them (a copy
        where any is found; ``luma`` itself is never written). A speck is found when it comes (against
        the frame before) or when it goes (against the frame after). ``ahead``: the shot's frames after
        the batch, as many as there are up to :meth:`ahead` (looked at, not filled; none at a shot's end)."""
        out = luma
        after = list(ahead)
        start = self._prev is None and len(luma) + len(after) > 1
        if start:  # a shot's first frame: the frames after it walked backwards to it (see the module docstring)
            frames = [*luma, *after]
            for k in range(min(len(frames) - 1, self.look_back), 0, -1):
                self._clock = k
                self.find(frames[k])
            self._clock = 0
        seen, found, judged = [], [], []
        for i, frame in enumerate(luma):
            m = self.find(frame)
            if start and i == 0:  # what the first frame has is new from here on (its life counted afresh)
                for f in (self._speck, self._scratch):
                    for v in f.values():
                        v[v > 0] = 1
            seen.append((self._prev, self._res))
            found.append((m, list(self._speck.values()), list(self._scratch.values())))
            judged.append(m | self._moved)
        self._moved = None
        if after:  # the frame after the batch: what goes by then is found in the batch's last frame
            y8 = self._y8(after[0])
            seen.append((y8, {sign: (cv2.morphologyEx(y8, op, self._disc),) for sign, op in _HATS}))
        gone = self._gone(seen, judged) if len(seen) > 1 else [{}]
        later = _Later([*luma, *after], self._hline, self._across, self._y8)
        for i, frame in enumerate(luma):
            m, specks, scratches = found[i]
            if gone[i]:
                m = m | self._grown(gone[i].values(), m.shape)
                specks = [*specks, *gone[i].values()]
            if m.any():
                if out is luma:
                    out = luma.copy()
                out[i] = self._from_before(frame, fill_masked(frame, m), specks, scratches)
                if scratches and self.fill_ahead:
                    out[i] = self._from_after(frame, out[i], scratches, later, i + 1)
            else:
                self._origin = None
            self._last = out[i]
        return out
