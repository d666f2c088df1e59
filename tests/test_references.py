import logging
from fractions import Fraction

import pytest
import torch

from synth import make_still
from vidcolor import InputError
from vidcolor.references import ReferenceSchedule, ReferenceStore
from vidcolor.timecode import parse_start


@pytest.mark.parametrize("text, expected", [
    ("0", (0, None)), ("120", (120, None)), (" 7 ", (7, None)),
    ("00:00:05", (None, 5.0)), ("01:02:03.250", (None, 3723.25)), ("0:00:01.5", (None, 1.5)),
])
def test_parse_start(text, expected):
    assert parse_start(text) == expected


@pytest.mark.parametrize("text", ["-1", "1.5", "00:61:00", "1:2:3", "abc", "", "00:00:60"])
def test_parse_start_rejects(text):
    with pytest.raises(ValueError):
        parse_start(text)


def _map(tmp_path, body, name="map.csv"):
    p = tmp_path / name
    p.write_text(body)
    return p


def test_map_rows_resolve_relative_paths_and_pick_largest_start(tmp_path):
    (tmp_path / "refs").mkdir()
    a = make_still(tmp_path / "refs" / "a.png")
    b = make_still(tmp_path / "refs" / "b.png", shot=1)
    c = make_still(tmp_path / "c.png", shot=2)
    sub = tmp_path / "maps"
    sub.mkdir()
    p = _map(sub, f"start,reference\n0,../refs/a.png\n00:00:02,../refs/b.png\n30,{c}\n")
    s = ReferenceSchedule.from_csv(p)
    s.bind(Fraction(10))  # 10 fps: the timecode row starts at frame 20
    assert [r.reference.resolve() for r in s.rows] == [a.resolve(), b.resolve(), c.resolve()]
    pick = lambda i: s.lookup(i, i / 10).reference.name  # noqa: E731
    assert [pick(i) for i in (0, 19, 20, 29, 30, 500)] == ["a.png", "a.png", "b.png", "b.png", "c.png", "c.png"]


def test_map_rows_need_not_be_sorted_and_may_be_empty_cells(tmp_path):
    make_still(tmp_path / "a.png")
    p = _map(tmp_path, "start,reference\n50,a.png\n0,\n")
    s = ReferenceSchedule.from_csv(p)
    s.bind(Fraction(25))
    assert s.lookup(0, 0).reference is None and s.lookup(50, 2.0).reference.name == "a.png"
    assert s.needs_automatic


def test_map_bom_and_blank_lines(tmp_path):
    make_still(tmp_path / "a.png")
    p = tmp_path / "m.csv"
    p.write_bytes("\ufeffStart , Reference\r\n\r\n0,a.png\r\n".encode())
    assert len(ReferenceSchedule.from_csv(p).rows) == 1


@pytest.mark.parametrize("body, match", [
    ("", "empty"),
    ("start,reference\n", "no rows"),
    ("frame,still\n0,a.png\n", "header must be 'start,reference'"),
    ("start,reference\nzero,a.png\n", "line 2: start 'zero' is neither"),
    ("start,reference\n0,a.png,extra\n", "line 2: expected 2 cells"),
    ("start,reference\n0,a.png\n0,a.png\n", "line 3: start 0 repeats line 2"),
    ("start,reference\n0,missing.png\n", "line 2: reference missing.png not found"),
])
def test_bad_maps_name_file_and_line(tmp_path, body, match):
    make_still(tmp_path / "a.png")
    p = _map(tmp_path, body)
    with pytest.raises(InputError, match=match) as e:
        ReferenceSchedule.from_csv(p)
    assert str(p) in str(e.value)


def test_map_not_utf8(tmp_path):
    p = tmp_path / "m.csv"
    p.write_bytes(b"start,reference\n0,\xff\xfe.png\n")
    with pytest.raises(InputError, match="not UTF-8"):
        ReferenceSchedule.from_csv(p)


def test_folder_takes_first_image_in_natural_order(tmp_path):
    for name in ("shot10.png", "shot2.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    make_still(tmp_path / "shot10.png")
    make_still(tmp_path / "shot2.png")
    s = ReferenceSchedule.single(tmp_path)
    assert s.rows[0].reference.name == "shot2.png"


def test_empty_folder(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(InputError, match="no images"):
        ReferenceSchedule.single(tmp_path)


def test_store_loads_once_and_downscales(tmp_path):
    p = make_still(tmp_path / "big.png", w=300, h=200)
    store = ReferenceStore(torch.device("cpu"), max_side=100)
    t = store.get(p)
    assert t.shape == (1, 3, 67, 100) and 0 <= t.min() and t.max() <= 1
    assert store.get(p) is t


def test_store_rejects_non_images(tmp_path):
    p = tmp_path / "x.png"
    p.write_text("not an image")
    with pytest.raises(InputError, match="not a readable image"):
        ReferenceStore(torch.device("cpu")).get(p)


def test_store_warns_on_black_and_white_reference(tmp_path, caplog):
    p = make_still(tmp_path / "g.png", gray=True)
    with caplog.at_level(logging.WARNING, logger="vidcolor"):
        ReferenceStore(torch.device("cpu")).get(p)
    assert "looks black and white" in caplog.text


def test_reference_store_keeps_only_the_stills_used_last(tmp_path):
    """A film with a still per shot must not hold every still at once (memory flat in the film's length)."""
    from synth import make_still
    from vidcolor.references import ReferenceStore

    paths = [make_still(tmp_path / f"s{i}.png", 64, 48, shot=i) for i in range(12)]
    store = ReferenceStore(torch.device("cpu"), capacity=3)
    first = store.get(paths[0])
    for p in paths:
        store.get(p)
    assert len(store._cache) == 3 and set(store._cache) == set(paths[-3:])
    again = store.get(paths[0])  # read again from disk: the same picture
    assert again is not first and torch.equal(again, first)
    assert store.get(paths[0]) is again
