"""FrameSequencer: the decoder's reorder-and-repair rules, on made-up timestamps (no media)."""
from __future__ import annotations

import random
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vidcolor.errors import InputError
from vidcolor.io.sequencer import REORDER, FrameSequencer, Truncation, damage_note

TB = Fraction(1, 1000)  # milliseconds
RATE = Fraction(25)  # a frame every 40 ticks
STEP = 40


def seq(**kw) -> FrameSequencer:
    kw.setdefault("path", "film.mkv")
    return FrameSequencer(TB, RATE, **kw)


def feed(s: FrameSequencer, events, **finish) -> list:
    """Events: ('due', pts), ('lost', pts, why), ('frame', pts, payload[, why]). All frames out."""
    out = []
    for e in events:
        if e[0] == "due":
            s.due(e[1])
        elif e[0] == "lost":
            s.lost(e[1], e[2])
        else:
            out += list(s.frame(*e[1:]))
    return out + list(s.finish(**finish))


def packets(pts_list, payloads=None):
    """The usual file: each packet's pts, then its frame."""
    ev = []
    for i, p in enumerate(pts_list):
        ev += [("due", p), ("frame", p, payloads[i] if payloads else f"f{p}")]
    return ev


def rows(frames):
    return [(f.index, f.pts, f.luma, f.damaged) for f in frames]


def test_frames_in_order_pass_through_numbered_from_zero():
    s = seq()
    out = feed(s, packets([0, 40, 80, 120]), expected=4)
    assert rows(out) == [(0, 0, "f0", False), (1, 40, "f40", False), (2, 80, "f80", False), (3, 120, "f120", False)]
    assert out[1].time == pytest.approx(0.04)
    assert s.damaged == [] and s.truncated is None


def test_a_frame_is_held_until_reorder_later_ones_have_come():
    s = seq(reorder=3)
    got = [len(list(s.frame(p * STEP, p))) for p in range(6)]
    assert got == [0, 0, 0, 1, 1, 1]
    assert [f.pts for f in s.finish()] == [3 * STEP, 4 * STEP, 5 * STEP]


def test_frames_out_of_pts_order_come_out_sorted():
    order = [0, 80, 40, 160, 120, 200]  # a B-frame stream whose decoder gives them out of order
    out = feed(seq(), [("frame", p, p) for p in order])
    assert [f.pts for f in out] == sorted(order) and [f.index for f in out] == list(range(6))
    assert not any(f.damaged for f in out)


def test_a_repeated_pts_is_dropped_and_the_first_frame_kept():
    out = feed(seq(), packets([0, 40]) + [("frame", 40, "again")] + packets([80]))
    assert rows(out) == [(0, 0, "f0", False), (1, 40, "f40", False), (2, 80, "f80", False)]


def test_a_frame_later_than_the_reorder_window_is_dropped():
    s = seq(reorder=2)
    ev = packets([0, 40, 120, 160, 200]) + [("frame", 80, "late")]
    out = feed(s, ev, expected=0)
    assert "late" not in [f.luma for f in out]
    # its packet was due and no frame came in time: the frame before stands in, marked damaged
    ev = [("due", p) for p in (0, 40, 80, 120, 160, 200)] + [("frame", p, f"f{p}") for p in (0, 40, 120, 160, 200)] \
        + [("frame", 80, "late")]
    s = seq(reorder=2)
    out = feed(s, ev)
    assert rows(out)[2] == (2, 80, "f40", True) and s.damaged == [2]


def test_a_packet_whose_frame_never_comes_repeats_the_previous_good_frame():
    ev = [("due", 0), ("frame", 0, "a"), ("due", 40), ("due", 80), ("frame", 80, "c")]
    s = seq()
    out = feed(s, ev)
    assert rows(out) == [(0, 0, "a", False), (1, 40, "a", True), (2, 80, "c", False)]
    assert s.damaged == [1]


def test_a_due_pts_within_a_field_of_a_frame_is_not_a_frame_of_its_own():
    # interlaced: a packet per field, 20 ticks apart, one frame every 40 (three quarters of a frame is 30)
    ev = [("due", 0), ("due", 20), ("frame", 0, "a"), ("due", 40), ("due", 60), ("frame", 40, "b")]
    out = feed(seq(), ev)
    assert rows(out) == [(0, 0, "a", False), (1, 40, "b", False)]
    # a field just before a frame (a gap of two frames ahead of it is one frame missing, not two)
    ev = [("due", 0), ("frame", 0, "a"), ("due", 40), ("due", 70), ("due", 80), ("frame", 80, "c")]
    out = feed(seq(), ev)
    assert rows(out) == [(0, 0, "a", False), (1, 40, "a", True), (2, 80, "c", False)]


def test_a_failed_packet_with_a_pts_is_repaired_at_that_pts():
    s = seq(max_damaged=0)
    ev = packets([0]) + [("due", 40), ("lost", 40, "Invalid data found")] + packets([80])
    with pytest.raises(InputError, match=r"film\.mkv: cannot be decoded from frame 1 \(00:00:00\.040\) on: more than "
                                         r"0 damaged frames in a row, up to frame 1 \(Invalid data found;"):
        feed(s, ev)


def test_a_failed_packet_without_a_pts_is_placed_a_frame_after_the_newest():
    s = seq()
    out = feed(s, packets([0, 40]) + [("lost", None, "broken")] + packets([120]))
    assert rows(out) == [(0, 0, "f0", False), (1, 40, "f40", False), (2, 80, "f40", True), (3, 120, "f120", False)]


def test_frames_lost_at_the_very_start_take_the_first_good_frame():
    s = seq()
    out = feed(s, [("lost", None, "x"), ("lost", None, "x")] + packets([80, 120]))
    assert rows(out) == [(0, 0, "f80", True), (1, 40, "f80", True), (2, 80, "f80", False), (3, 120, "f120", False)]
    assert s.damaged == [0, 1]


def test_a_frame_of_another_size_is_repaired_and_its_reason_named():
    s = seq(max_damaged=1)
    ev = packets([0]) + [("due", 40), ("frame", 40, None, "frame size changes from 64x48 to 32x24")]
    out = feed(s, ev + packets([80]))
    assert rows(out) == [(0, 0, "f0", False), (1, 40, "f0", True), (2, 80, "f80", False)]
    s = seq(max_damaged=1)
    ev += [("due", 80), ("frame", 80, None, "frame size changes from 64x48 to 32x24")] + packets([120])
    with pytest.raises(InputError, match=r"from frame 1 \(00:00:00\.040\) on: .* up to frame 2 \(frame size changes"):
        feed(s, ev)


def test_damaged_runs_are_counted_in_a_row_only():
    s = seq(max_damaged=2)
    ev = []
    for k in range(4):  # two lost, one good, two lost, one good...
        base = 3 * k * STEP
        ev += packets([base]) + [("due", base + STEP), ("due", base + 2 * STEP)]
    out = feed(s, ev + packets([12 * STEP]))
    assert len(out) == 13 and s.damaged == [1, 2, 4, 5, 7, 8, 10, 11]
    with pytest.raises(InputError, match="more than 2 damaged frames in a row"):
        feed(seq(max_damaged=2), packets([0]) + [("due", p * STEP) for p in (1, 2, 3)] + packets([4 * STEP]))


def test_the_error_time_is_measured_from_the_first_frame():
    s = seq(origin=10_000, max_damaged=0)
    with pytest.raises(InputError, match=r"frame 1 \(00:00:00\.040\)"):
        feed(s, packets([10_000]) + [("due", 10_040)] + packets([10_080]))


def test_a_file_with_fewer_frames_than_its_header_promises_is_truncated():
    s = seq()
    out = feed(s, packets([p * STEP for p in range(10)]) + [("due", 400), ("due", 440)], expected=100)
    assert len(out) == 10 and not s.damaged  # the frames due past the last good one are not invented
    assert s.truncated == Truncation(10, 0.4, 100, "its header promises 100 frames")
    assert s.truncated.describe() == ("is truncated: the file ends at 00:00:00.400 (after frame 9; 10 of 100 frames "
                                      "decoded; its header promises 100 frames)")


def test_a_frame_or_two_short_of_the_header_is_not_truncation():
    s = seq()
    feed(s, packets([p * STEP for p in range(98)]), expected=100)
    assert s.truncated is None


def test_a_file_shorter_than_its_header_duration_is_truncated():
    s = seq()
    feed(s, packets([p * STEP for p in range(25)]), duration=10.0)
    assert s.truncated is not None and s.truncated.reason == "its header gives a length of 00:00:10.000"
    assert s.truncated.time == pytest.approx(1.0)
    s = seq()
    feed(s, packets([p * STEP for p in range(25)]), duration=1.2)  # within half a second: whole
    assert s.truncated is None


def test_a_demux_error_truncates_at_the_last_good_frame():
    s = seq()
    out = feed(s, packets([0, 40, 80]) + [("lost", 120, "x"), ("due", 120), ("due", 160)],
               error="unreadable from there on: Invalid data")
    assert [f.pts for f in out] == [0, 40, 80]
    assert s.truncated.reason == "unreadable from there on: Invalid data" and s.truncated.frames == 3


def test_a_whole_file_has_its_missing_tail_frames_repaired():
    s = seq()
    out = feed(s, packets([0, 40, 80]) + [("due", 120), ("lost", 120, "x"), ("due", 160)], expected=5)
    assert rows(out)[3:] == [(3, 120, "f80", True), (4, 160, "f80", True)]
    assert s.damaged == [3, 4] and s.truncated is None


def test_after_a_seek_frames_before_the_floor_are_dropped_and_numbering_starts_at_first_index():
    s = seq(first_index=50, floor=2000)
    out = feed(s, packets([1920, 1960, 2000, 2040]))
    assert rows(out) == [(50, 2000, "f2000", False), (51, 2040, "f2040", False)]


def test_skip_numbers_frames_without_giving_them_out():
    s = seq(skip=3)
    ev = packets([0, 40]) + [("due", 80)] + packets([120, 160]) + [("due", 200)] + packets([240])
    out = feed(s, ev, expected=100)  # skip: the header's count is not checked (a part of the film)
    assert rows(out) == [(3, 120, "f120", False), (4, 160, "f160", False), (5, 200, "f160", True),
                         (6, 240, "f240", False)]
    assert s.damaged == [5] and s.truncated is None


def test_frames_without_a_pts_follow_the_newest():
    out = feed(seq(), [("frame", None, "a"), ("frame", None, "b"), ("frame", 200, "c"), ("frame", None, "d")])
    assert [(f.pts, f.luma) for f in out] == [(0, "a"), (40, "b"), (200, "c"), (240, "d")]


def test_unknown_rate_steps_one_tick():
    s = FrameSequencer(TB, None)
    out = feed(s, [("lost", None, "x"), ("frame", None, "a"), ("frame", None, "b")])
    assert [(f.pts, f.damaged) for f in out] == [(0, True), (1, False), (2, False)]


def test_damage_note_counts_and_lists_the_first_ten():
    assert damage_note(1, [7]) == "1 damaged frame (7) could not be decoded: it repeats the good frame before it"
    assert damage_note(12, list(range(12))) == ("12 damaged frames (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ...) could not be "
                                                "decoded: each repeats the good frame before it")


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 80), seed=st.integers(0, 10**6), reorder=st.integers(1, REORDER))
def test_any_shuffle_within_the_reorder_window_comes_out_whole_and_sorted(n, seed, reorder):
    rng = random.Random(seed)
    # frame p comes at p + u, u < reorder: fewer than `reorder` later frames can come before it
    order = sorted(range(n), key=lambda p: p + rng.uniform(0, reorder))
    s = seq(reorder=reorder)
    out = []
    for p in order:
        s.due(p * STEP)
        out += list(s.frame(p * STEP, p))
    out += list(s.finish(expected=n))
    assert [f.luma for f in out] == list(range(n)), order
    assert not s.damaged and s.truncated is None
