"""The container contract: the output is the input film in every respect but colour."""
from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from synth import decode_luma, decode_pts, make_clip, make_still, packet_bytes
from vidcolor import colorize_image, colorize_video, load_config
from vidcolor.color import BT601, YCbCrSpec, rgb_to_lab, rgb_to_luma
from vidcolor.io.decode import VideoReader
from vidcolor.io.image import read_image, write_image


def _assert_luma_kept(src, out, mean_tol=1.0, max_tol=16):
    a, b = decode_luma(src), decode_luma(out)
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b)):
        assert x.shape == y.shape
        d = np.abs(x.astype(np.int32) - y.astype(np.int32))
        assert d.mean() <= mean_tol and d.max() <= max_tol, (i, d.mean(), d.max())


def _colourfulness(path) -> float:
    with av.open(str(path)) as c:
        rgb = [f.to_ndarray(format="rgb24").astype(np.int32) for f in c.decode(video=0)]
    return float(np.mean([np.abs(f[..., 0] - f[..., 1]).mean() + np.abs(f[..., 1] - f[..., 2]).mean() for f in rgb]))


def _video_props(path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        f = next(c.decode(s))
        return {"size": (f.width, f.height), "pix_fmt": f.format.name, "rotation": f.rotation,
                "sar": s.codec_context.sample_aspect_ratio, "range": f.color_range, "space": f.colorspace,
                "primaries": f.color_primaries, "trc": f.color_trc, "codec": s.codec_context.name}


def test_cfr_with_audio(clip, still, tmp_path):
    out = tmp_path / "out.mp4"
    report = colorize_video(clip, out, reference=still)
    assert report.frames == 24 and len(report.shots) == 1
    assert decode_pts(out) == decode_pts(clip)
    audio = packet_bytes(clip)
    assert audio and packet_bytes(out) == audio
    _assert_luma_kept(clip, out)
    assert _colourfulness(clip) < 1 and _colourfulness(out) > 8
    assert _video_props(out)["size"] == (64, 48)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_variable_frame_rate_pts_survive_exactly(tmp_path, still, suffix):
    gaps = [40, 40, 33, 100, 41, 42, 250, 40, 40, 17, 83, 40]
    pts = np.concatenate([[0], np.cumsum(gaps)]).tolist()
    src = make_clip(tmp_path / f"vfr{suffix}", n=len(pts), pts=pts, time_base=Fraction(1, 1000), audio=True)
    out = tmp_path / f"out{suffix}"
    colorize_video(src, out, reference=still)
    assert decode_pts(out) == decode_pts(src)
    assert np.diff(decode_pts(out)).tolist() == np.diff(decode_pts(src)).tolist()
    assert packet_bytes(out) == packet_bytes(src)


@pytest.mark.parametrize("w, h, pix_fmt", [(72, 45, "yuv422p"), (71, 48, "yuv444p")])
def test_odd_sizes_from_mpeg2(tmp_path, still, w, h, pix_fmt):
    src = make_clip(tmp_path / "odd.mpg", n=12, w=w, h=h, codec="mpeg2video", fps=25)
    out = tmp_path / "odd.mp4"
    colorize_video(src, out, reference=still)
    props = _video_props(out)
    assert props["size"] == (w, h)
    assert props["pix_fmt"] == pix_fmt  # x264 can't do 4:2:0 at an odd size; the nearest that fits
    assert len(decode_pts(out)) == 12
    _assert_luma_kept(src, out, mean_tol=1.5)


def test_ten_bit_input_stays_ten_bit(tmp_path, still):
    src = make_clip(tmp_path / "ten.mkv", n=10, codec="ffv1", pix_fmt="yuv422p10le")
    out = tmp_path / "ten_color.mkv"
    colorize_video(src, out, reference=still)
    assert _video_props(out)["pix_fmt"] == "yuv422p10le"
    assert max(int(x.max()) for x in decode_luma(out)) > 255
    _assert_luma_kept(src, out, mean_tol=4, max_tol=64)  # 10-bit codes: 4x the 8-bit tolerance


def test_lossless_ffv1_keeps_luma_bit_exact(tmp_path, clip, still):
    out = tmp_path / "master.mkv"
    colorize_video(clip, out, reference=still, config=load_config(overrides={"encode.codec": "ffv1"}))
    assert _video_props(out)["codec"] == "ffv1"
    for a, b in zip(decode_luma(clip), decode_luma(out)):
        assert np.array_equal(a, b)
    assert packet_bytes(out) == packet_bytes(clip)


def test_gray_pixel_format_full_range_kept_exactly(tmp_path, still):
    src = make_clip(tmp_path / "gray.mkv", n=6, codec="ffv1", pix_fmt="gray")
    out = tmp_path / "gray_color.mkv"
    colorize_video(src, out, reference=still, config=load_config(overrides={"encode.codec": "ffv1"}))
    props = _video_props(out)
    assert props["pix_fmt"] == "yuv420p" and props["range"] == 2  # full range, like the gray codes
    for a, b in zip(decode_luma(src), decode_luma(out)):
        assert np.array_equal(a, b)


def test_display_metadata_survives(tmp_path, still):
    color = {"color_range": 1, "colorspace": 1, "color_primaries": 1, "color_trc": 1}
    src = make_clip(tmp_path / "meta.mp4", n=8, rotation=90, sar=Fraction(4, 3), color=color)
    out = tmp_path / "meta_color.mp4"
    colorize_video(src, out, reference=still)
    a, b = _video_props(src), _video_props(out)
    for key in ("size", "rotation", "sar", "range", "space", "primaries", "trc"):
        assert a[key] == b[key], key
    assert b["rotation"] == 90 and b["sar"] == Fraction(4, 3) and b["primaries"] == 1


def test_subtitles_copied_packet_for_packet(tmp_path, still):
    src = make_clip(tmp_path / "subs.mkv", n=24, audio=True, subtitles=True)
    out = tmp_path / "subs_color.mkv"
    colorize_video(src, out, reference=still)
    subs = packet_bytes(src, "subtitles")
    assert len(subs) == 2 and packet_bytes(out, "subtitles") == subs
    assert packet_bytes(out) == packet_bytes(src)


def test_reference_map_gives_each_shot_its_own_colour(tmp_path):
    src = make_clip(tmp_path / "two.mp4", n=24, shots=(0, 12))
    blue, red = tmp_path / "blue.png", tmp_path / "red.png"
    for path, rgb in ((blue, (40, 70, 220)), (red, (220, 50, 40))):
        img = np.zeros((32, 32, 3), np.uint8)
        img[:] = rgb
        img[:, :16] = np.array(rgb) // 2  # a darker half, so there is luminance to condition on
        write_image(path, img)
    m = tmp_path / "map.csv"
    m.write_text("start,reference\n0,blue.png\n00:00:00.500,red.png\n")  # 0.5 s = frame 12 at 24 fps
    out = tmp_path / "two_color.mp4"
    report = colorize_video(src, out, reference_map=m)
    assert [s["first_frame"] for s in report.shots] == [0, 12]
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)]
    bluish = [f[..., 2].mean() - f[..., 0].mean() for f in frames]
    assert all(b > 10 for b in bluish[:12]) and all(b < -10 for b in bluish[12:])


@pytest.mark.parametrize("colorizer", ["transfer", "exemplar"])
def test_still_image_keeps_its_luminance(tmp_path, still, colorizer):
    """transfer keeps the photo's Lab L; exemplar, which answers in Cb/Cr, its luma Y' (BT.601, as JPEG)."""
    src = make_still(tmp_path / "photo.png", w=120, h=80, gray=True)
    out = tmp_path / "photo_color.png"
    colorize_image(src, out, reference=still, config=load_config(overrides={"colorizer": colorizer}))
    a, b = read_image(src), read_image(out)
    assert a.shape == b.shape
    to_t = lambda x: torch.from_numpy(x).permute(2, 0, 1)[None].float() / 255  # noqa: E731
    la, lb = rgb_to_lab(to_t(a)), rgb_to_lab(to_t(b))
    if colorizer == "transfer":
        assert (la[:, 0] - lb[:, 0]).abs().mean() < 0.5
    else:
        spec = YCbCrSpec(BT601, True, 8)
        assert (rgb_to_luma(to_t(a), spec) - rgb_to_luma(to_t(b), spec)).abs().max() * 255 < 1.5
    assert lb[:, 1:].abs().mean() > 5  # it has colour now


def test_reader_is_bounded_and_closes_early(tmp_path):
    src = make_clip(tmp_path / "long.mp4", n=60, audio=True)
    with VideoReader(src, queue_size=2) as r:
        items = r.items()
        next(items)
        assert r._queue.qsize() <= 2
    assert not r._thread.is_alive()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
def test_cuda_matches_cpu(clip, still, tmp_path):
    cpu, gpu = tmp_path / "cpu.mkv", tmp_path / "gpu.mkv"
    over = {"encode.codec": "ffv1"}
    colorize_video(clip, cpu, reference=still, config=load_config(overrides={**over, "runtime.device": "cpu"}))
    colorize_video(clip, gpu, reference=still, config=load_config(overrides={**over, "runtime.device": "cuda"}))
    with av.open(str(cpu)) as a, av.open(str(gpu)) as b:
        for fa, fb in zip(a.decode(video=0), b.decode(video=0)):
            d = np.abs(fa.to_ndarray(format="rgb24").astype(int) - fb.to_ndarray(format="rgb24").astype(int))
            assert d.mean() < 1.0


def _chroma_spread(path) -> list[float]:
    with av.open(str(path)) as c:
        out = []
        for f in c.decode(video=0):
            p = f.to_ndarray()
            h = f.height
            out.append(float(np.abs(p[h:].astype(int) - 128).mean()))
    return out


def test_shots_without_a_still_get_automatic_colour(tmp_path, still, auto_weights):
    """No reference: the automatic colorizer colours the film; a map row with no still: that
    shot alone; the other shot keeps its still's colorizer."""
    weights = auto_weights
    src = make_clip(tmp_path / "two.mp4", n=24, shots=(0, 12))
    cfg = load_config(overrides={"auto.weights": str(weights), "shots.detector": "off", "temporal.mode": "off"})
    report = colorize_video(src, tmp_path / "auto.mp4", config=cfg)
    assert [s["colorizer"] for s in report.shots] == ["auto"]
    assert min(_chroma_spread(tmp_path / "auto.mp4")) > 1.0
    m = tmp_path / "map.csv"
    m.write_text(f"start,reference\n0,{still}\n12,\n")
    report = colorize_video(src, tmp_path / "mixed.mp4", reference_map=m, config=cfg)
    assert [(s["first_frame"], s["colorizer"]) for s in report.shots] == [(0, "exemplar"), (12, "auto")]
    # the report says per shot how much colour auto gave: the automatic shot only
    assert "auto_confidence" not in report.shots[0] and 0 <= report.shots[1]["auto_confidence"] <= 1
    assert report.shots[1]["auto_chroma"] >= 0
    _assert_luma_kept(src, tmp_path / "mixed.mp4")
