"""Zhang et al.'s released networks: the documented state-dict layout loads and
runs; anything else is refused with the file and the first wrong key (CPU, no real weights)."""
from __future__ import annotations

import pytest
import torch

from vidcolor import ModelError
from vidcolor.config import ZhangConfig
from vidcolor.models import get_colorizer
from vidcolor.models.zhang import ECCV16, SIGGRAPH17, load_zhang_state

CPU = torch.device("cpu")

# The layouts of the released files, as documented (reference/zhang_state_dicts.md):
# key, shape ("-" for a scalar).
ECCV16_LAYOUT = """
    model1.0.weight [64, 1, 3, 3]
    model1.0.bias [64]
    model1.2.weight [64, 64, 3, 3]
    model1.2.bias [64]
    model1.4.weight [64]
    model1.4.bias [64]
    model1.4.running_mean [64]
    model1.4.running_var [64]
    model1.4.num_batches_tracked []
    model2.0.weight [128, 64, 3, 3]
    model2.0.bias [128]
    model2.2.weight [128, 128, 3, 3]
    model2.2.bias [128]
    model2.4.weight [128]
    model2.4.bias [128]
    model2.4.running_mean [128]
    model2.4.running_var [128]
    model2.4.num_batches_tracked []
    model3.0.weight [256, 128, 3, 3]
    model3.0.bias [256]
    model3.2.weight [256, 256, 3, 3]
    model3.2.bias [256]
    model3.4.weight [256, 256, 3, 3]
    model3.4.bias [256]
    model3.6.weight [256]
    model3.6.bias [256]
    model3.6.running_mean [256]
    model3.6.running_var [256]
    model3.6.num_batches_tracked []
    model4.0.weight [512, 256, 3, 3]
    model4.0.bias [512]
    model4.2.weight [512, 512, 3, 3]
    model4.2.bias [512]
    model4.4.weight [512, 512, 3, 3]
    model4.4.bias [512]
    model4.6.weight [512]
    model4.6.bias [512]
    model4.6.running_mean [512]
    model4.6.running_var [512]
    model4.6.num_batches_tracked []
    model5.0.weight [512, 512, 3, 3]
    model5.0.bias [512]
    model5.2.weight [512, 512, 3, 3]
    model5.2.bias [512]
    model5.4.weight [512, 512, 3, 3]
    model5.4.bias [512]
    model5.6.weight [512]
    model5.6.bias [512]
    model5.6.running_mean [512]
    model5.6.running_var [512]
    model5.6.num_batches_tracked []
    model6.0.weight [512, 512, 3, 3]
    model6.0.bias [512]
    model6.2.weight [512, 512, 3, 3]
    model6.2.bias [512]
    model6.4.weight [512, 512, 3, 3]
    model6.4.bias [512]
    model6.6.weight [512]
    model6.6.bias [512]
    model6.6.running_mean [512]
    model6.6.running_var [512]
    model6.6.num_batches_tracked []
    model7.0.weight [512, 512, 3, 3]
    model7.0.bias [512]
    model7.2.weight [512, 512, 3, 3]
    model7.2.bias [512]
    model7.4.weight [512, 512, 3, 3]
    model7.4.bias [512]
    model7.6.weight [512]
    model7.6.bias [512]
    model7.6.running_mean [512]
    model7.6.running_var [512]
    model7.6.num_batches_tracked []
    model8.0.weight [512, 256, 4, 4]
    model8.0.bias [256]
    model8.2.weight [256, 256, 3, 3]
    model8.2.bias [256]
    model8.4.weight [256, 256, 3, 3]
    model8.4.bias [256]
    model8.6.weight [313, 256, 1, 1]
    model8.6.bias [313]
    model_out.weight [2, 313, 1, 1]
"""
SIGGRAPH17_LAYOUT = """
    model1.0.weight [64, 4, 3, 3]
    model1.0.bias [64]
    model1.2.weight [64, 64, 3, 3]
    model1.2.bias [64]
    model1.4.weight [64]
    model1.4.bias [64]
    model1.4.running_mean [64]
    model1.4.running_var [64]
    model1.4.num_batches_tracked []
    model2.0.weight [128, 64, 3, 3]
    model2.0.bias [128]
    model2.2.weight [128, 128, 3, 3]
    model2.2.bias [128]
    model2.4.weight [128]
    model2.4.bias [128]
    model2.4.running_mean [128]
    model2.4.running_var [128]
    model2.4.num_batches_tracked []
    model3.0.weight [256, 128, 3, 3]
    model3.0.bias [256]
    model3.2.weight [256, 256, 3, 3]
    model3.2.bias [256]
    model3.4.weight [256, 256, 3, 3]
    model3.4.bias [256]
    model3.6.weight [256]
    model3.6.bias [256]
    model3.6.running_mean [256]
    model3.6.running_var [256]
    model3.6.num_batches_tracked []
    model4.0.weight [512, 256, 3, 3]
    model4.0.bias [512]
    model4.2.weight [512, 512, 3, 3]
    model4.2.bias [512]
    model4.4.weight [512, 512, 3, 3]
    model4.4.bias [512]
    model4.6.weight [512]
    model4.6.bias [512]
    model4.6.running_mean [512]
    model4.6.running_var [512]
    model4.6.num_batches_tracked []
    model5.0.weight [512, 512, 3, 3]
    model5.0.bias [512]
    model5.2.weight [512, 512, 3, 3]
    model5.2.bias [512]
    model5.4.weight [512, 512, 3, 3]
    model5.4.bias [512]
    model5.6.weight [512]
    model5.6.bias [512]
    model5.6.running_mean [512]
    model5.6.running_var [512]
    model5.6.num_batches_tracked []
    model6.0.weight [512, 512, 3, 3]
    model6.0.bias [512]
    model6.2.weight [512, 512, 3, 3]
    model6.2.bias [512]
    model6.4.weight [512, 512, 3, 3]
    model6.4.bias [512]
    model6.6.weight [512]
    model6.6.bias [512]
    model6.6.running_mean [512]
    model6.6.running_var [512]
    model6.6.num_batches_tracked []
    model7.0.weight [512, 512, 3, 3]
    model7.0.bias [512]
    model7.2.weight [512, 512, 3, 3]
    model7.2.bias [512]
    model7.4.weight [512, 512, 3, 3]
    model7.4.bias [512]
    model7.6.weight [512]
    model7.6.bias [512]
    model7.6.running_mean [512]
    model7.6.running_var [512]
    model7.6.num_batches_tracked []
    model8up.0.weight [512, 256, 4, 4]
    model8up.0.bias [256]
    model8.1.weight [256, 256, 3, 3]
    model8.1.bias [256]
    model8.3.weight [256, 256, 3, 3]
    model8.3.bias [256]
    model8.5.weight [256]
    model8.5.bias [256]
    model8.5.running_mean [256]
    model8.5.running_var [256]
    model8.5.num_batches_tracked []
    model9up.0.weight [256, 128, 4, 4]
    model9up.0.bias [128]
    model9.1.weight [128, 128, 3, 3]
    model9.1.bias [128]
    model9.3.weight [128]
    model9.3.bias [128]
    model9.3.running_mean [128]
    model9.3.running_var [128]
    model9.3.num_batches_tracked []
    model10up.0.weight [128, 128, 4, 4]
    model10up.0.bias [128]
    model10.1.weight [128, 128, 3, 3]
    model10.1.bias [128]
    model3short8.0.weight [256, 256, 3, 3]
    model3short8.0.bias [256]
    model2short9.0.weight [128, 128, 3, 3]
    model2short9.0.bias [128]
    model1short10.0.weight [128, 64, 3, 3]
    model1short10.0.bias [128]
    model_class.0.weight [529, 256, 1, 1]
    model_class.0.bias [529]
    model_out.0.weight [2, 128, 1, 1]
    model_out.0.bias [2]
"""


def layout(text: str) -> dict[str, tuple[int, ...]]:
    out = {}
    for line in text.strip().splitlines():
        key, shape = line.split(None, 1)
        out[key] = tuple(int(v) for v in shape.strip("[]").split(",") if v.strip())
    return out


def documented_state(text: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict of the documented layout, with plausible random values."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in layout(text).items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1000)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        elif key.endswith("running_mean") or key.endswith(".bias"):
            state[key] = torch.randn(shape, generator=g) * 0.01
        elif len(shape) == 1:  # BatchNorm scale
            state[key] = torch.ones(shape)
        else:
            fan_in = shape[1] * (shape[2] * shape[3] if len(shape) == 4 else 1)
            state[key] = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
    return state


@pytest.mark.parametrize("net, text", [(ECCV16, ECCV16_LAYOUT), (SIGGRAPH17, SIGGRAPH17_LAYOUT)],
                         ids=["eccv16", "siggraph17"])
def test_modules_have_exactly_the_documented_keys_and_shapes(net, text):
    got = {k: tuple(v.shape) for k, v in net().state_dict().items()}
    assert got == layout(text)


@pytest.mark.parametrize("name, text", [("eccv16", ECCV16_LAYOUT), ("siggraph17", SIGGRAPH17_LAYOUT)])
def test_documented_layout_loads_and_runs(tmp_path, name, text):
    path = tmp_path / f"{name}.pth"
    torch.save(documented_state(text), path)
    c = get_colorizer(name, device=CPU, config=ZhangConfig(weights=str(path), work_size=64))
    assert not c.needs_reference and c.chroma == "lab"
    c.begin_shot(None)
    L = torch.rand(2, 1, 40, 56) * 100
    ab = c.colorize(L)
    assert ab.shape == (2, 2, 40, 56) and torch.isfinite(ab).all()
    # the loaded values are the file's
    sd = c.net.state_dict()
    assert torch.equal(sd["model1.0.weight"], documented_state(text)["model1.0.weight"])


def test_eccv16_decodes_the_expectation_over_its_bins():
    net = ECCV16().eval()
    centres = torch.randn(2, 313, 1, 1)
    net.model_out.weight.data.copy_(centres)
    logits = torch.full((1, 313, 2, 2), -30.0)
    logits[0, 7] = 30.0  # all mass on bin 7
    assert torch.allclose(net.ab(logits), centres[:, 7, 0, 0].view(1, 2, 1, 1).expand(1, 2, 2, 2) * 110, atol=1e-4)
    flat = torch.zeros(1, 313, 1, 1)
    assert torch.allclose(net.ab(flat), centres.mean(1).view(1, 2, 1, 1) * 110, atol=1e-4)
    with torch.no_grad():
        assert net(torch.rand(1, 1, 64, 64) * 100).shape == (1, 313, 16, 16)


@pytest.mark.parametrize("edit, match", [
    (lambda s: s.update({"model8.6.weight": torch.zeros(312, 256, 1, 1)}),
     r"key 'model8.6.weight' has shape \[312, 256, 1, 1\], expected \[313, 256, 1, 1\]"),
    (lambda s: s.pop("model4.6.running_var"), "key 'model4.6.running_var' is missing"),
    (lambda s: s.update({"model9.0.weight": torch.zeros(1)}), "unexpected key 'model9.0.weight'"),
])
def test_a_wrong_layout_is_refused_naming_file_and_key(tmp_path, edit, match):
    state = documented_state(ECCV16_LAYOUT)
    edit(state)
    path = tmp_path / "colorization_release_v2.pth"
    torch.save(state, path)
    with pytest.raises(ModelError, match=match) as e:
        get_colorizer("eccv16", device=CPU, config=ZhangConfig(weights=str(path)))
    assert str(path) in str(e.value)


def test_siggraph17_file_is_not_an_eccv16_file(tmp_path):
    path = tmp_path / "siggraph17.pth"
    torch.save(documented_state(SIGGRAPH17_LAYOUT), path)
    with pytest.raises(ModelError, match="not the eccv16 layout: key 'model1.0.weight' has shape"):
        load_zhang_state(ECCV16(), path, "eccv16")


def test_unsafe_or_odd_files_are_refused(tmp_path):
    pickled = tmp_path / "module.pth"
    torch.save(torch.nn.Conv2d(1, 1, 1), pickled)  # a pickled module: weights_only refuses it
    with pytest.raises(ModelError, match="weights_only=True") as e:
        load_zhang_state(ECCV16(), pickled, "eccv16")
    assert str(pickled) in str(e.value)
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": documented_state(ECCV16_LAYOUT)}, wrapped)
    with pytest.raises(ModelError, match="not a eccv16 state dict"):
        load_zhang_state(ECCV16(), wrapped, "eccv16")
    with pytest.raises(ModelError, match="not found"):
        load_zhang_state(ECCV16(), tmp_path / "nope.pth", "eccv16")


def test_no_weights_says_how_to_give_them():
    with pytest.raises(ModelError, match="--model eccv16 --weights FILE.pth"):
        get_colorizer("eccv16", device=CPU, config=ZhangConfig())


def test_cli_model_and_weights(tmp_path):
    import cv2
    import numpy as np
    from click.testing import CliRunner

    from vidcolor.cli import main

    path = tmp_path / "s17.pth"
    torch.save(documented_state(SIGGRAPH17_LAYOUT), path)
    img = tmp_path / "photo.png"
    cv2.imwrite(str(img), (np.random.default_rng(0).uniform(0, 255, (48, 64, 3))).astype(np.uint8))
    out = tmp_path / "out.png"
    r = CliRunner().invoke(main, [str(img), "--model", "siggraph17", "--weights", str(path), "--reference", str(img),
                                  "-o", str(out), "--device", "cpu", "-q"])
    assert r.exit_code == 0, r.output
    assert cv2.imread(str(out)).shape == (48, 64, 3)
    bad = tmp_path / "bad.pth"
    torch.save({"x": torch.zeros(1)}, bad)
    r = CliRunner().invoke(main, [str(img), "--model", "siggraph17", "--weights", str(bad), "--reference", str(img),
                                  "-o", str(tmp_path / "o2.png"), "--device", "cpu", "-q"])
    assert r.exit_code == 1 and "siggraph17 layout" in r.output and str(bad) in r.output
