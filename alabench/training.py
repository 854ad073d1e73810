"""The training loop every trainable method shares (stage `train`).

Reads top to bottom: set up (one process, or DDP under ``torchrun``), resume if a checkpoint of the
*same* configuration exists, then epochs of steps with the learning-rate schedule, a checkpoint
every N steps, and a validation pass per epoch. Only rank 0 validates, logs and writes.

Reproducible by construction: the sample order of an epoch comes from ``(seed, epoch)``, a
sample's random draws from ``(seed, epoch, index)`` (see ``datasets.TrainWindows``), and nothing
else draws random numbers after the model is initialised. So a run killed at any step and resumed
from its checkpoint ends with the same weights as one that never stopped, and two processes on
half batches match one process on the whole batch (DDP averages the gradients).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import math
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as torch_dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Sampler

from alabench.config import Params, TrainDataParams, TrainParams
from alabench.diagnostics import training_diagnostics
from alabench.errors import UserError, disk_full_names, unreadable
from alabench.frames import atomic_write_bytes
from alabench.methods import Method, knockouts_of
from alabench.metrics import psnr, ssim, to_uint8
from alabench.progress import progress
from models.losses import PerceptualLoss, ReconstructionLoss

log = logging.getLogger(__name__)
VALIDATION_PSNR_CAP = 50.0  # dB; a frame returned unchanged would otherwise average to infinity
DIVERGED_LOSS_FACTOR = 100.0  # a step's loss this many times the first step's: the run has diverged
DIVERGED_VALIDATION_DB = 10.0  # validation joint PSNR this far below the blurry input's: diverged


class TrainingError(UserError, RuntimeError):
    """Training cannot go on (a NaN loss, a data set too small for one batch): says what to do."""


class UnreadableCheckpoint(UserError, ValueError):
    """A checkpoint file torch cannot read (truncated, damaged, not a checkpoint); names the file."""


@dataclass(frozen=True)
class Distributed:
    rank: int
    world: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> Distributed:
    """One process, or DDP when launched by ``torchrun`` (NCCL on GPUs, gloo on CPU processes)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Distributed(0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    local_rank = int(os.environ["LOCAL_RANK"])
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if not torch_dist.is_initialized():
        torch_dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Distributed(torch_dist.get_rank(), world, device)


def shared_loss(params: Params) -> ReconstructionLoss:
    """Paper eq. 8 with ``train.perceptual_weight`` and ``train.perceptual_layers``: every method's
    loss unless its Method names its own."""
    cfg = params.train
    if cfg.perceptual_weight == 0:
        return ReconstructionLoss(None, 0.0, cfg.charbonnier_eps)
    from alabench.weights import vgg16_features
    return ReconstructionLoss(PerceptualLoss(vgg16_features(), cfg.perceptual_layers), cfg.perceptual_weight,
                              cfg.charbonnier_eps)


def build_loss(params: Params, method: Method) -> nn.Module:
    """The method's own published loss where it names one (given its parsed options), else the shared eq. 8 loss."""
    return method.loss(params, method.options_from(params)) if method.loss else shared_loss(params)


def cpu_has_bf16() -> bool:
    """True where the CPU computes bfloat16 natively (AMX or AVX512-BF16): autocast is then ~2x
    faster for these models; elsewhere it is emulated and slower than float32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " amx_bf16" in flags or " avx512_bf16" in flags


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """``train.precision`` -> the autocast type (None: float32). ``auto`` takes bfloat16 where the
    GPU or CPU has it and falls back to float32 elsewhere."""
    if precision == "float32":
        return None
    if precision == "auto":
        native = torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_has_bf16()
        return torch.bfloat16 if native else None
    return torch.bfloat16


def lr_at_epoch(cfg: TrainParams, epoch: int) -> float:
    """Step decay: ``lr * gamma^k`` after k of the milestones (shares of the epochs) have passed."""
    passed = sum(epoch >= math.ceil(m * cfg.epochs) for m in cfg.lr_milestones)
    return cfg.lr * cfg.lr_gamma ** passed


def lr_at_step(cfg: TrainParams, step: int, steps_per_epoch: int) -> float:
    """The learning rate of step ``step`` (0-based): the paper's step decay by epoch, or a cosine
    from ``lr`` to 0 over the whole run after a linear warm-up of 3 % of it (short CPU runs learn
    more from a high rate that then settles than from a few long plateaus)."""
    if cfg.lr_schedule == "step":
        return lr_at_epoch(cfg, step // steps_per_epoch)
    total = cfg.epochs * steps_per_epoch
    warmup = max(1, round(0.03 * total))
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(total - warmup, 1)))


class EpochOrder(Sampler[int]):
    """This rank's share of a seeded permutation, cut to whole global batches, from a given batch on."""

    def __init__(self, size: int, global_batch: int, seed: int, epoch: int, dist: Distributed, start_batch: int = 0):
        self.size, self.global_batch, self.seed, self.epoch = size, global_batch, seed, epoch
        self.dist, self.start_batch = dist, start_batch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.size, generator=g)[: (self.size // self.global_batch) * self.global_batch]
        # Rank r takes every world-th index, so its k-th batch and the other ranks' k-th batches
        # together are exactly global batch k.
        return iter(order[self.start_batch * self.global_batch:][self.dist.rank::self.dist.world].tolist())

    def __len__(self) -> int:
        return (self.size // self.global_batch - self.start_batch) * (self.global_batch // self.dist.world)


def fingerprint(config: dict[str, Any]) -> str:
    """What must match for a checkpoint to be resumed: the method and every param that shapes training."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Atomic, and the same bytes for the same tensors: serialised in memory, because torch.save to
    a path names the zip entries after the (temporary, random) file name."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with disk_full_names(path):
        atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint, loaded with ``weights_only=True`` (never otherwise: a file from elsewhere may
    hold code); UnreadableCheckpoint naming the file when it is not one."""
    try:
        with warnings.catch_warnings():  # a foreign pickle protocol warns before it is refused
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (FileNotFoundError, PermissionError):
        raise
    except Exception as err:  # torch raises many types for a broken file: zip, pickle, EOF, OS, index errors
        raise UnreadableCheckpoint(unreadable(path, err, "delete it, or write it again")) from None
    if not isinstance(state, dict):
        raise UnreadableCheckpoint(f"{path}: holds a {type(state).__name__}, not a checkpoint; delete it, or "
                                   f"write it again")
    return state


def read_resume_state(path: Path) -> dict[str, Any] | None:
    """The resume state at ``path``, or None where there is none. One that cannot be read (truncated
    or overwritten by something else) is moved aside to ``<name>.corrupt``, kept for a look but never
    read again, and the run starts over from step 0, saying so in one line."""
    try:
        return load_checkpoint(path)
    except FileNotFoundError:  # none yet (or another DDP rank moved a broken one aside first)
        return None
    except UnreadableCheckpoint as err:
        aside = path.with_name(path.name + ".corrupt")
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, aside)
        log.warning("%s; moved aside to %s: training starts over from step 0", str(err).split("; ")[0], aside)
        return None


def keep_threads(threads: int | None) -> None:
    """Resume with the thread count the run started with (``alabench.threads`` may pick another under
    another load): float32 weight gradients differ in their last bits between counts, and a resumed
    run must end with the bytes of one that never stopped."""
    if threads and threads != torch.get_num_threads():
        log.info("using %d torch threads, as the run being resumed did (this load would give %d)",
                 threads, torch.get_num_threads())
        torch.set_num_threads(threads)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


def scored_slots(model: nn.Module, window: int) -> tuple[list[int], list[int]]:
    """The deblur and interpolation slots validation scores: the module's own estimates where it names
    them (``scored_slots(window)``: BIN hands its window's end inputs back unchanged), else all."""
    own = getattr(model, "scored_slots", None)
    return own(window) if callable(own) else (list(range(window)), list(range(window - 1)))


@torch.no_grad()
def validate(model: nn.Module, data: Dataset, device: torch.device) -> dict[str, float]:
    """Mean PSNR (capped at VALIDATION_PSNR_CAP) / SSIM of deblurred and interpolated frames, and of
    the blurry-input baseline (deblur = the input, interpolation = mean of its two neighbours), on
    the slots the module really estimates (:func:`scored_slots`)."""
    model.eval()
    scores: dict[str, list[float]] = {}

    def add(key: str, outputs: torch.Tensor, targets: torch.Tensor, slots: list[int]) -> None:
        for out, tgt in zip(to_uint8(outputs[:, slots].flatten(0, 1)), to_uint8(targets[:, slots].flatten(0, 1))):
            scores.setdefault(f"{key}_psnr", []).append(min(psnr(out, tgt), VALIDATION_PSNR_CAP))
            scores.setdefault(f"{key}_ssim", []).append(ssim(out, tgt))

    for i in range(len(data)):  # type: ignore[arg-type]
        sample = data[i]
        inputs = sample["inputs"].unsqueeze(0)
        deblur, interp = model(inputs.to(device))
        d, m = scored_slots(model, inputs.shape[1])
        add("deblur", deblur.cpu(), sample["deblur"].unsqueeze(0), d)
        add("interp", interp.cpu(), sample["interp"].unsqueeze(0), m)
        add("input_deblur", inputs, sample["deblur"].unsqueeze(0), d)
        add("input_interp", (inputs[:, :-1] + inputs[:, 1:]) / 2, sample["interp"].unsqueeze(0), m)
    model.train()
    means = {k: float(np.mean(v)) for k, v in scores.items()}
    for prefix in ("", "input_"):  # joint = all output frames together
        n_d, n_i = len(scores[f"{prefix}deblur_psnr"]), len(scores[f"{prefix}interp_psnr"])
        for metric in ("psnr", "ssim"):
            means[f"{prefix}joint_{metric}"] = (means[f"{prefix}deblur_{metric}"] * n_d
                                               + means[f"{prefix}interp_{metric}"] * n_i) / (n_d + n_i)
    return means


def knockout_cost(model: nn.Module, data: Dataset, device: torch.device, intact: dict[str, float],
                  name: str) -> dict[str, float]:
    """``<name>_cost_<kind>``: validation PSNR of the intact model (``intact``, :func:`validate`'s row)
    minus with knock-out ``name`` active, per kind: when, along training, the part starts to matter.
    Empty where ``name`` is '' or the model does not declare it."""
    if not name or name not in knockouts_of(model):
        return {}
    with model.knockout(name):  # type: ignore[operator]
        off = validate(model, data, device)
    return {f"{name}_cost_{kind}": intact[f"{kind}_psnr"] - off[f"{kind}_psnr"] for kind in ("deblur", "interp", "joint")}


def diagnostic_inputs(data: Dataset, count: int = 4) -> torch.Tensor:
    """(B, W, 3, H, W): the first validation windows' inputs, on which the history's gate spread is measured."""
    return torch.stack([data[i]["inputs"] for i in range(min(count, len(data)))])  # type: ignore[arg-type]


def mean_over_ranks(value: torch.Tensor, dist: Distributed) -> float:
    """The global batch's loss: each rank's half-batch mean, averaged (NaN anywhere gives NaN)."""
    value = value.detach().float().reshape(1).clone()
    if dist.world > 1:
        torch_dist.all_reduce(value)
        value /= dist.world
    return float(value.item())


OVERRIDES = "alabench.training.overrides"  # the field metadata key that :func:`overrides` sets
OVERRIDABLE: dict[str, type] = {"train": TrainParams, "train_data": TrainDataParams}
C = TypeVar("C", TrainParams, TrainDataParams)


def overrides(key: str, default: Any) -> Any:
    """Declare a field of a method's ``Options`` as its own value of ``key``, a key of params.yaml's
    ``train`` or ``train_data`` (``lr: Annotated[float, Range(0.0, 1.0)] = overrides("train.lr", 0.0)``):
    the method trains with it where it is set (not 0 / false). Only declared fields override: an
    option that merely shares a name (a ``window`` of some other meaning) changes nothing."""
    section, _, name = key.partition(".")
    if section not in OVERRIDABLE or name not in {f.name for f in dataclasses.fields(OVERRIDABLE[section])}:
        raise TypeError(f"overrides({key!r}): not a key of params.yaml's "
                        f"{' or '.join(OVERRIDABLE)} (e.g. 'train.lr', 'train_data.window')")
    return dataclasses.field(default=default, metadata={OVERRIDES: key})


def with_overrides(cfg: C, section: str, options: Any) -> C:
    """``cfg``, params.yaml's ``section`` (``train`` or ``train_data``), with the values a method's
    ``options`` declare for its keys (:func:`overrides`) where they are set: one learning rate rarely
    suits every architecture on a short schedule, and a method trains on the inputs its design takes
    (BIN: 6, its two recurrent passes), validates on them too, and its resume key records them."""
    if options is None:
        return cfg
    changes = {}
    for f in dataclasses.fields(options):
        target, _, name = f.metadata.get(OVERRIDES, "").partition(".")
        if target == section and getattr(options, f.name):
            changes[name] = getattr(options, f.name)
    return dataclasses.replace(cfg, **changes) if changes else cfg


def check_validation(row: dict[str, float], cfg: TrainParams, start: float) -> None:
    """Stop a run whose outputs fell far below the blurry input *and* below where the untrained model
    started (``start``, its validation joint PSNR): it has diverged. A model that starts far below the
    input (one that predicts frames directly, ``residual: false``) is not stopped for starting there."""
    if row["joint_psnr"] < row["input_joint_psnr"] - DIVERGED_VALIDATION_DB and row["joint_psnr"] < start - 1.0:
        raise TrainingError(f"validation joint PSNR {row['joint_psnr']:.2f} dB after epoch {int(row['epoch'])} is "
                            f"more than {DIVERGED_VALIDATION_DB:g} dB below the blurry input's "
                            f"{row['input_joint_psnr']:.2f} dB and below the untrained model's {start:.2f} dB: "
                            f"training diverged. Lower train.lr (now {cfg.lr:g}) and rerun")


def train(model: nn.Module, loss_fn: nn.Module, train_set: Dataset, val_set: Dataset, cfg: TrainParams,
          dist: Distributed, checkpoint: Path, config: dict[str, Any], seed: int = 0,
          on_epoch: Callable[[dict[str, float]], None] = lambda row: None,
          stop_after_step: int | None = None) -> list[dict[str, float]]:
    """Train ``model`` (inputs -> (deblur, interp)) and return the per-epoch history.

    ``checkpoint`` is written every ``cfg.checkpoint_every`` steps and at the end of each epoch; a
    checkpoint made with another ``config`` (which should name the training data's
    ``data_fingerprint``) is ignored (and overwritten), never resumed. ``seed`` orders the samples.
    An epoch's validation row is written with the epoch-end checkpoint, so a run killed between
    an epoch's last step and its validation validates that epoch when it resumes.
    ``stop_after_step`` ends the run early, as a kill would (used by tests).
    """
    if cfg.batch_size % dist.world:
        raise TrainingError(f"train.batch_size = {cfg.batch_size} must be divisible by the {dist.world} processes")
    steps_per_epoch = len(train_set) // cfg.batch_size  # type: ignore[arg-type]
    if steps_per_epoch == 0:
        raise TrainingError(f"the training set has {len(train_set)} windows, fewer than one batch of "  # type: ignore[arg-type]
                            f"{cfg.batch_size}; lower train.batch_size or add clips")
    model.to(dist.device, memory_format=torch.channels_last).train()  # measured faster for these convolutions
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    key = fingerprint(config)
    step, history, epoch_loss, first_loss, start_psnr = 0, [], [0.0, 0], None, None
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}  # W0 of the weight changes
    state = read_resume_state(checkpoint)
    if state is not None:
        if state.get("fingerprint") == key:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            initial = state.get("initial", initial)
            step, history, epoch_loss = state["step"], state["history"], state["epoch_loss"]
            first_loss, start_psnr = state.get("first_loss"), state.get("start_psnr")
            keep_threads(state.get("threads"))
            log.info("resuming from %s at step %d", checkpoint, step)
        else:
            log.warning("ignoring %s: it was made with other params, data or code", checkpoint)
    net = DistributedDataParallel(model) if dist.world > 1 else model
    loss_fn.to(dist.device)
    total = cfg.epochs * steps_per_epoch
    dtype = autocast_dtype(cfg.precision, dist.device)
    autocast = torch.autocast(dist.device.type, dtype=dtype or torch.float32, enabled=dtype is not None)
    log.info("training in %s", dtype or torch.float32)

    def save() -> None:
        if dist.is_main:
            save_checkpoint(checkpoint, {"fingerprint": key, "model": unwrap(net).state_dict(),
                                         "optimizer": optimizer.state_dict(), "step": step,
                                         "history": history, "epoch_loss": epoch_loss, "first_loss": first_loss,
                                         "start_psnr": start_psnr, "config": config, "initial": initial,
                                         "threads": torch.get_num_threads()})

    # the same validation windows every epoch, read once: where the history's gate spread is measured
    gate_inputs = diagnostic_inputs(val_set).to(dist.device) if dist.is_main else None
    if start_psnr is None and dist.is_main:  # where the untrained model stands: the divergence guard's floor
        start_psnr = validate(unwrap(net), val_set, dist.device)["joint_psnr"]
        unwrap(net).train()
    bar = progress(total=total, initial=step, desc="train", unit="step", disable=not dist.is_main)
    for epoch in range(len(history), cfg.epochs):  # an epoch without its history row is not done
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(epoch)
        # From the step reached in this epoch: all of it (the kill came before validation) leaves none.
        order = EpochOrder(len(train_set), cfg.batch_size, seed, epoch, dist, step - epoch * steps_per_epoch)  # type: ignore[arg-type]
        loader = DataLoader(train_set, batch_size=cfg.batch_size // dist.world, sampler=order,
                            num_workers=cfg.loader_workers, drop_last=True)
        for batch in loader:
            for group in optimizer.param_groups:
                group["lr"] = lr_at_step(cfg, step, steps_per_epoch)
            with autocast:
                deblur, interp = net(batch["inputs"].to(dist.device))
                extras = getattr(unwrap(net), "extras", None)  # intermediates a method's own loss reads
                parts = loss_fn([deblur.float(), interp.float()],
                                [batch["deblur"].to(dist.device), batch["interp"].to(dist.device)],
                                **({"extras": extras} if extras else {}))
            loss = parts["total"]
            value = mean_over_ranks(loss, dist)
            first_loss = value if first_loss is None else first_loss
            if not math.isfinite(value) or value > DIVERGED_LOSS_FACTOR * max(first_loss, 1e-12):
                bar.close()
                raise TrainingError(f"the loss became {value:.4g} at step {step + 1} (epoch {epoch + 1}), against "
                                    f"{first_loss:.4g} at the first step: training diverged. Lower train.lr "
                                    f"(now {cfg.lr:g}) and rerun: it then starts over from step 0 (the resume state "
                                    f"{checkpoint} is resumed only with unchanged params)")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:  # one bad batch moves the weights at most this far (a long schedule stays stable)
                torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
            optimizer.step()
            step += 1
            epoch_loss = [epoch_loss[0] + value, epoch_loss[1] + 1]
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4f}", epoch=epoch + 1, refresh=False)
            if step % cfg.checkpoint_every == 0:
                save()
            if stop_after_step is not None and step >= stop_after_step:
                bar.close()
                return history
        row = {"epoch": epoch + 1, "step": step, "lr": lr_at_step(cfg, step - 1, steps_per_epoch),
               "train_loss": epoch_loss[0] / max(epoch_loss[1], 1)}
        if dist.is_main:
            row.update(validate(unwrap(net), val_set, dist.device))
            row.update(training_diagnostics(unwrap(net), initial, gate_inputs))
            row.update(knockout_cost(unwrap(net), val_set, dist.device, row, cfg.track_knockout))
            log.info("epoch %d/%d: %s", epoch + 1, cfg.epochs,
                     ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k not in ("epoch", "step")))
            check_validation(row, cfg, start_psnr)
            on_epoch(row)
        history.append(row)
        epoch_loss = [0.0, 0]
        save()
        if dist.world > 1:
            torch_dist.barrier()
    bar.close()
    return history
