"""The layers where the ports once differed from the authors' code (bench/authors_equivalence.py found
them; /work/notes: NAFNet's LayerNorm eps, Super SloMo's warp and input mean, CAIN's reflection
padding), each checked by a property the authors' formula has and the old layer had not."""

from __future__ import annotations

import torch
from torch import nn

from baselines.cain import CAIN
from baselines.cain import Options as CainOptions
from baselines.superslomo import SuperSloMo, backward_warp
from baselines.superslomo import Options as SloMoOptions
from models.nafnet import LayerNorm2d

ADOBE240_MEAN = (0.429, 0.431, 0.397)  # avinashpaliwal/Super-SloMo train.py and eval.py


def test_nafnet_layer_norm_has_the_authors_eps():
    """A pixel (a, -a) with a^2 = 1e-6 has variance 1e-6: with the authors' eps 1e-6 it normalises to
    a / sqrt(2e-6) = 1/sqrt(2) (torch's default 1e-5 would give 0.30)."""
    norm = LayerNorm2d(2)
    x = torch.tensor([1e-3, -1e-3], dtype=torch.float64).view(1, 2, 1, 1)
    torch.testing.assert_close(norm.double()(x).flatten(), torch.tensor([2 ** -0.5, -(2 ** -0.5)], dtype=torch.float64))


def test_superslomo_warp_is_the_authors_backwarp():
    """Their grid divides by W (not W - 1): a zero flow reads a ramp at x (W - 1) / W; outside the
    frame it reads zeros (not the border)."""
    w = 8
    ramp = torch.arange(w, dtype=torch.float64).expand(1, 1, 4, w)
    zero = torch.zeros(1, 2, 4, w, dtype=torch.float64)
    torch.testing.assert_close(backward_warp(ramp, zero), ramp * (w - 1) / w)
    far = zero + 3 * w
    assert backward_warp(ramp + 1, far).abs().max() == 0


def test_superslomo_unets_end_in_the_authors_leaky_relu():
    """Their U-Net returns leaky_relu(conv3(x), 0.1): a last layer giving -1 everywhere gives -0.1."""
    net = SuperSloMo(SloMoOptions(width=0.0625)).flow_net
    with torch.no_grad():
        net.decoder.out.bias.fill_(-1.0)
        out = net(torch.rand(1, 6, 32, 32, generator=torch.Generator().manual_seed(0)))
    torch.testing.assert_close(out, torch.full_like(out, -0.1))


def test_superslomo_reads_the_mean_colour_outside_the_frame():
    """The authors subtract the Adobe240 mean from the frames and add it back: flows that point out of
    the frame (zeros there in their normalised space) give the mean colour."""
    model = SuperSloMo(SloMoOptions(width=0.0625)).eval()
    with torch.no_grad():
        model.flow_net.decoder.out.bias.copy_(torch.tensor([1000.0, 1000.0, -1000.0, -1000.0]))
    frames = torch.rand(1, 2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        middle = model(frames)[1]
    torch.testing.assert_close(middle, torch.tensor(ADOBE240_MEAN).view(1, 1, 3, 1, 1).expand_as(middle))


def test_cain_reflection_padding_takes_frames_that_fold_to_one_pixel():
    """At depth 5 a 32-pixel side folds to one pixel, which reflection padding cannot pad: the frames
    are padded to 2^(depth + 1) first, and the middle comes back at the input size."""
    model = CAIN(CainOptions(features=8, groups=1, blocks=1, reduction=2, depth=5)).eval()
    assert any(isinstance(m, nn.Conv2d) and m.padding_mode == "reflect" for m in model.modules())
    frames = torch.rand(1, 2, 3, 32, 40, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        middle = model(frames)[1]
    assert middle.shape == (1, 1, 3, 32, 40) and torch.isfinite(middle).all()
