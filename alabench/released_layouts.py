"""Each released checkpoint's facts: where it is, how its file wraps the state dict, the method's
options at the published size, and the ordered rules that rename an authors' key into the port's
(used by :mod:`alabench.released`, which checks and loads; this module only describes)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

Rename = Callable[[str], "str | None"]  # an authors' key -> the port's key, or None: not this rule's


# ------------------------------------------------------------------------------------------------
# Renaming rules: ordered; the first rule that matches a key renames it.


def sub(pattern: str, replacement: str | Callable[[re.Match[str]], str]) -> Rename:
    """Rename a key that ``pattern`` matches in full (``re.fullmatch``), as ``re.sub`` would."""
    compiled = re.compile(pattern)

    def rename(key: str) -> str | None:
        return compiled.sub(replacement, key) if compiled.fullmatch(key) else None
    return rename


def modules(table: Mapping[str, str]) -> Rename:
    """Rename a key whose module path (the key without its last part) is in ``table``."""
    def rename(key: str) -> str | None:
        path, _, leaf = key.rpartition(".")
        return f"{table[path]}.{leaf}" if path in table else None
    return rename


def drop(pattern: str) -> Rename:
    """Keys with no counterpart in the port (built by the authors, never used): renamed to ''."""
    return sub(pattern, "")


def indexed(authors: str, port: str, indices: Mapping[int, str]) -> dict[str, str]:
    """``authors.<i>`` -> ``port.<indices[i]>``: an authors' nn.Sequential spread over named parts."""
    return {f"{authors}.{i}": f"{port}.{name}" for i, name in indices.items()}


# ------------------------------------------------------------------------------------------------
# Each method's layout.


def _unet_kernels(authors: str, port: str, memc: bool) -> dict[str, str]:
    """The kernel (and MEMC-Net's occlusion) U-Net: one authors' nn.Sequential -> stem / down /
    middle / up (/ reduce), in the order its layers run."""
    if not memc:  # DAIN: one conv (+ ReLU, or + ReLU + pool) per level
        names = ["stem.0", *(f"down.{i}.0" for i in range(5)), "middle.0", *(f"up.{i}.0" for i in range(5))]
        return indexed(authors, port, dict(zip([0, 2, 5, 8, 11, 14, 17, 20, 23, 26, 29, 32], names)))
    names = ["stem.0"]
    for level in range(5):  # conv, conv, BatchNorm
        names += [f"down.{level}.0.0", f"down.{level}.1.0", f"down.{level}.1.2"]
    names += ["middle.0.0", "middle.1.0", "up.0.0", "up.0.2"]
    for level in range(4):  # reduce, conv, BatchNorm
        names += [f"reduce.{level}.0", f"up.{level + 1}.0", f"up.{level + 1}.2"]
    names.append("reduce.4.0")
    return indexed(authors, port, dict(zip(range(0, 2 * len(names), 2), names)))


def _heads(authors: str, port: str) -> dict[str, str]:
    return {f"{authors}{k + 1}.{i}": f"{port}.heads.{k}.{i}" for k in range(2) for i in (0, 2)}


def _megadepth() -> dict[str, str]:
    """MegaDepth's hourglass, a Torch7 export of nested nn.Sequential (DAIN ``pytorch_DIW_scratch``),
    onto ``models.megadepth``'s named levels, walked along the same level specs."""
    from models.megadepth import LEVEL4

    table = {"depthNet.0": "depth.stem.0", "depthNet.1": "depth.stem.1", "depthNet.4": "depth.head"}

    def inception(authors: str, port: str, config: tuple) -> None:
        table[f"{authors}.0.0"], table[f"{authors}.0.1"] = f"{port}.branches.0.0", f"{port}.branches.0.1"
        for k in range(1, len(config[1]) + 1):  # 1x1 reduction then k x k, each conv + BatchNorm + ReLU
            for a, p in (("0", "0.0"), ("1", "0.1"), ("3", "1.0"), ("4", "1.1")):
                table[f"{authors}.{k}.{a}"] = f"{port}.branches.{k}.{p}"

    def level(authors: str, port: str, spec: tuple) -> None:
        # authors: Sequential(ConcatTable(pooled, plain), add), pooled = pool, before.., inner, after..,
        # upsample; the export lists the pooled branch first at the two max-pooled levels, second at the others
        pool, _, plain, before, after, inner = spec
        first, second = f"{authors}.0.0", f"{authors}.0.1"
        pooled, unpooled = (first, second) if pool == "max" else (second, first)
        for i, config in enumerate(plain):
            inception(f"{unpooled}.{i}", f"{port}.plain.{i}", config)
        for i, config in enumerate(before):
            inception(f"{pooled}.{1 + i}", f"{port}.before.{i}", config)
        if inner is not None:
            level(f"{pooled}.{1 + len(before)}", f"{port}.inner", inner)
        for i, config in enumerate(after):
            inception(f"{pooled}.{2 + len(before) + i}", f"{port}.after.{i}", config)

    level("depthNet.3", "depth.hourglass", LEVEL4)
    return table


def _pwcnet(match: re.Match[str]) -> str:
    """PWC-Net's keys (``flownets.<name>``) onto ``models.pwcnet``: levels 6..2 are estimators 0..4."""
    name, rest = match.group(1), match.group(2)
    if m := re.fullmatch(r"conv(\d)(a|aa|b)", name):  # the feature pyramid: a, aa, b in order (level 6: aa, a, b)
        order = ("aa", "a", "b") if m[1] == "6" else ("a", "aa", "b")
        return f"flow.pyramid.{int(m[1]) - 1}.{order.index(m[2])}.{rest}"
    if m := re.fullmatch(r"conv(\d)_(\d)", name):
        return f"flow.estimators.{6 - int(m[1])}.convs.{m[2]}.{rest}"
    if m := re.fullmatch(r"(predict_flow|deconv|upfeat)(\d)", name):
        part = {"predict_flow": "estimators.{}.flow", "deconv": "up_flows.{}", "upfeat": "up_feats.{}"}[m[1]]
        return "flow." + part.format(6 - int(m[2])) + f".{rest}"
    if m := re.fullmatch(r"dc_conv(\d)", name):  # the context network
        return f"flow.context.{int(m[1]) - 1}.{rest}"
    return f"unknown.{name}.{rest}"


def _flownets(match: re.Match[str]) -> str:
    """FlowNetS's keys (``flownets.<name>``) onto ``models.flownets``."""
    name, rest = match.group(1), match.group(2)
    encoder = ["conv1", "conv2", "conv3", "conv3_1", "conv4", "conv4_1", "conv5", "conv5_1", "conv6", "conv6_1"]
    if name in encoder:
        return f"flow.encoder.{encoder.index(name)}.{rest}"
    if m := re.fullmatch(r"predict_flow(\d)", name):
        return f"flow.predict.{6 - int(m[1])}.{rest}"
    if m := re.fullmatch(r"deconv(\d)", name):
        return f"flow.deconvs.{5 - int(m[1])}.{rest}"
    if m := re.fullmatch(r"upsampled_flow(\d)_to_\d", name):
        return f"flow.up_flows.{6 - int(m[1])}.{rest}"
    return f"unknown.{name}.{rest}"


def _rules_superslomo() -> list[Rename]:
    nets = {"FC": "flow_net", "AT": "refine_net"}
    return [
        sub(r"state_dict(FC|AT)\.conv([12])\.(.+)", lambda m: f"{nets[m[1]]}.encoder.stem{m[2]}.{m[3]}"),
        sub(r"state_dict(FC|AT)\.down(\d)\.(.+)", lambda m: f"{nets[m[1]]}.encoder.downs.{int(m[2]) - 1}.{m[3]}"),
        sub(r"state_dict(FC|AT)\.up(\d)\.(.+)", lambda m: f"{nets[m[1]]}.decoder.ups.{int(m[2]) - 1}.{m[3]}"),
        sub(r"state_dict(FC|AT)\.conv3\.(.+)", lambda m: f"{nets[m[1]]}.decoder.out.{m[2]}"),
    ]


def _rules_cain() -> list[Rename]:
    body = r"encoder\.interpolate\.body\.(\d+)\.body\.(\d+)"
    return [
        sub(r"encoder\.interpolate\.headConv\.(.+)", r"head.\1"),
        sub(r"encoder\.interpolate\.tailConv\.(.+)", r"tail.\1"),
        sub(body + r"\.body\.([02])\.conv\.(.+)", r"body.\1.\2.body.\3.\4"),  # RCAB's two convolutions
        sub(body + r"\.body\.3\.conv_du\.([02])\.(.+)", r"body.\1.\2.attention.gate.\3.\4"),  # its channel attention
        sub(body + r"\.conv\.(.+)", r"body.\1.\2.\3"),  # the group's closing convolution
    ]


def _rules_nafnet() -> list[Rename]:
    parts = {"conv1": "expand", "conv2": "depthwise", "sca.1": "attention", "conv3": "project", "conv4": "ffn_in",
             "conv5": "ffn_out", "norm1": "norm1", "norm2": "norm2"}
    block = r"(encoders\.\d+\.\d+|decoders\.\d+\.\d+|middle_blks\.\d+)"
    level = {"encoders": "encoders", "decoders": "decoders", "middle_blks": "middle"}

    def rename_block(m: re.Match[str]) -> str:
        where, index = m[1].split(".", 1)
        return f"net.{level[where]}.{index}." + (f"{parts[m[2]]}.{m[3]}" if m[2] else m[3])
    return [
        sub(block + r"\.(conv[1-5]|sca\.1|norm[12])\.(weight|bias)", rename_block),
        sub(block + r"\.()(beta|gamma)", rename_block),
        sub(r"(intro|ending|downs\.\d+|ups\.\d+\.\d+)\.(weight|bias)", r"net.\1.\2"),
    ]


BIN_CELLS = ["4_prime", "6_prime", "8_prime", "5_prime_prime", "7_prime_prime", "6_prime_prime_prime"]


def _rules_bin() -> list[Rename]:
    level = r"model\.model(\d)_\d+"  # a level's module is shared by its positions: model1_1 .. model1_4 are one
    inner = {"SFENet1": "head1", "SFENet2": "head2", "UPNet.0": "up", "UPNet.2": "out", "GFF.0": "fusion.0",
             "GFF.1": "fusion.1"}
    return [
        sub(level + r"\.(SFENet[12]|UPNet\.[02]|GFF\.[01])\.(weight|bias)",
            lambda m: f"levels.{int(m[1]) - 1}.{inner[m[2]]}.{m[3]}"),
        sub(level + r"\.RDBs\.(\d+)\.convs\.(\d+)\.conv\.0\.(weight|bias)",
            lambda m: f"levels.{int(m[1]) - 1}.blocks.{m[2]}.convs.{m[3]}.{m[4]}"),
        sub(level + r"\.RDBs\.(\d+)\.LFF\.(weight|bias)",
            lambda m: f"levels.{int(m[1]) - 1}.blocks.{m[2]}.fuse.{m[3]}"),
        sub(r"clstm_(\w+?)\.Gates\.(weight|bias)",
            lambda m: f"cells.{BIN_CELLS.index(m[1])}.gates.{m[2]}" if m[1] in BIN_CELLS else f"unknown.{m[0]}"),
    ]


def _rules_dain() -> list[Rename]:
    table = {**_unet_kernels("initScaleNets_filter", "kernels", memc=False),
             **_heads("initScaleNets_filter", "kernels"),
             "ctxNet.block1.0": "context.stem.0", **_megadepth(),
             **{f"ctxNet.block{b}.conv{c}": f"context.blocks.{b - 2}.conv{c}" for b in (2, 3) for c in (1, 2)},
             "rectifyNet.block1.0": "rectify.0", "rectifyNet.block5.0": "rectify.5",
             **{f"rectifyNet.block{b}.conv{c}": f"rectify.{b}.conv{c}" for b in (2, 3, 4) for c in (1, 2)}}
    return [drop(r"flownets\.deconv2\.(weight|bias)"),  # PWC-Net's deconv2: built, never called
            modules(table), sub(r"flownets\.(\w+?)\.((?:0\.)?(?:weight|bias))", _pwcnet)]


def _rules_memcnet() -> list[Rename]:
    table = {**_unet_kernels("initScaleNets_filter", "kernels", memc=True), **_heads("initScaleNets_filter", "kernels"),
             **_unet_kernels("initScaleNets_occlusion", "occlusion", memc=True),
             **_heads("initScaleNets_occlusion", "occlusion"),
             **indexed("rectifyNet", "rectify", {2 * i: f"{i}.0" for i in range(7)} | {14: "7"})}
    return [modules(table), sub(r"flownets\.(\w+?)\.((?:0\.)?(?:weight|bias))", _flownets)]


# ------------------------------------------------------------------------------------------------
# What each authors' release is.


def _single(key: str) -> Callable[[Any], Any]:
    def unwrap(obj: Any) -> Any:
        return obj.get(key) if isinstance(obj, dict) else None
    return unwrap


def _wrapped(key: str, prefix: str = "") -> Callable[[dict[str, torch.Tensor]], Any]:
    def wrap(state: dict[str, torch.Tensor]) -> Any:
        return {key: {prefix + k: v for k, v in state.items()}}
    return wrap


def _superslomo_wrap(state: dict[str, torch.Tensor]) -> Any:
    return {net: {k[len(net) + 1:]: v for k, v in state.items() if k.startswith(net + ".")}
            for net in ("state_dictFC", "state_dictAT")}


def _superslomo_unwrap(obj: Any) -> Any:
    if not isinstance(obj, dict) or not all(isinstance(obj.get(k), dict) for k in ("state_dictFC", "state_dictAT")):
        return None
    return {f"{net}.{k}": v for net in ("state_dictFC", "state_dictAT") for k, v in obj[net].items()}


@dataclass(frozen=True)
class Release:
    """One method's released checkpoint: where it is, how its file wraps the state dict, the method's
    options at the published size, and how the authors' keys become the port's."""

    url: str
    container: str  # what the file holds, in words (for the error messages and the docs)
    options: dict[str, Any]  # methods.<m> at the published size
    rules: Callable[[], list[Rename]]
    unwrap: Callable[[Any], Any] = field(default=lambda obj: obj)  # the file's object -> its state dict, or None
    wrap: Callable[[dict[str, torch.Tensor]], Any] = field(default=lambda state: state)  # the inverse: a file's object


RELEASES: dict[str, Release] = {
    "superslomo": Release(
        url="https://drive.google.com/open?id=1IvobLDbRiBgZr3ryCRrWL8xDbMZ-KnpF (SuperSloMo.ckpt, "
            "avinashpaliwal/Super-SloMo README)",
        container="a dict whose 'state_dictFC' (flow U-Net) and 'state_dictAT' (refinement U-Net) are state dicts",
        options={"width": 1.0}, rules=_rules_superslomo, unwrap=_superslomo_unwrap, wrap=_superslomo_wrap),
    "cain": Release(
        url="https://www.dropbox.com/s/y1xf46m2cbwk7yf/pretrained_cain.pth?dl=0 (myungsub/CAIN README)",
        container="a dict whose 'state_dict' is the nn.DataParallel model's ('module.' keys)",
        options={"features": 192, "groups": 5, "blocks": 12, "reduction": 16, "depth": 3, "residual": False},
        rules=_rules_cain, unwrap=_single("state_dict"), wrap=_wrapped("state_dict", "module.")),
    "nafnet": Release(
        url="https://drive.google.com/file/d/1Fr2QadtDCEXg6iwWX8OzeZLbHOx2t5Bj/view (NAFNet-GoPro-width32.pth, "
            "megvii-research/NAFNet README)",
        container="a dict whose 'params' is the state dict (BasicSR's save_network)",
        options={"width": 32, "encoder": [1, 1, 1, 28], "middle": 1, "decoder": [1, 1, 1, 1]},
        rules=_rules_nafnet, unwrap=_single("params"), wrap=_wrapped("params")),
    "bin": Release(
        url="https://drive.google.com/file/d/1FtuZTKeExX2rrlyNGnWpxd8wGWZTftMg/view (adobe_bin.pth, "
            "laomao0/BIN README)",
        container="the state dict of bin_stage4_lstm (shared levels under each of their names)",
        options={"width": 1.0, "blocks": 12, "layers": 4, "recurrent": True}, rules=_rules_bin),
    "dain": Release(
        url="http://vllab1.ucmerced.edu/~wenbobao/DAIN/best.pth (baowenbo/DAIN README)",
        container="the state dict of networks.DAIN", options={"width": 1.0}, rules=_rules_dain),
    "memcnet": Release(
        url="http://vllab1.ucmerced.edu/~wenbobao/MEMC-Net/MEMC-Net_best.pth (baowenbo/MEMC-Net README)",
        container="the state dict of networks.MEMC_Net", options={"width": 1.0}, rules=_rules_memcnet),
}

NOT_LOADABLE: dict[str, str] = {
    "alanet": "its authors' checkpoint (agupt013/ALANET checkpoint/checkpoint.ckpt) has 18 attention layers "
              "indexed by slot pair (attn_mat, inter_attn_mat) where the port has 7 indexed by offset, and its "
              "interpolation latent is the mean of two full-window sums (docs/methods.md): the weights cannot be "
              "mapped onto the port",
}
