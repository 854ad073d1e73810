"""Per-method published losses, the cosine schedule and the precision choice of the train stage."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from conftest import tiny_params

from alabench.config import parse_params
from alabench.methods import build_model, get_method
from alabench.training import autocast_dtype, build_loss, lr_at_step
from baselines.bin import BINLoss, charbonnier
from baselines.nafnet import PSNRLoss
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
                                            ("bin", BINLoss), ("nafnet", PSNRLoss),
                                            ("alanet", ReconstructionLoss), ("unet", ReconstructionLoss)])
def test_each_method_gets_its_published_loss(name, expected):
    p = params(superslomo={"perceptual": False})
    assert type(build_loss(p, get_method(name))) is expected


def test_shared_loss_on_request():
    p = params(superslomo={"loss": "shared"}, cain={"loss": "shared"}, bin={"loss": "shared"}, nafnet={"loss": "shared"})
    assert all(type(build_loss(p, get_method(n))) is ReconstructionLoss for n in ("superslomo", "cain", "bin", "nafnet"))


def test_superslomo_loss_reaches_the_flow_network():
    """The warping and smoothness terms train the flow U-Net directly, not only through the
    refinement network as the reconstruction term does."""
    p = params(superslomo={"perceptual": False})
    torch.manual_seed(0)
    model = build_model(get_method("superslomo"), p).train()
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


def test_bin_loss_is_the_authors_on_a_window_of_six():
    """The authors' 14 supervised outputs (bin_model.get_info, nframes 6) and their 3 cycle terms,
    enumerated here as they write them: I_n is the n-th frame of B1 I2 B3 ... B11 (B odd, I even)."""
    torch.manual_seed(0)
    model = build_model(get_method("bin"), params()).train()
    g = torch.Generator().manual_seed(1)
    frames = torch.rand(2, 11, 3, 24, 40, generator=g)  # sharp I1 ... I11
    inputs, targets = frames[:, 0::2], [frames[:, 0::2], frames[:, 1::2]]
    deblur, interp = model(inputs)
    first, second = model.extras["passes"]["first"], model.extras["passes"]["second"]
    outputs = [first[k][..., :24, :40] for k in ("i2", "i4", "i6", "i8", "i3", "i5", "i7", "i4b", "i6b", "i5c")] + \
              [second[k][..., :24, :40] for k in ("i8", "i7", "i6b", "i5c")]  # the model pads to its stride
    sharp = [frames[:, n - 1] for n in (2, 4, 6, 8, 3, 5, 7, 4, 6, 5, 10, 9, 8, 7)]
    terms = [charbonnier(o, t) for o, t in zip(outputs, sharp)]
    terms += [charbonnier(outputs[a], outputs[b]) for a, b in ((1, 7), (5, 9), (2, 8))]
    parts = BINLoss()([deblur, interp], targets, extras=model.extras)
    assert parts["total"].item() == pytest.approx((sum(terms) / 17).item(), rel=1e-6)
    parts["total"].backward()
    assert all(level.out.weight.grad.abs().sum() > 0 for level in model.levels)  # every pyramid level learns
    assert all(p.grad is not None for p in model.cells.parameters())  # and the recurrent cells between passes
    with pytest.raises(ValueError, match="pyramid outputs"):
        BINLoss()([deblur, interp], targets)


def test_bin_loss_on_a_short_window_supervises_only_the_instants_it_has():
    """Window 3 sits on slots 1-3 of the six: its sharp frames are I3 ... I7, so of the 14
    outputs only those at I3 ... I7 count (first pass: I4 I6 I3 I5 I7 I4' I6' I5''; second: I7)."""
    torch.manual_seed(0)
    model = build_model(get_method("bin"), params()).train()
    inputs, targets = batch(size=24)
    deblur, interp = model(inputs)
    parts = BINLoss()([deblur, interp], targets, extras=model.extras)
    first, second = model.extras["passes"]["first"], model.extras["passes"]["second"]
    sharp = {3: targets[0][:, 0], 4: targets[1][:, 0], 5: targets[0][:, 1], 6: targets[1][:, 1], 7: targets[0][:, 2]}
    kept = [(first["i4"], 4), (first["i6"], 6), (first["i3"], 3), (first["i5"], 5), (first["i7"], 7),
            (first["i4b"], 4), (first["i6b"], 6), (first["i5c"], 5), (second["i5c"], 7)]
    expected = sum(charbonnier(o[..., :24, :24], sharp[n]) for o, n in kept) / len(kept)
    assert parts["charbonnier"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_nafnet_loss_is_minus_the_psnr_of_the_deblurred_inputs():
    inputs, targets = batch()
    outputs = [targets[0] + 0.1, torch.zeros_like(targets[1])]  # MSE 0.01 on every frame: PSNR 20 dB
    assert PSNRLoss()(outputs, targets)["total"].item() == pytest.approx(-20.0, abs=1e-4)
    outputs[0] = targets[0] + torch.tensor([0.1, 0.01]).view(2, 1, 1, 1, 1)  # 20 and 40 dB: the mean of the logs
    assert PSNRLoss()(outputs, targets)["total"].item() == pytest.approx(-30.0, abs=1e-3)  # the 1e-8 floor moves 40 dB by 4e-4


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
