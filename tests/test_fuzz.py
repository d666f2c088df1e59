"""Fuzzing the input parsers: reference maps (CSV), configs (YAML), timecodes.
Whatever the text, they parse or raise vidcolor's own errors, nothing else."""
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vidcolor.config import Config, load_config
from vidcolor.errors import ConfigError, InputError
from vidcolor.references import ReferenceSchedule
from vidcolor.timecode import parse_start

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_DIR = Path(tempfile.mkdtemp(prefix="vidcolor-fuzz-"))
(_DIR / "ref.png").write_bytes(b"")  # a reference a map may name (the map is parsed, not the still)

starts = st.one_of(st.integers(-5, 10**6).map(str), st.text(alphabet="0123456789:.- ", max_size=16),
                   st.builds(lambda h, m, s: f"{h:02d}:{m:02d}:{s:06.3f}", st.integers(0, 99), st.integers(0, 99),
                             st.floats(0, 99)))
cells = st.one_of(starts, st.sampled_from(["ref.png", "", "missing.png", "start", "reference", "#", '"', "\x00"]),
                  st.text(max_size=12))
csv_text = st.one_of(
    st.text(max_size=300),
    st.lists(st.lists(cells, min_size=0, max_size=4).map(",".join), max_size=8).map(
        lambda rows: "\n".join(["start,reference", *rows])),
)


def _write(name: str, data) -> Path:
    p = _DIR / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))
    return p


@FUZZ
@given(st.one_of(csv_text, st.binary(max_size=300)))
def test_reference_maps_parse_or_raise_input_error(data):
    try:
        schedule = ReferenceSchedule.from_csv(_write("map.csv", data))
    except InputError:
        return
    assert schedule.rows


@FUZZ
@given(st.one_of(starts, st.text(max_size=40)))
def test_timecodes_parse_or_raise_input_error(text):
    try:
        frame, seconds = parse_start(text)
    except InputError:
        return
    assert (frame is None) != (seconds is None)
    assert (frame or 0) >= 0 and (seconds or 0) >= 0


_SECTIONS = {k: list(v) for k, v in Config().to_dict().items() if isinstance(v, dict)}
keys = st.one_of(st.sampled_from(list(Config().to_dict())), st.text(max_size=8))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=10), st.sampled_from(["auto", "cpu", "forward", "libx264", "exemplar"]))
sections = st.sampled_from(list(_SECTIONS)).flatmap(
    lambda s: st.dictionaries(st.one_of(st.sampled_from(_SECTIONS[s]), st.text(max_size=6)),
                              st.one_of(scalars, st.lists(scalars, max_size=3),
                                        st.dictionaries(st.text(max_size=4), scalars, max_size=2)),
                              max_size=4).map(lambda d: {s: d}))
configs = st.one_of(sections, st.dictionaries(keys, st.one_of(scalars, st.lists(scalars, max_size=2)), max_size=3))


@FUZZ
@given(st.one_of(configs.map(lambda d: yaml.safe_dump(d, allow_unicode=True)), st.text(max_size=200),
                 st.binary(max_size=200)))
def test_configs_parse_or_raise_config_error(data):
    try:
        cfg = load_config(_write("c.yaml", data))
    except ConfigError:
        return
    assert isinstance(cfg, Config)
