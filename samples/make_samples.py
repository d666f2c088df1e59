"""Regenerate the sample clips and colour references in this folder.

    python samples/make_samples.py [PHOTO_DIR] [--out DIR]

PHOTO_DIR holds the source photos (default: ``../shared/data/photos`` relative
to the repository root); they are CC0 / public-domain photos shipped with
scikit-image, named ``scikit-image__<name>.jpg``. The outputs are committed, so
nobody needs to run this script to use the samples; it exists so that the
samples can be rebuilt, deterministically, and so that it is clear how they
were made.

Each clip is black and white: the luma of a colour camera move over a still
photo (BT.601 limited range, as swscale converts rgb24 to yuv420p) with the
chroma planes set to 128. Each reference is a colour still of the same photo
framed differently from every video frame, as an archivist's photo would be.

Outputs: sample.mp4 + reference.jpg (one shot), montage.mp4 +
montage_shot0.jpg + montage_shot1.jpg + montage_map.csv (two shots, hard cut
at frame 48).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

W, H, FPS = 640, 360, 24
SAMPLE_RATE = 48000
CRF = "20"
REF_WIDTH = 640
JPEG_QUALITY = 92

HERE = Path(__file__).resolve().parent
DEFAULT_PHOTOS = HERE.parent.parent / "shared" / "data" / "photos"


@dataclass(frozen=True)
class Shot:
    """One camera move over one photo, and the framing of its colour still.

    Centres are fractions of the photo's width and height; zoom is the crop
    height as a fraction of the photo's height (the crop is always 16:9).
    ref_box is (x0, y0, x1, y1) in fractions of the photo.
    """

    photo: str
    frames: int
    centre0: tuple[float, float]
    centre1: tuple[float, float]
    zoom0: float
    zoom1: float
    ref_box: tuple[float, float, float, float]


SAMPLE = Shot("astronaut", 96, (0.50, 0.30), (0.45, 0.26), 0.56, 0.46, (0.0, 0.0, 1.0, 1.0))
MONTAGE = (
    Shot("chelsea", 48, (0.47, 0.50), (0.53, 0.46), 0.92, 0.80, (0.0, 0.04, 0.88, 1.0)),
    Shot("coffee", 48, (0.52, 0.50), (0.47, 0.42), 0.86, 0.74, (0.08, 0.0, 1.0, 0.94)),
)


def load_rgb(photo_dir: Path, name: str) -> np.ndarray:
    """The photo as RGB uint8, shape (h, w, 3)."""
    path = photo_dir / f"scikit-image__{name}.jpg"
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(
            f"cannot read {path}; pass the folder holding the scikit-image photos as PHOTO_DIR"
        )
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def smoothstep(t: float) -> float:
    return t * t * (3.0 - 2.0 * t)


def camera_move(img: np.ndarray, shot: Shot):
    """Yield shot.frames RGB frames (H, W, 3) of an eased pan and zoom over img.

    Sub-pixel crop positions (an affine warp, not integer slicing) keep the
    motion smooth, like a real camera move.
    """
    ih, iw = img.shape[:2]
    for i in range(shot.frames):
        t = smoothstep(i / (shot.frames - 1))
        ch = ih * (shot.zoom0 + (shot.zoom1 - shot.zoom0) * t)
        cw = ch * W / H
        if cw > iw:  # keep the 16:9 crop inside the photo
            cw, ch = iw, iw * H / W
        cx = iw * (shot.centre0[0] + (shot.centre1[0] - shot.centre0[0]) * t)
        cy = ih * (shot.centre0[1] + (shot.centre1[1] - shot.centre0[1]) * t)
        x0 = min(max(cx - cw / 2, 0.0), iw - cw)
        y0 = min(max(cy - ch / 2, 0.0), ih - ch)
        s = W / cw
        m = np.array([[s, 0.0, -x0 * s], [0.0, s, -y0 * s]])
        yield cv2.warpAffine(img, m, (W, H), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def reference_still(img: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """The colour still: img cropped to box and resized to REF_WIDTH wide."""
    ih, iw = img.shape[:2]
    x0, y0, x1, y1 = round(box[0] * iw), round(box[1] * ih), round(box[2] * iw), round(box[3] * ih)
    crop = img[y0:y1, x0:x1]
    h = round(crop.shape[0] * REF_WIDTH / crop.shape[1])
    interp = cv2.INTER_AREA if crop.shape[1] > REF_WIDTH else cv2.INTER_CUBIC
    return cv2.resize(crop, (REF_WIDTH, h), interpolation=interp)


def gray_frame(rgb: np.ndarray) -> av.VideoFrame:
    """A yuv420p frame holding the luma of rgb and neutral chroma (U = V = 128)."""
    yuv = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p").to_ndarray()
    yuv[H:] = 128
    return av.VideoFrame.from_ndarray(yuv, format="yuv420p")


def melody(n_samples: int, notes: list[float]) -> np.ndarray:
    """A quiet stereo tune (2, n_samples) float32: equal-length notes, soft attack and decay."""
    t = np.arange(n_samples) / SAMPLE_RATE
    note_len = n_samples / len(notes)
    idx = np.minimum((np.arange(n_samples) / note_len).astype(int), len(notes) - 1)
    freq = np.asarray(notes)[idx]
    local = (np.arange(n_samples) - idx * note_len) / SAMPLE_RATE
    env = np.minimum(local / 0.02, 1.0) * np.exp(-3.0 * local)
    tone = np.sin(2 * np.pi * freq * local) + 0.3 * np.sin(4 * np.pi * freq * local)
    mono = 0.12 * env * tone / 1.3
    # a slight, fixed stereo spread so the track is really two channels
    return np.stack([mono * 1.0, mono * 0.8]).astype(np.float32)


def write_clip(out: Path, shots: list[tuple[np.ndarray, Shot]], notes: list[float]) -> None:
    """Encode the shots back to back as gray H.264 (crf CRF) plus stereo AAC."""
    with av.open(str(out), "w", options={"fflags": "+bitexact"}) as c:
        v = c.add_stream("libx264", rate=FPS)
        v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        v.codec_context.time_base = Fraction(1, FPS)
        v.options = {"crf": CRF, "preset": "medium"}
        a = c.add_stream("aac", rate=SAMPLE_RATE)
        a.layout = "stereo"
        n = 0
        for img, shot in shots:
            for rgb in camera_move(img, shot):
                f = gray_frame(rgb)
                f.pts, f.time_base = n, Fraction(1, FPS)
                c.mux(v.encode(f))
                n += 1
        c.mux(v.encode())

        pcm = melody(n * SAMPLE_RATE // FPS, notes)
        for i in range(0, pcm.shape[1], 1024):
            chunk = np.ascontiguousarray(pcm[:, i:i + 1024])
            af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            af.sample_rate, af.pts, af.time_base = SAMPLE_RATE, i, Fraction(1, SAMPLE_RATE)
            c.mux(a.encode(af))
        c.mux(a.encode())


def write_jpeg(path: Path, rgb: np.ndarray) -> None:
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    ok = cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise OSError(f"cannot write {path}")


C5, D5, E5, G5, A5, C6 = 523.25, 587.33, 659.25, 783.99, 880.00, 1046.50


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("photo_dir", nargs="?", type=Path, default=DEFAULT_PHOTOS,
                   help=f"folder with scikit-image__*.jpg (default: {DEFAULT_PHOTOS})")
    p.add_argument("--out", type=Path, default=HERE,
                   help="output folder (default: this script's folder)")
    args = p.parse_args(argv)
    if not args.photo_dir.is_dir():
        p.error(f"photo folder {args.photo_dir} not found; "
                "pass the folder holding scikit-image__*.jpg")
    args.out.mkdir(parents=True, exist_ok=True)

    img = load_rgb(args.photo_dir, SAMPLE.photo)
    write_clip(args.out / "sample.mp4", [(img, SAMPLE)], [C5, E5, G5, A5, G5, E5, D5, C5])
    write_jpeg(args.out / "reference.jpg", reference_still(img, SAMPLE.ref_box))

    imgs = [load_rgb(args.photo_dir, s.photo) for s in MONTAGE]
    write_clip(args.out / "montage.mp4", list(zip(imgs, MONTAGE)),
               [G5, A5, C6, A5, E5, D5, E5, C5])
    rows = ["start,reference"]
    start = 0
    for k, (im, s) in enumerate(zip(imgs, MONTAGE)):
        write_jpeg(args.out / f"montage_shot{k}.jpg", reference_still(im, s.ref_box))
        rows.append(f"{start},montage_shot{k}.jpg")
        start += s.frames
    (args.out / "montage_map.csv").write_text("\n".join(rows) + "\n")

    for name in ("sample.mp4", "reference.jpg", "montage.mp4", "montage_shot0.jpg",
                 "montage_shot1.jpg", "montage_map.csv"):
        print(f"{args.out / name}  {(args.out / name).stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
