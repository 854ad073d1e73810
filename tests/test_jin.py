"""Jin et al. (CVPR 2019) as a method: the published sizes, the window's slots, joint training, the contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_params, write_clip
from test_methods import assert_contract, assert_learns, perturbed

from alabench.config import parse_params
from alabench.inference import infer_clip
from alabench.layout import sharp_dir
from alabench.methods import build_model, check_outputs, get_method, parameter_count, with_method_options
from alabench.training import Distributed, build_loss, train, with_overrides
from alabench.training_run import prepare_training
from models.jin import EstimatedSlots, Jin
from models.losses import ReconstructionLoss

PARAMS = parse_params(tiny_params())
# Counted by instantiating the authors' RDN_residual_deblur() and RDN_residual_interp()
# (MeiguangJin/slow-motion model.py at 52595b5) and summing p.numel() over their parameters.
AUTHORS_DEBLURNET, AUTHORS_INTERPNET = 9_638_665, 1_173_827
# Their DeblurNet ends in a 3x3 convolution 64 -> 9 (three keyframes); ours 64 -> 6 (two).
THIRD_KEYFRAME = 3 * (64 * 3 * 3) + 3


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small(**options):
    return with_method_options(PARAMS, "jin", width=0.0625, deblur_blocks=1, interp_blocks=1, **options)


def small_model(seed: int = 3) -> Jin:
    torch.manual_seed(0)
    return perturbed(build_model(get_method("jin"), small()), seed)


def test_published_size_has_the_authors_parameters():
    published = with_method_options(PARAMS, "jin", width=1.0, deblur_blocks=20, interp_blocks=6)
    model = build_model(get_method("jin"), published)
    assert parameter_count(model.interpnet) == AUTHORS_INTERPNET
    assert parameter_count(model.deblurnet) == AUTHORS_DEBLURNET - THIRD_KEYFRAME
    assert parameter_count(model) == model.published_parameters - THIRD_KEYFRAME == 10_810_761
    assert model.published_parameters == AUTHORS_DEBLURNET + AUTHORS_INTERPNET
    assert parameter_count(small_model()) < 0.01 * parameter_count(model)


def test_contract_at_a_small_size():
    assert_contract(get_method("jin"), small())


def test_one_step_learns_at_a_small_size():
    assert_learns(get_method("jin"), small())


@pytest.mark.parametrize("window", [2, 3, 4])
def test_windows_of_2_to_4_inputs_and_their_estimated_slots(window):
    """An untrained model is the blurry-input baseline; the estimated slots are the keyframes and the middle."""
    frames = torch.rand(2, window, 3, 17, 23, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = build_model(get_method("jin"), small()).eval()
    with torch.no_grad():
        deblur, interp = check_outputs(frames, model(frames))
        torch.testing.assert_close(deblur, frames, rtol=0, atol=0)
        torch.testing.assert_close(interp, (frames[:, 1:] + frames[:, :-1]) / 2, rtol=0, atol=1e-6)
        d, m = model.scored_slots(window)
        assert (d, m) == {2: ([0, 1], [0]), 3: ([1, 2], [1]), 4: ([1, 2], [1])}[window]
        # after training, only the estimated slots change: the others are the inputs and their means
        deblur, interp = small_model()(frames)
        rest = [j for j in range(window) if j not in d]
        torch.testing.assert_close(deblur[:, rest], frames[:, rest], rtol=0, atol=0)
        assert (deblur[:, d] - frames[:, d]).abs().amax() > 1e-3
        assert (interp[:, m] - (frames[:, 1:] + frames[:, :-1])[:, m] / 2).abs().amax() > 1e-3


def test_a_window_of_5_is_refused():
    with pytest.raises(ValueError, match="jin takes windows of 2 to 4 inputs, got 5"):
        small_model()(torch.rand(1, 5, 3, 8, 8))


def test_both_networks_are_trained_by_the_joint_loss():
    """The middle frame is made from DeblurNet's keyframes, so the interpolation loss alone reaches
    DeblurNet; one step of the method's loss moves both networks."""
    model = small_model().train()
    g = torch.Generator().manual_seed(1)
    frames = torch.rand(2, 4, 3, 16, 16, generator=g)
    targets = [torch.rand(2, 4, 3, 16, 16, generator=g), torch.rand(2, 3, 3, 16, 16, generator=g)]
    _, interp = model(frames)
    interp[:, 1].sub(targets[1][:, 1]).abs().mean().backward()
    for net in (model.deblurnet, model.interpnet):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    model.zero_grad(set_to_none=True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = build_loss(small(), get_method("jin"))
    deblur, interp = model(frames)
    loss_fn([deblur, interp], targets, extras=model.extras)["total"].backward()
    optimizer.step()
    for prefix in ("deblurnet.", "interpnet."):
        moved = [k for k, v in model.state_dict().items() if k.startswith(prefix) and not torch.equal(v, before[k])]
        assert len(moved) == sum(k.startswith(prefix) for k in before)


def test_the_loss_reads_only_the_estimated_slots():
    model = small_model().train()
    frames = torch.rand(1, 4, 3, 8, 8)
    outputs = model(frames)
    targets = [torch.rand(1, 4, 3, 8, 8), torch.rand(1, 3, 3, 8, 8)]
    assert model.extras == {"slots": ([1, 2], [1])}
    inner = ReconstructionLoss(None, 0.0)
    got = EstimatedSlots(inner)(outputs, targets, extras=model.extras)["total"]
    expected = inner([outputs[0][:, [1, 2]], outputs[1][:, [1]]], [targets[0][:, [1, 2]], targets[1][:, [1]]])
    torch.testing.assert_close(got, expected["total"])
    assert not torch.allclose(got, inner(list(outputs), targets)["total"])  # every slot would differ
    with pytest.raises(ValueError, match="estimated slots"):
        EstimatedSlots(inner)(outputs, targets)
    model.eval()(frames)
    assert model.extras == {}  # nothing kept outside training


def test_it_trains_on_its_own_window_of_4_inputs():
    options = get_method("jin").options_from(small())
    assert with_overrides(PARAMS.train_data, "train_data", options).window == 4
    options = get_method("jin").options_from(small(window=3))
    assert with_overrides(PARAMS.train_data, "train_data", options).window == 3


def test_clip_inference_keeps_input_k_from_the_window_k_minus_1_to_k_plus_2():
    model = small_model().eval()
    clip = torch.rand(6, 3, 12, 12, generator=torch.Generator().manual_seed(2))
    out = infer_clip(model, clip, batch=2)
    with torch.no_grad():
        deblur, interp = model(clip[1:5][None])  # the window of input 2
    torch.testing.assert_close(out.deblur[2], deblur[0, 1])
    torch.testing.assert_close(out.interp[2], interp[0, 1])
    far, near = clip.clone(), clip.clone()
    far[5] += 0.1  # input k+3: outside the window
    near[4] += 0.1  # input k+2: DeblurNet's last input
    assert torch.equal(infer_clip(model, far).deblur[2], out.deblur[2])
    assert not torch.equal(infer_clip(model, near).deblur[2], out.deblur[2])


def test_the_train_stage_trains_both_networks_on_windows_of_4(tmp_path):
    """Through the train stage's own set-up and loop: its 4-input windows, its loss on the estimated
    slots, validation on them, and a step that moves DeblurNet and InterpNet alike."""
    rng = np.random.default_rng(0)
    for i in range(3):  # a window of 4 inputs spans 3 * 8 + 11 = 35 sharp frames
        base = rng.integers(0, 256, size=(1, 16, 16, 3))
        write_clip(sharp_dir("t", "train", tmp_path) / f"c{i}",
                   np.clip(base + rng.integers(-20, 20, size=(36, 16, 16, 3)), 0, 255).astype(np.uint8))
    run = prepare_training(small(), "jin", "t", 0, tmp_path)
    assert run.train_data.window == 4 and run.config["train_data"]["window"] == 4
    assert isinstance(run.loss, EstimatedSlots)
    before = {k: v.clone() for k, v in run.model.state_dict().items()}
    history = train(run.model, run.loss, run.train_set, run.val_set, run.train, Distributed(0, 1, torch.device("cpu")),
                    tmp_path / "jin.pt", run.config)
    assert len(history) == run.train.epochs and np.isfinite(history[-1]["joint_psnr"])
    for prefix in ("deblurnet.trunk.out.", "interpnet.trunk.out."):
        assert any(not torch.equal(v, before[k]) for k, v in run.model.state_dict().items() if k.startswith(prefix))
