import logging
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from synth import make_clip, make_still  # noqa: E402


@pytest.fixture
def clip(tmp_path):
    """A 24-frame black-and-white 64x48 H.264 clip with stereo AAC."""
    return make_clip(tmp_path / "clip.mp4", n=24, audio=True)


@pytest.fixture
def still(tmp_path):
    """A colour reference still."""
    return make_still(tmp_path / "ref.png")


@pytest.fixture(autouse=True)
def _no_error_logs(caplog):
    """Any ERROR logged by vidcolor fails the test (warnings are fine)."""
    yield
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR and r.name.startswith("vidcolor")]
    assert not errors, [r.getMessage() for r in errors]


@pytest.fixture(scope="session")
def auto_weights(tmp_path_factory):
    """Weights for the automatic colorizer: random (tests cannot train), far enough from
    neutral that what it colours comes out coloured."""
    import torch

    from vidcolor.models.auto import AutoNet, save_auto

    torch.manual_seed(0)
    net = AutoNet()
    with torch.no_grad():
        for q in net.parameters():
            q.normal_(0, 0.05)
    path = tmp_path_factory.mktemp("auto") / "auto.safetensors"
    save_auto(net, path, torch.full((net.config["bins"],), 1.0 / net.config["bins"]), {"test": True})
    return path
