"""Trained weights as safetensors: tensors only (no pickle), the network's
constructor arguments and the run's provenance (config, data, steps,
figures) in the file's metadata. Shared by every net vidcolor trains."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..errors import ModelError

__all__ = ["save_net", "load_net", "strict"]


def save_net(state: dict[str, torch.Tensor], config: dict, path: str | Path, meta: dict) -> None:
    """Write ``state`` (a state dict, plus any extra tensors) to ``path``, with ``config`` (what the
    network is built from) and ``meta`` (how it was trained) in the metadata."""
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(path),
              metadata={"net": json.dumps(config), "meta": json.dumps(meta)})


def strict(cls: type[nn.Module]) -> Callable[[dict, dict[str, torch.Tensor]], nn.Module]:
    """A ``build`` for :func:`load_net`: ``cls(**config)`` with every tensor loaded, keys and shapes exact."""
    def build(config: dict, tensors: dict[str, torch.Tensor]) -> nn.Module:
        net = cls(**config)
        net.load_state_dict(tensors, strict=True)
        return net

    return build


def load_net(path: Path, what: str, build: Callable[[dict, dict[str, torch.Tensor]], nn.Module],
             device: torch.device | str = "cpu") -> nn.Module:
    """The network in the safetensors file ``path``: ``build(config, tensors)`` makes it and loads
    the tensors (:func:`strict`, or more); returned in eval mode, frozen, on ``device``, with
    ``.meta`` (dict). A missing file, or one that is not such weights (not safetensors, wrong keys
    or shapes), is a ModelError naming it and ``what`` it should have been."""
    if not path.is_file():
        raise ModelError(f"{what} weights not found", path)
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        net = build(json.loads(meta.get("net", "{}")), tensors)
    except ModelError:
        raise
    except Exception as e:  # noqa: BLE001  (not safetensors, wrong keys or shapes)
        raise ModelError(f"cannot load {what} weights ({type(e).__name__}: {e})", path) from None
    net.meta = json.loads(meta.get("meta", "{}"))
    return net.eval().requires_grad_(False).to(device)
