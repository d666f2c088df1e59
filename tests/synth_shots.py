"""Synthetic black-and-white footage with known shot transitions.

Every frame is an (H, W) uint8 array of full-range gray (0 = black, 255 =
white), 96x54 unless told otherwise. A shot is a window moving over its own
random scene (smooth texture, a few shapes, a gradient) as a camera pan with a
little zoom would, with an object crossing it, film grain and a faint
flicker, so consecutive frames of one shot always differ a bit. Shots get a
random brightness and contrast; some are dim and flat, and some share the
brightness and contrast of the shot before (or are another view of the same
scene) so a histogram alone cannot tell them apart.

The expected transitions are ``vidcolor.shots.Transition`` values with the
conventions of ``vidcolor/shots/base.py``: a cut at the first frame of the
new shot; a fade through black from its first darkened frame to its last
brightening one, boundary right after the darkest frame; a dissolve over its
mixed frames, boundary at the first frame that is at least half the new shot.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import av
import cv2
import numpy as np

from vidcolor.shots.base import Transition

__all__ = ["Shot", "random_shot", "render_shot", "cuts", "fade", "dissolve", "flash", "random_sequence",
           "benchmark_clips", "write_video", "W", "H"]

W, H = 96, 54


@dataclass
class Shot:
    """A camera move over one scene: ``frame(t)`` is its t-th frame, float32 0..255."""

    scene: np.ndarray  # float32 canvas larger than the frame
    x0: float
    y0: float
    vx: float
    vy: float
    zoom: float  # scale change a frame
    obj: tuple  # (x, y, vx, vy, radius, gray) of an object crossing the frame
    grain: float
    seed: int
    w: int = W
    h: int = H
    light: float = 0.0  # change of exposure a frame (a lamp dimming, a cloud passing)

    def frame(self, t: int) -> np.ndarray:
        s = 1.0 + self.zoom * t
        cx, cy = self.x0 + self.vx * t, self.y0 + self.vy * t
        m = np.float32([[1 / s, 0, cx - self.w / (2 * s)], [0, 1 / s, cy - self.h / (2 * s)]])
        img = cv2.warpAffine(self.scene, m, (self.w, self.h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_REFLECT)
        ox, oy, ovx, ovy, r, g = self.obj
        cv2.circle(img, (int(round(ox + ovx * t)), int(round(oy + ovy * t))), int(r), float(g), -1, cv2.LINE_AA)
        rng = np.random.default_rng((self.seed, t + 1000))
        img *= np.float32((1 + 0.008 * rng.standard_normal()) * max(0.2, 1 + self.light * t))
        img += rng.normal(0, self.grain, img.shape).astype(np.float32)
        return img


def _scene(rng: np.random.Generator, mean: float, sd: float, cw: int, ch: int) -> np.ndarray:
    """A random canvas of ``ch`` x ``cw`` with about the given mean and standard deviation."""
    sigma = rng.uniform(2.5, 9.0)
    tex = cv2.GaussianBlur(rng.standard_normal((ch, cw)).astype(np.float32), (0, 0), sigma)
    tex /= tex.std() + 1e-6
    y, x = np.mgrid[0:ch, 0:cw].astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    tex += rng.uniform(0, 1.2) * ((x * np.cos(ang) + y * np.sin(ang)) / max(cw, ch) * 3 - 1.5)
    for _ in range(rng.integers(2, 7)):
        g = float(rng.normal(0, 1.5))
        px, py = int(rng.integers(0, cw)), int(rng.integers(0, ch))
        if rng.random() < 0.5:
            cv2.rectangle(tex, (px, py), (px + int(rng.integers(6, 40)), py + int(rng.integers(6, 30))), g, -1)
        else:
            cv2.circle(tex, (px, py), int(rng.integers(4, 20)), g, -1, cv2.LINE_AA)
        if rng.random() < 0.3:
            cv2.line(tex, (px, py), (int(rng.integers(0, cw)), int(rng.integers(0, ch))), -g, int(rng.integers(1, 3)))
    tex = (tex - tex.mean()) / (tex.std() + 1e-6)
    return (mean + sd * tex).astype(np.float32)


def random_shot(rng: np.random.Generator, *, mean: float | None = None, sd: float | None = None,
                scene: np.ndarray | None = None, w: int = W, h: int = H) -> Shot:
    """A random shot; ``mean``/``sd`` fix its brightness/contrast, ``scene`` reuses a canvas (another view)."""
    if mean is None:
        mean = float(rng.uniform(45, 200))
    if sd is None:
        sd = float(rng.uniform(8, 14) if rng.random() < 0.2 else rng.uniform(18, 55))
    cw, ch = int(w * 2.2), int(h * 2.2)
    if scene is None:
        scene = _scene(rng, mean, sd, cw, ch)
    speed = rng.choice([0.0, 0.4, 1.0, 1.8], p=[0.2, 0.35, 0.3, 0.15])
    ang = rng.uniform(0, 2 * np.pi)
    r = float(rng.uniform(3, 9))
    where = (float(rng.uniform(0, w)), float(rng.uniform(0, h)), float(rng.uniform(-1.5, 1.5)),
             float(rng.uniform(-0.8, 0.8)))
    obj = (*where, r, float(np.clip(mean + rng.choice([-1, 1]) * rng.uniform(1, 2.5) * sd, 0, 255)))
    return Shot(scene=scene, x0=float(rng.uniform(0.45, 0.55) * cw), y0=float(rng.uniform(0.45, 0.55) * ch),
                vx=float(speed * np.cos(ang)), vy=float(speed * np.sin(ang) * 0.5),
                zoom=float(rng.choice([0.0, rng.uniform(-0.004, 0.004)])), obj=obj,
                grain=float(rng.uniform(1.0, 3.0)), seed=int(rng.integers(1 << 30)), w=w, h=h)


def render_shot(shot: Shot, n: int, t0: int = 0) -> list[np.ndarray]:
    """``n`` float32 frames of ``shot`` from its frame ``t0``."""
    return [shot.frame(t0 + t) for t in range(n)]


def _u8(frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [np.clip(f + 0.5, 0, 255).astype(np.uint8) for f in frames]


def cuts(lengths: Sequence[int] = (30, 25, 40, 30), seed: int = 0, means: Sequence[float] = (70, 170, 110, 200)
         ) -> tuple[list[np.ndarray], list[Transition]]:
    """Shots of ``lengths`` joined by hard cuts, shot i of brightness ``means[i % len(means)]``."""
    rng = np.random.default_rng(seed)
    frames: list[np.ndarray] = []
    trans = []
    for i, n in enumerate(lengths):
        if i:
            trans.append(Transition(len(frames), len(frames), len(frames), "cut"))
        frames += render_shot(random_shot(rng, mean=float(means[i % len(means)]), sd=float(rng.uniform(30, 45))), n)
    return _u8(frames), trans


def fade(before: int = 30, out: int = 10, into: int = 10, after: int = 30, seed: int = 1
         ) -> tuple[list[np.ndarray], list[Transition]]:
    """Shot A fades to black over ``out`` frames (the last one black), then B fades in over ``into`` frames."""
    rng = np.random.default_rng(seed)
    a, b = random_shot(rng, mean=rng.uniform(90, 170)), random_shot(rng, mean=rng.uniform(90, 170))
    fa = render_shot(a, before + out)
    for j in range(1, out + 1):  # alpha 1 - j/out: the last fade-out frame is black
        fa[before + j - 1] = _dim(a, before + j - 1, 1 - j / out)
    fb = render_shot(b, into + after)
    for j in range(1, into + 1):
        fb[j - 1] = _dim(b, j - 1, j / (into + 1))
    darkest = before + out - 1
    return _u8(fa + fb), [Transition(before, darkest + into, darkest + 1, "fade")]


def _dim(shot: Shot, t: int, alpha: float) -> np.ndarray:
    """Frame ``t`` of ``shot`` scaled towards black, grain added after (as on film)."""
    g = shot.grain
    shot.grain = 0.0
    f = shot.frame(t)
    shot.grain = g
    rng = np.random.default_rng((shot.seed, t + 1000, 7))
    return f * np.float32(alpha) + rng.normal(0, g, f.shape).astype(np.float32)


def dissolve(before: int = 30, length: int = 15, after: int = 30, seed: int = 2
             ) -> tuple[list[np.ndarray], list[Transition]]:
    """Shot A cross-fades into shot B over ``length`` mixed frames, both shots moving."""
    rng = np.random.default_rng(seed)
    a, b = random_shot(rng), random_shot(rng)
    frames = render_shot(a, before)
    for j in range(1, length + 1):
        w = j / (length + 1)
        frames.append((1 - w) * a.frame(before + j - 1) + w * b.frame(j - 1))
    frames += render_shot(b, after, t0=length)
    start = before
    mid = start + next(j for j in range(length) if (j + 1) / (length + 1) >= 0.5)
    return _u8(frames), [Transition(start, start + length - 1, mid, "dissolve")]


def flash(before: int = 30, after: int = 30, seed: int = 3) -> tuple[list[np.ndarray], list[Transition], int]:
    """One shot with a single overexposed frame (a photographer's flash) at index ``before``: no transition."""
    rng = np.random.default_rng(seed)
    s = random_shot(rng, mean=rng.uniform(60, 120))
    frames = render_shot(s, before + 1 + after)
    frames[before] = frames[before] * 0.35 + 200
    return _u8(frames), [], before


def random_sequence(seed: int, n_shots: int = 24, *, gradual: float = 0.0, min_len: int = 12, max_len: int = 120,
                    w: int = W, h: int = H) -> tuple[list[np.ndarray], list[Transition]]:
    """A reel of ``n_shots`` shots of 12-120 frames, mostly hard cuts.

    About 1 in 5 shots is dim and flat, 1 in 4 keeps the brightness and
    contrast of the shot before, 1 in 10 is another view of the scene before.
    Things that are no transition: 1 shot in 10 is a fast pan (3-4 pixels a
    frame), about 1 in 7 has its exposure drifting, 1 in 7 a big object
    crossing, 1 in 8 a flash of one or two frames. ``gradual`` is the share
    of fades and dissolves among the transitions.
    """
    rng = np.random.default_rng(seed)
    frames: list[np.ndarray] = []
    trans: list[Transition] = []
    prev: Shot | None = None
    prev_len = 0
    lengths = np.exp(rng.uniform(np.log(min_len), np.log(max_len), n_shots)).astype(int)
    for i, n in enumerate(lengths):
        n = int(n)
        u = rng.random()
        if prev is not None and u < 0.1:
            shot = random_shot(rng, scene=prev.scene, w=w, h=h)
            cw = prev.scene.shape[1]
            shot.x0 = float(np.clip(prev.x0 + rng.choice([-1, 1]) * rng.uniform(0.3, 0.5) * cw, w / 2, cw - w / 2))
        elif prev is not None and u < 0.35:
            shot = random_shot(rng, mean=float(prev.scene.mean() + rng.uniform(-6, 6)),
                               sd=float(prev.scene.std() * rng.uniform(0.85, 1.15)), w=w, h=h)
        elif rng.random() < 0.2:
            shot = random_shot(rng, mean=float(rng.uniform(40, 140)), sd=float(rng.uniform(7, 12)), w=w, h=h)
        else:
            shot = random_shot(rng, w=w, h=h)
        if rng.random() < 0.1:
            ang = rng.uniform(0, 2 * np.pi)
            shot.vx, shot.vy = float(3.5 * np.cos(ang)), float(3.5 * np.sin(ang) * 0.4)
        if rng.random() < 0.15:
            shot.light = float(rng.choice([-1, 1]) * rng.uniform(0.002, 0.004))
        if rng.random() < 0.15:
            ox, oy, _, _, _, g = shot.obj
            shot.obj = (ox, oy, float(rng.choice([-1, 1]) * rng.uniform(1, 2.5)), float(rng.uniform(-0.5, 0.5)),
                        float(rng.uniform(12, 20)), g)
        body = render_shot(shot, n)
        if rng.random() < 0.125 and n >= 24:
            j = int(rng.integers(16, n - 6))
            for k in range(j, j + int(rng.integers(1, 3))):
                body[k] = body[k] * 0.35 + 200
        if not frames:
            frames = body
        elif rng.random() < gradual and n > 30 and prev_len > 30:
            k = len(frames)
            if rng.random() < 0.5:  # fade through black: the last `out` frames of A darken, B brightens
                out, into = int(rng.integers(6, 13)), int(rng.integers(6, 13))
                for j in range(1, out + 1):
                    frames[k - out + j - 1] = _dim(prev, prev_len - out + j - 1, 1 - j / out)
                for j in range(1, into + 1):
                    body[j - 1] = _dim(shot, j - 1, j / (into + 1))
                trans.append(Transition(k - out, k + into - 1, k, "fade"))
            else:  # dissolve over the last `m` frames of A and the first `m` of B
                m = int(rng.integers(10, 21))
                half = m // 2
                s0 = k - half
                for j in range(1, m + 1):
                    wgt = j / (m + 1)
                    f = (1 - wgt) * prev.frame(prev_len - half + j - 1) + wgt * shot.frame(j - half - 1)
                    if j <= half:
                        frames[s0 + j - 1] = f
                    else:
                        body[j - half - 1] = f
                mid = s0 + next(j for j in range(m) if (j + 1) / (m + 1) >= 0.5)
                trans.append(Transition(s0, s0 + m - 1, mid, "dissolve"))
            frames += body
        else:
            trans.append(Transition(len(frames), len(frames), len(frames), "cut"))
            frames += body
        prev, prev_len = shot, n
    return _u8(frames), trans


def benchmark_clips(n_clips: int = 4, seed: int = 100) -> list[tuple[list[np.ndarray], list[Transition]]]:
    """The benchmark's reels: ``n_clips`` random sequences, more than 50 hard cuts in all, a few gradual."""
    return [random_sequence(seed + i, n_shots=24, gradual=0.2) for i in range(n_clips)]


def write_video(path, frames: Sequence[np.ndarray], fps: int = 24, crf: int = 18) -> Path:
    """Write gray frames as H.264 yuv420p (limited range luma, neutral chroma 128), pts = frame index."""
    path = Path(path)
    h, w = frames[0].shape
    tb = Fraction(1, fps)
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        v.time_base = tb
        v.codec_context.time_base = tb
        v.options = {"crf": str(crf)}
        chroma = np.full((h // 2, w), 128, np.uint8)
        for i, g in enumerate(frames):
            y = (16 + g.astype(np.float32) * (219 / 255) + 0.5).astype(np.uint8)
            f = av.VideoFrame.from_ndarray(np.concatenate([y, chroma]), format="yuv420p")
            f.pts = i
            f.time_base = tb  # not v.time_base: the muxer changes it once the header is written
            c.mux(v.encode(f))
        c.mux(v.encode())
    return path


def chroma_means(path) -> np.ndarray:
    """(frames, 2): each frame's mean Cb and Cr code of a yuv420p video."""
    with av.open(str(path)) as c:
        out = []
        for f in c.decode(video=0):
            p = f.to_ndarray()  # yuv420p planes stacked: (H * 3/2, W)
            h = f.height
            out.append((p[h:h + h // 4].astype(float).mean(), p[h + h // 4:].astype(float).mean()))
    return np.array(out)
