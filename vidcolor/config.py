"""Configuration: frozen dataclasses, filled from defaults, then a YAML file,
then command-line overrides. Unknown keys and wrongly typed values are errors
that name the file and the key, so a typo never silently falls back to a
default.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping

import yaml

from .errors import ConfigError
from .settings import check_section, parse_section, section_dict, setting

__all__ = ["Config", "EncodeConfig", "RuntimeConfig", "ShotsConfig", "HistogramConfig", "TransNetConfig",
           "RetrievalConfig", "ReferencesConfig", "KeyframesConfig", "TransferConfig", "ExemplarConfig",
           "TemporalConfig", "PreviewConfig", "load_config", "parse_section"]


@dataclass(frozen=True)
class EncodeConfig:
    """How the colour video is encoded.

    ``crf`` and ``preset`` apply to encoders that have them (x264, x265,
    VP9, AV1); ``None`` takes the codec's archival default. ``pix_fmt`` None
    keeps the input's chroma subsampling and bit depth where the encoder and
    frame size allow it.
    """

    codec: str = "libx264"
    crf: int | None = setting(None, ge=0, le=63)
    preset: str | None = None
    pix_fmt: str | None = None
    options: dict[str, str] = field(default_factory=dict)


#: runtime.precision values
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
#: OpenCV DIS optical-flow presets by name (fine: medium carried on to full resolution, vidcolor.ops.dis_flow)
FLOW_PRESETS = ("ultrafast", "fast", "medium", "fine")
#: temporal.mode values
TEMPORAL_MODES = ("off", "forward", "bidirectional")


@dataclass(frozen=True)
class RuntimeConfig:
    """Where and in what chunks the work runs."""

    device: str = "auto"  # auto | cpu | cuda | cuda:N
    batch_size: int = setting(8, ge=0, le=1024)  # 0: sized to the GPU's free memory (8 on a CPU)
    precision: str = setting("auto", choices=PRECISIONS)  # auto (fp16 on a GPU, fp32 on a CPU): the networks' arithmetic
    queue_size: int = setting(32, ge=2, le=4096)
    threads: int = setting(0, ge=0)  # torch intra-op threads; 0 = half the cores (runtime.torch_threads); at most max_threads()
    max_damaged_frames: int = setting(25, ge=0, le=100_000)  # undecodable frames in a row repaired (the previous
    # one repeated) before a run stops

    def check(self, prefix: str) -> str | None:
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            return f"{prefix}device must be auto, cpu, cuda or cuda:N, got {self.device!r}"
        if self.threads > max_threads():
            return (f"{prefix}threads must be at most {max_threads()} (4 per CPU core; this machine has "
                    f"{os.cpu_count() or 1}), got {self.threads}")
        return None


@dataclass(frozen=True)
class TransferConfig:
    """Luminance-conditioned colour transfer (Welsh et al. 2002 with
    Reinhard et al. 2001 luminance remapping).

    Each target pixel takes the mean chroma of reference pixels with similar
    luminance and texture (local standard deviation of L over ``window``),
    read from a smoothed (L, texture) table; thinly populated table cells are
    pulled towards the reference's global mean chroma by ``prior``.
    """

    l_bins: int = setting(32, ge=2, le=256)
    texture_bins: int = setting(8, ge=1, le=64)
    texture_max: float = setting(16.0, gt=0)  # local std of L (0..100 scale) mapped to the last bin
    window: int = setting(5, ge=1)  # pixels, odd
    smooth: float = setting(1.0, ge=0)  # Gaussian sigma over table cells
    prior: float = setting(0.25, ge=0)  # strength of the global-mean prior, in units of the mean cell count
    remap_luminance: bool = True
    max_side: int = setting(512, ge=16)  # reference statistics are taken at most at this size

    def check(self, prefix: str) -> str | None:
        return f"{prefix}window must be a positive odd number, got {self.window}" if self.window % 2 == 0 else None


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
    forward one (a coarser one is enough there); ``fb_sigma`` (pixels at the
    working size) and ``l_sigma_lab`` (Lab L units, 0..100; the key was
    ``l_sigma``): how fast flow confidence falls with the
    forward-backward error and the luminance mismatch; ``outside_sigma``
    (pixels): how fast it falls where the flow leaves the still (the still's
    edge colour carried on; 0: no colour from the flow outside the still);
    ``follow_exposure``: the still's chroma scaled by how much more or less light the frame has than
    the still where they show the same scene, a gain quadratic across the picture
    (:func:`vidcolor.ops.exposure_fit`: a print's flicker or vignette darkens the colour with the
    luma, as a darker print of the scene would; where the frame's exposure, gain and black shift,
    takes a colour out of R'G'B', it is pulled toward neutral; off: the still's chroma as it is on
    any luma);
    ``prealign``: bring the still onto each frame by an affine map fitted to
    feature matches before the flow, where one clearly holds (a still framed
    or zoomed otherwise than the shot); ``reference_flow_every``: a flow to the still on every
    n-th frame of a shot, the frames between reached by chaining the temporal smoother's
    frame-to-frame flow on from it (sooner where the chained confidence falls). 1, the default: a
    flow to the still on every frame; 4 (``configs/fast.yaml``) saves a fifth of the CPU's work but
    costs about 1 dB on the development clips (the frame-to-frame flow is coarser); ``temperature``: of
    the attention softmax over cosine similarities; ``tone_weight``: how much a
    difference in mean luminance (0..1) between a frame cell and a reference
    cell lowers their similarity (0: features only); ``attention_radius``:
    the guided filter (working pixels, 0 = none) that makes the attention's
    colour follow the frame's edges; ``grain_blur``: on a grainy print (the
    grain filter, ``temporal.degrain``, on) the attention's features of the
    frames and of the still are those of copies blurred by a Gaussian of this
    sigma (working pixels; 0: as they are): the backbone reads grain as
    texture, and a grainy frame's cells match the clean still's poorly
    (similarity 0.8 -> 0.5 at twice the old-film benchmark's grain). A trade:
    more blur, better matches to a still of the shot itself, worse to a still
    of another view (see the README's old-film figures);
    ``gate_low``/``gate_high``:
    a shot whose match score with the still (as retrieval scores it) is under
    ``gate_low`` gets no colour from it (a run colours that shot with
    ``auto`` instead), over ``gate_high`` full colour, between them its
    colour mixed with ``auto``'s in proportion; ``view_check``: a still that scores under
    ``gate_high`` is looked for in the shot by the flow, and one found over most of its first frames
    is a view of it and given in full (:data:`vidcolor.references.choose.VIEW`: an old print's grain,
    darkness and softness lower a keyframe's score; false: the score alone);
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

    work_size: int = setting(256, ge=32)
    enlarge: bool = True  # a film smaller than work_size is enlarged to it (DIS's patches are a fixed 8 px)
    flow: bool = True
    flow_preset: str = setting("medium", choices=FLOW_PRESETS)
    check_preset: str = setting("fast", choices=FLOW_PRESETS)
    fb_sigma: float = setting(5.0, gt=0)  # pixels at the working size
    l_sigma_lab: float = setting(15.0, gt=0)  # Lab L units (0..100)
    outside_sigma: float = setting(16.0, ge=0)  # pixels at the working size
    prealign: bool = True
    follow_exposure: bool = True  # the still's chroma scaled with the frame's exposure against it
    reference_flow_every: int = setting(1, ge=1, le=1000)  # frames between flows to the still; chained between
    temperature: float = setting(0.04, gt=0)
    tone_weight: float = setting(1.0, ge=0)
    attention_radius: int = setting(8, ge=0)  # working pixels
    grain_blur: float = setting(1.0, ge=0)  # working pixels: a grainy print's features matched on copies so blurred
    gate_low: float = setting(0.3, ge=0, le=1)
    gate_high: float = setting(0.45, ge=0, le=1)
    view_check: bool = True  # a still scored short but found in the shot by the flow is a view of it
    guide_radius: int = setting(2, ge=1)
    guide_eps: float = setting(1e-3, gt=0)
    saturation: float = setting(1.0, ge=0)
    weights: str | None = "rule"  # no fusion net ships: the rule, explicitly (null is the same)
    matcher: str | None = None

    RENAMED: ClassVar[dict[str, str]] = {"l_sigma": "l_sigma_lab"}

    def check(self, prefix: str) -> str | None:
        if self.gate_low > self.gate_high:
            return f"{prefix}gate_low must be at most {prefix}gate_high, got {self.gate_low} > {self.gate_high}"
        return None


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

    work_size: int = setting(224, ge=32)
    temperature: float | None = setting(None, gt=0, le=10)  # None: the one fitted with the weights' decoding
    saturation: float = setting(1.0, ge=0)
    guide_radius: int = setting(2, ge=1)
    guide_eps: float = setting(1e-3, gt=0)
    weights: str | None = None
    palette: str | None = None
    # fitted: the weights' calibrated decoding; legacy: the plain annealed mean
    decoding: str = setting("fitted", choices=("fitted", "legacy"))


@dataclass(frozen=True)
class ZhangConfig:
    """Zhang et al.'s released networks (``eccv16``, ``siggraph17``), for users who
    own the weight files: ``weights`` the .pth file (required); ``work_size``
    the square size the network sees (a multiple of 8; 256 as released);
    ``temperature`` (ECCV16 only) of the softmax over its 313 bins: 1 is what
    the released code does."""

    weights: str | None = None
    work_size: int = setting(256, ge=32)
    temperature: float = setting(1.0, gt=0, le=10)

    def check(self, prefix: str) -> str | None:
        return f"{prefix}work_size must be a multiple of 8, got {self.work_size}" if self.work_size % 8 else None


@dataclass(frozen=True)
class TemporalConfig:
    """Temporal smoothing of chroma inside each shot (:mod:`vidcolor.temporal`).

    ``mode``: off, forward (causal, streaming) or bidirectional (a backward
    pass too, in windows of ``window`` frames looking ``overlap`` frames
    ahead); ``strength``: weight of the flow-carried past where the flow
    holds (0 = off, towards 1 = stiffer); ``flow_preset``: OpenCV DIS preset
    of the frame-to-frame flow, computed with the short side at most
    ``flow_size``; ``fb_sigma`` (pixels at the flow size) and ``l_sigma_8bit``
    (8-bit luma codes, 0..255; the key was ``l_sigma``): how fast the confidence in the flow falls with the forward-backward error
    and the luminance mismatch; ``detail`` (chroma pixels, 0 = none): Gaussian sigma splitting
    each frame's chroma into a smooth part, which is steadied, and the detail
    around it, which is kept from the frame itself (repeated warping would
    blur it). ``deflicker`` (``--deflicker``, off by default): the output
    luma's exposure equalised frame to frame inside each shot
    (:mod:`vidcolor.temporal.deflicker`), the one option that changes the
    film's luminance. ``follow_exposure``: the colour carried from the frame
    before scaled by the exposure change between the two (a print's flicker:
    a dimmer frame has proportionally less chroma); a colorizer whose answer
    is at the frame's exposure already (a still blended with automatic colour)
    asks for it for its shots. The exemplar's and keyframes' colour is
    smoothed at the still's exposure instead and given each frame's after
    the smoother (``exemplar.follow_exposure``). ``defects``: an old print's
    dust and scratches filled in the luma the colour is worked out from
    (:mod:`vidcolor.temporal.defects`); ``degrain``: a grainy print's grain
    smoothed out of it (:mod:`vidcolor.temporal.grain`); the output keeps both.
    """

    mode: str = setting("forward", choices=TEMPORAL_MODES)
    strength: float = setting(0.85, ge=0, lt=1)
    flow_preset: str = setting("fast", choices=FLOW_PRESETS)
    flow_size: int = setting(256, ge=16)  # pixels, short side, at most
    fb_sigma: float = setting(1.0, gt=0)  # pixels at the flow size
    l_sigma_8bit: float = setting(8.0, gt=0)  # 8-bit luma codes (0..255)
    window: int = setting(96, ge=2)  # frames
    overlap: int = setting(16, ge=0, le=1024)  # frames
    detail: float = setting(2.0, ge=0)  # chroma pixels
    deflicker: bool = False
    defects: bool = True
    degrain: bool = True
    follow_exposure: bool = False  # the carried colour scaled by the exposure change (the exemplar's shots: on)

    RENAMED: ClassVar[dict[str, str]] = {"l_sigma": "l_sigma_8bit"}


@dataclass(frozen=True)
class HistogramConfig:
    """``shots.histogram``: the classical detector (:class:`~vidcolor.shots.histogram.HistogramDetector`).

    ``threshold``: how many times the mean change score of its neighbours a
    cut's must be; ``min_score``: the least change score of a cut (0..100);
    ``window``: neighbours each side (frames); ``min_shot_len``: least frames
    between two boundaries; ``bins``: luminance histogram bins;
    ``black_level``/``black_sd``: mean and standard deviation (8-bit codes)
    up to which a frame is black; ``dissolves``: look for dissolves at all;
    ``dissolve_min``: least mean pixel change (8-bit codes) across a dissolve.
    """

    threshold: float = setting(3.0, gt=0)
    min_score: float = setting(8.0, ge=0)
    window: int = setting(2, ge=1, le=8)
    min_shot_len: int = setting(8, ge=1)
    bins: int = setting(32, ge=2, le=256)
    black_level: float = setting(20.0, ge=0, le=255)
    black_sd: float = setting(10.0, ge=0, le=255)
    dissolves: bool = True
    dissolve_min: float = setting(8.0, ge=0, le=255)


@dataclass(frozen=True)
class TransNetConfig:
    """``shots.transnet``: TransNetV2 (:class:`~vidcolor.shots.transnet.TransNetDetector`).

    ``threshold``: single-frame probability over which a frame ends a shot;
    ``low_threshold``: a local peak over this ends one when the classical
    cross-check (``ratio`` times the neighbours' mean change score, at least
    ``min_score`` of 100, ``window`` frames each side) confirms a hard cut;
    ``cross_check``: false leaves the network alone; ``span_threshold``: the
    all-frames head's probability over which frames belong to a transition;
    ``fade_level``: darkest frame's mean (8-bit codes) up to which a gradual
    transition is a fade; ``max_span``: longest transition (frames).
    """

    threshold: float = setting(0.5, gt=0, lt=1)
    span_threshold: float = setting(0.5, gt=0, lt=1)
    fade_level: float = setting(32.0, ge=0, le=255)
    max_span: int = setting(26, ge=1)
    cross_check: bool = True
    low_threshold: float = setting(0.02, gt=0, lt=1)
    ratio: float = setting(3.0, gt=0)
    min_score: float = setting(8.0, ge=0)
    window: int = setting(2, ge=1, le=3)

    def check(self, prefix: str) -> str | None:
        if self.low_threshold > self.threshold:
            return (f"{prefix}low_threshold must be at most {prefix}threshold, "
                    f"got {self.low_threshold} > {self.threshold}")
        return None


@dataclass(frozen=True)
class ShotsConfig:
    """Shot detection: a registered detector (``transnet``, ``histogram``), ``off``,
    or ``auto``: TransNetV2 when the model runs on a GPU, the histogram detector
    on a CPU, where TransNetV2 (about 150 frames/s on two cores) would cost
    more than the rest of a ``transfer`` run. Each detector's settings are
    the section of its name (a detector registered from outside the package
    with a config too: ``extra``)."""

    detector: str = "auto"
    histogram: HistogramConfig = field(default_factory=HistogramConfig)
    transnet: TransNetConfig = field(default_factory=TransNetConfig)
    extra: dict[str, Any] = field(default_factory=dict)  # sections of detectors registered from outside

    OPEN_TO: ClassVar[str] = "shot detector"


MATCH_POLICIES = ("strict", "normal", "force")  # references.match


@dataclass(frozen=True)
class ReferencesConfig:
    """How a shot's given still is taken (:mod:`vidcolor.references.choose`). ``match``:
    ``normal``: a still that matches its shot poorly (score under ``exemplar.gate_low``)
    gives way to automatic colour, one that matches partly is blended with it; ``strict``:
    only a still over ``exemplar.gate_high`` is used; ``force``: every shot takes its
    given still at full strength. The still named for one photograph (or a film of one
    shot, shot detection off) is always used."""

    match: str = setting("normal", choices=MATCH_POLICIES)


@dataclass(frozen=True)
class KeyframesConfig:
    """``--keyframes``: several coloured frames per shot (:mod:`vidcolor.models.keyframes`).
    ``attend``: keyframes whose cells each frame's attention looks over (the nearest ones);
    ``low_confidence``: a frame whose carried colour reaches less than this share of it (the
    flows' confidence, 0..1) is in a low-confidence stretch of the report, where a keyframe is
    wanted (``vidcolor keyframes --suggest``)."""

    attend: int = setting(4, ge=1, le=64)
    low_confidence: float = setting(0.5, ge=0, le=1)


@dataclass(frozen=True)
class RetrievalConfig:
    """Choosing a still per shot from a folder (Deep Exemplar-based Colorization, section 4)."""

    threshold: float = setting(0.5, ge=0, le=1)  # a best score under this is "no good match"
    frames: int = setting(3, ge=1, le=64)  # frames of the shot's start the choice looks at
    top_k: int = setting(5, ge=1, le=1000)  # candidates of the global ranking that the local ranking re-orders


@dataclass(frozen=True)
class FarmConfig:
    """The render farm (``--jobs N``, ``--ray``): a film is cut into segments of
    about ``segment_seconds``, only at shot boundaries; a failed segment is
    tried ``retries`` more times before the job stops."""

    segment_seconds: float = setting(60.0, gt=0)
    retries: int = setting(2, ge=0, le=100)


@dataclass(frozen=True)
class PreviewConfig:
    """``--preview``: ``seconds`` from the start of each shot (the whole shot
    when shorter), joined into one short file; ``max_shots``: at most this
    many shots, spread evenly over the film (0: every shot)."""

    seconds: float = setting(3.0, gt=0, le=3600)
    max_shots: int = setting(0, ge=0)  # 0: every shot


@dataclass(frozen=True)
class Config:
    """The whole configuration: one section per component. A colorizer registered from
    outside the package with a config (``register_colorizer(name, config=MyConfig)``)
    has its section under its name too, kept in ``extra``; a component gets its section
    from :func:`vidcolor.settings.find_section`, never by an attribute of its name."""

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
    extra: dict[str, Any] = field(default_factory=dict)  # sections of colorizers registered from outside

    OPEN_TO: ClassVar[str] = "colorizer"

    def to_dict(self) -> dict[str, Any]:
        return section_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | None = None) -> "Config":
        """The inverse of :meth:`to_dict` (keys left out keep their defaults), validated."""
        return check_section(parse_section(cls, data, "", source), "", source)


def max_threads() -> int:
    """The most threads a config or option may ask for: 4 per CPU core (more only thrashes, and
    OpenMP dies allocating their stacks)."""
    return 4 * (os.cpu_count() or 1)


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
            cfg = parse_section(Config, data, "", source, cfg)
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
        cfg = parse_section(Config, nested, "", "command line", cfg)
    return check_section(cfg, "", source)
