"""What a shot is coloured with: one :class:`ShotChoice` per shot (no heavy imports)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["KINDS", "ShotChoice", "gate_of"]

#: exemplar: the shot's still colours it (the reference colorizer, at ``gate``);
#: blend: a still that matches partly, its colour where sure and automatic colour elsewhere;
#: gallery: a still retrieved from the gallery, its colour only where sure, automatic elsewhere;
#: keyframes: several frames of the shot coloured by hand (``keys``), carried both ways between them;
#: auto: automatic colour, no still; neutral: none (the shot stays black and white).
KINDS = ("exemplar", "blend", "gallery", "keyframes", "auto", "neutral")


def gate_of(score: float, gate_low: float, gate_high: float) -> float:
    """The still's share of the colour for a match ``score``: 0 under ``gate_low``, 1 over ``gate_high``,
    linear between."""
    if score >= gate_high:
        return 1.0
    return float(min(1.0, max(0.0, (score - gate_low) / max(gate_high - gate_low, 1e-6))))


@dataclass(frozen=True)
class ShotChoice:
    """Which still colours a shot and how (see :data:`KINDS`).

    ``still``: the still's file (None for ``auto``/``neutral``); ``score``:
    its match with the shot as retrieval scores it (None: not scored);
    ``gate``: 0..1, how much of the still's colour the exemplar gives (its
    shot gate); ``report``: what the run's report says about the choice
    (map row, candidates, ``unmatched``...); ``keys``: a ``keyframes``
    shot's keyframes, (frame offset from the shot's first frame, still) in
    order (``still`` is the first one's).
    """

    kind: str
    still: Path | None = None
    score: float | None = None
    gate: float = 1.0
    report: dict = field(default_factory=dict)
    keys: tuple[tuple[int, Path], ...] = ()

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown shot choice kind {self.kind!r} (valid: {', '.join(KINDS)})")
        if (self.still is None) != (self.kind in ("auto", "neutral")):
            raise ValueError(f"a {self.kind!r} choice {'takes no' if self.still is not None else 'needs a'} still")
        if bool(self.keys) != (self.kind == "keyframes"):
            raise ValueError(f"a {self.kind!r} choice {'needs' if self.kind == 'keyframes' else 'takes no'} keyframes")
