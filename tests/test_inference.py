"""Clip inference: one output per input and per pair, streaming, reuse equal to plain windowing,
each input encoded once, and memory that does not grow with the clip."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import REPO, tiny_params

from alabench.config import parse_params
from alabench.inference import ClipRunner, infer_clip, window_indices
from alabench.methods import Incremental, MethodFailed, build_model, discover
from baselines.unet import PlainUNet
from models.alanet import ALANet, ALANetConfig

PARAMS = parse_params(tiny_params())
FOUND = discover()


class Probe(torch.nn.Module):
    """Frame k of the clip is the constant k / 10; interp of (a, b) is 0.25 a + 0.75 b, so every output tells where it came from."""

    def __init__(self, window: int) -> None:
        super().__init__()
        self.window = window
        self.seen: list[list[int]] = []

    def forward(self, frames):
        self.seen += [[round(float(f.mean()) * 10) for f in w] for w in frames]
        return frames, 0.25 * frames[:, :-1] + 0.75 * frames[:, 1:]


class IncrementalProbe(Probe):
    """The same outputs through the Incremental API; counts the frames it encodes."""

    encoded = 0

    def encode_frames(self, frames):
        self.encoded += len(frames)
        return [frames]

    def deblur_at(self, window, i):
        self.seen += [[round(float(slot[0][n].mean()) * 10) for slot in window] for n in range(len(window[0][0]))]
        return window[i][0]

    def interp_at(self, window, i):
        return 0.25 * window[i][0] + 0.75 * window[i + 1][0]


def constant_clip(inputs: int) -> torch.Tensor:
    return torch.arange(inputs, dtype=torch.float32).div(10).view(-1, 1, 1, 1).expand(-1, 3, 4, 5)


@pytest.mark.parametrize("probe", [Probe, IncrementalProbe])
@pytest.mark.parametrize("window", [2, 3, 4, 5])
@pytest.mark.parametrize("inputs, batch", [(2, 1), (5, 2), (7, 4), (11, 3)])
def test_every_input_and_every_pair_gets_exactly_one_output(probe, window, inputs, batch):
    frames = constant_clip(inputs)
    model = probe(window)
    outputs = list(ClipRunner(model, batch).run(frames))
    expected = [(kind, k) for k in range(inputs) for kind in ("deblur", "interp") if kind == "deblur" or k < inputs - 1]
    assert [(kind, k) for kind, k, _ in outputs] == expected
    out = infer_clip(model, frames, batch=batch)
    assert out.deblur.shape == (inputs, 3, 4, 5) and out.interp.shape == (inputs - 1, 3, 4, 5)
    torch.testing.assert_close(out.deblur, frames)
    interp = torch.tensor([0.25 * k + 0.75 * (k + 1) for k in range(inputs - 1)]).div(10)
    torch.testing.assert_close(out.interp[:, 0, 0, 0], interp)
    # one window per input, centred on it, the clip's ends repeated
    assert len(model.seen) == 2 * inputs
    c = (window - 1) // 2
    for k, seen in enumerate(model.seen[inputs:]):
        assert seen == [min(max(k - c + j, 0), inputs - 1) for j in range(window)] == window_indices(k, inputs, window)
    if probe is IncrementalProbe:
        assert model.encoded == 2 * inputs  # each input once per run


@pytest.mark.parametrize("probe", [Probe, IncrementalProbe])
@pytest.mark.parametrize("window", [2, 3, 5])
def test_frames_are_read_only_as_far_as_the_next_output_needs(probe, window):
    read = []

    def stream(inputs):
        for k, frame in enumerate(constant_clip(inputs)):
            read.append(k)
            yield frame

    ahead = window - 1 - (window - 1) // 2  # inputs after the centre
    for kind, k, _ in ClipRunner(probe(window), batch=1).run(stream(9)):
        assert len(read) == min(k + ahead + 1, 9), (kind, k)
    with pytest.raises(ValueError, match="at least 2 inputs, got 1"):
        list(ClipRunner(probe(window)).run(stream(1)))


def test_a_method_that_breaks_the_contract_fails_with_what_broke():
    class Nan(Probe):
        def forward(self, frames):
            return frames * float("nan"), frames[:, 1:]

    class Raises(Probe):
        def forward(self, frames):
            raise RuntimeError("out of ideas")

    class NanInterp(IncrementalProbe):
        def interp_at(self, window, i):
            return window[i][0] * float("nan")

    class BadFeatures(IncrementalProbe):
        def encode_frames(self, frames):
            return frames[:1]

    class WrongSize(IncrementalProbe):
        def deblur_at(self, window, i):
            return window[i][0][..., :2]

    frames = torch.rand(3, 3, 8, 8)
    for model, message in ((Nan(3), "deblur holds NaN"), (Raises(3), "the forward pass raised RuntimeError: out of ideas"),
                           (NanInterp(3), "interp holds NaN"), (BadFeatures(3), "encode_frames must return a list"),
                           (WrongSize(3), r"deblur has shape \(2, 3, 8, 2\), expected \(2, 3, 8, 8\)")):
        with pytest.raises(MethodFailed, match=message):
            infer_clip(model, frames, batch=2)


def perturbed(model: torch.nn.Module, seed: int = 3) -> torch.nn.Module:
    """Random weights everywhere: the zero-initialised output layers would hide the rest of the network."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.01)
    return model.eval()


def alanets(window: int) -> list[ALANet]:
    torch.manual_seed(0)
    configs = [ALANetConfig(window=window, width=0.0625, attention=a, reduction=2) for a in ("both", "self", "cross")]
    configs.append(ALANetConfig(window=window, width=0.0625, generators="shared"))
    return [perturbed(ALANet(c)) for c in configs] + [perturbed(PlainUNet(ALANetConfig(window=window, width=0.0625)))]


def assert_same(a, b) -> None:
    assert a.deblur.shape == b.deblur.shape and a.interp.shape == b.interp.shape
    assert (a.deblur - b.deblur).abs().max() <= 1e-5 and (a.interp - b.interp).abs().max() <= 1e-5


@pytest.mark.parametrize("window", [2, 3, 5])
def test_reuse_equals_plain_windowing_for_alanet_its_variants_and_unet(window):
    for model in alanets(window):
        assert isinstance(model, Incremental)
        for inputs, batch in ((2, 1), (7, 3), (8, 5)):  # lengths the window and the batch do not divide
            # padded to 64 x 32 (a latent of 2 x 1 cells, so a transposed or shifted cache would show)
            frames = torch.rand(inputs, 3, 37, 21, generator=torch.Generator().manual_seed(inputs))
            assert_same(infer_clip(model, frames, batch, reuse=True), infer_clip(model, frames, batch, reuse=False))


@pytest.mark.parametrize("name", sorted(n for n, m in FOUND.methods.items()
                                        if isinstance(build_model(m, PARAMS), Incremental)))
def test_every_incremental_method_equals_plain_windowing(name):
    model = perturbed(build_model(FOUND.methods[name], PARAMS))
    frames = torch.rand(5, 3, 37, 45, generator=torch.Generator().manual_seed(5))
    assert_same(infer_clip(model, frames, 2, reuse=True), infer_clip(model, frames, 2, reuse=False))


@pytest.mark.parametrize("window", [2, 3, 5])
def test_the_encoder_runs_exactly_once_per_input(window):
    model = alanets(window)[0]
    encoded = []
    model.encoder.register_forward_hook(lambda module, args, out: encoded.append(len(args[0])))
    frames = torch.rand(7, 3, 32, 32)
    infer_clip(model, frames, batch=3)
    assert sum(encoded) == 7
    encoded.clear()
    infer_clip(model, frames, batch=3, reuse=False)
    assert sum(encoded) == 7 * window  # what plain windowing costs


MEMORY_PROBE = textwrap.dedent("""
    import os, sys, torch
    from alabench.inference import ClipRunner
    from models.alanet import ALANet, ALANetConfig

    def rss():  # resident bytes now (Linux)
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    inputs, keep = int(sys.argv[1]), sys.argv[2] == "keep"
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = ALANet(ALANetConfig(window=3, width=0.0625, reduction=2)).eval()
    frames = (torch.rand(3, 64, 64) for _ in range(inputs))  # made one at a time, never held here
    kept, count, start = [], 0, rss()
    peak = start
    for _, _, frame in ClipRunner(model, batch=4).run(frames):
        count += 1
        peak = max(peak, rss())
        if keep:
            kept.append(frame)
    assert count == 2 * inputs - 1
    print(start, peak)
""")


def rss_growth(inputs: int, keep: bool = False) -> tuple[int, int]:
    """(RSS before the run, peak RSS during it minus that) of a fresh process running a tiny ALANet."""
    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(inputs), "keep" if keep else "drop"],
                         cwd=REPO, capture_output=True, text=True, check=True)
    start, peak = map(int, out.stdout.split()[-2:])
    return start, peak - start


@pytest.mark.pipeline  # starts processes of its own
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_peak_memory_does_not_grow_with_the_clip():
    """600 inputs at 64×64 against 200: the memory the run adds, sampled after every output,
    stays within a fixed bound. Holding the outputs would add 600 × 2 × 48 KiB = 56 MiB (holding
    the inputs, 28 MiB); the control run shows that the measurement sees it."""
    bound, mib = 16 * 2 ** 20, 2 ** 20
    (base, short), (_, long), (_, kept) = rss_growth(200), rss_growth(600), rss_growth(600, keep=True)
    print(f"RSS {base / mib:.0f} MiB before the run; the run adds {short / mib:.1f} MiB (200 inputs), "
          f"{long / mib:.1f} MiB (600), {kept / mib:.1f} MiB (600, outputs kept)")
    assert long < short + bound
    assert kept > short + bound


@pytest.mark.parametrize("reuse", [True, False])
def test_bfloat16_autocast_runs_the_model_in_bfloat16_and_returns_float32_close_to_it(reuse):
    torch.manual_seed(0)
    model = ALANet(ALANetConfig(window=3, width=0.0625, reduction=4)).eval()
    for generator in (model.deblur_generator, model.interp_generator):  # a correction that is not zero
        torch.nn.init.normal_(generator.out.weight, std=0.01)
    clip = torch.rand(5, 3, 32, 48)
    exact = infer_clip(model, clip, batch=2, reuse=reuse)
    fast = infer_clip(model, clip, batch=2, reuse=reuse, autocast=torch.bfloat16)
    assert fast.deblur.dtype == fast.interp.dtype == torch.float32
    for a, b in ((exact.deblur, fast.deblur), (exact.interp, fast.interp)):
        difference = (a - b).abs().max().item()
        assert 0 < difference < 0.05  # bfloat16 keeps 8 bits of mantissa: close, never identical
