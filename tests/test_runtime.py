"""Where and how the networks run: micro-batches on a CPU, mixed precision and batch size on a GPU.

The CUDA tests run where PyTorch sees a GPU and are skipped elsewhere; the
decisions themselves (precision, batch size from free memory) are tested
everywhere with a fake device.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from test_exemplar import L_of, colorizer, red_square_scene, to_t
from vidcolor.config import Config, load_config
from vidcolor.errors import ConfigError
from vidcolor.runtime import auto_batch_size, precision

CUDA = torch.device("cuda")
CPU = torch.device("cpu")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")


def cfg(**runtime) -> Config:
    return load_config(overrides={f"runtime.{k}": v for k, v in runtime.items()})


def test_precision_is_float32_on_a_cpu_and_half_on_a_gpu_by_default():
    assert precision(cfg(), CPU) is None
    assert precision(cfg(precision="fp16"), CPU) is None  # no fast half arithmetic on a CPU
    assert precision(cfg(), CUDA) is torch.float16
    assert precision(cfg(precision="bf16"), CUDA) is torch.bfloat16
    assert precision(cfg(precision="fp32"), CUDA) is None


def test_bad_precision_and_batch_size_are_config_errors():
    with pytest.raises(ConfigError, match="runtime.precision"):
        cfg(precision="fp8")
    with pytest.raises(ConfigError, match="runtime.batch_size"):
        cfg(batch_size=-1)


def test_batch_size_zero_is_sized_to_free_gpu_memory(monkeypatch):
    assert auto_batch_size(cfg(batch_size=5), CUDA, (1080, 1920)) == 5
    assert auto_batch_size(cfg(batch_size=0), CPU, (1080, 1920)) == 8
    free = {"bytes": 40 * 2**30}
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free["bytes"], 80 * 2**30))
    big = auto_batch_size(cfg(batch_size=0), CUDA, (1080, 1920))
    small = auto_batch_size(cfg(batch_size=0), CUDA, (480, 854))
    assert 1 <= big <= small <= 64
    free["bytes"] = 3 * 2**30
    assert auto_batch_size(cfg(batch_size=0), CUDA, (1080, 1920)) < big
    free["bytes"] = 1
    assert auto_batch_size(cfg(batch_size=0), CUDA, (2160, 3840)) == 1


def test_autocast_is_a_no_op_on_a_cpu():
    c = colorizer()
    c.set_precision(torch.float16)
    with c.autocast():
        y = torch.ones(2, 2) @ torch.ones(2, 2)
    assert y.dtype == torch.float32


def test_frame_by_frame_equals_the_whole_batch_at_once():
    """The CPU's micro-batches of one frame give what one pass over the batch gives."""
    ref = to_t(red_square_scene())
    L = torch.cat([L_of(red_square_scene(dx=d, dy=d // 2)) for d in (0, 3, 6, 9)])
    outs, confs = [], []
    for micro in (None, 4):
        c = colorizer()
        c.micro_batch = micro
        c.begin_shot(ref)
        outs.append(c.colorize(L))
        confs.append(c.confidence)
    torch.testing.assert_close(outs[0], outs[1], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(confs[0], confs[1])
    assert confs[0].shape[0] == 4


@needs_cuda
def test_half_precision_on_the_gpu_matches_float32():
    ref = to_t(red_square_scene())
    L = torch.cat([L_of(red_square_scene(dx=d)) for d in (0, 4, 8)])
    outs = []
    for amp in (None, torch.float16):
        c = get_gpu_colorizer()
        c.set_precision(amp)
        c.begin_shot(ref)
        outs.append(c.colorize(L.cuda()).float().cpu())
    # chroma in [-0.5, 0.5]: within a code value of 8-bit video
    assert (outs[0] - outs[1]).abs().mean() < 1 / 255
    assert np.isfinite(outs[1].numpy()).all()


def get_gpu_colorizer():
    from vidcolor.models import get_colorizer

    return get_colorizer("exemplar", device=CUDA)


@needs_cuda
def test_gpu_batch_size_zero_runs(tmp_path):
    from synth import make_clip, make_still
    from vidcolor.pipeline import colorize_video

    clip = make_clip(tmp_path / "c.mp4", n=12, w=160, h=96)
    still = make_still(tmp_path / "s.png", 160, 96)
    rep = colorize_video(clip, tmp_path / "o.mp4", reference=still,
                         config=cfg(device="cuda", batch_size=0))
    assert rep.frames == 12 and rep.device.startswith("cuda")


def test_profile_prints_every_stage_and_the_worker_threads(tmp_path):
    """--profile: the main thread's stages and the worker threads' busy time, in the
    report too; the stages account for the run's time."""
    import json

    from click.testing import CliRunner

    from synth import make_clip, make_still
    from vidcolor.cli import main

    clip = make_clip(tmp_path / "c.mp4", n=16, w=96, h=64, audio=True)
    still = make_still(tmp_path / "s.png", 96, 64)
    rep = tmp_path / "r.json"
    r = CliRunner().invoke(main, [str(clip), "-r", str(still), "-o", str(tmp_path / "o.mp4"), "-q", "--profile",
                                  "--report", str(rep)], env={"VIDCOLOR_DEBUG": ""})
    assert r.exit_code == 0, r.output
    for stage in ("colorize", "temporal", "decode (thread)", "encode (thread)", "frame flow (thread)",
                  "reference flow (thread)", "wall"):
        assert stage in r.output
    stages = json.loads(rep.read_text())["stages"]
    assert stages["encode (thread)"] > 0 and stages["reference flow (thread)"] > 0
    seconds = json.loads(rep.read_text())["seconds"]
    main_thread = sum(v for k, v in stages.items() if not k.endswith("(thread)"))
    assert main_thread <= seconds * 1.01


def test_threads_zero_gives_pytorch_half_the_cores_this_process_may_use(monkeypatch):
    import vidcolor.runtime as rt

    assert rt.torch_threads(3) == 3  # a number given is taken as it is
    for cores, want in ((1, 1), (2, 1), (3, 1), (16, 8)):
        monkeypatch.setattr(rt.os, "sched_getaffinity", lambda pid, n=cores: set(range(n)), raising=False)
        assert rt.torch_threads(0) == want


@pytest.mark.parametrize("threads", [0, 2])
def test_a_run_sets_pytorchs_threads_from_the_config(tmp_path, threads):
    from synth import make_still
    from vidcolor.photo import colorize_image
    from vidcolor.runtime import torch_threads

    before = torch.get_num_threads()
    photo = make_still(tmp_path / "p.png", 64, 48)
    try:
        torch.set_num_threads(3)
        colorize_image(photo, tmp_path / "o.png", reference=photo, config=cfg(threads=threads))
        assert torch.get_num_threads() == torch_threads(threads) != 3
    finally:
        torch.set_num_threads(before)
