"""The authors' own models, built on the CPU from a checkout of their public code (never copied here).

``python -m bench.authors_models --method M --authors-code PATH`` builds the model of method M as the
authors' code defines it, at the published size, and writes its state dict's key names and shapes (the
layout of their released checkpoint, container unwrapped) to ``alabench/released_manifests/M.json``:
the manifest that :mod:`alabench.released` maps from and that the tests generate checkpoints from.
:mod:`bench.authors_equivalence` builds the same models to compare outputs with the ports.

Their files are loaded by path under private module names (their ``model``/``models`` packages
would clash with this repo's ``models``); what their code imports but the CPU cannot run is replaced
by stand-ins that hold no parameters (so the key layout is theirs, untouched):

* DAIN, MEMC-Net: the CUDA extensions (``my_package.*``, PWC-Net's ``correlation_package``) become
  this repo's plain-PyTorch operations (``models.flow_projection``, ``models.adaptive_warp``,
  ``models.correlation``, each tested against a loop-by-loop reference); ``Tensor.cuda`` is the
  identity while they are built (PWC-Net builds a grid on the GPU), ``np.int`` is ``int``.
* NAFNet: ``basicsr.utils`` (a logger) is replaced by a stub.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import sys
import tempfile
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from alabench.frames import atomic_path

MANIFEST_DIR = Path(__file__).resolve().parent.parent / "alabench" / "released_manifests"


@dataclass(frozen=True)
class Authors:
    """What one method's authors published: their repository, the commit read, how their model is
    built, and how their released checkpoint wraps its state dict."""

    repo: str
    commit: str
    build: Callable[[Path], nn.Module]
    how: str  # how the manifest was obtained


def load_file(name: str, path: Path) -> types.ModuleType:
    """The module at ``path`` (one of the authors' files), imported under the private ``name``."""
    package = [str(path.parent)] if path.name == "__init__.py" else None
    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=package)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def importable(root: Path, stubs: dict[str, types.ModuleType]) -> Iterator[None]:
    """``root`` on sys.path and ``stubs`` in sys.modules while the block runs; every module imported
    meanwhile is forgotten afterwards (their top-level names must not shadow this repo's)."""
    before = set(sys.modules)
    sys.path.insert(0, str(root))
    sys.modules.update(stubs)
    cuda, np_int = torch.Tensor.cuda, getattr(np, "int", None)
    torch.Tensor.cuda = lambda self, *a, **k: self  # PWC-Net builds its grid with .cuda()
    np.int = int  # removed in numpy 1.24; their code still says np.int
    try:
        yield
    finally:
        torch.Tensor.cuda = cuda
        if np_int is None:
            del np.int
        else:
            np.int = np_int
        sys.path.remove(str(root))
        for name in set(sys.modules) - before:
            if not name.startswith(("torch", "numpy", "scipy", "PIL", "cv2")):
                del sys.modules[name]


def module(name: str, **attrs: object) -> types.ModuleType:
    made = types.ModuleType(name)
    made.__path__ = []  # a package, so that sub-modules can be stubbed under it
    made.__dict__.update(attrs)
    return made


# ------------------------------------------------------------------------------------------------
# Plain-PyTorch stand-ins for the CUDA extensions (the operations the ports use: each tested against
# a loop-by-loop reference in tests/test_memc_ops.py).


class FilterInterpolation(nn.Module):
    """my_package's FilterInterpolationModule: (image, flow, filter) -> the adaptive warp."""

    def forward(self, image: torch.Tensor, flow: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
        from models.adaptive_warp import adaptive_warp
        return adaptive_warp(image, flow, kernels)


class FlowProjection(nn.Module):
    """MEMC-Net's FlowProjectionModule(requires_grad): flow -> the flow projected to time t; holes
    filled when no gradient is needed, with its kernel's downward search that never runs."""

    def __init__(self, requires_grad: bool = True) -> None:
        super().__init__()
        self.fill = not requires_grad

    def forward(self, flow: torch.Tensor) -> torch.Tensor:
        from models.flow_projection import project_flow
        return project_flow(flow, fill_holes=self.fill, search_down=False)


class DepthFlowProjection(nn.Module):
    """DAIN's DepthFlowProjectionModule(requires_grad): (flow, inverse depth) -> the depth-aware
    projection; holes filled when no gradient is needed."""

    def __init__(self, requires_grad: bool = True) -> None:
        super().__init__()
        self.fill = not requires_grad

    def forward(self, flow: torch.Tensor, depth_inv: torch.Tensor) -> torch.Tensor:
        from models.flow_projection import project_flow
        return project_flow(flow, depth_inv, fill_holes=self.fill)


class Correlation(nn.Module):
    """PWC-Net's Correlation(pad_size=4, kernel_size=1, max_displacement=4, stride1=1, stride2=1,
    corr_multiply=1): the cost volume over a 9x9 displacement window, averaged over channels."""

    def __init__(self, pad_size: int = 4, kernel_size: int = 1, max_displacement: int = 4,
                 stride1: int = 1, stride2: int = 1, corr_multiply: int = 1) -> None:
        super().__init__()
        self.max_displacement = max_displacement

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        from models.correlation import correlation
        return correlation(a, b, self.max_displacement)


# ------------------------------------------------------------------------------------------------
# One builder per method: the authors' model at its published size.


def build_alanet(root: Path) -> nn.Module:
    # deblur_and_interpolate.py: UNet(3, 3, device, decode_mode=args.decode_mode), whose argument
    # defaults to False: the branch that deblurs and interpolates (both attention sets, both decoders).
    return load_file("authors_alanet_model", root / "model.py").UNet(3, 3, "cpu", decode_mode=False)


class SuperSloMoPair(nn.Module):
    """The two U-Nets of Super SloMo's checkpoint under its two keys (eval.py, video_to_slomo.py)."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        model = load_file("authors_superslomo_model", root / "model.py")
        self.state_dictFC, self.state_dictAT = model.UNet(6, 4), model.UNet(20, 5)
        self.backWarp = model.backWarp


def build_superslomo(root: Path) -> nn.Module:
    return SuperSloMoPair(root)


def build_cain(root: Path) -> nn.Module:
    # main.py: CAIN(depth=args.depth), --depth 3, then nn.DataParallel (keys 'module.').
    load_file("authors_cain_model", root / "model" / "__init__.py")
    return load_file("authors_cain_model.cain", root / "model" / "cain.py").CAIN(depth=3)


def build_nafnet(root: Path) -> nn.Module:
    # options/test/GoPro/NAFNet-width32.yml
    archs = root / "basicsr" / "models" / "archs"
    stubs = {"basicsr": module("basicsr"), "basicsr.models": module("basicsr.models"),
             "basicsr.models.archs": module("basicsr.models.archs"),
             "basicsr.utils": module("basicsr.utils", get_root_logger=lambda *a, **k: None)}
    with importable(root, stubs):
        for name in ("arch_util", "local_arch"):
            load_file(f"basicsr.models.archs.{name}", archs / f"{name}.py")
        arch = load_file("basicsr.models.archs.NAFNet_arch", archs / "NAFNet_arch.py")
        return arch.NAFNet(img_channel=3, width=32, middle_blk_num=1, enc_blk_nums=[1, 1, 1, 28],
                           dec_blk_nums=[1, 1, 1, 1])


def build_bin(root: Path) -> nn.Module:
    # options/train/train_adobe_stage4.yml: which_model_G bin_stage4_lstm (models/networks.py)
    return load_file("authors_bin_rdn", root / "models" / "archs" / "RDN.py").bin_stage4_lstm()


def _memc_stubs(prefix: str) -> dict[str, types.ModuleType]:
    ops = dict(FilterInterpolationModule=FilterInterpolation, FlowProjectionModule=FlowProjection,
               DepthFlowProjectionModule=DepthFlowProjection,
               InterpolationModule=nn.Module)  # MEMC_Net_VE's, imported by networks/__init__.py, unused
    names = [prefix, *(f"{prefix}.{op}" for op in ("FilterInterpolation", "FlowProjection", "DepthFlowProjection")),
             f"{prefix}.modules",
             *(f"{prefix}.modules.{op}Module" for op in ("FilterInterpolation", "FlowProjection", "Interpolation"))]
    return {name: module(name, **ops) for name in names}


def build_dain(root: Path) -> nn.Module:
    # demo_MiddleBury.py: networks.DAIN(channel=3, filter_size=4, timestep=0.5, training=False)
    corr = "PWCNet.correlation_package_pytorch1_0"
    stubs = {**_memc_stubs("my_package"), corr: module(corr),
             f"{corr}.correlation": module(f"{corr}.correlation", Correlation=Correlation)}
    # MegaDepth's options parse the command line at import and write ./checkpoints/test_local/opt.txt: a
    # bare command line, and a working directory of their own
    argv, sys.argv, cwd = sys.argv, sys.argv[:1], os.getcwd()
    try:
        with tempfile.TemporaryDirectory() as scratch, importable(root, stubs):
            os.chdir(scratch)
            from networks.DAIN import DAIN  # type: ignore[import-not-found]
            return DAIN(channel=3, filter_size=4, timestep=0.5, training=False)
    finally:
        os.chdir(cwd)
        sys.argv = argv


def build_memcnet(root: Path) -> nn.Module:
    # demo_MiddleBury.py: networks.MEMC_Net(channel=3, filter_size=4, training=False)
    misc = module("scipy.misc", **dict.fromkeys(("imread", "imsave", "imshow", "imresize")))  # gone from scipy
    stubs = {**_memc_stubs("my_package"), "scipy.misc": misc}
    with importable(root, stubs):
        from networks.MEMC_Net import MEMC_Net  # type: ignore[import-not-found]
        return MEMC_Net(channel=3, filter_size=4, training=False)


STUBBED = "the CUDA extensions' wrappers replaced by parameter-free plain-PyTorch stand-ins"
AUTHORS: dict[str, Authors] = {
    "alanet": Authors("agupt013/ALANET", "efe3748", build_alanet,
                      "model.py UNet(3, 3, 'cpu', decode_mode=False) built on the CPU"),
    "superslomo": Authors("avinashpaliwal/Super-SloMo", "544802b", build_superslomo,
                          "model.py UNet(6, 4) (state_dictFC) and UNet(20, 5) (state_dictAT) built on the CPU"),
    "cain": Authors("myungsub/CAIN", "2e727d2", build_cain, "model/cain.py CAIN(depth=3) built on the CPU"),
    "nafnet": Authors("megvii-research/NAFNet", "2b4af71", build_nafnet,
                      "basicsr/models/archs/NAFNet_arch.py NAFNet(width=32, enc_blk_nums=[1, 1, 1, 28], "
                      "middle_blk_num=1, dec_blk_nums=[1, 1, 1, 1]) built on the CPU (basicsr.utils stubbed)"),
    "bin": Authors("laomao0/BIN", "b3ec2a2", build_bin, "models/archs/RDN.py bin_stage4_lstm() built on the CPU"),
    "dain": Authors("baowenbo/DAIN", "7c727ac", build_dain,
                    "networks/DAIN.py DAIN(channel=3, filter_size=4, timestep=0.5, training=False) built on the CPU, "
                    + STUBBED),
    "memcnet": Authors("baowenbo/MEMC-Net", "82b6e25", build_memcnet,
                       "networks/MEMC_Net.py MEMC_Net(channel=3, filter_size=4, training=False) built on the CPU, "
                       + STUBBED),
}


def manifest(method: str, root: Path) -> dict[str, object]:
    """The key names and shapes of the authors' model of ``method`` (their state dict's layout)."""
    authors = AUTHORS[method]
    model = authors.build(Path(root))
    state = model.state_dict()
    return {"method": method, "repo": authors.repo, "commit": authors.commit, "how": authors.how,
            "parameters": sum(p.numel() for p in model.parameters()),
            "keys": {key: {"shape": list(value.shape), "dtype": str(value.dtype).removeprefix("torch.")}
                     for key, value in state.items()}}


def as_json(made: dict[str, object]) -> str:
    """The manifest as JSON, one key per line (readable in a diff)."""
    head = json.dumps({k: v for k, v in made.items() if k != "keys"}, indent=1)[:-2]
    keys = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in made["keys"].items())
    return f"{head},\n \"keys\": {{\n{keys}\n }}\n}}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=sorted(AUTHORS), required=True)
    parser.add_argument("--authors-code", type=Path, required=True, help="a checkout of the authors' repository")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    made = manifest(args.method, args.authors_code)
    target = MANIFEST_DIR / f"{args.method}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        Path(tmp).write_text(as_json(made))
    print(f"{target}: {len(made['keys'])} keys, {made['parameters']:,} parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
