"""Configuration: frozen dataclasses, filled from defaults, then a YAML file,
then command-line overrides. Unknown keys and wrongly typed values are errors
that name the file and the key, so a typo never silently falls back to a
default.
"""
from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import ConfigError

__all__ = ["Config", "EncodeConfig", "RuntimeConfig", "ShotsConfig", "RetrievalConfig", "ReferencesConfig", "KeyframesConfig", "TransferConfig", "ExemplarConfig", "TemporalConfig",
           "PreviewConfig", "load_config"]


@dataclass(frozen=True)
class EncodeConfig:
    """How the colour video is encoded.

    ``crf`` and ``preset`` apply to encoders that have them (x264, x265,
    VP9, AV1); ``None`` takes the codec's archival default. ``pix_fmt`` None
    keeps the input's chroma subsampling and bit depth where the encoder and
    frame size allow it.
    """

    codec: str = "libx264"
    crf: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None
    options: dict[str, str] = field(default_factory=dict)


#: runtime.precision values
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
#: OpenCV DIS optical-flow presets by name (fine: medium carried on to full resolution, vidcolor.ops.dis_flow)
FLOW_PRESETS = ("ultrafast", "fast", "medium", "fine")


@dataclass(frozen=True)
class RuntimeConfig:
    """Where and in what chunks the work runs."""

    device: str = "auto"
    batch_size: int = 8  # 0: sized to the GPU's free memory (8 on a CPU)
    precision: str = "auto"  # auto (fp16 on a GPU, fp32 on a CPU) | fp32 | fp16 | bf16: the networks' arithmetic
    queue_size: int = 32
    threads: int = 0  # torch intra-op threads; 0 = leave PyTorch's default
    max_damaged_frames: int = 25  # undecodable frames in a row repaired (the previous one repeated) before a run stops


@dataclass(frozen=True)
class TransferConfig:
    """Luminance-conditioned colour transfer (Welsh et al. 2002 with
    Reinhard et al. 2001 luminance remapping).

    Each target pixel takes the mean chroma of reference pixels with similar
    luminance and texture (local standard deviation of L over ``window``),
    read from a smoothed (L, texture) table; thinly populated table cells are
    pulled towards the reference's global mean chroma by ``prior``.
    """

    l_bins: int = 32
    texture_bins: int = 8
    texture_max: float = 16.0  # local std of L (0..100 scale) mapped to the last bin
    window: int = 5
    smooth: float = 1.0  # Gaussian sigma over table cells
    prior: float = 0.25  # strength of the global-mean prior, in units of the mean cell count
    remap_luminance: bool = True
    max_side: int = 512  # reference statistics are taken at most at this size


@dataclass(frozen=True)
class ExemplarConfig:
    """Exemplar colorization (He et al. 2018, adapted): optical flow where the
    still is a view of the frame, feature attention elsewhere, fused.

    ``work_size``: short side at which the network works (``enlarge``: also
    when the film is smaller; DIS's 8-pixel patches are too coarse for a
    144-line film); ``flow_preset``:
    OpenCV DIS preset (ultrafast, fast, medium; fine: medium carried on to the
    full resolution, :func:`vidcolor.ops.dis_flow`); ``check_preset``: the
    DIS preset of the backward flow (still to frame) that only checks the
    forward one (a coarser one is enough there); ``fb_sigma`` (pixels) and
    ``l_sigma`` (L units): how fast flow confidence falls with the
    forward-backward error and the luminance mismatch; ``outside_sigma``
    (pixels): how fast it falls where the flow leaves the still (the still's
    edge colour carried on; 0: no colour from the flow outside the still);
    ``prealign``: bring the still onto each frame by an affine map fitted to
    feature matches before the flow, where one clearly holds (a still framed
    or zoomed otherwise than the shot); ``reference_flow_every``: a flow to the still on every
    n-th frame of a shot, the frames between reached by chaining the temporal smoother's
    frame-to-frame flow on from it (sooner where the chained confidence falls; 1: a flow to the
    still on every frame, as without temporal smoothing); ``temperature``: of
    the attention softmax over cosine similarities; ``tone_weight``: how much a
    difference in mean luminance (0..1) between a frame cell and a reference
    cell lowers their similarity (0: features only); ``attention_radius``:
    the guided filter (working pixels, 0 = none) that makes the attention's
    colour follow the frame's edges; ``gate_low``/``gate_high``:
    a shot whose match score with the still (as retrieval scores it) is under
    ``gate_low`` gets no colour from it (a run colours that shot with
    ``auto`` instead), over ``gate_high`` full colour, between them its
    colour mixed with ``auto``'s in proportion;
    ``guide_radius``/``guide_eps``: the guided filter that brings a/b to full
    size; ``saturation``: 1.0 = as predicted; ``weights``: the fusion step,
    ``rule`` (the default: the untrained blend; no fusion net ships yet; null
    is the same), ``packaged`` (a fusion net copied into the package; an
    error when there is none), or a file;
    ``matcher``: the similarity sub-net's weights (the learned projection of
    the backbone's features that the attention matches on): null (or
    ``packaged``) for the packaged ones, ``none`` for the raw features, or a
    file. Both resolved by :func:`vidcolor.weights.resolve`; ``vidcolor weights``
    lists what is installed.
    """

    work_size: int = 256
    enlarge: bool = True  # a film smaller than work_size is enlarged to it (DIS's patches are a fixed 8 px)
    flow: bool = True
    flow_preset: str = "medium"
    check_preset: str = "fast"
    fb_sigma: float = 5.0
    l_sigma: float = 15.0
    outside_sigma: float = 16.0
    prealign: bool = True
    reference_flow_every: int = 4  # frames between flows to the still; between them, chained (1: every frame)
    temperature: float = 0.04
    tone_weight: float = 1.0
    attention_radius: int = 8
    gate_low: float = 0.3
    gate_high: float = 0.45
    guide_radius: int = 2
    guide_eps: float = 1e-3
    saturation: float = 1.0
    weights: str | None = "rule"  # no fusion net ships: the rule, explicitly (null is the same)
    matcher: str | None = None


@dataclass(frozen=True)
class AutoConfig:
    """Automatic colorization, no reference (:mod:`vidcolor.models.auto`).

    ``work_size``: short side the network works at; ``temperature``: of the
    annealed mean over the ab bins (Zhang et al.: 0.38; 1 = the mean, towards
    0 = the mode, more vivid; null: the one fitted with the weights);
    ``saturation``: 1.0 = as predicted;
    ``guide_radius``/``guide_eps``: the guided filter bringing colour to full
    size; ``weights``: null (or ``packaged``) for the packaged weights, or a .safetensors file;
    ``palette``: null, or a colour still whose hue and chroma distribution the
    output is matched to (quantile matching); ``decoding``: ``fitted`` (the
    confidence-calibrated decoding fitted with the weights,
    :mod:`vidcolor.models.auto_decode`) or ``legacy`` (the plain annealed mean).
    """

    work_size: int = 224
    temperature: float | None = None  # None: the one fitted with the weights' decoding
    saturation: float = 1.0
    guide_radius: int = 2
    guide_eps: float = 1e-3
    weights: str | None = None
    palette: str | None = None
    decoding: str = "fitted"  # fitted: the weights' calibrated decoding; legacy: the plain annealed mean


@dataclass(frozen=True)
class ZhangConfig:
    """Zhang et al.'s released networks (``eccv16``, ``siggraph17``), for users who
    own the weight files: ``weights`` the .pth file (required); ``work_size``
    the square size the network sees (a multiple of 8; 256 as released);
    ``temperature`` (ECCV16 only) of the softmax over its 313 bins: 1 is what
    the released code does."""

    weights: str | None = None
    work_size: int = 256
    temperature: float = 1.0


@dataclass(frozen=True)
class TemporalConfig:
    """Temporal smoothing of chroma inside each shot (:mod:`vidcolor.temporal`).

    ``mode``: off, forward (causal, streaming) or bidirectional (a backward
    pass too, in windows of ``window`` frames looking ``overlap`` frames
    ahead); ``strength``: weight of the flow-carried past where the flow
    holds (0 = off, towards 1 = stiffer); ``flow_preset``: OpenCV DIS preset
    of the frame-to-frame flow, computed with the short side at most
    ``flow_size``; ``fb_sigma`` (pixels) and ``l_sigma`` (8-bit luma codes):
    how fast the confidence in the flow falls with the forward-backward error
    and the luminance mismatch; ``detail`` (chroma pixels, 0 = none): Gaussian sigma splitting
    each frame's chroma into a smooth part, which is steadied, and the detail
    around it, which is kept from the frame itself (repeated warping would
    blur it). ``deflicker`` (``--deflicker``, off by default): the output
    luma's exposure equalised frame to frame inside each shot
    (:mod:`vidcolor.temporal.deflicker`), the one option that changes the
    film's luminance.
    """

    mode: str = "forward"
    strength: float = 0.85
    flow_preset: str = "fast"
    flow_size: int = 256
    fb_sigma: float = 1.0
    l_sigma: float = 8.0
    window: int = 96
    overlap: int = 16
    detail: float = 2.0
    deflicker: bool = False


@dataclass(frozen=True)
class ShotsConfig:
    """Shot detection: a registered detector (``transnet``, ``histogram``), ``off``,
    or ``auto``: TransNetV2 when the model runs on a GPU, the histogram detector
    on a CPU, where TransNetV2 (about 150 frames/s on two cores) would cost
    more than the rest of a ``transfer`` run."""

    detector: str = "auto"


@dataclass(frozen=True)
class ReferencesConfig:
    """How a shot's given still is taken (:mod:`vidcolor.references.choose`). ``match``:
    ``normal``: a still that matches its shot poorly (score under ``exemplar.gate_low``)
    gives way to automatic colour, one that matches partly is blended with it; ``strict``:
    only a still over ``exemplar.gate_high`` is used; ``force``: every shot takes its
    given still at full strength. The still named for one photograph (or a film of one
    shot, shot detection off) is always used."""

    match: str = "normal"


MATCH_POLICIES = ("strict", "normal", "force")  # references.match


@dataclass(frozen=True)
class KeyframesConfig:
    """``--keyframes``: several coloured frames per shot (:mod:`vidcolor.models.keyframes`).
    ``attend``: keyframes whose cells each frame's attention looks over (the nearest ones);
    ``low_confidence``: a frame whose carried colour reaches less than this share of it (the
    flows' confidence, 0..1) is in a low-confidence stretch of the report, where a keyframe is
    wanted (``vidcolor keyframes --suggest``)."""

    attend: int = 4
    low_confidence: float = 0.5


@dataclass(frozen=True)
class RetrievalConfig:
    """Choosing a still per shot from a folder (Deep Exemplar-based Colorization, section 4)."""

    threshold: float = 0.5  # a best score under this is "no good match"
    frames: int = 3  # frames of the shot's start the choice looks at
    top_k: int = 5  # candidates of the global ranking that the local ranking re-orders


@dataclass(frozen=True)
class FarmConfig:
    """The render farm (``--jobs N``, ``--ray``): a film is cut into segments of
    about ``segment_seconds``, only at shot boundaries; a failed segment is
    tried ``retries`` more times before the job stops."""

    segment_seconds: float = 60.0
    retries: int = 2


@dataclass(frozen=True)
class PreviewConfig:
    """``--preview``: ``seconds`` from the start of each shot (the whole shot
    when shorter), joined into one short file; ``max_shots``: at most this
    many shots, spread evenly over the film (0: every shot)."""

    seconds: float = 3.0
    max_shots: int = 0


@dataclass(frozen=True)
class Config:
    colorizer: str = "exemplar"
    gallery: str | None = None  # a folder of colour stills (builtin: the packaged one) for shots with no still
    encode: EncodeConfig = field(default_factory=EncodeConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    shots: ShotsConfig = field(default_factory=ShotsConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    references: ReferencesConfig = field(default_factory=ReferencesConfig)
    keyframes: KeyframesConfig = field(default_factory=KeyframesConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)
    exemplar: ExemplarConfig = field(default_factory=ExemplarConfig)
    auto: AutoConfig = field(default_factory=AutoConfig)
    eccv16: ZhangConfig = field(default_factory=ZhangConfig)
    siggraph17: ZhangConfig = field(default_factory=ZhangConfig)
    temporal: TemporalConfig = field(default_factory=TemporalConfig)
    farm: FarmConfig = field(default_factory=FarmConfig)
    preview: PreviewConfig = field(default_factory=PreviewConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | None = None) -> "Config":
        """The inverse of :meth:`to_dict` (keys left out keep their defaults), validated."""
        return _validate(_build(cls, data, "", source), source)


def max_threads() -> int:
    """The most threads a config or option may ask for: 4 per CPU core (more only thrashes, and
    OpenMP dies allocating their stacks)."""
    return 4 * (os.cpu_count() or 1)


def _check_type(value: Any, tp: Any, where: str, source: str | None) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        last: ConfigError | None = None
        for a in args:
            if a is type(None):
                continue
            try:
                return _check_type(value, a, where, source)
            except ConfigError as e:
                last = e
        assert last is not None
        raise last
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping, got {value!r}", source)
        return {str(k): str(v) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}", source)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}", source)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}", source)
        if not math.isfinite(value):
            raise ConfigError(f"{where} must be a finite number, got {value!r}", source)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}", source)
        return value
    raise TypeError(f"unsupported config type {tp!r} at {where}")


def _build(cls: type, data: Mapping[str, Any], prefix: str, source: str | None, base: Any = None) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix.rstrip('.') or 'the config'} must be a mapping, got {data!r}", source)
    base = base if base is not None else cls()
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    changes: dict[str, Any] = {}
    for key, value in data.items():
        where = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(f"unknown key '{where}' (valid: {', '.join(prefix + n for n in names)})", source)
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            changes[key] = _build(tp, value, f"{where}.", source, getattr(base, key))
        else:
            changes[key] = _check_type(value, tp, where, source)
    return dataclasses.replace(base, **changes)


def parse_section(cls: type, data: Mapping[str, Any], prefix: str, source: str | None, base: Any = None) -> Any:
    """A config dataclass ``cls`` from ``data``, keys and types checked as in a config file
    (``prefix``, e.g. ``"exemplar."``, names the keys in errors); unset fields from ``base``."""
    return _build(cls, data, prefix, source, base)


def _validate(cfg: Config, source: str | None) -> Config:
    def bad(msg: str) -> ConfigError:
        return ConfigError(msg, source)

    if cfg.runtime.device not in ("auto", "cpu", "cuda") and not cfg.runtime.device.startswith("cuda:"):
        raise bad(f"runtime.device must be auto, cpu or cuda, got {cfg.runtime.device!r}")
    if not 0 <= cfg.runtime.batch_size <= 1024:
        raise bad(f"runtime.batch_size must be between 1 and 1024 (0: sized to the GPU's memory), "
                  f"got {cfg.runtime.batch_size}")
    if cfg.runtime.precision not in PRECISIONS:
        raise bad(f"runtime.precision must be one of {', '.join(PRECISIONS)}, got {cfg.runtime.precision!r}")
    if not 2 <= cfg.runtime.queue_size <= 4096:
        raise bad(f"runtime.queue_size must be between 2 and 4096, got {cfg.runtime.queue_size}")
    if not 0 <= cfg.runtime.max_damaged_frames <= 100_000:
        raise bad(f"runtime.max_damaged_frames must be between 0 and 100000, got {cfg.runtime.max_damaged_frames}")
    if cfg.runtime.threads < 0:
        raise bad(f"runtime.threads must be 0 (default) or positive, got {cfg.runtime.threads}")
    if cfg.runtime.threads > max_threads():
        raise bad(f"runtime.threads must be at most {max_threads()} (4 per CPU core; this machine has "
                  f"{os.cpu_count() or 1}), got {cfg.runtime.threads}")
    if cfg.encode.crf is not None and not 0 <= cfg.encode.crf <= 63:
        raise bad(f"encode.crf must be between 0 and 63, got {cfg.encode.crf}")
    if not (1 <= cfg.keyframes.attend <= 64 and 0.0 <= cfg.keyframes.low_confidence <= 1.0):
        raise bad("keyframes.attend must be in 1..64 and keyframes.low_confidence in [0, 1]")
    if cfg.references.match not in MATCH_POLICIES:
        raise bad(f"references.match must be one of {', '.join(MATCH_POLICIES)}, got {cfg.references.match!r}")
    r = cfg.retrieval
    if not (0 <= r.threshold <= 1 and 1 <= r.frames <= 64 and 1 <= r.top_k <= 1000):
        raise bad("retrieval.threshold must be in 0..1, retrieval.frames in 1..64, retrieval.top_k in 1..1000")
    e = cfg.exemplar
    if e.work_size < 32 or e.saturation < 0 or e.temperature <= 0 or e.fb_sigma <= 0 or e.l_sigma <= 0 \
            or e.outside_sigma < 0:
        raise bad("exemplar.work_size must be >= 32; saturation, outside_sigma >= 0; temperature, fb_sigma, l_sigma > 0")
    if not 0 <= e.gate_low <= e.gate_high <= 1 or e.guide_radius < 1 or e.guide_eps <= 0:
        raise bad("exemplar: need 0 <= gate_low <= gate_high <= 1, guide_radius >= 1, guide_eps > 0")
    if e.tone_weight < 0 or e.attention_radius < 0:
        raise bad("exemplar.tone_weight and exemplar.attention_radius must be >= 0")
    if not 1 <= e.reference_flow_every <= 1000:
        raise bad("exemplar.reference_flow_every must be in 1..1000")
    tc = cfg.temporal
    for key in ("flow_preset", "check_preset"):
        if getattr(e, key) not in FLOW_PRESETS:
            raise bad(f"exemplar.{key} must be one of {', '.join(FLOW_PRESETS)}, got {getattr(e, key)!r}")
    if tc.mode not in ("off", "forward", "bidirectional") or tc.flow_preset not in FLOW_PRESETS:
        raise bad(f"temporal.mode must be off, forward or bidirectional; temporal.flow_preset one of "
                  f"{', '.join(FLOW_PRESETS)}")
    if not (0 <= tc.strength < 1 and tc.flow_size >= 16 and tc.fb_sigma > 0 and tc.l_sigma > 0):
        raise bad("temporal.strength must be in [0, 1), flow_size >= 16, fb_sigma and l_sigma > 0")
    if not (tc.window >= 2 and 0 <= tc.overlap <= 1024 and tc.detail >= 0):
        raise bad("temporal.window must be >= 2, temporal.overlap in 0..1024, temporal.detail >= 0")
    a = cfg.auto
    if a.work_size < 32 or (a.temperature is not None and not 0 < a.temperature <= 10) or a.saturation < 0:
        raise bad("auto.work_size must be >= 32, auto.temperature in (0, 10], auto.saturation >= 0")
    if a.decoding not in ("fitted", "legacy"):
        raise bad(f"auto.decoding must be fitted or legacy, got {a.decoding!r}")
    if a.guide_radius < 1 or a.guide_eps <= 0:
        raise bad("auto.guide_radius must be >= 1 and auto.guide_eps > 0")
    for name in ("eccv16", "siggraph17"):
        z = getattr(cfg, name)
        if z.work_size < 32 or z.work_size % 8 or not 0 < z.temperature <= 10:
            raise bad(f"{name}.work_size must be a multiple of 8 and >= 32, {name}.temperature in (0, 10]")
    if not (cfg.farm.segment_seconds > 0 and 0 <= cfg.farm.retries <= 100):
        raise bad("farm.segment_seconds must be > 0 and farm.retries in 0..100")
    if not (0 < cfg.preview.seconds <= 3600 and cfg.preview.max_shots >= 0):
        raise bad("preview.seconds must be in (0, 3600] and preview.max_shots >= 0 (0: every shot)")
    t = cfg.transfer
    if not (2 <= t.l_bins <= 256 and 1 <= t.texture_bins <= 64):
        raise bad("transfer.l_bins must be 2..256 and transfer.texture_bins 1..64")
    if t.window < 1 or t.window % 2 == 0:
        raise bad(f"transfer.window must be a positive odd number, got {t.window}")
    if t.texture_max <= 0 or t.smooth < 0 or t.prior < 0 or t.max_side < 16:
        raise bad("transfer.texture_max must be > 0, smooth and prior >= 0, max_side >= 16")
    return cfg


def load_config(path: str | os.PathLike | None = None, overrides: Mapping[str, Any] | None = None) -> Config:
    """Defaults, then the YAML file at ``path``, then ``overrides``.

    ``overrides`` maps dotted keys (``"encode.crf"``) to values; ``None``
    values are ignored, so unset command-line options keep the file's value.
    """
    cfg = Config()
    source = None
    if path is not None:
        source = os.fspath(path)
        p = Path(path)
        if not p.is_file():
            raise ConfigError("config file not found", source)
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError(f"not valid YAML ({first})", source) from None
        except RecursionError:
            raise ConfigError("not a config: nested too deeply", source) from None
        except OSError as e:
            raise ConfigError(f"cannot be read ({e.strerror})", source) from None
        if data is not None:
            cfg = _build(Config, data, "", source, cfg)
    if overrides:
        nested: dict[str, Any] = {}
        for key, value in overrides.items():
            if value is None:
                continue
            node = nested
            *parents, leaf = key.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        cfg = _build(Config, nested, "", "command line", cfg)
    return _validate(cfg, source)
