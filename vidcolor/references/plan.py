"""A fixed plan of shots and their choices (the render farm cuts a film by it)."""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..shots.base import Transition
from ..shots.split import Shot
from .choice import KINDS, ShotChoice, gate_of

__all__ = ["PlannedShot", "PlanSplitter", "PlanChooser"]

#: report keys that belong to the shot, not to the choice of its still
_SHOT_KEYS = ("frames", "transition", "reference", "colorizer", "choice", "gate", "prealigned")


@dataclass(frozen=True)
class PlannedShot:
    """A shot of a fixed plan: its first frame (index, pts, seconds from the
    film's first frame), its length, and its still (None: no still); ``entry``
    is what a run reports about it (transition, score, map row, and
    ``choice``/``gate``: how the still colours it; ``keys``: its keyframes,
    [frame, still] pairs, which colour it whatever its still))."""

    index: int
    first_frame: int
    first_pts: int
    start_time: float
    frames: int
    reference: str | None
    entry: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "PlannedShot":
        return cls(**data)

    def choice(self, gate_low: float, gate_high: float) -> ShotChoice:
        """The plan's choice for this shot (a plan written before choices were recorded: derived from its score)."""
        keys = self.entry.get("keys")
        if keys:  # keyframes win inside their shot
            report = {"keys": keys, **({"row": self.entry["row"]} if "row" in self.entry else {})}
            return ShotChoice("keyframes", Path(keys[0][1]), None, 1.0, report,
                              tuple((int(f) - self.first_frame, Path(p)) for f, p in keys))
        report = {k: v for k, v in self.entry.items() if k not in _SHOT_KEYS}
        still = Path(self.reference) if self.reference else None
        kind, score = self.entry.get("choice"), self.entry.get("score")
        gate = self.entry.get("gate")
        if kind not in KINDS or (still is None) != (kind in ("auto", "neutral")):
            gate = gate_of(score, gate_low, gate_high) if still is not None and score is not None else 1.0
            kind = "auto" if still is None else "blend" if 0.0 < gate < 1.0 else "exemplar"
        return ShotChoice(kind, still, score, 1.0 if gate is None else float(gate), report)


def _transition(planned: PlannedShot) -> Transition | None:
    """How the planned shot began, as the planning pass found it (its report entry's), or None."""
    t = planned.entry.get("transition")
    try:
        return Transition(int(t["start"]), int(t["end"]), planned.first_frame, str(t["kind"]), float(t["score"]))
    except (TypeError, KeyError, ValueError):
        return None


class PlanSplitter:
    """A ShotSplitter's interface over a fixed plan: shots start where the plan says; no lookahead."""

    def __init__(self, plan: Sequence[PlannedShot]):
        self._starts = {s.first_frame: s for s in plan}
        self.shots: list[Shot] = []
        self.transitions: list = []

    def feed(self, frame) -> list[tuple[object, Shot | None]]:
        planned = self._starts.get(frame.index)
        shot = None
        if planned is not None:
            shot = Shot(planned.index, planned.first_frame, planned.start_time, _transition(planned), [frame])
            self.shots.append(shot)
        elif not self.shots:
            raise InputError(f"frame {frame.index} begins no shot of the plan", None)
        self.shots[-1].frames += 1
        return [(frame, shot)]

    def finish(self) -> list:
        return []


class PlanChooser:
    """The plan's choices, shot by shot (nothing is scored again)."""

    def __init__(self, plan: Sequence[PlannedShot], gate_low: float, gate_high: float):
        self._by_index = {s.index: s for s in plan}
        self._gates = (gate_low, gate_high)

    def splitter(self, detector, spec) -> PlanSplitter:
        return PlanSplitter(list(self._by_index.values()))

    def choose(self, shot: Shot) -> ShotChoice:
        return self._by_index[shot.index].choice(*self._gates)

    def summary(self, shots: int) -> None:
        pass
