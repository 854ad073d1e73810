"""DAIN and MEMC-Net as methods: the contract at a small size, an untrained model is the blurry-input
baseline, one step learns, and the published sizes have the authors' parameter counts."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_params
from test_methods import assert_contract, assert_learns

from alabench.config import parse_params
from alabench.methods import build_model, check_outputs, get_method, parameter_count, with_method_options
from models.adaptive_warp import adaptive_warp
from models.dain import BILINEAR_TAPS, DAIN
from models.memcnet import MEMCNet
from models.pwcnet import backward_warp

SMALL = 0.0625  # width: every sub-network at 1/16 of its channels
PARAMS = parse_params(tiny_params())


@pytest.fixture(autouse=True)
def one_thread():
    """These models run ~1000 small operations a step: on a shared machine, threads waiting on each
    other make them many times slower than one thread (docs/methods.md, DAIN and MEMC-Net)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small(name: str, **options):
    return with_method_options(PARAMS, name, width=SMALL, **options)


@pytest.mark.parametrize("name", ["dain", "memcnet"])
def test_contract_at_a_small_size(name):
    assert_contract(get_method(name), small(name))


@pytest.mark.parametrize("name", ["dain", "memcnet"])
def test_untrained_is_the_blurry_input_baseline_and_deblur_returns_the_inputs(name):
    """Zero flows, bilinear kernels (the adaptive warp's identity), even occlusion, no correction."""
    frames = torch.rand(1, 3, 3, 37, 45, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    with torch.no_grad():
        deblur, interp = check_outputs(frames, build_model(get_method(name), small(name)).eval()(frames))
        torch.testing.assert_close(deblur, frames, rtol=0, atol=0)
        torch.testing.assert_close(interp, (frames[:, 1:] + frames[:, :-1]) / 2, rtol=0, atol=1e-6)
        # the authors' initialisation: random flows and kernels, an interpolation that is not the mean
        torch.manual_seed(0)
        model = build_model(get_method(name), small(name, residual=False)).eval()
        _, raw = check_outputs(frames, model(frames))
        assert (raw - interp).abs().max() > 1e-3 and raw.min() >= 0 and raw.max() <= 1


@pytest.mark.parametrize("name", ["dain", "memcnet"])
def test_one_step_changes_the_middle_frames(name):
    assert_learns(get_method(name), small(name))


# The authors' parameter counts: sum(p.numel() for p in model.parameters()) over their own modules,
# imported from a checkout of their repositories (torch 2, CPU) at
#   DAIN     github:baowenbo/DAIN     7c727aca56760f8f1a57ffb603c8c0b0fd1b1349
#   MEMC-Net github:baowenbo/MEMC-Net 82b6e25f6446496b7fecc47704f4422d1d6ac9a2
# with the CUDA-extension wrappers (my_package.*, PWCNet.correlation_package_pytorch1_0.*, and
# scipy.misc for MEMC-Net's SPyNet import) replaced by parameter-free nn.Module stubs, torch.Tensor.cuda
# by the identity (PWCDCNet builds a grid on the GPU), np.int = int and sys.argv = [prog] (MegaDepth
# parses it); then e.g. `from networks.DAIN import DAIN; count(DAIN(training=False))` in the DAIN checkout.
AUTHORS_PWCNET = 9_374_340  # PWCNet.PWCDCNet() (its unused deconv2, 66 parameters, is left out here)
AUTHORS_MEGADEPTH = 5_357_153  # MegaDepth.pytorch_DIW_scratch.pytorch_DIW_scratch
AUTHORS_DAIN = 24_031_656  # networks.DAIN(training=False), pretrained sub-networks included
AUTHORS_FLOWNETS = 38_676_496  # networks.FlowNetS.flownets()
AUTHORS_MEMCNET = 67_260_469  # networks.MEMC_Net(training=False)
UNUSED_DECONV2 = 2 * 2 * 4 * 4 + 2  # PWC-Net's deconv2: built by the authors, never called


def test_published_sizes_have_the_authors_parameter_counts():
    dain, memcnet = DAIN(1.0), MEMCNet(1.0)
    assert parameter_count(dain.flow) == AUTHORS_PWCNET - UNUSED_DECONV2
    assert parameter_count(dain.depth) == AUTHORS_MEGADEPTH
    assert parameter_count(dain) == AUTHORS_DAIN - UNUSED_DECONV2
    assert parameter_count(memcnet.flow) == AUTHORS_FLOWNETS
    assert parameter_count(memcnet) == AUTHORS_MEMCNET
    # the methods' defaults are the published sizes
    assert get_method("dain").options().width == get_method("memcnet").options().width == 1.0


def test_the_initial_kernels_make_the_adaptive_warp_a_bilinear_warp():
    """What ``residual: true`` starts from: with taps BILINEAR_TAPS at 1, a fractional flow samples bilinearly."""
    g = torch.Generator().manual_seed(0)
    image, flow = torch.rand(2, 3, 12, 14, generator=g), torch.rand(2, 2, 12, 14, generator=g) * 2 - 1
    kernels = torch.zeros(2, 16, 12, 14)
    kernels[:, list(BILINEAR_TAPS)] = 1
    inside = (slice(None), slice(None), slice(2, -2), slice(2, -2))  # away from the borders' clamping
    torch.testing.assert_close(adaptive_warp(image, flow, kernels)[inside], backward_warp(image, flow)[inside])
