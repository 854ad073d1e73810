"""ALANet: shapes, eq. 5 and 6 by hand, the ablations' missing paths, gradients, learning."""

from __future__ import annotations

import pytest
import torch

from models.alanet import ALANet, ALANetConfig, ChannelAttention, LatentAttention


def tiny(window: int = 3, attention: str = "both", **kw) -> ALANet:
    torch.manual_seed(0)
    return ALANet(ALANetConfig(window=window, width=0.0625, attention=attention, reduction=2, **kw))


@pytest.mark.parametrize("window", [2, 3, 5])
@pytest.mark.parametrize("attention", ["both", "self", "cross"])
def test_shapes_for_any_window_and_odd_frame_sizes(window, attention):
    frames = torch.rand(2, window, 3, 37, 45)
    deblur, interp = tiny(window, attention, residual=False)(frames)
    assert deblur.shape == (2, window, 3, 37, 45)
    assert interp.shape == (2, window - 1, 3, 37, 45)


def test_untrained_residual_model_returns_inputs_and_neighbour_means():
    frames = torch.rand(1, 3, 3, 32, 40)
    deblur, interp = tiny()(frames)
    torch.testing.assert_close(deblur, frames)
    torch.testing.assert_close(interp, (frames[:, :-1] + frames[:, 1:]) / 2)


def test_channel_attention_lies_in_open_unit_interval():
    f = ChannelAttention(32, 16)
    weights = f(torch.randn(4, 32, 5, 5) * 10)
    assert weights.shape == (4, 32, 1, 1)
    assert (weights > 0).all() and (weights < 1).all()


def fixed_gates(module: LatentAttention) -> dict[str, torch.Tensor]:
    """Replace every F with a constant channel vector; return them by name."""
    gates = {}
    for bank in ("deblur_self", "deblur_cross", "interp_self", "interp_cross"):
        for key, f in getattr(module, bank).items():
            value = torch.rand(1, module_channels, 1, 1) + 0.1
            gates[f"{bank}.{key}"] = value
            f.forward = lambda x, v=value: v.expand(x.shape[0], -1, -1, -1)  # type: ignore[method-assign]
    return gates


module_channels = 4


@pytest.mark.parametrize("attention", ["both", "self", "cross"])
def test_eq5_and_eq6_by_hand(attention):
    att = LatentAttention(module_channels, window=5, attention=attention, reduction=2)
    g = fixed_gates(att)
    x = [torch.randn(1, module_channels, 3, 3) for _ in range(5)]
    s, c = attention in ("both", "self"), attention in ("both", "cross")
    zero = torch.zeros_like(x[0])
    # eq. 5, frame 2 of 5 (radius 2: all four others), frame 0 (only frames 1 and 2)
    expect2 = (x[2] * g["deblur_self.self"] if s else zero) + (
        x[0] * g["deblur_cross.m2"] + x[1] * g["deblur_cross.m1"] + x[3] * g["deblur_cross.p1"]
        + x[4] * g["deblur_cross.p2"] if c else zero)
    torch.testing.assert_close(att.deblur(x, 2), expect2)
    expect0 = (x[0] * g["deblur_self.self"] if s else zero) + (
        x[1] * g["deblur_cross.p1"] + x[2] * g["deblur_cross.p2"] if c else zero)
    torch.testing.assert_close(att.deblur(x, 0), expect0)
    # eq. 6 between frames 1 and 2
    expect_hat = (x[1] * g["interp_self.a"] + x[2] * g["interp_self.b"] if s else zero) + (
        x[1] * g["interp_cross.a_given_b"] + x[2] * g["interp_cross.b_given_a"] if c else zero)
    torch.testing.assert_close(att.interp(x[1], x[2]), expect_hat)


def test_gates_are_conditioned_on_the_right_frame():
    """M_C(x_j | x_i) = x_j ⊗ F(x_i): the gate is computed from x_i, applied to x_j."""
    att = LatentAttention(module_channels, window=3, attention="cross", reduction=2)
    seen = []
    f = att.deblur_cross["p1"]
    f.forward = lambda x: seen.append(x) or torch.ones(x.shape[0], module_channels, 1, 1)  # type: ignore[method-assign]
    x = [torch.randn(1, module_channels, 2, 2) for _ in range(3)]
    att.deblur(x, 0)
    assert len(seen) == 1 and torch.equal(seen[0], x[0])


def test_self_only_ignores_neighbours_for_deblurring():
    model = tiny(3, "self", residual=False)
    frames = torch.rand(1, 3, 3, 32, 32)
    changed = frames.clone()
    changed[:, 0] = torch.rand(3, 32, 32)
    changed[:, 2] = torch.rand(3, 32, 32)
    a, _ = model(frames)
    b, _ = model(changed)
    assert torch.equal(a[:, 1], b[:, 1])  # no path from a neighbour: bit for bit the same
    assert not torch.equal(a[:, 0], b[:, 0])


def test_ablations_have_only_their_modules():
    """Every gate by name, for a 5-frame window (the registered variants, used: tests/test_mechanisms.py)."""
    self_gates = {"deblur_self.self", "interp_self.a", "interp_self.b"}
    cross_gates = {"deblur_cross.m2", "deblur_cross.m1", "deblur_cross.p1", "deblur_cross.p2",
                   "interp_cross.a_given_b", "interp_cross.b_given_a"}
    for attention, expected in (("both", self_gates | cross_gates), ("self", self_gates), ("cross", cross_gates)):
        found = {n for n, m in tiny(5, attention).attention.named_modules() if isinstance(m, ChannelAttention)}
        assert found == expected, attention


def test_cross_only_uses_neighbours():
    model = tiny(3, "cross", residual=False)
    frames = torch.rand(1, 3, 3, 32, 32)
    changed = frames.clone()
    changed[:, 2] = torch.rand(3, 32, 32)
    assert not torch.equal(model(frames)[0][:, 1], model(changed)[0][:, 1])


def step(model, frames, targets_d, targets_i, opt):
    deblur, interp = model(frames)
    loss = (deblur - targets_d).abs().mean() + (interp - targets_i).abs().mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def test_gradients_reach_every_attention_module_and_loss_falls():
    torch.manual_seed(1)
    model = tiny(3, "both")
    frames = torch.rand(2, 3, 3, 32, 32)
    t_d, t_i = 1 - frames, 1 - (frames[:, :-1] + frames[:, 1:]) / 2  # negatives: learnable in a few steps
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = [step(model, frames, t_d, t_i, opt) for _ in range(2)]  # zero-initialised output layer first
    deblur, interp = model(frames)
    ((deblur - t_d).abs().mean() + (interp - t_i).abs().mean()).backward()
    for name, module in model.attention.named_modules():
        if isinstance(module, ChannelAttention):
            grad = sum(p.grad.abs().sum() for p in module.parameters())
            assert grad > 0, name
    losses += [step(model, frames, t_d, t_i, opt) for _ in range(15)]
    assert losses[-1] < 0.95 * losses[0]


def test_full_width_matches_the_authors_size():
    params = sum(p.numel() for p in ALANet(ALANetConfig(width=1.0)).parameters())
    assert 29.5e6 < params < 31e6  # authors: 30.6M (they have more, unused, attention modules)
    shared = sum(p.numel() for p in ALANet(ALANetConfig(width=1.0, generators="shared")).parameters())
    assert shared < 0.7 * params


def test_wrong_window_is_refused():
    with pytest.raises(ValueError, match="expected windows of 3 frames, got 4"):
        tiny(3)(torch.rand(1, 4, 3, 32, 32))


def test_variants_built_with_one_seed_share_every_tensor_they_have_in_common():
    """Table 3's variants differ by their attention only: same seed, same name and shape, same values."""
    def build(attention: str, seed: int = 5) -> dict[str, torch.Tensor]:
        torch.manual_seed(seed)
        return ALANet(ALANetConfig(window=3, width=0.125, attention=attention)).state_dict()

    full = build("both")
    for attention in ("self", "cross", "none"):
        other = build(attention)
        shared = [k for k in other if k in full and other[k].shape == full[k].shape]
        assert len(shared) >= 60 and all(torch.equal(full[k], other[k]) for k in shared), attention
    assert not torch.equal(build("both", seed=6)["encoder.stem1.weight"], full["encoder.stem1.weight"])


@pytest.mark.parametrize("levels", [3, 4, 5])
def test_levels_put_the_latent_at_their_stride_for_any_frame_size(levels):
    torch.manual_seed(0)
    model = ALANet(ALANetConfig(window=3, width=0.0625, reduction=2, levels=levels)).eval()
    frames = torch.rand(1, 3, 3, 40, 52)
    deblur, interp = model(frames)
    assert deblur.shape == frames.shape and interp.shape == (1, 2, 3, 40, 52)
    latent = model.encode_frames(frames[:, 0])[-1]
    stride = 2 ** levels
    assert latent.shape[-2:] == (-(-40 // stride), -(-52 // stride))  # padded up to the stride, then /stride
    assert len(model.encoder.downs) == levels and len(model.deblur_generator.ups) == levels
