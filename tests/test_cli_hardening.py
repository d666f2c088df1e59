"""Hostile values and untimely signals at the command line: NaN and
infinities, absurd thread counts, a y4m header claiming a huge frame,
Ctrl-C while the program is still starting. Each: one line, a non-zero
exit, no traceback, nothing written."""
import dataclasses
import math
import os
import signal
import subprocess
import sys
import typing

import pytest
from click.testing import CliRunner

from procs import ROOT, maps, spawn, wait_for
from vidcolor import ConfigError, load_config
from vidcolor.cli import main
from vidcolor.config import Config


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], env={"VIDCOLOR_DEBUG": ""})


# -- NaN and infinities --------------------------------------------------------------------------

@pytest.mark.parametrize("option", ["--saturation", "--temperature"])
@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e999"])
def test_float_options_refuse_nan_and_infinity(tmp_path, clip, still, option, value):
    out = tmp_path / "out.mp4"
    r = run(clip, "-r", still, "-o", out, option, value)
    assert r.exit_code == 2
    assert f"Invalid value for '{option}': '{value}' is not a finite number." in r.stderr
    assert "Traceback" not in r.stderr and not out.exists()


def test_training_minutes_refuse_infinity(tmp_path):
    r = run("train", "auto", "-c", tmp_path / "t.yaml", "--minutes", "inf")
    assert r.exit_code == 2 and "Invalid value for '--minutes': 'inf' is not a finite number." in r.stderr


def test_finite_float_options_keep_their_ranges(tmp_path, clip, still):
    r = run(clip, "-r", still, "-o", tmp_path / "out.mp4", "--saturation", "5")
    assert r.exit_code == 2 and "Invalid value for '--saturation': 5.0 is not in the range 0<=x<=4." in r.stderr
    r = run(clip, "-r", still, "-o", tmp_path / "out.mp4", "--temperature", "0")
    assert r.exit_code == 2 and "--temperature" in r.stderr


def _float_keys(cls=Config, prefix=""):
    """Every float field of the config, dotted (``exemplar.saturation``)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            yield from _float_keys(tp, f"{prefix}{f.name}.")
        elif tp is float or float in typing.get_args(tp):
            yield f"{prefix}{f.name}"


FLOAT_KEYS = list(_float_keys())


def test_the_config_has_float_values():
    assert len(FLOAT_KEYS) > 20 and "exemplar.saturation" in FLOAT_KEYS and "temporal.strength" in FLOAT_KEYS


@pytest.mark.parametrize("key", FLOAT_KEYS)
def test_every_float_config_value_refuses_nan_and_infinity(key):
    for value in (math.nan, math.inf, -math.inf):
        with pytest.raises(ConfigError, match=f"^command line: {key} must be a finite number, got {value!r}$"):
            load_config(overrides={key: value})


@pytest.mark.parametrize("text", [".nan", ".inf", "-.inf", ".NaN"])
def test_nan_in_a_yaml_file_is_one_line_naming_the_file_and_key(tmp_path, clip, still, text):
    c = tmp_path / "c.yaml"
    c.write_text(f"exemplar:\n  saturation: {text}\n")
    out = tmp_path / "out.mp4"
    r = run(clip, "-r", still, "-c", c, "-o", out)
    assert r.exit_code == 1 and not out.exists()
    assert r.stderr.startswith(f"vidcolor: error: {c}: exemplar.saturation must be a finite number, got ")
    assert r.stderr.count("\n") == 1


# -- threads -------------------------------------------------------------------------------------

def test_absurd_runtime_threads_are_refused_with_the_limit(tmp_path, clip, still):
    most = 4 * (os.cpu_count() or 1)
    c = tmp_path / "c.yaml"
    c.write_text("runtime:\n  threads: 100000\n")
    r = run(clip, "-r", still, "-c", c, "-o", tmp_path / "out.mp4")
    assert r.exit_code == 1
    assert r.stderr == (f"vidcolor: error: {c}: runtime.threads must be at most {most} (4 per CPU core; this "
                        f"machine has {os.cpu_count()}), got 100000\n")
    c.write_text(f"runtime:\n  threads: {most}\n")
    assert load_config(c).runtime.threads == most


def test_threads_options_are_bounded_by_the_cores():
    most = 4 * (os.cpu_count() or 1)
    r = run("train", "auto", "-c", "t.yaml", "--threads", most + 1)
    assert r.exit_code == 2 and "Invalid value for '--threads'" in r.stderr
    if most + 1 <= 256:  # beyond, the option's own range refuses it first
        assert f"{most + 1} is more than 4 threads per CPU core (at most {most}" in r.stderr
    r = run("render-segment", "manifest.json", "0", "--threads", min(most + 1, 1024))
    assert r.exit_code == 2 and "Invalid value for '--threads'" in r.stderr


# -- a y4m header claiming a huge frame ----------------------------------------------------------

@pytest.mark.parametrize("size", [(60000, 60000), (16384, 16384), (12000, 9000)])
def test_huge_y4m_header_names_the_size_limit(tmp_path, still, size):
    w, h = size
    src = tmp_path / "huge.y4m"
    src.write_bytes(f"YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 C420jpeg\nFRAME\n".encode() + bytes(4096))
    r = run(src, "-r", still, "-o", tmp_path / "out.mp4")
    assert r.exit_code == 1
    assert r.stderr == f"vidcolor: error: {src}: frames are too large ({w}x{h}; at most 100 megapixels)\n"


def test_a_damaged_y4m_header_is_still_not_readable(tmp_path, still):
    src = tmp_path / "bad.y4m"
    src.write_bytes(b"YUV4MPEG2 Wx H? F25:1\nFRAME\n" + bytes(64))
    r = run(src, "-r", still, "-o", tmp_path / "out.mp4")
    assert r.exit_code == 1 and r.stderr.startswith(f"vidcolor: error: {src}: ") and r.stderr.count("\n") == 1


# -- Ctrl-C while starting -----------------------------------------------------------------------

def _one_line_130(p: subprocess.Popen) -> str:
    _, err = p.communicate(timeout=60)
    assert "Traceback" not in err, err
    # 130, or (rarely, when the interrupt lands in the interpreter's own exit path: seen once in ~600
    # runs under load, cause not found) killed by SIGINT, which a shell reports as 130 all the same
    assert p.returncode in (130, -signal.SIGINT), err
    assert err.splitlines() == ["vidcolor: interrupted; no output was written"], err
    return err


def test_ctrl_c_while_torch_is_imported_is_one_line_and_130(tmp_path, clip, still):
    out = tmp_path / "out.mp4"
    p = spawn(clip, "-r", still, "-o", out)
    wait_for(lambda: "libtorch" in maps(p.pid), p, poll=0.002)  # torch's libraries are being loaded
    p.send_signal(signal.SIGINT)
    _one_line_130(p)
    assert not out.exists() and not list(tmp_path.glob(".*vidcolor-tmp*"))


def _catches(pid: int, sig: int) -> bool:
    """Whether process ``pid`` has a handler for ``sig`` (Linux: SigCgt in /proc/PID/status)."""
    try:
        status = open(f"/proc/{pid}/status").read()
    except OSError:
        return False
    mask = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("SigCgt:")), 16)
    return bool(mask >> (sig - 1) & 1)


def test_ctrl_c_as_the_command_begins_is_one_line_and_130(tmp_path, clip, still):
    # the main group's callback traps SIGTERM first thing: from then on the command's own imports run
    p = spawn(clip, "-r", still, "-o", tmp_path / "out.mp4")
    wait_for(lambda: _catches(p.pid, signal.SIGTERM), p, poll=0.002)
    p.send_signal(signal.SIGINT)
    _one_line_130(p)


def test_importing_vidcolor_loads_no_torch():
    code = ("import sys, vidcolor, vidcolor.cli; assert 'torch' not in sys.modules, 'torch loaded'; "
            "assert 'av' not in sys.modules and 'cv2' not in sys.modules; "
            "assert set(vidcolor.__all__) <= set(dir(vidcolor)); "
            "from vidcolor import colorize_video, InputError, load_config; "
            "assert 'torch' in sys.modules and vidcolor.colorize_video is colorize_video; "
            "assert issubclass(InputError, ValueError) and load_config().colorizer")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    with pytest.raises(AttributeError, match="has no attribute 'nonesuch'"):
        import vidcolor

        vidcolor.nonesuch  # noqa: B018
