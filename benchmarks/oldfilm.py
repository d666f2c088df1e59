"""Old-film copies of colour clips: the luma degraded, the colour kept.

``degrade(src, dst, strengths, seed)`` re-encodes a colour clip (losslessly,
libx264 qp 0, YUV 4:2:0) with its luma made to look like a scanned print:

- ``flicker``: global exposure jumps frame to frame (gain ~ 6% s.d. and an
  offset ~ 3 levels s.d.) on a slow drift (+-8% over a few seconds);
- ``vignette``: a darkened edge whose centre and depth drift;
- ``grain``: fresh film grain every frame (s.d. 5 levels, ~1.5 px grains);
- ``dust``: dark or bright specks (1-4 px), each for 1-3 frames;
- ``scratches``: vertical lines 1-3 px wide, bright or dark, living 3-12
  frames and drifting a little sideways;
- ``weave``: gate weave, a smooth jitter of the whole frame (~0.7 px s.d.);
  it moves the picture, so it moves luma AND chroma (the truth stays the
  picture's colour);
- ``soft``: soft focus (Gaussian blur of the luma, sigma ~1.2 px, breathing);
- ``long_scratches`` (opt-in: not in ``all``): a projector's running scratches,
  1-2 px wide, living 40-150 frames (to the clip's end where it ends first),
  drifting slowly, fainter than the short ones (25-60 levels); about one per
  100 frames, at least one. Drawn from a random stream of their own: the
  other degradations of a seed are the same with or without them.

Each takes a strength (1.0: the default "moderate" print; 2.0 twice as
bad; 0: off). The degraded luma is kept in the legal range (16-235), and
where it turns a saturated colour into one no R'G'B' picture can hold (a
red in a darkened vignette or under a flicker), that colour's Cb/Cr are
pulled toward neutral just enough (``legal_chroma``): otherwise the truth
would be colour that no still (saved as RGB) can carry. That goes by the
print's exposure (soft focus, vignette, flicker), not by the grain, dust
and scratches on it: their pixels keep their surroundings' colour. Other than that,
chroma planes are copied bit for bit (except under weave),
pts and audio packets are kept, so the copy's colour is the ground truth of
its black-and-white version. The scratch and dust pixels of every frame are
returned as masks (bool, (n, H, W)) for the streak check.
Used by bench_oldfilm.py.
"""
from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np

DEGRADATIONS = ("flicker", "vignette", "grain", "dust", "scratches", "weave", "soft")
EXTRAS = ("long_scratches",)  # opt-in, named on their own: not in "all" or "each" (figures stay comparable)


def _smooth_walk(rng: np.random.Generator, n: int, sd: float, span: float) -> np.ndarray:
    """n samples of a smooth random signal with standard deviation ~sd, correlated over ~span frames."""
    raw = rng.normal(0, 1, n + int(4 * span) + 1)
    k = np.exp(-0.5 * (np.arange(-2 * span, 2 * span + 1) / max(span, 1e-3)) ** 2)
    sm = np.convolve(raw, k / np.sqrt((k ** 2).sum()), mode="valid")[:n]
    return sd * sm


class _Plan:
    """Every random choice of one clip's degradation, drawn up front from the seed."""

    def __init__(self, n: int, h: int, w: int, s: dict[str, float], seed: int):
        rng = np.random.default_rng(seed)
        self.n, self.h, self.w, self.s = n, h, w, s
        f = s.get("flicker", 0.0)
        self.gain = np.exp(f * (rng.normal(0, 0.06, n) + _smooth_walk(rng, n, 0.08, 24)))
        self.offset = f * rng.normal(0, 3.0, n)
        v = s.get("vignette", 0.0)
        self.vig_depth = v * np.clip(0.3 + _smooth_walk(rng, n, 0.08, 20), 0.05, 0.6)
        self.vig_cx = 0.5 + v * _smooth_walk(rng, n, 0.06, 30)
        self.vig_cy = 0.5 + v * _smooth_walk(rng, n, 0.06, 30)
        wv = s.get("weave", 0.0)
        self.dx = wv * (_smooth_walk(rng, n, 0.6, 1.5) + rng.normal(0, 0.3, n))
        self.dy = wv * (_smooth_walk(rng, n, 0.5, 1.5) + rng.normal(0, 0.25, n))
        sf = s.get("soft", 0.0)
        self.blur = sf * np.clip(1.2 + _smooth_walk(rng, n, 0.25, 12), 0.6, 2.0)
        self.grain_seed = int(rng.integers(2 ** 31))
        # dust: (frame, life, x, y, radius, value)
        self.dust = []
        d = s.get("dust", 0.0)
        for t in range(n):
            for _ in range(rng.poisson(3.0 * d)):
                self.dust.append((t, int(rng.integers(1, 4)), float(rng.uniform(0, w)), float(rng.uniform(0, h)),
                                  float(rng.uniform(1, 4)), float(rng.choice([22.0, 225.0], p=[0.7, 0.3]))))
        # scratches: (frame, life, x, vx, width, contrast, y0, y1)
        self.scratches = []
        sc = s.get("scratches", 0.0)
        for t in range(n):
            for _ in range(rng.poisson(0.15 * sc)):
                y0 = float(rng.uniform(0, 0.3 * h)) if rng.random() < 0.4 else 0.0
                y1 = float(rng.uniform(0.7 * h, h)) if rng.random() < 0.4 else float(h)
                self.scratches.append((t, int(rng.integers(3, 13)), float(rng.uniform(0.05 * w, 0.95 * w)),
                                       float(rng.normal(0, 0.3)), int(rng.integers(1, 4)),
                                       float(rng.choice([-1.0, 1.0]) * rng.uniform(40, 80)), y0, y1))

        ls = s.get("long_scratches", 0.0)
        if ls > 0:  # their own stream: the draws above stay as they were
            r2 = np.random.default_rng([seed, 2])
            for _ in range(max(1, int(r2.poisson(0.01 * ls * n)))):
                t0 = int(r2.integers(0, max(1, n - 40)))
                y0 = float(r2.uniform(0, 0.2 * h)) if r2.random() < 0.3 else 0.0
                self.scratches.append((t0, int(r2.integers(40, 151)), float(r2.uniform(0.05 * w, 0.95 * w)),
                                       float(r2.normal(0, 0.08)), int(r2.integers(1, 3)),
                                       float(r2.choice([-1.0, 1.0]) * r2.uniform(25, 60)), y0, float(h)))

    def exposure(self, t: int) -> np.ndarray:
        """Frame t's exposure gain (float32 (H, W)): the vignette's falloff times the flicker's gain,
        the factor the print's light scaled the picture by (1 where neither is on)."""
        s, h, w = self.s, self.h, self.w
        g = np.ones((h, w), np.float32)
        if s.get("vignette", 0.0) > 0:
            gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
            r2 = ((gx / w - self.vig_cx[t]) ** 2 + (gy / h - self.vig_cy[t]) ** 2) / 0.5
            g *= 1 - self.vig_depth[t] * np.clip(r2, 0, 1.5)
        if s.get("flicker", 0.0) > 0:
            g *= np.float32(self.gain[t])
        return g

    def luma(self, t: int, y: np.ndarray, grain_rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Frame t's degraded luma (uint8), its scratch/dust mask, and its luma before the grain, dust
        and scratches (the print's exposure: what ``legal_chroma`` goes by), from its (weaved) clean luma."""
        s, h, w = self.s, self.h, self.w
        yf = y.astype(np.float32)
        if s.get("soft", 0.0) > 0:
            yf = cv2.GaussianBlur(yf, (0, 0), float(self.blur[t]))
        if s.get("vignette", 0.0) > 0 or s.get("flicker", 0.0) > 0:
            yf = 16 + (yf - 16) * self.exposure(t) + (self.offset[t] if s.get("flicker", 0.0) > 0 else 0.0)
        exposed = np.clip(np.rint(yf), 0, 255).astype(np.uint8)
        if s.get("grain", 0.0) > 0:
            g = cv2.GaussianBlur(grain_rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 0.7)
            yf += g * (5.0 * s["grain"] / max(float(g.std()), 1e-6))
        mask = np.zeros((h, w), bool)
        for (t0, life, x, yy, r, val) in self.dust:
            if t0 <= t < t0 + life:
                m = np.zeros((h, w), np.uint8)
                cv2.circle(m, (int(x), int(yy)), int(round(r)), 1, -1)
                m = m.astype(bool)
                yf[m] = val
                mask |= m
        for (t0, life, x, vx, wd, c, y0, y1) in self.scratches:
            if t0 <= t < t0 + life:
                xc = int(round(x + vx * (t - t0)))
                a, b = max(0, xc - wd // 2), min(w, xc - wd // 2 + wd)
                if a >= b:
                    continue
                rows = slice(int(y0), int(y1))
                fade = 0.6 + 0.4 * np.sin(np.linspace(0, 3.0, int(y1) - int(y0)))[:, None]
                yf[rows, a:b] += c * fade
                mask[rows, a:b] = True
        return np.clip(np.rint(yf), 0, 255).astype(np.uint8), mask, exposed


def _gamut_room(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Per chroma sample, the largest factor (<= 1) its Cb/Cr may be scaled by so that every one of its
    2x2 pixels stays a colour R'G'B' can hold (BT.601, limited range)."""
    h, w = u.shape
    yn = (y[:2 * h, :2 * w].astype(np.float32) - 16) / 219
    cb = np.repeat(np.repeat((u.astype(np.float32) - 128) / 224, 2, 0), 2, 1)
    cr = np.repeat(np.repeat((v.astype(np.float32) - 128) / 224, 2, 0), 2, 1)
    room = np.ones_like(yn)
    for c in (1.402 * cr, -0.344136 * cb - 0.714136 * cr, 1.772 * cb):  # R' - Y', G' - Y', B' - Y'
        with np.errstate(divide="ignore", invalid="ignore"):
            lim = np.where(c > 1e-6, (1 - yn) / c, np.where(c < -1e-6, -yn / c, 1.0))
        room = np.minimum(room, np.clip(lim, 0, 1))
    return room.reshape(h, 2, w, 2).min(axis=(1, 3))


def legal_chroma(y0: np.ndarray, y: np.ndarray, u: np.ndarray, v: np.ndarray,
                 clean: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cb/Cr kept, but pulled toward neutral where the degraded luma ``y`` makes them a colour no
    R'G'B' picture holds that the clean ``y0`` did not (a saturated red in a darkened vignette): the
    copy stays a picture, so its stills (saved as RGB) carry its colour. Where the clean picture was
    already out of gamut, only what the degradation added is taken back. ``clean``: the clean
    picture's Cb/Cr where ``u``, ``v`` are not (the exposure truth's, scaled): the colour the clean
    picture held, at ``y0``, is what the degraded one is measured against (v6; v5 measured the
    scaled Cb/Cr at ``y0``, a colour no picture held, and left a brightened colour at the gamut's
    edge out of it by the gain)."""
    u0, v0 = (u, v) if clean is None else clean
    k = np.clip(_gamut_room(y, u, v) / np.maximum(_gamut_room(y0, u0, v0), 1e-3), 0, 1)
    if (k >= 1).all():
        return u, v
    f = lambda p: np.clip(np.rint(128 + (p.astype(np.float32) - 128) * k), 0, 255).astype(np.uint8)  # noqa: E731
    return f(u), f(v)


def exposed_chroma(gain: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cb/Cr as a print exposed by ``gain`` (full-size (H, W)) shows them: scaled about neutral by the
    same factor as the luma above black. A picture's R'G'B' all scaled by one factor scale Y'-16 and
    Cb/Cr-128 by it (BT.601 is linear in R'G'B'); light scaled by k scales R'G'B' by k^(1/gamma), one
    factor again. So a darker corner or a dimmer frame of the same scene keeps its hues and loses
    chroma with its light."""
    h, w = u.shape
    gc = cv2.resize(gain[:2 * h, :2 * w], (w, h), interpolation=cv2.INTER_AREA)
    f = lambda p: np.clip(np.rint(128 + (p.astype(np.float32) - 128) * gc), 0, 255).astype(np.uint8)  # noqa: E731
    return f(u), f(v)


def _shift(plane: np.ndarray, dx: float, dy: float) -> np.ndarray:
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(plane, m, plane.shape[::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def count_frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def rewrite(src: Path, dst: Path, frame) -> int:
    """Re-encode ``src`` to ``dst`` losslessly (libx264 qp 0, YUV 4:2:0), each frame's planes through
    ``frame(t, y, u, v) -> (y, u, v)`` (uint8; y (H, W), u and v (H/2, W/2)), pts and audio packets
    kept; returns the width."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        w, h = vin.codec_context.width, vin.codec_context.height
        ain = inp.streams.audio[0] if inp.streams.audio else None
        vout = out.add_stream("libx264", rate=vin.average_rate)
        vout.width, vout.height, vout.pix_fmt = w, h, "yuv420p"
        vout.time_base = vin.time_base
        vout.codec_context.time_base = vin.time_base
        vout.options = {"qp": "0", "preset": "veryfast"}
        aout = out.add_stream_from_template(ain) if ain else None
        t = 0
        for pkt in inp.demux([vin] + ([ain] if ain else [])):
            if pkt.stream is ain:
                if pkt.dts is not None:
                    pkt.stream = aout
                    out.mux(pkt)
                continue
            for fr in pkt.decode():
                a = fr.to_ndarray(format="yuv420p")
                y, u, v = frame(t, a[:h], a[h:h + h // 4].reshape(h // 2, w // 2), a[h + h // 4:].reshape(h // 2, w // 2))
                b = np.concatenate([y, u.reshape(-1, w), v.reshape(-1, w)])
                g = av.VideoFrame.from_ndarray(np.ascontiguousarray(b), format="yuv420p")
                g.pts, g.time_base = fr.pts, fr.time_base
                out.mux(vout.encode(g))
                t += 1
        out.mux(vout.encode())
    return w


TRUTHS = ("legal", "kept", "exposure")


def degrade(src: Path, dst: Path, strengths: dict[str, float], seed: int = 0, truth: str = "legal") -> np.ndarray:
    """Write the old-film copy of ``src`` to ``dst``; return the (n, H, W) bool scratch/dust masks.
    ``truth`` says what becomes of Cb/Cr: ``legal`` keeps them but pulls a colour the aged luma takes out
    of gamut toward neutral (``legal_chroma``); ``kept`` keeps them bit for bit: the scene's colour under
    the aged luma, which a still cut from the copy (saved as RGB) cannot carry where the degradation
    took it out of gamut (score such a copy with stills of the clean scene); ``exposure`` scales them
    with the flicker's and the vignette's gain (``exposed_chroma``: what a darker print of the same
    scene is), then ``legal`` (a brightened frame clips)."""
    unknown = set(strengths) - set(DEGRADATIONS) - set(EXTRAS)
    if unknown:
        valid = ", ".join(DEGRADATIONS + EXTRAS)
        raise ValueError(f"unknown degradation(s) {sorted(unknown)} (valid: {valid})")
    if truth not in TRUTHS:
        raise ValueError(f"unknown truth {truth!r} (valid: {', '.join(TRUTHS)})")
    n = count_frames(src)
    masks = []
    state = {}

    def frame(t, y, u, v):
        if t == 0:
            state["plan"] = plan = _Plan(n, *y.shape, strengths, seed)
            state["rng"] = np.random.default_rng(plan.grain_seed)
        plan = state["plan"]
        if strengths.get("weave", 0.0) > 0:
            dx, dy = float(plan.dx[t]), float(plan.dy[t])
            y, u, v = _shift(y, dx, dy), _shift(u, dx / 2, dy / 2), _shift(v, dx / 2, dy / 2)
        y0 = y
        y, m, exposed = plan.luma(t, y, state["rng"])
        if strengths:
            y = np.clip(y, 16, 235)  # a legal-range scan (build_set's gray input clips it there too)
            clean = None
            if truth == "exposure":
                clean, (u, v) = (u, v), exposed_chroma(plan.exposure(t), u, v)
            if truth != "kept":
                u, v = legal_chroma(y0, np.clip(exposed, 16, 235), u, v, clean)
        masks.append(np.packbits(m, axis=-1))
        return y, u, v

    w = rewrite(src, dst, frame)
    return np.unpackbits(np.stack(masks), axis=-1, count=w).astype(bool)
