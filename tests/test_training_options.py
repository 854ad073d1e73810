"""Per-method published losses, the cosine schedule and the precision choice of the train stage."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from conftest import tiny_params

from alabench.config import parse_params
from alabench.methods import get_method
from alabench.training import autocast_dtype, build_loss, lr_at_step
from models.losses import InterpolationL1, ReconstructionLoss, SuperSloMoLoss


def params(**methods):
    data = tiny_params()
    for name, changes in methods.items():
        data["methods"][name].update(changes)
    return parse_params(data)


def batch(seed: int = 0, size: int = 32):
    g = torch.Generator().manual_seed(seed)
    frames = torch.rand(2, 5, 3, size, size, generator=g)
    return frames[:, 0::2], [frames[:, 0::2], frames[:, 1::2]]  # inputs, [deblur, interp] targets


@pytest.mark.parametrize("name, expected", [("superslomo", SuperSloMoLoss), ("cain", InterpolationL1),
                                            ("alanet", ReconstructionLoss), ("unet", ReconstructionLoss)])
def test_each_method_gets_its_published_loss(name, expected):
    p = params(superslomo={"perceptual": False})
    assert type(build_loss(p, get_method(name))) is expected


def test_shared_loss_on_request():
    p = params(superslomo={"loss": "shared"}, cain={"loss": "shared"})
    assert all(type(build_loss(p, get_method(n))) is ReconstructionLoss for n in ("superslomo", "cain"))


def test_superslomo_loss_reaches_the_flow_network():
    """The warping and smoothness terms train the flow U-Net directly, not only through the
    refinement network as the reconstruction term does."""
    p = params(superslomo={"perceptual": False})
    torch.manual_seed(0)
    model = get_method("superslomo").build(p).train()
    inputs, targets = batch()
    deblur, interp = model(inputs)
    parts = build_loss(p, get_method("superslomo"))([deblur, interp], targets, extras=model.extras)
    assert set(parts) == {"reconstruction", "warping", "smoothness", "total"}
    assert torch.isfinite(parts["total"]) and parts["warping"] > 0
    parts["warping"].backward()
    assert model.flow_net.decoder.out.weight.grad.abs().sum() > 0
    assert model.refine_net.decoder.out.weight.grad is None  # the warping term skips the refinement
    model.eval()
    with torch.no_grad():
        model(inputs)
    assert model.extras == {}  # evaluation keeps no intermediates
    with pytest.raises(ValueError, match="needs the model's intermediates"):
        SuperSloMoLoss(None)([deblur, interp], targets)


def test_cain_loss_is_l1_of_the_middle_frames_alone():
    inputs, targets = batch()
    outputs = [torch.zeros_like(targets[0]), targets[1] + 0.25]
    assert InterpolationL1()(outputs, targets)["total"].item() == pytest.approx(0.25)


def test_precision_auto_falls_back_to_float32_without_bf16(monkeypatch):
    import alabench.training as training
    cpu = torch.device("cpu")
    monkeypatch.setattr(training, "cpu_has_bf16", lambda: False)
    assert autocast_dtype("auto", cpu) is None
    assert autocast_dtype("bfloat16", cpu) is torch.bfloat16
    monkeypatch.setattr(training, "cpu_has_bf16", lambda: True)
    assert autocast_dtype("auto", cpu) is torch.bfloat16
    assert autocast_dtype("float32", cpu) is None


def test_cosine_schedule_warms_up_then_decays_to_zero():
    cfg = dataclasses.replace(params().train, lr=2e-3, epochs=10, lr_schedule="cosine")
    lrs = [lr_at_step(cfg, s, 100) for s in range(1000)]
    assert lrs[0] == pytest.approx(2e-3 / 30) and lrs[29] == pytest.approx(2e-3)  # 3 % warm-up
    assert all(a >= b for a, b in zip(lrs[29:], lrs[30:])) and lrs[-1] < 1e-7
    assert lrs[29 + 485] == pytest.approx(1e-3, rel=1e-2)  # halfway down at the middle
    step = dataclasses.replace(cfg, lr_schedule="step")
    assert [lr_at_step(step, s, 100) for s in (0, 499, 500, 799, 800)] == pytest.approx([2e-3, 2e-3, 2e-4, 2e-4, 2e-5])


@pytest.mark.parametrize("seeds", [[], [0, 0]])
def test_seeds_must_be_a_list_of_distinct_seeds(seeds):
    from alabench.config import ParamError
    data = tiny_params()
    data["train"]["seeds"] = seeds
    with pytest.raises(ParamError, match=r"train.seeds = .* list one or more distinct seeds"):
        parse_params(data)
