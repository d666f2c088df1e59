"""Dust and scratches (an old print's) found as temporal outliers and given their surroundings' colour."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from vidcolor.temporal.defects import DefectFinder, clean_still, fill_masked, still_scratches


def moving_picture(seed: int, n: int = 20, h: int = 96, w: int = 128, blur: float = 3.0) -> np.ndarray:
    """(n, h, w) uint8: a textured scene (soft blobs ``blur`` px, a few hard edges) panning ~1.2 px a frame."""
    rng = np.random.default_rng(seed)
    big = cv2.GaussianBlur(rng.normal(0, 1, (h + 60, w + 60)).astype(np.float32), (0, 0), blur)
    big = 120 + 35 * big / big.std()
    for _ in range(6):  # some hard-edged shapes, a thin dark pole among them
        x, y = rng.integers(0, w + 40), rng.integers(0, h + 40)
        cv2.rectangle(big, (int(x), int(y)), (int(x + rng.integers(8, 30)), int(y + rng.integers(8, 30))),
                      float(rng.uniform(60, 200)), -1)
    cv2.line(big, (125, 5), (125, h + 50), 50.0, 2)
    out = []
    for t in range(n):
        m = np.float32([[1, 0, -10 - 1.2 * t], [0, 1, -10 - 0.4 * t]])
        out.append(cv2.warpAffine(big, m, (w, h), flags=cv2.INTER_LINEAR))
    return np.clip(np.rint(np.stack(out)), 0, 255).astype(np.uint8)


def add_defects(frames: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The frames with dust specks (1-2 frames each) and a drifting vertical scratch (frames 4-13),
    made as benchmarks/oldfilm.py makes them; and the defect masks."""
    rng = np.random.default_rng(seed)
    n, h, w = frames.shape
    y = frames.astype(np.float32)
    masks = np.zeros(frames.shape, bool)
    for t in range(1, n):
        for _ in range(2):
            life = int(rng.integers(1, 3))
            c = (int(rng.uniform(8, w - 8)), int(rng.uniform(8, h - 8)))
            r, val = int(rng.integers(1, 4)), float(rng.choice([22.0, 230.0]))
            for k in range(t, min(n, t + life)):
                m = np.zeros((h, w), np.uint8)
                cv2.circle(m, c, r, 1, -1)
                y[k][m > 0] = val
                masks[k] |= m > 0
    for t in range(4, 14):
        x = int(round(40 + 0.3 * (t - 4)))
        y[t, 4:h - 6, x:x + 2] += 60
        masks[t, 4:h - 6, x:x + 2] = True
    return np.clip(np.rint(y), 0, 255).astype(np.uint8), masks


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_finder_flags_dust_and_scratches_and_nothing_on_a_clean_picture(seed):
    clean = moving_picture(seed)
    dirty, truth = add_defects(clean, seed)
    f = DefectFinder()
    found = np.stack([f.find(y) for y in dirty])
    later = truth[1:]  # a shot's first frame has nothing before it: none found there
    recall = (found[1:] & later).sum() / later.sum()
    assert recall > 0.85, recall
    near = np.stack([cv2.dilate(m.view(np.uint8), np.ones((9, 9), np.uint8)) > 0 for m in truth])
    assert (found & ~near).mean() < 6e-3, (found & ~near).mean()  # incl. a few rows past a scratch's end
    scratch = truth[5:14, 10:80, 40:43]  # the scratch (in its frames after the first) is found along its run
    assert (found[5:14, 10:80, 40:43] & scratch).sum() > 0.9 * scratch.sum()
    f.reset()
    assert sum(int(f.find(y).sum()) for y in clean) < 2e-4 * clean.size  # the clean picture: ~nothing


def test_finder_restarts_at_a_shot_and_leaves_a_steady_detail_alone():
    clean = moving_picture(3)
    dirty, truth = add_defects(clean, 3)
    f = DefectFinder()
    for y in dirty[:8]:
        f.find(y)
    f.reset()  # a new shot: its first frame is compared with nothing
    assert not f.find(dirty[8]).any()
    # a speck that stays put for ever is the picture's (a detail that does not move with it is rare,
    # but one that never goes is not dust): found for a few frames at most
    still = np.full((40, 40), 120, np.uint8)
    spot = still.copy()
    cv2.circle(spot, (20, 20), 2, 230, -1)
    f.reset()
    got = [f.find(y).any() for y in [still] + [spot] * 10]
    assert got[1] and sum(got) <= 3, got


def test_fill_takes_the_surroundings():
    ramp = np.tile(np.linspace(40, 200, 64, dtype=np.float32), (32, 1)).astype(np.uint8)
    mask = np.zeros(ramp.shape, bool)
    mask[2:30, 30:33] = True
    bad = ramp.copy()
    bad[mask] = 250
    out = fill_masked(bad, mask)
    assert np.abs(out.astype(int) - ramp).max() <= 4  # within two steps of the ramp (2.5 codes a pixel)
    assert np.array_equal(out[~mask], bad[~mask])  # only the masked pixels change
    assert bad[mask].min() == 250  # the input itself is never written


@pytest.mark.parametrize("value", [230, 22])
def test_a_speck_touching_something_as_bright_is_found_whole(value):
    """A white speck against a white post (a dark one against a dark post): the top-hat sees only its
    free side; against the frame before it stands out whole, and all of it is filled."""
    clean = moving_picture(4, n=8)
    clean[:] = clean[0]  # a still picture: the speck is the only news
    clean[:, :, 52:68] = value  # a post as bright (dark) as the speck, wider than a speck
    dirty = clean.copy()
    speck = np.zeros(clean.shape[1:], np.uint8)
    cv2.circle(speck, (72, 40), 4, 1, -1)  # touching the post's right side
    speck = speck.astype(bool)
    assert not speck[:, 52:68].any() and speck[:, 68].any()  # it touches, it does not overlap
    for t in (4, 5):
        dirty[t][speck] = value
    filled = {}
    for touching in (False, True):
        out = DefectFinder(touching=touching).fill(dirty)
        filled[touching] = [float((out[t] != dirty[t])[speck].mean()) for t in (4, 5)]
        assert np.array_equal(out[:4], dirty[:4]) and np.array_equal(out[6:], dirty[6:])  # nothing else
    assert min(filled[True]) > 0.95, filled
    assert np.abs(out[4:6].astype(int) - clean[4:6]).max() <= 2  # with what was there (a still picture)
    assert max(filled[False]) < 0.9, filled  # without it, not where it touches (the test can fail)


def panning(seed: int, vx: float, n: int = 16, h: int = 96, w: int = 128, pole: int | None = None,
            blob: float = 2.0, contrast: float = 35.0) -> np.ndarray:
    """(n, h, w) uint8: a texture (blobs ~``blob`` px, ``contrast`` codes from grey) panning ``vx`` px a frame
    across and a quarter px down; ``pole``: with a dark line 2 px wide down the picture (50 codes), starting
    at that column, panning with it."""
    rng = np.random.default_rng(seed)
    wide = 40 if abs(vx) * n <= 40 else int(np.ceil(abs(vx) * n)) + 20  # (a faster pan: room for it)
    big = cv2.GaussianBlur(rng.normal(0, 1, (h + 40, w + wide)).astype(np.float32), (0, 0), blob)
    big = 120 + contrast * big / big.std()
    if pole is not None:
        big[6:h + 34, pole + 10:pole + 12] -= 50
    out = [cv2.warpAffine(big, np.float32([[1, 0, -10 - vx * t], [0, 1, -10 - 0.25 * t]]), (w, h),
                          flags=cv2.INTER_CUBIC) for t in range(n)]
    return np.clip(np.rint(np.stack(out)), 0, 255).astype(np.uint8)


def dark_scratch(clean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``clean`` with a dark scratch (60 codes) at columns 60-61, rows 6-89, on frames 2-13: (dirty, its mask)."""
    dirty = clean.astype(np.float32)
    scratch = np.zeros(clean.shape, bool)
    scratch[2:14, 6:90, 60:62] = True
    dirty[scratch] -= 60
    return np.clip(np.rint(dirty), 0, 255).astype(np.uint8), scratch


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("vx", [0.5, 1.5])
def test_a_scratch_over_a_picture_moving_a_fraction_of_a_pixel_is_filled_from_where_it_was(seed, vx):
    """A dark scratch living 12 frames over a picture that pans a fraction of a pixel a frame: each
    stretch matched to a fraction of a pixel and sampled from the frame the picture was last seen in
    is far closer to it than whole pixels copied from the frame before (off by up to half a pixel,
    and off again the next frame, from the copy)."""
    clean = panning(seed, vx)
    dirty, scratch = dark_scratch(clean)
    err = {}
    for subpixel in (False, True):
        out = DefectFinder(subpixel=subpixel).fill(dirty)
        err[subpixel] = np.abs(out.astype(int) - clean)[scratch].mean()
    assert err[True] < 0.6 * err[False], err
    assert np.array_equal(DefectFinder().fill(clean), clean)  # nothing found, nothing filled on the clean picture
    finder, parts = DefectFinder(), []  # a batch at a time, as the pipeline feeds it: where each stretch
    for i in range(0, len(dirty), 4):  # came from is carried from batch to batch
        parts.append(finder.fill(dirty[i:i + 4], dirty[i + 4:i + 4 + finder.ahead(4)]))
    assert np.array_equal(np.concatenate(parts), DefectFinder().fill(dirty))


def turning(seed: int, degrees: float, n: int = 16, h: int = 96, w: int = 128) -> np.ndarray:
    """(n, h, w) uint8: a fine texture (blobs ~2 px) turning ``degrees`` a frame about the middle."""
    rng = np.random.default_rng(seed)
    big = cv2.GaussianBlur(rng.normal(0, 1, (h + 40, w + 40)).astype(np.float32), (0, 0), 2.0)
    big = 120 + 35 * big / big.std()
    out = []
    for t in range(n):
        turn = cv2.getRotationMatrix2D((w / 2 + 20, h / 2 + 20), degrees * t, 1.0)
        turn[:, 2] -= 20
        out.append(cv2.warpAffine(big, turn, (w, h), flags=cv2.INTER_CUBIC))
    return np.clip(np.rint(np.stack(out)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_scratch_over_a_turning_picture_follows_it_row_by_row(seed):
    """A dark scratch living 12 frames over a picture turning 2 degrees a frame: the picture under
    it moves sideways by a different amount at each height (1.5 px from one end of the scratch to the
    other a frame), so a stretch of it shifted as one is off at its ends; with the shift
    interpolated row by row between overlapping stretches the fill is far closer to the picture."""
    clean = turning(seed, 2.0)
    dirty, scratch = dark_scratch(clean)
    err = {glide: np.abs(DefectFinder(glide=glide).fill(dirty).astype(int) - clean)[scratch].mean()
           for glide in (False, True)}
    assert err[True] < 0.85 * err[False], err
    finder, parts = DefectFinder(), []  # a batch at a time, as the pipeline feeds it
    for i in range(0, len(dirty), 4):
        parts.append(finder.fill(dirty[i:i + 4], dirty[i + 4:i + 4 + finder.ahead(4)]))
    assert np.array_equal(np.concatenate(parts), DefectFinder().fill(dirty))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_scratch_is_followed_across_a_dark_band_where_it_is_clipped_at_black(seed):
    """A dark scratch down the whole picture, across a dark band where it is clipped at the film's
    black (only 8 codes darker than the band there, far under a scratch's contrast): the same
    scratch, found and filled there too, not left as a dark line for colour to be painted along.
    Nothing is found on the clean picture."""
    clean = panning(seed, 1.5).astype(np.float32)
    clean[:, 36:66] = 24 + 0.15 * (clean[:, 36:66] - 120)  # a dark band across the picture
    clean = np.clip(np.rint(clean), 16, 235).astype(np.uint8)
    dirty = clean.astype(np.float32)
    scratch = np.zeros(clean.shape, bool)
    scratch[2:14, :, 60:62] = True
    dirty[scratch] -= 60
    dirty = np.clip(np.rint(dirty), 16, 235).astype(np.uint8)
    band = scratch.copy()
    band[:, :36] = band[:, 66:] = False
    out = DefectFinder().fill(dirty)
    assert (out != dirty)[band].mean() > 0.5  # about 0.1 when only its stark parts were found
    raw = np.abs(dirty.astype(int) - clean)[band].mean()
    assert np.abs(out.astype(int) - clean)[band].mean() < 0.5 * raw
    assert np.array_equal(DefectFinder().fill(clean), clean)


@pytest.mark.parametrize("seed", [0, 2])
def test_a_speck_is_filled_with_what_the_frame_before_showed_there(seed):
    clean = moving_picture(seed)
    dirty, truth = add_defects(clean, seed)
    specks = truth.copy()
    specks[:, :, 36:48] = False  # not the scratch (filled from either side of it)
    err = {}
    for temporal in (False, True):
        out = DefectFinder(temporal_fill=temporal).fill(dirty)
        err[temporal] = np.abs(out.astype(int) - clean)[specks].mean()
    assert err[True] < 0.8 * err[False], err


@pytest.mark.parametrize("seed", [0, 2])
def test_a_scratch_is_filled_with_what_the_frame_before_showed_under_it(seed):
    """A scratch over a finely textured picture that pans 1.2 px a frame: its pixels taken from the
    previous frame (as filled), stretch by stretch where their surroundings are found there, are far
    closer to the picture under it than a fill from either side of it."""
    clean = moving_picture(seed, blur=1.5)
    dirty, truth = add_defects(clean, seed)
    scratch = np.zeros(truth.shape, bool)
    scratch[4:14, :, 38:46] = truth[4:14, :, 38:46]  # the scratch alone (frames 4-13), not the dust
    err = {}
    for temporal in (False, True):
        out = DefectFinder(temporal_scratch=temporal).fill(dirty)
        err[temporal] = np.abs(out.astype(int) - clean)[scratch].mean()
    assert err[True] < 0.8 * err[False], err
    assert err[True] < 12, err  # the scratch itself is ~60 codes off the picture


@pytest.mark.parametrize("seed", [0, 2])
def test_a_scratch_already_there_at_a_shot_s_first_frame_is_found(seed):
    """A scratch on the shot's first frames (0-4, gone by frame 5): nothing before it to be new against,
    so the batch's later frames, where it is gone, are walked back to the first: it is found and
    filled on every frame it is on, as one that comes in mid-shot is."""
    clean = moving_picture(seed, n=12)
    dirty = clean.astype(np.int16)
    mask = np.zeros(clean.shape, bool)
    mask[:5, 6:90, 60:62] = True
    dirty[mask] += 60
    dirty = np.clip(dirty, 0, 255).astype(np.uint8)
    f = DefectFinder()
    out = np.concatenate([f.fill(dirty[:8]), f.fill(dirty[8:])])  # batches of 8, as the pipeline's on a CPU
    err = np.abs(out.astype(int) - clean)[mask]
    assert err.mean() < 10, err.mean()  # the scratch is 60 codes off the picture: left in, it would be ~60
    assert np.array_equal(out[5:], clean[5:]) or np.abs(out[5:].astype(int) - clean[5:]).mean() < 0.05


def test_a_scratch_there_from_a_shot_s_first_frame_past_its_first_batch_is_found():
    """A scratch on frames 0-11 of a shot, its first batch frames 0-7: the frames held back after the
    batch (as the pipeline holds them, :meth:`DefectFinder.ahead`) are walked back to the first, so
    it is found where it goes (frame 12) and filled from the first frame on. Given the batch alone,
    the walk back never saw it go: left in on every frame (the finder's other way of finding a
    scratch there from the start, ``held_back``, off: it would find this one on the moving picture)."""
    clean = moving_picture(1, n=20)
    dirty = clean.astype(np.int16)
    mask = np.zeros(clean.shape, bool)
    mask[:12, 6:90, 60:62] = True
    dirty[mask] += 60
    dirty = np.clip(dirty, 0, 255).astype(np.uint8)
    err = {}
    for ahead in (True, False):
        f, out, i = DefectFinder(held_back=0), [], 0
        while i < len(dirty):
            n = min(8, len(dirty) - i)
            after = list(dirty[i + n:i + n + f.ahead(n)]) if ahead else []
            out.append(f.fill(dirty[i:i + n], after))
            i += n
        err[ahead] = float(np.abs(np.concatenate(out).astype(int) - clean)[mask].mean())
    assert f.ahead(8) == max(1, f.fill_ahead)  # after the shot's first batch: a speck in a batch's last frame
    # going, and where a scratch's picture is seen again; on a 10-bit film too
    deep = DefectFinder(bits=10, held_back=0)
    deep.fill(dirty[:8].astype(np.uint16) << 2, list(dirty[8:8 + deep.ahead(8)].astype(np.uint16) << 2))
    assert deep.ahead(8) == max(1, deep.fill_ahead)
    assert err[True] < 10 < 40 < err[False], err  # the scratch is 60 codes off the picture


def test_the_pipeline_holds_back_the_frames_the_finder_looks_ahead_at(tmp_path):
    """Through the pipeline: a scratch on a shot's first 12 frames (past its first batch) takes its
    surroundings' colour; every frame is written once, in order, as without the finder."""
    import av

    clean = moving_picture(5, n=21, blur=6.0)
    dirty = clean.copy()
    truth = np.zeros(clean.shape, bool)
    truth[:12, 6:90, 60:62] = True
    dirty[truth] = np.clip(dirty[truth].astype(int) + 60, 0, 255)
    chroma = through_pipeline(tmp_path, clean, dirty, "temporal.defects")
    pts = {}
    for name in chroma:
        with av.open(str(tmp_path / f"out_{name}.mp4")) as c:
            pts[name] = [f.pts for f in c.decode(video=0)]
    assert pts["on"] == pts["off"] == pts["clean"] and len(pts["on"]) == 21
    on, off = (float(np.sqrt(((chroma[k] - chroma["clean"]) ** 2).sum(-1))[truth].mean()) for k in ("on", "off"))
    assert on < 0.3 * off, (on, off)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_scratch_is_found_where_it_crosses_an_edge_of_the_picture(seed):
    """A bright scratch (frames 4-13, the frame's full height) whose stretch over rows 30-39 lies on
    the dark side of an edge of the picture: there it is brighter than the dark side but darker than
    the bright side, no line of its own to a top-hat. It is the same scratch in the same place: found
    along that stretch too, not only where it is a line; the edge itself, where no scratch is, is not."""
    clean = moving_picture(seed)
    clean[:, 30:40, 20:40], clean[:, 30:40, 40:70] = 170, 70  # an edge at x = 40 in rows 30-39 (the picture's)
    dirty = clean.astype(np.int16)
    mask = np.zeros(clean.shape, bool)
    mask[4:14, :, 40:42] = True
    dirty[mask] += 60
    dirty = np.clip(dirty, 0, 255).astype(np.uint8)
    f = DefectFinder()
    found = np.stack([f.find(y) for y in dirty])
    stretch = mask[5:14, 30:40]
    assert found[5:14, 30:40][stretch].mean() > 0.9, found[5:14, 30:40][stretch].mean()
    assert found[5:14][mask[5:14]].mean() > 0.9
    assert found[:4].mean() < 2e-4 and found[14:].mean() < 2e-4  # before and after it: ~nothing, edge or not


def test_a_new_scratch_beside_an_older_one_lives_its_own_life():
    """A faint scratch (frames 1-17, longer than ``max_age``: given up on) and a stark one right beside
    it (frames 12-21): the stark one is new when it comes, so it is not given the faint one's age
    (which would drop it with the faint one while it is still there)."""
    clean = moving_picture(1, n=24)
    dirty = clean.astype(np.int16)
    faint, stark = np.zeros(clean.shape, bool), np.zeros(clean.shape, bool)
    faint[1:18, 4:92, 50] = True
    stark[12:22, 4:92, 51:53] = True
    dirty[faint] += 30
    dirty[stark] += 90
    dirty = np.clip(dirty, 0, 255).astype(np.uint8)
    f = DefectFinder()
    found = np.stack([f.find(y) for y in dirty])
    assert found[13:22][stark[13:22]].mean() > 0.9, found[13:22][stark[13:22]].mean()


@pytest.mark.parametrize("seed", [0, 2])
@pytest.mark.parametrize("gap", [3, 6])
def test_a_scratch_that_comes_a_few_pixels_beside_a_found_one_is_found(seed, gap):
    """A dark scratch (frames 1-8) and a second one ``gap`` px beside it (frames 6-15): the first,
    found, is no picture the second could have moved in from, so the second is new when it comes and
    found all its life (only 14-20% of it was, on these seeds, when the first counted as picture)."""
    clean = moving_picture(seed, n=20)
    dirty = clean.astype(np.int16)
    old, new = np.zeros(clean.shape, bool), np.zeros(clean.shape, bool)
    old[1:9, 4:92, 70:72] = True
    new[6:16, 4:92, 70 - gap:72 - gap] = True
    dirty[old | new] -= 60
    dirty = np.clip(dirty, 0, 255).astype(np.uint8)
    f = DefectFinder()
    found = np.stack([f.find(y) for y in dirty])
    assert found[new].mean() > 0.95, found[new].mean()


def _still(seed: int = 5, h: int = 120, w: int = 160) -> np.ndarray:
    """(h, w, 3) uint8: a colour still of soft coloured blobs, no thin lines, no channel at 0 or 255."""
    rng = np.random.default_rng(seed)
    img = np.stack([cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 6) for _ in range(3)], -1)
    return np.clip(128 + 30 * img / img.std(), 0, 255).astype(np.uint8)  # in gamut: nothing clipped


def test_a_still_s_scratch_that_lost_its_colour_is_filled_and_a_thin_pole_is_not():
    still = _still()
    assert clean_still(still) is still  # nothing found: the still itself
    bad = still.astype(np.int16)
    bad[10:110, 70:72] -= 110  # a dark scratch, 2 px wide, most of the height: R'G'B' clipped at 0 along it
    bad[10:110, 120:122] = bad[10:110, 120:122] * 0.4 + 20  # a thin dark pole, in gamut all along
    bad = np.clip(bad, 0, 255).astype(np.uint8)
    assert (bad[10:110, 70:72] == 0).any() and not (bad[10:110, 120:122] == 0).any()
    found = still_scratches(cv2.cvtColor(bad, cv2.COLOR_RGB2GRAY))
    assert found[10:110, 70:72].mean() > 0.9 and found[10:110, 120:122].mean() > 0.9  # both look like scratches
    out = clean_still(bad)
    err = [np.abs(x[10:110, 70:72].astype(int) - still[10:110, 70:72]).mean() for x in (bad, out)]
    assert err[1] < 0.2 * err[0], err
    assert np.array_equal(out[:, :66], bad[:, :66]) and np.array_equal(out[:, 76:], bad[:, 76:])  # the pole kept
    assert bad[10:110, 70:72].max() < still[10:110, 70:72].max()  # the input itself is never written


def test_the_reference_store_fills_a_still_s_scratches_when_asked(tmp_path):
    import torch

    from vidcolor.references import ReferenceStore

    still = _still()
    bad = still.copy()
    bad[5:115, 100:102] = 255  # a bright scratch, clipped
    path = tmp_path / "still.png"
    cv2.imwrite(str(path), cv2.cvtColor(bad, cv2.COLOR_RGB2BGR))
    kept = ReferenceStore(torch.device("cpu")).get(path)
    filled = ReferenceStore(torch.device("cpu"), scratches=True).get(path)
    want = torch.from_numpy(still[5:115, 100:102]).permute(2, 0, 1).float() / 255
    err = [float((t[0, :, 5:115, 100:102] - want).abs().mean()) for t in (kept, filled)]
    assert err[1] < 0.2 * err[0], err
    assert torch.equal(kept[..., :96], filled[..., :96])


@pytest.mark.parametrize("mode", ["forward", "off"])
def test_no_colour_streak_along_a_scratch(tmp_path, mode):
    """Through the pipeline, a colorizer whose colour follows luminance: without the finder, colour is
    painted along a scratch and on dust (the chroma error on them, against the same film without them,
    far over the error around them); with it (the default) they take their surroundings' colour."""

    clean = moving_picture(4, n=16, h=96, w=128, blur=6.0)  # a picture the pixels around a speck tell
    dirty, truth = add_defects(clean, 4)
    chroma = through_pipeline(tmp_path, clean, dirty, "temporal.defects", {"temporal.mode": mode})
    err = {k: _on_and_around(chroma[k], chroma["clean"], truth) for k in ("off", "on")}
    assert err["off"][0] > 2 * err["off"][1] + 4, err  # without the finder: colour painted along the defects
    # with it: the defects' colour as close as the colour around them was without it (the colour here
    # follows the luma closely, and a fill is not the picture under the speck: not as close as around)
    assert err["on"][0] < 0.3 * err["off"][0] and err["on"][0] < err["off"][1], err


def through_pipeline(tmp_path, clean: np.ndarray, dirty: np.ndarray, key: str, extra: dict | None = None) -> dict:
    """The clean frames with ``key`` off, the dirty ones with it off and on, each written losslessly and
    coloured by the transfer colorizer (whose colour follows luminance) from a still where the colour
    says how bright a pixel is: {"clean", "off", "on"} -> Cb/Cr (:func:`_cbcr`); the outputs are
    ``tmp_path / "out_{name}.mp4"``, their inputs ``tmp_path / "{name}.mp4"``."""
    from synth_shots import write_video
    from vidcolor.config import load_config
    from vidcolor.pipeline import colorize_video

    ref = _bright_is_yellow(tmp_path)
    chroma = {}
    for name, frames, on in (("clean", clean, False), ("off", dirty, False), ("on", dirty, True)):
        src = write_video(tmp_path / f"{name}.mp4", list(frames), crf=0)
        cfg = load_config(overrides={"colorizer": "transfer", key: on, "encode.crf": 0, "shots.detector": "off",
                                     **(extra or {})})
        colorize_video(src, tmp_path / f"out_{name}.mp4", reference=ref, config=cfg)
        chroma[name] = _cbcr(tmp_path / f"out_{name}.mp4")
    return chroma


def _bright_is_yellow(tmp_path):
    """A 128x96 still from dark blue (left) to bright yellow (right): the colour says how bright a pixel is."""
    ref = tmp_path / "ref.png"
    g = np.linspace(0, 1, 128, dtype=np.float32)[None, :, None]
    still = (1 - g) * np.float32([255, 0, 0]) + g * np.float32([0, 255, 255])  # BGR
    cv2.imwrite(str(ref), np.clip(np.repeat(still, 96, axis=0), 0, 255).astype(np.uint8))
    return ref


def _cbcr(path) -> np.ndarray:
    """(n, H, W, 2) Cb/Cr of a yuv420p video, each chroma sample repeated 2x2 (as the benchmark)."""
    import av

    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            a = f.to_ndarray(format="yuv420p").astype(np.float32)
            h, w = f.height, f.width
            uv = a[h:].reshape(2, h // 2, w // 2)
            out.append(uv.repeat(2, axis=1).repeat(2, axis=2).transpose(1, 2, 0))
    return np.stack(out)


def _on_and_around(got: np.ndarray, want: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Mean Cb/Cr error (codes) on the defect pixels and on those 2-5 px around them (benchmarks/
    bench_oldfilm.py's measure), over the frames after the first."""
    on, ring = [], []
    k5, k2 = np.ones((11, 11), np.uint8), np.ones((5, 5), np.uint8)
    for g, w, m in zip(got[1:], want[1:], truth[1:]):
        e = np.sqrt(((g - w) ** 2).sum(axis=-1))
        r = (cv2.dilate(m.view(np.uint8), k5) > 0) & ~(cv2.dilate(m.view(np.uint8), k2) > 0)
        on.append(e[m])
        ring.append(e[r])
    return float(np.concatenate(on).mean()), float(np.concatenate(ring).mean())


def test_a_speck_that_lands_where_something_as_dark_just_was_is_found_as_it_goes(seed=3):
    """A bird (dark, textured) is in a place for three frames and gone the next; a speck of dust lands
    just there in that frame and is gone the frame after. Coming, the speck is no news (the bird was as
    dark there a frame ago); going, it is: the batch's next frame shows the picture. (Before the
    finder looked forward inside a batch the speck kept its darkness: mean error 106 codes, now 4.)"""
    clean = moving_picture(seed, n=16)
    dirty = clean.copy()
    rng = np.random.default_rng(seed)
    bird = np.clip(30 + rng.normal(0, 12, (7, 7)), 0, 255)  # textured: no speck
    x, y = 60, 44
    for t, dx in ((8, -4), (9, -2), (10, 0)):
        dirty[t, y:y + 7, x + dx:x + dx + 7] = bird
    speck = np.zeros(dirty.shape[1:], np.uint8)
    cv2.circle(speck, (x + 3, y + 3), 3, 1, -1)
    dirty[11][speck > 0] = 22  # frame 11: the bird has gone and a speck lands where it was
    f = DefectFinder()
    f.fill(dirty[:8])
    out = f.fill(dirty[8:])
    on = speck > 0
    err = np.abs(out[3].astype(int) - clean[11].astype(int))[on].mean()
    before = np.abs(dirty[11].astype(int) - clean[11].astype(int))[on].mean()
    assert err < 0.25 * before, (err, before)
    coming = DefectFinder()
    assert not [coming.find(d) for d in dirty][11][on].any()  # coming, it was no news: only going tells it


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_scratch_that_comes_in_broken_is_found_when_it_firms_up(seed):
    """A dark scratch (frames 5-14) over a quiet picture that comes in broken: in its first frame
    every other pair of rows of it is faint (as where it crosses dark picture, clipped at black), too
    little of a run to be a line (its bits are found as specks). A frame later it is whole: not new
    enough against the frame before (down its run it was half as dark there), but new against the
    frame before that, so found as a scratch from then on. The old test lost it once the specks' life
    was over (about a third of frames 6-14 found). Nothing is found on the clean picture."""
    clean = moving_picture(seed, n=18).astype(np.float32)
    clean = np.clip(np.rint(100 + 0.25 * (clean - 120)), 0, 255).astype(np.uint8)  # little texture
    dirty = clean.astype(np.int16)
    scratch = np.zeros(clean.shape, bool)
    scratch[5:15, 4:92, 60:62] = True
    dirty[scratch] -= 40
    weak = np.zeros(clean.shape, bool)
    weak[5, [r for r in range(4, 92) if (r // 2) % 2], 60:62] = True
    dirty[weak] += 30  # only 10 codes dark there
    dirty = np.clip(dirty, 0, 255).astype(np.uint8)
    f = DefectFinder()
    found = np.stack([f.find(y) for y in dirty])
    assert found[6:15][scratch[6:15]].mean() > 0.95, found[6:15][scratch[6:15]].mean()
    f = DefectFinder(fresh_lines=False, held_back=0)
    old = np.stack([f.find(y) for y in dirty])
    assert old[6:15][scratch[6:15]].mean() < 0.5
    f = DefectFinder()
    assert not any(f.find(y).any() for y in clean)


def running_scratch(seed: int, vx: float, n: int = 62, life: tuple[int, int] = (3, 58),
                    drift: float = 0.1, **texture) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A fine texture panning ``vx`` px a frame (and a quarter down; ``texture``: :func:`panning`'s), and a
    copy with a dark scratch 2 px wide down 92% of its height through frames ``life`` (a projector's,
    drifting ``drift`` px a frame); and its mask."""
    clean = panning(seed, vx, n=n, **texture)
    scratch = np.zeros(clean.shape, bool)
    for t in range(life[0], min(n, life[1])):
        x = int(round(60 + drift * (t - life[0])))
        scratch[t, 4:92, x:x + 2] = True
    dirty = clean.astype(np.int16)
    dirty[scratch] -= 50
    return clean, np.clip(dirty, 0, 255).astype(np.uint8), scratch


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("vx", [0.0, 0.5])
def test_a_scratch_running_down_the_whole_frame_through_a_shot_is_found_all_its_life(seed, vx):
    """A scratch down nearly the whole height that runs on for 55 frames, past ``max_age`` (16): a
    projector's, it lives on (``renew_span``), found all its life, where the age limit alone gave it
    up after 16 frames (found 0.27-0.8 of its life: on a panning picture it is found again in places).
    Once it has gone (two frames on) nothing more is found than without that: what was found beside it
    (the picture a dark scratch makes a bright line of) is in pieces and is not kept on."""
    clean, dirty, scratch = running_scratch(seed, vx)
    f = DefectFinder()
    plain = np.stack([f.find(y) for y in clean])
    assert plain.sum() < 20  # (14 pixels of one frame on one of these pictures: a detail of its own)
    share, after = {}, {}
    for span in (0, 0.75):
        f = DefectFinder(renew_span=span)
        found = np.stack([f.find(y) for y in dirty])
        share[span] = found[4:58][scratch[4:58]].mean()
        after[span] = int(found[60:].sum())  # (the frame it goes and the next: where it was is news)
    assert share[0.75] > 0.95 and share[0] < share[0.75] - 0.15, share
    assert after[0.75] <= after[0] + plain[60:].sum(), after


def batched_fill(finder: DefectFinder, frames: np.ndarray, batch: int = 8) -> np.ndarray:
    """``frames`` (one shot) filled a batch at a time, with the frames after each batch the finder
    looks ahead at, as the pipeline feeds it."""
    out, i = [], 0
    while i < len(frames):
        n = min(batch, len(frames) - i)
        out.append(finder.fill(frames[i:i + n], list(frames[i + n:i + n + finder.ahead(n)])))
        i += n
    return np.concatenate(out)


def dissolving(seed: int, span: float, n: int = 24, end: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A panning picture dissolving ``span`` of the way into another over ``n`` frames (what is under a
    scratch changes while it lives, as a talking face does), and a bright scratch on frames 4 to
    ``end`` - 1: (clean, dirty, scratch mask)."""
    a, b = moving_picture(seed, n=n).astype(np.float32), moving_picture(seed + 10, n=n).astype(np.float32)
    mix = (span * np.arange(n) / (n - 1))[:, None, None]
    clean = np.clip(np.rint((1 - mix) * a + mix * b), 0, 255).astype(np.uint8)
    dirty, mask = clean.astype(np.int16), np.zeros(clean.shape, bool)
    mask[4:end, 6:90, 60:62] = True
    dirty[mask] += 60
    return clean, np.clip(dirty, 0, 255).astype(np.uint8), mask


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_scratch_over_a_changing_picture_is_filled_from_before_and_after_it(seed):
    """A scratch 12 frames long over a picture that changes under it: filled from the frame before
    alone, its older frames show the picture as it was when the scratch came; blended with the frame
    where the picture is seen again (``fill_ahead``) by how long ago and how far ahead, they are
    about half as far off the picture. Nothing beside the scratch changes; where the picture is never
    seen again in the shot (the scratch runs to its end) the fill is what it was."""
    clean, dirty, mask = dissolving(seed, 0.6)
    err, out = {}, {}
    for ahead in (16, 0):
        out[ahead] = batched_fill(DefectFinder(fill_ahead=ahead), dirty)
        off = np.abs(out[ahead].astype(int) - clean)
        err[ahead] = float(off[10:16][mask[10:16]].mean())  # the scratch's older half
    assert err[16] < 0.7 * err[0], err
    beside = np.ones(clean.shape[2], bool)
    beside[52:70] = False  # the scratch's columns and what is found beside it (within a top-hat's reach)
    assert np.array_equal(out[16][..., beside], out[0][..., beside])
    clean, dirty, mask = dissolving(seed, 0.6, end=24)
    assert np.array_equal(batched_fill(DefectFinder(fill_ahead=16), dirty), batched_fill(DefectFinder(fill_ahead=0), dirty))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_scratch_down_the_whole_frame_of_a_still_shot_from_its_first_frame_is_found(seed):
    """A tripod shot (the picture drifts a quarter pixel down a frame, none across), and a projector's
    scratch down the whole frame from the shot's first frame (it ran across the cut) past its 16th.
    Never new, and no motion across to tell it from the picture by: a line down 95% of the height
    (``whole_span``) in one column, held still with the picture over 8 frames, is taken for one (without
    that, none of it is found). A pole of the picture from the foot of the frame up to 80% of its
    height, as dark, is left alone; so is the clean picture."""
    n = 40
    clean = panning(seed, 0.0, n=n)
    scratch = np.zeros(clean.shape, bool)
    scratch[:, 1:95, 60:62] = True  # (down 98% of the height)
    dirty = np.clip(clean.astype(np.int16) - 50 * scratch, 0, 255).astype(np.uint8)
    share = {}
    for span in (0.95, 0):
        out = batched_fill(DefectFinder(whole_span=span), dirty)
        share[span] = float((out != dirty)[scratch].mean())
    assert share[0.95] > 0.95 and share[0] < 0.05, share
    pole = clean.astype(np.int16)
    pole[:, 19:, 60:62] -= 50
    pole = np.clip(pole, 0, 255).astype(np.uint8)
    assert np.array_equal(batched_fill(DefectFinder(), pole), pole)
    assert np.array_equal(batched_fill(DefectFinder(), clean), clean)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("case", ["slow", "fine", "pair", "fast"])
def test_a_scratch_running_through_the_whole_shot_is_found_where_the_picture_moves_under_it(seed, case):
    """A projector's scratch down nearly the whole height, there from the shot's first frame to its last
    (it runs across the cut): never new, nor gone within the frames walked back at the start. Over a
    picture that pans it holds still while the picture beside it moves: it is found (``held_back``) and
    filled on nearly every frame, where without that it was left in on most of them:

    - ``slow``, ``fine``: a fine texture panning 0.3 or 1 px a frame (matched 8 frames back);
    - ``pair``: two such scratches 9 px apart, over a pan of 0.5 px a frame. Each lies in the picture
      matched beside the other, holding still there: lines are left out of it (found 0-75% without);
    - ``fast``: a smooth picture (blobs ~6 px, 15 codes) panning 3 px a frame: 8 frames back is 24 px,
      further than a match looks, so it is matched 2 frames back; and the two sides of the line, matched
      on so smooth a picture, agree only to within half their shift (none found without).

    Filled from what the pan shows beside it (what was under it when the shot began never shows: the
    fill is 0.3-16 codes off the picture, 12-23 for the pair, against 50 left in). A dark line of the
    picture as long, panning with it, is not found; nor anything on the clean pan."""
    n = 40
    vx, pair, texture = {"slow": (0.3, False, {}), "fine": (1.0, False, {}), "pair": (0.5, True, {}),
                         "fast": (3.0, False, {"blob": 6.0, "contrast": 15.0})}[case]
    most, gain = (25, 0.2) if pair else (20, 0.25)  # (a pair's fill is further off, and more is found without)
    clean, dirty, scratch = running_scratch(seed, vx, n=n, life=(0, n), drift=0.05, **texture)
    if pair:
        second = np.roll(scratch, 9, axis=2)
        dirty = np.clip(dirty.astype(np.int16) - 50 * second, 0, 255).astype(np.uint8)
        scratch |= second
    share = {}
    for back in (8, 0):
        out = batched_fill(DefectFinder(held_back=back), dirty)
        share[back] = float((out != dirty)[scratch].mean())
        if back:
            err = np.abs(out.astype(int) - clean)[scratch]
            assert err.mean() < most, err.mean()
    assert share[8] > 0.9 and share[0] < share[8] - gain, share  # (without: found late on the faster pans)
    assert np.array_equal(batched_fill(DefectFinder(), clean), clean)
    pole = panning(seed, vx, n=n, pole=70, **texture)  # a dark line of the picture: it moves with the picture
    assert np.array_equal(batched_fill(DefectFinder(), pole), pole)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_ten_bit_film_s_scratch_is_filled_from_before_and_after_it_as_an_eight_bit_one(seed):
    """The scratch over a changing picture, on a 10-bit scan of the print (codes x4, the low bits random):
    matched and filled in its own codes, from the frames before and after it as on the 8-bit film, within
    a tenth of the 8-bit fill's distance from the picture (8-bit codes); from around it alone (as a deeper
    film's was) it would be several times as far off. Its fill stays 10-bit, within 0-1023, and nothing
    12 px or more from the scratch changes."""
    clean, dirty, mask = dissolving(seed, 0.6)
    low = np.random.default_rng(seed).integers(0, 4, dirty.shape).astype(np.uint16)
    deep = (dirty.astype(np.uint16) << 2) + low
    out8 = batched_fill(DefectFinder(), dirty)
    out10 = batched_fill(DefectFinder(bits=10), deep)
    side = batched_fill(DefectFinder(bits=10, temporal_scratch=False, fill_ahead=0), deep)
    truth = clean.astype(np.float32) + 1.5 / 4  # the clean picture, in 8-bit codes, its low bits their mean
    err8 = float(np.abs(out8.astype(np.float32) - clean)[mask].mean())
    err10 = float(np.abs(out10.astype(np.float32) / 4 - truth)[mask].mean())
    err_side = float(np.abs(side.astype(np.float32) / 4 - truth)[mask].mean())
    assert err10 < 1.1 * err8 + 0.1, (err10, err8)
    assert err10 < 0.5 * err_side, (err10, err_side)
    assert out10.dtype == np.uint16 and int(out10.max()) <= 1023
    beside = np.ones(clean.shape[2], bool)
    beside[48:74] = False  # the scratch's columns (60-61) and 12 px either side
    assert np.array_equal(out10[..., beside], deep[..., beside])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_scratch_over_a_fast_turning_picture_is_matched_in_shorter_stretches_where_it_must_be(seed):
    """A dark scratch living 12 frames over a picture turning 5 degrees a frame: the picture under a
    24-row stretch of it moves sideways by 2 px more at one end than at the other, too far apart for
    one shift to fit its surroundings; matched again in halves (down to 6 rows, ``min_stretch``), more of it
    is filled from where its picture was, and the fill is closer to it. A batch at a time gives the
    same fill."""
    clean = turning(seed, 5.0)
    dirty, scratch = dark_scratch(clean)
    out = {k: DefectFinder(fill_ahead=0, min_stretch=k, side_rms=0.0).fill(dirty) for k in (6, 0)}
    err = {k: float(np.abs(o.astype(int) - clean)[scratch].mean()) for k, o in out.items()}
    assert err[6] < 0.95 * err[0], err
    assert np.array_equal(batched_fill(DefectFinder(fill_ahead=0, side_rms=0.0), dirty, batch=4), out[6])


def meeting(seed: int, n: int = 16, h: int = 96, w: int = 128) -> np.ndarray:
    """(n, h, w) uint8: two textures (blobs ~2 px) meeting at column 61, the left one panning 1.2 px a
    frame right and the right one 1.2 px left (into each other: what is at the edge was beside it a
    frame before), both a quarter px down."""
    rng = np.random.default_rng(seed)
    tex = []
    for _ in range(2):
        t = cv2.GaussianBlur(rng.normal(0, 1, (h + 40, w + 60)).astype(np.float32), (0, 0), 2.0)
        tex.append(120 + 35 * t / t.std())
    out = []
    for f in range(n):
        a, b = (cv2.warpAffine(t, np.float32([[1, 0, -30 + v * f], [0, 1, -10 - 0.25 * f]]), (w, h), flags=cv2.INTER_CUBIC)
                for t, v in zip(tex, (1.2, -1.2)))
        a[:, 61:] = b[:, 61:]
        out.append(a)
    return np.clip(np.rint(np.stack(out)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_scratch_on_an_edge_where_the_picture_moves_two_ways_is_filled_from_each_side_s_place(seed):
    """A dark scratch living 12 frames on the edge between two parts of the picture moving into each
    other (a face and the window behind it): no stretch of it is found as one in the frame before;
    each side matched on its own (``side_rms``) and each pixel filled from its own side's place, the
    fill is closer to the picture than without (those stretches then filled from around)."""
    clean = meeting(seed)
    dirty, scratch = dark_scratch(clean)
    err = {k: float(np.abs(DefectFinder(fill_ahead=0, side_rms=k).fill(dirty).astype(int) - clean)[scratch].mean())
           for k in (0.6, 0.0)}
    assert err[0.6] < 0.9 * err[0.0], err
