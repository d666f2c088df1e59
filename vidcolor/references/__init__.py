"""Reference stills and the one decision per shot: which still colours it, and how.

- :mod:`.stills`: loading stills, one-still/folder/CSV-map schedules;
- :mod:`.retrieval`: ranking stills against a shot (He et al. 2018, section 4);
- :mod:`.choose`: :class:`ShotChoice`, the only place that scores a still for
  a shot or compares a score with a gate.

The package imports the network only when a still has to be scored
(:mod:`.retrieval`, :mod:`.choose`); ``from vidcolor.references import
ShotChoice`` stays light.
"""
from .choice import KINDS, ShotChoice
from ..timecode import parse_start
from .stills import MapRow, ReferenceSchedule, ReferenceStore, list_images

__all__ = ["KINDS", "ShotChoice", "MapRow", "ReferenceSchedule", "ReferenceStore", "list_images", "parse_start"]
