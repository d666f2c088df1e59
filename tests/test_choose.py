"""The one decision per shot (vidcolor.references.choose): policies, gates, plans (no video, no network)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vidcolor import load_config
from vidcolor.color import BT709, YCbCrSpec, luma_lut
from vidcolor.errors import ConfigError
from vidcolor.references import ReferenceSchedule, ReferenceStore, ShotChoice
from vidcolor.references.choice import gate_of
from vidcolor.references.choose import Chooser
from vidcolor.references.plan import PlannedShot
from vidcolor.shots.split import Shot

CPU = torch.device("cpu")


class _Frame:
    def __init__(self, index):
        self.index, self.time = index, index / 24
        self.luma = np.full((48, 64), 100, np.uint8)


def chooser(tmp_path, score, *, match="normal", single=False, colorizer="exemplar", view=0.0, view_check=True):
    """A chooser for one still (``tmp_path/still.png``) whose match score with any shot is ``score``
    and whose view of it (the flow's) is ``view``."""
    still = tmp_path / "still.png"
    still.write_bytes(b"")  # never read: scoring is replaced below
    cfg = load_config(overrides={"references.match": match, "colorizer": colorizer, "exemplar.view_check": view_check})
    c = Chooser(cfg, ReferenceSchedule.single(still), ReferenceStore(CPU), luma_lut(YCbCrSpec(BT709, False, 8), CPU),
                single=single)
    calls = []
    c._score = lambda path, L, height=None: calls.append(path) or score
    c._view = lambda path, L: view
    return c, still, calls


def shot():
    return Shot(0, 0, 0.0, None, [_Frame(i) for i in range(8)])


@pytest.mark.parametrize("score,kind,gate", [(0.9, "exemplar", 1.0), (0.375, "blend", 0.5), (0.1, "auto", None)])
def test_normal_policy(tmp_path, score, kind, gate):
    c, still, calls = chooser(tmp_path, score)
    choice = c.choose(shot())
    assert choice.kind == kind and calls == [still]
    assert choice.report["score"] == round(score, 4)
    if kind == "auto":
        assert choice.still is None and choice.report["unmatched"] and c.unmatched == 1
    else:
        assert choice.still == still and choice.score == score and choice.gate == pytest.approx(gate)


@pytest.mark.parametrize("score,kind", [(0.9, "exemplar"), (0.375, "auto"), (0.1, "auto")])
def test_strict_policy_takes_only_a_full_match(tmp_path, score, kind):
    c, _, _ = chooser(tmp_path, score, match="strict")
    assert c.choose(shot()).kind == kind


def test_force_takes_every_still_and_scores_nothing(tmp_path):
    c, still, calls = chooser(tmp_path, 0.01, match="force")
    choice = c.choose(shot())
    assert (choice.kind, choice.still, choice.gate, choice.score) == ("exemplar", still, 1.0, None)
    assert calls == [] and c.context == 0  # no frames held back for a score


def test_a_single_picture_uses_its_named_still(tmp_path, caplog):
    c, still, _ = chooser(tmp_path, 0.1, single=True)
    choice = c.choose(shot())
    assert (choice.kind, choice.still, choice.gate) == ("exemplar", still, 1.0)
    assert "matches it poorly" in caplog.text and not choice.report.get("unmatched")


def test_a_colorizer_whose_colour_does_not_depend_on_the_match_is_not_scored(tmp_path):
    c, still, calls = chooser(tmp_path, 0.01, colorizer="transfer")
    assert c.choose(shot()) == ShotChoice("exemplar", still, None, 1.0, {"row": str(still)})
    assert calls == []


@pytest.mark.parametrize("view,kind,gate", [(0.6, "exemplar", 1.0), (0.4, "blend", 0.5), (0.1, "auto", None)])
def test_a_still_scored_short_that_the_flow_finds_in_the_shot_is_given(tmp_path, view, kind, gate):
    """A shot's own still scored low (an old print: dark, grainy, soft) but found by the flow over most
    of the shot's first frames is a view of it: its colour given as the view says (VIEW), the report
    saying so; one the flow does not find is scored as before."""
    c, still, _ = chooser(tmp_path, 0.1, view=view)
    choice = c.choose(shot())
    assert choice.kind == kind and choice.report["view"] == view
    if gate is not None:
        assert (choice.still, choice.gate) == (still, pytest.approx(gate))


@pytest.mark.parametrize("view,kind", [(0.6, "exemplar"), (0.1, "auto")])
def test_a_folder_s_best_still_under_the_threshold_is_taken_where_the_flow_finds_it(tmp_path, view, kind):
    """--reference DIR: the best still scores under retrieval.threshold (a keyframe of a dark, grainy
    print): the flow looks for it in the shot, and takes it where it finds it, once."""
    from vidcolor.references.retrieval import Match

    c, still, _ = chooser(tmp_path, 0.2)
    c.index = type("Index", (), {"rank": lambda self, L: [Match(still, 0.2, 0.2, 0.2)]})()
    views = []
    c._view = lambda path, L: views.append(path) or view
    choice = c.choose(shot())
    assert choice.kind == kind and views == [still] and choice.report["view"] == view
    if kind == "exemplar":
        assert (choice.still, choice.gate) == (still, 1.0) and not choice.report.get("unmatched")


def test_without_the_view_check_the_score_alone_gates(tmp_path):
    c, _, _ = chooser(tmp_path, 0.1, view=0.9, view_check=False)
    choice = c.choose(shot())
    assert choice.kind == "auto" and "view" not in choice.report


def test_a_still_scored_in_full_is_not_looked_for(tmp_path):
    c, _, _ = chooser(tmp_path, 0.9)
    c._view = None  # not called
    assert "view" not in c.choose(shot()).report


def test_the_view_of_a_dark_grainy_print_of_its_still_is_high_and_of_another_picture_low():
    """:func:`still_view` on real pictures: a print of the still at half its light, grainy and shifted,
    is a view of it; another picture is not."""
    import cv2
    from test_exemplar import to_t
    from vidcolor.color import gray_to_l, rgb_to_luma
    from vidcolor.config import ExemplarConfig
    from vidcolor.models.exemplar import still_view

    def picture(seed, h=144, w=192):  # soft texture under hard-edged shapes of random colours
        rng = np.random.default_rng(seed)
        big = cv2.GaussianBlur(rng.normal(0, 1, (h + 40, w + 40)).astype(np.float32), (0, 0), 4.0)
        rgb = np.stack([big, np.roll(big, 9, 0), np.roll(big, 17, 1)], -1)
        rgb = 128 + 40 * rgb / rgb.std()
        for _ in range(12):
            x, y = (int(v) for v in rng.integers(0, (w + 20, h + 20)))
            cv2.rectangle(rgb, (x, y), (x + int(rng.integers(10, 40)), y + int(rng.integers(10, 40))),
                          tuple(float(v) for v in rng.uniform(30, 230, 3)), -1)
        return np.clip(rgb, 0, 255).astype(np.uint8)

    spec = YCbCrSpec(BT709, False, 8)
    still_rgb = picture(1)[20:164, 20:212]
    rng = np.random.default_rng(0)

    def print_of(rgb, dx):  # the luma of a print half as bright, grainy, the frame moved by dx px
        y = torch.roll(rgb_to_luma(to_t(rgb), spec), dx, dims=-1)
        y = y * 0.5 + torch.from_numpy(rng.normal(0, 0.03, y.shape)).float()
        return gray_to_l(y.clamp(0, 1))

    frames = torch.cat([print_of(still_rgb, dx) for dx in (0, 2, 4)])
    other = torch.cat([print_of(picture(7)[20:164, 20:212], dx) for dx in (0, 2, 4)])
    cfg = ExemplarConfig()
    own, wrong = still_view(to_t(still_rgb), frames, cfg, spec), still_view(to_t(still_rgb), other, cfg, spec)
    assert own > 0.5 > 0.2 > wrong, (own, wrong)


def test_gate_of():
    assert [gate_of(s, 0.3, 0.45) for s in (0.0, 0.3, 0.375, 0.45, 1.0)] == pytest.approx([0, 0, 0.5, 1, 1])
    assert gate_of(0.5, 0.5, 0.5) == 1.0  # a single threshold


def test_a_choice_is_consistent():
    with pytest.raises(ValueError, match="unknown shot choice kind"):
        ShotChoice("maybe")
    with pytest.raises(ValueError, match="needs a still"):
        ShotChoice("exemplar")
    with pytest.raises(ValueError, match="takes no still"):
        ShotChoice("auto", Path("x.png"))


def test_a_plan_keeps_its_choices():
    planned = PlannedShot(0, 0, 0, 0.0, 10, "s.png", {"score": 0.4, "choice": "blend", "gate": 0.6, "row": "m:2",
                                                       "frames": 10, "colorizer": "exemplar+auto"})
    choice = planned.choice(0.3, 0.45)
    assert (choice.kind, choice.still, choice.gate, choice.score) == ("blend", Path("s.png"), 0.6, 0.4)
    assert choice.report == {"score": 0.4, "row": "m:2"}
    # a plan written before choices were recorded: derived from its score, as a run would
    old = PlannedShot(0, 0, 0, 0.0, 10, "s.png", {"score": 0.375})
    assert (old.choice(0.3, 0.45).kind, old.choice(0.3, 0.45).gate) == ("blend", pytest.approx(0.5))
    assert PlannedShot(0, 0, 0, 0.0, 10, None, {}).choice(0.3, 0.45).kind == "auto"


def test_match_policy_is_checked():
    with pytest.raises(ConfigError, match="references.match"):
        load_config(overrides={"references.match": "sometimes"})
