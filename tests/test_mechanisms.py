"""What each ALANet variant is made of and how it is wired, and what state a runner carries between clips.

ALANet's attention is checked with its *real* gates (ChannelAttention modules with random weights, so
that F(x_a) differs from F(x_b)): the outputs must equal eq. 5 and 6 composed here from the model's own
parts (encoder, gates, generators), so any wiring swap (a gate read from the wrong frame, a gate of the
wrong branch or offset, a neighbour's latent in place of another) shows. The variants are built
through the method registry, as the train and evaluate stages build them.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from conftest import tiny_params
from test_methods import FOUND, perturbed

from alabench.config import parse_params
from alabench.inference import ClipRunner, window_indices
from alabench.methods import build_model, get_method, with_method_options
from models.alanet import ALANet, ChannelAttention

PARAMS = parse_params(tiny_params())
CARRIED = with_method_options(PARAMS, "bin", carry_state=True)  # BIN carrying its state along a clip (Recurrent)

# The gates each registered variant must have, and no other (window 3: neighbours at offsets -1 and +1).
SELF = {"deblur_self.self", "interp_self.a", "interp_self.b"}
CROSS = {"deblur_cross.m1", "deblur_cross.p1", "interp_cross.a_given_b", "interp_cross.b_given_a"}
VARIANTS = {"alanet": SELF | CROSS, "alanet_self": SELF, "alanet_cross": CROSS}


def variant(name: str) -> ALANet:
    """A registered ALANet variant whose every weight is nudged (the zero-initialised output layers would
    otherwise make the outputs independent of the latents) and whose gates depend strongly on their input
    (so that a gate read from the wrong frame shows)."""
    torch.manual_seed(0)
    return strong_gates(perturbed(build_model(get_method(name), PARAMS), 4).eval())


def strong_gates(model: ALANet) -> ALANet:
    """Each gate's convolutions redrawn at 30x PyTorch's scale: gates of different frames' latents then
    differ by ~10 % (at the default scale, by ~0.2 %)."""
    g = torch.Generator().manual_seed(8)
    with torch.no_grad():
        for gate in gates(model).values():
            for conv in (gate.gate[0], gate.gate[2]):
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * 30 / conv.weight[0].numel() ** 0.5)
    return model


def gates(model: ALANet) -> dict[str, ChannelAttention]:
    return {name: m for name, m in model.attention.named_modules() if isinstance(m, ChannelAttention)}


def frames(seed: int = 1, window: int = 3) -> torch.Tensor:
    """(2, window, 3, 32, 32): noise over a colour cast of its own per frame, so that frames' latents
    (and the gates computed from them) differ."""
    g = torch.Generator().manual_seed(seed)
    return 0.5 * torch.rand(2, window, 3, 32, 32, generator=g) + 0.5 * torch.rand(2, window, 3, 1, 1, generator=g)


def outputs(model: ALANet, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        return model(x)


# ------------------------------------------------------------------------------------------------
# Eq. 5 and 6 composed by hand from the model's parts.


def reference(model: ALANet, x: torch.Tensor, swap_interp_cross: bool = False) -> dict[str, list[torch.Tensor]]:
    """The latents the generators must receive and the frames they must give, for ``x`` (B, W, 3, 32k, 32k),
    as the paper writes them: per frame t the encoder's skips and latent x_t;
    z_t = x_t F_self(x_t) + sum_j x_j F_{j-t}(x_t) over |j - t| <= W // 2, and
    z^_t = x_t F_a(x_t) + x_{t+1} F_b(x_{t+1}) + x_t F_a|b(x_{t+1}) + x_{t+1} F_b|a(x_t); each decoded by
    its own generator with the input (deblur) or the neighbours' mean (interp) added.
    ``swap_interp_cross``: the cross gates read from the gated frame itself (a wiring error, to show
    that the reference tells it apart)."""
    g = gates(model)
    use_self, use_cross = model.config.attention in ("both", "self"), model.config.attention in ("both", "cross")
    w, radius = x.shape[1], x.shape[1] // 2
    out: dict[str, list[torch.Tensor]] = {"deblur_z": [], "interp_z": [], "deblur": [], "interp": []}
    with torch.no_grad():
        feats = [model.encoder(x[:, t]) for t in range(w)]
        lat = [f[-1] for f in feats]
        for t in range(w):
            z = lat[t] * g["deblur_self.self"](lat[t]) if use_self else 0
            if use_cross:
                for j in range(max(0, t - radius), min(w, t + radius + 1)):
                    if j != t:
                        z = z + lat[j] * g[f"deblur_cross.{'m' if j < t else 'p'}{abs(j - t)}"](lat[t])
            out["deblur_z"].append(z)
            out["deblur"].append((model.deblur_generator(z, feats[t][:-1]) + x[:, t]).clamp(0, 1))
        for t in range(w - 1):
            a, b = lat[t], lat[t + 1]
            z = a * g["interp_self.a"](a) + b * g["interp_self.b"](b) if use_self else 0
            if use_cross:
                given_a, given_b = (a, b) if not swap_interp_cross else (b, a)
                z = z + a * g["interp_cross.a_given_b"](given_b) + b * g["interp_cross.b_given_a"](given_a)
            out["interp_z"].append(z)
            skips = [(sa + sb) / 2 for sa, sb in zip(feats[t][:-1], feats[t + 1][:-1])]
            out["interp"].append((model.interp_generator(z, skips) + (x[:, t] + x[:, t + 1]) / 2).clamp(0, 1))
    return out


def generator_inputs(model: ALANet, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The latents each generator receives in ``model(x)`` (all frames of the batch, time-major), and the outputs."""
    seen: dict[str, torch.Tensor] = {}
    hooks = [gen.register_forward_pre_hook(lambda module, args, key=key: seen.__setitem__(key, args[0]))
             for key, gen in (("deblur_z", model.deblur_generator), ("interp_z", model.interp_generator))]
    try:
        seen["deblur"], seen["interp"] = outputs(model, x)
    finally:
        for h in hooks:
            h.remove()
    return seen


def assert_matches_reference(model: ALANet, x: torch.Tensor) -> None:
    got, want = generator_inputs(model, x), reference(model, x)
    for key in ("deblur_z", "interp_z"):
        expected = torch.cat(want[key])
        torch.testing.assert_close(got[key], expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item(), msg=key)
    for key in ("deblur", "interp"):
        torch.testing.assert_close(got[key], torch.stack(want[key], 1), rtol=1e-4, atol=1e-5, msg=key)


@pytest.mark.parametrize("name", VARIANTS)
def test_each_variant_has_exactly_its_attention_modules(name):
    model = variant(name)
    assert set(gates(model)) == VARIANTS[name]
    assert model.config.attention == {"alanet": "both", "alanet_self": "self", "alanet_cross": "cross"}[name]
    assert model.interp_generator is not model.deblur_generator  # the authors' two decoders


@pytest.mark.parametrize("name", VARIANTS)
def test_each_variant_computes_eq5_and_eq6_with_its_real_gates(name):
    model = variant(name)
    assert_matches_reference(model, frames())
    if "interp_cross.a_given_b" in gates(model):  # the reference tells a gate read from the wrong frame apart
        right = torch.cat(reference(model, frames())["interp_z"])
        wrong = torch.cat(reference(model, frames(), swap_interp_cross=True)["interp_z"])
        assert (right - wrong).abs().max() > 100 * 1e-4 * right.abs().max()


@pytest.mark.parametrize("attention", ["both", "self", "cross"])
def test_a_five_frame_window_computes_eq5_and_eq6_too(attention):
    """Offsets +-2 and the frames at a window's ends (which have fewer neighbours)."""
    model = variant("alanet")
    five = ALANet(dataclasses.replace(model.config, window=5, attention=attention))
    five.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("attention.")}, strict=False)
    assert_matches_reference(strong_gates(five.eval()), frames(2, window=5))


@pytest.mark.parametrize("name", VARIANTS)
def test_the_incremental_path_computes_eq5_and_eq6_too(name):
    """Clip inference decodes with deblur_at / interp_at (batch 1: one window per call): the latents each
    generator receives, and the frames, are those of the window centred on each input."""
    model = variant(name)
    clip = frames(3)[0]
    seen: dict[str, list[torch.Tensor]] = {"deblur_z": [], "interp_z": []}
    hooks = [gen.register_forward_pre_hook(lambda module, args, key=key: seen[key].append(args[0]))
             for key, gen in (("deblur_z", model.deblur_generator), ("interp_z", model.interp_generator))]
    try:
        got = {(kind, k): out for kind, k, out in ClipRunner(model, batch=1).run(clip)}
    finally:
        for h in hooks:
            h.remove()
    padded = torch.stack([clip[0], clip[0], clip[1], clip[2], clip[2]])[None]  # replicate-padded ends
    assert len(seen["deblur_z"]) == 3 and len(seen["interp_z"]) == 2
    for k in range(3):
        want = reference(model, padded[:, k:k + 3])
        for key, kind in (("deblur_z", "deblur"), ("interp_z", "interp")):
            if k < len(seen[key]):
                expected = want[key][1]
                torch.testing.assert_close(seen[key][k], expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())
                torch.testing.assert_close(got[(kind, k)], want[kind][1][0], rtol=1e-4, atol=1e-5)


def test_the_runner_hands_the_recurrent_state_from_each_window_to_the_next():
    """BIN over a clip: ClipRunner's outputs equal ``step`` called here on the clip's windows in order,
    the state of each handed to the next (None at the start), whatever the batch."""
    torch.manual_seed(0)
    model = perturbed(build_model(get_method("bin"), CARRIED), 5).eval()
    clip, _ = clips()
    state, expected = None, []
    with torch.no_grad():
        for k in range(len(clip)):
            window = clip[window_indices(k, len(clip), model.window, model.centre)][None]
            deblur, interp, state = model.step(window, state)
            expected += [("deblur", k, deblur[0])] + ([("interp", k, interp[0])] if k < len(clip) - 1 else [])
    for batch in (1, 3):
        got = list(ClipRunner(model, batch=batch).run(clip))
        assert [(kind, k) for kind, k, _ in got] == [(kind, k) for kind, k, _ in expected]
        for (kind, k, a), (_, _, b) in zip(got, expected):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=f"batch {batch}: {kind} {k}")


# ------------------------------------------------------------------------------------------------
# Each module matters, and only to its own branch.


def hooked(model: ALANet, names: set[str], hook) -> list:
    return [gates(model)[n].register_forward_hook(hook) for n in names]


@pytest.mark.parametrize("name", VARIANTS)
def test_each_gate_scaled_moves_its_own_branch_and_nothing_else(name):
    model = variant(name)
    x = frames()
    deblur, interp = outputs(model, x)
    for gate in sorted(VARIANTS[name]):
        handles = hooked(model, {gate}, lambda module, args, out: out * 0.5)
        try:
            d, i = outputs(model, x)
        finally:
            for h in handles:
                h.remove()
        own, other = (d, i) if gate.startswith("deblur") else (i, d)
        base_own, base_other = (deblur, interp) if gate.startswith("deblur") else (interp, deblur)
        assert (own - base_own).abs().max() > 1e-5, f"{name}: scaling {gate} leaves its branch unchanged"
        assert torch.equal(other, base_other), f"{name}: scaling {gate} moves the other branch"


@pytest.mark.parametrize("name", VARIANTS)
def test_perturbing_the_features_a_cross_gate_reads_moves_interpolation_only_where_there_is_cross_attention(name):
    """The features each interpolation cross gate is conditioned on, perturbed: ALANet's interpolated
    frames move (its deblurred ones do not); alanet_self has no such gate, so nothing it outputs moves."""
    model = variant(name)
    x = frames()
    deblur, interp = outputs(model, x)
    cross = {g for g in gates(model) if g.startswith("interp_cross.")}
    handles = [gates(model)[n].register_forward_pre_hook(lambda module, args: (args[0] + 1.0,)) for n in cross]
    try:
        d, i = outputs(model, x)
    finally:
        for h in handles:
            h.remove()
    assert torch.equal(d, deblur)
    if name == "alanet_self":
        assert not cross and torch.equal(i, interp)
    else:
        assert (i - interp).abs().max() > 1e-5


@pytest.mark.parametrize("name", VARIANTS)
def test_every_parameter_of_every_variant_reaches_an_output(name):
    """No module is built and left unused: each parameter gets a gradient from the outputs."""
    model = variant(name).train()
    deblur, interp = model(frames())
    (deblur.square().mean() + interp.square().mean()).backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert unused == [], f"{name}: parameters that no output depends on: {unused[:4]}"


# ------------------------------------------------------------------------------------------------
# A runner carries nothing from one clip to the next.


def clips() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    return torch.rand(5, 3, 24, 32, generator=g), torch.rand(4, 3, 24, 32, generator=g) * 0.5 + 0.25


def run(runner: ClipRunner, clip: torch.Tensor) -> list[tuple[str, int, torch.Tensor]]:
    return list(runner.run(clip))


@pytest.mark.parametrize("name", [*sorted(FOUND.methods), "bin:carry_state"])
def test_one_runner_over_two_clips_equals_a_fresh_runner_per_clip(name):
    """Evaluation runs one ClipRunner over every clip: a recurrent state (BIN's with carry_state) or
    any cache must start afresh with each clip. Clip B after clip A equals clip B alone."""
    torch.manual_seed(0)
    name, params = ("bin", CARRIED) if name == "bin:carry_state" else (name, PARAMS)
    model = perturbed(build_model(get_method(name), params), 5).eval()
    first, second = clips()
    shared = ClipRunner(model, batch=2)
    run(shared, first)
    after = run(shared, second)
    alone = run(ClipRunner(model, batch=2), second)
    assert [(kind, k) for kind, k, _ in after] == [(kind, k) for kind, k, _ in alone]
    for (kind, k, a), (_, _, b) in zip(after, alone):
        assert torch.equal(a, b), f"{name}: {kind} {k} of the second clip depends on the clip run before it"


def test_the_recurrent_state_matters_so_the_reset_is_tested():
    """BIN's outputs do depend on the state handed on: without a reset the test above would see it."""
    torch.manual_seed(0)
    model = perturbed(build_model(get_method("bin"), CARRIED), 5).eval()
    first, second = clips()
    window = second[None, :model.window] if len(second) >= model.window else \
        torch.cat([second, second[-1:].expand(model.window - len(second), -1, -1, -1)])[None]
    with torch.no_grad():
        fresh = model.step(window, None)
        _, _, state = model.step(torch.cat([first, first[-1:]])[None, :model.window], None)
        carried = model.step(window, state)
    assert not torch.equal(fresh[0], carried[0]) or not torch.equal(fresh[1], carried[1])
