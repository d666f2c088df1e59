"""vidcolor.timecode: every timecode and time the tree parses or shows."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vidcolor.errors import InputError
from vidcolor.timecode import format_timecode, parse_seconds, parse_start, parse_timecode


@pytest.mark.parametrize("seconds, text", [
    (0, "00:00:00.000"), (65.5, "00:01:05.500"), (3723.25, "01:02:03.250"), (0.0004, "00:00:00.000"),
    (0.0005, "00:00:00.000"), (0.0015, "00:00:00.002"), (59.9996, "00:01:00.000"), (360000, "100:00:00.000"),
    (-3.0, "00:00:00.000"),
])
def test_format_timecode(seconds, text):
    assert format_timecode(seconds) == text


@settings(max_examples=200, deadline=None)
@given(ms=st.integers(0, 10**10))
def test_format_then_parse_is_the_time_to_the_millisecond(ms):
    text = format_timecode(ms / 1000)
    assert parse_timecode(text) == pytest.approx(ms / 1000, abs=1e-9)
    assert parse_start(text) == (None, pytest.approx(ms / 1000, abs=1e-9))
    assert parse_seconds(text) == pytest.approx(ms / 1000, abs=1e-9)
    assert format_timecode(parse_seconds(text)) == text


@pytest.mark.parametrize("text, seconds", [
    ("00:00:05", 5.0), ("01:02:03.250", 3723.25), ("0:00:01.5", 1.5), (" 00:01:00 ", 60.0),
    ("123:00:00", 442800.0),
])
def test_parse_timecode(text, seconds):
    assert parse_timecode(text) == seconds


@pytest.mark.parametrize("text", ["00:61:00", "00:00:60", "1:2:3", "00:01", "12.5", "", "00:00:01.", "-0:00:01"])
def test_parse_timecode_is_none_for_what_is_not_one(text):
    assert parse_timecode(text) is None


def test_a_loose_timecode_takes_any_two_digits_as_a_container_tag_may():
    assert parse_timecode("00:75:00.000000000", strict=False) == 4500.0
    assert parse_timecode("00:00:02.040000000", strict=False) == pytest.approx(2.04)
    assert parse_timecode("00:75:00") is None and parse_timecode("0:1:2", strict=False) is None


@pytest.mark.parametrize("text, expected", [
    ("0", (0, None)), ("120", (120, None)), (" 7 ", (7, None)), ("00:00:05", (None, 5.0)),
    ("01:02:03.250", (None, 3723.25)),
])
def test_parse_start(text, expected):
    assert parse_start(text) == expected


@pytest.mark.parametrize("text, message", [
    ("-1", "start '-1' is neither a frame index nor a timecode HH:MM:SS[.fff]"),
    ("1.5", "start '1.5' is neither a frame index nor a timecode HH:MM:SS[.fff]"),
    ("00:61:00", "start '00:61:00' is neither a frame index nor a timecode HH:MM:SS[.fff]"),
    ("300000:00:00", "start '300000:00:00' is out of range"),
    ("9" * 5000, "start '" + "9" * 40 + "' is out of range"),
])
def test_parse_start_says_what_is_wrong(text, message):
    with pytest.raises(InputError) as e:
        parse_start(text)
    assert str(e.value) == message
    assert isinstance(e.value, ValueError)


@pytest.mark.parametrize("text, seconds", [
    ("50", 50.0), ("12.5", 12.5), ("00:01:00.5", 60.5), ("0", 0.0), ("01:00:00", 3600.0), (7, 7.0), (2.5, 2.5),
    (" 3 ", 3.0), ("1e2", 100.0),
])
def test_parse_seconds(text, seconds):
    assert parse_seconds(text) == seconds


@pytest.mark.parametrize("text, message", [
    ("soon", "--start 'soon' is neither seconds (12.5) nor a timecode HH:MM:SS[.fff]"),
    ("1:2", "--start '1:2' is neither seconds (12.5) nor a timecode HH:MM:SS[.fff]"),
    ("00:61:00", "--start '00:61:00' is neither seconds (12.5) nor a timecode HH:MM:SS[.fff]"),
    ("", "--start '' is neither seconds (12.5) nor a timecode HH:MM:SS[.fff]"),
    ("-1", "--start '-1' must be a finite number of seconds, not negative"),
    ("nan", "--start 'nan' must be a finite number of seconds, not negative"),
    ("inf", "--start 'inf' must be a finite number of seconds, not negative"),
    (float("-inf"), "--start -inf must be a finite number of seconds, not negative"),
])
def test_parse_seconds_says_what_is_wrong(text, message):
    with pytest.raises(ValueError) as e:
        parse_seconds(text, "--start")
    assert str(e.value) == message
