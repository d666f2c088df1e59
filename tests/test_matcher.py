"""The exemplar colorizer's similarity sub-net: the learned head over the backbone's features,
its weights and its training (CPU, synthetic)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidcolor.config import ExemplarConfig
from vidcolor.errors import ModelError
from vidcolor.models import get_colorizer
from vidcolor.models.matcher import MatcherHead, attend, load_matcher, save_matcher

CPU = torch.device("cpu")


def raw(n=2, h=6, w=7, seed=0) -> torch.Tensor:
    return torch.randn(n, 152, h, w, generator=torch.Generator().manual_seed(seed))


def test_untrained_head_matches_as_the_raw_features():
    """Zero at start: an untrained head gives the raw features' matching exactly."""
    f = raw()
    want = F.normalize(torch.cat([F.normalize(f[:, :40], dim=1), F.normalize(f[:, 40:], dim=1)], 1), dim=1)
    for context in (True, False):
        got = MatcherHead(context=context)(f)
        assert torch.allclose(got, want, atol=1e-6)
        assert torch.allclose(got.norm(dim=1), torch.ones(2, 6, 7), atol=1e-5)


def trained_like_head(seed=1) -> MatcherHead:
    head = MatcherHead()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        head.proj.weight.copy_(torch.randn(head.proj.weight.shape, generator=g) * 0.2)
        head.context.weight.copy_(torch.randn(head.context.weight.shape, generator=g) * 0.05)
    return head.eval()


def test_matcher_weights_round_trip_without_pickle_and_bad_files_are_refused(tmp_path):
    head = trained_like_head()
    path = tmp_path / "m.safetensors"
    save_matcher(head, path, {"steps": 7})
    assert not path.read_bytes().startswith(b"PK")  # safetensors, not a zip of pickles
    back = load_matcher(str(path), CPU)
    assert back.meta == {"steps": 7}
    f = raw(seed=3)
    assert torch.equal(back(f), head(f))
    assert load_matcher("none", CPU) is None
    with pytest.raises(ModelError, match="not found"):
        load_matcher(str(tmp_path / "missing.safetensors"), CPU)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a weights file")
    with pytest.raises(ModelError, match="cannot load matcher weights"):
        load_matcher(str(bad), CPU)


def test_the_colorizer_matches_through_the_configured_head(tmp_path):
    path = tmp_path / "m.safetensors"
    save_matcher(trained_like_head(), path, {})
    L = torch.rand(1, 1, 64, 80) * 100
    with_head = get_colorizer("exemplar", device=CPU, config=ExemplarConfig(matcher=str(path)))
    without = get_colorizer("exemplar", device=CPU, config=ExemplarConfig(matcher="none"))
    assert with_head.matcher.head is not None and without.matcher.head is None
    a, b = with_head.matcher.features(L), without.matcher.features(L)
    assert a.shape == b.shape == (1, 152, 8, 10)
    assert (a - b).abs().max() > 0.05  # the head changes what is matched


def test_attention_is_differentiable_for_training_and_in_place_for_inference():
    q = F.normalize(torch.randn(2, 16, 3, 4), dim=1).requires_grad_()
    k = F.normalize(torch.randn(2, 16, 3, 4), dim=1)
    ab = torch.randn(2, 2, 3, 4) * 20
    tq, tk = torch.rand(2, 12), torch.rand(2, 12)
    out, best = attend(q, k, ab, tq, tk, temperature=0.04, tone_weight=1.0)
    out.square().mean().backward()
    assert q.grad is not None and q.grad.abs().sum() > 0
    with torch.inference_mode():
        again, best2 = attend(q.detach(), k, ab, tq, tk, temperature=0.04, tone_weight=1.0)
    assert torch.allclose(again, out.detach(), atol=1e-5) and torch.allclose(best2, best)


def photos(folder, n=5):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):  # blobs of several colours on a textured ground: something for the features to match
        img = cv2.GaussianBlur(rng.uniform(60, 200, (96, 120, 3)).astype(np.uint8), (0, 0), 3)
        for j in range(4):
            c = tuple(int(v) for v in rng.integers(0, 255, 3))
            cv2.circle(img, (int(rng.integers(15, 105)), int(rng.integers(15, 80))), int(rng.integers(8, 18)), c, -1)
        cv2.imwrite(str(folder / f"p{i}.png"), img)
    return folder


def test_tiny_training_run_lowers_its_loss_resumes_and_ships_its_figures(tmp_path):
    from vidcolor.train.matcher import TrainMatcherConfig, train_matcher, validate

    cfg = TrainMatcherConfig(data=[str(photos(tmp_path / "photos"))], out=str(tmp_path / "run"), size=64, pool=16,
                             steps=60, batch=8, lr=1e-2, holdout=0, checkpoint_every=20, seed=1)
    weights = train_matcher(cfg)
    rows = (tmp_path / "run" / "loss.csv").read_text().splitlines()
    assert rows[0].startswith("step,loss") and len(rows) == 61
    head = load_matcher(str(weights), CPU)
    assert head.meta["steps"] == 60 and set(head.meta["validation_mse"]) == {"raw_features", "head"}
    recorded = head.meta["config"]  # relative to the repository, whatever machine ran it
    assert not any(Path(d).is_absolute() for d in recorded["data"] + [recorded["out"]])
    import vidcolor.train.common as common

    root = Path(common.__file__).resolve().parents[2]  # the checkout the training ran from
    assert (root / recorded["out"]).resolve() == (tmp_path / "run").resolve()
    # on its own pool, the trained head's attention carries colour better than the raw features it started as
    pool = torch.load(tmp_path / "run" / "pool.pt", weights_only=True)
    idx = torch.arange(len(pool["kind"]))
    before, after = validate(None, pool, idx)["all"], validate(head, pool, idx)["all"]
    assert after < 0.9 * before, (after, before)
    # resume: a longer run continues from the checkpoint
    train_matcher(TrainMatcherConfig(**{**cfg.__dict__, "steps": 70}))
    rows = (tmp_path / "run" / "loss.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(1, 71))


def test_training_holds_out_photos_for_validation(tmp_path):
    import random

    from vidcolor.models.backbone import get_backbone
    from vidcolor.train.matcher import TrainMatcherConfig, build_pool

    cfg = TrainMatcherConfig(size=48, pool=10, holdout=5, kinds={"keyframe": 1.0})
    pool = build_pool(cfg, sorted((photos(tmp_path / "p", n=10)).glob("*.png")), get_backbone(CPU), random.Random(0))
    assert pool["val"].tolist() == [i % 5 == 0 for i in range(10)]
    assert pool["fq"].shape == (10, 152, 6, 6) and pool["fq"].dtype == torch.float16
    assert pool["tq"].shape == (10, 36) and pool["abq"].shape == (10, 2, 6, 6)


def test_the_packaged_head_loads_and_says_what_produced_it():
    head = load_matcher(None, CPU)
    assert head is not None and head.meta["command"].startswith("vidcolor train matcher")
    val = head.meta["validation_mse"]
    assert val["head"]["all"] < val["raw_features"]["all"]  # it was kept because it matched better on held-out photos
    assert (head.proj.weight.abs().sum() > 0).item()  # trained, not the zero start
    # its recipe as configs/ names it, not the paths of the machine that trained it
    cfg = head.meta["config"]
    assert cfg["data"] == ["../shared/data/photos"] and cfg["out"] == "runs/matcher" and cfg["context"] is False
