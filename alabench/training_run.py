"""One training run set up from params, by one function: the `train` stage runs it and bench/train.py
times it, so the two cannot drift apart (a method's own learning rate or window reaching one and not
the other, as happened twice).

The run is everything :func:`alabench.training.train` is given but the process group and the
checkpoint path: the method's module (seeded), its loss, ``train`` and ``train_data`` with the
method's declared overrides, the training and validation windows, and the config a resumed
checkpoint must match (params, training frames and the project's code).
"""

from __future__ import annotations

import dataclasses
import hashlib

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from alabench import layout
from alabench.blur import Eq7
from alabench.cascade import cascade_spec, find_cascade
from alabench.config import ParamError, Params, TrainDataParams, TrainParams
from alabench.datasets import ClipCache, TrainWindows, ValidationWindows, split_train_val
from alabench.frames import list_clips, list_frames
from alabench.methods import Method, MethodError, build_model, discover, get_method, knockouts_of, load_weights
from alabench.released import weights_of
from alabench.training import build_loss, with_overrides

ROOT = Path(__file__).resolve().parent.parent  # the checkout whose code this process runs
CODE = ("alabench", "models", "baselines", "stages")


def _digest(files: list[tuple[str, Path]]) -> str:
    """Hash of (name, bytes) pairs in the given order (names relative to their root, so the checkout
    may move): a rewrite of the same size changes it, a `dvc checkout` (new mtime, same bytes) does not."""
    digest = hashlib.sha256()
    for name, path in files:
        digest.update(f"{name}:".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def data_fingerprint(clip_dirs: list[Path]) -> str:
    """Hash of every training frame's name and bytes: re-rendered or damaged training data is never
    resumed from a checkpoint trained on the old frames (~0.3 s for the default 3,000 frames)."""
    return _digest([(f"{clip.name}/{path.name}", path) for clip in sorted(clip_dirs) for path in list_frames(clip)])


def code_fingerprint(root: Path | None = None) -> str:
    """Hash of every Python file of the project's code (names and bytes). DVC reruns a train stage
    whose code changed; without this in the resume key, the rerun would find its finished checkpoint
    with the same params and data, resume it at its last step and return the old model. Any change
    of the code starts training over (a few ms for the ~100 files)."""
    root = root or ROOT
    files = sorted(f for package in CODE for f in (root / package).rglob("*.py"))
    return _digest([(str(path.relative_to(root)), path) for path in files])


@dataclass(frozen=True)
class TrainingRun:
    method: Method
    model: nn.Module  # built under torch.manual_seed(seed): the same initial weights for the same seed
    loss: nn.Module
    train: TrainParams  # params.yaml's, with the method's own values where its options declare them
    train_data: TrainDataParams
    train_set: TrainWindows
    val_set: ValidationWindows
    # what a checkpoint must match to be resumed, and what the saved checkpoint records
    config: dict[str, Any]


def prepare_training(params: Params, method_name: str, dataset: str, seed: int, root: Path = Path(".")) -> TrainingRun:
    """Method ``method_name`` set up to train on ``dataset``'s train split (``root``/data/sharp/<dataset>/train)
    with ``seed``; a MethodError when it is unknown or does not train. A cascade's ``_tuned`` twin
    starts from its components' checkpoints of ``seed`` and trains ``tune_epochs`` with the
    interpolator's own training values (alabench.cascade)."""
    spec = cascade_spec(method_name, params)
    method = find_cascade(method_name, params, discover(), dataset) if spec else get_method(method_name)
    if not method.trains:
        raise MethodError(f"method '{method_name}' does not train; remove it from train.methods")
    if weights_of(method.options_from(params)):
        raise MethodError(f"methods.{method_name}.weights is set, so {method_name} evaluates its authors' released "
                          "weights and is not trained here: move it from train.methods to evaluate.methods "
                          "(or set weights: '' to train it)")
    torch.manual_seed(seed)
    model = build_model(method, params)
    for part in method.uses:  # a tuned cascade: from its components' weights of the same seed
        load_weights(model.parts[part], part, layout.checkpoint(dataset, part, seed, root))
    options = (get_method(spec.interpolate) if spec else method).options_from(params)  # the interpolator's, if tuned
    cfg = with_overrides(params.train, "train", options)
    if spec:
        cfg = dataclasses.replace(cfg, epochs=spec.tune_epochs)
    data_cfg = with_overrides(params.train_data, "train_data", options)
    declared = knockouts_of(model)
    if cfg.track_knockout and declared and cfg.track_knockout not in declared:  # found now, not after an epoch
        raise ParamError(f"train.track_knockout = {cfg.track_knockout!r}: {method_name} declares the knock-outs "
                         f"{sorted(declared)}; name one of them, or '' for none")
    eq7 = Eq7.from_params(params.blur)
    train_clips, val_clips = split_train_val(list_clips(layout.sharp_dir(dataset, "train", root)),
                                             params.train_data.val_clips)
    cache = ClipCache(Path(root) / layout.clip_cache(dataset))
    train_set = TrainWindows(train_clips, eq7, data_cfg, cache)
    val_set = ValidationWindows(val_clips, eq7, data_cfg, cache)
    # The lists of methods, data sets and seeds stay out: adding a seed must not void a resume.
    shared = {k: v for k, v in asdict(cfg).items() if k not in ("methods", "datasets", "seeds")}
    config = {"method": method_name, "dataset": dataset, "seed": seed, "train": shared,
              "train_data": asdict(data_cfg), "blur": asdict(params.blur),
              "model": asdict(getattr(model, "config", params.train)), "train_clips": [c.name for c in train_clips],
              "data": data_fingerprint(train_clips + val_clips), "code": code_fingerprint()}
    return TrainingRun(method, model, build_loss(params, method), cfg, data_cfg, train_set, val_set, config)
